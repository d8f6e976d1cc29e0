//! The audit trail of a running Keel: every request's record is appended to the store's hash
//! chain before its response leaves.
//!
//! Records of requests that write are appended inside their own write transaction
//! ([`AuditTrail::record_in`]), so the change and its record commit together. Records of the
//! other requests are group-committed: a caller of [`AuditTrail::record`] queues its record and
//! either finds another caller already committing — then waits until that caller, or the next,
//! has committed it — or becomes the committer itself and appends everything queued (its own
//! record included) in one synced transaction. Many concurrent callers share one commit, and no
//! record waits for a thread that is not already running (a dedicated writer thread, woken for
//! each batch, cost more than the commit on a loaded machine: BENCHMARKS.md, issue 5). The
//! store's single writer keeps the chain linear between the two paths.

use super::chain::{AppendError, CheckpointSigner, append};
use super::record::{AuditRecord, EncodeError};
use crate::store::{ResourceStore, StoreError, StoreTx};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

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
    store: std::sync::Arc<dyn ResourceStore>,
    signer: CheckpointSigner,
    state: Mutex<GroupCommit>,
    /// Signalled whenever a commit ends.
    committed: Condvar,
}

/// What the callers share: the records waiting to be committed, whether one of them is
/// committing, and the results not yet collected by their callers.
#[derive(Default)]
struct GroupCommit {
    queue: Vec<(u64, AuditRecord)>,
    next_ticket: u64,
    committing: bool,
    results: HashMap<u64, Result<u64, String>>,
    stopped: bool,
}

impl AuditTrail {
    /// Starts taking records for `store`, signing checkpoints with `signer`.
    pub fn start(store: std::sync::Arc<dyn ResourceStore>, signer: CheckpointSigner) -> AuditTrail {
        AuditTrail {
            store,
            signer,
            state: Mutex::new(GroupCommit::default()),
            committed: Condvar::new(),
        }
    }

    /// Appends `record` and returns its sequence once it is committed.
    pub fn record(&self, record: AuditRecord) -> Result<u64, AuditError> {
        let mut state = self.lock();
        if state.stopped {
            return Err(AuditError::Stopped);
        }
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push((ticket, record));
        loop {
            if let Some(result) = state.results.remove(&ticket) {
                return result.map_err(AuditError::BatchFailed);
            }
            if state.committing {
                state = self
                    .committed
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
                continue;
            }
            // Nobody is committing and this record is not yet committed: commit what is queued.
            state.committing = true;
            let take = state.queue.len().min(MAX_BATCH);
            let batch: Vec<(u64, AuditRecord)> = state.queue.drain(..take).collect();
            drop(state);
            let outcome = append_batch(&*self.store, &self.signer, &batch);
            state = self.lock();
            match outcome {
                Ok(sequences) => {
                    for ((ticket, _), sequence) in batch.iter().zip(sequences) {
                        state.results.insert(*ticket, Ok(sequence));
                    }
                }
                Err(e) => {
                    let why = e.to_string();
                    for (ticket, _) in &batch {
                        state.results.insert(*ticket, Err(why.clone()));
                    }
                }
            }
            state.committing = false;
            self.committed.notify_all();
        }
    }

    /// Appends `record` inside the caller's write transaction: it commits with the change it
    /// records, or not at all.
    pub fn record_in(&self, tx: &mut dyn StoreTx, record: &AuditRecord) -> Result<u64, AuditError> {
        Ok(append(tx, record, &self.signer)?.sequence)
    }

    /// Stops taking records and waits until everything queued is committed (by the callers
    /// that queued it, who are waiting for it).
    pub fn shutdown(&self) {
        let mut state = self.lock();
        state.stopped = true;
        while state.committing || !state.queue.is_empty() {
            state = self
                .committed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn lock(&self) -> MutexGuard<'_, GroupCommit> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn append_batch(
    store: &dyn ResourceStore,
    signer: &CheckpointSigner,
    batch: &[(u64, AuditRecord)],
) -> Result<Vec<u64>, AuditError> {
    let mut tx = store.begin()?;
    let sequences = batch
        .iter()
        .map(|(_, record)| Ok(append(tx.as_mut(), record, signer)?.sequence))
        .collect::<Result<Vec<u64>, AuditError>>()?;
    tx.commit()?;
    Ok(sequences)
}
