//! The audit trail of a running Keel: every request's record is appended to the store's hash
//! chain before its response leaves.
//!
//! Records of requests that write are appended inside their own write transaction
//! ([`AuditTrail::record_in`]), so the change and its record commit together. Records of the
//! other requests go through one writer thread that appends everything queued in one
//! transaction (group commit): a caller of [`AuditTrail::record`] waits until its record is
//! committed, and many concurrent callers share one synced commit. The store's single writer
//! keeps the chain linear between the two paths.

use super::chain::{AppendError, CheckpointSigner, append};
use super::record::{AuditRecord, EncodeError};
use crate::store::{ResourceStore, StoreError, StoreTx};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Most records appended in one transaction.
const MAX_BATCH: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit log could not be written: {0}")]
    Unavailable(StoreError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error("the audit trail has stopped")]
    Stopped,
    /// The writer could not append the batch the record was in (the words say why).
    #[error("{0}")]
    BatchFailed(String),
}

impl From<AppendError> for AuditError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Encode(e) => AuditError::Encode(e),
            AppendError::Store(e) => AuditError::Unavailable(e),
        }
    }
}

impl From<StoreError> for AuditError {
    fn from(e: StoreError) -> Self {
        AuditError::Unavailable(e)
    }
}

struct Job {
    record: AuditRecord,
    done: SyncSender<Result<u64, String>>,
}

pub struct AuditTrail {
    signer: Arc<CheckpointSigner>,
    queue: Mutex<Option<Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl AuditTrail {
    /// Starts the writer over `store`, signing checkpoints with `signer`.
    pub fn start(store: Arc<dyn ResourceStore>, signer: CheckpointSigner) -> AuditTrail {
        let signer = Arc::new(signer);
        let (queue, jobs) = mpsc::channel();
        let writer = {
            let signer = signer.clone();
            std::thread::Builder::new()
                .name("keel-audit".into())
                .spawn(move || write_batches(&*store, &signer, &jobs))
                .expect("the audit writer thread starts")
        };
        AuditTrail {
            signer,
            queue: Mutex::new(Some(queue)),
            writer: Mutex::new(Some(writer)),
        }
    }

    /// Appends `record` and returns its sequence once it is committed.
    pub fn record(&self, record: AuditRecord) -> Result<u64, AuditError> {
        let (done, committed) = mpsc::sync_channel(1);
        {
            let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let Some(queue) = queue.as_ref() else {
                return Err(AuditError::Stopped);
            };
            queue
                .send(Job { record, done })
                .map_err(|_| AuditError::Stopped)?;
        }
        match committed.recv() {
            Ok(Ok(sequence)) => Ok(sequence),
            Ok(Err(why)) => Err(AuditError::BatchFailed(why)),
            Err(_) => Err(AuditError::Stopped),
        }
    }

    /// Appends `record` inside the caller's write transaction: it commits with the change it
    /// records, or not at all.
    pub fn record_in(&self, tx: &mut dyn StoreTx, record: &AuditRecord) -> Result<u64, AuditError> {
        Ok(append(tx, record, &self.signer)?.sequence)
    }

    /// Stops taking records and waits until everything queued is committed.
    pub fn shutdown(&self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = writer.join();
        }
    }
}

impl Drop for AuditTrail {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The writer thread: takes what is queued, appends it in one transaction, answers each caller.
fn write_batches(store: &dyn ResourceStore, signer: &CheckpointSigner, jobs: &Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match append_batch(store, signer, &batch) {
            Ok(sequences) => {
                for (job, sequence) in batch.into_iter().zip(sequences) {
                    let _ = job.done.send(Ok(sequence));
                }
            }
            Err(e) => {
                let why = e.to_string();
                for job in batch {
                    let _ = job.done.send(Err(why.clone()));
                }
            }
        }
    }
}

fn append_batch(
    store: &dyn ResourceStore,
    signer: &CheckpointSigner,
    batch: &[Job],
) -> Result<Vec<u64>, AuditError> {
    let mut tx = store.begin()?;
    let sequences = batch
        .iter()
        .map(|job| Ok(append(tx.as_mut(), &job.record, signer)?.sequence))
        .collect::<Result<Vec<u64>, AuditError>>()?;
    tx.commit()?;
    Ok(sequences)
}
