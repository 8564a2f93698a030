//! Durable storage on real files: the [`quorate_storage`] format and recovery rules (the same
//! code the simulator runs on its faulty in-memory disk) over [`FsDisk`], which writes with
//! `pwrite`, syncs with `fdatasync`, and fsyncs the directory after every create, rename and
//! remove; plus what only a real directory needs: an exclusive `flock`, so that two processes
//! never write one log.
//!
//! ```text
//! DIR/LOCK                        held (flock) by the running node
//! DIR/IDENTITY                    protocol, cluster id, node id; the members it was created for
//! DIR/snapshot                    the latest checkpoint record, with the WAL generation it starts
//! DIR/wal-<generation>.log        every record persisted after that checkpoint, in batches
//! ```
//!
//! See the `quorate_storage` crate for the format, and for how recovery tells a torn write
//! (never acknowledged, zeroed) from damage to an fsynced batch (the node refuses to start).
//! Records are buffered and written as one batch with one `write` and one `fdatasync` (group
//! commit, driven by [`Persister`]).

mod persister;

pub use persister::{PersistEvent, Persister};
pub use quorate_storage::{Options, RecoveryReport, StorageError as FormatError, RECORD_MAX};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use quorate_storage::{Disk, Store};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Storage that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// Damage, a missing file, another node's or membership's directory: refused by the
    /// format's recovery rules.
    #[error(transparent)]
    Refused(#[from] FormatError),
    #[error("data directory {} is in use by another running node (it holds {}); stop that node first, or give this one its own --data-dir", dir.display(), dir.join(LOCK_FILE).display())]
    InUse { dir: PathBuf },
}

/// The file a running node holds an exclusive `flock` on, so that two processes never write
/// one log. The kernel releases the lock when the process exits, however it exits.
const LOCK_FILE: &str = "LOCK";

/// Takes the data directory's lock, or says who has it.
pub(crate) fn lock_dir(dir: &Path) -> Result<Flock<File>, StorageError> {
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

/// A directory of real files, for [`quorate_storage`].
#[derive(Debug)]
pub struct FsDisk {
    dir: PathBuf,
    /// Files opened for writing, kept open.
    open: HashMap<String, File>,
}

impl FsDisk {
    pub fn new(dir: &Path) -> FsDisk {
        FsDisk {
            dir: dir.to_path_buf(),
            open: HashMap::new(),
        }
    }

    fn file(&mut self, name: &str) -> io::Result<&File> {
        if !self.open.contains_key(name) {
            let file = OpenOptions::new().write(true).open(self.dir.join(name))?;
            self.open.insert(name.to_string(), file);
        }
        Ok(&self.open[name])
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

impl Disk for FsDisk {
    fn list(&mut self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            names.push(entry?.file_name().to_string_lossy().to_string());
        }
        names.sort();
        Ok(names)
    }

    fn read(&mut self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.dir.join(name))
    }

    fn create(&mut self, name: &str) -> io::Result<()> {
        let file = File::create(self.dir.join(name))?;
        self.open.insert(name.to_string(), file);
        Ok(())
    }

    fn write(&mut self, name: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file(name)?.write_all_at(data, offset)
    }

    fn set_len(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.file(name)?.set_len(len)
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        self.file(name)?.sync_data()
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.dir.join(from), self.dir.join(to))?;
        self.open.remove(to);
        if let Some(file) = self.open.remove(from) {
            self.open.insert(to.to_string(), file);
        }
        self.sync_dir()
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.open.remove(name);
        fs::remove_file(self.dir.join(name))?;
        self.sync_dir()
    }

    fn describe(&self, name: &str) -> String {
        if name == "." {
            self.dir.display().to_string()
        } else {
            self.dir.join(name).display().to_string()
        }
    }
}

/// The open storage of one node: append records, sync, checkpoint.
pub struct Storage {
    store: Store<FsDisk>,
    dir: PathBuf,
    /// Held for as long as the storage is open (see [`LOCK_FILE`]).
    _lock: Flock<File>,
}

/// An opened storage, the durable record payloads in order (the snapshot first), and what
/// recovery found.
pub type Opened = (Storage, Vec<Vec<u8>>, RecoveryReport);

impl Storage {
    /// Opens (or creates) the storage in `dir` for the node `identity` (a one-line description
    /// such as `raft node 1 of cluster "quorate"`), with no membership recorded.
    pub fn open(dir: &Path, identity: &str) -> Result<Opened, StorageError> {
        Storage::open_with(dir, &Options::new(identity, "unspecified"))
    }

    /// Opens (or creates) the storage in `dir` for the node and members `options` names.
    pub fn open_with(dir: &Path, options: &Options) -> Result<Opened, StorageError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let lock = lock_dir(dir)?;
        let (store, payloads, report) = Store::open(FsDisk::new(dir), options)?;
        let storage = Storage {
            store,
            dir: dir.to_path_buf(),
            _lock: lock,
        };
        Ok((storage, payloads, report))
    }

    /// Buffers one record; it is durable after the next [`Storage::sync`].
    pub fn append(&mut self, payload: &[u8]) {
        self.store.append(payload);
    }

    /// Writes the buffered records as one batch and fsyncs them. Returns the bytes written.
    pub fn sync(&mut self) -> io::Result<usize> {
        self.store.commit()
    }

    /// Makes `payload` (a checkpoint record) the new snapshot and starts a fresh WAL. Records
    /// buffered before it are dropped: the checkpoint stands for them.
    pub fn checkpoint(&mut self, payload: &[u8]) -> io::Result<()> {
        self.store.checkpoint(payload)
    }

    pub fn generation(&self) -> u64 {
        self.store.generation()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests;
