//! An in-memory [`Disk`] with the faults of a real one: data not yet synced is lost in a
//! crash or kept only in part (a torn write), and bits flip, files vanish and reads fail
//! after the fact. Deterministic: every choice is the caller's (the simulator's seeded rng).

use crate::Disk;
use std::collections::BTreeMap;
use std::io;

#[derive(Clone, Debug)]
enum Op {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Clone, Debug, Default)]
struct MemFile {
    /// What reads see.
    data: Vec<u8>,
    /// What survives a crash.
    durable: Vec<u8>,
    /// Writes since the last sync, in order.
    pending: Vec<Op>,
    /// Reads fail (a latent sector error).
    unreadable: bool,
}

fn apply(file: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write(offset, data) => {
            let offset = *offset as usize;
            if file.len() < offset + data.len() {
                file.resize(offset + data.len(), 0);
            }
            file[offset..offset + data.len()].copy_from_slice(data);
        }
        Op::SetLen(len) => file.resize(*len as usize, 0),
    }
}

/// A directory of files in memory.
#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    files: BTreeMap<String, MemFile>,
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{name}: no such file"))
}

impl MemDisk {
    pub fn new() -> MemDisk {
        MemDisk::default()
    }

    /// Bytes written but not yet synced, over every file.
    pub fn unsynced_bytes(&self) -> u64 {
        let op_bytes = |op: &Op| match op {
            Op::Write(_, data) => data.len() as u64,
            Op::SetLen(_) => 0,
        };
        self.files
            .values()
            .flat_map(|f| f.pending.iter().map(op_bytes))
            .sum()
    }

    /// Power loss: of the unsynced writes, only the first `keep` bytes (in write order)
    /// reached the disk; a write is cut wherever the budget ends.
    pub fn crash(&mut self, mut keep: u64) {
        for file in self.files.values_mut() {
            for op in std::mem::take(&mut file.pending) {
                match op {
                    Op::Write(offset, mut data) if keep > 0 => {
                        data.truncate(keep.min(data.len() as u64) as usize);
                        keep -= data.len() as u64;
                        apply(&mut file.durable, &Op::Write(offset, data));
                    }
                    Op::SetLen(len) if keep > 0 => apply(&mut file.durable, &Op::SetLen(len)),
                    _ => keep = 0,
                }
            }
            file.data = file.durable.clone();
        }
    }

    /// The length of a file as reads see it.
    pub fn len(&self, name: &str) -> Option<u64> {
        self.files.get(name).map(|f| f.data.len() as u64)
    }

    /// Flips one bit of a file, on the platter and in what reads see.
    pub fn flip_bit(&mut self, name: &str, offset: u64, bit: u8) {
        let Some(file) = self.files.get_mut(name) else {
            return;
        };
        for bytes in [&mut file.data, &mut file.durable] {
            if let Some(byte) = bytes.get_mut(offset as usize) {
                *byte ^= 1 << (bit % 8);
            }
        }
    }

    /// The file is gone (an operator's mistake, a lost directory entry).
    pub fn lose(&mut self, name: &str) {
        self.files.remove(name);
    }

    /// Every later read of the file fails.
    pub fn fail_reads(&mut self, name: &str) {
        if let Some(file) = self.files.get_mut(name) {
            file.unreadable = true;
        }
    }

    /// Overwrites bytes durably (for tests that damage a file as an operator would).
    pub fn poke(&mut self, name: &str, offset: u64, data: &[u8]) {
        if let Some(file) = self.files.get_mut(name) {
            let op = Op::Write(offset, data.to_vec());
            apply(&mut file.data, &op);
            apply(&mut file.durable, &op);
        }
    }

    fn file(&mut self, name: &str) -> io::Result<&mut MemFile> {
        self.files.get_mut(name).ok_or_else(|| not_found(name))
    }
}

impl Disk for MemDisk {
    fn list(&mut self) -> io::Result<Vec<String>> {
        Ok(self.files.keys().cloned().collect())
    }

    fn read(&mut self, name: &str) -> io::Result<Vec<u8>> {
        let file = self.file(name)?;
        if file.unreadable {
            return Err(io::Error::other(format!(
                "{name}: read failed (latent sector error)"
            )));
        }
        Ok(file.data.clone())
    }

    fn create(&mut self, name: &str) -> io::Result<()> {
        self.files.insert(name.to_string(), MemFile::default());
        Ok(())
    }

    fn write(&mut self, name: &str, offset: u64, data: &[u8]) -> io::Result<()> {
        let file = self.file(name)?;
        let op = Op::Write(offset, data.to_vec());
        apply(&mut file.data, &op);
        file.pending.push(op);
        Ok(())
    }

    fn set_len(&mut self, name: &str, len: u64) -> io::Result<()> {
        let file = self.file(name)?;
        let op = Op::SetLen(len);
        apply(&mut file.data, &op);
        file.pending.push(op);
        Ok(())
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        let file = self.file(name)?;
        for op in std::mem::take(&mut file.pending) {
            apply(&mut file.durable, &op);
        }
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let file = self.files.remove(from).ok_or_else(|| not_found(from))?;
        self.files.insert(to.to_string(), file);
        Ok(())
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.files
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| not_found(name))
    }

    fn describe(&self, name: &str) -> String {
        name.to_string()
    }
}
