//! A `FhirService` under the default access policy for a test PCN, and the local-development
//! context that loads its data (`put`).

// Each test file includes this module and uses what it needs of it.
#![allow(dead_code)]

use keel_core::access::{AccessControl, Pcn};
use keel_core::audit::RequestAudit;
use keel_core::clock::{SequentialIds, SteppingClock};
use keel_core::fhir::FhirService;
use keel_core::policy::Policy;
use keel_core::store::ResourceStore;
use keel_core::{CorrelationId, RequestContext};
use keel_model::OdsCode;
use serde_json::Value;
use std::sync::Arc;

/// The service over `store` for PCN U00001 of `practices` (and `hub`, if any).
pub fn pcn_service(
    store: Arc<dyn ResourceStore>,
    practices: &[&str],
    hub: Option<&str>,
) -> FhirService {
    let pcn = Pcn {
        code: OdsCode::parse("U00001").expect("ods"),
        name: "Test PCN".into(),
        practices: practices
            .iter()
            .map(|p| OdsCode::parse(p).expect("ods"))
            .collect(),
        hub: hub.map(|h| OdsCode::parse(h).expect("ods")),
    };
    FhirService::new(
        store,
        Arc::new(SteppingClock::starting_at(1_700_000_000_000)),
        Arc::new(SequentialIds::new("id")),
    )
    .with_access(AccessControl::new(
        Policy::default_policy().expect("policy"),
        Some(pcn),
    ))
}

/// Local development: loads test data without access decisions.
pub fn dev() -> RequestContext {
    RequestContext::local_development(CorrelationId::parse("load").expect("id"))
}

/// Writes `body` as `resource_type/id` in local development (create or update).
pub fn put(fhir: &FhirService, resource_type: &str, id: &str, body: Value) {
    fhir.update(
        &dev(),
        resource_type,
        id,
        body,
        None,
        &mut RequestAudit::default(),
    )
    .expect("write");
}
