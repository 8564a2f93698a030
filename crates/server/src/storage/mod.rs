//! Durable storage: a snapshot and a write-ahead log in one directory.
//!
//! ```text
//! DIR/IDENTITY                    protocol, cluster id, node id (a directory serves one node)
//! DIR/snapshot                    the latest checkpoint record, with the WAL generation it starts
//! DIR/wal-<generation>.log        every record persisted after that checkpoint, in order
//! ```
//!
//! ## Formats (all integers little-endian)
//!
//! - WAL file: header `"QRWAL001" | generation u64 | crc32c(previous 16 bytes) u32`, then
//!   records `length u32 | crc32c(length bytes ++ payload) u32 | payload`. The checksum covers
//!   the length, so a flipped length bit is caught rather than followed.
//! - Snapshot: `"QRSNAP01" | generation u64 | length u64 | crc32c(previous 24 bytes ++ payload)
//!   u32 | payload`.
//!
//! ## Writing
//!
//! Records are buffered and written with one `write` and one `fdatasync` per batch (group
//! commit, driven by [`Persister`]). A checkpoint record (`Durable::is_checkpoint`) replaces
//! everything before it: it is written to `snapshot.tmp`, fsynced, renamed over `snapshot`,
//! the directory is fsynced, and a fresh WAL of the next generation replaces the old one (also
//! created under a temporary name and renamed). A crash between those steps leaves either the
//! old snapshot with the old WAL, or the new snapshot with a WAL of an older generation, which
//! recovery recognizes as obsolete and deletes.
//!
//! ## Recovery
//!
//! 1. The snapshot, if any, must be intact (it was renamed into place only after its fsync):
//!    any damage refuses to start.
//! 2. WAL records are read until the first one that is incomplete or fails its checksum. If no
//!    valid record can be found anywhere after it, the damage is a *torn tail*: the unsynced
//!    end of the last write before a crash, which nothing was acknowledged on. It is truncated
//!    and reported. If a valid record follows, records in the middle of the log are damaged:
//!    data that was fsynced and acknowledged is gone, and the node refuses to start with the
//!    file, the offset, and what an operator can do.
//!
//! Nothing here panics on the contents of a file: every length is checked before it is used.

mod persister;

pub use persister::{PersistEvent, Persister};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const WAL_MAGIC: &[u8; 8] = b"QRWAL001";
const SNAPSHOT_MAGIC: &[u8; 8] = b"QRSNAP01";
const WAL_HEADER_LEN: usize = 20;
const SNAPSHOT_HEADER_LEN: usize = 28;
const RECORD_HEADER_LEN: usize = 8;
/// The largest record the WAL accepts; a length beyond it is damage, not data.
pub const RECORD_MAX: usize = 1 << 30;

/// Storage that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{} is damaged: {what} at byte offset {offset}. {hint}", file.display())]
    Corrupt {
        file: PathBuf,
        offset: u64,
        what: String,
        hint: String,
    },
    #[error("data directory {} belongs to {found}, not to {expected}; give each node its own --data-dir", dir.display())]
    Identity {
        dir: PathBuf,
        found: String,
        expected: String,
    },
    #[error("data directory {} is in use by another running node (it holds {}); stop that node first, or give this one its own --data-dir", dir.display(), dir.join(LOCK_FILE).display())]
    InUse { dir: PathBuf },
}

/// The file a running node holds an exclusive `flock` on, so that two processes never write
/// one log. The kernel releases the lock when the process exits, however it exits.
const LOCK_FILE: &str = "LOCK";

/// Takes the data directory's lock, or says who has it.
fn lock_dir(dir: &Path) -> Result<Flock<File>, StorageError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error(&path))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| match errno {
        Errno::EWOULDBLOCK => StorageError::InUse {
            dir: dir.to_path_buf(),
        },
        other => StorageError::Io {
            path,
            source: io::Error::from(other),
        },
    })
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What recovery found, for the start-up log line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub generation: u64,
    pub snapshot_bytes: Option<u64>,
    pub wal_records: usize,
    /// A torn tail that was cut off: (offset it started at, bytes removed).
    pub truncated: Option<(u64, u64)>,
}

/// The open storage of one node: append records, sync, checkpoint.
pub struct Storage {
    dir: PathBuf,
    generation: u64,
    wal: File,
    /// Records appended since the last sync, already framed.
    pending: Vec<u8>,
    /// Held for as long as the storage is open (see [`LOCK_FILE`]).
    _lock: Flock<File>,
}

impl Storage {
    /// Opens (or creates) the storage in `dir` for the node `identity` (a one-line description
    /// such as `raft node 1 of cluster "quorate"`), returning the durable record payloads in
    /// the order they were persisted (the snapshot first).
    pub fn open(
        dir: &Path,
        identity: &str,
    ) -> Result<(Storage, Vec<Vec<u8>>, RecoveryReport), StorageError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let lock = lock_dir(dir)?;
        check_identity(dir, identity)?;
        let mut report = RecoveryReport::default();
        let mut payloads = Vec::new();
        let snapshot_path = dir.join("snapshot");
        if snapshot_path.exists() {
            let (generation, payload) = read_snapshot(&snapshot_path)?;
            report.generation = generation;
            report.snapshot_bytes = Some(payload.len() as u64);
            payloads.push(payload);
        }
        let generation = report.generation;
        remove_obsolete(dir, generation)?;
        let wal_path = wal_path(dir, generation);
        if !wal_path.exists() {
            create_wal(dir, generation)?;
        }
        let (records, truncated) = read_wal(&wal_path, generation)?;
        report.wal_records = records.len();
        report.truncated = truncated;
        payloads.extend(records);
        let wal = OpenOptions::new()
            .append(true)
            .open(&wal_path)
            .map_err(io_error(&wal_path))?;
        let storage = Storage {
            dir: dir.to_path_buf(),
            generation,
            wal,
            pending: Vec::new(),
            _lock: lock,
        };
        Ok((storage, payloads, report))
    }

    /// Buffers one record; it is durable after the next [`Storage::sync`].
    pub fn append(&mut self, payload: &[u8]) {
        assert!(payload.len() <= RECORD_MAX, "record over RECORD_MAX");
        assert!(!payload.is_empty(), "records are never empty");
        let length = (payload.len() as u32).to_le_bytes();
        let mut crc = crc32c::crc32c(&length);
        crc = crc32c::crc32c_append(crc, payload);
        self.pending.extend_from_slice(&length);
        self.pending.extend_from_slice(&crc.to_le_bytes());
        self.pending.extend_from_slice(payload);
    }

    /// Writes the buffered records and fsyncs them. Returns the bytes written.
    pub fn sync(&mut self) -> io::Result<usize> {
        let written = self.pending.len();
        if written > 0 {
            self.wal.write_all(&self.pending)?;
            self.pending.clear();
        }
        self.wal.sync_data()?;
        Ok(written)
    }

    /// Makes `payload` (a checkpoint record) the new snapshot and starts a fresh WAL. Records
    /// buffered before it are dropped: the checkpoint stands for them.
    pub fn checkpoint(&mut self, payload: &[u8]) -> io::Result<()> {
        self.pending.clear();
        let generation = self.generation + 1;
        let mut header = Vec::with_capacity(SNAPSHOT_HEADER_LEN);
        header.extend_from_slice(SNAPSHOT_MAGIC);
        header.extend_from_slice(&generation.to_le_bytes());
        header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&header), payload);
        header.extend_from_slice(&crc.to_le_bytes());
        let tmp = self.dir.join("snapshot.tmp");
        let mut file = File::create(&tmp)?;
        file.write_all(&header)?;
        file.write_all(payload)?;
        file.sync_all()?;
        fs::rename(&tmp, self.dir.join("snapshot"))?;
        sync_dir(&self.dir)?;
        let new_wal = create_wal(&self.dir, generation).map_err(io::Error::other)?;
        let old_wal = wal_path(&self.dir, self.generation);
        self.wal = OpenOptions::new().append(true).open(&new_wal)?;
        self.generation = generation;
        // Recovery deletes obsolete WALs too, so a crash before this line is harmless.
        fs::remove_file(old_wal)?;
        Ok(())
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn wal_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("wal-{generation:016}.log"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn check_identity(dir: &Path, identity: &str) -> Result<(), StorageError> {
    let path = dir.join("IDENTITY");
    match fs::read_to_string(&path) {
        Ok(found) if found.trim() == identity => Ok(()),
        Ok(found) => Err(StorageError::Identity {
            dir: dir.to_path_buf(),
            found: found.trim().to_string(),
            expected: identity.to_string(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let tmp = dir.join("IDENTITY.tmp");
            let write = || -> io::Result<()> {
                fs::write(&tmp, format!("{identity}\n"))?;
                File::open(&tmp)?.sync_all()?;
                fs::rename(&tmp, &path)?;
                sync_dir(dir)
            };
            write().map_err(io_error(&path))
        }
        Err(e) => Err(io_error(&path)(e)),
    }
}

/// Deletes WALs of generations before `generation` (superseded by the snapshot) and leftover
/// temporary files; refuses WALs from the future, which no crash can produce.
fn remove_obsolete(dir: &Path, generation: u64) -> Result<(), StorageError> {
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".tmp") {
            fs::remove_file(entry.path()).map_err(io_error(&entry.path()))?;
            continue;
        }
        let Some(number) = name
            .strip_prefix("wal-")
            .and_then(|rest| rest.strip_suffix(".log"))
        else {
            continue;
        };
        let Ok(found) = number.parse::<u64>() else {
            continue;
        };
        if found < generation {
            fs::remove_file(entry.path()).map_err(io_error(&entry.path()))?;
        } else if found > generation {
            return Err(StorageError::Corrupt {
                file: entry.path(),
                offset: 0,
                what: format!("a log of generation {found} but the snapshot is of generation {generation}"),
                hint: "The snapshot file is missing or was replaced by an older one; restore it, or move this directory away and let the node rejoin empty (only if a majority of the cluster is healthy).".into(),
            });
        }
    }
    Ok(())
}

fn create_wal(dir: &Path, generation: u64) -> Result<PathBuf, StorageError> {
    let path = wal_path(dir, generation);
    let tmp = dir.join(format!("wal-{generation:016}.log.tmp"));
    let mut header = Vec::with_capacity(WAL_HEADER_LEN);
    header.extend_from_slice(WAL_MAGIC);
    header.extend_from_slice(&generation.to_le_bytes());
    let crc = crc32c::crc32c(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    let write = || -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(&header)?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        sync_dir(dir)
    };
    write().map_err(io_error(&path))?;
    Ok(path)
}

fn corrupt(file: &Path, offset: u64, what: impl Into<String>, hint: &str) -> StorageError {
    StorageError::Corrupt {
        file: file.to_path_buf(),
        offset,
        what: what.into(),
        hint: hint.to_string(),
    }
}

const RESTORE_HINT: &str = "This file is written only through a rename after an fsync, so the damage is not a torn write. Restore the directory from a backup, or move it away and let the node rejoin empty (only if a majority of the cluster is healthy: an emptied node may have voted or acknowledged entries).";

fn read_snapshot(path: &Path) -> Result<(u64, Vec<u8>), StorageError> {
    let bytes = fs::read(path).map_err(io_error(path))?;
    if bytes.len() < SNAPSHOT_HEADER_LEN || &bytes[..8] != SNAPSHOT_MAGIC {
        return Err(corrupt(
            path,
            0,
            "not a quorate snapshot (bad header)",
            RESTORE_HINT,
        ));
    }
    let generation = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let length = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let stored = u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes"));
    let payload = &bytes[SNAPSHOT_HEADER_LEN..];
    if length != payload.len() as u64 {
        let what = format!(
            "header says {length} bytes of payload, file holds {}",
            payload.len()
        );
        return Err(corrupt(path, 16, what, RESTORE_HINT));
    }
    let crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[..24]), payload);
    if crc != stored {
        return Err(corrupt(path, 24, "checksum mismatch", RESTORE_HINT));
    }
    Ok((generation, payload.to_vec()))
}

/// The end of the valid record starting at `offset`, if one starts there.
fn record_at(bytes: &[u8], offset: usize) -> Option<usize> {
    let header_end = offset.checked_add(RECORD_HEADER_LEN)?;
    let header = bytes.get(offset..header_end)?;
    let length = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    if length == 0 || length > RECORD_MAX {
        return None;
    }
    let end = header_end.checked_add(length)?;
    let payload = bytes.get(header_end..end)?;
    let stored = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[..4]), payload);
    (crc == stored).then_some(end)
}

type TornTail = Option<(u64, u64)>;

/// Reads every record of a WAL, truncating a torn tail and refusing mid-log damage.
fn read_wal(path: &Path, generation: u64) -> Result<(Vec<Vec<u8>>, TornTail), StorageError> {
    let bytes = fs::read(path).map_err(io_error(path))?;
    let header_ok = bytes.len() >= WAL_HEADER_LEN
        && &bytes[..8] == WAL_MAGIC
        && crc32c::crc32c(&bytes[..16]) == u32::from_le_bytes(bytes[16..20].try_into().expect("4"));
    if !header_ok {
        return Err(corrupt(
            path,
            0,
            "not a quorate write-ahead log (bad header)",
            RESTORE_HINT,
        ));
    }
    let found = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    if found != generation {
        let what = format!("header says generation {found}, file name says {generation}");
        return Err(corrupt(path, 8, what, RESTORE_HINT));
    }
    let mut records = Vec::new();
    let mut offset = WAL_HEADER_LEN;
    while offset < bytes.len() {
        match record_at(&bytes, offset) {
            Some(end) => {
                records.push(bytes[offset + RECORD_HEADER_LEN..end].to_vec());
                offset = end;
            }
            None => break,
        }
    }
    if offset == bytes.len() {
        return Ok((records, None));
    }
    if let Some(valid) = (offset + 1..bytes.len()).find(|p| record_at(&bytes, *p).is_some()) {
        let what = format!(
            "record {} is damaged (bad length or checksum) but a valid record follows at offset {valid}, so this is not a torn write",
            records.len() + 1
        );
        let hint = format!(
            "Records that were fsynced are lost. If a majority of the cluster is healthy you may discard this record and everything after it with `truncate -s {offset} {}` and restart; the node will catch up from the others. Otherwise restore the directory from a backup.",
            path.display()
        );
        return Err(corrupt(path, offset as u64, what, &hint));
    }
    let removed = (bytes.len() - offset) as u64;
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error(path))?;
    file.set_len(offset as u64).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))?;
    Ok((records, Some((offset as u64, removed))))
}

#[cfg(test)]
mod tests;
