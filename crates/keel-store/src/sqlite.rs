//! The embedded SQLite backend: one writer connection, a pool of readers, WAL journal. Opened
//! for serving, every commit is synced (`synchronous=FULL`): an acknowledged write survives a
//! crash of the process or the machine. Opened for a bulk load, see [`Durability::Resumable`].

use crate::audit;
use crate::jobs;
use crate::pending_index::PendingIndex;
use crate::query::{Compiler, ParamIds, ParamRows, Sql, SqlValue};
use crate::schema;
use keel_core::audit::{AuditEntry, ChainHash, Checkpoint};
use keel_core::jobs::{Claim, Job, JobOutput, JobQueue, JobRead, JobState, Lease, NewJob};
use keel_core::store::{
    AuditLog, AuditRead, HistoryPage, HistoryQuery, HistoryScope, NewVersion, ResourceStore,
    ScopedQuery, SearchResult, SequencedVersion, StoreError, StoreRead, StoreResult, StoreTx,
    StoredResource, TypeVisibility, Visibility, WriteMethod,
};
use keel_fhir::search::{Include, SearchQuery, TotalMode};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Page cache of the writer (serving; bulk loads get more) and of each reader connection.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
const BULK_WRITER_CACHE_KIB: i64 = 512 * 1024;
/// Readers rely mostly on the operating system's page cache; one is pooled per concurrent read.
const READER_CACHE_KIB: i64 = 16 * 1024;

/// How many `_include:iterate` rounds are followed at most.
const MAX_INCLUDE_ROUNDS: usize = 4;

/// How commits reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is synced before it is acknowledged (serving).
    EveryCommit,
    /// Commits are not synced one by one; the database stays consistent after any crash, and
    /// a crash of the machine (not of the process) can lose the last commits. For bulk loads
    /// that record their progress in the same transactions and so resume exactly.
    Resumable,
}

/// Fields drop in order: the readers close before the writer, so the writer's close is the
/// last and folds the write-ahead log into the database file.
pub struct SqliteStore {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    writer: Mutex<Connection>,
    params: Arc<ParamIds>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file `DIR/keel.sqlite` for serving.
    pub fn open_dir(dir: &Path) -> StoreResult<SqliteStore> {
        SqliteStore::open_dir_with(dir, Durability::EveryCommit)
    }

    pub fn open_dir_with(dir: &Path, durability: Durability) -> StoreResult<SqliteStore> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
        SqliteStore::open(&dir.join("keel.sqlite"), durability)
    }

    pub fn open(path: &Path, durability: Durability) -> StoreResult<SqliteStore> {
        let writer = open_connection(path, Some(durability))?;
        schema::migrate(&writer)?;
        let params = Arc::new(schema::load_params(&writer)?);
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            params,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a consistent copy of the database to the new file `target` while it stays in
    /// use: `VACUUM INTO` reads one snapshot on a reader connection, so writers go on.
    pub fn backup_to(&self, target: &Path) -> StoreResult<()> {
        let conn = self.take_reader()?;
        let result = conn
            .execute("VACUUM INTO ?", [target.to_string_lossy()])
            .map(|_| ())
            .map_err(unavailable);
        self.readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
        result
    }

    fn take_reader(&self) -> StoreResult<Connection> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => open_connection(&self.path, None),
        }
    }
}

/// Opens the writer (with its durability) or a reader (`None`).
fn open_connection(path: &Path, writer: Option<Durability>) -> StoreResult<Connection> {
    let flags = if writer.is_some() {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(unavailable)?;
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(unavailable)?;
    conn.set_prepared_statement_cache_capacity(256);
    // The query planner stability guarantee: plans never depend on bound values. Without it,
    // SQLite marks parameters of equality filters as plan-sensitive, and every statement
    // returned to the cache (whose bindings are cleared) is compiled again on its next use —
    // that re-parsing was most of the cost of a read with access control.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map_err(unavailable)?;
    if writer.is_some() {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
    }
    let synchronous = if writer == Some(Durability::Resumable) {
        "NORMAL"
    } else {
        "FULL"
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(unavailable)?;
    // The writer updates many index B-trees per resource: give it a large page cache, and let
    // the WAL grow to 64 MiB between checkpoints so index pages are written back in bulk.
    let cache_kib = match writer {
        Some(Durability::EveryCommit) => WRITER_CACHE_KIB,
        Some(Durability::Resumable) => BULK_WRITER_CACHE_KIB,
        None => READER_CACHE_KIB,
    };
    conn.pragma_update(None, "cache_size", -cache_kib)
        .map_err(unavailable)?;
    if let Some(durability) = writer {
        // A bulk load commits large groups: a WAL of up to 512 MiB between checkpoints writes
        // each index page back once rather than once per group.
        let pages = match durability {
            Durability::EveryCommit => 16_384,
            Durability::Resumable => 131_072,
        };
        conn.pragma_update(None, "wal_autocheckpoint", pages)
            .map_err(unavailable)?;
        // After a checkpoint the log starts over; its file need not stay at its largest.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
            .map_err(unavailable)?;
    }
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(unavailable)?;
    Ok(conn)
}

pub(crate) fn unavailable(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy => {
            StoreError::Conflict(e.to_string())
        }
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseCorrupt => {
            StoreError::Integrity(e.to_string())
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

impl ResourceStore for SqliteStore {
    fn reader(&self) -> StoreResult<Box<dyn StoreRead + '_>> {
        Ok(Box::new(SqliteReader {
            conn: Some(self.take_reader()?),
            store: self,
        }))
    }

    fn begin(&self) -> StoreResult<Box<dyn StoreTx + '_>> {
        let conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        conn.execute_batch("BEGIN IMMEDIATE").map_err(unavailable)?;
        Ok(Box::new(SqliteTx {
            conn,
            params: &self.params,
            pending: PendingIndex::default(),
            audit_head: None,
            done: false,
        }))
    }

    fn ping(&self) -> StoreResult<()> {
        let conn = self.take_reader()?;
        let result = conn
            .query_row("SELECT 1", [], |_| Ok(()))
            .map_err(unavailable);
        self.readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
        result
    }
}

struct SqliteReader<'s> {
    conn: Option<Connection>,
    store: &'s SqliteStore,
}

impl Drop for SqliteReader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.store
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
    }
}

impl SqliteReader<'_> {
    fn conn(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a reader holds its connection until dropped")
    }
}

struct SqliteTx<'s> {
    conn: MutexGuard<'s, Connection>,
    params: &'s ParamIds,
    pending: PendingIndex,
    /// The audit log's head once this transaction has appended to it.
    audit_head: Option<(u64, ChainHash)>,
    done: bool,
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
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
                read_current(self.conn_ref(), resource_type, id)
            }
            fn read_version(
                &mut self,
                resource_type: &str,
                id: &str,
                version: u64,
            ) -> StoreResult<Option<StoredResource>> {
                read_version(self.conn_ref(), resource_type, id, version)
            }
            fn search(&mut self, query: &ScopedQuery) -> StoreResult<SearchResult> {
                self.flush_index()?;
                search(self.conn_ref(), self.params_ref(), query)
            }
            fn search_ids(&mut self, query: &ScopedQuery) -> StoreResult<Vec<String>> {
                self.flush_index()?;
                search_ids(self.conn_ref(), self.params_ref(), query.query())
            }
            fn history(
                &mut self,
                query: &HistoryQuery,
                visibility: &Visibility,
            ) -> StoreResult<HistoryPage> {
                self.flush_index()?;
                history(self.conn_ref(), self.params_ref(), query, visibility)
            }
            fn referencing(
                &mut self,
                resource_type: &str,
                id: &str,
                visibility: &Visibility,
            ) -> StoreResult<Vec<StoredResource>> {
                self.flush_index()?;
                referencing(
                    self.conn_ref(),
                    self.params_ref(),
                    resource_type,
                    id,
                    visibility,
                )
            }
            fn version_head(&mut self) -> StoreResult<u64> {
                version_head(self.conn_ref())
            }
            fn versions_between(
                &mut self,
                resource_type: &str,
                after: u64,
                upto: u64,
                limit: usize,
            ) -> StoreResult<Vec<SequencedVersion>> {
                versions_between(self.conn_ref(), resource_type, after, upto, limit)
            }
            fn checkpoint(&mut self, key: &str) -> StoreResult<Option<String>> {
                self.conn_ref()
                    .query_row("SELECT value FROM checkpoints WHERE key = ?", [key], |r| {
                        r.get(0)
                    })
                    .optional()
                    .map_err(unavailable)
            }
            fn idempotent_response(&mut self, key: &str) -> StoreResult<Option<String>> {
                jobs::idempotent_response(self.conn_ref(), key)
            }
        }

        impl JobRead for $ty {
            fn claimable_job(&mut self, kinds: &[&str], now: i64) -> StoreResult<Option<u64>> {
                jobs::claimable(self.conn_ref(), kinds, now)
            }
            fn job(&mut self, id: u64) -> StoreResult<Option<Job>> {
                jobs::job(self.conn_ref(), id)
            }
            fn job_outputs(&mut self, id: u64) -> StoreResult<Vec<JobOutput>> {
                jobs::outputs(self.conn_ref(), id)
            }
            fn job_output_content(&mut self, id: u64, part: u32) -> StoreResult<Option<String>> {
                jobs::output_content(self.conn_ref(), id, part)
            }
        }
    };
}

impl SqliteReader<'_> {
    fn conn_ref(&self) -> &Connection {
        self.conn()
    }
    /// A reader has nothing held back.
    fn flush_index(&mut self) -> StoreResult<()> {
        Ok(())
    }
    fn params_ref(&self) -> &ParamIds {
        &self.store.params
    }
}

impl SqliteTx<'_> {
    fn conn_ref(&self) -> &Connection {
        &self.conn
    }
    /// Index rows held back are written before anything that searches them.
    fn flush_index(&mut self) -> StoreResult<()> {
        self.pending.flush(&self.conn).map_err(unavailable)
    }
    fn params_ref(&self) -> &ParamIds {
        self.params
    }
}

impl_store_read!(SqliteReader<'_>);
impl_store_read!(SqliteTx<'_>);

macro_rules! impl_audit_read {
    ($ty:ty) => {
        impl AuditRead for $ty {
            fn audit_entries(&mut self, from: u64, limit: usize) -> StoreResult<Vec<AuditEntry>> {
                audit::entries(self.conn_ref(), from, limit)
            }
            fn audit_checkpoints(&mut self) -> StoreResult<Vec<Checkpoint>> {
                audit::checkpoints(self.conn_ref())
            }
        }
    };
}

impl_audit_read!(SqliteReader<'_>);
impl_audit_read!(SqliteTx<'_>);

impl AuditLog for SqliteTx<'_> {
    fn audit_head(&mut self) -> StoreResult<Option<(u64, ChainHash)>> {
        match self.audit_head {
            Some(head) => Ok(Some(head)),
            None => audit::head(&self.conn),
        }
    }
    fn append_audit(&mut self, entry: &AuditEntry) -> StoreResult<()> {
        audit::append(&self.conn, entry)?;
        // The transaction holds the write lock: nobody else appends until it ends.
        self.audit_head = Some((entry.sequence, entry.hash));
        Ok(())
    }
    fn append_audit_checkpoint(&mut self, checkpoint: &Checkpoint) -> StoreResult<()> {
        audit::append_checkpoint(&self.conn, checkpoint)
    }
}

impl JobQueue for SqliteTx<'_> {
    fn enqueue_job(&mut self, job: &NewJob) -> StoreResult<u64> {
        jobs::enqueue(&self.conn, job)
    }
    fn claim_job(&mut self, claim: &Claim<'_>) -> StoreResult<Option<Job>> {
        jobs::claim(&self.conn, claim)
    }
    fn renew_job_lease(
        &mut self,
        lease: &Lease,
        now: i64,
        until: i64,
        progress: &str,
    ) -> StoreResult<bool> {
        jobs::renew(&self.conn, lease, now, until, progress)
    }
    fn add_job_output(
        &mut self,
        lease: &Lease,
        output: &JobOutput,
        content: &str,
    ) -> StoreResult<bool> {
        jobs::add_output(&self.conn, lease, output, content)
    }
    fn finish_job(
        &mut self,
        lease: &Lease,
        state: JobState,
        result: &str,
        now: i64,
    ) -> StoreResult<bool> {
        jobs::finish(&self.conn, lease, state, result, now)
    }
    fn cancel_job(&mut self, id: u64, now: i64) -> StoreResult<bool> {
        jobs::cancel(&self.conn, id, now)
    }
}

impl StoreTx for SqliteTx<'_> {
    fn write(&mut self, v: NewVersion) -> StoreResult<()> {
        write_version(&self.conn, self.params, &mut self.pending, v)
    }

    fn set_checkpoint(&mut self, key: &str, value: &str) -> StoreResult<()> {
        self.conn
            .prepare_cached("INSERT INTO checkpoints(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .and_then(|mut s| s.execute(params![key, value]))
            .map(|_| ())
            .map_err(unavailable)
    }

    fn record_idempotent_response(
        &mut self,
        key: &str,
        response: &str,
        now: i64,
    ) -> StoreResult<()> {
        jobs::record_idempotent_response(&self.conn, key, response, now)
    }

    fn commit(mut self: Box<Self>) -> StoreResult<()> {
        self.flush_index()?;
        self.conn.execute_batch("COMMIT").map_err(unavailable)?;
        self.done = true;
        Ok(())
    }
}

// ---------------------------------------------------------------- reads

const SELECT_VERSION: &str = "SELECT r.rtype, r.id, v.version, v.last_updated, v.method, v.body FROM versions v JOIN resources r ON r.rid = v.rid";

fn row_to_stored(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredResource> {
    let method: String = row.get(4)?;
    let body: Option<String> = row.get(5)?;
    Ok(StoredResource {
        resource_type: row.get(0)?,
        id: row.get(1)?,
        version: row.get::<_, i64>(2)? as u64,
        last_updated: row.get(3)?,
        body: body.map(Arc::from),
        method: match method.as_str() {
            "C" => WriteMethod::Create,
            "D" => WriteMethod::Delete,
            _ => WriteMethod::Update,
        },
    })
}

fn read_current(
    conn: &Connection,
    resource_type: &str,
    id: &str,
) -> StoreResult<Option<StoredResource>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "{SELECT_VERSION} WHERE r.rtype = ? AND r.id = ? AND v.version = r.version"
        ))
        .map_err(unavailable)?;
    stmt.query_row(params![resource_type, id], row_to_stored)
        .optional()
        .map_err(unavailable)
}

fn read_version(
    conn: &Connection,
    resource_type: &str,
    id: &str,
    version: u64,
) -> StoreResult<Option<StoredResource>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "{SELECT_VERSION} WHERE r.rtype = ? AND r.id = ? AND v.version = ?"
        ))
        .map_err(unavailable)?;
    stmt.query_row(params![resource_type, id, version as i64], row_to_stored)
        .optional()
        .map_err(unavailable)
}

fn version_head(conn: &Connection) -> StoreResult<u64> {
    let mut stmt = conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM versions")
        .map_err(unavailable)?;
    let head: i64 = stmt.query_row([], |r| r.get(0)).map_err(unavailable)?;
    Ok(head.max(0) as u64)
}

fn versions_between(
    conn: &Connection,
    resource_type: &str,
    after: u64,
    upto: u64,
    limit: usize,
) -> StoreResult<Vec<SequencedVersion>> {
    // `+r.rtype`: driven by the sequence range, in sequence order. By the type's index SQLite
    // would read every resource of the type to find a few recent versions (a `$match` after a
    // write read all Patients: 30 ms at 100,000).
    let mut stmt = conn
        .prepare_cached(
            "SELECT r.rtype, r.id, v.version, v.last_updated, v.method, v.body, v.seq \
             FROM versions v JOIN resources r ON r.rid = v.rid \
             WHERE v.seq > ? AND v.seq <= ? AND +r.rtype = ? ORDER BY v.seq LIMIT ?",
        )
        .map_err(unavailable)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(
            params![
                i64::try_from(after).unwrap_or(i64::MAX),
                i64::try_from(upto).unwrap_or(i64::MAX),
                resource_type,
                limit
            ],
            |row| {
                Ok(SequencedVersion {
                    resource: row_to_stored(row)?,
                    sequence: row.get::<_, i64>(6)? as u64,
                })
            },
        )
        .map_err(unavailable)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
}

fn read_current_by_rids(conn: &Connection, rids: &[i64]) -> StoreResult<Vec<StoredResource>> {
    let mut out = Vec::with_capacity(rids.len());
    let mut stmt = conn
        .prepare_cached(&format!(
            "{SELECT_VERSION} WHERE r.rid = ? AND v.version = r.version"
        ))
        .map_err(unavailable)?;
    for rid in rids {
        if let Some(found) = stmt
            .query_row([rid], row_to_stored)
            .optional()
            .map_err(unavailable)?
        {
            out.push(found);
        }
    }
    Ok(out)
}

fn to_sql(values: &[SqlValue]) -> Vec<rusqlite::types::Value> {
    values
        .iter()
        .map(|v| match v {
            SqlValue::Int(i) => rusqlite::types::Value::Integer(*i),
            SqlValue::Real(f) => rusqlite::types::Value::Real(*f),
            SqlValue::Text(s) => rusqlite::types::Value::Text(s.clone()),
        })
        .collect()
}

fn search(conn: &Connection, params: &ParamIds, scoped: &ScopedQuery) -> StoreResult<SearchResult> {
    let query = scoped.query();
    let mut compiler = Compiler::new(params);
    let mut filter = Sql::default();
    filter.push("FROM resources r WHERE ");
    compiler.where_clause(&mut filter, "r", &query.resource_type, &query.criteria);
    let count_only = || -> StoreResult<u64> {
        let sql = format!("SELECT COUNT(*) {}", filter.text);
        let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
        let n: i64 = stmt
            .query_row(params_from_iter(to_sql(&filter.values)), |r| r.get(0))
            .map_err(unavailable)?;
        Ok(n as u64)
    };
    if query.summary_count || query.count == 0 {
        let total = if query.summary_count || query.total == TotalMode::Accurate {
            Some(count_only()?)
        } else {
            None
        };
        return Ok(SearchResult {
            matches: Vec::new(),
            included: Vec::new(),
            total,
        });
    }

    // One pass gives the page and, through the window function, the total over all pages.
    let with_total = query.total == TotalMode::Accurate;
    let columns = if with_total {
        "r.rid, COUNT(*) OVER ()"
    } else {
        "r.rid, 0"
    };
    let mut page = Sql {
        text: format!("SELECT {columns} {}", filter.text),
        values: filter.values.clone(),
        ..Sql::default()
    };
    compiler.order_by(&mut page, "r", query);
    page.push(" LIMIT ");
    page.bind(SqlValue::Int(query.count as i64));
    page.push(" OFFSET ");
    page.bind(SqlValue::Int(query.offset as i64));
    let rows: Vec<(i64, i64)> = {
        let mut stmt = conn.prepare_cached(&page.text).map_err(unavailable)?;
        let rows = stmt
            .query_map(params_from_iter(to_sql(&page.values)), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(unavailable)?;
        rows.collect::<Result<_, _>>().map_err(unavailable)?
    };
    let total = match (with_total, rows.first()) {
        (false, _) => None,
        (true, Some((_, n))) => Some(*n as u64),
        // A page past the end carries no count: ask for it.
        (true, None) if query.offset > 0 => Some(count_only()?),
        (true, None) => Some(0),
    };
    let rids: Vec<i64> = rows.into_iter().map(|(rid, _)| rid).collect();
    let matches = read_current_by_rids(conn, &rids)?;
    let included = includes(conn, params, scoped, &rids)?;
    Ok(SearchResult {
        matches,
        included,
        total,
    })
}

fn search_ids(
    conn: &Connection,
    params: &ParamIds,
    query: &SearchQuery,
) -> StoreResult<Vec<String>> {
    let mut compiler = Compiler::new(params);
    let mut sql = Sql::default();
    sql.push("SELECT r.id FROM resources r WHERE ");
    compiler.where_clause(&mut sql, "r", &query.resource_type, &query.criteria);
    compiler.order_by(&mut sql, "r", query);
    sql.push(" LIMIT ");
    sql.bind(SqlValue::Int(query.count as i64));
    sql.push(" OFFSET ");
    sql.bind(SqlValue::Int(query.offset as i64));
    let mut stmt = conn.prepare_cached(&sql.text).map_err(unavailable)?;
    let rows = stmt
        .query_map(params_from_iter(to_sql(&sql.values)), |r| r.get(0))
        .map_err(unavailable)?;
    rows.collect::<Result<_, _>>().map_err(unavailable)
}

/// Follows `_include` and `_revinclude` from the page (and, for `:iterate`, from what they add),
/// keeping only what the visibility allows: a hidden resource is neither returned nor followed.
fn includes(
    conn: &Connection,
    params: &ParamIds,
    scoped: &ScopedQuery,
    page: &[i64],
) -> StoreResult<Vec<StoredResource>> {
    let query = scoped.query();
    if query.includes.is_empty() && query.revincludes.is_empty() {
        return Ok(Vec::new());
    }
    let mut filter = VisibilityFilter::new(params, scoped.visibility());
    let mut seen: HashSet<i64> = page.iter().copied().collect();
    let mut added: Vec<i64> = Vec::new();
    let mut frontier: Vec<i64> = page.to_vec();
    for round in 0..MAX_INCLUDE_ROUNDS {
        let mut next = Vec::new();
        for include in query.includes.iter().filter(|i| round == 0 || i.iterate) {
            for rid in forward(conn, params, include, &frontier)? {
                if seen.insert(rid) && filter.allows(conn, rid)? {
                    next.push(rid);
                }
            }
        }
        for include in query.revincludes.iter().filter(|i| round == 0 || i.iterate) {
            for rid in reverse(conn, params, include, &frontier)? {
                if seen.insert(rid) && filter.allows(conn, rid)? {
                    next.push(rid);
                }
            }
        }
        if next.is_empty() {
            break;
        }
        added.extend(&next);
        frontier = next;
    }
    read_current_by_rids(conn, &added)
}

/// Checks single resources against a visibility, one compiled statement per type.
struct VisibilityFilter<'a> {
    params: &'a ParamIds,
    visibility: &'a Visibility,
    /// Per type: `None` hidden, `Some(None)` all, `Some(Some(sql))` the check.
    checks: HashMap<String, Option<Option<Sql>>>,
}

impl<'a> VisibilityFilter<'a> {
    fn new(params: &'a ParamIds, visibility: &'a Visibility) -> Self {
        VisibilityFilter {
            params,
            visibility,
            checks: HashMap::new(),
        }
    }

    fn allows(&mut self, conn: &Connection, rid: i64) -> StoreResult<bool> {
        if self.visibility.is_whole_store() {
            return Ok(true);
        }
        let rtype: Option<String> = conn
            .prepare_cached("SELECT rtype FROM resources WHERE rid = ?")
            .and_then(|mut s| s.query_row([rid], |r| r.get(0)).optional())
            .map_err(unavailable)?;
        let Some(rtype) = rtype else {
            return Ok(false);
        };
        let (params, visibility) = (self.params, self.visibility);
        let check =
            self.checks
                .entry(rtype.clone())
                .or_insert_with(|| match visibility.of_type(&rtype) {
                    TypeVisibility::Hidden => None,
                    TypeVisibility::All => Some(None),
                    TypeVisibility::Where(criteria) => {
                        let mut sql = Sql::default();
                        sql.push("SELECT 1 FROM resources r WHERE ");
                        Compiler::new(params).where_clause(&mut sql, "r", &rtype, criteria);
                        sql.push(" AND r.rid = ");
                        Some(Some(sql))
                    }
                });
        let Some(check) = check else {
            return Ok(false);
        };
        let Some(sql) = check else {
            return Ok(true);
        };
        let mut values = to_sql(&sql.values);
        values.push(rusqlite::types::Value::Integer(rid));
        let text = format!("{}?", sql.text);
        conn.prepare_cached(&text)
            .and_then(|mut s| s.exists(params_from_iter(values)))
            .map_err(unavailable)
    }
}

fn include_rows(params: &ParamIds, include: &Include) -> ParamRows {
    params.rows(&include.param.resource_type, &include.param.code)
}

/// Resources that `from` refer to through the include's parameter.
fn forward(
    conn: &Connection,
    params: &ParamIds,
    include: &Include,
    from: &[i64],
) -> StoreResult<Vec<i64>> {
    let mut sql = Sql::default();
    sql.push(
        "SELECT t.rid FROM sp_ref s JOIN resources src ON src.rid = s.rid \
         JOIN resources t ON t.rtype = s.ttype AND t.id = s.tid \
         WHERE s.rid = ? AND ",
    );
    sql.param_rows("s", &include_rows(params, include));
    sql.push(" AND src.rtype = ");
    sql.bind(SqlValue::Text(include.source_type.clone()));
    sql.push(" AND t.deleted = 0");
    if let Some(target_type) = &include.target_type {
        sql.push(" AND t.rtype = ");
        sql.bind(SqlValue::Text(target_type.clone()));
    }
    let mut stmt = conn.prepare_cached(&sql.text).map_err(unavailable)?;
    let mut out = Vec::new();
    for rid in from {
        let mut values = vec![rusqlite::types::Value::Integer(*rid)];
        values.extend(to_sql(&sql.values));
        let rows = stmt
            .query_map(params_from_iter(values), |r| r.get(0))
            .map_err(unavailable)?;
        for row in rows {
            out.push(row.map_err(unavailable)?);
        }
    }
    Ok(out)
}

/// Resources of the include's source type that refer to `to` through its parameter.
fn reverse(
    conn: &Connection,
    params: &ParamIds,
    include: &Include,
    to: &[i64],
) -> StoreResult<Vec<i64>> {
    let mut sql = Sql::default();
    sql.push(
        "SELECT s.rid FROM resources t JOIN sp_ref s ON s.ttype = t.rtype AND s.tid = t.id AND ",
    );
    sql.param_rows("s", &include_rows(params, include));
    sql.push(" JOIN resources src ON src.rid = s.rid WHERE src.deleted = 0 AND src.rtype = ");
    sql.bind(SqlValue::Text(include.source_type.clone()));
    sql.push(" AND t.rid = ?");
    let mut stmt = conn.prepare_cached(&sql.text).map_err(unavailable)?;
    let mut out = Vec::new();
    for rid in to {
        let mut values = to_sql(&sql.values);
        values.push(rusqlite::types::Value::Integer(*rid));
        let rows = stmt
            .query_map(params_from_iter(values), |r| r.get(0))
            .map_err(unavailable)?;
        for row in rows {
            out.push(row.map_err(unavailable)?);
        }
    }
    Ok(out)
}

fn history(
    conn: &Connection,
    params: &ParamIds,
    query: &HistoryQuery,
    visibility: &Visibility,
) -> StoreResult<HistoryPage> {
    let since = query.since.unwrap_or(i64::MIN);
    let mut filter = Sql::default();
    match &query.scope {
        HistoryScope::System => {}
        HistoryScope::Type(t) => {
            filter.push("r.rtype = ");
            filter.bind(SqlValue::Text(t.clone()));
            filter.push(" AND ");
        }
        HistoryScope::Instance { resource_type, id } => {
            filter.push("r.rtype = ");
            filter.bind(SqlValue::Text(resource_type.clone()));
            filter.push(" AND r.id = ");
            filter.bind(SqlValue::Text(id.clone()));
            filter.push(" AND ");
        }
    }
    filter.push("v.last_updated >= ");
    filter.bind(SqlValue::Int(since));
    visible_versions(&mut filter, params, &query.scope, visibility);
    let total: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM versions v JOIN resources r ON r.rid = v.rid WHERE {}",
            filter.text
        ))
        .and_then(|mut s| s.query_row(params_from_iter(to_sql(&filter.values)), |r| r.get(0)))
        .map_err(unavailable)?;
    let mut values = to_sql(&filter.values);
    values.push((query.count as i64).into());
    values.push((query.offset as i64).into());
    let mut stmt = conn
        .prepare_cached(&format!(
            "{SELECT_VERSION} WHERE {} ORDER BY v.seq DESC LIMIT ? OFFSET ?",
            filter.text
        ))
        .map_err(unavailable)?;
    let versions = stmt
        .query_map(params_from_iter(values), row_to_stored)
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    Ok(HistoryPage {
        versions,
        total: total as u64,
    })
}

/// Restricts a history filter over `r` to resources whose current version the visibility
/// allows (an instance's history is decided on before it is asked for).
fn visible_versions(
    filter: &mut Sql,
    params: &ParamIds,
    scope: &HistoryScope,
    visibility: &Visibility,
) {
    let Some(types) = visibility.types() else {
        return;
    };
    if matches!(scope, HistoryScope::Instance { .. }) {
        return;
    }
    let mut types: Vec<(&str, &[keel_fhir::search::Criterion])> = types
        .filter(|(t, _)| match scope {
            HistoryScope::Type(wanted) => t == wanted,
            _ => true,
        })
        .collect();
    types.sort_by_key(|(t, _)| *t);
    filter.push(" AND (0");
    for (t, criteria) in types {
        filter.push(" OR r.rid IN (SELECT a.rid FROM resources a WHERE ");
        Compiler::new(params).where_clause(filter, "a", t, criteria);
        filter.push(")");
    }
    filter.push(")");
}

fn referencing(
    conn: &Connection,
    params: &ParamIds,
    resource_type: &str,
    id: &str,
    visibility: &Visibility,
) -> StoreResult<Vec<StoredResource>> {
    let rids: Vec<i64> = conn
        .prepare_cached(
            "SELECT DISTINCT s.rid FROM sp_ref s JOIN resources src ON src.rid = s.rid \
             WHERE s.ttype = ? AND s.tid = ? AND src.deleted = 0 ORDER BY s.rid",
        )
        .and_then(|mut s| {
            s.query_map(params![resource_type, id], |r| r.get(0))?
                .collect()
        })
        .map_err(unavailable)?;
    let mut filter = VisibilityFilter::new(params, visibility);
    let mut visible = Vec::with_capacity(rids.len());
    for rid in rids {
        if filter.allows(conn, rid)? {
            visible.push(rid);
        }
    }
    read_current_by_rids(conn, &visible)
}

// ---------------------------------------------------------------- writes

/// Writes the version and replaces the resource's index rows (the new ones go to `pending`).
/// The conflict of writing a version at or below the resource's current one.
fn taken(v: &NewVersion) -> StoreError {
    StoreError::Conflict(format!(
        "{}/{} version {} already exists",
        v.resource_type, v.id, v.version
    ))
}

fn write_version(
    conn: &Connection,
    params: &ParamIds,
    pending: &mut PendingIndex,
    v: NewVersion,
) -> StoreResult<()> {
    let deleted = v.body.is_none();
    let method = match v.method {
        WriteMethod::Create => "C",
        WriteMethod::Update => "U",
        WriteMethod::Delete => "D",
    };
    let rid: i64 = conn
        .prepare_cached(
            "INSERT INTO resources(rtype, id, version, last_updated, deleted) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT(rtype, id) DO UPDATE SET version = excluded.version, last_updated = excluded.last_updated, deleted = excluded.deleted \
             WHERE resources.version < excluded.version RETURNING rid",
        )
        .and_then(|mut s| {
            s.query_row(
                params![v.resource_type, v.id, v.version as i64, v.last_updated, deleted],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(unavailable)?
        .ok_or_else(|| taken(&v))?;
    conn.prepare_cached(
        "INSERT INTO versions(rid, version, last_updated, method, body) VALUES (?, ?, ?, ?, ?)",
    )
    .and_then(|mut s| {
        s.execute(params![
            rid,
            v.version as i64,
            v.last_updated,
            method,
            v.body
        ])
    })
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            taken(&v)
        }
        other => unavailable(other),
    })?;
    if v.version > 1 {
        pending.forget(rid);
        for table in schema::INDEX_TABLES {
            conn.prepare_cached(&format!("DELETE FROM {table} WHERE rid = ?"))
                .and_then(|mut s| s.execute([rid]))
                .map_err(unavailable)?;
        }
    }
    for entry in v.index {
        let Some(pid) = params.get(&v.resource_type, &entry.param) else {
            return Err(StoreError::Integrity(format!(
                "no parameter id for {}.{}",
                v.resource_type, entry.param
            )));
        };
        pending.add(pid, rid, entry.value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    /// A cached statement runs again with new values without being compiled again.
    #[test]
    fn cached_statements_are_not_prepared_again_for_new_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keel.sqlite");
        drop(open_connection(&path, Some(Durability::EveryCommit)).expect("writer"));
        let conn = open_connection(&path, Some(Durability::EveryCommit)).expect("writer");
        crate::schema::migrate(&conn).expect("schema");
        let reader = open_connection(&path, None).expect("reader");
        let sql =
            format!("{SELECT_VERSION} WHERE r.rtype = ? AND r.id = ? AND v.version = r.version");
        for n in 0..5 {
            let mut stmt = reader.prepare_cached(&sql).expect("prepare");
            let found = stmt
                .query_row(params!["Patient", format!("p{n}")], |_| Ok(()))
                .optional()
                .expect("query");
            assert!(found.is_none());
            assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0, "run {n}");
        }
    }
}
