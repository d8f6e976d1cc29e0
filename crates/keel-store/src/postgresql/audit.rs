//! The audit log in PostgreSQL: `audit(sequence, record, hash)` and
//! `audit_checkpoints(sequence, hash, signature)`. Only inserts and selects; nothing here
//! updates or deletes. A taken sequence is a conflict and leaves the transaction usable.
//!
//! A write transaction holds the schema's write lock, so nobody else appends while it is open:
//! it reads the head once, in the round trip that begins it ([`begin`]), and entries after
//! that head ([`PendingAudit`]), which cannot be
//! taken, are held back and written in one statement when the transaction commits or reads
//! the log (a read appended under load costs one round trip per group commit, not two per
//! record).

use super::{PgConn, unavailable};
use keel_core::audit::{AuditEntry, ChainHash, Checkpoint};
use keel_core::store::{StoreError, StoreResult};
use postgres::SimpleQueryMessage;

pub fn head(conn: &mut PgConn) -> StoreResult<Option<(u64, ChainHash)>> {
    let row = conn
        .query_opt(
            "SELECT sequence, hash FROM audit ORDER BY sequence DESC LIMIT 1",
            &[],
        )
        .map_err(unavailable)?;
    row.map(|row| {
        let sequence = sequence_of(row.get(0))?;
        let hash: Vec<u8> = row.get(1);
        Ok((
            sequence,
            fixed(&hash, "audit entry", sequence).map(ChainHash)?,
        ))
    })
    .transpose()
}

/// Begins a transaction holding this schema's write lock until it ends, and reads the audit
/// log's head under that lock: one round trip.
pub(super) fn begin(conn: &mut PgConn) -> StoreResult<PendingAudit> {
    let messages = conn
        .client
        .simple_query(
            "BEGIN; SELECT pg_advisory_xact_lock(hashtext('keel.write:' || current_schema())); \
             SELECT sequence, encode(hash, 'hex') FROM audit ORDER BY sequence DESC LIMIT 1",
        )
        .map_err(unavailable)?;
    // The head's row, if any, follows the second statement's completion.
    let mut completed = 0;
    let mut head = None;
    for message in &messages {
        match message {
            SimpleQueryMessage::CommandComplete(_) => completed += 1,
            SimpleQueryMessage::Row(row) if completed == 2 => {
                let sequence = row
                    .get(0)
                    .and_then(|text| text.parse::<i64>().ok())
                    .ok_or_else(|| StoreError::Integrity("the audit head is unreadable".into()))?;
                let sequence = sequence_of(sequence)?;
                let hash = row.get(1).and_then(from_hex).ok_or_else(|| {
                    StoreError::Integrity(format!("audit entry {sequence}: its hash is unreadable"))
                })?;
                head = Some((
                    sequence,
                    fixed(&hash, "audit entry", sequence).map(ChainHash)?,
                ));
            }
            _ => {}
        }
    }
    Ok(PendingAudit {
        head: Some(head),
        ..PendingAudit::default()
    })
}

/// Bytes from hexadecimal text (as `encode(..., 'hex')` writes them).
fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The audit entries of an open write transaction that are not written yet, and the log's
/// head as the transaction knows it.
#[derive(Default)]
pub(super) struct PendingAudit {
    /// The head, held back entries included (`None` until read).
    head: Option<Option<(u64, ChainHash)>>,
    sequences: Vec<i64>,
    records: Vec<Vec<u8>>,
    hashes: Vec<Vec<u8>>,
}

impl PendingAudit {
    pub(super) fn head(&mut self, conn: &mut PgConn) -> StoreResult<Option<(u64, ChainHash)>> {
        if let Some(known) = self.head {
            return Ok(known);
        }
        let stored = head(conn)?;
        self.head = Some(stored);
        Ok(stored)
    }

    /// Holds `entry` back when it comes after the head (its sequence cannot be taken); any
    /// other sequence is decided by the database at once, as [`append`] does.
    pub(super) fn append(&mut self, conn: &mut PgConn, entry: &AuditEntry) -> StoreResult<()> {
        let after_head = match self.head(conn)? {
            Some((last, _)) => entry.sequence > last,
            None => true,
        };
        if !after_head {
            self.flush(conn)?;
            return append(conn, entry);
        }
        self.sequences.push(sequence_sql(entry.sequence)?);
        self.records.push(entry.record.clone());
        self.hashes.push(entry.hash.0.to_vec());
        self.head = Some(Some((entry.sequence, entry.hash)));
        Ok(())
    }

    /// Writes the held back entries.
    pub(super) fn flush(&mut self, conn: &mut PgConn) -> StoreResult<()> {
        if self.sequences.is_empty() {
            return Ok(());
        }
        let (sequences, records, hashes) = (
            std::mem::take(&mut self.sequences),
            std::mem::take(&mut self.records),
            std::mem::take(&mut self.hashes),
        );
        conn.execute(
            "INSERT INTO audit(sequence, record, hash) \
             SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])",
            &[&sequences, &records, &hashes],
        )
        .map_err(unavailable)?;
        Ok(())
    }
}

pub fn append(conn: &mut PgConn, entry: &AuditEntry) -> StoreResult<()> {
    let inserted = conn
        .execute(
            "INSERT INTO audit(sequence, record, hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[
                &sequence_sql(entry.sequence)?,
                &entry.record,
                &&entry.hash.0[..],
            ],
        )
        .map_err(unavailable)?;
    taken_unless_inserted(inserted, entry.sequence)
}

pub fn append_checkpoint(conn: &mut PgConn, checkpoint: &Checkpoint) -> StoreResult<()> {
    let inserted = conn
        .execute(
            "INSERT INTO audit_checkpoints(sequence, hash, signature) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
            &[
                &sequence_sql(checkpoint.sequence)?,
                &&checkpoint.hash.0[..],
                &&checkpoint.signature[..],
            ],
        )
        .map_err(unavailable)?;
    taken_unless_inserted(inserted, checkpoint.sequence)
}

fn taken_unless_inserted(inserted: u64, sequence: u64) -> StoreResult<()> {
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "audit sequence {sequence} is already taken"
        )));
    }
    Ok(())
}

pub fn entries(conn: &mut PgConn, from: u64, limit: usize) -> StoreResult<Vec<AuditEntry>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = conn
        .query(
            "SELECT sequence, record, hash FROM audit WHERE sequence >= $1 ORDER BY sequence LIMIT $2",
            &[&sequence_sql(from)?, &limit],
        )
        .map_err(unavailable)?;
    rows.into_iter()
        .map(|row| {
            let sequence = sequence_of(row.get(0))?;
            let hash: Vec<u8> = row.get(2);
            Ok(AuditEntry {
                sequence,
                record: row.get(1),
                hash: ChainHash(fixed(&hash, "audit entry", sequence)?),
            })
        })
        .collect()
}

pub fn checkpoints(conn: &mut PgConn) -> StoreResult<Vec<Checkpoint>> {
    let rows = conn
        .query(
            "SELECT sequence, hash, signature FROM audit_checkpoints ORDER BY sequence",
            &[],
        )
        .map_err(unavailable)?;
    rows.into_iter()
        .map(|row| {
            let sequence = sequence_of(row.get(0))?;
            let hash: Vec<u8> = row.get(1);
            let signature: Vec<u8> = row.get(2);
            Ok(Checkpoint {
                sequence,
                hash: ChainHash(fixed(&hash, "checkpoint", sequence)?),
                signature: fixed(&signature, "checkpoint", sequence)?,
            })
        })
        .collect()
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
