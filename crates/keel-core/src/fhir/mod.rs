//! FHIR R4 interactions over the record store: the rules live here once, whatever the backend.

mod audit_events;
mod bundle;
mod export;
mod idempotency;
mod identity_links;
mod patient_match;
mod record_access;
mod write;

pub use bundle::{BundleKind, BundleResponse, EntryResponse, PreparedBundle, parse_etag};
pub use export::{EXPORT_JOB, ExportManifest, ExportRequest, ExportStatus};
pub use idempotency::{IdempotencyKey, MAX_KEY_LENGTH};
pub use identity_links::{LinkFilter, MAX_DECISIONS_SHOWN, ScanSummary};
pub use patient_match::{
    DEFAULT_MATCH_COUNT, MAX_MATCH_COUNT, MatchRequest, MatchResult, PatientMatch,
};
pub use record_access::{Access, RecordAccess};
pub use write::{DeleteOutcome, WriteOutcome, parse_query_string};

use crate::access::{AccessControl, AccessView, patient_of};
use crate::audit::{AuditError, AuditOutcome, AuditTrail, PendingAudit, RequestAudit};
use crate::clock::{Clock, IdSource};
use crate::context::RequestContext;
use crate::error::{FhirError, FhirResult};
use crate::identity::PatientIndex;
use crate::policy::Policy;
use crate::store::{
    HistoryPage, HistoryQuery, HistoryScope, ResourceStore, SearchResult, StoreRead, StoredResource,
};
use keel_fhir::definitions::{self, Definitions};
use keel_fhir::index::{Indexer, split_reference};
use keel_fhir::search::{self, Handling, SearchQuery};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// The FHIR interactions. Every method takes the request context.
pub struct FhirService {
    store: Arc<dyn ResourceStore>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    indexer: Indexer,
    defs: &'static Definitions,
    access: Arc<AccessControl>,
    /// Where every request's audit record goes; `None` only for offline use (import, tests).
    audit: Option<Arc<AuditTrail>>,
    /// The store's Patients as a trained person index, for `$match`.
    patient_index: Arc<PatientIndex>,
}

/// What a history request asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRequest {
    pub scope: HistoryScope,
    pub since: Option<i64>,
    pub count: usize,
    pub offset: usize,
}

/// A request's audit record: written already (its sequence; none without a trail), or queued.
pub enum AuditWrite {
    Done(Option<u64>),
    Pending(PendingAudit),
}

impl AuditWrite {
    /// The record's sequence once it is committed. An error means it is not written: the
    /// response must not leave.
    pub async fn committed(self) -> FhirResult<Option<u64>> {
        match self {
            AuditWrite::Done(sequence) => Ok(sequence),
            AuditWrite::Pending(pending) => pending.await.map(Some).map_err(audit_unavailable),
        }
    }
}

fn audit_unavailable(e: AuditError) -> FhirError {
    FhirError::AuditUnavailable(e.to_string())
}

impl FhirService {
    pub fn new(
        store: Arc<dyn ResourceStore>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
    ) -> Self {
        let defs = definitions::r4();
        let policy = Policy::default_policy()
            .unwrap_or_else(|e| panic!("the shipped access policy does not load: {e}"));
        FhirService {
            store,
            clock,
            ids,
            indexer: Indexer::new(defs),
            defs,
            access: Arc::new(AccessControl::new(policy, None)),
            audit: None,
            patient_index: Arc::new(PatientIndex::default()),
        }
    }

    /// The service recording every request in `trail`.
    pub fn with_audit(mut self, trail: Arc<AuditTrail>) -> Self {
        self.audit = Some(trail);
        self
    }

    /// Records the request's audit record through the trail (once; a write already recorded it
    /// in its transaction) and returns its sequence. Without a trail (offline use) nothing is
    /// recorded. An error means the record is not written: the response must not leave.
    pub fn record_audit(
        &self,
        ctx: &RequestContext,
        audit: &RequestAudit,
        outcome: AuditOutcome,
    ) -> FhirResult<Option<u64>> {
        match self.submit_audit(ctx, audit, outcome)? {
            AuditWrite::Done(sequence) => Ok(sequence),
            AuditWrite::Pending(pending) => pending.wait().map(Some).map_err(audit_unavailable),
        }
    }

    /// Queues the request's audit record (as [`record_audit`](Self::record_audit) does, without
    /// waiting for its commit): await [`AuditWrite::committed`] before the response leaves.
    pub fn submit_audit(
        &self,
        ctx: &RequestContext,
        audit: &RequestAudit,
        outcome: AuditOutcome,
    ) -> FhirResult<AuditWrite> {
        if let Some(sequence) = audit.recorded() {
            return Ok(AuditWrite::Done(Some(sequence)));
        }
        let Some(trail) = &self.audit else {
            return Ok(AuditWrite::Done(None));
        };
        let record = audit.to_record(ctx, self.instant(), outcome);
        trail
            .submit(record)
            .map(AuditWrite::Pending)
            .map_err(audit_unavailable)
    }

    /// Now, as an audit timestamp.
    pub(crate) fn instant(&self) -> keel_model::Instant {
        let text = keel_fhir::datetime::format_instant(self.now());
        keel_model::Instant::parse(&text).unwrap_or_else(|_| {
            keel_model::Instant::parse("1970-01-01T00:00:00Z").expect("a constant instant")
        })
    }

    pub(crate) fn audit_trail(&self) -> Option<&AuditTrail> {
        self.audit.as_deref()
    }

    /// The service under this access policy and tenant.
    pub fn with_access(mut self, access: AccessControl) -> Self {
        self.access = Arc::new(access);
        self
    }

    pub fn access(&self) -> &AccessControl {
        &self.access
    }

    pub(crate) fn indexer(&self) -> &Indexer {
        &self.indexer
    }

    /// The access view of one request. A stated break-glass is decided on first: an invalid
    /// one refuses the request (with why), a valid one flags its audit record.
    pub(crate) fn view(
        &self,
        ctx: &RequestContext,
        audit: &mut RequestAudit,
    ) -> FhirResult<AccessView> {
        // Local development is not decided on, so it takes no time from the clock.
        let now = match ctx.actor {
            crate::context::Actor::LocalDevelopment => 0,
            _ => self.now(),
        };
        let view = self
            .access
            .view(ctx, self.defs, now, ctx.break_glass.clone());
        if !view.is_unrestricted() {
            audit.policy(view.policy_version());
        }
        if let Some(decision) = view.break_glass_decision() {
            audit.decided(&decision);
            if !decision.is_permit() {
                return Err(crate::access::forbidden(
                    "the break-glass stated with this request is not valid",
                    &decision,
                ));
            }
        }
        Ok(view)
    }

    /// Decides on reading `found` and prepares it to leave; notes it for the audit record.
    fn permit_read(
        &self,
        view: &AccessView,
        reader: &mut dyn StoreRead,
        found: StoredResource,
        audit: &mut RequestAudit,
    ) -> FhirResult<StoredResource> {
        self.note(audit, &found);
        let permit = view.decide_read(reader, &self.indexer, &found)?;
        if let Some(decision) = &permit.decision {
            audit.decided(decision);
        }
        Ok(view.prepare_read(found, &permit))
    }

    /// Notes a resource (and its patient) the request touched.
    pub(crate) fn note(&self, audit: &mut RequestAudit, resource: &StoredResource) {
        audit.resource(format!(
            "{}/{}/_history/{}",
            resource.resource_type, resource.id, resource.version
        ));
        if let Some(patient) = patient_of(&self.indexer, resource) {
            audit.patient(&patient);
        }
    }

    pub fn definitions(&self) -> &'static Definitions {
        self.defs
    }

    /// Is the record store answering? (readiness)
    pub fn ping(&self) -> FhirResult<()> {
        Ok(self.store.ping()?)
    }

    pub fn check_type(&self, resource_type: &str) -> FhirResult<()> {
        if self.defs.is_resource_type(resource_type) {
            Ok(())
        } else {
            Err(FhirError::UnknownResourceType(resource_type.to_string()))
        }
    }

    /// The current version; a deleted resource is `Gone`.
    pub fn read(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
        audit: &mut RequestAudit,
    ) -> FhirResult<StoredResource> {
        audit.resource(format!("{resource_type}/{id}"));
        self.check_type(resource_type)?;
        let mut reader = self.store.reader()?;
        let view = self.view(ctx, audit)?;
        view.check_type(resource_type)?;
        let found = reader.read(resource_type, id)?;
        let found = match (found, view.is_unrestricted()) {
            // A deleted resource is decided on as its last version: 410 only where it may be read.
            (Some(deleted), false) if deleted.is_deleted() && deleted.version > 1 => {
                if let Some(last) = reader.read_version(resource_type, id, deleted.version - 1)? {
                    self.note(audit, &last);
                    view.decide_read(&mut *reader, &self.indexer, &last)?;
                }
                Some(deleted)
            }
            (found, _) => found,
        };
        let found = live(found, resource_type, id)?;
        self.permit_read(&view, &mut *reader, found, audit)
    }

    pub fn vread(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
        version: u64,
        audit: &mut RequestAudit,
    ) -> FhirResult<StoredResource> {
        audit.resource(format!("{resource_type}/{id}/_history/{version}"));
        self.check_type(resource_type)?;
        let mut reader = self.store.reader()?;
        let view = self.view(ctx, audit)?;
        view.check_type(resource_type)?;
        // Decided on the current version (a version of a resource the actor may not read now
        // is not shown either), then on the version asked for.
        if let Some(current) = reader.read(resource_type, id)?.filter(|c| !c.is_deleted()) {
            self.note(audit, &current);
            view.decide_read(&mut *reader, &self.indexer, &current)?;
        }
        match reader.read_version(resource_type, id, version)? {
            Some(found) if found.is_deleted() => Err(FhirError::Gone {
                resource_type: resource_type.into(),
                id: id.into(),
                version,
            }),
            Some(found) => self.permit_read(&view, &mut *reader, found, audit),
            None if reader.read(resource_type, id)?.is_none() => Err(FhirError::NotFound {
                resource_type: resource_type.into(),
                id: id.into(),
            }),
            None => Err(FhirError::VersionNotFound {
                resource_type: resource_type.into(),
                id: id.into(),
                version,
            }),
        }
    }

    /// Parses the search parameters (definitions-driven) without running the search.
    pub fn parse_search(
        &self,
        resource_type: &str,
        params: &[(String, String)],
        handling: Handling,
    ) -> FhirResult<SearchQuery> {
        self.check_type(resource_type)?;
        Ok(search::parse_query(
            self.defs,
            resource_type,
            params,
            handling,
        )?)
    }

    /// Runs a search under the request's access: the type must be readable, and what the
    /// actor may not read is filtered in the query itself (so pages, totals and includes
    /// never hold or count it); Patients leave redacted.
    pub fn search(
        &self,
        ctx: &RequestContext,
        query: &SearchQuery,
        audit: &mut RequestAudit,
    ) -> FhirResult<SearchResult> {
        audit.resource(query.resource_type.clone());
        let mut reader = self.store.reader()?;
        let view = self.view(ctx, audit)?;
        if let Some(decision) = view.check_type(&query.resource_type)? {
            audit.decided(&decision);
        }
        let visibility = view.visibility(&mut *reader)?;
        let scoped = crate::access::scope_query(&view, query, visibility)?;
        let mut result = reader.search(&scoped)?;
        for r in result.matches.iter().chain(&result.included) {
            self.note(audit, r);
        }
        if !view.is_unrestricted() {
            result.matches = result
                .matches
                .into_iter()
                .map(|r| view.prepare(r))
                .collect();
            result.included = result
                .included
                .into_iter()
                .map(|r| view.prepare(r))
                .collect();
        }
        Ok(result)
    }

    pub fn history(
        &self,
        ctx: &RequestContext,
        request: &HistoryRequest,
        audit: &mut RequestAudit,
    ) -> FhirResult<HistoryPage> {
        audit.resource(match &request.scope {
            HistoryScope::System => "_history".to_string(),
            HistoryScope::Type(t) => t.clone(),
            HistoryScope::Instance { resource_type, id } => format!("{resource_type}/{id}"),
        });
        let mut reader = self.store.reader()?;
        let view = self.view(ctx, audit)?;
        match &request.scope {
            HistoryScope::System => {}
            HistoryScope::Type(t) => {
                self.check_type(t)?;
                view.check_type(t)?;
            }
            HistoryScope::Instance { resource_type, id } => {
                self.check_type(resource_type)?;
                view.check_type(resource_type)?;
                let Some(current) = reader.read(resource_type, id)? else {
                    return Err(FhirError::NotFound {
                        resource_type: resource_type.clone(),
                        id: id.clone(),
                    });
                };
                let decided = if current.is_deleted() && current.version > 1 {
                    reader.read_version(resource_type, id, current.version - 1)?
                } else {
                    Some(current)
                };
                if let Some(decided) = decided {
                    self.note(audit, &decided);
                    if let Some(decision) = view
                        .decide_read(&mut *reader, &self.indexer, &decided)?
                        .decision
                    {
                        audit.decided(&decision);
                    }
                }
            }
        }
        let visibility = view.visibility(&mut *reader)?;
        let query = HistoryQuery {
            scope: request.scope.clone(),
            since: request.since,
            count: request.count.min(search::MAX_COUNT),
            offset: request.offset,
        };
        let mut page = reader.history(&query, &visibility)?;
        for r in &page.versions {
            self.note(audit, r);
        }
        if !view.is_unrestricted() {
            page.versions = page.versions.into_iter().map(|r| view.prepare(r)).collect();
        }
        Ok(page)
    }

    /// `Patient/{id}/$everything`: the patient, every resource that refers to them, and the
    /// resources those refer to (practitioners, organisations, medications ...).
    pub fn everything(
        &self,
        ctx: &RequestContext,
        patient_id: &str,
        audit: &mut RequestAudit,
    ) -> FhirResult<Vec<StoredResource>> {
        audit.resource(format!("Patient/{patient_id}"));
        let mut reader = self.store.reader()?;
        let view = self.view(ctx, audit)?;
        view.check_type("Patient")?;
        let patient = live(reader.read("Patient", patient_id)?, "Patient", patient_id)?;
        let patient = self.permit_read(&view, &mut *reader, patient, audit)?;
        let visibility = view.visibility(&mut *reader)?;
        let compartment = reader.referencing("Patient", patient_id, &visibility)?;
        let mut seen: HashSet<(String, String)> = HashSet::new();
        seen.insert(("Patient".into(), patient_id.into()));
        for r in &compartment {
            seen.insert((r.resource_type.clone(), r.id.clone()));
        }
        let mut referenced = Vec::new();
        for r in &compartment {
            let Some(body) = &r.body else { continue };
            let Ok(json) = serde_json::from_str::<Value>(body) else {
                continue;
            };
            let mut targets = Vec::new();
            collect_references(&json, &mut targets);
            for (t, id) in targets {
                if t != "Patient"
                    && seen.insert((t.clone(), id.clone()))
                    && let Some(found) = reader.read(&t, &id)?.filter(|f| !f.is_deleted())
                    && view
                        .decide_read(&mut *reader, &self.indexer, &found)
                        .is_ok()
                {
                    referenced.push(found);
                }
            }
        }
        for r in compartment.iter().chain(&referenced) {
            self.note(audit, r);
        }
        let mut all = vec![patient];
        all.extend(compartment.into_iter().map(|r| view.prepare(r)));
        all.extend(referenced.into_iter().map(|r| view.prepare(r)));
        Ok(all)
    }

    fn now(&self) -> i64 {
        self.clock.now_millis()
    }
}

fn live(
    found: Option<StoredResource>,
    resource_type: &str,
    id: &str,
) -> FhirResult<StoredResource> {
    match found {
        None => Err(FhirError::NotFound {
            resource_type: resource_type.into(),
            id: id.into(),
        }),
        Some(r) if r.is_deleted() => Err(FhirError::Gone {
            resource_type: resource_type.into(),
            id: id.into(),
            version: r.version,
        }),
        Some(r) => Ok(r),
    }
}

/// Every literal `Type/id` reference in a resource.
fn collect_references(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "reference"
                    && let Some(s) = v.as_str()
                    && let (Some(t), Some(id)) = split_reference(s)
                {
                    out.push((t, id));
                } else {
                    collect_references(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}
