//! The job queue and idempotency keys in PostgreSQL (see `keel_core::jobs`). Every change runs
//! in a write transaction, which holds this schema's write lock: claims by nodes on one
//! database are serialised, so one job is never claimed twice for one lease.

use super::{PgConn, unavailable};
use keel_core::jobs::{Claim, Job, JobOutput, JobState, Lease, NewJob};
use keel_core::store::{StoreError, StoreResult};
use postgres::Row;
use postgres::types::ToSql;

const SELECT_JOB: &str = "SELECT id, kind, payload, state, attempts, lease_owner, lease_until, created, updated, progress, result FROM jobs";

/// The condition that `lease` is still the job's current one (parameters 1–3: id, owner,
/// attempt).
const HOLDS_LEASE: &str = "id = $1 AND state = 'running' AND lease_owner = $2 AND attempts = $3";

fn row_to_job(row: &Row) -> StoreResult<Job> {
    let state: String = row.get(3);
    Ok(Job {
        id: row.get::<_, i64>(0) as u64,
        kind: row.get(1),
        payload: row.get(2),
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::Integrity(format!("unknown job state {state:?}")))?,
        attempts: row.get::<_, i32>(4) as u32,
        lease_owner: row.get(5),
        lease_until: row.get(6),
        created: row.get(7),
        updated: row.get(8),
        progress: row.get(9),
        result: row.get(10),
    })
}

fn sql_id(id: u64) -> StoreResult<i64> {
    i64::try_from(id).map_err(|_| StoreError::Integrity(format!("job id {id} is out of range")))
}

fn sql_attempt(attempt: u32) -> StoreResult<i32> {
    i32::try_from(attempt)
        .map_err(|_| StoreError::Integrity(format!("job attempt {attempt} is out of range")))
}

pub fn job(conn: &mut PgConn, id: u64) -> StoreResult<Option<Job>> {
    conn.query_opt(&format!("{SELECT_JOB} WHERE id = $1"), &[&sql_id(id)?])
        .map_err(unavailable)?
        .map(|row| row_to_job(&row))
        .transpose()
}

pub fn outputs(conn: &mut PgConn, id: u64) -> StoreResult<Vec<JobOutput>> {
    let rows = conn
        .query(
            "SELECT part, name, count FROM job_outputs WHERE job = $1 ORDER BY part",
            &[&sql_id(id)?],
        )
        .map_err(unavailable)?;
    Ok(rows
        .iter()
        .map(|r| JobOutput {
            part: r.get::<_, i32>(0) as u32,
            name: r.get(1),
            count: r.get::<_, i64>(2) as u64,
        })
        .collect())
}

pub fn output_content(conn: &mut PgConn, id: u64, part: u32) -> StoreResult<Option<String>> {
    let part = i32::try_from(part).unwrap_or(i32::MAX);
    Ok(conn
        .query_opt(
            "SELECT content FROM job_outputs WHERE job = $1 AND part = $2",
            &[&sql_id(id)?, &part],
        )
        .map_err(unavailable)?
        .map(|r| r.get(0)))
}

pub fn enqueue(conn: &mut PgConn, job: &NewJob) -> StoreResult<u64> {
    let row = conn
        .query_opt(
            "INSERT INTO jobs(kind, payload, state, attempts, created, updated) \
             VALUES ($1, $2, 'queued', 0, $3, $3) RETURNING id",
            &[&job.kind, &job.payload, &job.now],
        )
        .map_err(unavailable)?
        .ok_or_else(|| StoreError::Integrity("enqueueing a job returned no id".into()))?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// The first job of kinds `$1` a claim at `$2` would take.
const CLAIMABLE: &str = "SELECT id FROM jobs WHERE kind = ANY($1) \
     AND (state = 'queued' OR (state = 'running' AND lease_until < $2)) ORDER BY id LIMIT 1";

pub fn claimable(conn: &mut PgConn, kinds: &[&str], now: i64) -> StoreResult<Option<u64>> {
    let kinds: Vec<&str> = kinds.to_vec();
    let row = conn
        .query_opt(CLAIMABLE, &[&kinds, &now])
        .map_err(unavailable)?;
    Ok(row.map(|r| r.get::<_, i64>(0) as u64))
}

pub fn claim(conn: &mut PgConn, claim: &Claim<'_>) -> StoreResult<Option<Job>> {
    let kinds: Vec<&str> = claim.kinds.to_vec();
    let row = conn
        .query_opt(
            &format!(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $3, \
                 lease_until = $4, updated = $2, progress = NULL WHERE id = ({CLAIMABLE}) \
                 RETURNING id"
            ),
            &[&kinds, &claim.now, &claim.owner, &claim.lease_until],
        )
        .map_err(unavailable)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let id: i64 = row.get(0);
    let claimed = job(conn, id as u64)?;
    if claimed.as_ref().is_some_and(|j| j.attempts > 1) {
        // An earlier attempt may have written outputs before it lost the job.
        conn.execute("DELETE FROM job_outputs WHERE job = $1", &[&id])
            .map_err(unavailable)?;
    }
    Ok(claimed)
}

pub fn renew(
    conn: &mut PgConn,
    lease: &Lease,
    now: i64,
    until: i64,
    progress: &str,
) -> StoreResult<bool> {
    fenced(
        conn,
        &format!(
            "UPDATE jobs SET lease_until = $4, updated = $5, progress = $6 WHERE {HOLDS_LEASE}"
        ),
        lease,
        &[&until, &now, &progress],
    )
}

pub fn add_output(
    conn: &mut PgConn,
    lease: &Lease,
    output: &JobOutput,
    content: &str,
) -> StoreResult<bool> {
    let part = i32::try_from(output.part)
        .map_err(|_| StoreError::Integrity("job output part out of range".into()))?;
    let count = i64::try_from(output.count)
        .map_err(|_| StoreError::Integrity("job output count out of range".into()))?;
    fenced(
        conn,
        &format!(
            "INSERT INTO job_outputs(job, part, name, count, content) \
             SELECT $1, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM jobs WHERE {HOLDS_LEASE})"
        ),
        lease,
        &[&part, &output.name, &count, &content],
    )
}

pub fn finish(
    conn: &mut PgConn,
    lease: &Lease,
    state: JobState,
    result: &str,
    now: i64,
) -> StoreResult<bool> {
    if !matches!(state, JobState::Done | JobState::Failed) {
        return Err(StoreError::Integrity(format!(
            "a job attempt ends done or failed, not {}",
            state.as_str()
        )));
    }
    fenced(
        conn,
        &format!(
            "UPDATE jobs SET state = $4, result = $5, updated = $6, lease_until = NULL WHERE {HOLDS_LEASE}"
        ),
        lease,
        &[&state.as_str(), &result, &now],
    )
}

pub fn cancel(conn: &mut PgConn, id: u64, now: i64) -> StoreResult<bool> {
    let id = sql_id(id)?;
    let changed = conn
        .execute(
            "UPDATE jobs SET state = 'cancelled', updated = $1, lease_until = NULL \
             WHERE id = $2 AND state IN ('queued', 'running', 'done')",
            &[&now, &id],
        )
        .map_err(unavailable)?;
    if changed == 1 {
        conn.execute("DELETE FROM job_outputs WHERE job = $1", &[&id])
            .map_err(unavailable)?;
    }
    Ok(changed == 1)
}

/// Runs `sql` with the lease as parameters 1–3 and `rest` from 4; true when it changed a row.
fn fenced(
    conn: &mut PgConn,
    sql: &str,
    lease: &Lease,
    rest: &[&(dyn ToSql + Sync)],
) -> StoreResult<bool> {
    let id = sql_id(lease.job)?;
    let attempt = sql_attempt(lease.attempt)?;
    let mut values: Vec<&(dyn ToSql + Sync)> = vec![&id, &lease.owner, &attempt];
    values.extend_from_slice(rest);
    let changed = conn.execute(sql, &values).map_err(unavailable)?;
    Ok(changed == 1)
}

pub fn idempotent_response(conn: &mut PgConn, key: &str) -> StoreResult<Option<String>> {
    Ok(conn
        .query_opt(
            "SELECT response FROM idempotency_keys WHERE key = $1",
            &[&key],
        )
        .map_err(unavailable)?
        .map(|r| r.get(0)))
}

/// A taken key is a conflict that leaves the transaction usable (no failed statement).
pub fn record_idempotent_response(
    conn: &mut PgConn,
    key: &str,
    response: &str,
    now: i64,
) -> StoreResult<()> {
    let inserted = conn
        .execute(
            "INSERT INTO idempotency_keys(key, response, created) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            &[&key, &response, &now],
        )
        .map_err(unavailable)?;
    if inserted == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(
            "the idempotency key is already recorded".into(),
        ))
    }
}
