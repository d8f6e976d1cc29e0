//! Writes whose targets are found inside the store transaction — conditional create, update and
//! delete, and the entries of batch and transaction Bundles — by authenticated actors: each is
//! decided like the plain interaction it stands for. A target the actor may not write is
//! refused and left as it was, and nothing the actor may not read is handed back.

use keel_core::audit::RequestAudit;
use keel_core::fhir::{DeleteOutcome, FhirService};
use keel_core::store::ResourceStore;
use keel_core::{Actor, CorrelationId, FhirError, PurposeOfUse, RequestContext};
use keel_model::OdsCode;
use keel_store::{Durability, PostgresStore, SqliteStore};
use serde_json::{Value, json};
use std::sync::Arc;

mod pcn_service;
mod test_schema;
use pcn_service::{dev, pcn_service, put};

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const LOCAL: &str = "https://keel.example/observation-id";

fn service(store: Arc<dyn ResourceStore>) -> FhirService {
    pcn_service(store, &["A81001"], None)
}

fn user(role: &str) -> RequestContext {
    RequestContext {
        actor: Actor::User {
            user_id: "555000000001".into(),
            role_code: role.into(),
            activity_codes: Vec::new(),
        },
        organisation: Some(OdsCode::parse("A81001").expect("ods")),
        purpose: PurposeOfUse::DirectCare,
        correlation_id: CorrelationId::parse("probe").expect("id"),
        break_glass: None,
    }
}

fn observation(patient: &str, local_id: &str, value: f64) -> Value {
    json!({
        "resourceType": "Observation", "status": "final",
        "identifier": [{"system": LOCAL, "value": local_id}],
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "valueQuantity": {"value": value, "unit": "mmol/L"},
    })
}

/// `p-ours` registered in the PCN, `p-theirs` at a practice outside it; one Observation each.
fn seeded(store: Arc<dyn ResourceStore>) -> FhirService {
    let fhir = service(store);
    for (id, practice) in [("p-ours", "A81001"), ("p-theirs", "B82001")] {
        let body = json!({"resourceType": "Patient", "id": id, "name": [{"family": id}],
            "generalPractitioner": [{"identifier": {"system": ODS, "value": practice}}]});
        put(&fhir, "Patient", id, body);
    }
    for (id, patient) in [("o-ours", "p-ours"), ("o-theirs", "p-theirs")] {
        let mut body = observation(patient, id, 5.0);
        body["id"] = json!(id);
        put(&fhir, "Observation", id, body);
    }
    fhir
}

fn refused<T>(result: Result<T, FhirError>) -> bool {
    result.as_ref().err().is_some_and(is_refusal)
}

/// A refusal by access control, as the requester sees it (a concealed resource is not found).
fn is_refusal(error: &FhirError) -> bool {
    match error {
        FhirError::InEntry { source, .. } => is_refusal(source),
        FhirError::Forbidden { .. } | FhirError::Concealed { .. } | FhirError::NotFound { .. } => {
            true
        }
        _ => false,
    }
}

fn value_of(fhir: &FhirService, id: &str) -> Option<f64> {
    fhir.read(&dev(), "Observation", id, &mut RequestAudit::default())
        .ok()
        .and_then(|r| serde_json::from_str::<Value>(r.body.as_deref()?).ok())
        .and_then(|v| v["valueQuantity"]["value"].as_f64())
}

fn a_gp_updates_and_deletes_by_condition_only_what_they_may_write(fhir: FhirService) {
    let gp = user("R8000");

    let mut audit = RequestAudit::default();
    let updated = fhir
        .conditional_update(
            &gp,
            "Observation",
            &format!("identifier={LOCAL}|o-ours"),
            observation("p-ours", "o-ours", 6.5),
            None,
            &mut audit,
        )
        .expect("the GP's own patient");
    assert_eq!(updated.resource.id, "o-ours");
    assert_eq!(value_of(&fhir, "o-ours"), Some(6.5));

    let theirs = format!("identifier={LOCAL}|o-theirs");
    assert!(refused(fhir.conditional_update(
        &gp,
        "Observation",
        &theirs,
        observation("p-theirs", "o-theirs", 9.9),
        None,
        &mut RequestAudit::default(),
    )));
    assert_eq!(value_of(&fhir, "o-theirs"), Some(5.0), "left as it was");

    assert!(refused(fhir.conditional_delete(
        &gp,
        "Observation",
        &theirs,
        &mut RequestAudit::default()
    )));
    assert_eq!(value_of(&fhir, "o-theirs"), Some(5.0), "not deleted");

    let deleted = fhir
        .conditional_delete(
            &gp,
            "Observation",
            &format!("identifier={LOCAL}|o-ours"),
            &mut RequestAudit::default(),
        )
        .expect("delete");
    assert!(matches!(deleted, DeleteOutcome::Deleted { .. }));
}

fn a_receptionist_may_not_update_clinical_entries_by_condition(fhir: FhirService) {
    assert!(refused(fhir.conditional_update(
        &user("R8009"),
        "Observation",
        &format!("identifier={LOCAL}|o-ours"),
        observation("p-ours", "o-ours", 7.0),
        None,
        &mut RequestAudit::default(),
    )));
    assert_eq!(value_of(&fhir, "o-ours"), Some(5.0));
}

fn a_conditional_create_never_returns_a_match_the_actor_may_not_read(fhir: FhirService) {
    let gp = user("R8000");
    // The condition names the other practice's entry; the body is for the GP's own patient.
    assert!(refused(fhir.create(
        &gp,
        "Observation",
        observation("p-ours", "o-new", 4.0),
        Some(&format!("identifier={LOCAL}|o-theirs")),
        &mut RequestAudit::default(),
    )));
    // Its own match comes back as it would be read.
    let matched = fhir
        .create(
            &gp,
            "Observation",
            observation("p-ours", "o-ours", 4.0),
            Some(&format!("identifier={LOCAL}|o-ours")),
            &mut RequestAudit::default(),
        )
        .expect("matched");
    assert!(matched.matched_existing);
    assert_eq!(matched.resource.id, "o-ours");
}

fn entry(method: &str, url: &str, resource: Option<Value>) -> Value {
    let mut entry = json!({"request": {"method": method, "url": url}});
    if let Some(resource) = resource {
        entry["resource"] = resource;
    }
    entry
}

fn bundle(kind: &str, entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

fn a_batch_decides_each_entry_and_a_refused_entry_fails_alone(fhir: FhirService) {
    let mut audit = RequestAudit::default();
    let mut theirs = observation("p-theirs", "o-theirs", 9.9);
    theirs["id"] = json!("o-theirs");
    let response = fhir
        .process_bundle_audited(
            &user("R8000"),
            bundle(
                "batch",
                vec![
                    entry("GET", "Observation/o-ours", None),
                    entry("GET", "Observation/o-theirs", None),
                    entry("PUT", "Observation/o-theirs", Some(theirs)),
                    entry(
                        "POST",
                        "Observation",
                        Some(observation("p-ours", "o-new", 4.2)),
                    ),
                    entry("GET", "Observation", None),
                    entry("DELETE", "Observation/o-theirs", None),
                ],
            ),
            &mut audit,
        )
        .expect("a batch answers entry by entry");
    let entries = response.entries;
    assert!(entries[0].is_ok());
    assert!(entries[1].as_ref().is_err_and(is_refusal));
    assert!(entries[2].as_ref().is_err_and(is_refusal));
    assert_eq!(
        entries[3].as_ref().expect("own patient").status,
        "201 Created"
    );
    let searchset = entries[4]
        .as_ref()
        .expect("search")
        .body
        .clone()
        .expect("searchset");
    let found: Vec<&str> = searchset["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str())
        .collect();
    assert!(found.contains(&"o-ours"), "{found:?}");
    assert!(
        !found.contains(&"o-theirs"),
        "a search entry leaks: {found:?}"
    );
    assert_eq!(searchset["total"], json!(found.len()));
    assert!(entries[5].as_ref().is_err_and(is_refusal));
    assert_eq!(value_of(&fhir, "o-theirs"), Some(5.0), "left as it was");
    assert!(audit.patients().any(|p| p.contains("p-ours")), "audited");
}

fn a_transaction_with_one_refused_entry_writes_nothing(fhir: FhirService) {
    let mut ours = observation("p-ours", "o-ours", 8.8);
    ours["id"] = json!("o-ours");
    let result = fhir.process_bundle_audited(
        &user("R8000"),
        bundle(
            "transaction",
            vec![
                entry("PUT", "Observation/o-ours", Some(ours)),
                entry(
                    "DELETE",
                    &format!("Observation?identifier={LOCAL}|o-theirs"),
                    None,
                ),
            ],
        ),
        &mut RequestAudit::default(),
    );
    assert!(refused(result), "the whole transaction is refused");
    assert_eq!(value_of(&fhir, "o-ours"), Some(5.0), "nothing written");
    assert_eq!(value_of(&fhir, "o-theirs"), Some(5.0));
}

/// Each case on a seeded store of each backend.
macro_rules! on_each_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[test]
                fn $case() {
                    let dir = tempfile::tempdir().expect("dir");
                    let store = SqliteStore::open(&dir.path().join("keel.sqlite"), Durability::Resumable)
                        .expect("store");
                    super::$case(seeded(Arc::new(store)));
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[test]
                fn $case() {
                    let schema = test_schema::TestSchema::create();
                    let store = PostgresStore::open(&schema.url).expect("store");
                    super::$case(seeded(Arc::new(store)));
                }
            )*
        }
    };
}

on_each_backend!(
    a_gp_updates_and_deletes_by_condition_only_what_they_may_write,
    a_receptionist_may_not_update_clinical_entries_by_condition,
    a_conditional_create_never_returns_a_match_the_actor_may_not_read,
    a_batch_decides_each_entry_and_a_refused_entry_fails_alone,
    a_transaction_with_one_refused_entry_writes_nothing,
);
