//! A stranger on the peer port cannot exhaust a node's memory: several connections that
//! claim to be members and announce large frames hold at most one frame's worth between
//! them (the transport's byte budget), not one per connection. Its own test binary, so
//! the process's peak RSS (`VmHWM`) is this test's alone.

use crate::common;

use common::TestCluster;
use quorate_core::NodeId;
use quorate_server::transport::{write_frame_into, Hello, HelloAnswer, PEER_PROTOCOL_VERSION};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Peak resident memory of this process, in MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024
}

/// A connection to node 1's peer port that passed the handshake claiming to be `from`.
fn as_member(cluster: &TestCluster, from: u64) -> TcpStream {
    let addr = cluster.peer_addr(0);
    let mut stream = TcpStream::connect(addr).unwrap();
    let hello = Hello {
        magic: *b"QRTP",
        version: PEER_PROTOCOL_VERSION,
        cluster_id: "quorate".into(),
        protocol: "raft".into(),
        from: NodeId(from),
        to: NodeId(1),
        client_addr: "127.0.0.1:1".parse().unwrap(),
    };
    let mut buf = Vec::new();
    write_frame_into(&mut buf, &postcard::to_allocvec(&hello).unwrap());
    stream.write_all(&buf).unwrap();
    // The answer frame: `length u32 LE | crc32c u32 LE | payload`.
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).unwrap();
    let mut answer = vec![0u8; u32::from_le_bytes(header[..4].try_into().unwrap()) as usize];
    stream.read_exact(&mut answer).unwrap();
    let answer: HelloAnswer = postcard::from_bytes(&answer).unwrap();
    assert!(matches!(answer, HelloAnswer::Welcome), "{answer:?}");
    stream
}

#[test]
fn six_connections_announcing_60_mb_frames_hold_one_frames_worth() {
    const FRAME: usize = 60 << 20;
    // Undecodable payloads (0xff), so each connection is closed once its frame is read.
    let mut frame = Vec::new();
    write_frame_into(&mut frame, &vec![0xffu8; FRAME]);
    let frame = std::sync::Arc::new(frame);
    let cluster = TestCluster::start(3, |config| config.peer_frame_max = 64 << 20);
    // Reset the high-water mark to what is resident now (Linux 4.0+).
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = peak_rss_mib();
    let senders: Vec<_> = (0..6)
        .map(|i| {
            let mut stream = as_member(&cluster, 2 + i % 2);
            stream
                .set_write_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let frame = frame.clone();
            std::thread::spawn(move || {
                let _ = stream.write_all(&frame);
                std::thread::sleep(Duration::from_secs(1));
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for sender in senders {
        assert!(Instant::now() < deadline);
        sender.join().unwrap();
    }
    let grew = peak_rss_mib().saturating_sub(before);
    eprintln!("peak RSS grew by {grew} MiB during the attack");
    // 6 frames held at once would be 360 MiB more.
    assert!(
        grew < 2 * 64 + 40,
        "peak RSS grew by {grew} MiB (one frame's budget is 64 MiB)"
    );
    // The node is unharmed: it still serves clients.
    let mut con = cluster.redis(0);
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
}
