//! Background jobs: work that outlives the request that asked for it (a bulk export), run by
//! whichever Keel node claims it first. Jobs live in the record store, so every node on one
//! database sees the same queue.
//!
//! - **Outbox.** A job is enqueued inside a write transaction ([`JobQueue::enqueue_job`]): it
//!   exists exactly when the change that asked for it (and that request's audit record) does.
//! - **Leases.** A node claims a job for a limited time and renews the lease while it works.
//!   A node that dies stops renewing; once the lease has ended another node claims the job
//!   again, as a new attempt.
//! - **Fencing.** Everything an attempt writes (its outputs, its progress, its end) is written
//!   only while that attempt still holds the lease, in the same transaction as the check. A
//!   node that lost its lease (paused, partitioned) cannot write over its successor, and a new
//!   attempt starts from nothing (the earlier attempt's outputs are removed when it claims), so
//!   a job's effects are those of exactly one attempt.

use crate::store::StoreResult;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting to be claimed.
    Queued,
    /// Claimed by a node under a lease (which may have ended: the job is then claimable).
    Running,
    /// Finished; its outputs are complete.
    Done,
    /// Ended with an error that another attempt would not fix.
    Failed,
    /// Cancelled by its requester (before or after it finished); its outputs are removed.
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<JobState> {
        Some(match text {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }

    /// Will the job not run again?
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Done | JobState::Failed | JobState::Cancelled
        )
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// What runs it, e.g. `export`.
    pub kind: String,
    /// The job's parameters (JSON), as its kind defines them.
    pub payload: String,
    /// Milliseconds since the Unix epoch.
    pub now: i64,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: u64,
    pub kind: String,
    pub payload: String,
    pub state: JobState,
    /// How many times it has been claimed.
    pub attempts: u32,
    /// The node holding (or last holding) the lease, while running.
    pub lease_owner: Option<String>,
    /// When the lease ends (ms), while running.
    pub lease_until: Option<i64>,
    pub created: i64,
    pub updated: i64,
    /// A short progress note for whoever polls the job.
    pub progress: Option<String>,
    /// The outcome once final (JSON, as the kind defines it).
    pub result: Option<String>,
}

impl Job {
    /// The lease of the current attempt, as held by `owner`.
    pub fn lease(&self) -> Option<Lease> {
        Some(Lease {
            job: self.id,
            owner: self.lease_owner.clone()?,
            attempt: self.attempts,
        })
    }
}

/// One attempt's hold on a job: valid while the job is running under this owner and attempt
/// and the lease has not been taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job: u64,
    pub owner: String,
    pub attempt: u32,
}

/// What to claim: the oldest queued job of one of `kinds`, or a running one whose lease ended
/// before `now`.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim<'a> {
    pub kinds: &'a [&'a str],
    pub owner: &'a str,
    pub now: i64,
    pub lease_until: i64,
}

/// One output file of a job (a part of an export), without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutput {
    /// Its number within the job, from 1.
    pub part: u32,
    /// What it holds, e.g. the resource type of an export part.
    pub name: String,
    /// How many items (resources) it holds.
    pub count: u64,
}

/// Reading jobs (any node, any connection).
pub trait JobRead {
    fn job(&mut self, id: u64) -> StoreResult<Option<Job>>;
    /// The job a claim of `kinds` at `now` would take (queued, or running under an expired
    /// lease), if any: a read, so that an idle worker need not open a write transaction.
    fn claimable_job(&mut self, kinds: &[&str], now: i64) -> StoreResult<Option<u64>>;
    /// The job's outputs in part order.
    fn job_outputs(&mut self, id: u64) -> StoreResult<Vec<JobOutput>>;
    fn job_output_content(&mut self, id: u64, part: u32) -> StoreResult<Option<String>>;
}

/// Changing jobs, inside a write transaction. Calls that take a [`Lease`] write only while it
/// is still the job's current lease and say whether they did; when one says no, the attempt
/// has lost the job and must roll its transaction back.
pub trait JobQueue {
    /// Enqueues a job that commits with the transaction (the outbox); returns its id.
    fn enqueue_job(&mut self, job: &NewJob) -> StoreResult<u64>;
    /// Claims a job as a new attempt (removing an earlier attempt's outputs).
    fn claim_job(&mut self, claim: &Claim<'_>) -> StoreResult<Option<Job>>;
    /// Extends the lease to `until` and notes progress.
    fn renew_job_lease(
        &mut self,
        lease: &Lease,
        now: i64,
        until: i64,
        progress: &str,
    ) -> StoreResult<bool>;
    fn add_job_output(
        &mut self,
        lease: &Lease,
        output: &JobOutput,
        content: &str,
    ) -> StoreResult<bool>;
    /// Ends the attempt as `Done` or `Failed` with its result.
    fn finish_job(
        &mut self,
        lease: &Lease,
        state: JobState,
        result: &str,
        now: i64,
    ) -> StoreResult<bool>;
    /// Cancels a job that is queued, running or done (its outputs are then no longer wanted)
    /// and removes its outputs; says whether it did. A failed or cancelled job stays as it is.
    fn cancel_job(&mut self, id: u64, now: i64) -> StoreResult<bool>;
}
