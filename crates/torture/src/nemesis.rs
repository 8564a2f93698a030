//! The nemesis: faults injected into the real processes, drawn from the run's seed, each
//! logged with its time.
//!
//! One fault at a time: a quiet spell, a fault, its duration, the heal. What a fault does:
//!
//! - `kill`: `kill -9` of the leader or a random node; restart on the same data directory.
//! - `pause`: SIGSTOP of the leader or a random node for a few election timeouts; SIGCONT.
//! - `partition`: isolate the leader; a random majority/minority split; one-way (a node
//!   hears nothing but can still send); a bridge (two sides that share one node); or a flaky
//!   network (delays, drops and duplicates on every link).
//! - `disk`: kill a node, damage its write-ahead log (flip a byte in a synced record, cut the
//!   tail, delete the log), restart it and record whether it refused to start or started.
//! - `clock`: libfaketime offsets and rates, when `faketime` is installed.

use crate::cluster::Node;
use crate::proxy::{LinkFault, Links};
use crate::resp::{Conn, Reply};
use nix::sys::signal::Signal;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;
use serde::Serialize;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The kinds of fault `--nemesis` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    Kill,
    Pause,
    Partition,
    Clock,
    Disk,
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(text: &str) -> Result<Fault, String> {
        match text {
            "kill" => Ok(Fault::Kill),
            "pause" => Ok(Fault::Pause),
            "partition" => Ok(Fault::Partition),
            "clock" => Ok(Fault::Clock),
            "disk" => Ok(Fault::Disk),
            other => Err(format!(
                "unknown fault {other:?}: use kill, pause, partition, clock, disk"
            )),
        }
    }
}

/// How a node came back after its log was damaged.
#[derive(Clone, Debug, Serialize)]
pub struct Recovery {
    pub at_ms: u64,
    pub node: u64,
    pub damage: String,
    /// `refused` (the process exited) or `started`.
    pub outcome: String,
    /// The node's last log line when it refused.
    pub detail: String,
}

/// The nemesis log, written as it goes.
pub struct Log {
    file: fs::File,
    start: tokio::time::Instant,
    pub events: usize,
}

impl Log {
    pub fn create(path: &Path, start: tokio::time::Instant) -> std::io::Result<Log> {
        Ok(Log {
            file: fs::File::create(path)?,
            start,
            events: 0,
        })
    }

    pub fn write(&mut self, text: &str) {
        let ms = self.start.elapsed().as_millis();
        let _ = writeln!(self.file, "{:>8}.{:03} {text}", ms / 1000, ms % 1000);
        self.events += 1;
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

/// The node that reports `role:leader`, if one answers within a short timeout.
pub async fn leader(nodes: &[Node]) -> Option<u64> {
    for node in nodes {
        if node.paused {
            continue;
        }
        let Ok(mut conn) = Conn::connect(node.config.client_addr, Duration::from_millis(300)).await
        else {
            continue;
        };
        if let Ok(Reply::Bulk(text)) = conn.call(&[b"INFO"], Duration::from_millis(300)).await {
            if String::from_utf8_lossy(&text)
                .lines()
                .any(|l| l.trim() == "role:leader")
            {
                return Some(node.id);
            }
        }
    }
    None
}

/// The leader (half the time, when there is one) or a random node.
async fn victim(nodes: &[Node], rng: &mut StdRng, among: &[u64]) -> Option<u64> {
    if rng.random_bool(0.5) {
        if let Some(l) = leader(nodes).await {
            if among.contains(&l) {
                return Some(l);
            }
        }
    }
    among.choose(rng).copied()
}

fn cut_both(links: &Links, a: u64, b: u64) {
    let cut = LinkFault {
        cut: true,
        ..LinkFault::default()
    };
    links.set(a, b, cut);
    links.set(b, a, cut);
}

/// Applies one partition; returns its description.
pub async fn partition(nodes: &[Node], links: &Links, rng: &mut StdRng) -> String {
    let ids: Vec<u64> = nodes.iter().map(|n| n.id).collect();
    let n = ids.len();
    match rng.random_range(0..5) {
        0 => {
            let target = match leader(nodes).await {
                Some(l) => l,
                None => *ids.choose(rng).expect("nodes"),
            };
            for other in ids.iter().filter(|o| **o != target) {
                cut_both(links, target, *other);
            }
            format!("partition: isolate node {target} (leader if known)")
        }
        1 => {
            let mut shuffled = ids.clone();
            for i in (1..n).rev() {
                shuffled.swap(i, rng.random_range(0..=i));
            }
            let minority: Vec<u64> = shuffled[..n.saturating_sub(1) / 2].to_vec();
            let minority = if minority.is_empty() {
                vec![shuffled[0]]
            } else {
                minority
            };
            for a in &minority {
                for b in ids.iter().filter(|b| !minority.contains(b)) {
                    cut_both(links, *a, *b);
                }
            }
            format!("partition: minority {minority:?} | majority (the rest)")
        }
        2 => {
            let deaf = *ids.choose(rng).expect("nodes");
            let cut = LinkFault {
                cut: true,
                ..LinkFault::default()
            };
            for other in ids.iter().filter(|o| **o != deaf) {
                links.set(*other, deaf, cut);
            }
            format!("partition: one-way, node {deaf} hears nobody but can send")
        }
        3 if n >= 3 => {
            let mut shuffled = ids.clone();
            for i in (1..n).rev() {
                shuffled.swap(i, rng.random_range(0..=i));
            }
            let bridge = shuffled[0];
            let rest = &shuffled[1..];
            let (left, right) = rest.split_at(rest.len() / 2);
            for a in left {
                for b in right {
                    cut_both(links, *a, *b);
                }
            }
            format!("partition: bridge node {bridge} between {left:?} and {right:?}")
        }
        _ => {
            let delay = rng.random_range(1..30);
            let fault = LinkFault {
                cut: false,
                delay_ms: delay,
                drop_pct: 5,
                dup_pct: 5,
            };
            for a in &ids {
                for b in ids.iter().filter(|b| *b != a) {
                    links.set(*a, *b, fault);
                }
            }
            format!("partition: flaky links, {delay} ms delay, 5% drops, 5% duplicates")
        }
    }
}

pub async fn pause(nodes: &mut [Node], rng: &mut StdRng, log: &mut Log) -> Option<u64> {
    let alive: Vec<u64> = nodes
        .iter_mut()
        .filter_map(|n| n.alive().then_some(n.id))
        .collect();
    let target = victim(nodes, rng, &alive).await?;
    let node = nodes.iter_mut().find(|n| n.id == target)?;
    node.signal(Signal::SIGSTOP);
    log.write(&format!(
        "pause: SIGSTOP node {target} (pid {:?})",
        node.pid()
    ));
    Some(target)
}

pub fn resume(nodes: &mut [Node], target: u64, log: &mut Log) {
    if let Some(node) = nodes.iter_mut().find(|n| n.id == target) {
        node.signal(Signal::SIGCONT);
        log.write(&format!("pause: SIGCONT node {target}"));
    }
}

pub async fn kill(nodes: &mut [Node], rng: &mut StdRng, log: &mut Log) -> Option<u64> {
    let alive: Vec<u64> = nodes
        .iter_mut()
        .filter_map(|n| n.alive().then_some(n.id))
        .collect();
    let target = victim(nodes, rng, &alive).await?;
    let node = nodes.iter_mut().find(|n| n.id == target)?;
    let pid = node.pid();
    node.kill9();
    log.write(&format!("kill: kill -9 node {target} (pid {pid:?})"));
    Some(target)
}

/// The current write-ahead log of a data directory.
fn wal(dir: &Path) -> Option<PathBuf> {
    let mut logs: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.starts_with("wal-") && name.ends_with(".log")
        })
        .collect();
    logs.sort();
    logs.pop()
}

/// Record boundaries `(start, length)` of a WAL (header 20 bytes; records
/// `length u32 | crc u32 | payload`).
fn records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 20;
    while at + 8 <= bytes.len() {
        let length = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        if at + 8 + length > bytes.len() {
            break;
        }
        out.push((at, 8 + length));
        at += 8 + length;
    }
    out
}

/// Damages a stopped node's log; returns what was done.
pub fn damage(dir: &Path, rng: &mut StdRng) -> String {
    let Some(path) = wal(dir) else {
        return "no log to damage".into();
    };
    let Ok(mut bytes) = fs::read(&path) else {
        return "log unreadable".into();
    };
    let recs = records(&bytes);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match rng.random_range(0..3) {
        0 if recs.len() >= 2 => {
            // A record that is not the last: synced, acknowledged, followed by valid data.
            let (start, length) = recs[rng.random_range(0..recs.len() - 1)];
            let at = start + 8 + rng.random_range(0..length - 8).min(length - 9);
            bytes[at] ^= 0x5a;
            let _ = fs::write(&path, &bytes);
            format!(
                "flip a byte at offset {at} of {name} (in the record at offset {}, one of {} records)",
                start,
                recs.len()
            )
        }
        1 if !recs.is_empty() => {
            let (start, length) = *recs.last().expect("a record");
            let cut = start + rng.random_range(1..length);
            let _ = fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(cut as u64));
            format!(
                "cut {name} to {cut} bytes, inside its last record ({} records)",
                recs.len()
            )
        }
        _ => {
            let _ = fs::remove_file(&path);
            format!("delete {name} ({} records)", recs.len())
        }
    }
}

/// The last non-empty line of a file.
pub fn last_line(path: &Path) -> String {
    fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        })
        .unwrap_or_default()
}
