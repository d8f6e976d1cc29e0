//! What of a Patient leaves Keel, by id and by search: PDS restrictions (R: no address,
//! telecom, contacts or registered GP; V: also no name or birth date) and contact details only
//! for roles that read them. A read by id skips the redaction only for an unrestricted Patient
//! whose contact details the actor reads; these tests hold it to the same answer as a search.

use keel_core::audit::RequestAudit;
use keel_core::fhir::FhirService;
use keel_core::{Actor, CorrelationId, PurposeOfUse, RequestContext};
use keel_fhir::search::Handling;
use keel_model::OdsCode;
use keel_store::{Durability, SqliteStore};
use serde_json::{Value, json};
use std::sync::Arc;

mod pcn_service;
use pcn_service::{pcn_service, put};

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";

fn service(dir: &std::path::Path) -> FhirService {
    let store = SqliteStore::open(&dir.join("keel.sqlite"), Durability::Resumable).expect("store");
    let fhir = pcn_service(Arc::new(store), &["A81001"], None);
    for (id, flag) in [("p-open", None), ("p-r", Some("R")), ("p-v", Some("V"))] {
        let mut body = json!({"resourceType": "Patient", "id": id,
            "name": [{"family": id}], "birthDate": "1970-01-01",
            "telecom": [{"system": "phone", "value": "0113 496 0000"}],
            "address": [{"postalCode": "LS1 1AA"}],
            "generalPractitioner": [{"identifier": {"system": ODS, "value": "A81001"}}]});
        if let Some(code) = flag {
            body["meta"] = json!({"security": [{"system": CONFIDENTIALITY, "code": code}]});
        }
        put(&fhir, "Patient", id, body);
    }
    fhir
}

fn user(role: &str, activity_codes: &[&str]) -> RequestContext {
    RequestContext {
        actor: Actor::User {
            user_id: "555000000001".into(),
            role_code: role.into(),
            activity_codes: activity_codes.iter().map(|c| c.to_string()).collect(),
        },
        organisation: Some(OdsCode::parse("A81001").expect("ods")),
        purpose: PurposeOfUse::DirectCare,
        correlation_id: CorrelationId::parse("probe").expect("id"),
        break_glass: None,
    }
}

fn body_of(resource: &keel_core::store::StoredResource) -> Value {
    serde_json::from_str(resource.body.as_deref().expect("a body")).expect("json")
}

/// The Patient as read by id, and as found by `_id` search: they must be the same.
fn seen(fhir: &FhirService, ctx: &RequestContext, id: &str) -> Value {
    let read = fhir
        .read(ctx, "Patient", id, &mut RequestAudit::default())
        .expect("read");
    let q = fhir
        .parse_search("Patient", &[("_id".into(), id.into())], Handling::Strict)
        .expect("query");
    let found = fhir
        .search(ctx, &q, &mut RequestAudit::default())
        .expect("search");
    assert_eq!(found.matches.len(), 1, "{id} found by search");
    assert_eq!(
        body_of(&read),
        body_of(&found.matches[0]),
        "{id}: read and search differ"
    );
    body_of(&read)
}

fn fields(patient: &Value) -> Vec<&str> {
    let mut present: Vec<&str> = [
        "name",
        "birthDate",
        "telecom",
        "address",
        "generalPractitioner",
    ]
    .into_iter()
    .filter(|f| patient.get(f).is_some())
    .collect();
    present.sort_unstable();
    present
}

#[test]
fn a_patient_leaves_with_only_what_the_actor_may_see() {
    let dir = tempfile::tempdir().expect("dir");
    let fhir = service(dir.path());
    let gp = user("R8000", &[]);
    assert_eq!(
        fields(&seen(&fhir, &gp, "p-open")),
        [
            "address",
            "birthDate",
            "generalPractitioner",
            "name",
            "telecom"
        ]
    );
    assert_eq!(fields(&seen(&fhir, &gp, "p-r")), ["birthDate", "name"]);
    assert!(fields(&seen(&fhir, &gp, "p-v")).is_empty());

    // A pharmacist does not read contact details, even of an unrestricted patient.
    let pharmacist = user("R8003", &["R1290"]);
    assert_eq!(
        fields(&seen(&fhir, &pharmacist, "p-open")),
        ["birthDate", "generalPractitioner", "name"]
    );
    assert_eq!(
        fields(&seen(&fhir, &pharmacist, "p-r")),
        ["birthDate", "name"]
    );
}
