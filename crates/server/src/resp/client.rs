//! A minimal blocking RESP client, for tools and tests that need one command's answer (the
//! `cluster` command's leader probe, the benchmark's setup). Applications should use a
//! Redis client library. Speaks TLS when given a [`ClientTls`] (a node with `[tls] clients`).

use super::frame::{Frame, Limits};
use bytes::Bytes;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// How to reach a TLS client port: the CA that signed the nodes' certificates.
pub type ClientTls = Arc<rustls::ClientConfig>;

/// Connects to `addr`, inside TLS when `tls` is given (the node's certificate must name
/// `addr`'s IP address).
fn connect(
    addr: SocketAddr,
    timeout: Duration,
    tls: Option<&ClientTls>,
) -> std::io::Result<Box<dyn ReadWrite>> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok(Box::new(stream));
    };
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let session = rustls::ClientConnection::new(tls.clone(), name)
        .map_err(|e| std::io::Error::other(format!("TLS: {e}")))?;
    Ok(Box::new(rustls::StreamOwned::new(session, stream)))
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Sends one command and returns the reply frame.
pub fn call(addr: SocketAddr, args: &[&[u8]], timeout: Duration) -> std::io::Result<Frame> {
    let mut replies = exchange(addr, &[args], timeout)?;
    Ok(replies.remove(0))
}

/// Sends `commands` in one pipeline and returns their replies, in order.
pub fn exchange(
    addr: SocketAddr,
    commands: &[&[&[u8]]],
    timeout: Duration,
) -> std::io::Result<Vec<Frame>> {
    exchange_over(addr, commands, timeout, None)
}

/// [`exchange`], inside TLS when `tls` is given.
pub fn exchange_over(
    addr: SocketAddr,
    commands: &[&[&[u8]]],
    timeout: Duration,
    tls: Option<&ClientTls>,
) -> std::io::Result<Vec<Frame>> {
    exchange_with(addr, commands, timeout, tls, 64 << 20)
}

/// [`exchange_over`], taking replies of up to `reply_max` bytes (a snapshot is one reply).
pub fn exchange_with(
    addr: SocketAddr,
    commands: &[&[&[u8]]],
    timeout: Duration,
    tls: Option<&ClientTls>,
    reply_max: usize,
) -> std::io::Result<Vec<Frame>> {
    let mut stream = connect(addr, timeout, tls)?;
    let mut wire = Vec::new();
    for args in commands {
        let command = Frame::Array(
            args.iter()
                .map(|a| Frame::Bulk(Bytes::copy_from_slice(a)))
                .collect(),
        );
        command.encode(&mut wire);
    }
    stream.write_all(&wire)?;
    stream.flush()?;
    let limits = Limits::for_values(reply_max);
    let mut buf = Vec::new();
    let mut at = 0;
    let mut replies = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    while replies.len() < commands.len() {
        // Replies are never inline; parse them as RESP whatever the first byte.
        match super::frame::parse_reply(&buf[at..], &limits) {
            Ok(Some((frame, used))) => {
                replies.push(frame);
                at += used;
                continue;
            }
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(replies)
}

/// The `key:value` fields of an `INFO` reply.
pub fn info(addr: SocketAddr, timeout: Duration) -> std::io::Result<Vec<(String, String)>> {
    info_as(addr, None, timeout)
}

/// [`info`], inside TLS when `tls` is given.
pub fn info_over(
    addr: SocketAddr,
    timeout: Duration,
    tls: Option<&ClientTls>,
) -> std::io::Result<Vec<(String, String)>> {
    parse_info(exchange_over(addr, &[&[b"INFO"]], timeout, tls)?.pop())
}

/// [`info`] on a node with passwords: `AUTH password` first, when given.
pub fn info_as(
    addr: SocketAddr,
    password: Option<&str>,
    timeout: Duration,
) -> std::io::Result<Vec<(String, String)>> {
    let mut commands: Vec<&[&[u8]]> = Vec::new();
    let auth: [&[u8]; 2] = [b"AUTH", password.unwrap_or_default().as_bytes()];
    if password.is_some() {
        commands.push(&auth);
    }
    commands.push(&[b"INFO"]);
    parse_info(exchange(addr, &commands, timeout)?.pop())
}

fn parse_info(reply: Option<Frame>) -> std::io::Result<Vec<(String, String)>> {
    match reply {
        Some(Frame::Bulk(text)) => Ok(String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect()),
        other => Err(std::io::Error::other(format!("INFO answered {other:?}"))),
    }
}
