//! A minimal RESP client over tokio TCP: one command at a time, no pipelining, no retries,
//! no reconnection. Whatever goes wrong is returned to the caller, which decides what the
//! operation's outcome was (the history must say exactly what the client saw).

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A reply, as RESP2/RESP3 clients see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
}

/// Largest bulk string or array accepted from a server (a list-append key grows).
const BULK_MAX: usize = 64 << 20;
const ARRAY_MAX: usize = 1 << 20;

/// One connection.
pub struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<Conn> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::new(stream),
        })
    }

    /// Sends one command and reads its reply, all within `timeout`.
    pub async fn call(&mut self, args: &[&[u8]], timeout: Duration) -> std::io::Result<Reply> {
        let mut wire = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            wire.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            wire.extend_from_slice(arg);
            wire.extend_from_slice(b"\r\n");
        }
        let exchange = async {
            self.stream.get_mut().write_all(&wire).await?;
            read_reply(&mut self.stream).await
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
    }
}

fn invalid(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.into())
}

async fn read_line(stream: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = Vec::new();
    let n = stream.read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    if !line.ends_with(b"\r\n") {
        return Err(invalid("a reply line without CRLF"));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| invalid("a reply line that is not UTF-8"))
}

fn read_reply(
    stream: &mut BufReader<TcpStream>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Reply>> + Send + '_>> {
    Box::pin(async move {
        let line = read_line(stream).await?;
        let (kind, rest) = line.split_at(line.len().min(1));
        let number = || {
            rest.parse::<i64>()
                .map_err(|_| invalid(format!("bad length in {line:?}")))
        };
        match kind {
            "+" => Ok(Reply::Simple(rest.to_string())),
            "-" => Ok(Reply::Error(rest.to_string())),
            ":" => Ok(Reply::Integer(number()?)),
            "_" => Ok(Reply::Nil),
            "$" => {
                let length = number()?;
                if length < 0 {
                    return Ok(Reply::Nil);
                }
                let length = length as usize;
                if length > BULK_MAX {
                    return Err(invalid(format!("bulk string of {length} bytes")));
                }
                let mut body = vec![0u8; length + 2];
                stream.read_exact(&mut body).await?;
                body.truncate(length);
                Ok(Reply::Bulk(body))
            }
            "*" | "~" | ">" => {
                let length = number()?;
                if length < 0 {
                    return Ok(Reply::Nil);
                }
                let length = length as usize;
                if length > ARRAY_MAX {
                    return Err(invalid(format!("array of {length} elements")));
                }
                let mut items = Vec::with_capacity(length);
                for _ in 0..length {
                    items.push(read_reply(stream).await?);
                }
                Ok(Reply::Array(items))
            }
            _ => Err(invalid(format!("unknown reply {line:?}"))),
        }
    })
}
