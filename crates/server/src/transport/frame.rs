//! Length-prefixed, CRC32C-checked frames.

use tokio::io::{AsyncRead, AsyncReadExt};

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
    let mut header = [0u8; FRAME_HEADER_LEN];
    reader.read_exact(&mut header).await?;
    let length = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    if length > max {
        return Err(FrameError::TooLarge(length, max));
    }
    let stored = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    let mut payload = vec![0u8; length];
    reader.read_exact(&mut payload).await?;
    if crc32c::crc32c(&payload) != stored {
        return Err(FrameError::Checksum);
    }
    Ok(payload)
}
