//! Recovery: what survives, what is truncated, what refuses to start.

use super::*;

const ID: &str = "raft node 1 of cluster \"test\"";

fn write_records(dir: &Path, records: &[&[u8]]) {
    let (mut storage, recovered, _) = Storage::open(dir, ID).unwrap();
    assert!(recovered.is_empty());
    for record in records {
        storage.append(record);
    }
    storage.sync().unwrap();
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
    assert_eq!(report.truncated, None);
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
fn a_torn_tail_is_truncated_and_later_appends_are_readable() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), &[b"one", b"two"]);
    let wal = only_wal(dir.path());
    let intact = fs::metadata(&wal).unwrap().len();
    // The first half of a record whose write was cut short by a crash.
    let mut file = OpenOptions::new().append(true).open(&wal).unwrap();
    file.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, b'p', b'a', b'r'])
        .unwrap();
    drop(file);
    let (mut storage, recovered, report) = Storage::open(dir.path(), ID).unwrap();
    assert_eq!(recovered, vec![b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(report.truncated, Some((intact, 11)));
    assert_eq!(fs::metadata(&wal).unwrap().len(), intact);
    storage.append(b"three");
    storage.sync().unwrap();
    drop(storage);
    let (_, recovered, report) = Storage::open(dir.path(), ID).unwrap();
    assert_eq!(recovered.len(), 3);
    assert_eq!(report.truncated, None);
}

#[test]
fn a_tail_of_zeros_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), &[b"one"]);
    let wal = only_wal(dir.path());
    let mut file = OpenOptions::new().append(true).open(&wal).unwrap();
    file.write_all(&[0; 4096]).unwrap();
    drop(file);
    let (_, recovered, report) = Storage::open(dir.path(), ID).unwrap();
    assert_eq!(recovered, vec![b"one".to_vec()]);
    assert_eq!(report.truncated.map(|(_, n)| n), Some(4096));
}

#[test]
fn damage_in_the_middle_refuses_to_start_and_says_where_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    write_records(
        dir.path(),
        &[b"first record", b"second record", b"third record"],
    );
    let wal = only_wal(dir.path());
    let mut bytes = fs::read(&wal).unwrap();
    let second = WAL_HEADER_LEN + RECORD_HEADER_LEN + b"first record".len();
    bytes[second + RECORD_HEADER_LEN + 3] ^= 0x40; // one flipped bit in the second payload
    fs::write(&wal, &bytes).unwrap();
    let error = Storage::open(dir.path(), ID).err().expect("must refuse");
    let message = error.to_string();
    assert!(message.contains(&wal.display().to_string()), "{message}");
    assert!(message.contains(&format!("offset {second}")), "{message}");
    assert!(message.contains("record 2 is damaged"), "{message}");
    assert!(
        message.contains(&format!("truncate -s {second}")),
        "{message}"
    );
    // Nothing was changed: the operator decides.
    assert_eq!(fs::read(&wal).unwrap(), bytes);
}

#[test]
fn a_damaged_length_field_in_the_middle_is_caught_too() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), &[b"aaaa", b"bbbb", b"cccc"]);
    let wal = only_wal(dir.path());
    let mut bytes = fs::read(&wal).unwrap();
    bytes[WAL_HEADER_LEN] = 0xff; // the first record claims 255 bytes
    fs::write(&wal, &bytes).unwrap();
    let error = Storage::open(dir.path(), ID).err().expect("must refuse");
    assert!(error.to_string().contains("record 1 is damaged"), "{error}");
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
fn a_crash_between_snapshot_and_new_wal_ignores_the_obsolete_wal() {
    let dir = tempfile::tempdir().unwrap();
    let (mut storage, _, _) = Storage::open(dir.path(), ID).unwrap();
    storage.append(b"old");
    storage.sync().unwrap();
    storage.checkpoint(b"checkpoint").unwrap();
    drop(storage);
    // Simulate the crash: the old generation's WAL is still there, the new one is not.
    fs::remove_file(wal_path(dir.path(), 1)).unwrap();
    fs::write(wal_path(dir.path(), 0), b"stale bytes of an obsolete log").unwrap();
    let (_, recovered, _) = Storage::open(dir.path(), ID).unwrap();
    assert_eq!(recovered, vec![b"checkpoint".to_vec()]);
    assert!(!wal_path(dir.path(), 0).exists());
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
fn another_nodes_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), &[b"x"]);
    let error = Storage::open(dir.path(), "raft node 2 of cluster \"test\"")
        .err()
        .expect("must refuse");
    assert!(
        error.to_string().contains("belongs to raft node 1"),
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
    // A cheap fuzz: random files must give records, a truncation or an error, never a panic.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..300 {
        let dir = tempfile::tempdir().unwrap();
        write_records(dir.path(), &[b"alpha", b"beta", b"gamma"]);
        let wal = only_wal(dir.path());
        let mut bytes = fs::read(&wal).unwrap();
        for _ in 0..(round % 5 + 1) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state as usize) % bytes.len();
            bytes[at] = (state >> 32) as u8;
        }
        if round % 3 == 0 {
            bytes.truncate((state as usize >> 8) % bytes.len());
        }
        fs::write(&wal, &bytes).unwrap();
        let _ = Storage::open(dir.path(), ID);
    }
}
