//! Recovery on the in-memory disk: what survives, what is zeroed, what refuses to start.

use super::*;

fn options() -> Options {
    Options {
        chunk: 256,
        ..Options::new("raft node 1 of cluster \"test\"", "1,2,3")
    }
}

fn open(disk: MemDisk) -> Result<Opened<MemDisk>, StorageError> {
    Store::open(disk, &options())
}

/// A disk holding `batches`, each written and synced as one batch.
fn disk_with(batches: &[&[&[u8]]]) -> (MemDisk, Store<MemDisk>) {
    let (mut store, recovered, report) = open(MemDisk::new()).unwrap();
    assert!(recovered.is_empty() && report.fresh);
    for batch in batches {
        for record in *batch {
            store.append(record);
        }
        store.commit().unwrap();
    }
    (store.disk().clone(), store)
}

fn records(list: &[&[u8]]) -> Vec<Vec<u8>> {
    list.iter().map(|r| r.to_vec()).collect()
}

#[test]
fn records_survive_a_reopen_in_order_across_chunks() {
    let big = [7u8; 300];
    let (disk, _) = disk_with(&[&[b"one", b"two"], &[&big], &[b"three"]]);
    assert_eq!(disk.len(&wal_name(0)).unwrap() % 256, 0);
    let (mut store, recovered, report) = open(disk).unwrap();
    assert_eq!(recovered, records(&[b"one", b"two", &big, b"three"]));
    assert_eq!((report.wal_batches, report.torn), (3, None));
    store.append(b"four");
    store.commit().unwrap();
    let (_, recovered, _) = open(store.into_disk()).unwrap();
    assert_eq!(recovered.len(), 5);
}

/// Every cut of an unsynced batch, from nothing to all of it, is a torn write: the node starts
/// with the synced records (and the new batch only if all of it reached the disk).
#[test]
fn every_torn_write_of_an_unsynced_batch_is_dropped_and_later_appends_read_back() {
    let (_, mut store) = disk_with(&[&[b"synced one"], &[b"synced two"]]);
    store.append(b"unsynced three");
    store.append(&[9u8; 200]);
    store.write().unwrap();
    let unsynced = store.disk().unsynced_bytes();
    assert!(unsynced > 200);
    for keep in 0..=unsynced {
        let mut disk = store.disk().clone();
        disk.crash(keep);
        let (mut reopened, recovered, report) =
            open(disk).unwrap_or_else(|e| panic!("keep {keep}: {e}"));
        let complete = keep == unsynced;
        assert_eq!(recovered.len(), if complete { 4 } else { 2 }, "keep {keep}");
        assert_eq!(recovered[..2], records(&[b"synced one", b"synced two"]));
        assert_eq!(report.torn.is_some(), keep > 0 && !complete, "keep {keep}");
        reopened.append(b"after");
        reopened.commit().unwrap();
        let (_, again, report) = open(reopened.into_disk()).unwrap();
        assert_eq!(again.last().unwrap(), b"after", "keep {keep}");
        assert_eq!(report.torn, None);
    }
}

/// A flipped bit anywhere in the last synced batch (header, payload or trailer) refuses to
/// start: that batch was acknowledged.
#[test]
fn any_flipped_bit_in_the_last_synced_batch_refuses_to_start() {
    let (disk, store) = disk_with(&[&[b"first"], &[b"acknowledged", b"vote"]]);
    let (start, end) = store.last_batch().unwrap();
    for offset in start..end {
        for bit in [0, 3, 7] {
            let mut damaged = disk.clone();
            damaged.flip_bit(&wal_name(0), offset, bit);
            match open(damaged) {
                Err(StorageError::Corrupt {
                    offset: at, hint, ..
                }) => {
                    assert_eq!(at, start, "flip at {offset}");
                    assert!(hint.contains("rejoin empty"), "{hint}");
                }
                Err(other) => panic!("flip at {offset}: {other}"),
                Ok(_) => panic!("flip at {offset} bit {bit} started"),
            }
        }
    }
}

#[test]
fn a_flipped_bit_in_an_earlier_batch_refuses_to_start() {
    let (disk, _) = disk_with(&[&[b"first"], &[b"second"], &[b"third"]]);
    let mut damaged = disk.clone();
    damaged.flip_bit(&wal_name(0), WAL_HEADER_LEN + 40, 2);
    let err = open(damaged).unwrap_err().to_string();
    assert!(err.contains("is damaged"), "{err}");
    assert!(err.contains(&format!("offset {WAL_HEADER_LEN}")), "{err}");
}

#[test]
fn a_flipped_bit_in_never_written_space_is_harmless() {
    let (disk, store) = disk_with(&[&[b"first"]]);
    let (_, end) = store.last_batch().unwrap();
    let mut damaged = disk.clone();
    damaged.flip_bit(&wal_name(0), end + 50, 1);
    let (_, recovered, report) = open(damaged).unwrap();
    assert_eq!(recovered, records(&[b"first"]));
    assert_eq!(report.torn, Some((end, 51)));
}

#[cfg(feature = "bugs")]
#[test]
fn the_broken_recovery_drops_a_damaged_last_batch() {
    let (mut disk, store) = disk_with(&[&[b"first"], &[b"acknowledged"]]);
    let (start, _) = store.last_batch().unwrap();
    disk.flip_bit(&wal_name(0), start + 40, 0);
    let broken = Options {
        drop_damaged_tail: true,
        ..options()
    };
    let (_, recovered, _) = Store::open(disk, &broken).unwrap();
    assert_eq!(recovered, records(&[b"first"]));
}

#[test]
fn a_lost_wal_refuses_to_start() {
    let (mut disk, _) = disk_with(&[&[b"vote"]]);
    disk.lose(&wal_name(0));
    let err = open(disk).unwrap_err();
    assert!(matches!(err, StorageError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("forget the node's votes"), "{err}");
}

#[test]
fn a_lost_snapshot_refuses_to_start() {
    let (_, mut store) = disk_with(&[&[b"one"]]);
    store.checkpoint(b"checkpoint").unwrap();
    store.append(b"after");
    store.commit().unwrap();
    let mut disk = store.into_disk();
    disk.lose(SNAPSHOT);
    let err = open(disk).unwrap_err().to_string();
    assert!(err.contains("snapshot is missing"), "{err}");
}

#[test]
fn a_lost_identity_refuses_to_start() {
    let (mut disk, _) = disk_with(&[&[b"vote"]]);
    disk.lose(IDENTITY);
    let err = open(disk).unwrap_err().to_string();
    assert!(err.contains("no IDENTITY"), "{err}");
}

#[test]
fn an_unreadable_wal_refuses_to_start() {
    let (mut disk, _) = disk_with(&[&[b"vote"]]);
    disk.fail_reads(&wal_name(0));
    let err = open(disk).unwrap_err();
    assert!(matches!(err, StorageError::Io { .. }), "{err}");
}

#[test]
fn a_wal_cut_short_refuses_to_start() {
    let (mut disk, store) = disk_with(&[&[b"one"], &[b"two"]]);
    let (_, end) = store.last_batch().unwrap();
    disk.set_len(&wal_name(0), end - 3).unwrap();
    disk.sync(&wal_name(0)).unwrap();
    let err = open(disk).unwrap_err().to_string();
    assert!(err.contains("cut short"), "{err}");
}

#[test]
fn another_membership_or_identity_refuses_to_start() {
    let (disk, _) = disk_with(&[&[b"one"]]);
    let five = Options {
        members: "1,2,3,4,5".into(),
        ..options()
    };
    let err = Store::open(disk.clone(), &five).unwrap_err();
    assert!(matches!(err, StorageError::Membership { .. }), "{err}");
    assert!(
        err.to_string().contains("change membership online"),
        "{err}"
    );
    let other = Options {
        identity: "zab node 1 of cluster \"test\"".into(),
        ..options()
    };
    let err = Store::open(disk, &other).unwrap_err();
    assert!(matches!(err, StorageError::Identity { .. }), "{err}");
}

#[test]
fn old_format_files_are_refused_clearly() {
    let (mut disk, _) = disk_with(&[&[b"one"]]);
    disk.poke(&wal_name(0), 0, OLD_WAL_MAGIC);
    let err = open(disk).unwrap_err().to_string();
    assert!(err.contains("older version of quorate"), "{err}");
}

#[test]
fn older_snapshot_formats_are_refused_by_name() {
    for (magic, found) in [(b"QRSNAP02", "2"), (b"QRSNAP03", "3")] {
        let (_, mut store) = disk_with(&[&[b"one"]]);
        store.checkpoint(b"an older store").unwrap();
        let mut disk = store.into_disk();
        disk.poke(SNAPSHOT, 0, magic);
        let err = open(disk).unwrap_err().to_string();
        assert!(err.contains(&format!("storage format {found}")), "{err}");
        assert!(err.contains("reads format 4"), "{err}");
    }
}

#[test]
fn checkpoints_replace_the_log_and_survive_a_crash_at_every_step() {
    let (_, mut store) = disk_with(&[&[b"one"], &[b"two"]]);
    store.checkpoint(b"state after two").unwrap();
    store.append(b"three");
    store.commit().unwrap();
    let (_, recovered, report) = open(store.disk().clone()).unwrap();
    assert_eq!(recovered, records(&[b"state after two", b"three"]));
    assert_eq!(report.generation, 1);
    // An interrupted checkpoint: the next WAL was created, the snapshot not yet renamed.
    let mut disk = store.into_disk();
    create_wal(&mut disk, 2, 256).unwrap();
    disk.create("snapshot.tmp").unwrap();
    let (_, recovered, report) = open(disk).unwrap();
    assert_eq!(recovered, records(&[b"state after two", b"three"]));
    assert_eq!(report.generation, 1);
}

#[test]
fn an_interrupted_set_up_starts_fresh() {
    let mut disk = MemDisk::new();
    create_wal(&mut disk, 0, 256).unwrap();
    let (_, recovered, report) = open(disk).unwrap();
    assert!(recovered.is_empty() && report.fresh);
}
