//! FHIR R4 interactions over the record store: the rules live here once, whatever the backend.

mod bundle;
mod write;

pub use bundle::{BundleKind, BundleResponse, EntryResponse, PreparedBundle, parse_etag};
pub use write::{DeleteOutcome, WriteOutcome, parse_query_string};

use crate::clock::{Clock, IdSource};
use crate::context::RequestContext;
use crate::error::{FhirError, FhirResult};
use crate::store::{
    HistoryPage, HistoryQuery, HistoryScope, ResourceStore, SearchResult, StoredResource,
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
}

/// What a history request asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRequest {
    pub scope: HistoryScope,
    pub since: Option<i64>,
    pub count: usize,
    pub offset: usize,
}

impl FhirService {
    pub fn new(
        store: Arc<dyn ResourceStore>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
    ) -> Self {
        let defs = definitions::r4();
        FhirService {
            store,
            clock,
            ids,
            indexer: Indexer::new(defs),
            defs,
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
        _ctx: &RequestContext,
        resource_type: &str,
        id: &str,
    ) -> FhirResult<StoredResource> {
        self.check_type(resource_type)?;
        let found = self.store.reader()?.read(resource_type, id)?;
        live(found, resource_type, id)
    }

    pub fn vread(
        &self,
        _ctx: &RequestContext,
        resource_type: &str,
        id: &str,
        version: u64,
    ) -> FhirResult<StoredResource> {
        self.check_type(resource_type)?;
        let mut reader = self.store.reader()?;
        match reader.read_version(resource_type, id, version)? {
            Some(found) if found.is_deleted() => Err(FhirError::Gone {
                resource_type: resource_type.into(),
                id: id.into(),
                version,
            }),
            Some(found) => Ok(found),
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

    pub fn search(&self, _ctx: &RequestContext, query: &SearchQuery) -> FhirResult<SearchResult> {
        Ok(self.store.reader()?.search(query)?)
    }

    pub fn history(
        &self,
        _ctx: &RequestContext,
        request: &HistoryRequest,
    ) -> FhirResult<HistoryPage> {
        match &request.scope {
            HistoryScope::System => {}
            HistoryScope::Type(t) => self.check_type(t)?,
            HistoryScope::Instance { resource_type, id } => {
                self.check_type(resource_type)?;
                if self.store.reader()?.read(resource_type, id)?.is_none() {
                    return Err(FhirError::NotFound {
                        resource_type: resource_type.clone(),
                        id: id.clone(),
                    });
                }
            }
        }
        let query = HistoryQuery {
            scope: request.scope.clone(),
            since: request.since,
            count: request.count.min(search::MAX_COUNT),
            offset: request.offset,
        };
        Ok(self.store.reader()?.history(&query)?)
    }

    /// `Patient/{id}/$everything`: the patient, every resource that refers to them, and the
    /// resources those refer to (practitioners, organisations, medications ...).
    pub fn everything(
        &self,
        _ctx: &RequestContext,
        patient_id: &str,
    ) -> FhirResult<Vec<StoredResource>> {
        let mut reader = self.store.reader()?;
        let patient = live(reader.read("Patient", patient_id)?, "Patient", patient_id)?;
        let compartment = reader.referencing("Patient", patient_id)?;
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
                {
                    referenced.push(found);
                }
            }
        }
        let mut all = vec![patient];
        all.extend(compartment);
        all.extend(referenced);
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
