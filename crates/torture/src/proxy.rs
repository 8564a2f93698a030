//! Partitions without root: a user-space proxy per directed peer link.
//!
//! quorate's peer transport dials one connection per direction and sends only on it (see
//! `quorate_server::transport`), so the link from node `a` to node `b` is exactly the
//! connections `a` dials to `b`. Node `a`'s configuration names, as `b`'s peer address, a
//! listener of this harness, which dials `b`'s real peer address and forwards. The proxy reads
//! whole transport frames (`length u32 LE | crc32c u32 LE | payload`), so it can drop, delay
//! or duplicate one message without corrupting the stream; a cut link swallows every frame
//! (a black hole, as a dropped route would be: the sender learns nothing until its own
//! timeouts fire). The first frame each way (the handshake) is never dropped or duplicated
//! on a link that is not cut, so a flaky link still connects.

use rand::Rng;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What happens to the frames of one directed link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkFault {
    /// Every frame is swallowed.
    pub cut: bool,
    /// Each frame is held this long (order is kept).
    pub delay_ms: u64,
    /// Percent of frames dropped.
    pub drop_pct: u8,
    /// Percent of frames sent twice.
    pub dup_pct: u8,
}

/// The faults of every directed link `(from, to)`, shared by the proxies and the nemesis.
#[derive(Clone, Default)]
pub struct Links(Arc<Mutex<BTreeMap<(u64, u64), LinkFault>>>);

impl Links {
    pub fn get(&self, from: u64, to: u64) -> LinkFault {
        let map = self.0.lock().expect("links lock");
        map.get(&(from, to)).copied().unwrap_or_default()
    }

    pub fn set(&self, from: u64, to: u64, fault: LinkFault) {
        let mut map = self.0.lock().expect("links lock");
        if fault == LinkFault::default() {
            map.remove(&(from, to));
        } else {
            map.insert((from, to), fault);
        }
    }

    /// Every link back to normal.
    pub fn heal(&self) {
        self.0.lock().expect("links lock").clear();
    }

    /// Links currently faulty, for the log.
    pub fn faulty(&self) -> Vec<((u64, u64), LinkFault)> {
        let map = self.0.lock().expect("links lock");
        map.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

/// Starts the proxy of link `from -> to` on `listener`, forwarding to `target`.
pub fn spawn_link(listener: TcpListener, from: u64, to: u64, target: SocketAddr, links: Links) {
    tokio::spawn(async move {
        loop {
            let Ok((inbound, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let links = links.clone();
            tokio::spawn(async move {
                let Ok(Ok(outbound)) =
                    tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(target)).await
                else {
                    return; // The target is down: the dialer sees its connection close.
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (in_read, in_write) = inbound.into_split();
                let (out_read, out_write) = outbound.into_split();
                // Both directions of one dialed connection belong to the link from -> to.
                let forward = pump(in_read, out_write, from, to, links.clone());
                let backward = pump(out_read, in_write, from, to, links);
                tokio::select! {
                    _ = forward => {}
                    _ = backward => {}
                }
            });
        }
    });
}

/// Copies frames from `reader` to `writer`, applying the link's current fault to each.
async fn pump(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    from: u64,
    to: u64,
    links: Links,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writing = async move {
        while let Some((at, frame)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if writer.write_all(&frame).await.is_err() {
                return;
            }
        }
    };
    let reading = async move {
        let mut first = true;
        loop {
            let mut header = [0u8; 8];
            if reader.read_exact(&mut header).await.is_err() {
                return;
            }
            let length = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
            if length > (512 << 20) {
                return; // Not a frame of ours: close.
            }
            let mut frame = header.to_vec();
            frame.resize(8 + length, 0);
            if reader.read_exact(&mut frame[8..]).await.is_err() {
                return;
            }
            let fault = links.get(from, to);
            let handshake = std::mem::take(&mut first);
            if fault.cut {
                continue;
            }
            let (drop, dup) = if handshake {
                (false, false)
            } else {
                let mut rng = rand::rng();
                (
                    rng.random_range(0..100u8) < fault.drop_pct,
                    rng.random_range(0..100u8) < fault.dup_pct,
                )
            };
            if drop {
                continue;
            }
            let at = Instant::now() + Duration::from_millis(fault.delay_ms);
            if dup && tx.send((at, frame.clone())).is_err() {
                return;
            }
            if tx.send((at, frame)).is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = writing => {}
        _ = reading => {}
    }
}
