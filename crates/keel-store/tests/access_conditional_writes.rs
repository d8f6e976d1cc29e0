//! Conditional create, update and delete by authenticated actors: the resource a condition
//! finds is decided on inside the write's transaction like any other write — a match the actor
//! may not write is refused and left as it was, and a conditional create never hands back a
//! match the actor may not read.

use keel_core::access::{AccessControl, Pcn};
use keel_core::audit::RequestAudit;
use keel_core::clock::{SequentialIds, SteppingClock};
use keel_core::fhir::{DeleteOutcome, FhirService};
use keel_core::policy::Policy;
use keel_core::{Actor, CorrelationId, FhirError, PurposeOfUse, RequestContext};
use keel_model::OdsCode;
use keel_store::{Durability, SqliteStore};
use serde_json::{Value, json};
use std::sync::Arc;

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const LOCAL: &str = "https://keel.example/observation-id";

fn service(dir: &std::path::Path) -> FhirService {
    let store = SqliteStore::open(&dir.join("keel.sqlite"), Durability::Resumable).expect("store");
    let pcn = Pcn {
        code: OdsCode::parse("U00001").expect("ods"),
        name: "Test PCN".into(),
        practices: vec![OdsCode::parse("A81001").expect("ods")],
        hub: None,
    };
    FhirService::new(
        Arc::new(store),
        Arc::new(SteppingClock::starting_at(1_700_000_000_000)),
        Arc::new(SequentialIds::new("id")),
    )
    .with_access(AccessControl::new(
        Policy::default_policy().expect("policy"),
        Some(pcn),
    ))
}

fn dev() -> RequestContext {
    RequestContext::local_development(CorrelationId::parse("load").expect("id"))
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
fn seeded(dir: &std::path::Path) -> FhirService {
    let fhir = service(dir);
    for (id, practice) in [("p-ours", "A81001"), ("p-theirs", "B82001")] {
        let body = json!({"resourceType": "Patient", "id": id, "name": [{"family": id}],
            "generalPractitioner": [{"identifier": {"system": ODS, "value": practice}}]});
        fhir.update(
            &dev(),
            "Patient",
            id,
            body,
            None,
            &mut RequestAudit::default(),
        )
        .expect("patient");
    }
    for (id, patient) in [("o-ours", "p-ours"), ("o-theirs", "p-theirs")] {
        let mut body = observation(patient, id, 5.0);
        body["id"] = json!(id);
        fhir.update(
            &dev(),
            "Observation",
            id,
            body,
            None,
            &mut RequestAudit::default(),
        )
        .expect("observation");
    }
    fhir
}

fn refused(result: Result<impl std::fmt::Debug, FhirError>) -> bool {
    matches!(
        result,
        Err(FhirError::Forbidden { .. } | FhirError::Concealed { .. } | FhirError::NotFound { .. })
    )
}

fn value_of(fhir: &FhirService, id: &str) -> Option<f64> {
    fhir.read(&dev(), "Observation", id, &mut RequestAudit::default())
        .ok()
        .and_then(|r| serde_json::from_str::<Value>(r.body.as_deref()?).ok())
        .and_then(|v| v["valueQuantity"]["value"].as_f64())
}

#[test]
fn a_gp_updates_and_deletes_by_condition_only_what_they_may_write() {
    let dir = tempfile::tempdir().expect("dir");
    let fhir = seeded(dir.path());
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

#[test]
fn a_receptionist_may_not_update_clinical_entries_by_condition() {
    let dir = tempfile::tempdir().expect("dir");
    let fhir = seeded(dir.path());
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

#[test]
fn a_conditional_create_never_returns_a_match_the_actor_may_not_read() {
    let dir = tempfile::tempdir().expect("dir");
    let fhir = seeded(dir.path());
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
