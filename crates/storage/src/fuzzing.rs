//! Entry point for fuzzing recovery (`fuzz/`, `cargo +nightly fuzz run wal`) and for replaying
//! the checked-in corpus on stable (`tests/fuzz_corpus.rs`): arbitrary bytes in a node's files
//! must make [`Store::open`] recover or refuse, never panic, hang or allocate without bound.

use crate::{MemDisk, Options, Store};

/// Opens a store whose files were damaged by `data`. The first byte chooses how:
/// 0 replaces the whole WAL, 1 writes the rest over a valid WAL after its header, 2 replaces
/// the snapshot, anything else replaces `IDENTITY`.
pub fn recover(data: &[u8]) {
    let Some((&how, rest)) = data.split_first() else {
        return;
    };
    let options = Options {
        chunk: 256,
        ..Options::new("raft node 1 of cluster \"fuzz\"", "1,2,3")
    };
    let Ok((mut store, _, _)) = Store::open(MemDisk::new(), &options) else {
        return;
    };
    for record in [&b"one"[..], b"two", &[7u8; 300]] {
        store.append(record);
        let _ = store.commit();
    }
    let _ = store.checkpoint(b"snapshot");
    store.append(b"after");
    let _ = store.commit();
    let wal = store.wal().to_string();
    let mut disk = store.into_disk();
    match how % 4 {
        0 => replace(&mut disk, &wal, rest),
        1 => disk.poke(&wal, 32, rest),
        2 => replace(&mut disk, "snapshot", rest),
        _ => replace(&mut disk, "IDENTITY", rest),
    }
    let _ = Store::open(disk, &options);
}

fn replace(disk: &mut MemDisk, name: &str, data: &[u8]) {
    use crate::Disk;
    let _ = disk.create(name);
    let _ = disk.write(name, 0, data);
    let _ = disk.sync(name);
}
