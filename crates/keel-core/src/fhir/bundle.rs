//! Batch and transaction Bundles (R4 §3.1.0.11). A transaction runs in one store transaction:
//! all of it or none. `urn:uuid:` and other fullUrl references are rewritten to the assigned
//! `Type/id`; conditional references (`Practitioner?identifier=...`) and `ifNoneExist` are
//! resolved inside the transaction. For an actor under access control every entry is decided
//! as the interaction it stands for would be, inside the same transaction: a refused entry of a
//! batch fails alone, a refused entry of a transaction fails the whole Bundle.

use super::FhirService;
use super::write::{Checked, DeleteOutcome, conditional_target, parse_query_string};
use crate::access::AccessView;
use crate::audit::RequestAudit;
use crate::context::RequestContext;
use crate::error::{FhirError, FhirResult};
use crate::store::{StoreTx, StoredResource};
use keel_fhir::search::Handling;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Each entry notes what it touched as it runs.
impl super::write::Written for BundleResponse {
    fn written(&self) -> Option<&StoredResource> {
        None
    }
}

/// The request a Bundle is processed for: its access view (`None` when unrestricted: local
/// development) and its audit record.
struct EntryAccess<'a> {
    view: Option<&'a AccessView>,
    audit: &'a mut RequestAudit,
}

/// Below this many entries a Bundle is checked on the calling thread.
const PARALLEL_CHECK_MIN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    Batch,
    Transaction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Method {
    // Declared in R4's processing order for transactions.
    Delete,
    Post,
    Put,
    Patch,
    Get,
}

#[derive(Debug, Clone)]
struct Entry {
    index: usize,
    method: Method,
    url: String,
    full_url: Option<String>,
    resource: Option<Value>,
    /// The resource of a POST or PUT, validated and indexed ahead of the writes.
    checked: Option<FhirResult<Checked>>,
    if_none_exist: Option<String>,
    if_match: Option<u64>,
}

/// A Bundle parsed, with its resources checked and indexed, ready to run against the store.
#[derive(Debug, Clone)]
pub struct PreparedBundle {
    kind: BundleKind,
    entries: Vec<Entry>,
}

impl PreparedBundle {
    pub fn kind(&self) -> BundleKind {
        self.kind
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Conditional references (`Practitioner?identifier=...`) already resolved in this store
/// transaction. An entry for a type is forgotten as soon as a Bundle writes that type.
#[derive(Default)]
struct ResolvedConditions(HashMap<String, String>);

impl ResolvedConditions {
    fn forget_types_written_by(&mut self, entries: &[Entry]) {
        for entry in entries.iter().filter(|e| e.method != Method::Get) {
            let written = entry
                .url
                .split(['/', '?'])
                .find(|s| !s.is_empty())
                .unwrap_or("");
            self.0
                .retain(|condition, _| condition.split('?').next() != Some(written));
        }
    }
}

/// The outcome of one entry.
#[derive(Debug)]
pub struct EntryResponse {
    /// The HTTP status line, e.g. `201 Created`.
    pub status: &'static str,
    /// The version written, matched or read.
    pub resource: Option<StoredResource>,
    /// A search result Bundle (GET of a search URL).
    pub body: Option<Value>,
}

/// The outcome of a batch or transaction, entry by entry in Bundle order.
#[derive(Debug)]
pub struct BundleResponse {
    pub kind: BundleKind,
    pub entries: Vec<FhirResult<EntryResponse>>,
}

impl FhirService {
    /// Processes a batch or transaction Bundle. A failed transaction is an error as a whole;
    /// a batch reports each entry's own outcome.
    pub fn process_bundle(
        &self,
        ctx: &RequestContext,
        bundle: Value,
    ) -> FhirResult<BundleResponse> {
        self.process_bundle_audited(ctx, bundle, &mut RequestAudit::default())
    }

    /// As [`process_bundle`](Self::process_bundle), noting what the Bundle touched in the
    /// request's `audit` record, which a write commits with the Bundle's own transaction.
    pub fn process_bundle_audited(
        &self,
        ctx: &RequestContext,
        bundle: Value,
        audit: &mut RequestAudit,
    ) -> FhirResult<BundleResponse> {
        let prepared = self.prepare_bundle(bundle)?;
        self.in_audited_transaction(ctx, audit, |tx, audit| {
            let view = self.view(ctx, audit)?;
            let mut access = EntryAccess {
                view: (!view.is_unrestricted()).then_some(&view),
                audit,
            };
            self.run_bundle(
                tx,
                prepared,
                &mut ResolvedConditions::default(),
                Some(&mut access),
            )
        })
    }

    /// Parses a Bundle and checks and indexes its resources: the part of processing that needs
    /// no store, so it can run ahead of (and in parallel with) the writer.
    pub fn prepare_bundle(&self, bundle: Value) -> FhirResult<PreparedBundle> {
        let (kind, mut entries) = parse_bundle(bundle)?;
        // resolve() in search expressions must know what a Bundle-internal reference points at.
        let types: HashMap<String, String> = entries
            .iter()
            .filter_map(|e| {
                Some((
                    e.full_url.clone()?,
                    e.resource
                        .as_ref()?
                        .get("resourceType")?
                        .as_str()?
                        .to_string(),
                ))
            })
            .collect();
        let references = |reference: &str| {
            types.get(reference).cloned().or_else(|| {
                let (resource_type, _) = reference.split_once('?')?;
                self.defs
                    .is_resource_type(resource_type)
                    .then(|| resource_type.to_string())
            })
        };
        self.check_entries(&mut entries, &references);
        Ok(PreparedBundle { kind, entries })
    }

    /// Processes a prepared Bundle, also setting a named checkpoint in the same store transaction.
    pub fn process_bundle_with_checkpoint(
        &self,
        ctx: &RequestContext,
        bundle: PreparedBundle,
        checkpoint: Option<(&str, &str)>,
    ) -> FhirResult<BundleResponse> {
        self.guard_unrestricted(ctx, "bulk loading")?;
        let mut tx = self.store.begin()?;
        let response = self.run_bundle(
            tx.as_mut(),
            bundle,
            &mut ResolvedConditions::default(),
            None,
        )?;
        if let Some((key, value)) = checkpoint {
            tx.set_checkpoint(key, value)?;
        }
        tx.commit()?;
        Ok(response)
    }

    /// Processes several prepared Bundles in one store transaction with their checkpoints:
    /// fewer commits make bulk import faster. If any Bundle fails, that transaction is rolled
    /// back and each Bundle is processed again in a transaction of its own, so every
    /// transaction Bundle is still all or nothing. One result per Bundle.
    pub fn process_bundles_with_checkpoints(
        &self,
        ctx: &RequestContext,
        bundles: Vec<(PreparedBundle, (String, String))>,
    ) -> FhirResult<Vec<FhirResult<BundleResponse>>> {
        if bundles.len() > 1 {
            let mut tx = self.store.begin()?;
            let mut resolved = ResolvedConditions::default();
            let mut responses = Vec::with_capacity(bundles.len());
            for (bundle, (key, value)) in &bundles {
                // A copy: the originals are needed again if the group has to be redone.
                match self.run_bundle(tx.as_mut(), bundle.clone(), &mut resolved, None) {
                    Ok(response) => {
                        tx.set_checkpoint(key, value)?;
                        responses.push(Ok(response));
                    }
                    Err(_) => break,
                }
            }
            if responses.len() == bundles.len() {
                tx.commit()?;
                return Ok(responses);
            }
        }
        Ok(bundles
            .into_iter()
            .map(|(bundle, (key, value))| {
                self.process_bundle_with_checkpoint(ctx, bundle, Some((&key, &value)))
            })
            .collect())
    }

    /// Runs a prepared Bundle inside an open store transaction.
    fn run_bundle(
        &self,
        tx: &mut dyn StoreTx,
        bundle: PreparedBundle,
        resolved: &mut ResolvedConditions,
        mut access: Option<&mut EntryAccess>,
    ) -> FhirResult<BundleResponse> {
        let PreparedBundle { kind, entries } = bundle;
        Ok(match kind {
            BundleKind::Transaction => BundleResponse {
                kind,
                entries: self
                    .transaction(tx, entries, resolved, access.as_deref_mut())?
                    .into_iter()
                    .map(Ok)
                    .collect(),
            },
            BundleKind::Batch => BundleResponse {
                kind,
                entries: self.batch(tx, entries, access)?,
            },
        })
    }

    /// The value of a named checkpoint.
    pub fn checkpoint(&self, key: &str) -> FhirResult<Option<String>> {
        Ok(self.store.reader()?.checkpoint(key)?)
    }

    /// All entries or none: the caller rolls back on error.
    fn transaction(
        &self,
        tx: &mut dyn StoreTx,
        mut entries: Vec<Entry>,
        resolved: &mut ResolvedConditions,
        mut access: Option<&mut EntryAccess>,
    ) -> FhirResult<Vec<EntryResponse>> {
        let mut ids: HashMap<String, String> = HashMap::new();
        // 1. Decide every new resource's identity, so references can be rewritten before any write.
        let mut pre_resolved: HashMap<usize, EntryResponse> = HashMap::new();
        for entry in &entries {
            let target = match entry.method {
                Method::Post => {
                    let resource_type = entry.url.trim_matches('/').to_string();
                    self.check_type(&resource_type)
                        .map_err(|e| e.in_entry(entry.index))?;
                    let existing = match &entry.if_none_exist {
                        Some(criteria) => self
                            .single_match(tx, &resource_type, criteria)
                            .map_err(|e| e.in_entry(entry.index))?,
                        None => None,
                    };
                    match existing {
                        Some(found) => {
                            let target = format!("{resource_type}/{}", found.id);
                            // The match is answered to the caller: it must be theirs to read.
                            let found = self
                                .reveal(tx, found, access.as_deref_mut())
                                .map_err(|e| e.in_entry(entry.index))?;
                            pre_resolved.insert(
                                entry.index,
                                EntryResponse {
                                    status: "200 OK",
                                    resource: Some(found),
                                    body: None,
                                },
                            );
                            Some(target)
                        }
                        None => Some(format!("{resource_type}/{}", self.ids.new_id())),
                    }
                }
                Method::Put => match entry.url.split_once('?') {
                    None => Some(entry.url.trim_matches('/').to_string()),
                    Some(_) => None,
                },
                _ => None,
            };
            if let (Some(full_url), Some(target)) = (&entry.full_url, target)
                && ids.insert(full_url.clone(), target).is_some()
            {
                return Err(FhirError::BadRequest(format!(
                    "fullUrl {full_url} appears more than once"
                ))
                .in_entry(entry.index));
            }
        }
        // 2. Rewrite references in the (already checked and indexed) resources, and their index.
        for entry in &mut entries {
            let index = entry.index;
            let Some(Ok(checked)) = &mut entry.checked else {
                continue;
            };
            let mut rewritten = HashMap::new();
            for value in checked.body_mut().values_mut() {
                self.rewrite_references(tx, value, &ids, &mut resolved.0, &mut rewritten)
                    .map_err(|e| e.in_entry(index))?;
            }
            checked.rewrite_index_references(&rewritten);
        }
        // 3. Execute in R4 order; answer in Bundle order.
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| (entries[i].method, i));
        let mut responses: Vec<Option<EntryResponse>> = (0..entries.len()).map(|_| None).collect();
        for i in order {
            let entry = &mut entries[i];
            let response = match pre_resolved.remove(&entry.index) {
                Some(done) => done,
                None => {
                    let assigned = entry.full_url.as_ref().and_then(|f| ids.get(f)).cloned();
                    self.execute(tx, entry, assigned, access.as_deref_mut())
                        .map_err(|e| e.in_entry(entry.index))?
                }
            };
            responses[i] = Some(response);
        }
        resolved.forget_types_written_by(&entries);
        Ok(responses.into_iter().flatten().collect())
    }

    /// Each entry on its own: a failed entry leaves no trace and the others go on. An entry
    /// writes at most once, after all its checks, so a refused entry has written nothing; a
    /// store failure during a write fails the whole batch (the caller rolls back).
    fn batch(
        &self,
        tx: &mut dyn StoreTx,
        mut entries: Vec<Entry>,
        mut access: Option<&mut EntryAccess>,
    ) -> FhirResult<Vec<FhirResult<EntryResponse>>> {
        let mut results = Vec::with_capacity(entries.len());
        for entry in &mut entries {
            match self.execute(tx, entry, None, access.as_deref_mut()) {
                Err(FhirError::Store(failure)) => return Err(FhirError::Store(failure)),
                result => results.push(result.map_err(|e| e.in_entry(entry.index))),
            }
        }
        Ok(results)
    }

    fn execute(
        &self,
        tx: &mut dyn StoreTx,
        entry: &mut Entry,
        assigned: Option<String>,
        mut access: Option<&mut EntryAccess>,
    ) -> FhirResult<EntryResponse> {
        let url = entry.url.trim_start_matches('/').to_string();
        let (path, query) = match url.split_once('?') {
            Some((p, q)) => (p.trim_end_matches('/').to_string(), Some(q.to_string())),
            None => (url.trim_end_matches('/').to_string(), None),
        };
        let segments: Vec<&str> = path.split('/').collect();
        let resource_type = segments[0];
        self.check_type(resource_type)?;
        let view = access.as_deref().and_then(|a| a.view);
        let take_resource = |entry: &mut Entry| {
            entry.resource.take().ok_or_else(|| {
                FhirError::BadRequest(format!("{:?} entry has no resource", entry.method))
            })
        };
        let take_checked = |entry: &mut Entry| {
            entry.checked.take().unwrap_or_else(|| {
                Err(FhirError::BadRequest(format!(
                    "{:?} entry has no resource",
                    entry.method
                )))
            })
        };
        // The decision on a write of `id` (found by id or by condition) with new content.
        let mut permit = |tx: &mut dyn StoreTx,
                          id: Option<&str>,
                          current: Option<&StoredResource>,
                          proposed: Option<&Checked>|
         -> FhirResult<()> {
            if let (Some(access), Some(current)) = (access.as_deref_mut(), current) {
                self.note(access.audit, current);
            }
            let Some(view) = view else { return Ok(()) };
            let proposed = proposed.map(|c| Value::Object(c.body().clone()));
            self.permit_write(view, tx, resource_type, id, current, proposed.as_ref())
        };
        let outcome = match (entry.method, segments.as_slice(), query) {
            (Method::Post, [_], None) => {
                let body = take_checked(entry)?;
                permit(tx, None, None, Some(&body))?;
                let id = assigned.and_then(|a| a.split_once('/').map(|(_, id)| id.to_string()));
                let criteria = entry.if_none_exist.clone();
                let mut outcome =
                    self.create_in(tx, resource_type, body, criteria.as_deref(), id)?;
                if outcome.matched_existing {
                    outcome.resource = self.reveal(tx, outcome.resource, access.as_deref_mut())?;
                }
                outcome
            }
            (Method::Put, [_, id], None) => {
                let body = take_checked(entry)?;
                let current = tx.read(resource_type, id)?.filter(|c| !c.is_deleted());
                permit(tx, Some(id), current.as_ref(), Some(&body))?;
                self.update_in(tx, resource_type, id, body, entry.if_match)?
            }
            (Method::Put, [_], Some(criteria)) => {
                let body = take_checked(entry)?;
                let matches = self.match_condition(tx, resource_type, &criteria)?;
                let (current, id) = conditional_target(&matches, &body);
                permit(tx, id, current, Some(&body))?;
                self.conditional_update_in(
                    tx,
                    resource_type,
                    &criteria,
                    &matches,
                    body,
                    entry.if_match,
                )?
            }
            (Method::Patch, [_, id], None) => {
                let patch = take_resource(entry).map(binary_patch)??;
                let current = tx.read(resource_type, id)?.filter(|c| !c.is_deleted());
                permit(tx, Some(id), current.as_ref(), None)?;
                self.patch_in(tx, resource_type, id, patch, entry.if_match)?
            }
            (Method::Delete, [_, id], None) => {
                let current = tx.read(resource_type, id)?.filter(|c| !c.is_deleted());
                permit(tx, Some(id), current.as_ref(), None)?;
                let outcome = self.delete_in(tx, resource_type, id)?;
                return Ok(EntryResponse {
                    status: delete_status(&outcome),
                    resource: None,
                    body: None,
                });
            }
            (Method::Delete, [_], Some(criteria)) => {
                let outcome = match self
                    .match_condition(tx, resource_type, &criteria)?
                    .as_slice()
                {
                    [] => DeleteOutcome::NothingToDelete,
                    [one] => {
                        permit(tx, Some(&one.id), Some(one), None)?;
                        self.delete_in(tx, resource_type, &one.id.clone())?
                    }
                    _ => {
                        return Err(FhirError::MultipleMatches {
                            condition: criteria,
                        });
                    }
                };
                return Ok(EntryResponse {
                    status: delete_status(&outcome),
                    resource: None,
                    body: None,
                });
            }
            (Method::Get, [_, id], None) => {
                let found = super::live(tx.read(resource_type, id)?, resource_type, id)?;
                return Ok(EntryResponse {
                    status: "200 OK",
                    resource: Some(self.reveal(tx, found, access)?),
                    body: None,
                });
            }
            (Method::Get, [_], query) => {
                let pairs = parse_query_string(query.as_deref().unwrap_or(""));
                let search = self.parse_search(resource_type, &pairs, Handling::Lenient)?;
                return Ok(EntryResponse {
                    status: "200 OK",
                    resource: None,
                    body: Some(self.search_entry(tx, &search, access)?),
                });
            }
            _ => {
                return Err(FhirError::BadRequest(format!(
                    "unsupported request {:?} {}",
                    entry.method, entry.url
                )));
            }
        };
        if let Some(access) = access {
            self.note(access.audit, &outcome.resource);
        }
        Ok(EntryResponse {
            status: if outcome.created {
                "201 Created"
            } else {
                "200 OK"
            },
            resource: Some(outcome.resource),
            body: None,
        })
    }

    /// A stored resource answered to the caller: decided and prepared (redacted) as a read.
    fn reveal(
        &self,
        tx: &mut dyn StoreTx,
        found: StoredResource,
        access: Option<&mut EntryAccess>,
    ) -> FhirResult<StoredResource> {
        match access {
            Some(EntryAccess {
                view: Some(view),
                audit,
            }) => self.permit_read(view, tx, found, audit),
            Some(EntryAccess { view: None, audit }) => {
                self.note(audit, &found);
                Ok(found)
            }
            None => Ok(found),
        }
    }

    /// A search entry's searchset, with what the actor may not read filtered in the query as
    /// in [`FhirService::search`].
    fn search_entry(
        &self,
        tx: &mut dyn StoreTx,
        search: &keel_fhir::search::SearchQuery,
        mut access: Option<&mut EntryAccess>,
    ) -> FhirResult<Value> {
        let mut result = match access.as_deref().and_then(|a| a.view) {
            Some(view) => {
                if let Some(decision) = view.check_type(&search.resource_type)?
                    && let Some(access) = access.as_deref_mut()
                {
                    access.audit.decided(&decision);
                }
                let visibility = view.visibility(tx)?;
                let scoped = crate::access::scope_query(view, search, visibility)?;
                let mut result = tx.search(&scoped)?;
                result.matches = result
                    .matches
                    .into_iter()
                    .map(|r| view.prepare(r))
                    .collect();
                result
            }
            None => tx.search(&crate::store::ScopedQuery::whole_store(search.clone()))?,
        };
        if let Some(access) = access {
            for r in &result.matches {
                self.note(access.audit, r);
            }
        }
        let entries: Vec<Value> = std::mem::take(&mut result.matches)
            .iter()
            .map(|r| json!({"fullUrl": format!("{}/{}", r.resource_type, r.id), "resource": stored_json(r)}))
            .collect();
        let mut bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
        if let Some(total) = result.total {
            bundle["total"] = json!(total);
        }
        Ok(bundle)
    }

    /// Checks the resources of POST and PUT entries, in parallel when there are many.
    fn check_entries(
        &self,
        entries: &mut [Entry],
        references: &(dyn Fn(&str) -> Option<String> + Sync),
    ) {
        let check = |entry: &mut Entry| {
            if matches!(entry.method, Method::Post | Method::Put)
                && let Some(resource) = entry.resource.take()
            {
                let resource_type = entry
                    .url
                    .split(['/', '?'])
                    .find(|s| !s.is_empty())
                    .unwrap_or("")
                    .to_string();
                entry.checked = Some(self.check_with(&resource_type, resource, references));
            }
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads < 2 || entries.len() < PARALLEL_CHECK_MIN {
            entries.iter_mut().for_each(check);
            return;
        }
        let per_thread = entries.len().div_ceil(threads);
        std::thread::scope(|scope| {
            for part in entries.chunks_mut(per_thread) {
                scope.spawn(move || part.iter_mut().for_each(check));
            }
        });
    }

    fn single_match(
        &self,
        tx: &mut dyn StoreTx,
        resource_type: &str,
        criteria: &str,
    ) -> FhirResult<Option<StoredResource>> {
        match self
            .match_condition(tx, resource_type, criteria)?
            .as_slice()
        {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            _ => Err(FhirError::MultipleMatches {
                condition: criteria.to_string(),
            }),
        }
    }

    /// Rewrites every `reference` that names a Bundle entry's fullUrl, and resolves conditional
    /// references, in place; records each rewrite in `rewritten` (old → new).
    fn rewrite_references(
        &self,
        tx: &mut dyn StoreTx,
        value: &mut Value,
        ids: &HashMap<String, String>,
        cache: &mut HashMap<String, String>,
        rewritten: &mut HashMap<String, String>,
    ) -> FhirResult<()> {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if key == "reference"
                        && let Value::String(reference) = v
                    {
                        if let Some(target) = ids.get(reference.as_str()) {
                            rewritten.insert(reference.clone(), target.clone());
                            *reference = target.clone();
                        } else if let Some((resource_type, criteria)) = reference.split_once('?')
                            && !resource_type.contains('/')
                        {
                            let resolved = match cache.get(reference.as_str()) {
                                Some(found) => found.clone(),
                                None => {
                                    self.check_type(resource_type)?;
                                    let found = match self
                                        .matching_ids(tx, resource_type, criteria)?
                                        .as_slice()
                                    {
                                        [one] => one.clone(),
                                        [] => {
                                            return Err(FhirError::ConditionNotMatched {
                                                condition: reference.clone(),
                                            });
                                        }
                                        _ => {
                                            return Err(FhirError::MultipleMatches {
                                                condition: reference.clone(),
                                            });
                                        }
                                    };
                                    let target = format!("{resource_type}/{found}");
                                    cache.insert(reference.clone(), target.clone());
                                    target
                                }
                            };
                            rewritten.insert(reference.clone(), resolved.clone());
                            *reference = resolved;
                        } else if reference.starts_with("urn:uuid:")
                            || reference.starts_with("urn:oid:")
                        {
                            return Err(FhirError::BadRequest(format!(
                                "reference {reference} names no entry of this Bundle"
                            )));
                        }
                    } else {
                        self.rewrite_references(tx, v, ids, cache, rewritten)?;
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.rewrite_references(tx, item, ids, cache, rewritten)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn delete_status(outcome: &DeleteOutcome) -> &'static str {
    match outcome {
        DeleteOutcome::Deleted { .. } => "200 OK",
        DeleteOutcome::NothingToDelete => "204 No Content",
    }
}

/// A PATCH entry carries its JSON Patch as a Binary resource (R4 §3.1.0.11.1).
fn binary_patch(resource: Value) -> FhirResult<Value> {
    if resource.get("resourceType").and_then(Value::as_str) != Some("Binary") {
        return Err(FhirError::BadRequest(
            "a PATCH entry's resource must be a Binary holding a JSON Patch".into(),
        ));
    }
    let data = resource
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| FhirError::BadRequest("the Binary has no data".into()))?;
    let bytes = base64_decode(data)
        .ok_or_else(|| FhirError::BadRequest("the Binary data is not base64".into()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| FhirError::BadRequest(format!("the Binary data is not a JSON Patch: {e}")))
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32;
        buffer = (buffer << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn parse_bundle(bundle: Value) -> FhirResult<(BundleKind, Vec<Entry>)> {
    let Value::Object(mut map) = bundle else {
        return Err(FhirError::BadRequest(
            "the body is not a JSON object".into(),
        ));
    };
    if map.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(FhirError::BadRequest(
            "only a Bundle of type batch or transaction can be posted to the base URL".into(),
        ));
    }
    let kind = match map.get("type").and_then(Value::as_str) {
        Some("transaction") => BundleKind::Transaction,
        Some("batch") => BundleKind::Batch,
        other => {
            return Err(FhirError::BadRequest(format!(
                "Bundle.type must be batch or transaction, not {}",
                other.unwrap_or("missing")
            )));
        }
    };
    let raw_entries = match map.remove("entry") {
        Some(Value::Array(entries)) => entries,
        None => Vec::new(),
        Some(_) => {
            return Err(FhirError::BadRequest(
                "Bundle.entry must be an array".into(),
            ));
        }
    };
    let mut entries = Vec::with_capacity(raw_entries.len());
    for (index, raw) in raw_entries.into_iter().enumerate() {
        entries.push(parse_entry(index, raw).map_err(|e| e.in_entry(index))?);
    }
    Ok((kind, entries))
}

fn parse_entry(index: usize, raw: Value) -> FhirResult<Entry> {
    let Value::Object(mut map) = raw else {
        return Err(FhirError::BadRequest("an entry must be an object".into()));
    };
    let request = map.remove("request").unwrap_or(Value::Null);
    let method = match request.get("method").and_then(Value::as_str) {
        Some("GET") | Some("HEAD") => Method::Get,
        Some("POST") => Method::Post,
        Some("PUT") => Method::Put,
        Some("PATCH") => Method::Patch,
        Some("DELETE") => Method::Delete,
        other => {
            return Err(FhirError::BadRequest(format!(
                "entry.request.method {other:?} is not supported"
            )));
        }
    };
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| FhirError::BadRequest("entry.request.url is missing".into()))?
        .to_string();
    let if_match = match request.get("ifMatch").and_then(Value::as_str) {
        Some(tag) => Some(parse_etag(tag).ok_or_else(|| {
            FhirError::BadRequest(format!("ifMatch '{tag}' is not a version ETag"))
        })?),
        None => None,
    };
    Ok(Entry {
        index,
        method,
        url,
        full_url: map
            .get("fullUrl")
            .and_then(Value::as_str)
            .map(str::to_string),
        resource: map.remove("resource"),
        checked: None,
        if_none_exist: request
            .get("ifNoneExist")
            .and_then(Value::as_str)
            .map(str::to_string),
        if_match,
    })
}

/// Parses `W/"3"` or `"3"` or `3`.
pub fn parse_etag(tag: &str) -> Option<u64> {
    tag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// A stored resource as JSON (for bundle entries).
pub(crate) fn stored_json(r: &StoredResource) -> Value {
    r.body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null)
}
