//! Choosing ports for local clusters (`quorate cluster --free-ports`, `quorate torture`, tests).
//!
//! Asking the OS for port 0 hands out a port from the *ephemeral* range, the same range the OS
//! draws from for the source port of every outgoing connection. A node that is killed and
//! restarted on such a port races every connection opened meanwhile on the machine: one of
//! them may take the port as its source, and the restart fails with "address already in use".
//! So we pick ports below the ephemeral range, at random (so concurrent clusters rarely try
//! the same one), and keep each chosen port bound until the caller has chosen them all.
//!
//! A port once handed out is never handed out again by the same process. A cluster's node
//! stopped and restarted on its port leaves the port free meanwhile, and another cluster
//! started in that window by the same process (the tests of one test binary run as threads)
//! could otherwise choose it, so the restart would fail with "address already in use".

use rand::Rng;
use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Mutex;

/// Every port this process has handed out.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// The lowest port we choose: above the registered services most machines run.
const LOWEST: u16 = 10_000;

/// The OS's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), if it can be read.
fn ephemeral_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut parts = text.split_whitespace().map(str::parse::<u16>);
    Some((parts.next()?.ok()?, parts.next()?.ok()?))
}

/// The range we draw from: from [`LOWEST`] to just below the ephemeral range, or, if that
/// leaves too little room (an unusual ephemeral range), from just above it.
fn candidate_range() -> (u16, u16) {
    match ephemeral_range() {
        Some((lo, _)) if lo > LOWEST + 1_000 => (LOWEST, lo - 1),
        Some((_, hi)) if hi < u16::MAX - 1_000 => (hi + 1, u16::MAX),
        _ => (LOWEST, 32_767),
    }
}

/// Binds a free port on `ip` outside the ephemeral range, never one this process handed out
/// before (see the module header), and returns its listener; drop the listener right before
/// the process that should listen there starts. Falls back to a port the OS picks after 200
/// taken candidates.
pub fn reserve(ip: IpAddr) -> io::Result<TcpListener> {
    let (lo, hi) = candidate_range();
    let mut rng = rand::rng();
    let mut handed = HANDED_OUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for _ in 0..200 {
        let port = rng.random_range(lo..=hi);
        if handed.contains(&port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(SocketAddr::new(ip, port)) {
            handed.insert(port);
            return Ok(listener);
        }
    }
    let listener = TcpListener::bind(SocketAddr::new(ip, 0))?;
    handed.insert(listener.local_addr()?.port());
    Ok(listener)
}

/// `n` different free loopback addresses outside the ephemeral range. The ports are released
/// on return; they stay free unless something else binds them in between.
pub fn free_loopback_addrs(n: usize) -> io::Result<Vec<SocketAddr>> {
    let held = (0..n)
        .map(|_| reserve(IpAddr::from([127, 0, 0, 1])))
        .collect::<io::Result<Vec<_>>>()?;
    held.iter().map(TcpListener::local_addr).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ports_are_distinct_and_outside_the_ephemeral_range() {
        let addrs = free_loopback_addrs(50).unwrap();
        let mut ports: Vec<u16> = addrs.iter().map(SocketAddr::port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 50);
        if let Some((lo, hi)) = ephemeral_range() {
            assert!(ports.iter().all(|p| *p < lo || *p > hi), "{ports:?}");
        }
    }

    #[test]
    fn a_port_handed_out_once_is_not_handed_out_again_after_it_was_released() {
        // The listeners are dropped on return, so every port is free again; none comes back.
        let first: BTreeSet<u16> = (free_loopback_addrs(200).unwrap().iter())
            .map(SocketAddr::port)
            .collect();
        for _ in 0..20 {
            for addr in free_loopback_addrs(50).unwrap() {
                assert!(!first.contains(&addr.port()), "{addr} handed out twice");
            }
        }
    }
}
