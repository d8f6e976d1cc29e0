//! The job queue and idempotency keys in SQLite (see `keel_core::jobs`). A write transaction
//! holds the only writer connection, so a claim cannot race with another claim.

use crate::sqlite::unavailable;
use keel_core::jobs::{Claim, Job, JobOutput, JobState, Lease, NewJob};
use keel_core::store::{StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, params};

const SELECT_JOB: &str = "SELECT id, kind, payload, state, attempts, lease_owner, lease_until, created, updated, progress, result FROM jobs";

/// The condition that `lease` is still the job's current one (parameters 1–3: id, owner,
/// attempt).
const HOLDS_LEASE: &str = "id = ?1 AND state = 'running' AND lease_owner = ?2 AND attempts = ?3";

fn row_to_job(row: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let state: String = row.get(3)?;
    Ok(Job {
        id: row.get::<_, i64>(0)? as u64,
        kind: row.get(1)?,
        payload: row.get(2)?,
        state: JobState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("unknown job state {state:?}").into(),
            )
        })?,
        attempts: row.get::<_, i64>(4)? as u32,
        lease_owner: row.get(5)?,
        lease_until: row.get(6)?,
        created: row.get(7)?,
        updated: row.get(8)?,
        progress: row.get(9)?,
        result: row.get(10)?,
    })
}

fn sql_id(id: u64) -> StoreResult<i64> {
    i64::try_from(id).map_err(|_| StoreError::Integrity(format!("job id {id} is out of range")))
}

pub fn job(conn: &Connection, id: u64) -> StoreResult<Option<Job>> {
    let id = sql_id(id)?;
    conn.prepare_cached(&format!("{SELECT_JOB} WHERE id = ?"))
        .and_then(|mut s| s.query_row([id], row_to_job).optional())
        .map_err(unavailable)
}

pub fn outputs(conn: &Connection, id: u64) -> StoreResult<Vec<JobOutput>> {
    let mut stmt = conn
        .prepare_cached("SELECT part, name, count FROM job_outputs WHERE job = ? ORDER BY part")
        .map_err(unavailable)?;
    let rows = stmt
        .query_map([sql_id(id)?], |r| {
            Ok(JobOutput {
                part: r.get::<_, i64>(0)? as u32,
                name: r.get(1)?,
                count: r.get::<_, i64>(2)? as u64,
            })
        })
        .map_err(unavailable)?;
    rows.collect::<Result<_, _>>().map_err(unavailable)
}

pub fn output_content(conn: &Connection, id: u64, part: u32) -> StoreResult<Option<String>> {
    let id = sql_id(id)?;
    conn.prepare_cached("SELECT content FROM job_outputs WHERE job = ? AND part = ?")
        .and_then(|mut s| s.query_row(params![id, part], |r| r.get(0)).optional())
        .map_err(unavailable)
}

pub fn enqueue(conn: &Connection, job: &NewJob) -> StoreResult<u64> {
    conn.prepare_cached(
        "INSERT INTO jobs(kind, payload, state, attempts, created, updated) VALUES (?, ?, 'queued', 0, ?, ?)",
    )
    .and_then(|mut s| s.execute(params![job.kind, job.payload, job.now, job.now]))
    .map_err(unavailable)?;
    Ok(conn.last_insert_rowid() as u64)
}

/// The first job of `kinds` a claim at `now` would take.
pub fn claimable(conn: &Connection, kinds: &[&str], now: i64) -> StoreResult<Option<u64>> {
    let placeholders = vec!["?"; kinds.len()].join(", ");
    let found: Option<i64> = conn
        .prepare_cached(&format!(
            "SELECT id FROM jobs WHERE kind IN ({placeholders}) AND (state = 'queued' OR (state = 'running' AND lease_until < ?)) ORDER BY id LIMIT 1"
        ))
        .and_then(|mut s| {
            let mut values: Vec<&dyn rusqlite::ToSql> =
                kinds.iter().map(|k| k as &dyn rusqlite::ToSql).collect();
            values.push(&now);
            s.query_row(values.as_slice(), |r| r.get(0)).optional()
        })
        .map_err(unavailable)?;
    Ok(found.map(|id| id as u64))
}

pub fn claim(conn: &Connection, claim: &Claim<'_>) -> StoreResult<Option<Job>> {
    let Some(id) = claimable(conn, claim.kinds, claim.now)? else {
        return Ok(None);
    };
    let id = id as i64;
    conn.prepare_cached(
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?, lease_until = ?, updated = ?, progress = NULL WHERE id = ?",
    )
    .and_then(|mut s| s.execute(params![claim.owner, claim.lease_until, claim.now, id]))
    .map_err(unavailable)?;
    let claimed = job(conn, id as u64)?;
    if claimed.as_ref().is_some_and(|j| j.attempts > 1) {
        // An earlier attempt may have written outputs before it lost the job.
        remove_outputs(conn, id)?;
    }
    Ok(claimed)
}

pub fn renew(
    conn: &Connection,
    lease: &Lease,
    now: i64,
    until: i64,
    progress: &str,
) -> StoreResult<bool> {
    fenced(
        conn,
        &format!(
            "UPDATE jobs SET lease_until = ?4, updated = ?5, progress = ?6 WHERE {HOLDS_LEASE}"
        ),
        lease,
        &[&until, &now, &progress],
    )
}

pub fn add_output(
    conn: &Connection,
    lease: &Lease,
    output: &JobOutput,
    content: &str,
) -> StoreResult<bool> {
    let count = i64::try_from(output.count)
        .map_err(|_| StoreError::Integrity("job output count out of range".into()))?;
    fenced(
        conn,
        &format!(
            "INSERT INTO job_outputs(job, part, name, count, content) SELECT ?1, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM jobs WHERE {HOLDS_LEASE})"
        ),
        lease,
        &[&output.part, &output.name, &count, &content],
    )
}

pub fn finish(
    conn: &Connection,
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
            "UPDATE jobs SET state = ?4, result = ?5, updated = ?6, lease_until = NULL WHERE {HOLDS_LEASE}"
        ),
        lease,
        &[&state.as_str(), &result, &now],
    )
}

pub fn cancel(conn: &Connection, id: u64, now: i64) -> StoreResult<bool> {
    let id = sql_id(id)?;
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET state = 'cancelled', updated = ?, lease_until = NULL WHERE id = ? AND state IN ('queued', 'running', 'done')",
        )
        .and_then(|mut s| s.execute(params![now, id]))
        .map_err(unavailable)?;
    if changed == 1 {
        remove_outputs(conn, id)?;
    }
    Ok(changed == 1)
}

fn remove_outputs(conn: &Connection, id: i64) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM job_outputs WHERE job = ?")
        .and_then(|mut s| s.execute([id]))
        .map(|_| ())
        .map_err(unavailable)
}

/// Runs `sql` with the lease as parameters 1–3 and `rest` from 4; true when it changed a row.
fn fenced(
    conn: &Connection,
    sql: &str,
    lease: &Lease,
    rest: &[&dyn rusqlite::ToSql],
) -> StoreResult<bool> {
    let id = sql_id(lease.job)?;
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&id, &lease.owner, &lease.attempt];
    values.extend_from_slice(rest);
    let changed = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute(values.as_slice()))
        .map_err(unavailable)?;
    Ok(changed == 1)
}

pub fn idempotent_response(conn: &Connection, key: &str) -> StoreResult<Option<String>> {
    conn.prepare_cached("SELECT response FROM idempotency_keys WHERE key = ?")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .map_err(unavailable)
}

pub fn record_idempotent_response(
    conn: &Connection,
    key: &str,
    response: &str,
    now: i64,
) -> StoreResult<()> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO idempotency_keys(key, response, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .and_then(|mut s| s.execute(params![key, response, now]))
        .map_err(unavailable)?;
    if inserted == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(
            "the idempotency key is already recorded".into(),
        ))
    }
}
