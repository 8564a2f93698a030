//! Backups: a consistent copy of the replicated store in one checksummed file, and the data
//! directories of a new cluster seeded from it (`quorate snapshot save|status|restore`, after
//! `etcdctl snapshot save|status|restore`).
//!
//! ## The problem
//!
//! A backup must be a state the cluster was really in, containing every write acknowledged
//! before it was asked for: a copy of one node's disk may lag, and a copy of a leader's memory
//! taken at an arbitrary moment may miss writes that a newer leader already acknowledged.
//!
//! ## How a snapshot is taken, in numbered steps
//!
//! 1. `SNAPSHOT` (an admin command over RESP) reaches a node's runtime as
//!    `ClientCall::Snapshot`. The runtime steps a *linearizable read* of its own (seq 0, a
//!    client id with the top bit set, which no connection uses) straight into the node, not
//!    through the shell, so it is never forwarded: the node answers it itself or says
//!    `NotLeader` (and the command answers `-MOVED` to the leader, which `quorate snapshot
//!    save` follows).
//! 2. The protocol serves that read as it serves any linearizable read (Raft: ReadIndex or the
//!    lease; Multi-Paxos, ZAB, primary-backup, chain, CRAQ: their own read paths). When it
//!    answers, the node's applied index is at least the read index, so the applied state holds
//!    every write acknowledged before the read arrived.
//! 3. In the same runtime step that delivers the read's answer, the runtime copies the node's
//!    applied store (`ServedProtocol::applied_store`) and its status. The applied store is the
//!    state at a committed index, so the copy is a state the cluster went through: a
//!    linearizable point between the request and the answer. That index and the term are
//!    recorded.
//! 4. The connection encodes the copy in this file format off the event loop and answers it
//!    as one bulk string; the CLI checks it and writes it atomically (temp file, fsync,
//!    rename, directory fsync).
//!
//! ## The file
//!
//! ```text
//! magic "QSNAPSHT" | format u32 | header length u32 | header | store length u64 | store | crc32c u32
//! ```
//!
//! Integers are little-endian; the header ([`Header`]: protocol, cluster id and size, the node
//! that served it, index, term, key and session counts, creation time, quorate version) and the
//! store (`KvStore`, the same type every log protocol snapshots) are postcard-encoded; the CRC32C
//! (the storage crate's checksum) covers every byte before it. A file that is shorter or longer
//! than its lengths say, whose checksum fails, or that does not decode is refused with what is
//! wrong; nothing in reading it panics on any input (a test flips every byte of a small one).
//!
//! ## Restore
//!
//! [`restore_dir`] writes one node's data directory for a *new* cluster: the protocol's empty
//! durable state (term, votes and log at zero, the bootstrap membership of `--nodes`) with the
//! backed-up store as its snapshot at index 0, written through the same storage code a node
//! uses (`IDENTITY` with the new members, a fresh WAL, the checkpoint). Every member gets the
//! same record, so they agree on the empty log and elect a leader as a fresh cluster does; no
//! vote, term or membership of the old cluster is carried over (etcd's restore does the same
//! with a new cluster token). The store can be restored into another log protocol than the
//! one it came from: they all replicate the same `KvStore`.
//!
//! ## Deliberately left out
//!
//! The leaderless protocols (quorum, multi-primary) have no single store at a committed index
//! and refuse (see `ServedProtocol::applied_store`). A snapshot is held in memory (the copy,
//! its encoding, the reply); stores of several gigabytes want a streamed format. Client
//! sessions are kept in the backup (they are part of the store), which does no harm: a new
//! cluster's clients draw fresh ids.

use crate::served::ServedProtocol;
use crate::storage::{Options, Storage, StorageError};
use quorate_core::{KvStore, NodeId};
use quorate_protocols::multipaxos::MultiPaxos;
use quorate_protocols::multiprimary::MultiPrimary;
use quorate_protocols::primary_backup::Replica;
use quorate_protocols::quorum::Quorum;
use quorate_protocols::raft::Raft;
use quorate_protocols::zab::Zab;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// The first bytes of every snapshot file.
pub const MAGIC: &[u8; 8] = b"QSNAPSHT";
/// The format this build writes and reads. Format 2: the store carries per-key modification
/// revisions (`WATCH`), which a format-1 file lacks; format 1 is refused by name.
pub const FORMAT_VERSION: u32 = 2;
/// Magic, format, header length.
const PREFIX_BYTES: usize = 8 + 4 + 4;

/// What a snapshot file says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The protocol of the cluster it was taken from.
    pub protocol: String,
    pub cluster_id: String,
    /// Members of that cluster.
    pub cluster_size: u64,
    /// The node that served it (the leader, for the protocols with one).
    pub node: u64,
    /// The applied index of the copy (ZAB: the zxid as one number, epoch in the high half).
    pub index: u64,
    /// The term, epoch, view or round at that node when the copy was taken.
    pub term: u64,
    /// Keys in the store.
    pub keys: u64,
    /// Client sessions in the store.
    pub sessions: u64,
    /// When it was taken, in milliseconds since the Unix epoch (by the serving node's clock).
    pub created_unix_ms: u64,
    /// The quorate version that took it.
    pub quorate_version: String,
}

/// A snapshot file, checked and decoded.
#[derive(Clone, Debug)]
pub struct Backup {
    pub header: Header,
    pub store: KvStore,
}

/// Why a snapshot file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BackupError {
    #[error("not a quorate snapshot: it does not begin with {:?} (is it a data directory file, or another tool's backup?)", String::from_utf8_lossy(MAGIC))]
    NotASnapshot,
    #[error("snapshot format {found} is not one this quorate reads (it reads format {FORMAT_VERSION}); use the quorate version that wrote it")]
    Format { found: u32 },
    #[error("snapshot is truncated or damaged: it is {len} bytes, but its lengths say {expected}; take a new snapshot or use another copy")]
    Length { len: u64, expected: u64 },
    #[error("snapshot is damaged: its checksum is {stored:#010x} but its bytes sum to {computed:#010x}; take a new snapshot or use another copy")]
    Checksum { stored: u32, computed: u32 },
    #[error("snapshot passed its checksum but its {part} does not decode ({why}); was it written by another version of quorate?")]
    Decode { part: &'static str, why: String },
    #[error("snapshot header says {header} keys but the store holds {store}")]
    Keys { header: u64, store: u64 },
}

/// Encodes `store` with `header` (whose `keys` and `sessions` are filled in from `store`).
pub fn encode(mut header: Header, store: &KvStore) -> Vec<u8> {
    header.keys = store.len() as u64;
    header.sessions = store.sessions_len() as u64;
    let head = postcard::to_allocvec(&header).expect("a header always encodes");
    let body = postcard::to_allocvec(store).expect("a store always encodes");
    let mut out = Vec::with_capacity(PREFIX_BYTES + head.len() + 8 + body.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(head.len() as u32).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks and decodes a snapshot file's bytes.
pub fn decode(bytes: &[u8]) -> Result<Backup, BackupError> {
    let (head, body) = check(bytes)?;
    let header: Header = postcard::from_bytes(head).map_err(|e| BackupError::Decode {
        part: "header",
        why: e.to_string(),
    })?;
    let store: KvStore = postcard::from_bytes(body).map_err(|e| BackupError::Decode {
        part: "store",
        why: e.to_string(),
    })?;
    if header.keys != store.len() as u64 {
        return Err(BackupError::Keys {
            header: header.keys,
            store: store.len() as u64,
        });
    }
    Ok(Backup { header, store })
}

/// The header and store bytes of a file whose magic, format, lengths and checksum are right.
fn check(bytes: &[u8]) -> Result<(&[u8], &[u8]), BackupError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(BackupError::NotASnapshot);
    }
    let len = bytes.len() as u64;
    let short = |expected: u64| BackupError::Length { len, expected };
    let prefix = bytes
        .get(..PREFIX_BYTES)
        .ok_or(short(PREFIX_BYTES as u64))?;
    let found = u32::from_le_bytes(prefix[8..12].try_into().expect("4 bytes"));
    if found != FORMAT_VERSION {
        return Err(BackupError::Format { found });
    }
    let head_len = u64::from(u32::from_le_bytes(
        prefix[12..16].try_into().expect("4 bytes"),
    ));
    let body_at = PREFIX_BYTES as u64 + head_len;
    let body_len_bytes = bytes
        .get(body_at as usize..body_at as usize + 8)
        .ok_or(short(body_at + 8 + 4))?;
    let body_len = u64::from_le_bytes(body_len_bytes.try_into().expect("8 bytes"));
    let expected = (body_at + 8)
        .checked_add(body_len)
        .and_then(|n| n.checked_add(4))
        .ok_or(short(u64::MAX))?;
    if expected != len {
        return Err(short(expected));
    }
    let (covered, trailer) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes(trailer.try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(covered);
    if stored != computed {
        return Err(BackupError::Checksum { stored, computed });
    }
    let head = &bytes[PREFIX_BYTES..body_at as usize];
    let body = &bytes[body_at as usize + 8..bytes.len() - 4];
    Ok((head, body))
}

/// The protocols whose nodes keep one replicated store (those a backup can come from or be
/// restored into).
pub fn has_store(protocol: &str) -> Result<(), String> {
    let members = [NodeId(1)];
    let store = KvStore::default();
    by_name(protocol, |name| {
        fn probe<P: ServedProtocol>(name: &str, m: &[NodeId], s: KvStore) -> Result<(), String> {
            P::restored(name, m, s).map(drop)
        }
        match name {
            "raft" => probe::<Raft>(name, &members, store.clone()),
            "multipaxos" => probe::<MultiPaxos>(name, &members, store.clone()),
            "zab" => probe::<Zab>(name, &members, store.clone()),
            "primary-backup" | "chain" | "craq" => probe::<Replica>(name, &members, store.clone()),
            "quorum" => probe::<Quorum>(name, &members, store.clone()),
            "multiprimary" => probe::<MultiPrimary>(name, &members, store.clone()),
            _ => unreachable!("by_name checked the name"),
        }
    })
}

/// Runs `f` for a protocol name this build serves, or says which names it serves.
fn by_name<T>(protocol: &str, f: impl FnOnce(&str) -> Result<T, String>) -> Result<T, String> {
    if !crate::PROTOCOLS.contains(&protocol) {
        return Err(format!(
            "unknown protocol {protocol:?}; this build serves: {}",
            crate::PROTOCOLS.join(", ")
        ));
    }
    f(protocol)
}

/// Why a data directory could not be seeded.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not empty; restoring would mix the backup with the data there. Choose an empty or new directory, or pass --force to replace its contents (stop any node using it first)", dir.display())]
    NotEmpty { dir: PathBuf },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Protocol(String),
}

/// What [`restore_dir`] writes: one node of a new cluster.
pub struct Seed<'a> {
    /// The protocol the new cluster runs (any protocol with a store).
    pub protocol: &'a str,
    pub cluster_id: &'a str,
    pub id: NodeId,
    /// Every member of the new cluster, `id` among them.
    pub members: &'a [NodeId],
    pub store: &'a KvStore,
}

/// Writes `dir` as the data directory of `seed.id`, ready for `quorate serve` (see the module
/// docs). The directory is built beside `dir` and renamed into place, so a failure leaves no
/// half-written data directory. A non-empty `dir` is refused unless `force`, which replaces it
/// (refused while a node holds it).
pub fn restore_dir(seed: &Seed<'_>, dir: &Path, force: bool) -> Result<(), RestoreError> {
    assert!(seed.members.contains(&seed.id), "the node is a member");
    let records = by_name(seed.protocol, |name| {
        fn encoded<P: ServedProtocol>(
            name: &str,
            members: &[NodeId],
            store: KvStore,
        ) -> Result<Vec<Vec<u8>>, String> {
            let records = P::restored(name, members, store)?;
            Ok(records
                .iter()
                .map(|r| postcard::to_allocvec(r).expect("a record always encodes"))
                .collect())
        }
        let (m, s) = (seed.members, seed.store.clone());
        match name {
            "raft" => encoded::<Raft>(name, m, s),
            "multipaxos" => encoded::<MultiPaxos>(name, m, s),
            "zab" => encoded::<Zab>(name, m, s),
            "primary-backup" | "chain" | "craq" => encoded::<Replica>(name, m, s),
            "quorum" => encoded::<Quorum>(name, m, s),
            "multiprimary" => encoded::<MultiPrimary>(name, m, s),
            _ => unreachable!("by_name checked the name"),
        }
    })
    .map_err(RestoreError::Protocol)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RestoreError::Io { path, source }
    };
    // Held until the old contents are gone: refused while a node runs on the directory.
    let mut _lock = None;
    if !is_empty(dir).map_err(io(dir))? {
        if !force {
            return Err(RestoreError::NotEmpty {
                dir: dir.to_path_buf(),
            });
        }
        _lock = Some(crate::storage::lock_dir(dir)?);
    }
    let name = dir
        .file_name()
        .map_or("data".into(), |n| n.to_string_lossy().to_string());
    let staging = dir.with_file_name(format!(".{name}.restoring"));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    let options = storage_options(seed.protocol, seed.id, seed.cluster_id, seed.members);
    {
        let (mut storage, _, _) = Storage::open_with(&staging, &options)?;
        for record in &records {
            storage.checkpoint(record).map_err(io(&staging))?;
        }
    }
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    fs::rename(&staging, dir).map_err(io(dir))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::File::open(parent)
            .and_then(|f| f.sync_all())
            .map_err(io(parent))?;
    }
    Ok(())
}

/// True when `dir` does not exist or holds nothing.
fn is_empty(dir: &Path) -> std::io::Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// The cluster id a node's data directory was created for, read from its identity file (the
/// line [`storage_options`] writes); `None` if the directory holds no node yet.
pub fn recorded_cluster_id(node_dir: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(node_dir.join(quorate_storage::IDENTITY)).ok()?;
    let quoted = text.lines().next()?.rsplit_once(" of cluster ")?.1.trim();
    let id = quoted.strip_prefix('"')?.strip_suffix('"')?;
    Some(id.to_string())
}

/// How a node names itself in its data directory's `IDENTITY` (what it checks on every start).
pub(crate) fn storage_options(
    protocol: &str,
    id: NodeId,
    cluster_id: &str,
    members: &[NodeId],
) -> Options {
    let identity = format!("{protocol} node {} of cluster {cluster_id:?}", id.0);
    let members: Vec<String> = members.iter().map(|id| id.0.to_string()).collect();
    Options::new(identity, members.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorate_core::{ClientId, Command, Op};

    fn store(keys: usize) -> KvStore {
        let mut store = KvStore::default();
        for i in 0..keys {
            store.apply(&Command {
                client: ClientId(7),
                seq: i as u64 + 1,
                op: Op::Put {
                    key: format!("k{i}").into(),
                    value: format!("v{i}").into(),
                },
            });
        }
        store
    }

    fn header() -> Header {
        Header {
            protocol: "raft".into(),
            cluster_id: "quorate".into(),
            cluster_size: 3,
            node: 2,
            index: 41,
            term: 5,
            keys: 0,
            sessions: 0,
            created_unix_ms: 1,
            quorate_version: "test".into(),
        }
    }

    #[test]
    fn a_snapshot_decodes_to_what_was_encoded() {
        let original = store(20);
        let bytes = encode(header(), &original);
        let backup = decode(&bytes).unwrap();
        assert_eq!(backup.store, original);
        assert_eq!((backup.header.keys, backup.header.sessions), (20, 1));
        assert_eq!((backup.header.index, backup.header.term), (41, 5));
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_refused_without_panicking() {
        let bytes = encode(header(), &store(3));
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x20;
            assert!(decode(&bad).is_err(), "a flipped byte at {at} was accepted");
        }
        for len in 0..bytes.len() {
            let err = decode(&bytes[..len]).unwrap_err();
            assert!(
                matches!(err, BackupError::NotASnapshot | BackupError::Length { .. }),
                "cut to {len}: {err}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(BackupError::Length { .. })));
    }

    #[test]
    fn a_damaged_body_is_reported_as_a_checksum_failure() {
        let mut bytes = encode(header(), &store(3));
        let middle = bytes.len() / 2 + 8;
        bytes[middle] ^= 1;
        assert!(matches!(decode(&bytes), Err(BackupError::Checksum { .. })));
        let other_format = {
            let mut b = encode(header(), &store(1));
            b[8] = 9;
            b
        };
        assert_eq!(
            decode(&other_format).unwrap_err(),
            BackupError::Format { found: 9 }
        );
        let mut format_one = encode(header(), &store(1));
        format_one[8] = 1;
        let err = decode(&format_one).unwrap_err();
        assert_eq!(err, BackupError::Format { found: 1 });
        assert!(err.to_string().contains("it reads format 2"), "{err}");
    }

    #[test]
    fn the_leaderless_protocols_refuse_and_say_why() {
        for protocol in [
            "raft",
            "multipaxos",
            "zab",
            "primary-backup",
            "chain",
            "craq",
        ] {
            assert_eq!(has_store(protocol), Ok(()), "{protocol}");
        }
        for protocol in ["quorum", "multiprimary"] {
            let why = has_store(protocol).unwrap_err();
            assert!(why.contains("no single replicated store"), "{why}");
        }
        assert!(has_store("paxos").unwrap_err().contains("unknown protocol"));
    }

    #[test]
    fn restore_refuses_a_non_empty_directory_unless_forced() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("n1");
        let members = [NodeId(1), NodeId(2), NodeId(3)];
        let data = store(5);
        let seed = Seed {
            protocol: "raft",
            cluster_id: "restored",
            id: NodeId(1),
            members: &members,
            store: &data,
        };
        restore_dir(&seed, &dir, false).unwrap();
        let identity = fs::read_to_string(dir.join("IDENTITY")).unwrap();
        assert_eq!(recorded_cluster_id(&dir).as_deref(), Some("restored"));
        assert!(identity.contains("members 1,2,3"), "{identity}");
        let err = restore_dir(&seed, &dir, false).unwrap_err();
        assert!(matches!(err, RestoreError::NotEmpty { .. }), "{err}");
        restore_dir(&seed, &dir, true).unwrap();
        // What a node opening the directory recovers: the checkpoint, with the store.
        let options = storage_options("raft", NodeId(1), "restored", &members);
        let (_, payloads, _) = Storage::open_with(&dir, &options).unwrap();
        assert_eq!(payloads.len(), 1);
        let record: quorate_protocols::raft::Record = postcard::from_bytes(&payloads[0]).unwrap();
        let quorate_protocols::raft::Record::Checkpoint { snapshot, term, .. } = record else {
            panic!("not a checkpoint: {record:?}");
        };
        assert_eq!((term, snapshot.last_index), (0, 0));
        assert_eq!(snapshot.state, data);
        let quorum = Seed {
            protocol: "quorum",
            ..seed
        };
        let err = restore_dir(&quorum, &root.path().join("q1"), false).unwrap_err();
        assert!(
            err.to_string().contains("no single replicated store"),
            "{err}"
        );
    }
}
