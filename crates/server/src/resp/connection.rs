//! A client connection: frames in from a buffered reader half, frames out through a buffered
//! writer half. Split so that a handler can wait for the next request and for the next reply
//! at the same time (pipelining). The writer never blocks the handler: replies wait in its
//! buffer until the socket takes them, and the handler bounds how much may wait
//! (`client_output_buffer_max`). The socket may be plain TCP or TLS ([`crate::tls::Stream`]).

use super::frame::{parse, Frame, Limits, Proto, ProtocolError};
use crate::tls::{ReadHalf, Stream, WriteHalf};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    stream: ReadHalf,
    buffer: BytesMut,
    limits: Limits,
    /// The buffer may not grow beyond this without holding a complete frame.
    buffer_max: usize,
    /// When the oldest incomplete command in the buffer began to arrive.
    partial_since: Option<Instant>,
    /// How long a command may take to arrive once begun.
    partial_timeout: Duration,
}

/// The writing side: encoded frames accumulate in `buffer`; `buffer[written..]` is owed.
pub struct FrameWriter {
    stream: WriteHalf,
    buffer: Vec<u8>,
    /// How much of `buffer` the socket has taken.
    written: usize,
    /// Bytes were written since the last flush (TLS may hold them in its own buffer).
    unflushed: bool,
    /// How replies are written (switched by `HELLO`).
    pub proto: Proto,
}

/// Splits a client socket into its reading and writing sides.
pub fn split(
    stream: Stream,
    limits: Limits,
    partial_timeout: Duration,
) -> (FrameReader, FrameWriter) {
    let (read, write) = crate::tls::split(stream);
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
        written: 0,
        unflushed: false,
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

    /// Bytes of replies encoded but not yet taken by the socket.
    pub fn owed(&self) -> usize {
        self.buffer.len() - self.written
    }

    /// Whether [`FrameWriter::write_some`] has work: bytes owed, or written but not flushed.
    pub fn has_output(&self) -> bool {
        self.owed() > 0 || self.unflushed
    }

    /// Writes as much of what is owed as the socket takes in one write, or, when nothing is
    /// owed, flushes (TLS encrypts into a buffer of its own). Cancel-safe: a write either
    /// took bytes (and returned) or took none.
    pub async fn write_some(&mut self) -> std::io::Result<()> {
        if self.owed() == 0 {
            self.stream.flush().await?;
            self.unflushed = false;
            return Ok(());
        }
        self.unflushed = true;
        let n = self.stream.write(&self.buffer[self.written..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        self.written += n;
        if self.written == self.buffer.len() {
            self.buffer.clear();
            self.written = 0;
        } else if self.written > self.buffer.len() / 2 {
            // Keep a slow reader's buffer from growing with bytes already sent.
            self.buffer.drain(..self.written);
            self.written = 0;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.owed() > 0 {
            self.stream.write_all(&self.buffer[self.written..]).await?;
            self.buffer.clear();
            self.written = 0;
        }
        self.unflushed = false;
        self.stream.flush().await
    }

    /// Forgets what is owed (the connection is being closed for owing too much).
    pub fn discard(&mut self) {
        self.buffer = Vec::new();
        self.written = 0;
    }

    pub async fn shutdown(&mut self) {
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }
}
