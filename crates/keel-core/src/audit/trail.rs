//! The audit trail of a running Keel: every request's record is appended to the store's hash
//! chain before its response leaves.
//!
//! Records of requests that write are appended inside their own write transaction
//! ([`AuditTrail::record_in`]), so the change and its record commit together. Records of the
//! other requests are group-committed by the trail's writer thread: a caller queues its record
//! ([`AuditTrail::submit`]) and waits on the [`PendingAudit`] it gets back — awaiting it (an
//! async handler: no thread is held while the commit runs) or blocking on it
//! ([`AuditTrail::record`]). The writer appends everything queued in one synced transaction,
//! so many concurrent requests share one commit, and it is woken only when it has nothing
//! queued (BENCHMARKS.md, issue 5: a thread parked and woken per record, and every waiter woken
//! by every commit, cost more than the reads). The store's single writer keeps the chain
//! linear between the two paths.

use super::chain::{AppendError, CheckpointSigner, append};
use super::record::{AuditRecord, EncodeError};
use crate::store::{ResourceStore, StoreError, StoreTx};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
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

pub struct AuditTrail {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// What the callers and the writer share.
struct Shared {
    store: Arc<dyn ResourceStore>,
    signer: CheckpointSigner,
    queue: Mutex<Queue>,
    /// Signalled when a record is queued into an empty queue, or the trail stops.
    queued: Condvar,
}

#[derive(Default)]
struct Queue {
    records: Vec<(AuditRecord, Arc<Completion>)>,
    stopped: bool,
}

impl AuditTrail {
    /// Starts taking records for `store`, signing checkpoints with `signer`: starts the
    /// writer thread.
    pub fn start(store: Arc<dyn ResourceStore>, signer: CheckpointSigner) -> AuditTrail {
        let shared = Arc::new(Shared {
            store,
            signer,
            queue: Mutex::new(Queue::default()),
            queued: Condvar::new(),
        });
        let writer = std::thread::Builder::new()
            .name("keel-audit-writer".into())
            .spawn({
                let shared = shared.clone();
                move || shared.write_until_stopped()
            })
            .unwrap_or_else(|e| panic!("the audit writer thread could not start: {e}"));
        AuditTrail {
            shared,
            writer: Mutex::new(Some(writer)),
        }
    }

    /// Queues `record`; the returned [`PendingAudit`] gives its sequence once it is committed.
    pub fn submit(&self, record: AuditRecord) -> Result<PendingAudit, AuditError> {
        let completion = Arc::new(Completion::default());
        let mut queue = self.shared.lock();
        if queue.stopped {
            return Err(AuditError::Stopped);
        }
        // The writer waits only on an empty queue; otherwise it takes this record next.
        if queue.records.is_empty() {
            self.shared.queued.notify_one();
        }
        queue.records.push((record, completion.clone()));
        Ok(PendingAudit(completion))
    }

    /// Appends `record` and returns its sequence once it is committed (blocking).
    pub fn record(&self, record: AuditRecord) -> Result<u64, AuditError> {
        self.submit(record)?.wait()
    }

    /// Appends `record` inside the caller's write transaction: it commits with the change it
    /// records, or not at all.
    pub fn record_in(&self, tx: &mut dyn StoreTx, record: &AuditRecord) -> Result<u64, AuditError> {
        Ok(append(tx, record, &self.shared.signer)?.sequence)
    }

    /// Stops taking records and waits until everything queued is committed.
    pub fn shutdown(&self) {
        self.shared.lock().stopped = true;
        self.shared.queued.notify_one();
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            // Err only if the writer itself panicked: then there is nothing left to wait for.
            let _ = writer.join();
        }
    }
}

impl Drop for AuditTrail {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer thread: commits what is queued, batch after batch, until the trail stops
    /// and the queue is empty.
    fn write_until_stopped(&self) {
        loop {
            let batch: Vec<(AuditRecord, Arc<Completion>)> = {
                let mut queue = self.lock();
                while queue.records.is_empty() && !queue.stopped {
                    queue = self.queued.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
                if queue.records.is_empty() {
                    return;
                }
                let take = queue.records.len().min(MAX_BATCH);
                queue.records.drain(..take).collect()
            };
            // A panic inside the store fails this batch's callers instead of leaving them
            // waiting for ever; the writer goes on with the next batch.
            let appended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                append_batch(&*self.store, &self.signer, &batch)
            }))
            .unwrap_or_else(|_| {
                Err(AuditError::BatchFailed(
                    "the audit writer failed while appending".into(),
                ))
            });
            match appended {
                Ok(sequences) => {
                    for ((_, completion), sequence) in batch.iter().zip(sequences) {
                        completion.complete(Ok(sequence));
                    }
                }
                Err(e) => {
                    let why = e.to_string();
                    for (_, completion) in &batch {
                        completion.complete(Err(why.clone()));
                    }
                }
            }
        }
    }
}

/// A queued record: await it, or [`wait`](PendingAudit::wait) for it, to learn its sequence once
/// it is committed.
pub struct PendingAudit(Arc<Completion>);

impl PendingAudit {
    /// Blocks until the record is committed.
    pub fn wait(self) -> Result<u64, AuditError> {
        let mut slot = self.0.lock();
        slot.blocking = true;
        loop {
            if let Some(result) = slot.result.take() {
                return result.map_err(AuditError::BatchFailed);
            }
            slot = self.0.done.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Future for PendingAudit {
    type Output = Result<u64, AuditError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.0.lock();
        if let Some(result) = slot.result.take() {
            return Poll::Ready(result.map_err(AuditError::BatchFailed));
        }
        match &slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// Where the writer leaves one record's outcome for its caller.
#[derive(Default)]
struct Completion {
    slot: Mutex<Slot>,
    /// Signalled when the outcome is left, for a blocking caller.
    done: Condvar,
}

#[derive(Default)]
struct Slot {
    result: Option<Result<u64, String>>,
    waker: Option<Waker>,
    blocking: bool,
}

impl Completion {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn complete(&self, result: Result<u64, String>) {
        let waker = {
            let mut slot = self.lock();
            slot.result = Some(result);
            if slot.blocking {
                self.done.notify_one();
            }
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

fn append_batch(
    store: &dyn ResourceStore,
    signer: &CheckpointSigner,
    batch: &[(AuditRecord, Arc<Completion>)],
) -> Result<Vec<u64>, AuditError> {
    let mut tx = store.begin()?;
    let sequences = batch
        .iter()
        .map(|(record, _)| Ok(append(tx.as_mut(), record, signer)?.sequence))
        .collect::<Result<Vec<u64>, AuditError>>()?;
    tx.commit()?;
    Ok(sequences)
}
