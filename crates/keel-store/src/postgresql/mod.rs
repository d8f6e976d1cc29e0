//! The PostgreSQL backend, for several Keel nodes on one database. The same contract as the
//! SQLite store: a write transaction holds this schema's write lock (a transaction-scoped
//! advisory lock) from `begin` to commit, so writers are serialised across connections,
//! processes and machines exactly as SQLite's single writer serialises them in one process —
//! conditional creates decided in a transaction are race-free and audit entries append in one
//! order. Readers take pooled connections and see committed data.
//!
//! The search SQL is the SQLite backend's compiler ([`crate::query`]) in its PostgreSQL dialect.

mod audit;
mod creates;
mod index;
mod jobs;
mod read;
mod schema;

use crate::Durability;
use crate::query::ParamIds;
use audit::PendingAudit;
use creates::{PendingCreates, RidReserve};
use index::PendingRows;
use keel_core::audit::{AuditEntry, ChainHash, Checkpoint};
use keel_core::jobs::{Claim, Job, JobOutput, JobQueue, JobRead, JobState, Lease, NewJob};
use keel_core::store::{
    AuditLog, AuditRead, HistoryPage, HistoryQuery, NewVersion, ResourceStore, ScopedQuery,
    SearchResult, SequencedVersion, StoreError, StoreRead, StoreResult, StoreTx, StoredResource,
    Visibility, WriteMethod,
};
use keel_fhir::index::IndexValue;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Idle connections kept for reuse; more may be open while busy.
const MAX_IDLE_CONNECTIONS: usize = 32;
/// Prepared statements kept per connection (search shapes vary; values are bound).
const MAX_PREPARED: usize = 512;

pub struct PostgresStore {
    config: postgres::Config,
    idle: Mutex<Vec<PgConn>>,
    params: Arc<ParamIds>,
    rids: RidReserve,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`, optionally with
    /// `?options=-csearch_path%3Dschema`) for serving, migrates the schema and loads the
    /// parameter ids.
    pub fn open(url: &str) -> StoreResult<PostgresStore> {
        PostgresStore::open_with(url, Durability::EveryCommit)
    }

    /// As [`PostgresStore::open`], with commits as durable as `durability` asks: a bulk load
    /// that records its progress in its own transactions ([`Durability::Resumable`]) does not
    /// wait for each commit's log flush (`synchronous_commit = off`). A crash of the database
    /// server can then lose its last commits, never leave a half-written one, and the load
    /// resumes from the checkpoints that did commit.
    pub fn open_with(url: &str, durability: Durability) -> StoreResult<PostgresStore> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?;
        with_session_settings(&mut config, durability);
        let mut conn = PgConn::connect(&config)?;
        schema::migrate(&mut conn)?;
        let params = Arc::new(schema::load_params(&mut conn)?);
        Ok(PostgresStore {
            config,
            idle: Mutex::new(vec![conn]),
            params,
            rids: RidReserve::default(),
        })
    }

    /// Updates the planner's statistics of Keel's tables (after a bulk load).
    pub fn analyze(&self) -> StoreResult<()> {
        let mut conn = self.take()?;
        let tables: Vec<&str> = ["resources", "versions"]
            .into_iter()
            .chain(schema::INDEX_TABLES)
            .collect();
        let result = conn
            .client
            .batch_execute(&format!("ANALYZE {}", tables.join(", ")))
            .map_err(unavailable);
        self.give_back(conn);
        result
    }

    fn take(&self) -> StoreResult<PgConn> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match pooled {
            Some(conn) if !conn.client.is_closed() => Ok(conn),
            _ => PgConn::connect(&self.config),
        }
    }

    fn give_back(&self, conn: PgConn) {
        if conn.client.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(conn);
        }
    }
}

/// Adds the session settings `durability` asks for to the connection options (sent with the
/// startup message: no round trip).
fn with_session_settings(config: &mut postgres::Config, durability: Durability) {
    if durability == Durability::Resumable {
        let options = config.get_options().unwrap_or_default().to_string();
        config.options((options + " -c synchronous_commit=off").trim_start());
    }
}

/// A connection with its prepared statements.
pub(crate) struct PgConn {
    client: Client,
    prepared: HashMap<String, Statement>,
}

impl PgConn {
    fn connect(config: &postgres::Config) -> StoreResult<PgConn> {
        let client = config.connect(NoTls).map_err(unavailable)?;
        Ok(PgConn {
            client,
            prepared: HashMap::new(),
        })
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        if self.prepared.len() >= MAX_PREPARED {
            self.prepared.clear();
        }
        self.prepared.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub(crate) fn query(
        &mut self,
        sql: &str,
        values: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query(&statement, values)
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        values: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.query_opt(&statement, values)
    }

    pub(crate) fn execute(
        &mut self,
        sql: &str,
        values: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let statement = self.statement(sql)?;
        self.client.execute(&statement, values)
    }
}

pub(crate) fn unavailable(e: postgres::Error) -> StoreError {
    use postgres::error::SqlState;
    match e.code() {
        Some(code)
            if *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::UNIQUE_VIOLATION =>
        {
            StoreError::Conflict(e.to_string())
        }
        Some(code) if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED => {
            StoreError::Integrity(e.to_string())
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

impl ResourceStore for PostgresStore {
    fn reader(&self) -> StoreResult<Box<dyn StoreRead + '_>> {
        Ok(Box::new(PostgresReader {
            conn: Some(self.take()?),
            store: self,
        }))
    }

    fn begin(&self) -> StoreResult<Box<dyn StoreTx + '_>> {
        let mut conn = self.take()?;
        // A connection whose BEGIN failed is closed, not pooled.
        let audit = audit::begin(&mut conn)?;
        Ok(Box::new(PostgresTx {
            conn: Some(conn),
            store: self,
            creates: PendingCreates::default(),
            pending: PendingRows::default(),
            audit,
            done: false,
        }))
    }

    fn ping(&self) -> StoreResult<()> {
        let mut conn = self.take()?;
        let result = conn.query("SELECT 1", &[]).map(|_| ()).map_err(unavailable);
        self.give_back(conn);
        result
    }
}

struct PostgresReader<'s> {
    conn: Option<PgConn>,
    store: &'s PostgresStore,
}

impl Drop for PostgresReader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.store.give_back(conn);
        }
    }
}

impl PostgresReader<'_> {
    fn conn(&mut self) -> &mut PgConn {
        self.conn
            .as_mut()
            .expect("a reader holds its connection until dropped")
    }
    /// A reader has nothing held back.
    fn flush_writes(&mut self) -> StoreResult<()> {
        Ok(())
    }
    fn flush_audit(&mut self) -> StoreResult<()> {
        Ok(())
    }
    fn parts(&mut self) -> (&mut PgConn, &ParamIds) {
        (
            self.conn
                .as_mut()
                .expect("a reader holds its connection until dropped"),
            &self.store.params,
        )
    }
}

struct PostgresTx<'s> {
    conn: Option<PgConn>,
    store: &'s PostgresStore,
    creates: PendingCreates,
    pending: PendingRows,
    audit: PendingAudit,
    done: bool,
}

impl Drop for PostgresTx<'_> {
    fn drop(&mut self) {
        // A connection whose rollback failed is closed, not pooled.
        if let Some(mut conn) = self.conn.take()
            && (self.done || conn.client.batch_execute("ROLLBACK").is_ok())
        {
            self.store.give_back(conn);
        }
    }
}

impl PostgresTx<'_> {
    fn conn(&mut self) -> &mut PgConn {
        self.conn
            .as_mut()
            .expect("a transaction holds its connection until dropped")
    }
    /// New resources held back are written before anything reads the store.
    fn flush_creates(&mut self) -> StoreResult<()> {
        if self.creates.is_empty() {
            return Ok(());
        }
        let conn = self
            .conn
            .as_mut()
            .expect("a transaction holds its connection until dropped");
        let taken = self.creates.flush(conn).map_err(unavailable)?;
        let Some(first) = taken.first() else {
            return Ok(());
        };
        // Their index rows go with them; the rest of the transaction stands.
        for t in &taken {
            self.pending.forget(t.rid);
        }
        Err(StoreError::Conflict(format!(
            "{}/{} version 1 already exists ({} new resource(s) of this transaction were not written)",
            first.resource_type,
            first.id,
            taken.len()
        )))
    }
    /// New resources and index rows held back are written before anything reads the store.
    fn flush_writes(&mut self) -> StoreResult<()> {
        self.flush_creates()?;
        let conn = self
            .conn
            .as_mut()
            .expect("a transaction holds its connection until dropped");
        self.pending.flush(conn).map_err(unavailable)
    }
    fn parts(&mut self) -> (&mut PgConn, &ParamIds) {
        (
            self.conn
                .as_mut()
                .expect("a transaction holds its connection until dropped"),
            &self.store.params,
        )
    }
    fn audit_parts(&mut self) -> (&mut PgConn, &mut PendingAudit) {
        (
            self.conn
                .as_mut()
                .expect("a transaction holds its connection until dropped"),
            &mut self.audit,
        )
    }
    /// Audit entries held back are written before the log is read or the transaction commits.
    fn flush_audit(&mut self) -> StoreResult<()> {
        let (conn, audit) = self.audit_parts();
        audit.flush(conn)
    }
}

/// Readers and transactions answer reads the same way, from their own connection.
macro_rules! impl_store_read {
    ($ty:ty) => {
        impl StoreRead for $ty {
            fn read(
                &mut self,
                resource_type: &str,
                id: &str,
            ) -> StoreResult<Option<StoredResource>> {
                self.flush_writes()?;
                read::current(self.conn(), resource_type, id)
            }
            fn read_version(
                &mut self,
                resource_type: &str,
                id: &str,
                version: u64,
            ) -> StoreResult<Option<StoredResource>> {
                self.flush_writes()?;
                read::version(self.conn(), resource_type, id, version)
            }
            fn search(&mut self, query: &ScopedQuery) -> StoreResult<SearchResult> {
                self.flush_writes()?;
                let (conn, params) = self.parts();
                read::search(conn, params, query)
            }
            fn search_ids(&mut self, query: &ScopedQuery) -> StoreResult<Vec<String>> {
                self.flush_writes()?;
                let (conn, params) = self.parts();
                read::search_ids(conn, params, query.query())
            }
            fn history(
                &mut self,
                query: &HistoryQuery,
                visibility: &Visibility,
            ) -> StoreResult<HistoryPage> {
                self.flush_writes()?;
                let (conn, params) = self.parts();
                read::history(conn, params, query, visibility)
            }
            fn referencing(
                &mut self,
                resource_type: &str,
                id: &str,
                visibility: &Visibility,
            ) -> StoreResult<Vec<StoredResource>> {
                self.flush_writes()?;
                let (conn, params) = self.parts();
                read::referencing(conn, params, resource_type, id, visibility)
            }
            fn version_head(&mut self) -> StoreResult<u64> {
                self.flush_writes()?;
                read::version_head(self.conn())
            }
            fn versions_between(
                &mut self,
                resource_type: &str,
                after: u64,
                upto: u64,
                limit: usize,
            ) -> StoreResult<Vec<SequencedVersion>> {
                self.flush_writes()?;
                read::versions_between(self.conn(), resource_type, after, upto, limit)
            }
            fn checkpoint(&mut self, key: &str) -> StoreResult<Option<String>> {
                Ok(self
                    .conn()
                    .query_opt("SELECT value FROM checkpoints WHERE key = $1", &[&key])
                    .map_err(unavailable)?
                    .map(|row| row.get(0)))
            }
            fn idempotent_response(&mut self, key: &str) -> StoreResult<Option<String>> {
                jobs::idempotent_response(self.conn(), key)
            }
        }

        impl JobRead for $ty {
            fn claimable_job(&mut self, kinds: &[&str], now: i64) -> StoreResult<Option<u64>> {
                jobs::claimable(self.conn(), kinds, now)
            }
            fn job(&mut self, id: u64) -> StoreResult<Option<Job>> {
                jobs::job(self.conn(), id)
            }
            fn job_outputs(&mut self, id: u64) -> StoreResult<Vec<JobOutput>> {
                jobs::outputs(self.conn(), id)
            }
            fn job_output_content(&mut self, id: u64, part: u32) -> StoreResult<Option<String>> {
                jobs::output_content(self.conn(), id, part)
            }
        }

        impl AuditRead for $ty {
            fn audit_entries(&mut self, from: u64, limit: usize) -> StoreResult<Vec<AuditEntry>> {
                self.flush_audit()?;
                audit::entries(self.conn(), from, limit)
            }
            fn audit_checkpoints(&mut self) -> StoreResult<Vec<Checkpoint>> {
                self.flush_audit()?;
                audit::checkpoints(self.conn())
            }
        }
    };
}

impl_store_read!(PostgresReader<'_>);
impl_store_read!(PostgresTx<'_>);

impl AuditLog for PostgresTx<'_> {
    fn audit_head(&mut self) -> StoreResult<Option<(u64, ChainHash)>> {
        let (conn, audit) = self.audit_parts();
        audit.head(conn)
    }
    fn append_audit(&mut self, entry: &AuditEntry) -> StoreResult<()> {
        let (conn, audit) = self.audit_parts();
        audit.append(conn, entry)
    }
    fn append_audit_checkpoint(&mut self, checkpoint: &Checkpoint) -> StoreResult<()> {
        audit::append_checkpoint(self.conn(), checkpoint)
    }
}

impl JobQueue for PostgresTx<'_> {
    fn enqueue_job(&mut self, job: &NewJob) -> StoreResult<u64> {
        jobs::enqueue(self.conn(), job)
    }
    fn claim_job(&mut self, claim: &Claim<'_>) -> StoreResult<Option<Job>> {
        jobs::claim(self.conn(), claim)
    }
    fn renew_job_lease(
        &mut self,
        lease: &Lease,
        now: i64,
        until: i64,
        progress: &str,
    ) -> StoreResult<bool> {
        jobs::renew(self.conn(), lease, now, until, progress)
    }
    fn add_job_output(
        &mut self,
        lease: &Lease,
        output: &JobOutput,
        content: &str,
    ) -> StoreResult<bool> {
        jobs::add_output(self.conn(), lease, output, content)
    }
    fn finish_job(
        &mut self,
        lease: &Lease,
        state: JobState,
        result: &str,
        now: i64,
    ) -> StoreResult<bool> {
        jobs::finish(self.conn(), lease, state, result, now)
    }
    fn cancel_job(&mut self, id: u64, now: i64) -> StoreResult<bool> {
        jobs::cancel(self.conn(), id, now)
    }
}

impl StoreTx for PostgresTx<'_> {
    /// A first version is held back ([`creates`]) under a row id taken ahead; a later one is
    /// written at once, after any held back.
    fn write(&mut self, mut v: NewVersion) -> StoreResult<()> {
        let index = indexed(&self.store.params, &mut v)?;
        if v.version != 1 {
            self.flush_creates()?;
            let conn = self
                .conn
                .as_mut()
                .expect("a transaction holds its connection until dropped");
            return write_version(conn, &mut self.pending, v, index);
        }
        let rid = self.store.rids.take(self.conn()).map_err(unavailable)?;
        self.creates.add(rid, v);
        for (pid, value) in index {
            self.pending.add(pid, rid, value);
        }
        Ok(())
    }

    fn set_checkpoint(&mut self, key: &str, value: &str) -> StoreResult<()> {
        self.conn()
            .execute(
                "INSERT INTO checkpoints(key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .map(|_| ())
            .map_err(unavailable)
    }

    fn record_idempotent_response(
        &mut self,
        key: &str,
        response: &str,
        now: i64,
    ) -> StoreResult<()> {
        jobs::record_idempotent_response(self.conn(), key, response, now)
    }

    fn commit(mut self: Box<Self>) -> StoreResult<()> {
        self.flush_writes()?;
        self.flush_audit()?;
        self.conn()
            .client
            .batch_execute("COMMIT")
            .map_err(unavailable)?;
        self.done = true;
        Ok(())
    }
}

/// The version's index entries with their parameter ids.
fn indexed(params: &ParamIds, v: &mut NewVersion) -> StoreResult<Vec<(i64, IndexValue)>> {
    std::mem::take(&mut v.index)
        .into_iter()
        .map(|entry| match params.get(&v.resource_type, &entry.param) {
            Some(pid) => Ok((pid, entry.value)),
            None => Err(StoreError::Integrity(format!(
                "no parameter id for {}.{}",
                v.resource_type, entry.param
            ))),
        })
        .collect()
}

fn method_code(method: WriteMethod) -> &'static str {
    match method {
        WriteMethod::Create => "C",
        WriteMethod::Update => "U",
        WriteMethod::Delete => "D",
    }
}

/// Writes a later version at once and replaces the resource's index rows (the new ones go to
/// `pending`). The resource row and the version are written by one statement; a version at
/// or below the resource's current one is a conflict that changes nothing and leaves the
/// transaction usable, as in SQLite.
fn write_version(
    conn: &mut PgConn,
    pending: &mut PendingRows,
    v: NewVersion,
    index: Vec<(i64, IndexValue)>,
) -> StoreResult<()> {
    let deleted = i16::from(v.body.is_none());
    let method = method_code(v.method);
    let version = v.version as i64;
    let written = conn
        .query_opt(
            "WITH r AS (INSERT INTO resources(rtype, id, version, last_updated, deleted) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (rtype, id) DO UPDATE SET \
             version = excluded.version, last_updated = excluded.last_updated, deleted = excluded.deleted \
             WHERE resources.version < excluded.version RETURNING rid) \
             INSERT INTO versions(rid, version, last_updated, method, body) \
             SELECT rid, $3, $4, $6, $7 FROM r ON CONFLICT (rid, version) DO NOTHING RETURNING rid",
            &[
                &v.resource_type,
                &v.id,
                &version,
                &v.last_updated,
                &deleted,
                &method,
                &v.body,
            ],
        )
        .map_err(unavailable)?;
    let Some(row) = written else {
        return Err(StoreError::Conflict(format!(
            "{}/{} version {} already exists",
            v.resource_type, v.id, v.version
        )));
    };
    let rid: i64 = row.get(0);
    pending.forget(rid);
    let deletes: Vec<String> = schema::INDEX_TABLES
        .iter()
        .map(|t| format!("d_{t} AS (DELETE FROM {t} WHERE rid = $1)"))
        .collect();
    conn.execute(&format!("WITH {} SELECT 1", deletes.join(", ")), &[&rid])
        .map_err(unavailable)?;
    for (pid, value) in index {
        pending.add(pid, rid, value);
    }
    Ok(())
}
