//! Group commit on a dedicated thread, so the event loop never waits for the disk.
//!
//! The runtime hands each record over with a *token* (1, 2, 3, ... in persist order) and
//! carries on. The storage thread takes everything that queued up while its previous fsync
//! ran, writes it with one `write`, covers it with one `fdatasync`, and reports the highest
//! token now durable. Under load, one fsync therefore carries the records of many client
//! requests; when idle, a record waits for nothing but its own fsync.
//!
//! An I/O error is fatal: after a failed fsync the kernel may have dropped the dirty pages,
//! so nothing written since the last good fsync can be trusted ("fsyncgate"). The thread
//! reports the failure and stops; the runtime shuts the node down.

use super::Storage;
use crate::metrics::Metrics;
use quorate_core::Durable;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// Records taken into one batch, at most (bounds the memory of one write).
const BATCH_RECORDS_MAX: usize = 65_536;

/// What the storage thread tells the runtime.
#[derive(Debug)]
pub enum PersistEvent {
    /// Every record with a token up to this one is durable.
    Durable(u64),
    /// Storage failed; nothing more will become durable.
    Failed(String),
}

/// The runtime's handle on the storage thread.
pub struct Persister<R> {
    jobs: Option<mpsc::Sender<(u64, R)>>,
    thread: Option<JoinHandle<()>>,
    /// The WAL, shared with the storage thread: the runtime writes a batch itself
    /// ([`Persister::persist_here`]) only while the thread has nothing left to do.
    storage: Arc<Mutex<Storage>>,
    metrics: Arc<Metrics>,
}

impl<R: Serialize + Durable + Send + 'static> Persister<R> {
    /// Starts the storage thread; events arrive on `events`.
    pub fn start(
        storage: Storage,
        events: UnboundedSender<PersistEvent>,
        metrics: Arc<Metrics>,
    ) -> Persister<R> {
        let (jobs, queue) = mpsc::channel();
        let storage = Arc::new(Mutex::new(storage));
        let (shared, thread_metrics) = (storage.clone(), metrics.clone());
        let thread = std::thread::Builder::new()
            .name("quorate-storage".into())
            .spawn(move || run(shared, queue, events, thread_metrics))
            .expect("spawning the storage thread");
        Persister {
            jobs: Some(jobs),
            thread: Some(thread),
            storage,
            metrics,
        }
    }

    /// Writes and fsyncs `batch` on the caller's thread, emptying it. The caller must know
    /// that every record handed to the storage thread is already durable, so that the WAL
    /// keeps token order; an error is fatal, as on the thread.
    pub fn persist_here(&self, batch: &mut Vec<(u64, R)>) -> Result<(), String> {
        let mut storage = self.storage.lock().unwrap_or_else(|e| e.into_inner());
        write_batch(&mut storage, batch, &self.metrics).map_err(|error| failure(&storage, error))
    }

    /// Queues `record` as number `token`; returns false if the storage thread has stopped.
    pub fn persist(&self, token: u64, record: R) -> bool {
        self.jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send((token, record)).is_ok())
    }

    /// Lets the thread finish what is queued, then joins it.
    pub fn shutdown(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl<R> Drop for Persister<R> {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn failure(storage: &Storage, error: std::io::Error) -> String {
    format!(
        "storage in {} failed: {error}; stopping (nothing unsynced can be trusted)",
        storage.dir().display()
    )
}

fn run<R: Serialize + Durable>(
    storage: Arc<Mutex<Storage>>,
    queue: mpsc::Receiver<(u64, R)>,
    events: UnboundedSender<PersistEvent>,
    metrics: Arc<Metrics>,
) {
    let mut batch = Vec::new();
    while let Ok(first) = queue.recv() {
        batch.push(first);
        while batch.len() < BATCH_RECORDS_MAX {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let last = batch.last().expect("a batch is never empty").0;
        let mut wal = storage.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(error) = write_batch(&mut wal, &mut batch, &metrics) {
            let _ = events.send(PersistEvent::Failed(failure(&wal, error)));
            return;
        }
        drop(wal);
        if events.send(PersistEvent::Durable(last)).is_err() {
            return; // The runtime is gone.
        }
    }
}

fn write_batch<R: Serialize + Durable>(
    storage: &mut Storage,
    batch: &mut Vec<(u64, R)>,
    metrics: &Metrics,
) -> std::io::Result<()> {
    for (_, record) in batch.drain(..) {
        let payload = postcard::to_allocvec(&record).map_err(std::io::Error::other)?;
        if record.is_checkpoint() {
            storage.checkpoint(&payload)?;
            Metrics::inc(&metrics.wal_checkpoints);
        } else {
            storage.append(&payload);
        }
        Metrics::inc(&metrics.wal_records);
    }
    let started = Instant::now();
    let bytes = storage.sync()?;
    metrics.observe_fsync(started.elapsed().as_secs_f64());
    metrics.wal_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    Ok(())
}
