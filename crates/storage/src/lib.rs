//! Durable storage of one node: a snapshot and a write-ahead log, and the rules that recover
//! them after a crash. Pure: every byte goes through a [`Disk`], which the server implements
//! on files with fsync and the simulator in memory with faults ([`MemDisk`]), so the format
//! and recovery code that real nodes run is the code the simulator checks.
//!
//! ```text
//! IDENTITY                 protocol, cluster, node id and the cluster's members
//! snapshot                 the latest checkpoint record, with the WAL generation it starts
//! wal-<generation>.log     every record persisted after that checkpoint, in batches
//! ```
//!
//! ## Formats (WAL format 2, snapshot format 4; all integers little-endian)
//!
//! - WAL: a 32-byte header `"QRWAL002" | generation u64 | chunk u64 | 0u32 | crc32c u32`,
//!   then batches. The file is preallocated in whole *chunks* of zeros (its length is always a
//!   multiple of `chunk`, changed before the data in the new chunk is written), so a file that
//!   was cut short is recognised as such, and never-written space reads as zeros.
//! - Batch: header `BATCH u32 | number u64 | payload length u32 | records u32 | crc32c(payload)
//!   u32 | 0u32 | crc32c(header) u32`, the payload (`length u32 | bytes` per record), and a
//!   trailer `start offset u64 | crc32c(header) u32 | "QEND"`. One batch is one group commit:
//!   written with one write and covered by one fsync; nothing in it is acknowledged before.
//! - Snapshot: `"QRSNAP04" | generation u64 | length u64 | crc32c u32 | payload`, written to a
//!   temporary file, fsynced and renamed into place.
//!
//! ## Recovery: a torn write or damage?
//!
//! Batches are read while valid. At the first offset that does not hold a valid batch:
//!
//! - only zeros follow: the clean end of the log;
//! - a batch whose end marker was not written (a zero where its final `D` goes), or unreadable
//!   bytes with no end marker pointing back at them, and no valid batch anywhere after: a *torn
//!   write*, the unsynced end of a write cut short by a crash. Nothing in it was acknowledged
//!   (a batch is acknowledged only after its fsync, which completes its write); it is zeroed;
//! - anything else (the end marker is present but a checksum fails, or a valid batch follows):
//!   a batch that was written completely and then damaged. It may have been acknowledged, or
//!   hold a vote, so the node refuses to start, naming the file, the offset and what to do.
//!
//! A missing WAL or snapshot where `IDENTITY` says one must exist, a file cut to a length that
//! is not a whole number of chunks, an unreadable file, an older format, or a different
//! membership than the one the directory was created for also refuse to start. A fault model
//! this does not cover: a torn write whose end marker reached the disk before its beginning
//! (disks may reorder sectors) is refused as damage, a false alarm on the safe side.
//!
//! Nothing here panics on the contents of a file: every length is checked before it is used.

#[doc(hidden)]
pub mod fuzzing;
mod mem;
#[cfg(test)]
mod tests;

pub use mem::MemDisk;

use std::io;

/// The few file operations storage needs, on files named relative to one directory.
///
/// `create`, `rename` and `remove` are durable when they return (the server fsyncs the
/// directory); `write` and `set_len` are durable only after `sync` of that file.
pub trait Disk: std::fmt::Debug {
    /// The names of the files in the directory.
    fn list(&mut self) -> io::Result<Vec<String>>;
    /// The whole content of a file (`NotFound` if there is none).
    fn read(&mut self, name: &str) -> io::Result<Vec<u8>>;
    /// Creates an empty file, replacing any file of that name.
    fn create(&mut self, name: &str) -> io::Result<()>;
    fn write(&mut self, name: &str, offset: u64, data: &[u8]) -> io::Result<()>;
    fn set_len(&mut self, name: &str, len: u64) -> io::Result<()>;
    fn sync(&mut self, name: &str) -> io::Result<()>;
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()>;
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// How to name the file in a message to an operator (a full path on a real disk).
    fn describe(&self, name: &str) -> String;
}

const WAL_MAGIC: &[u8; 8] = b"QRWAL002";
const OLD_WAL_MAGIC: &[u8; 8] = b"QRWAL001";
/// Snapshot format 3: the payload's KV store carries expiry deadlines (`KvStore` gained fields,
/// which postcard cannot skip), so a format-2 snapshot would not decode; it is refused by name.
/// Snapshot format 4: the KV store also carries per-key modification revisions (what `WATCH`
/// compares, see `quorate_core::kv::txn`), so a format-3 snapshot would not decode either.
const SNAPSHOT_MAGIC: &[u8; 8] = b"QRSNAP04";
const OLD_SNAPSHOT_MAGICS: [(&[u8; 8], &str); 3] =
    [(b"QRSNAP01", "1"), (b"QRSNAP02", "2"), (b"QRSNAP03", "3")];
const WAL_HEADER_LEN: u64 = 32;
const BATCH_MAGIC: u32 = 0x5142_5432; // "2TBQ"
const BATCH_HEADER_LEN: usize = 32;
const TRAILER_LEN: usize = 16;
const END_MARKER: &[u8; 4] = b"QEND";
const SNAPSHOT_HEADER_LEN: usize = 28;
/// The largest record the WAL accepts.
pub const RECORD_MAX: usize = 1 << 30;
/// Records are split into batches of at most this many payload bytes.
const BATCH_BYTES_MAX: usize = 1 << 30;
pub const IDENTITY: &str = "IDENTITY";
pub const SNAPSHOT: &str = "snapshot";
/// The default preallocation unit of a WAL on a real disk.
pub const CHUNK_DEFAULT: u64 = 1 << 20;

/// Storage that cannot be used. Every message names the file and what an operator can do.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{file}: {source}")]
    Io { file: String, source: io::Error },
    #[error("{file} is damaged: {what} at byte offset {offset}. {hint}")]
    Corrupt {
        file: String,
        offset: u64,
        what: String,
        hint: String,
    },
    #[error("{file} is missing: {what}. {hint}")]
    Missing {
        file: String,
        what: String,
        hint: String,
    },
    #[error("data directory {dir} belongs to {found}, not to {expected}; give each node its own --data-dir")]
    Identity {
        dir: String,
        found: String,
        expected: String,
    },
    #[error("data directory {dir} was created for a cluster of members {found}, but this node was started with members {expected}. Changing the membership by restarting with another peer list (or `quorate cluster --nodes N`) is unsafe: two majorities that do not overlap can each commit, and acknowledged writes can be lost. Keep the original peer list, change membership online (`quorate member add/remove`; a node that joined with --join must keep it), or start the new cluster with a fresh --data-dir")]
    Membership {
        dir: String,
        found: String,
        expected: String,
    },
    #[error("{file} was written by an older version of quorate (storage format {found}); this version reads format {reads}. Start the node with a fresh --data-dir and let it rejoin (only if a majority of the cluster is healthy), or run the older version")]
    OldFormat {
        file: String,
        found: &'static str,
        reads: &'static str,
    },
}

/// What a node is, for `IDENTITY`.
#[derive(Clone, Debug)]
pub struct Options {
    /// A one-line description such as `raft node 1 of cluster "quorate"`.
    pub identity: String,
    /// The cluster's members as the node was started with them, such as `1,2,3`.
    pub members: String,
    /// The WAL's preallocation unit (recorded in each WAL header; a fresh WAL uses this one).
    pub chunk: u64,
    /// A deliberately broken recovery that drops a damaged last batch as if it were a torn
    /// write (the bug this crate's rules exist to prevent), for the simulator's test. Honoured
    /// only when the crate is built with its `bugs` feature, which the binary never is.
    pub drop_damaged_tail: bool,
}

impl Options {
    pub fn new(identity: impl Into<String>, members: impl Into<String>) -> Options {
        Options {
            identity: identity.into(),
            members: members.into(),
            chunk: CHUNK_DEFAULT,
            drop_damaged_tail: false,
        }
    }

    fn drop_damaged_tail(&self) -> bool {
        #[cfg(feature = "bugs")]
        {
            self.drop_damaged_tail
        }
        #[cfg(not(feature = "bugs"))]
        {
            false
        }
    }
}

/// What recovery found, for the start-up log line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub generation: u64,
    pub snapshot_bytes: Option<u64>,
    pub wal_records: usize,
    pub wal_batches: u64,
    /// A torn write that was zeroed: (offset it started at, bytes).
    pub torn: Option<(u64, u64)>,
    /// True when the directory was empty and has just been set up.
    pub fresh: bool,
}

/// An opened store, the durable record payloads in the order they were persisted (the
/// snapshot first), and what recovery found.
pub type Opened<D> = (Store<D>, Vec<Vec<u8>>, RecoveryReport);

/// The open storage of one node: append records, write them as a batch, sync, checkpoint.
#[derive(Debug)]
pub struct Store<D: Disk> {
    disk: D,
    generation: u64,
    wal: String,
    chunk: u64,
    /// Where the next batch goes, and the file's (preallocated) length.
    end: u64,
    len: u64,
    /// The number of the next batch.
    seq: u64,
    /// The byte range of the last batch written.
    last_batch: Option<(u64, u64)>,
    /// Records appended since the last write, each framed as `length u32 | bytes`.
    pending: Vec<u8>,
    pending_records: u32,
    records: u64,
}

fn wal_name(generation: u64) -> String {
    format!("wal-{generation:016}.log")
}

fn wal_generation(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

const RESTORE_HINT: &str = "This file is written only through a rename after an fsync, so the damage is not a torn write. Restore the directory from a backup, or move it away and let the node rejoin empty (only if a majority of the cluster is healthy: an emptied node may have voted or acknowledged entries)";

fn damaged_log_hint(file: &str) -> String {
    format!("The batch was written completely and fsynced, so it may hold acknowledged writes or a vote: the node will not start without it. If the other nodes of the cluster are healthy, move this node's data directory away and let it rejoin empty (it may have voted in the current term: wait for the cluster to elect a leader in a later term first), or restore {file} from a backup")
}

impl<D: Disk> Store<D> {
    /// Opens (or sets up) the storage on `disk`, returning the durable record payloads in the
    /// order they were persisted (the snapshot first).
    pub fn open(mut disk: D, options: &Options) -> Result<Opened<D>, StorageError> {
        let io = |disk: &D, name: &str| {
            let file = disk.describe(name);
            move |source| StorageError::Io { file, source }
        };
        let names = disk.list().map_err(io(&disk, "."))?;
        for name in names.iter().filter(|n| n.ends_with(".tmp")) {
            disk.remove(name).map_err(io(&disk, name))?;
        }
        let mut report = RecoveryReport::default();
        let mut payloads = Vec::new();
        let has = |name: &str| names.iter().any(|n| n == name);
        if has(SNAPSHOT) {
            let bytes = disk.read(SNAPSHOT).map_err(io(&disk, SNAPSHOT))?;
            let (generation, payload) = parse_snapshot(&bytes, &disk.describe(SNAPSHOT))?;
            report.generation = generation;
            report.snapshot_bytes = Some(payload.len() as u64);
            payloads.push(payload);
        }
        let generation = report.generation;
        let mut wals: Vec<u64> = names.iter().filter_map(|n| wal_generation(n)).collect();
        wals.sort_unstable();

        if !has(IDENTITY) {
            // A fresh directory, or one whose set-up was interrupted (the WAL is created
            // before IDENTITY). Anything holding data without IDENTITY is refused.
            for &g in &wals {
                let name = wal_name(g);
                let bytes = disk.read(&name).map_err(io(&disk, &name))?;
                if report.snapshot_bytes.is_some() || !wal_is_empty(&bytes) {
                    return Err(StorageError::Missing {
                        file: disk.describe(IDENTITY),
                        what: "the directory holds a write-ahead log or a snapshot but no IDENTITY, which is written when the directory is set up".into(),
                        hint: "Restore IDENTITY from a backup (its first line names the protocol, node and cluster, its second the members), or start the node with a fresh --data-dir".into(),
                    });
                }
                disk.remove(&name).map_err(io(&disk, &name))?;
            }
            if report.snapshot_bytes.is_some() {
                return Err(StorageError::Missing {
                    file: disk.describe(IDENTITY),
                    what: "the directory holds a snapshot but no IDENTITY".into(),
                    hint:
                        "Restore IDENTITY from a backup, or start the node with a fresh --data-dir"
                            .into(),
                });
            }
            let wal = create_wal(&mut disk, 0, options.chunk)?;
            let content = format!("{}\nmembers {}\n", options.identity, options.members);
            let write = |disk: &mut D| -> io::Result<()> {
                let tmp = "IDENTITY.tmp";
                disk.create(tmp)?;
                disk.write(tmp, 0, content.as_bytes())?;
                disk.sync(tmp)?;
                disk.rename(tmp, IDENTITY)
            };
            write(&mut disk).map_err(io(&disk, IDENTITY))?;
            report.fresh = true;
            let store = Store::new(disk, 0, wal, options.chunk, WAL_HEADER_LEN, options.chunk);
            return Ok((store, payloads, report));
        }

        let identity = disk.read(IDENTITY).map_err(io(&disk, IDENTITY))?;
        check_identity(&disk, &identity, options)?;

        for &g in &wals {
            let name = wal_name(g);
            if g < generation {
                disk.remove(&name).map_err(io(&disk, &name))?;
            } else if g == generation + 1 {
                // Created before the snapshot that would have used it was renamed into place.
                let bytes = disk.read(&name).map_err(io(&disk, &name))?;
                if !wal_is_empty(&bytes) {
                    return Err(future_wal(&disk, &name, g, generation));
                }
                disk.remove(&name).map_err(io(&disk, &name))?;
            } else if g > generation {
                return Err(future_wal(&disk, &name, g, generation));
            }
        }
        let wal = wal_name(generation);
        if !wals.contains(&generation) {
            let what = if generation == 0 {
                "IDENTITY says this directory holds a node's state, but its write-ahead log is gone; starting without it would forget the node's votes and log entries".to_string()
            } else {
                format!("the snapshot is of generation {generation}, but the write-ahead log of that generation is gone; starting without it would forget the node's votes and the entries after the snapshot")
            };
            return Err(StorageError::Missing {
                file: disk.describe(&wal),
                what,
                hint: "Restore it from a backup, or move the data directory away and let the node rejoin empty (only if a majority of the cluster is healthy, and after the cluster has elected a leader in a later term: the node may have voted)".into(),
            });
        }
        let bytes = disk.read(&wal).map_err(io(&disk, &wal))?;
        let file = disk.describe(&wal);
        let scan = scan_wal(&bytes, generation, &file, options.drop_damaged_tail())?;
        if let Some((offset, length)) = scan.torn {
            let zero = |disk: &mut D| -> io::Result<()> {
                disk.write(&wal, offset, &vec![0; length as usize])?;
                disk.sync(&wal)
            };
            zero(&mut disk).map_err(io(&disk, &wal))?;
        }
        report.wal_records = scan.payloads.len();
        report.wal_batches = scan.seq;
        report.torn = scan.torn;
        payloads.extend(scan.payloads);
        let mut store = Store::new(
            disk,
            generation,
            wal,
            scan.chunk,
            scan.end,
            bytes.len() as u64,
        );
        store.seq = scan.seq;
        store.last_batch = scan.last_batch;
        store.records = payloads.len() as u64;
        Ok((store, payloads, report))
    }

    fn new(disk: D, generation: u64, wal: String, chunk: u64, end: u64, len: u64) -> Store<D> {
        Store {
            disk,
            generation,
            wal,
            chunk,
            end,
            len,
            seq: 0,
            last_batch: None,
            pending: Vec::new(),
            pending_records: 0,
            records: 0,
        }
    }

    /// Buffers one record; it is durable after the next [`Store::write`] and [`Store::sync`].
    pub fn append(&mut self, payload: &[u8]) {
        assert!(payload.len() <= RECORD_MAX, "record over RECORD_MAX");
        if self.pending.len() + payload.len() + 4 > BATCH_BYTES_MAX {
            self.write_batch().expect("writing an oversized batch");
        }
        self.pending
            .extend_from_slice(&(payload.len() as u32).to_le_bytes());
        self.pending.extend_from_slice(payload);
        self.pending_records += 1;
    }

    /// Writes the buffered records as one batch, without syncing. Returns the bytes written.
    pub fn write(&mut self) -> io::Result<usize> {
        if self.pending_records == 0 {
            return Ok(0);
        }
        self.write_batch()
    }

    fn write_batch(&mut self) -> io::Result<usize> {
        let payload = std::mem::take(&mut self.pending);
        let records = std::mem::take(&mut self.pending_records);
        let batch = encode_batch(self.seq, self.end, &payload, records);
        let end = self.end + batch.len() as u64;
        if end > self.len {
            let len = end.div_ceil(self.chunk) * self.chunk;
            self.disk.set_len(&self.wal, len)?;
            self.len = len;
        }
        self.disk.write(&self.wal, self.end, &batch)?;
        self.records += u64::from(records);
        self.last_batch = Some((self.end, end));
        self.end = end;
        self.seq += 1;
        Ok(batch.len())
    }

    /// Makes everything written durable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.disk.sync(&self.wal)
    }

    /// Writes the buffered records and fsyncs them. Returns the bytes written.
    pub fn commit(&mut self) -> io::Result<usize> {
        let written = self.write()?;
        self.sync()?;
        Ok(written)
    }

    /// Makes `payload` (a checkpoint record) the new snapshot and starts a fresh WAL. Records
    /// buffered before it are dropped: the checkpoint stands for them. The new WAL is created
    /// before the snapshot is renamed into place, so a snapshot never lacks its WAL.
    pub fn checkpoint(&mut self, payload: &[u8]) -> io::Result<()> {
        self.pending.clear();
        self.pending_records = 0;
        let generation = self.generation + 1;
        let new_wal =
            create_wal(&mut self.disk, generation, self.chunk).map_err(io::Error::other)?;
        let mut header = Vec::with_capacity(SNAPSHOT_HEADER_LEN + payload.len());
        header.extend_from_slice(SNAPSHOT_MAGIC);
        header.extend_from_slice(&generation.to_le_bytes());
        header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&header), payload);
        header.extend_from_slice(&crc.to_le_bytes());
        header.extend_from_slice(payload);
        let tmp = "snapshot.tmp";
        self.disk.create(tmp)?;
        self.disk.write(tmp, 0, &header)?;
        self.disk.sync(tmp)?;
        self.disk.rename(tmp, SNAPSHOT)?;
        let old = std::mem::replace(&mut self.wal, new_wal);
        self.generation = generation;
        self.end = WAL_HEADER_LEN;
        self.len = self.chunk;
        self.seq = 0;
        self.last_batch = None;
        self.records = 1;
        // Recovery deletes obsolete WALs too, so a crash before this line is harmless.
        self.disk.remove(&old)
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Records on disk that recovery must return: the snapshot's and those of every batch
    /// written since (synced or not).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The current WAL's name.
    pub fn wal(&self) -> &str {
        &self.wal
    }

    /// The byte range of the last batch written to the current WAL, if any.
    pub fn last_batch(&self) -> Option<(u64, u64)> {
        self.last_batch
    }

    pub fn disk(&self) -> &D {
        &self.disk
    }

    pub fn disk_mut(&mut self) -> &mut D {
        &mut self.disk
    }

    pub fn into_disk(self) -> D {
        self.disk
    }
}

fn future_wal<D: Disk>(disk: &D, name: &str, found: u64, generation: u64) -> StorageError {
    StorageError::Missing {
        file: disk.describe(SNAPSHOT),
        what: format!("{} is a log of generation {found}, but the snapshot is of generation {generation}: the snapshot is missing or was replaced by an older one", disk.describe(name)),
        hint: "Restore the snapshot from a backup, or move the data directory away and let the node rejoin empty (only if a majority of the cluster is healthy)".into(),
    }
}

fn check_identity<D: Disk>(
    disk: &D,
    content: &[u8],
    options: &Options,
) -> Result<(), StorageError> {
    let text = String::from_utf8_lossy(content);
    let mut lines = text.lines();
    let found = lines.next().unwrap_or("").trim();
    if found != options.identity {
        return Err(StorageError::Identity {
            dir: disk.describe("."),
            found: found.to_string(),
            expected: options.identity.clone(),
        });
    }
    match lines.next().and_then(|l| l.trim().strip_prefix("members ")) {
        None => Err(StorageError::OldFormat {
            file: disk.describe(IDENTITY),
            found: "1",
            reads: "2",
        }),
        Some(members) if members != options.members => Err(StorageError::Membership {
            dir: disk.describe("."),
            found: members.to_string(),
            expected: options.members.clone(),
        }),
        Some(_) => Ok(()),
    }
}

fn create_wal<D: Disk>(disk: &mut D, generation: u64, chunk: u64) -> Result<String, StorageError> {
    let name = wal_name(generation);
    let tmp = format!("{name}.tmp");
    let mut header = Vec::with_capacity(WAL_HEADER_LEN as usize);
    header.extend_from_slice(WAL_MAGIC);
    header.extend_from_slice(&generation.to_le_bytes());
    header.extend_from_slice(&chunk.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    let crc = crc32c::crc32c(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    let write = |disk: &mut D| -> io::Result<()> {
        disk.create(&tmp)?;
        disk.set_len(&tmp, chunk)?;
        disk.write(&tmp, 0, &header)?;
        disk.sync(&tmp)?;
        disk.rename(&tmp, &name)
    };
    write(disk).map_err(|source| StorageError::Io {
        file: disk.describe(&name),
        source,
    })?;
    Ok(name)
}

fn encode_batch(seq: u64, start: u64, payload: &[u8], records: u32) -> Vec<u8> {
    let mut batch = Vec::with_capacity(BATCH_HEADER_LEN + payload.len() + TRAILER_LEN);
    batch.extend_from_slice(&BATCH_MAGIC.to_le_bytes());
    batch.extend_from_slice(&seq.to_le_bytes());
    batch.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    batch.extend_from_slice(&records.to_le_bytes());
    batch.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    batch.extend_from_slice(&0u32.to_le_bytes());
    let header_crc = crc32c::crc32c(&batch);
    batch.extend_from_slice(&header_crc.to_le_bytes());
    batch.extend_from_slice(payload);
    batch.extend_from_slice(&start.to_le_bytes());
    batch.extend_from_slice(&header_crc.to_le_bytes());
    batch.extend_from_slice(END_MARKER);
    batch
}

fn parse_snapshot(bytes: &[u8], file: &str) -> Result<(u64, Vec<u8>), StorageError> {
    let corrupt = |offset, what: &str| StorageError::Corrupt {
        file: file.to_string(),
        offset,
        what: what.to_string(),
        hint: RESTORE_HINT.into(),
    };
    if let Some((_, found)) = OLD_SNAPSHOT_MAGICS
        .iter()
        .find(|(magic, _)| bytes.len() >= 8 && &bytes[..8] == *magic)
    {
        return Err(StorageError::OldFormat {
            file: file.to_string(),
            found,
            reads: "4",
        });
    }
    if bytes.len() < SNAPSHOT_HEADER_LEN || &bytes[..8] != SNAPSHOT_MAGIC {
        return Err(corrupt(0, "not a quorate snapshot (bad header)"));
    }
    let generation = u64_at(bytes, 8);
    let length = u64_at(bytes, 16);
    let stored = u32_at(bytes, 24);
    let payload = &bytes[SNAPSHOT_HEADER_LEN..];
    if length != payload.len() as u64 {
        let what = format!(
            "header says {length} bytes of payload, file holds {}",
            payload.len()
        );
        return Err(corrupt(16, &what));
    }
    let crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[..24]), payload);
    if crc != stored {
        return Err(corrupt(24, "checksum mismatch"));
    }
    Ok((generation, payload.to_vec()))
}

/// True when a WAL holds no batch (only its header and zeros, or nothing valid at all).
fn wal_is_empty(bytes: &[u8]) -> bool {
    bytes.len() < WAL_HEADER_LEN as usize
        || bytes[WAL_HEADER_LEN as usize..].iter().all(|b| *b == 0)
}

/// A WAL, read.
struct Scan {
    payloads: Vec<Vec<u8>>,
    chunk: u64,
    /// Where the next batch goes.
    end: u64,
    /// Batches read (the number of the next one).
    seq: u64,
    last_batch: Option<(u64, u64)>,
    torn: Option<(u64, u64)>,
}

/// What is at an offset where a batch may start.
enum At {
    Batch {
        end: usize,
        records: Vec<Vec<u8>>,
    },
    /// Only zeros follow.
    End,
    /// A write that never completed.
    Torn,
    Damaged(String),
}

/// A valid batch header at `x`: its number and total length.
fn header_at(bytes: &[u8], x: usize) -> Option<(u64, usize)> {
    let header = bytes.get(x..x.checked_add(BATCH_HEADER_LEN)?)?;
    if u32_at(header, 0) != BATCH_MAGIC || crc32c::crc32c(&header[..28]) != u32_at(header, 28) {
        return None;
    }
    let length = u32_at(header, 12) as usize;
    Some((u64_at(header, 4), BATCH_HEADER_LEN + length + TRAILER_LEN))
}

fn batch_at(bytes: &[u8], x: usize, seq: u64) -> At {
    let header = header_at(bytes, x);
    // (Checked only without a valid header: scanning to the end at every batch is quadratic.)
    if header.is_none() && bytes[x..].iter().all(|b| *b == 0) {
        return At::End;
    }
    let Some((found, total)) = header else {
        // The header is unreadable: fully written and damaged if an end marker points back
        // here (the marker is written last), else a write cut short.
        let points_back = (x + 1..bytes.len().saturating_sub(TRAILER_LEN - 1))
            .any(|p| &bytes[p + 12..p + 16] == END_MARKER && u64_at(bytes, p) == x as u64);
        return if points_back {
            At::Damaged(format!(
                "batch {} has a damaged header, but its end marker was written",
                seq + 1
            ))
        } else {
            At::Torn
        };
    };
    if found != seq {
        return At::Damaged(format!("batch number {found} where batch {seq} belongs"));
    }
    let Some(end) = x.checked_add(total).filter(|end| *end <= bytes.len()) else {
        return At::Damaged(format!(
            "batch {} claims {total} bytes, beyond the end of the file",
            seq + 1
        ));
    };
    let trailer = &bytes[end - TRAILER_LEN..end];
    if trailer[15] == 0 {
        // The write stopped before the end marker's last byte (which no single flipped bit
        // can zero: none of the marker's bytes has just one bit set).
        return At::Torn;
    }
    let header = &bytes[x..x + BATCH_HEADER_LEN];
    let payload = &bytes[x + BATCH_HEADER_LEN..end - TRAILER_LEN];
    let trailer_ok = &trailer[12..16] == END_MARKER
        && u64_at(trailer, 0) == x as u64
        && u32_at(trailer, 8) == u32_at(header, 28);
    if !trailer_ok || crc32c::crc32c(payload) != u32_at(header, 20) {
        return At::Damaged(format!(
            "batch {} was written completely (its end marker is present) but fails its checksum",
            seq + 1
        ));
    }
    let count = u32_at(header, 16) as usize;
    let mut records = Vec::with_capacity(count.min(payload.len() / 4));
    let mut at = 0;
    for _ in 0..count {
        let Some(length) = payload.get(at..at + 4).map(|l| u32_at(l, 0) as usize) else {
            return At::Damaged(format!("batch {} has a bad record length", seq + 1));
        };
        let Some(record) = payload.get(at + 4..at + 4 + length) else {
            return At::Damaged(format!("batch {} has a bad record length", seq + 1));
        };
        records.push(record.to_vec());
        at += 4 + length;
    }
    if at != payload.len() {
        return At::Damaged(format!("batch {} has bytes after its records", seq + 1));
    }
    At::Batch { end, records }
}

/// Reads a WAL's batches, telling a torn write (zeroed by the caller) from damage (refused).
fn scan_wal(
    bytes: &[u8],
    generation: u64,
    file: &str,
    drop_damaged_tail: bool,
) -> Result<Scan, StorageError> {
    let corrupt = |offset: u64, what: String, hint: String| StorageError::Corrupt {
        file: file.to_string(),
        offset,
        what,
        hint,
    };
    if bytes.len() >= 8 && &bytes[..8] == OLD_WAL_MAGIC {
        return Err(StorageError::OldFormat {
            file: file.to_string(),
            found: "1",
            reads: "2",
        });
    }
    let header_ok = bytes.len() >= WAL_HEADER_LEN as usize
        && &bytes[..8] == WAL_MAGIC
        && crc32c::crc32c(&bytes[..28]) == u32_at(bytes, 28);
    if !header_ok {
        let what = "not a quorate write-ahead log (bad header)".to_string();
        return Err(corrupt(0, what, RESTORE_HINT.into()));
    }
    let found = u64_at(bytes, 8);
    if found != generation {
        let what = format!("header says generation {found}, file name says {generation}");
        return Err(corrupt(8, what, RESTORE_HINT.into()));
    }
    let chunk = u64_at(bytes, 16);
    if chunk == 0 || !(bytes.len() as u64).is_multiple_of(chunk) {
        let what = format!("the file is {} bytes long, not a whole number of its {chunk}-byte allocation units: it was cut short (its length only ever grows by whole units, before data is written into them)", bytes.len());
        return Err(corrupt(bytes.len() as u64, what, damaged_log_hint(file)));
    }
    let mut scan = Scan {
        payloads: Vec::new(),
        chunk,
        end: WAL_HEADER_LEN,
        seq: 0,
        last_batch: None,
        torn: None,
    };
    let mut x = WAL_HEADER_LEN as usize;
    loop {
        match batch_at(bytes, x, scan.seq) {
            At::Batch { end, records } => {
                scan.payloads.extend(records);
                scan.last_batch = Some((x as u64, end as u64));
                scan.seq += 1;
                x = end;
            }
            At::End => break,
            At::Torn => {
                if let Some(p) = (x + 1..bytes.len()).find(|p| header_at(bytes, *p).is_some()) {
                    let what = format!(
                        "batch {} is unreadable but a valid batch follows at offset {p}, so this is not a torn write",
                        scan.seq + 1
                    );
                    return Err(corrupt(x as u64, what, damaged_log_hint(file)));
                }
                let last = bytes.iter().rposition(|b| *b != 0).expect("not all zero");
                scan.torn = Some((x as u64, (last + 1 - x) as u64));
                break;
            }
            At::Damaged(what) => {
                let later = (x + 1..bytes.len()).any(|p| header_at(bytes, p).is_some());
                if drop_damaged_tail && !later {
                    // The bug: treat the damaged last batch as a torn write.
                    let last = bytes.iter().rposition(|b| *b != 0).expect("not all zero");
                    scan.torn = Some((x as u64, (last + 1 - x) as u64));
                    break;
                }
                return Err(corrupt(x as u64, what, damaged_log_hint(file)));
            }
        }
    }
    scan.end = x as u64;
    Ok(scan)
}
