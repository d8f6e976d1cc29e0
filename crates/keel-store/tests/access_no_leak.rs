//! Access control pushed into the store: for random actors and random data, no search page,
//! total, include or history returns or counts a resource the actor may not read by id (the
//! read decision is the oracle: `policy::decide` on that resource's facts).

use keel_core::audit::RequestAudit;
use keel_core::fhir::{FhirService, HistoryRequest};
use keel_core::store::{HistoryScope, ResourceStore};
use keel_core::{Actor, CorrelationId, FhirError, PurposeOfUse, RequestContext};
use keel_fhir::search::Handling;
use keel_model::OdsCode;
use keel_store::{Durability, PostgresStore, SqliteStore};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;

mod pcn_service;
mod test_schema;
use pcn_service::{dev, pcn_service};
use test_schema::TestSchema;

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const CONF: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const PRACTICES: [&str; 3] = ["A81001", "A81002", "B82001"];
const ORGS: [&str; 4] = ["A81001", "A81002", "B82001", "Y00001"];
const CODES: [&str; 4] = ["38341003", "52637005", "105629000", "73211009"];
const CATEGORIES: [&str; 3] = ["laboratory", "vital-signs", "social-history"];
const ROLES: [(&str, &[&str]); 5] = [
    ("R8000", &[]),
    ("R8003", &["B0570"]),
    ("R8003", &[]),
    ("R8009", &[]),
    ("R8012", &[]),
];

#[derive(Debug, Clone)]
struct PatientSpec {
    practice: usize,
    by_reference: bool,
    restriction: usize,
    observations: Vec<(usize, usize)>,
    conditions: Vec<usize>,
    /// (organisation, open)
    tasks: Vec<(usize, bool)>,
    appointments: Vec<(usize, bool)>,
}

fn patient_spec() -> impl Strategy<Value = PatientSpec> {
    (
        0..PRACTICES.len(),
        any::<bool>(),
        prop_oneof![6 => Just(0usize), 1 => Just(1usize), 1 => Just(2usize)],
        prop::collection::vec((0..CODES.len(), 0..CATEGORIES.len()), 0..3),
        prop::collection::vec(0..CODES.len(), 0..2),
        prop::collection::vec((0..ORGS.len(), any::<bool>()), 0..2),
        prop::collection::vec((0..ORGS.len(), any::<bool>()), 0..2),
    )
        .prop_map(
            |(
                practice,
                by_reference,
                restriction,
                observations,
                conditions,
                tasks,
                appointments,
            )| {
                PatientSpec {
                    practice,
                    by_reference,
                    restriction,
                    observations,
                    conditions,
                    tasks,
                    appointments,
                }
            },
        )
}

#[derive(Debug, Clone)]
struct ActorSpec {
    role: usize,
    org: usize,
    purpose: usize,
}

fn actor_spec() -> impl Strategy<Value = ActorSpec> {
    (0..ROLES.len(), 0..ORGS.len(), 0..3usize).prop_map(|(role, org, purpose)| ActorSpec {
        role,
        org,
        purpose,
    })
}

fn actor_ctx(a: &ActorSpec) -> RequestContext {
    let (role, activities) = ROLES[a.role];
    RequestContext {
        actor: Actor::User {
            user_id: "555000000001".into(),
            role_code: role.into(),
            activity_codes: activities.iter().map(|s| s.to_string()).collect(),
        },
        organisation: Some(OdsCode::parse(ORGS[a.org]).expect("ods")),
        purpose: [
            PurposeOfUse::DirectCare,
            PurposeOfUse::Administration,
            PurposeOfUse::SecondaryUse,
        ][a.purpose],
        correlation_id: CorrelationId::parse("probe").expect("id"),
        break_glass: None,
    }
}

fn org_ref(org: usize, by_reference: bool) -> Value {
    if by_reference {
        json!({"reference": format!("Organization/org-{}", ORGS[org])})
    } else {
        json!({"identifier": {"system": ODS, "value": ORGS[org]}})
    }
}

fn put(fhir: &FhirService, rt: &str, id: &str, mut body: Value) -> Result<(), FhirError> {
    body["id"] = json!(id);
    fhir.update(&dev(), rt, id, body, None, &mut RequestAudit::default())
        .map(|_| ())
}

fn load(fhir: &FhirService, patients: &[PatientSpec]) {
    for org in ORGS {
        let body = json!({"resourceType": "Organization", "identifier": [{"system": ODS, "value": org}], "name": org});
        put(fhir, "Organization", &format!("org-{org}"), body).expect("organisation");
    }
    for (i, p) in patients.iter().enumerate() {
        let pid = format!("p{i}");
        let mut patient = json!({
            "resourceType": "Patient",
            "name": [{"family": format!("Fam{i}")}],
            "telecom": [{"system": "phone", "value": "0113 496 0000"}],
            "address": [{"postalCode": "LS1 1AA"}],
            "birthDate": "1970-01-01",
            "generalPractitioner": [org_ref(p.practice, p.by_reference)]
        });
        if p.restriction > 0 {
            let code = ["U", "R", "V"][p.restriction];
            patient["meta"] = json!({"security": [{"system": CONF, "code": code}]});
        }
        put(fhir, "Patient", &pid, patient).expect("patient");
        let subject = json!({"reference": format!("Patient/{pid}")});
        for (k, (code, category)) in p.observations.iter().enumerate() {
            let body = json!({
                "resourceType": "Observation", "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": CATEGORIES[*category]}]}],
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": CODES[*code]}]},
                "subject": subject,
            });
            put(fhir, "Observation", &format!("{pid}-o{k}"), body).expect("obs");
        }
        for (k, code) in p.conditions.iter().enumerate() {
            let body = json!({
                "resourceType": "Condition",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": CODES[*code]}]},
                "subject": subject,
            });
            put(fhir, "Condition", &format!("{pid}-c{k}"), body).expect("condition");
        }
        for (k, (org, open)) in p.tasks.iter().enumerate() {
            let body = json!({
                "resourceType": "Task", "intent": "order",
                "status": if *open { "requested" } else { "completed" },
                "for": subject, "owner": org_ref(*org, k % 2 == 0),
            });
            put(fhir, "Task", &format!("{pid}-t{k}"), body).expect("task");
        }
        for (k, (org, open)) in p.appointments.iter().enumerate() {
            let body = json!({
                "resourceType": "Appointment",
                "status": if *open { "booked" } else { "cancelled" },
                "participant": [
                    {"actor": subject, "status": "accepted"},
                    {"actor": org_ref(*org, k % 2 == 1), "status": "accepted"}
                ],
            });
            put(fhir, "Appointment", &format!("{pid}-a{k}"), body).expect("appt");
        }
    }
}

fn service(store: Arc<dyn ResourceStore>) -> FhirService {
    pcn_service(store, &["A81001", "A81002"], Some("Y00001"))
}

/// Every resource of `resource_type`, as local development sees it.
fn all_ids(fhir: &FhirService, resource_type: &str) -> Vec<String> {
    let q = fhir
        .parse_search(
            resource_type,
            &[("_count".into(), "1000".into())],
            Handling::Strict,
        )
        .expect("query");
    fhir.search(&dev(), &q, &mut RequestAudit::default())
        .expect("search")
        .matches
        .into_iter()
        .map(|r| r.id)
        .collect()
}

fn readable(fhir: &FhirService, ctx: &RequestContext, rt: &str, id: &str) -> bool {
    match fhir.read(ctx, rt, id, &mut RequestAudit::default()) {
        Ok(_) => true,
        Err(
            FhirError::Forbidden { .. }
            | FhirError::Withheld { .. }
            | FhirError::NotFound { .. }
            | FhirError::Concealed { .. },
        ) => false,
        Err(other) => panic!("read {rt}/{id}: {other}"),
    }
}

const SEARCHES: &[(&str, &[(&str, &str)])] = &[
    ("Patient", &[]),
    ("Patient", &[("_revinclude", "Observation:patient")]),
    ("Patient", &[("birthdate", "1970-01-01")]),
    ("Observation", &[("_include", "Observation:patient")]),
    (
        "Observation",
        &[(
            "code",
            "http://snomed.info/sct|52637005,http://snomed.info/sct|38341003",
        )],
    ),
    ("Observation", &[("patient.birthdate", "1970-01-01")]),
    ("Condition", &[("_include", "Condition:patient")]),
    ("Task", &[]),
    ("Appointment", &[("_include", "Appointment:patient")]),
    (
        "Patient",
        &[(
            "_has:Condition:patient:code",
            "http://snomed.info/sct|105629000",
        )],
    ),
];

/// The property: every page, total, include and history of every actor holds only what the
/// actor may read by id.
fn never_leak(
    fhir: &FhirService,
    patients: &[PatientSpec],
    actors: &[ActorSpec],
) -> Result<(), TestCaseError> {
    load(fhir, patients);
    for actor in actors {
        let ctx = actor_ctx(actor);
        for (rt, params) in SEARCHES {
            let mut pairs: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            pairs.push(("_total".into(), "accurate".into()));
            pairs.push(("_count".into(), "3".into()));
            let q = fhir
                .parse_search(rt, &pairs, Handling::Strict)
                .expect("query");
            let result = match fhir.search(&ctx, &q, &mut RequestAudit::default()) {
                Ok(r) => r,
                Err(FhirError::Forbidden { .. }) => continue,
                Err(e) => panic!("{rt} {params:?}: {e}"),
            };
            for r in result.matches.iter().chain(&result.included) {
                prop_assert!(
                    readable(fhir, &ctx, &r.resource_type, &r.id),
                    "{actor:?} {rt} {params:?} returned {}/{} it may not read",
                    r.resource_type,
                    r.id
                );
            }
            if params.is_empty() {
                let expected = all_ids(fhir, rt)
                    .iter()
                    .filter(|id| readable(fhir, &ctx, rt, id))
                    .count() as u64;
                prop_assert_eq!(result.total, Some(expected), "{:?} total of {}", actor, rt);
            } else {
                // A total never counts what could not be read: at most the readable ones
                // among what the same search finds for local development (fewer where a
                // criterion tests a field redacted for a restricted patient).
                let all = fhir
                    .search(&dev(), &q, &mut RequestAudit::default())
                    .expect("dev search");
                let mut all_q = q.clone();
                all_q.count = 1000;
                let every = fhir
                    .search(&dev(), &all_q, &mut RequestAudit::default())
                    .expect("dev search");
                let readable_matches = every
                    .matches
                    .iter()
                    .filter(|r| readable(fhir, &ctx, &r.resource_type, &r.id))
                    .count() as u64;
                prop_assert!(all.total.is_some());
                prop_assert!(
                    result.total.is_some_and(|t| t <= readable_matches),
                    "{:?} {} {:?}: total {:?} of {} readable",
                    actor,
                    rt,
                    params,
                    result.total,
                    readable_matches
                );
            }
        }
        for rt in ["Observation", "Patient", "Condition"] {
            let history = HistoryRequest {
                scope: HistoryScope::Type(rt.into()),
                since: None,
                count: 1000,
                offset: 0,
            };
            match fhir.history(&ctx, &history, &mut RequestAudit::default()) {
                Ok(page) => {
                    for v in &page.versions {
                        prop_assert!(
                            readable(fhir, &ctx, &v.resource_type, &v.id),
                            "{actor:?} history of {rt} listed {}/{}",
                            v.resource_type,
                            v.id
                        );
                    }
                    let expected = all_ids(fhir, rt)
                        .iter()
                        .filter(|id| readable(fhir, &ctx, rt, id))
                        .count() as u64;
                    prop_assert_eq!(page.total, expected);
                }
                Err(FhirError::Forbidden { .. }) => {}
                Err(e) => panic!("history {rt}: {e}"),
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

    #[test]
    fn searches_totals_includes_and_history_never_leak(
        patients in prop::collection::vec(patient_spec(), 1..8),
        actors in prop::collection::vec(actor_spec(), 1..5),
    ) {
        let dir = tempfile::tempdir().expect("dir");
        let store = SqliteStore::open(&dir.path().join("keel.sqlite"), Durability::Resumable)
            .expect("store");
        never_leak(&service(Arc::new(store)), &patients, &actors)?;
    }

    #[test]
    fn searches_totals_includes_and_history_never_leak_on_postgres(
        patients in prop::collection::vec(patient_spec(), 1..8),
        actors in prop::collection::vec(actor_spec(), 1..5),
    ) {
        let schema = TestSchema::create();
        let store = PostgresStore::open(&schema.url).expect("store");
        never_leak(&service(Arc::new(store)), &patients, &actors)?;
    }
}
