//! Length-prefixed, CRC32C-checked frames.

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Semaphore, SemaphorePermit};

/// `length u32 LE | crc32c u32 LE`.
pub const FRAME_HEADER_LEN: usize = 8;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes is over the limit of {1}")]
    TooLarge(usize, usize),
    #[error("frame checksum mismatch")]
    Checksum,
    #[error("a frame of {0} bytes did not arrive within {1:?}")]
    Slow(usize, Duration),
}

/// Appends a frame holding `payload` to `buf`.
pub fn write_frame_into(buf: &mut Vec<u8>, payload: &[u8]) {
    let length = u32::try_from(payload.len()).expect("frames are under 4 GiB");
    buf.extend_from_slice(&length.to_le_bytes());
    buf.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Reads one frame's payload, refusing frames over `max` bytes before allocating them.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Vec<u8>, FrameError> {
    let header = read_header(reader, max).await?;
    read_payload(reader, header).await
}

/// Reads one frame's payload as [`read_frame`] does, but first takes `length` bytes from
/// `budget` (shared by every connection, so what all of them hold at once is bounded), and
/// gives up if the payload has not arrived within `deadline` (a sender that trickles a large
/// frame cannot hold the budget for long). Memory grows with the bytes that arrive, never
/// with the length a header announces.
pub async fn read_frame_budgeted<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
    budget: &Semaphore,
    deadline: Duration,
) -> Result<Vec<u8>, FrameError> {
    let header = read_header(reader, max).await?;
    let length = header.0;
    let read = async {
        let _held: SemaphorePermit<'_> = budget
            .acquire_many(u32::try_from(length.max(1)).expect("frames are under 4 GiB"))
            .await
            .expect("the budget is never closed");
        read_payload(reader, header).await
    };
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or(Err(FrameError::Slow(length, deadline)))
}

/// The header: the payload's length, checked against `max`.
async fn read_header<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<(usize, u32), FrameError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    reader.read_exact(&mut header).await?;
    let length = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    if length > max {
        return Err(FrameError::TooLarge(length, max));
    }
    let stored = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    Ok((length, stored))
}

async fn read_payload<R: AsyncRead + Unpin>(
    reader: &mut R,
    (length, stored): (usize, u32),
) -> Result<Vec<u8>, FrameError> {
    let mut payload = Vec::with_capacity(length.min(64 << 10));
    (&mut *reader)
        .take(length as u64)
        .read_to_end(&mut payload)
        .await?;
    if payload.len() < length {
        return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    if crc32c::crc32c(&payload) != stored {
        return Err(FrameError::Checksum);
    }
    Ok(payload)
}
