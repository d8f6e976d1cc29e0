//! The audit log in SQLite: `audit(sequence, record, hash)` and
//! `audit_checkpoints(sequence, hash, signature)`. Only inserts and selects; nothing here
//! updates or deletes. Reads take what is stored as it is (a record's bytes whether stored as
//! BLOB or TEXT) so that tampering reaches the verifier instead of failing the read; a hash or
//! signature of the wrong length or a negative sequence is an integrity error naming the row.

use crate::sqlite::unavailable;
use keel_core::audit::{AuditEntry, ChainHash, Checkpoint};
use keel_core::store::{StoreError, StoreResult};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};

pub fn head(conn: &Connection) -> StoreResult<Option<(u64, ChainHash)>> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT sequence, hash FROM audit ORDER BY sequence DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(unavailable)?;
    row.map(|(sequence, hash)| {
        let sequence = sequence_of(sequence)?;
        Ok((
            sequence,
            fixed(&hash, "audit entry", sequence).map(ChainHash)?,
        ))
    })
    .transpose()
}

pub fn append(conn: &Connection, entry: &AuditEntry) -> StoreResult<()> {
    insert(
        conn,
        "INSERT INTO audit(sequence, record, hash) VALUES (?, ?, ?)",
        params![sequence_sql(entry.sequence)?, entry.record, entry.hash.0],
        entry.sequence,
    )
}

pub fn append_checkpoint(conn: &Connection, checkpoint: &Checkpoint) -> StoreResult<()> {
    insert(
        conn,
        "INSERT INTO audit_checkpoints(sequence, hash, signature) VALUES (?, ?, ?)",
        params![
            sequence_sql(checkpoint.sequence)?,
            checkpoint.hash.0,
            checkpoint.signature
        ],
        checkpoint.sequence,
    )
}

fn insert(
    conn: &Connection,
    sql: &str,
    values: impl rusqlite::Params,
    sequence: u64,
) -> StoreResult<()> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute(values))
        .map(|_| ())
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StoreError::Conflict(format!("audit sequence {sequence} is already taken"))
            }
            other => unavailable(other),
        })
}

pub fn entries(conn: &Connection, from: u64, limit: usize) -> StoreResult<Vec<AuditEntry>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT sequence, record, hash FROM audit WHERE sequence >= ? ORDER BY sequence LIMIT ?",
        )
        .map_err(unavailable)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt
        .query(params![sequence_sql(from)?, limit])
        .map_err(unavailable)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        let sequence = sequence_of(row.get(0).map_err(unavailable)?)?;
        let record = bytes(row.get_ref(1).map_err(unavailable)?).to_vec();
        let hash = fixed(
            bytes(row.get_ref(2).map_err(unavailable)?),
            "audit entry",
            sequence,
        )?;
        out.push(AuditEntry {
            sequence,
            record,
            hash: ChainHash(hash),
        });
    }
    Ok(out)
}

pub fn checkpoints(conn: &Connection) -> StoreResult<Vec<Checkpoint>> {
    let mut stmt = conn
        .prepare_cached("SELECT sequence, hash, signature FROM audit_checkpoints ORDER BY sequence")
        .map_err(unavailable)?;
    let mut rows = stmt.query([]).map_err(unavailable)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        let sequence = sequence_of(row.get(0).map_err(unavailable)?)?;
        let hash = fixed(
            bytes(row.get_ref(1).map_err(unavailable)?),
            "checkpoint",
            sequence,
        )?;
        let signature = fixed(
            bytes(row.get_ref(2).map_err(unavailable)?),
            "checkpoint",
            sequence,
        )?;
        out.push(Checkpoint {
            sequence,
            hash: ChainHash(hash),
            signature,
        });
    }
    Ok(out)
}

/// The bytes of a BLOB or TEXT value; empty for anything else.
fn bytes(value: ValueRef<'_>) -> &[u8] {
    match value {
        ValueRef::Blob(b) | ValueRef::Text(b) => b,
        _ => &[],
    }
}

fn fixed<const N: usize>(value: &[u8], what: &str, sequence: u64) -> StoreResult<[u8; N]> {
    value.try_into().map_err(|_| {
        StoreError::Integrity(format!(
            "{what} {sequence}: a stored hash or signature has {} bytes, not {N}",
            value.len()
        ))
    })
}

fn sequence_of(stored: i64) -> StoreResult<u64> {
    u64::try_from(stored)
        .map_err(|_| StoreError::Integrity(format!("audit sequence {stored} is negative")))
}

fn sequence_sql(sequence: u64) -> StoreResult<i64> {
    i64::try_from(sequence)
        .map_err(|_| StoreError::Integrity(format!("audit sequence {sequence} is too large")))
}
