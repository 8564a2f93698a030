//! A client connection: frames in from a buffered reader half, frames out through a buffered
//! writer half. Split so that a handler can wait for the next request and for the next reply
//! at the same time (pipelining).

use super::frame::{parse, Frame, Limits, Proto, ProtocolError};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::{Duration, Instant};

/// Why reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("connection reset: {0}")]
    Io(#[from] std::io::Error),
    #[error("no complete command within {0:?} of its first byte")]
    PartialTimeout(Duration),
    #[error("idle for {0:?}")]
    IdleTimeout(Duration),
}

/// The reading side: bytes accumulate in `buffer` until a whole frame is there.
pub struct FrameReader {
    stream: OwnedReadHalf,
    buffer: BytesMut,
    limits: Limits,
    /// The buffer may not grow beyond this without holding a complete frame.
    buffer_max: usize,
    /// When the oldest incomplete command in the buffer began to arrive.
    partial_since: Option<Instant>,
    /// How long a command may take to arrive once begun.
    partial_timeout: Duration,
}

/// The writing side: encoded frames accumulate in `buffer` until `flush`.
pub struct FrameWriter {
    stream: OwnedWriteHalf,
    buffer: Vec<u8>,
    /// How replies are written (switched by `HELLO`).
    pub proto: Proto,
}

/// Splits a client socket into its reading and writing sides.
pub fn split(
    stream: TcpStream,
    limits: Limits,
    partial_timeout: Duration,
) -> (FrameReader, FrameWriter) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let buffer_max = limits
        .bulk_max
        .saturating_mul(2)
        .saturating_add(limits.line_max * 16);
    let reader = FrameReader {
        stream: read,
        buffer: BytesMut::with_capacity(16 << 10),
        limits,
        buffer_max,
        partial_since: None,
        partial_timeout,
    };
    let writer = FrameWriter {
        stream: write,
        buffer: Vec::with_capacity(16 << 10),
        proto: Proto::Resp2,
    };
    (reader, writer)
}

impl FrameReader {
    /// The next frame; `Ok(None)` on a clean end of stream. Cancel-safe: bytes already read
    /// stay in the buffer if the future is dropped. Fails with `PartialTimeout` when a
    /// command begun is not complete within the partial timeout, and, when `idle` is given,
    /// with `IdleTimeout` when nothing arrives for that long.
    pub async fn read_frame(&mut self, idle: Option<Duration>) -> Result<Option<Frame>, ReadError> {
        let idle_until = idle.map(|idle| (Instant::now() + idle, idle));
        loop {
            if let Some((frame, used)) = parse(&self.buffer, &self.limits)? {
                self.buffer.advance(used);
                // What is left is the start of the next command: its clock starts now.
                self.partial_since = (!self.buffer.is_empty()).then(Instant::now);
                return Ok(Some(frame));
            }
            if self.buffer.len() > self.buffer_max {
                return Err(ProtocolError("request too large".into()).into());
            }
            let read = self.stream.read_buf(&mut self.buffer);
            let read = match (self.partial_since, idle_until) {
                (Some(since), _) => {
                    let limit = self.partial_timeout;
                    tokio::time::timeout_at(since + limit, read)
                        .await
                        .map_err(|_| ReadError::PartialTimeout(limit))?
                }
                (None, Some((until, idle))) => tokio::time::timeout_at(until, read)
                    .await
                    .map_err(|_| ReadError::IdleTimeout(idle))?,
                (None, None) => read.await,
            };
            if read? == 0 {
                if self.buffer.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                return Err(
                    ProtocolError("connection closed in the middle of a request".into()).into(),
                );
            }
            if self.partial_since.is_none() {
                self.partial_since = Some(Instant::now());
            }
        }
    }

    /// True when another frame may already be buffered (so replies can wait to be flushed).
    pub fn has_buffered(&self) -> bool {
        !self.buffer.is_empty()
    }
}

impl FrameWriter {
    pub fn push(&mut self, frame: &Frame) {
        frame.encode_as(self.proto, &mut self.buffer);
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.buffer.is_empty() {
            self.stream.write_all(&self.buffer).await?;
            self.buffer.clear();
        }
        Ok(())
    }

    pub async fn shutdown(&mut self) {
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }
}
