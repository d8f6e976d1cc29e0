//! The PostgreSQL schema and its migrations: the same tables as SQLite's, with PostgreSQL
//! types. Text that is searched or sorted uses the "C" collation, so comparisons and prefix
//! ranges follow code points as in SQLite.

use super::{PgConn, unavailable};
use crate::query::ParamIds;
use keel_core::store::{StoreError, StoreResult};
use keel_fhir::definitions;
use keel_fhir::index::indexable;

/// The index tables, as in SQLite.
pub const INDEX_TABLES: [&str; 7] = [
    "sp_string",
    "sp_token",
    "sp_date",
    "sp_ref",
    "sp_number",
    "sp_quantity",
    "sp_uri",
];

/// Migrations in order; `keel_schema` records how many were applied. The audit tables
/// (migration 2) are append-only: the store's code only inserts into them. Migration 3: the
/// job queue (keel_core::jobs) and the responses of requests with idempotency keys.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE resources (
    rid BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rtype TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,
    deleted SMALLINT NOT NULL,
    UNIQUE (rtype, id)
);
CREATE INDEX resources_updated ON resources(rtype, last_updated);
CREATE TABLE versions (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rid BIGINT NOT NULL,
    version BIGINT NOT NULL,
    last_updated BIGINT NOT NULL,
    method TEXT NOT NULL,
    body TEXT,
    UNIQUE (rid, version)
);
CREATE INDEX versions_updated ON versions(last_updated);
CREATE TABLE params (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, rtype TEXT NOT NULL, code TEXT NOT NULL, UNIQUE (rtype, code));
CREATE TABLE checkpoints (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sp_string (param BIGINT NOT NULL, norm TEXT COLLATE "C" NOT NULL, exact TEXT COLLATE "C" NOT NULL, rid BIGINT NOT NULL,
    PRIMARY KEY (param, norm, exact, rid));
CREATE INDEX sp_string_rid ON sp_string(rid, param);
CREATE TABLE sp_token (param BIGINT NOT NULL, code TEXT COLLATE "C" NOT NULL, system TEXT COLLATE "C" NOT NULL, text TEXT COLLATE "C" NOT NULL, rid BIGINT NOT NULL,
    PRIMARY KEY (param, code, system, text, rid));
CREATE INDEX sp_token_rid ON sp_token(rid, param);
CREATE TABLE sp_date (param BIGINT NOT NULL, lo BIGINT NOT NULL, hi BIGINT NOT NULL, rid BIGINT NOT NULL,
    PRIMARY KEY (param, lo, hi, rid));
CREATE INDEX sp_date_rid ON sp_date(rid, param);
CREATE TABLE sp_ref (param BIGINT NOT NULL, tid TEXT COLLATE "C" NOT NULL, ttype TEXT COLLATE "C" NOT NULL, url TEXT COLLATE "C" NOT NULL, rid BIGINT NOT NULL,
    PRIMARY KEY (param, tid, ttype, url, rid));
CREATE INDEX sp_ref_target ON sp_ref(tid, ttype);
CREATE INDEX sp_ref_rid ON sp_ref(rid, param);
CREATE TABLE sp_number (param BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL, rid BIGINT NOT NULL,
    PRIMARY KEY (param, value, rid));
CREATE INDEX sp_number_rid ON sp_number(rid, param);
CREATE TABLE sp_quantity (param BIGINT NOT NULL, value DOUBLE PRECISION NOT NULL, system TEXT COLLATE "C" NOT NULL, code TEXT COLLATE "C" NOT NULL, unit TEXT COLLATE "C" NOT NULL, rid BIGINT NOT NULL,
    PRIMARY KEY (param, value, system, code, unit, rid));
CREATE INDEX sp_quantity_rid ON sp_quantity(rid, param);
CREATE TABLE sp_uri (param BIGINT NOT NULL, value TEXT COLLATE "C" NOT NULL, rid BIGINT NOT NULL,
    PRIMARY KEY (param, value, rid));
CREATE INDEX sp_uri_rid ON sp_uri(rid, param);
"#,
    r#"
CREATE TABLE audit (sequence BIGINT PRIMARY KEY, record BYTEA NOT NULL, hash BYTEA NOT NULL);
CREATE TABLE audit_checkpoints (sequence BIGINT PRIMARY KEY, hash BYTEA NOT NULL, signature BYTEA NOT NULL);
"#,
    r#"
CREATE TABLE jobs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    progress TEXT,
    result TEXT
);
CREATE INDEX jobs_claimable ON jobs(state, lease_until);
CREATE TABLE job_outputs (job BIGINT NOT NULL, part INTEGER NOT NULL, name TEXT NOT NULL, count BIGINT NOT NULL, content TEXT NOT NULL,
    PRIMARY KEY (job, part));
CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, response TEXT NOT NULL, created BIGINT NOT NULL);
"#,
];

/// Applies the missing migrations and registers the search parameters, in one transaction
/// under a lock of this schema, so nodes starting together migrate once.
pub fn migrate(conn: &mut PgConn) -> StoreResult<()> {
    let mut tx = conn.client.transaction().map_err(unavailable)?;
    tx.batch_execute(
        "SET LOCAL client_min_messages = warning; \
         SELECT pg_advisory_xact_lock(hashtext('keel.migrate:' || current_schema())); \
         CREATE TABLE IF NOT EXISTS keel_schema (version BIGINT NOT NULL)",
    )
    .map_err(unavailable)?;
    let applied: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM keel_schema", &[])
        .map_err(unavailable)?
        .get(0);
    let applied = usize::try_from(applied)
        .map_err(|_| StoreError::Integrity("negative schema version".into()))?;
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Integrity(format!(
            "the database has schema version {applied}, newer than this Keel ({}); use a newer Keel",
            MIGRATIONS.len()
        )));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.batch_execute(migration).map_err(unavailable)?;
        tx.execute(
            "INSERT INTO keel_schema(version) VALUES ($1)",
            &[&((i + 1) as i64)],
        )
        .map_err(unavailable)?;
    }
    // Every indexable (resource type, parameter) gets an id, once; ids are never reused.
    let defs = definitions::r4();
    let (mut types, mut codes) = (Vec::new(), Vec::new());
    for rt in defs.resource_types() {
        for def in defs.search_params(rt).filter(|d| indexable(d)) {
            types.push(rt.to_string());
            codes.push(def.code.to_string());
            if def.kind == definitions::SearchParamType::Reference {
                types.push(rt.to_string());
                codes.push(format!("{}:identifier", def.code));
            }
        }
    }
    tx.execute(
        "INSERT INTO params(rtype, code) SELECT * FROM unnest($1::text[], $2::text[]) \
         ON CONFLICT DO NOTHING",
        &[&types, &codes],
    )
    .map_err(unavailable)?;
    tx.commit().map_err(unavailable)
}

pub fn load_params(conn: &mut PgConn) -> StoreResult<ParamIds> {
    let rows = conn
        .client
        .query("SELECT id, rtype, code FROM params", &[])
        .map_err(unavailable)?;
    let mut ids = ParamIds::default();
    for row in rows {
        ids.insert(row.get(1), row.get(2), row.get(0));
    }
    ids.derive(definitions::r4());
    Ok(ids)
}
