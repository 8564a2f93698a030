//! Entry points for fuzzing what arrives from the network (`fuzz/`, `cargo +nightly fuzz run
//! resp` or `peer`) and for replaying the checked-in corpus on stable
//! (`tests/fuzz_corpus.rs`): any bytes from a client or a peer must be parsed or refused,
//! never panic or allocate without bound.

use crate::resp::cmd::Command;
use crate::resp::frame::{parse, Limits};
use crate::transport::{Hello, HelloAnswer, PeerMsg};
use quorate_core::Protocol;
use serde::de::DeserializeOwned;

/// Client bytes: every frame the RESP parser finds, parsed as a command.
pub fn resp(data: &[u8]) {
    let limits = Limits::for_values(1 << 16);
    let mut at = 0;
    while at < data.len() {
        match parse(&data[at..], &limits) {
            Ok(Some((frame, used))) => {
                let _ = Command::from_frame(frame, 1 << 16);
                at += used.max(1);
            }
            Ok(None) | Err(_) => return,
        }
    }
}

/// Peer bytes: a frame payload decoded as a handshake, its answer, and every served
/// protocol's message (the first byte chooses which).
pub fn peer(data: &[u8]) {
    let Some((&which, payload)) = data.split_first() else {
        return;
    };
    use quorate_protocols::{multipaxos, multiprimary, primary_backup, quorum, raft, zab};
    match which % 8 {
        0 => drop(postcard::from_bytes::<Hello>(payload)),
        1 => drop(postcard::from_bytes::<HelloAnswer>(payload)),
        2 => decode::<raft::Raft>(payload),
        3 => decode::<multipaxos::MultiPaxos>(payload),
        4 => decode::<zab::Zab>(payload),
        5 => decode::<primary_backup::Replica>(payload),
        6 => decode::<quorum::Quorum>(payload),
        _ => decode::<multiprimary::MultiPrimary>(payload),
    }
}

fn decode<P: Protocol>(payload: &[u8])
where
    P::Message: DeserializeOwned,
{
    let _ = postcard::from_bytes::<PeerMsg<P::Message>>(payload);
}
