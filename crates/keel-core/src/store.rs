//! The record-store port: what the core needs from a storage backend. SQLite and PostgreSQL
//! implement it and must both pass the same contract test suite (keel-store's `contract`).
//!
//! The store persists versions and index rows; all FHIR rules (ids, versions, meta,
//! conditional logic, validation, index extraction) live above it in the core, once.

use crate::audit::{AuditEntry, ChainHash, Checkpoint};
use crate::jobs::{JobQueue, JobRead};
use keel_fhir::index::IndexEntry;
use keel_fhir::search::{Criterion, SearchQuery};
use std::collections::HashMap;
use std::sync::Arc;

/// One version of a resource as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    pub resource_type: String,
    pub id: String,
    pub version: u64,
    /// Milliseconds since the Unix epoch.
    pub last_updated: i64,
    /// The JSON text exactly as stored (with `id` and `meta` set); `None` for a deletion.
    pub body: Option<Arc<str>>,
    pub method: WriteMethod,
}

impl StoredResource {
    pub fn is_deleted(&self) -> bool {
        self.body.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMethod {
    Create,
    Update,
    Delete,
}

impl WriteMethod {
    pub fn as_http(self) -> &'static str {
        match self {
            WriteMethod::Create => "POST",
            WriteMethod::Update => "PUT",
            WriteMethod::Delete => "DELETE",
        }
    }
}

/// A new version to persist. The store makes it current and replaces the resource's index rows.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub resource_type: String,
    pub id: String,
    pub version: u64,
    pub last_updated: i64,
    pub method: WriteMethod,
    /// `None` for a deletion.
    pub body: Option<String>,
    pub index: Vec<IndexEntry>,
}

/// Which history to list.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryScope {
    System,
    Type(String),
    Instance { resource_type: String, id: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryQuery {
    pub scope: HistoryScope,
    /// Only versions updated at or after this instant (ms).
    pub since: Option<i64>,
    pub count: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// Newest first.
    pub versions: Vec<StoredResource>,
    pub total: u64,
}

/// A stored version with its place in the store's write order (a sequence shared by every
/// type, increasing with each committed version).
#[derive(Debug, Clone, PartialEq)]
pub struct SequencedVersion {
    pub sequence: u64,
    pub resource: StoredResource,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchResult {
    /// The page of matches, in the requested order.
    pub matches: Vec<StoredResource>,
    /// Resources added by `_include` / `_revinclude`, without duplicates of matches.
    pub included: Vec<StoredResource>,
    /// Number of matches over all pages, when asked for.
    pub total: Option<u64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or failed; the operation may be retried.
    #[error("record store unavailable: {0}")]
    Unavailable(String),
    /// Another writer changed the same data; the operation may be retried.
    #[error("conflicting concurrent write: {0}")]
    Conflict(String),
    /// The stored data breaks an invariant (corruption or a bug); do not retry.
    #[error("record store integrity error: {0}")]
    Integrity(String),
    /// The query cannot be executed by this backend.
    #[error("query not supported: {0}")]
    Unsupported(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Which resources a request may see, pushed into every store query so that pages, totals,
/// includes and history never hold (or count) a resource the actor may not read. Built by
/// [`crate::access`] from the request context and the access policy; the store only applies it.
#[derive(Debug, Clone)]
pub struct Visibility(VisibilityRule);

#[derive(Debug, Clone)]
enum VisibilityRule {
    Everything,
    /// Types absent from the map are hidden.
    ByType(Arc<HashMap<String, Vec<Criterion>>>),
}

/// What a [`Visibility`] allows of one resource type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TypeVisibility<'a> {
    Hidden,
    All,
    /// Only resources that meet every one of these criteria.
    Where(&'a [Criterion]),
}

impl Visibility {
    /// Everything in the store: for local development, operators' offline tools (import,
    /// backup) and the rules that must see every resource (conditional create matching).
    /// Never for a request from an authenticated actor (architecture test).
    pub fn whole_store() -> Visibility {
        Visibility(VisibilityRule::Everything)
    }

    /// Only the types in `rules`, each restricted by its criteria (none: all of that type).
    pub(crate) fn by_type(rules: HashMap<String, Vec<Criterion>>) -> Visibility {
        Visibility(VisibilityRule::ByType(Arc::new(rules)))
    }

    pub fn of_type(&self, resource_type: &str) -> TypeVisibility<'_> {
        match &self.0 {
            VisibilityRule::Everything => TypeVisibility::All,
            VisibilityRule::ByType(rules) => match rules.get(resource_type) {
                None => TypeVisibility::Hidden,
                Some(criteria) if criteria.is_empty() => TypeVisibility::All,
                Some(criteria) => TypeVisibility::Where(criteria),
            },
        }
    }

    /// The visible types and their criteria; `None` when every type is visible.
    pub fn types(&self) -> Option<impl Iterator<Item = (&str, &[Criterion])>> {
        match &self.0 {
            VisibilityRule::Everything => None,
            VisibilityRule::ByType(rules) => Some(
                rules
                    .iter()
                    .map(|(t, criteria)| (t.as_str(), criteria.as_slice())),
            ),
        }
    }

    pub fn is_whole_store(&self) -> bool {
        matches!(self.0, VisibilityRule::Everything)
    }
}

/// A search the store may run: its query already carries the access criteria of its own type
/// (and of every chained or `_has` type), and `visibility` filters what includes add. Only
/// [`crate::access`] and the core's internal rules build one.
#[derive(Debug, Clone)]
pub struct ScopedQuery {
    query: SearchQuery,
    visibility: Visibility,
}

impl ScopedQuery {
    pub(crate) fn new(query: SearchQuery, visibility: Visibility) -> ScopedQuery {
        ScopedQuery { query, visibility }
    }

    /// A search of the whole store (see [`Visibility::whole_store`]).
    pub fn whole_store(query: SearchQuery) -> ScopedQuery {
        ScopedQuery::new(query, Visibility::whole_store())
    }

    pub fn query(&self) -> &SearchQuery {
        &self.query
    }

    pub fn visibility(&self) -> &Visibility {
        &self.visibility
    }
}

/// Reading the audit log (see [`crate::audit`]).
pub trait AuditRead {
    /// Up to `limit` entries with a sequence of at least `from`, in sequence order.
    fn audit_entries(&mut self, from: u64, limit: usize) -> StoreResult<Vec<AuditEntry>>;
    /// Every checkpoint, in sequence order.
    fn audit_checkpoints(&mut self) -> StoreResult<Vec<Checkpoint>>;
}

/// Appending to the audit log, inside a write transaction. Append-only: there is no way to
/// change or remove an entry or a checkpoint.
pub trait AuditLog {
    /// The sequence and hash of the last entry; `None` while the log is empty.
    fn audit_head(&mut self) -> StoreResult<Option<(u64, ChainHash)>>;
    /// Fails with [`StoreError::Conflict`] if the sequence is taken.
    fn append_audit(&mut self, entry: &AuditEntry) -> StoreResult<()>;
    fn append_audit_checkpoint(&mut self, checkpoint: &Checkpoint) -> StoreResult<()>;
}

/// Reads that need no transaction.
pub trait StoreRead: AuditRead + JobRead {
    /// The current version (possibly a deletion) of a resource.
    fn read(&mut self, resource_type: &str, id: &str) -> StoreResult<Option<StoredResource>>;
    fn read_version(
        &mut self,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> StoreResult<Option<StoredResource>>;
    fn search(&mut self, query: &ScopedQuery) -> StoreResult<SearchResult>;
    /// The ids of the page of matches, without reading the resources (no total, no includes).
    fn search_ids(&mut self, query: &ScopedQuery) -> StoreResult<Vec<String>>;
    /// Versions of resources the visibility allows (a type scope lists only resources whose
    /// current version it allows; a hidden type lists nothing).
    fn history(
        &mut self,
        query: &HistoryQuery,
        visibility: &Visibility,
    ) -> StoreResult<HistoryPage>;
    /// Current, non-deleted resources that refer to `resource_type/id` through any reference
    /// search parameter (the patient compartment for `$everything`), those the visibility
    /// allows.
    fn referencing(
        &mut self,
        resource_type: &str,
        id: &str,
        visibility: &Visibility,
    ) -> StoreResult<Vec<StoredResource>>;
    /// The sequence of the newest committed version (0 for an empty store): cheap, so a cache
    /// over the store can ask it on every use.
    fn version_head(&mut self) -> StoreResult<u64>;
    /// Up to `limit` versions (deletions included) of `resource_type` with a sequence above
    /// `after` and at most `upto`, in sequence order. For caches built from the store (the
    /// patient index for matching) that follow it by what changed.
    fn versions_between(
        &mut self,
        resource_type: &str,
        after: u64,
        upto: u64,
        limit: usize,
    ) -> StoreResult<Vec<SequencedVersion>>;
    /// A named progress marker (import resumption, jobs), written with [`StoreTx::set_checkpoint`].
    fn checkpoint(&mut self, key: &str) -> StoreResult<Option<String>>;
    /// The response recorded for an idempotency key (see [`StoreTx::record_idempotent_response`]).
    fn idempotent_response(&mut self, key: &str) -> StoreResult<Option<String>>;
}

/// A write transaction: everything in it commits atomically or not at all. While it is open,
/// no other writer can change the store, so read-then-write sequences (conditional create)
/// are race-free. Dropping it without commit rolls back.
pub trait StoreTx: StoreRead + AuditLog + JobQueue {
    /// Writes a version. Every read in the transaction sees it. A version that is taken (at
    /// or below the resource's current one) is a [`StoreError::Conflict`] that writes nothing
    /// of it: reported by this call, or, where a backend holds first versions back to write
    /// them together, by the transaction's next read, later-version write or commit (a commit
    /// that reports it has committed nothing).
    fn write(&mut self, version: NewVersion) -> StoreResult<()>;
    fn set_checkpoint(&mut self, key: &str, value: &str) -> StoreResult<()>;
    /// Records what a request with an idempotency key did, with the write it did: a repeat of
    /// the key finds it even on another node. A key is recorded once; recording it again is a
    /// conflict.
    fn record_idempotent_response(
        &mut self,
        key: &str,
        response: &str,
        now: i64,
    ) -> StoreResult<()>;
    fn commit(self: Box<Self>) -> StoreResult<()>;
}

/// A storage backend.
pub trait ResourceStore: Send + Sync {
    /// A read view (a pooled connection). Consistent for one call.
    fn reader(&self) -> StoreResult<Box<dyn StoreRead + '_>>;
    /// Begins a write transaction, waiting for other writers.
    fn begin(&self) -> StoreResult<Box<dyn StoreTx + '_>>;
    /// Is the store answering?
    fn ping(&self) -> StoreResult<()>;
}
