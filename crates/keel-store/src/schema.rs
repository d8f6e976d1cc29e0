//! The SQLite schema and its migrations.

use crate::query::ParamIds;
use crate::sqlite::unavailable;
use keel_core::store::{StoreError, StoreResult};
use keel_fhir::definitions;
use keel_fhir::index::indexable;
use rusqlite::{Connection, params};

/// Index tables. Each is clustered on `(param, value..., rid)` for search (WITHOUT ROWID: one
/// B-tree, not two) with a second index on `(rid, param)` for probes and replacement. Absent
/// optional values are stored as `''`, since primary-key columns cannot be NULL.
pub const INDEX_TABLES: [&str; 7] = [
    "sp_string",
    "sp_token",
    "sp_date",
    "sp_ref",
    "sp_number",
    "sp_quantity",
    "sp_uri",
];

/// Migrations in order; the database records how many it has applied. The audit tables
/// (migration 2) are append-only: the store's code only inserts into them. Migration 3: the
/// job queue (keel_core::jobs) and the responses of requests with idempotency keys.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE resources (
    rid INTEGER PRIMARY KEY,
    rtype TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    UNIQUE (rtype, id)
);
CREATE INDEX resources_updated ON resources(rtype, last_updated);
CREATE TABLE versions (
    seq INTEGER PRIMARY KEY,
    rid INTEGER NOT NULL,
    version INTEGER NOT NULL,
    last_updated INTEGER NOT NULL,
    method TEXT NOT NULL,
    body TEXT,
    UNIQUE (rid, version)
);
CREATE INDEX versions_updated ON versions(last_updated);
CREATE TABLE params (id INTEGER PRIMARY KEY, rtype TEXT NOT NULL, code TEXT NOT NULL, UNIQUE (rtype, code));
CREATE TABLE checkpoints (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sp_string (param INTEGER NOT NULL, norm TEXT NOT NULL, exact TEXT NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (param, norm, exact, rid)) WITHOUT ROWID;
CREATE INDEX sp_string_rid ON sp_string(rid, param);
CREATE TABLE sp_token (param INTEGER NOT NULL, code TEXT NOT NULL, system TEXT NOT NULL, text TEXT NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (param, code, system, text, rid)) WITHOUT ROWID;
CREATE INDEX sp_token_rid ON sp_token(rid, param);
CREATE TABLE sp_date (param INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (param, lo, hi, rid)) WITHOUT ROWID;
CREATE INDEX sp_date_rid ON sp_date(rid, param);
CREATE TABLE sp_ref (param INTEGER NOT NULL, tid TEXT NOT NULL, ttype TEXT NOT NULL, url TEXT NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (param, tid, ttype, url, rid)) WITHOUT ROWID;
CREATE INDEX sp_ref_target ON sp_ref(tid, ttype);
CREATE INDEX sp_ref_rid ON sp_ref(rid, param);
CREATE TABLE sp_number (param INTEGER NOT NULL, value REAL NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (param, value, rid)) WITHOUT ROWID;
CREATE INDEX sp_number_rid ON sp_number(rid, param);
CREATE TABLE sp_quantity (param INTEGER NOT NULL, value REAL NOT NULL, system TEXT NOT NULL, code TEXT NOT NULL, unit TEXT NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (param, value, system, code, unit, rid)) WITHOUT ROWID;
CREATE INDEX sp_quantity_rid ON sp_quantity(rid, param);
CREATE TABLE sp_uri (param INTEGER NOT NULL, value TEXT NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (param, value, rid)) WITHOUT ROWID;
CREATE INDEX sp_uri_rid ON sp_uri(rid, param);
"#,
    r#"
CREATE TABLE audit (sequence INTEGER PRIMARY KEY, record BLOB NOT NULL, hash BLOB NOT NULL);
CREATE TABLE audit_checkpoints (sequence INTEGER PRIMARY KEY, hash BLOB NOT NULL, signature BLOB NOT NULL);
"#,
    r#"
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    progress TEXT,
    result TEXT
);
CREATE INDEX jobs_claimable ON jobs(state, lease_until);
CREATE TABLE job_outputs (job INTEGER NOT NULL, part INTEGER NOT NULL, name TEXT NOT NULL, count INTEGER NOT NULL, content TEXT NOT NULL,
    PRIMARY KEY (job, part));
CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, response TEXT NOT NULL, created INTEGER NOT NULL);
"#,
];

pub fn migrate(conn: &Connection) -> StoreResult<()> {
    let applied: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(unavailable)?;
    let applied = usize::try_from(applied)
        .map_err(|_| StoreError::Integrity("negative schema version".into()))?;
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Integrity(format!(
            "the database has schema version {applied}, newer than this Keel ({}); use a newer Keel",
            MIGRATIONS.len()
        )));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        let sql = format!(
            "BEGIN IMMEDIATE; {migration}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        );
        conn.execute_batch(&sql).map_err(unavailable)?;
    }
    register_params(conn)
}

/// Gives every indexable (resource type, parameter) an id, once. Ids are never reused, so
/// rows written under an id always mean the same parameter.
fn register_params(conn: &Connection) -> StoreResult<()> {
    let defs = definitions::r4();
    conn.execute_batch("BEGIN IMMEDIATE").map_err(unavailable)?;
    let result = (|| {
        let mut insert = conn.prepare("INSERT OR IGNORE INTO params(rtype, code) VALUES (?, ?)")?;
        for rt in defs.resource_types() {
            for def in defs.search_params(rt).filter(|d| indexable(d)) {
                insert.execute(params![rt, def.code])?;
                if def.kind == definitions::SearchParamType::Reference {
                    insert.execute(params![rt, format!("{}:identifier", def.code)])?;
                }
            }
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(unavailable),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(unavailable(e))
        }
    }
}

pub fn load_params(conn: &Connection) -> StoreResult<ParamIds> {
    let mut stmt = conn
        .prepare("SELECT id, rtype, code FROM params")
        .map_err(unavailable)?;
    let mut rows = stmt.query([]).map_err(unavailable)?;
    let mut ids = ParamIds::default();
    while let Some(row) = rows.next().map_err(unavailable)? {
        ids.insert(
            row.get(1).map_err(unavailable)?,
            row.get(2).map_err(unavailable)?,
            row.get(0).map_err(unavailable)?,
        );
    }
    ids.derive(definitions::r4());
    Ok(ids)
}
