//! New resources (first versions) of an open PostgreSQL write transaction, held back and
//! written together when the transaction next reads, writes a later version or commits: one
//! statement for any number of them, where each had cost a round trip. An import of
//! transaction Bundles writes almost nothing else.
//!
//! A held-back resource needs its row id before it is written (its index rows are held back
//! under it), so ids are taken from the `resources` identity sequence ahead of time, a block
//! at a time ([`RidReserve`]). Ids taken but never written leave gaps, as a rolled-back
//! insert does; nothing depends on ids being dense.

use super::{PgConn, method_code};
use keel_core::store::NewVersion;
use std::collections::HashSet;
use std::sync::Mutex;

/// Row ids taken from the sequence per round trip.
const RID_BLOCK: i64 = 1024;

/// Row ids taken from the `resources` sequence and not yet used, shared by a store's
/// transactions. Each id comes from `nextval`, so several nodes never hand out the same one.
#[derive(Default)]
pub(super) struct RidReserve {
    free: Mutex<Vec<i64>>,
}

impl RidReserve {
    /// A row id for a new resource, taking a block from the sequence when none is left.
    pub(super) fn take(&self, conn: &mut PgConn) -> Result<i64, postgres::Error> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.is_empty() {
            let rows = conn.query(
                "SELECT nextval(pg_get_serial_sequence('resources', 'rid')) \
                 FROM generate_series(1, $1::bigint)",
                &[&RID_BLOCK],
            )?;
            // Handed out lowest first, so resources created in order get ascending ids.
            free.extend(rows.iter().map(|row| row.get::<_, i64>(0)).rev());
        }
        Ok(free.pop().expect("a block of ids was just taken"))
    }
}

/// A resource's first version, held back.
struct Create {
    rid: i64,
    resource_type: String,
    id: String,
    last_updated: i64,
    method: &'static str,
    body: Option<String>,
}

/// The first versions held back by one transaction, in the order written.
#[derive(Default)]
pub(super) struct PendingCreates {
    creates: Vec<Create>,
}

/// A held-back resource that could not be written: its type and id existed already.
pub(super) struct Taken {
    pub(super) rid: i64,
    pub(super) resource_type: String,
    pub(super) id: String,
}

impl PendingCreates {
    pub(super) fn is_empty(&self) -> bool {
        self.creates.is_empty()
    }

    /// Holds back `version` (a first version; its index entries are held back by the
    /// caller), under row id `rid`.
    pub(super) fn add(&mut self, rid: i64, version: NewVersion) {
        self.creates.push(Create {
            rid,
            resource_type: version.resource_type,
            id: version.id,
            last_updated: version.last_updated,
            method: method_code(version.method),
            body: version.body,
        });
    }

    /// Writes every held-back resource and its version in one statement, in the order they
    /// were written (so version sequences follow it), and empties the buffer. Returns those
    /// whose type and id existed already (in the store, or earlier in the same batch): they
    /// were not written, and nothing else of them was changed.
    pub(super) fn flush(&mut self, conn: &mut PgConn) -> Result<Vec<Taken>, postgres::Error> {
        let creates = std::mem::take(&mut self.creates);
        if creates.is_empty() {
            return Ok(Vec::new());
        }
        let mut rids = Vec::with_capacity(creates.len());
        let mut types = Vec::with_capacity(creates.len());
        let mut ids = Vec::with_capacity(creates.len());
        let mut times = Vec::with_capacity(creates.len());
        let mut methods = Vec::with_capacity(creates.len());
        let mut bodies = Vec::with_capacity(creates.len());
        for c in &creates {
            rids.push(c.rid);
            types.push(c.resource_type.as_str());
            ids.push(c.id.as_str());
            times.push(c.last_updated);
            methods.push(c.method);
            bodies.push(c.body.as_deref());
        }
        let written = conn.query(
            "WITH new AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], \
             $4::bigint[], $5::text[], $6::text[]) WITH ORDINALITY \
             AS n(rid, rtype, id, last_updated, method, body, ord)), \
             r AS (INSERT INTO resources(rid, rtype, id, version, last_updated, deleted) \
             OVERRIDING SYSTEM VALUE \
             SELECT rid, rtype, id, 1, last_updated, (body IS NULL)::int::smallint FROM new \
             ORDER BY ord ON CONFLICT (rtype, id) DO NOTHING RETURNING rid) \
             INSERT INTO versions(rid, version, last_updated, method, body) \
             SELECT new.rid, 1, new.last_updated, new.method, new.body \
             FROM new JOIN r ON r.rid = new.rid ORDER BY new.ord RETURNING rid",
            &[&rids, &types, &ids, &times, &methods, &bodies],
        )?;
        if written.len() == creates.len() {
            return Ok(Vec::new());
        }
        let written: HashSet<i64> = written.iter().map(|row| row.get(0)).collect();
        Ok(creates
            .into_iter()
            .filter(|c| !written.contains(&c.rid))
            .map(|c| Taken {
                rid: c.rid,
                resource_type: c.resource_type,
                id: c.id,
            })
            .collect())
    }
}
