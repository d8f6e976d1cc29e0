//! A practice's patients may name it by ODS identifier or by a reference to its Organization
//! resource. The ids of those Organization resources are remembered between requests; these
//! tests show that what a user reaches follows Organization resources created, changed and
//! deleted after the service started, on each backend.

use keel_core::audit::RequestAudit;
use keel_core::fhir::FhirService;
use keel_core::store::ResourceStore;
use keel_core::{Actor, CorrelationId, FhirError, PurposeOfUse, RequestContext};
use keel_fhir::search::Handling;
use keel_model::OdsCode;
use keel_store::{Durability, PostgresStore, SqliteStore};
use serde_json::json;
use std::sync::Arc;

mod pcn_service;
mod test_schema;
use pcn_service::{dev, pcn_service, put};

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

fn service(store: Arc<dyn ResourceStore>) -> FhirService {
    pcn_service(store, &["A81001"], None)
}

/// A GP of practice A81001, for direct care.
fn gp() -> RequestContext {
    RequestContext {
        actor: Actor::User {
            user_id: "555000000001".into(),
            role_code: "R8000".into(),
            activity_codes: Vec::new(),
        },
        organisation: Some(OdsCode::parse("A81001").expect("ods")),
        purpose: PurposeOfUse::DirectCare,
        correlation_id: CorrelationId::parse("probe").expect("id"),
        break_glass: None,
    }
}

fn organisation(fhir: &FhirService, id: &str, ods: &str) {
    put(
        fhir,
        "Organization",
        id,
        json!({"resourceType": "Organization", "id": id,
            "identifier": [{"system": ODS, "value": ods}], "name": id}),
    );
}

/// A Patient naming its practice by reference only.
fn patient_of(fhir: &FhirService, id: &str, organisation: &str) {
    put(
        fhir,
        "Patient",
        id,
        json!({"resourceType": "Patient", "id": id, "name": [{"family": id}],
            "generalPractitioner": [{"reference": format!("Organization/{organisation}")}]}),
    );
}

/// The Patients the GP finds by search, sorted.
fn found(fhir: &FhirService) -> Vec<String> {
    let q = fhir
        .parse_search(
            "Patient",
            &[("_count".into(), "100".into())],
            Handling::Strict,
        )
        .expect("query");
    let mut ids: Vec<String> = fhir
        .search(&gp(), &q, &mut RequestAudit::default())
        .expect("search")
        .matches
        .into_iter()
        .map(|r| r.id)
        .collect();
    ids.sort();
    ids
}

fn readable(fhir: &FhirService, id: &str) -> bool {
    match fhir.read(&gp(), "Patient", id, &mut RequestAudit::default()) {
        Ok(_) => true,
        Err(FhirError::Forbidden { .. } | FhirError::Concealed { .. }) => false,
        Err(other) => panic!("reading Patient/{id}: {other}"),
    }
}

fn reach_follows_organisations_written_after_the_first_request(store: Arc<dyn ResourceStore>) {
    let fhir = service(store);
    organisation(&fhir, "org-a", "A81001");
    patient_of(&fhir, "p1", "org-a");
    assert_eq!(found(&fhir), ["p1"]);

    // A second Organization resource for the same practice, written after the first search.
    organisation(&fhir, "org-b", "A81001");
    patient_of(&fhir, "p2", "org-b");
    assert_eq!(found(&fhir), ["p1", "p2"]);
    assert!(readable(&fhir, "p2"));

    // org-a turns out to be another practice, outside the PCN: its patient leaves the reach.
    organisation(&fhir, "org-a", "B82001");
    assert_eq!(found(&fhir), ["p2"]);
    assert!(!readable(&fhir, "p1"));

    // org-b is deleted: the reference names no practice, so p2 leaves the reach too.
    fhir.delete(
        &dev(),
        "Organization",
        "org-b",
        &mut RequestAudit::default(),
    )
    .expect("delete");
    assert!(found(&fhir).is_empty());
    assert!(!readable(&fhir, "p2"));
}

#[test]
fn on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let store =
        SqliteStore::open(&dir.path().join("keel.sqlite"), Durability::Resumable).expect("store");
    reach_follows_organisations_written_after_the_first_request(Arc::new(store));
}

#[test]
fn on_postgres() {
    let schema = test_schema::TestSchema::create();
    let store = PostgresStore::open(&schema.url).expect("store");
    reach_follows_organisations_written_after_the_first_request(Arc::new(store));
}
