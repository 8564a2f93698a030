//! Recovery on real files (the rules themselves are tested in `quorate_storage` on the
//! in-memory disk): what survives, what is zeroed, what refuses to start.

use super::*;

const ID: &str = "raft node 1 of cluster \"test\"";

fn write_records(dir: &Path, records: &[&[u8]]) {
    let (mut storage, recovered, _) = Storage::open(dir, ID).unwrap();
    assert!(recovered.is_empty());
    for record in records {
        storage.append(record);
        storage.sync().unwrap();
    }
}

fn only_wal(dir: &Path) -> PathBuf {
    let mut wals: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert_eq!(wals.len(), 1, "one WAL in {}", dir.display());
    wals.pop().unwrap()
}

/// The offset where the last batch ends (the first non-zero byte from the end, plus one).
fn written_end(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b != 0).unwrap() + 1
}

#[test]
fn records_survive_a_reopen_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), &[b"one", b"two", b"three"]);
    let (_, recovered, report) = Storage::open(dir.path(), ID).unwrap();
    assert_eq!(
        recovered,
        vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
    );
    assert_eq!(report.wal_records, 3);
    assert_eq!(report.torn, None);
}

#[test]
fn unsynced_records_are_not_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = Storage::open(dir.path(), ID).unwrap();
    storage.append(b"synced");
    storage.sync().unwrap();
    storage.append(b"buffered only");
    drop(storage);
    let (_, recovered, _) = Storage::open(dir.path(), ID).unwrap();
    assert_eq!(recovered, vec![b"synced".to_vec()]);
}

#[test]
fn a_torn_write_after_the_last_batch_is_zeroed_and_later_appends_are_readable() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), &[b"one", b"two", b"six"]);
    let wal = only_wal(dir.path());
    let mut bytes = fs::read(&wal).unwrap();
    let end = written_end(&bytes);
    // The third batch's write was cut short after 40 bytes, before its end marker (as a
    // power loss before its fsync would leave it): nothing in it was acknowledged.
    let third = end - (32 + 4 + 3 + 16);
    bytes[third + 40..end].fill(0);
    fs::write(&wal, &bytes).unwrap();
    let end = third;
    let (mut storage, recovered, report) = Storage::open(dir.path(), ID).unwrap();
    assert_eq!(recovered, vec![b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(report.torn, Some((end as u64, 40)));
    storage.append(b"three");
    storage.sync().unwrap();
    drop(storage);
    let (_, recovered, report) = Storage::open(dir.path(), ID).unwrap();
    assert_eq!(recovered.len(), 3);
    assert_eq!(report.torn, None);
}

#[test]
fn a_damaged_last_batch_refuses_to_start_and_says_where_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), &[b"first record", b"acknowledged record"]);
    let wal = only_wal(dir.path());
    let mut bytes = fs::read(&wal).unwrap();
    let end = written_end(&bytes);
    let last = end - (32 + 4 + b"acknowledged record".len() + 16);
    bytes[last + 40] ^= 0x40; // one flipped bit in the last payload
    fs::write(&wal, &bytes).unwrap();
    let error = Storage::open(dir.path(), ID).err().expect("must refuse");
    let message = error.to_string();
    assert!(message.contains(&wal.display().to_string()), "{message}");
    assert!(message.contains(&format!("offset {last}")), "{message}");
    assert!(
        message.contains("batch 2 was written completely"),
        "{message}"
    );
    assert!(message.contains("rejoin empty"), "{message}");
    // Nothing was changed: the operator decides.
    assert_eq!(fs::read(&wal).unwrap(), bytes);
}

#[test]
fn a_deleted_wal_or_a_cut_one_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), &[b"vote"]);
    let wal = only_wal(dir.path());
    let bytes = fs::read(&wal).unwrap();
    fs::write(&wal, &bytes[..written_end(&bytes) - 2]).unwrap();
    let error = Storage::open(dir.path(), ID).err().expect("must refuse");
    assert!(error.to_string().contains("cut short"), "{error}");
    fs::remove_file(&wal).unwrap();
    let error = Storage::open(dir.path(), ID).err().expect("must refuse");
    assert!(error.to_string().contains("is missing"), "{error}");
}

#[test]
fn a_checkpoint_replaces_everything_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = Storage::open(dir.path(), ID).unwrap();
    storage.append(b"old 1");
    storage.sync().unwrap();
    storage.append(b"old 2 (unsynced, superseded)");
    storage.checkpoint(b"checkpoint").unwrap();
    storage.append(b"after");
    storage.sync().unwrap();
    assert_eq!(storage.generation(), 1);
    drop(storage);
    let (storage, recovered, report) = Storage::open(dir.path(), ID).unwrap();
    assert_eq!(recovered, vec![b"checkpoint".to_vec(), b"after".to_vec()]);
    assert_eq!(report.generation, 1);
    assert_eq!(report.snapshot_bytes, Some(10));
    assert!(only_wal(dir.path()).ends_with("wal-0000000000000001.log"));
    drop(storage);
}

#[test]
fn a_damaged_snapshot_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = Storage::open(dir.path(), ID).unwrap();
    storage.checkpoint(b"checkpoint payload").unwrap();
    drop(storage);
    let path = dir.path().join("snapshot");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let error = Storage::open(dir.path(), ID).err().expect("must refuse");
    assert!(error.to_string().contains("checksum mismatch"), "{error}");
    fs::write(&path, b"short").unwrap();
    let error = Storage::open(dir.path(), ID).err().expect("must refuse");
    assert!(error.to_string().contains("bad header"), "{error}");
}

#[test]
fn another_nodes_or_another_memberships_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let three = Options::new(ID, "1,2,3");
    drop(Storage::open_with(dir.path(), &three).unwrap());
    let error = Storage::open(dir.path(), "raft node 2 of cluster \"test\"")
        .err()
        .expect("must refuse");
    assert!(
        error.to_string().contains("belongs to raft node 1"),
        "{error}"
    );
    let five = Options::new(ID, "1,2,3,4,5");
    let error = Storage::open_with(dir.path(), &five)
        .err()
        .expect("must refuse");
    assert!(
        error
            .to_string()
            .contains("created for a cluster of members 1,2,3"),
        "{error}"
    );
}

#[test]
fn a_directory_in_use_is_refused_until_its_node_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (mut running, _, _) = Storage::open(dir.path(), ID).unwrap();
    running.append(b"acknowledged");
    running.sync().unwrap();
    let error = Storage::open(dir.path(), ID)
        .err()
        .expect("a second process on the same directory must be refused");
    assert!(matches!(error, StorageError::InUse { .. }), "{error}");
    assert!(
        error.to_string().contains("in use by another running node"),
        "{error}"
    );
    drop(running);
    let (_, records, _) = Storage::open(dir.path(), ID).unwrap();
    assert_eq!(
        records,
        vec![b"acknowledged".to_vec()],
        "the refusal touched nothing"
    );
}

#[test]
fn arbitrary_bytes_never_panic_recovery() {
    // A cheap fuzz: random files must give records, a zeroed torn write or an error, never a
    // panic.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..100 {
        let dir = tempfile::tempdir().unwrap();
        write_records(dir.path(), &[b"alpha", b"beta", b"gamma"]);
        let wal = only_wal(dir.path());
        let mut bytes = fs::read(&wal).unwrap();
        let end = written_end(&bytes) + 64;
        for _ in 0..(round % 5 + 1) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state as usize) % end;
            bytes[at] = (state >> 32) as u8;
        }
        if round % 3 == 0 {
            bytes.truncate((state as usize >> 8) % end);
        }
        fs::write(&wal, &bytes).unwrap();
        let _ = Storage::open(dir.path(), ID);
    }
}
