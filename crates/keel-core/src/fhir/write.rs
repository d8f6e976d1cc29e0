//! Create, update, patch and delete, plain and conditional. Each runs inside one store
//! transaction, so a conditional create or update cannot race with another writer.

use super::FhirService;
use crate::access::AccessView;
use crate::audit::{AuditOutcome, RequestAudit};
use crate::context::RequestContext;
use crate::error::{FhirError, FhirResult};
use crate::store::StoreRead;
use crate::store::{NewVersion, ScopedQuery, StoreTx, StoredResource, WriteMethod};
use keel_fhir::datetime::format_instant;
use keel_fhir::fhirpath::ReferenceTypes;
use keel_fhir::index::{IndexEntry, IndexValue, split_reference};
use keel_fhir::search::{Handling, SearchQuery};
use keel_fhir::validate::{self, Severity};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The result of a create or update.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    pub resource: StoredResource,
    /// A new resource was created (HTTP 201) rather than an existing one updated or matched.
    pub created: bool,
    /// Nothing was written: a conditional create found the resource already there.
    pub matched_existing: bool,
}

/// What a write left in the store, for its audit record, and what a repeat of the request
/// with the same idempotency key answers.
pub(super) trait Written: Sized {
    fn written(&self) -> Option<&StoredResource>;
    /// The response to record under an idempotency key (JSON); `None` where the interaction
    /// takes no idempotency key.
    fn replay_record(&self) -> Option<Value> {
        None
    }
    /// The response recorded by [`Written::replay_record`], as read back in `tx`.
    fn replay(_tx: &mut dyn StoreTx, _record: &Value) -> FhirResult<Self> {
        Err(no_idempotency_key())
    }
}

fn no_idempotency_key() -> FhirError {
    FhirError::BadRequest(
        "this interaction takes no Idempotency-Key (only single-resource writes and $export do)"
            .into(),
    )
}

impl Written for WriteOutcome {
    fn written(&self) -> Option<&StoredResource> {
        Some(&self.resource)
    }
    fn replay_record(&self) -> Option<Value> {
        Some(serde_json::json!({
            "type": self.resource.resource_type,
            "id": self.resource.id,
            "version": self.resource.version,
            "created": self.created,
            "matched": self.matched_existing,
        }))
    }
    fn replay(tx: &mut dyn StoreTx, record: &Value) -> FhirResult<Self> {
        let (Some(resource_type), Some(id), Some(version)) = (
            record["type"].as_str(),
            record["id"].as_str(),
            record["version"].as_u64(),
        ) else {
            return Err(super::idempotency::unreadable_record());
        };
        let resource = tx
            .read_version(resource_type, id, version)?
            .ok_or_else(super::idempotency::unreadable_record)?;
        Ok(WriteOutcome {
            resource,
            created: record["created"].as_bool().unwrap_or(false),
            matched_existing: record["matched"].as_bool().unwrap_or(false),
        })
    }
}

impl Written for DeleteOutcome {
    fn written(&self) -> Option<&StoredResource> {
        None
    }
    fn replay_record(&self) -> Option<Value> {
        Some(match self {
            DeleteOutcome::Deleted { version } => serde_json::json!({ "deleted": version }),
            DeleteOutcome::NothingToDelete => serde_json::json!({ "deleted": null }),
        })
    }
    fn replay(_: &mut dyn StoreTx, record: &Value) -> FhirResult<Self> {
        Ok(match record["deleted"].as_u64() {
            Some(version) => DeleteOutcome::Deleted { version },
            None => DeleteOutcome::NothingToDelete,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeleteOutcome {
    Deleted {
        version: u64,
    },
    /// There was nothing to delete (unknown or already deleted): still a success.
    NothingToDelete,
}

impl FhirService {
    pub fn create(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        body: Value,
        if_none_exist: Option<&str>,
        audit: &mut RequestAudit,
    ) -> FhirResult<WriteOutcome> {
        self.check_type(resource_type)?;
        self.guard_write(ctx, resource_type, None, Some(&body), audit)?;
        let body = self.check(resource_type, body)?;
        self.in_audited_transaction(ctx, audit, |tx, audit| {
            let mut outcome = self.create_in(tx, resource_type, body, if_none_exist, None)?;
            if outcome.matched_existing {
                // The match is returned to the caller: it must be theirs to read.
                let view = self.view(ctx, audit)?;
                outcome.resource = self.permit_read(&view, tx, outcome.resource, audit)?;
            }
            Ok(outcome)
        })
    }

    /// Update (or create with the client's id). `if_match` is the version the client last saw.
    pub fn update(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
        body: Value,
        if_match: Option<u64>,
        audit: &mut RequestAudit,
    ) -> FhirResult<WriteOutcome> {
        self.check_type(resource_type)?;
        self.guard_write(ctx, resource_type, Some(id), Some(&body), audit)?;
        let body = self.check(resource_type, body)?;
        self.in_audited_transaction(ctx, audit, |tx, _| {
            self.update_in(tx, resource_type, id, body, if_match)
        })
    }

    /// `PUT Type?criteria`: no match creates, one match updates it, several fail. The match is
    /// found and decided on inside the write's transaction, so the decision is on the version
    /// replaced.
    pub fn conditional_update(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        criteria: &str,
        body: Value,
        if_match: Option<u64>,
        audit: &mut RequestAudit,
    ) -> FhirResult<WriteOutcome> {
        self.check_type(resource_type)?;
        let body = self.check(resource_type, body)?;
        self.in_audited_transaction(ctx, audit, |tx, audit| {
            let view = self.view(ctx, audit)?;
            let matches = self.match_condition(tx, resource_type, criteria)?;
            let (current, id) = conditional_target(&matches, &body);
            if let Some(current) = current {
                self.note(audit, current);
            }
            if !view.is_unrestricted() {
                let proposed = Value::Object(body.body.clone());
                self.permit_write(&view, tx, resource_type, id, current, Some(&proposed))?;
            }
            self.conditional_update_in(tx, resource_type, criteria, &matches, body, if_match)
        })
    }

    /// JSON Patch (RFC 6902) applied to the current version.
    pub fn patch(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
        patch: Value,
        if_match: Option<u64>,
        audit: &mut RequestAudit,
    ) -> FhirResult<WriteOutcome> {
        self.check_type(resource_type)?;
        // The patched result is checked as an update would be, inside the guard of the patch
        // itself: the current version must be writable by the actor.
        self.guard_write(ctx, resource_type, Some(id), None, audit)?;
        self.in_audited_transaction(ctx, audit, |tx, _| {
            self.patch_in(tx, resource_type, id, patch, if_match)
        })
    }

    pub fn delete(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: &str,
        audit: &mut RequestAudit,
    ) -> FhirResult<DeleteOutcome> {
        self.check_type(resource_type)?;
        self.guard_write(ctx, resource_type, Some(id), None, audit)?;
        self.in_audited_transaction(ctx, audit, |tx, _| self.delete_in(tx, resource_type, id))
    }

    /// `DELETE Type?criteria`: deletes the one match; several matches fail. The match is
    /// decided on inside the delete's transaction.
    pub fn conditional_delete(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        criteria: &str,
        audit: &mut RequestAudit,
    ) -> FhirResult<DeleteOutcome> {
        self.check_type(resource_type)?;
        self.in_audited_transaction(ctx, audit, |tx, audit| {
            let view = self.view(ctx, audit)?;
            match self
                .match_condition(tx, resource_type, criteria)?
                .as_slice()
            {
                [] => Ok(DeleteOutcome::NothingToDelete),
                [one] => {
                    self.note(audit, one);
                    self.permit_write(&view, tx, resource_type, Some(&one.id), Some(one), None)?;
                    self.delete_in(tx, resource_type, &one.id)
                }
                _ => Err(FhirError::MultipleMatches {
                    condition: criteria.to_string(),
                }),
            }
        })
    }

    /// Access control of a write: the actor must be allowed to write the new content and the
    /// current version it replaces (both must belong to a patient they have a relationship
    /// with).
    fn guard_write(
        &self,
        ctx: &RequestContext,
        resource_type: &str,
        id: Option<&str>,
        body: Option<&Value>,
        audit: &mut RequestAudit,
    ) -> FhirResult<()> {
        if let Some(id) = id {
            audit.resource(format!("{resource_type}/{id}"));
        }
        let mut reader = self.store.reader()?;
        let view = self.view(ctx, audit)?;
        let current = match id {
            Some(id) => reader.read(resource_type, id)?.filter(|c| !c.is_deleted()),
            None => None,
        };
        if let Some(current) = &current {
            self.note(audit, current);
        }
        self.permit_write(
            &view,
            &mut *reader,
            resource_type,
            id,
            current.as_ref(),
            body,
        )
    }

    /// The write decision once the view is known: the actor must be allowed to write the type,
    /// the `current` version replaced and the `proposed` content (of resource `id`, if known).
    pub(super) fn permit_write(
        &self,
        view: &AccessView,
        reader: &mut dyn StoreRead,
        resource_type: &str,
        id: Option<&str>,
        current: Option<&StoredResource>,
        proposed: Option<&Value>,
    ) -> FhirResult<()> {
        if view.is_unrestricted() {
            return Ok(());
        }
        view.check_write(resource_type)?;
        if let Some(current) = current {
            view.decide_write(reader, self.indexer(), current)?;
        }
        if let Some(body) = proposed {
            let proposed = StoredResource {
                resource_type: resource_type.to_string(),
                id: id.unwrap_or("new").to_string(),
                version: 0,
                last_updated: 0,
                body: Some(std::sync::Arc::from(body.to_string())),
                method: crate::store::WriteMethod::Create,
            };
            view.decide_write(reader, self.indexer(), &proposed)?;
        }
        Ok(())
    }

    /// Bundles: for local development and system import only, until they are decided entry by
    /// entry.
    pub(crate) fn guard_unrestricted(&self, ctx: &RequestContext, what: &str) -> FhirResult<()> {
        if matches!(ctx.actor, crate::context::Actor::LocalDevelopment) {
            return Ok(());
        }
        Err(FhirError::Forbidden {
            what: format!(
                "{what} is not open to authenticated requests yet: write resources one by one"
            ),
            reasons: Vec::new(),
        })
    }

    /// Runs `f` in a store transaction with the request's audit record, and commits both if
    /// `f` succeeds (else rolls both back, and the edge records the failure). A request with an
    /// idempotency key already recorded gets the recorded response instead of running `f`.
    pub(super) fn in_audited_transaction<T: Written>(
        &self,
        ctx: &RequestContext,
        audit: &mut RequestAudit,
        f: impl FnOnce(&mut dyn StoreTx, &mut RequestAudit) -> FhirResult<T>,
    ) -> FhirResult<T> {
        let mut tx = self.store.begin()?;
        let value = match audit.idempotency_key().cloned() {
            None => f(tx.as_mut(), audit)?,
            Some(key) => {
                let store_key = key.store_key(ctx);
                match tx.idempotent_response(&store_key)? {
                    Some(record) => T::replay(tx.as_mut(), &key.recorded_response(&record)?)?,
                    None => {
                        let value = f(tx.as_mut(), audit)?;
                        let record =
                            key.record(value.replay_record().ok_or_else(no_idempotency_key)?);
                        tx.record_idempotent_response(&store_key, &record, self.now())?;
                        value
                    }
                }
            }
        };
        if let Some(resource) = value.written() {
            self.note(audit, resource);
        }
        let sequence = match self.audit_trail() {
            Some(trail) => Some(
                trail
                    .record_in(
                        tx.as_mut(),
                        &audit.to_record(ctx, self.instant(), AuditOutcome::Permit),
                    )
                    .map_err(|e| FhirError::AuditUnavailable(e.to_string()))?,
            ),
            None => None,
        };
        tx.commit()?;
        if let Some(sequence) = sequence {
            audit.mark_recorded(sequence);
        }
        Ok(value)
    }

    // ---------------------------------------------------------------- inside a transaction

    pub(crate) fn create_in(
        &self,
        tx: &mut dyn StoreTx,
        resource_type: &str,
        body: Checked,
        if_none_exist: Option<&str>,
        assigned_id: Option<String>,
    ) -> FhirResult<WriteOutcome> {
        if let Some(criteria) = if_none_exist {
            match self
                .match_condition(tx, resource_type, criteria)?
                .as_slice()
            {
                [] => {}
                [existing] => {
                    return Ok(WriteOutcome {
                        resource: existing.clone(),
                        created: false,
                        matched_existing: true,
                    });
                }
                _ => {
                    return Err(FhirError::MultipleMatches {
                        condition: criteria.to_string(),
                    });
                }
            }
        }
        let id = assigned_id.unwrap_or_else(|| self.ids.new_id());
        let resource = self.store_version(tx, resource_type, &id, body, 1, WriteMethod::Create)?;
        Ok(WriteOutcome {
            resource,
            created: true,
            matched_existing: false,
        })
    }

    pub(crate) fn update_in(
        &self,
        tx: &mut dyn StoreTx,
        resource_type: &str,
        id: &str,
        body: Checked,
        if_match: Option<u64>,
    ) -> FhirResult<WriteOutcome> {
        match body.body.get("id").and_then(Value::as_str) {
            Some(body_id) if body_id != id => {
                return Err(FhirError::BadRequest(format!(
                    "the resource id '{body_id}' does not match the id '{id}' in the URL"
                )));
            }
            None => {
                return Err(FhirError::BadRequest(
                    "an update must carry the resource id in the body".into(),
                ));
            }
            Some(_) => {}
        }
        let current = tx.read(resource_type, id)?;
        let current_version = current.as_ref().map_or(0, |c| c.version);
        if let Some(expected) = if_match
            && expected != current_version
        {
            return Err(FhirError::VersionConflict {
                resource_type: resource_type.into(),
                id: id.into(),
                expected,
                current: current_version,
            });
        }
        let created = current.as_ref().is_none_or(|c| c.is_deleted());
        let method = if current.is_none() {
            WriteMethod::Create
        } else {
            WriteMethod::Update
        };
        let resource =
            self.store_version(tx, resource_type, id, body, current_version + 1, method)?;
        Ok(WriteOutcome {
            resource,
            created,
            matched_existing: false,
        })
    }

    /// The conditional update of `criteria`, whose `matches` the caller found in `tx`.
    pub(crate) fn conditional_update_in(
        &self,
        tx: &mut dyn StoreTx,
        resource_type: &str,
        criteria: &str,
        matches: &[StoredResource],
        body: Checked,
        if_match: Option<u64>,
    ) -> FhirResult<WriteOutcome> {
        match matches {
            [] => {
                let id = body
                    .body
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                match id {
                    Some(id) => self.update_in(tx, resource_type, &id, body, if_match),
                    None => self.create_in(tx, resource_type, body, None, None),
                }
            }
            [one] => {
                let mut body = body;
                if let Some(body_id) = body.body.get("id").and_then(Value::as_str)
                    && body_id != one.id
                {
                    return Err(FhirError::BadRequest(format!(
                        "the resource id '{body_id}' does not match the resource '{}' the condition found",
                        one.id
                    )));
                }
                body.body.insert("id".into(), Value::String(one.id.clone()));
                self.update_in(tx, resource_type, &one.id.clone(), body, if_match)
            }
            _ => Err(FhirError::MultipleMatches {
                condition: criteria.to_string(),
            }),
        }
    }

    pub(crate) fn patch_in(
        &self,
        tx: &mut dyn StoreTx,
        resource_type: &str,
        id: &str,
        patch: Value,
        if_match: Option<u64>,
    ) -> FhirResult<WriteOutcome> {
        let current = super::live(tx.read(resource_type, id)?, resource_type, id)?;
        let mut json: Value = parse_stored(&current)?;
        let operations: json_patch::Patch = serde_json::from_value(patch).map_err(|e| {
            FhirError::BadRequest(format!("the body is not a JSON Patch document: {e}"))
        })?;
        json_patch::patch(&mut json, &operations)
            .map_err(|e| FhirError::Invalid(vec![patch_issue(e.to_string())]))?;
        if json.get("resourceType").and_then(Value::as_str) != Some(resource_type)
            || json.get("id").and_then(Value::as_str) != Some(id)
        {
            return Err(FhirError::Invalid(vec![patch_issue(
                "a patch may not change resourceType or id".into(),
            )]));
        }
        let checked = self.check(resource_type, json)?;
        self.update_in(tx, resource_type, id, checked, if_match)
    }

    pub(crate) fn delete_in(
        &self,
        tx: &mut dyn StoreTx,
        resource_type: &str,
        id: &str,
    ) -> FhirResult<DeleteOutcome> {
        match tx.read(resource_type, id)? {
            Some(current) if !current.is_deleted() => {
                let version = current.version + 1;
                tx.write(NewVersion {
                    resource_type: resource_type.into(),
                    id: id.into(),
                    version,
                    last_updated: self.now(),
                    method: WriteMethod::Delete,
                    body: None,
                    index: Vec::new(),
                })?;
                Ok(DeleteOutcome::Deleted { version })
            }
            _ => Ok(DeleteOutcome::NothingToDelete),
        }
    }

    /// Resources of `resource_type` matching `criteria` (a query string), read inside the
    /// transaction. At most two are fetched: callers only distinguish none, one and several.
    pub(crate) fn match_condition(
        &self,
        tx: &mut dyn StoreTx,
        resource_type: &str,
        criteria: &str,
    ) -> FhirResult<Vec<StoredResource>> {
        let query = self.condition_query(resource_type, criteria)?;
        Ok(tx.search(&ScopedQuery::whole_store(query))?.matches)
    }

    /// As [`match_condition`](Self::match_condition), the ids only (no resource is read).
    pub(crate) fn matching_ids(
        &self,
        tx: &mut dyn StoreTx,
        resource_type: &str,
        criteria: &str,
    ) -> FhirResult<Vec<String>> {
        let query = self.condition_query(resource_type, criteria)?;
        Ok(tx.search_ids(&ScopedQuery::whole_store(query))?)
    }

    /// The search of a condition: at most two matches, since callers only tell none, one and
    /// several apart.
    fn condition_query(&self, resource_type: &str, criteria: &str) -> FhirResult<SearchQuery> {
        let pairs = parse_query_string(criteria);
        if pairs.is_empty() {
            return Err(FhirError::BadRequest(format!(
                "the condition '{criteria}' has no search parameters"
            )));
        }
        let mut query: SearchQuery = self.parse_search(resource_type, &pairs, Handling::Strict)?;
        query.count = 2;
        query.offset = 0;
        query.total = keel_fhir::search::TotalMode::None;
        query.sort.clear();
        Ok(query)
    }

    /// Checks a resource against the R4 structure rules and extracts its search index. Pure
    /// and independent of the store, so it runs before a transaction begins (or in parallel for
    /// a Bundle's entries).
    pub(crate) fn check(&self, resource_type: &str, body: Value) -> FhirResult<Checked> {
        self.check_with(resource_type, body, &|_: &str| None)
    }

    /// As [`check`](Self::check), with the target types of Bundle-internal references.
    pub(crate) fn check_with(
        &self,
        resource_type: &str,
        body: Value,
        references: &ReferenceTypes<'_>,
    ) -> FhirResult<Checked> {
        let Value::Object(map) = &body else {
            return Err(FhirError::BadRequest(
                "the body is not a JSON object".into(),
            ));
        };
        match map.get("resourceType").and_then(Value::as_str) {
            Some(t) if t == resource_type => {}
            Some(t) => {
                return Err(FhirError::BadRequest(format!(
                    "the body is a {t}, not a {resource_type}"
                )));
            }
            None => return Err(FhirError::BadRequest("the body has no resourceType".into())),
        }
        let errors: Vec<_> = validate::validate(&body)
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .collect();
        if !errors.is_empty() {
            return Err(FhirError::Invalid(errors));
        }
        // The index does not depend on `id` or on the meta elements the server stamps.
        let index = self.indexer.stored_entries(&body, references);
        let Value::Object(body) = body else {
            unreachable!("checked above")
        };
        Ok(Checked { body, index })
    }

    /// Stamps `id` and `meta` and writes one version.
    fn store_version(
        &self,
        tx: &mut dyn StoreTx,
        resource_type: &str,
        id: &str,
        checked: Checked,
        version: u64,
        method: WriteMethod,
    ) -> FhirResult<StoredResource> {
        let last_updated = self.now();
        let stamped = stamp(checked.body, id, version, last_updated);
        let text =
            serde_json::to_string(&stamped).map_err(|e| FhirError::BadRequest(e.to_string()))?;
        tx.write(NewVersion {
            resource_type: resource_type.into(),
            id: id.into(),
            version,
            last_updated,
            method,
            body: Some(text.clone()),
            index: checked.index,
        })?;
        Ok(StoredResource {
            resource_type: resource_type.into(),
            id: id.into(),
            version,
            last_updated,
            body: Some(Arc::from(text)),
            method,
        })
    }
}

/// A resource that passed validation, with its index entries.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    body: Map<String, Value>,
    index: Vec<IndexEntry>,
}

/// What a conditional update targets: the one resource matched (if exactly one), and the id
/// it writes (that resource's, else the body's own for an update that creates).
pub(super) fn conditional_target<'a>(
    matches: &'a [StoredResource],
    body: &'a Checked,
) -> (Option<&'a StoredResource>, Option<&'a str>) {
    let current = match matches {
        [one] => Some(one),
        _ => None,
    };
    let id = current
        .map(|c| c.id.as_str())
        .or_else(|| body.body.get("id").and_then(Value::as_str));
    (current, id)
}

impl Checked {
    /// The resource's elements.
    pub(crate) fn body(&self) -> &Map<String, Value> {
        &self.body
    }

    /// The resource's elements (for rewriting references inside a Bundle).
    pub(crate) fn body_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.body
    }

    /// Makes the index agree with references rewritten in the body (`from` → `to`).
    pub(crate) fn rewrite_index_references(&mut self, rewritten: &HashMap<String, String>) {
        for entry in &mut self.index {
            if let IndexValue::Reference {
                target_type,
                target_id,
                url,
            } = &mut entry.value
                && let Some(new) = rewritten.get(url.as_str())
            {
                (*target_type, *target_id) = split_reference(new);
                *url = new.clone();
            }
        }
    }
}

/// The resource with `id` and `meta.versionId`/`meta.lastUpdated` set and other `meta`
/// elements kept; `resourceType`, `id`, `meta` first, every other element as sent.
fn stamp(mut map: Map<String, Value>, id: &str, version: u64, last_updated: i64) -> Value {
    let mut meta = match map.remove("meta") {
        Some(Value::Object(meta)) => meta,
        _ => Map::new(), // validation has rejected any other meta
    };
    meta.remove("versionId");
    meta.remove("lastUpdated");
    let mut stamped = Map::new();
    stamped.insert("versionId".into(), Value::String(version.to_string()));
    stamped.insert(
        "lastUpdated".into(),
        Value::String(format_instant(last_updated)),
    );
    stamped.extend(meta);
    map.remove("id");
    let mut out = Map::new();
    out.insert(
        "resourceType".into(),
        map.remove("resourceType").unwrap_or(Value::Null),
    );
    out.insert("id".into(), Value::String(id.to_string()));
    out.insert("meta".into(), Value::Object(stamped));
    out.extend(map);
    Value::Object(out)
}

fn patch_issue(message: String) -> validate::ValidationIssue {
    validate::ValidationIssue {
        severity: Severity::Error,
        kind: validate::IssueKind::Value,
        location: String::new(),
        message,
    }
}

pub(crate) fn parse_stored(resource: &StoredResource) -> FhirResult<Value> {
    let body = resource.body.as_deref().unwrap_or("null");
    serde_json::from_str(body).map_err(|e| {
        FhirError::Store(crate::store::StoreError::Integrity(format!(
            "stored JSON unreadable: {e}"
        )))
    })
}

/// Splits `a=1&b=2` (percent-encoded) into decoded pairs.
pub fn parse_query_string(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        assert_eq!(
            parse_query_string("identifier=a%7Cb&x=1+2"),
            vec![
                ("identifier".into(), "a|b".into()),
                ("x".into(), "1 2".into())
            ]
        );
        assert_eq!(parse_query_string("a=%"), vec![("a".into(), "%".into())]);
        assert_eq!(parse_query_string("a=%4"), vec![("a".into(), "%4".into())]);
        assert_eq!(
            parse_query_string("a=50%25"),
            vec![("a".into(), "50%".into())]
        );
    }
}
