//! Contract tests of the GP Connect provider simulator over real HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use keel_sim::faults::FaultHandle;
use keel_sim::gpconnect::parameters::ClinicalArea;
use keel_sim::gpconnect::{self, GpConnectSimulator, jwt};
use keel_sim::model::{
    ConditionStatus, Confidentiality, Consultation, MedicationCourse, MedicationStatus,
    NhsNumberStatus, PatientRecord, Practice, RegistrationType,
};
use keel_sim::records::PracticeRecords;
use keel_sim::{Options, Population};
use serde_json::{Value, json};

const STRUCTURED: &str =
    "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1";
const SLOTS: &str = "urn:nhs:names:services:gpconnect:fhir:rest:search:slot-1";
const CREATE: &str = "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1";
const READ: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:appointment-1";
const AMEND: &str = "urn:nhs:names:services:gpconnect:fhir:rest:update:appointment-1";
const CANCEL: &str = "urn:nhs:names:services:gpconnect:fhir:rest:cancel:appointment-1";
const PATIENT_APPOINTMENTS: &str =
    "urn:nhs:names:services:gpconnect:fhir:rest:search:patient_appointments-1";
const NOW: i64 = 1_767_600_000;

struct Server {
    sim: GpConnectSimulator,
    base: String,
    root: String,
    asid: String,
    client: reqwest::Client,
}

fn records() -> Arc<PracticeRecords> {
    Arc::new(PracticeRecords::new(Population::generate(Options {
        patients: 3000,
        practices: 2,
        ..Options::default()
    })))
}

async fn start() -> Server {
    start_at(0).await
}

/// A server whose requests go to `practice`'s provider.
async fn start_at(practice: usize) -> Server {
    let sim = GpConnectSimulator::new(records());
    sim.set_now(Some(NOW));
    let (addr, _h) = gpconnect::serve(
        sim.clone(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        FaultHandle::default(),
    )
    .await
    .expect("bind");
    let root = sim.service_root(practice).expect("practice").to_string();
    let asid = sim.asid(practice).expect("practice").to_string();
    Server {
        sim,
        base: format!("http://{addr}"),
        root,
        asid,
        client: reqwest::Client::new(),
    }
}

fn claims(root: &str, scope: &str) -> Value {
    json!({
        "iss": "https://consumer.example/",
        "sub": "10019",
        "aud": format!("https://provider.example{root}"),
        "iat": NOW - 10,
        "exp": NOW - 10 + 300,
        "reason_for_request": "directcare",
        "requested_scope": format!("{scope} conf/N"),
        "requesting_device": {"resourceType": "Device", "identifier": [{"system": "https://consumer.example/device", "value": "d1"}], "model": "m", "version": "1"},
        "requesting_organization": {"resourceType": "Organization", "name": "Consumer", "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A11111"}]},
        "requesting_practitioner": {"resourceType": "Practitioner", "id": "10019", "name": [{"family": "Test", "given": ["Clinician"]}],
            "identifier": [{"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "111111111"}, {"system": "https://fhir.nhs.uk/Id/sds-role-profile-id", "value": "22222222"}]},
    })
}

impl Server {
    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        interaction: &str,
        token_claims: &Value,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{}{path}", self.base, self.root))
            .header("Ssp-TraceID", "09a01679-2564-0fb4-5129-aecc81ea2706")
            .header("Ssp-From", "200000000359")
            .header("Ssp-To", &self.asid)
            .header("Ssp-InteractionID", interaction)
            .header(
                "Authorization",
                format!("Bearer {}", jwt::encode_unsigned(token_claims)),
            )
            .header("Accept", "application/fhir+json")
    }

    async fn structured(&self, parameters: Value) -> (u16, Value) {
        let body = json!({"resourceType": "Parameters", "parameter": parameters});
        send(
            self.request(
                reqwest::Method::POST,
                "/Patient/$gpc.getstructuredrecord",
                STRUCTURED,
                &claims(&self.root, "patient/*.read"),
            )
            .header("Content-Type", "application/fhir+json")
            .body(body.to_string()),
        )
        .await
    }
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    assert_eq!(
        resp.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body = resp.json().await.expect("json body");
    (status, body)
}

/// One header that replaces the request's own (`RequestBuilder::header` would add a second).
fn replaced(name: &'static str, value: &str) -> reqwest::header::HeaderMap {
    let mut map = reqwest::header::HeaderMap::new();
    map.insert(name, value.parse().expect("header value"));
    map
}

fn spine_code(oo: &Value) -> &str {
    oo.pointer("/issue/0/details/coding/0/code")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn nhs(n: &str) -> Value {
    json!({"name": "patientNHSNumber", "valueIdentifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": n}})
}

/// The first record at practice 0 (with an NHS number) matching `pick`.
fn find(sim: &GpConnectSimulator, pick: impl Fn(&PatientRecord) -> bool) -> PatientRecord {
    find_at(sim, 0, pick)
}

/// The first record at `practice` (with an NHS number) matching `pick`.
fn find_at(
    sim: &GpConnectSimulator,
    practice: usize,
    pick: impl Fn(&PatientRecord) -> bool,
) -> PatientRecord {
    let records = sim.records();
    records
        .at_practice(practice)
        .map(|at| records.record(at))
        .find(|r| {
            r.nhs_number.is_some()
                && records.by_nhs_number(practice, r.nhs_number.as_ref().expect("nhs"))[0]
                    == records.by_record_id(&r.id).expect("id")
                && pick(r)
        })
        .expect("a matching record in the population")
}

type RecordFilter = Box<dyn Fn(&PatientRecord) -> bool>;

fn servable(r: &PatientRecord) -> bool {
    r.registration.is_active()
        && r.death_date.is_none()
        && r.registration.kind == RegistrationType::Regular
        && r.nhs_status == NhsNumberStatus::Verified
        && r.confidentiality == Confidentiality::Unrestricted
}

fn nhs_of(r: &PatientRecord) -> String {
    r.nhs_number.as_ref().expect("nhs").as_str().to_string()
}

fn lists(bundle: &Value) -> Vec<&Value> {
    bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "List")
        .collect()
}

fn list<'b>(bundle: &'b Value, title: &str) -> &'b Value {
    lists(bundle)
        .into_iter()
        .find(|l| l["title"] == title)
        .unwrap_or_else(|| panic!("a {title} list"))
}

fn resources<'b>(bundle: &'b Value, kind: &str) -> Vec<&'b Value> {
    bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == kind)
        .collect()
}

fn warnings(list: &Value) -> Vec<&str> {
    list["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["valueCode"].as_str())
        .collect()
}

// ---- request checks ----

#[tokio::test]
async fn request_checks_answer_the_documented_errors() {
    let s = start().await;
    let patient = find(&s.sim, servable);
    let good = claims(&s.root, "patient/*.read");
    let params =
        json!({"resourceType": "Parameters", "parameter": [nhs(&nhs_of(&patient))]}).to_string();
    let post = |interaction: &str, c: &Value| {
        s.request(
            reqwest::Method::POST,
            "/Patient/$gpc.getstructuredrecord",
            interaction,
            c,
        )
        .header("Content-Type", "application/fhir+json")
        .body(params.clone())
    };
    let (status, _) = send(post(STRUCTURED, &good)).await;
    assert_eq!(status, 200);

    // Headers.
    let (status, body) =
        send(post(STRUCTURED, &good).headers(replaced("ssp-traceid", "not-a-guid"))).await;
    assert_eq!((status, spine_code(&body)), (400, "BAD_REQUEST"));
    let (status, body) = send(post(SLOTS, &good)).await;
    assert_eq!((status, spine_code(&body)), (400, "BAD_REQUEST"));
    let (status, body) =
        send(post(STRUCTURED, &good).headers(replaced("ssp-to", "918000000099"))).await;
    assert_eq!(
        (status, body["issue"][0]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, body) =
        send(post(STRUCTURED, &good).headers(replaced("accept", "application/fhir+xml"))).await;
    assert_eq!(
        (status, body["issue"][0]["code"].as_str()),
        (415, Some("not-supported"))
    );
    let (status, _) =
        send(post(STRUCTURED, &good).headers(replaced("content-type", "text/plain"))).await;
    assert_eq!(status, 415);

    // The JWT.
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut c = good.clone();
    c["exp"] = json!(NOW - 10 + 301);
    cases.push(("exp not iat+300", c));
    let mut c = good.clone();
    c["iat"] = json!(NOW - 400);
    c["exp"] = json!(NOW - 100);
    cases.push(("expired", c));
    let mut c = good.clone();
    c["requested_scope"] = json!("patient/*.write");
    cases.push(("write scope for a read", c));
    let mut c = good.clone();
    c["sub"] = json!("someone-else");
    cases.push(("sub not the practitioner", c));
    let mut c = good.clone();
    c["aud"] = json!("https://provider.example/Y99999/STU3/1/gpconnect");
    cases.push(("aud another provider", c));
    let mut c = good.clone();
    c["reason_for_request"] = json!("migration");
    cases.push(("migration", c));
    let mut c = good.clone();
    c["requesting_organization"]["identifier"] = json!([]);
    cases.push(("no ODS code", c));
    let mut c = good.clone();
    c["requesting_practitioner"]["identifier"] =
        json!([{"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "1"}]);
    cases.push(("no role profile", c));
    let mut c = good.clone();
    c.as_object_mut()
        .expect("object")
        .remove("requesting_device");
    cases.push(("no device", c));
    for (case, c) in cases {
        let (status, body) = send(post(STRUCTURED, &c)).await;
        assert_eq!((status, spine_code(&body)), (400, "BAD_REQUEST"), "{case}");
    }
    let signed = format!("Bearer {}sig", jwt::encode_unsigned(&good));
    let (status, body) =
        send(post(STRUCTURED, &good).headers(replaced("authorization", &signed))).await;
    assert_eq!(
        (status, spine_code(&body)),
        (400, "BAD_REQUEST"),
        "signed token"
    );

    // The clock: the same token passes before expiry, fails after.
    s.sim.set_now(Some(NOW + 291));
    let (status, _) = send(post(STRUCTURED, &good)).await;
    assert_eq!(status, 400);
    s.sim.set_now(Some(NOW));

    // Verb, unknown provider, unknown route.
    let (status, body) = send(s.request(
        reqwest::Method::GET,
        "/Patient/$gpc.getstructuredrecord",
        STRUCTURED,
        &good,
    ))
    .await;
    assert_eq!(
        (status, body["issue"][0]["code"].as_str()),
        (405, Some("not-supported"))
    );
    let (status, body) = send(s.client.post(format!(
        "{}/Y00000/STU3/1/gpconnect/Patient/$gpc.getstructuredrecord",
        s.base
    )))
    .await;
    assert_eq!((status, spine_code(&body)), (404, "ORGANISATION_NOT_FOUND"));
    let (status, body) =
        send(s.request(reqwest::Method::GET, "/Location/1", STRUCTURED, &good)).await;
    assert_eq!((status, spine_code(&body)), (501, "NOT_IMPLEMENTED"));
}

// ---- structured record ----

#[tokio::test]
async fn parameter_errors_have_their_documented_codes() {
    let s = start().await;
    let n = nhs_of(&find(&s.sim, servable));
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!([nhs("9434765918")]), 400, "INVALID_NHS_NUMBER"),
        (json!([nhs("12345")]), 400, "INVALID_NHS_NUMBER"),
        (
            json!([{"name": "patientNHSNumber", "valueIdentifier": {"system": "https://example.org/id", "value": n}}]),
            400,
            "INVALID_IDENTIFIER_SYSTEM",
        ),
        (
            json!([{"name": "includeProblems"}]),
            422,
            "INVALID_PARAMETER",
        ),
        (
            json!([nhs(&n), {"name": "includeAllergies"}]),
            422,
            "INVALID_PARAMETER",
        ),
        (
            json!([nhs(&n), {"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies"}]}]),
            422,
            "INVALID_PARAMETER",
        ),
        (
            json!([nhs(&n), {"name": "includeProblems", "part": [{"name": "filterStatus", "valueCode": "all"}]}]),
            422,
            "INVALID_PARAMETER",
        ),
        (
            json!([nhs(&n), {"name": "includeDiary"}]),
            422,
            "INVALID_PARAMETER",
        ),
        (
            json!([nhs(&n), {"name": "includeMedication", "part": [{"name": "medicationSearchFromDate", "valueDate": "2025-03"}]}]),
            422,
            "INVALID_PARAMETER",
        ),
        (
            json!([nhs(&n), {"name": "includeMedication", "part": [{"name": "medicationSearchFromDate", "valueDate": "2027-01-01"}]}]),
            422,
            "INVALID_PARAMETER",
        ),
        (
            json!([nhs(&n), {"name": "includeDiaryEntries", "part": [{"name": "diaryEntriesSearchDate", "valueDate": "2020-01-01"}]}]),
            422,
            "INVALID_PARAMETER",
        ),
        (
            json!([nhs(&n), {"name": "includeUncategorisedData", "part": [{"name": "uncategorisedDataSearchPeriod", "valuePeriod": {"start": "2025-02-01", "end": "2025-01-01"}}]}]),
            422,
            "INVALID_PARAMETER",
        ),
        (
            json!([nhs(&n), {"name": "includeConsultations", "part": [{"name": "includeNumberOfMostRecent", "valueInteger": 0}]}]),
            422,
            "INVALID_PARAMETER",
        ),
        (
            json!([nhs(&n), {"name": "includeConsultations"}, {"name": "includeMedication", "part": [{"name": "medicationSearchFromDate", "valueDate": "2020-01-01"}]}]),
            422,
            "INVALID_PARAMETER",
        ),
        (
            json!([nhs(&n), {"name": "includeProblems"}, {"name": "includeImmunisations", "part": [{"name": "includeStatus", "valueBoolean": true}]}]),
            422,
            "INVALID_PARAMETER",
        ),
        (
            json!([nhs(&n), {"name": "includeConsultations", "part": [
            {"name": "includeNumberOfMostRecent", "valueInteger": 3},
            {"name": "consultationSearchPeriod", "valuePeriod": {"start": "2020-01-01"}}]}]),
            422,
            "INVALID_RESOURCE",
        ),
    ];
    for (parameters, status, code) in cases {
        let (got, body) = s.structured(parameters.clone()).await;
        assert_eq!((got, spine_code(&body)), (status, code), "{parameters}");
        assert!(body["issue"][0]["diagnostics"].is_string());
    }
    let (status, body) = send(
        s.request(
            reqwest::Method::POST,
            "/Patient/$gpc.getstructuredrecord",
            STRUCTURED,
            &claims(&s.root, "patient/*.read"),
        )
        .header("Content-Type", "application/fhir+json")
        .body("{not json"),
    )
    .await;
    assert_eq!((status, spine_code(&body)), (422, "INVALID_RESOURCE"));
}

#[tokio::test]
async fn patients_gp_connect_may_not_return_are_not_found() {
    let s = start().await;
    let kinds: Vec<(&str, RecordFilter)> = vec![
        (
            "deceased",
            Box::new(|r: &PatientRecord| r.death_date.is_some()),
        ),
        (
            "deregistered",
            Box::new(|r: &PatientRecord| !r.registration.is_active() && r.death_date.is_none()),
        ),
        (
            "unverified",
            Box::new(|r: &PatientRecord| {
                r.nhs_status != NhsNumberStatus::Verified && r.registration.is_active()
            }),
        ),
        (
            "restricted",
            Box::new(|r: &PatientRecord| {
                r.confidentiality != Confidentiality::Unrestricted && r.registration.is_active()
            }),
        ),
    ];
    for (kind, pick) in kinds {
        let r = find(&s.sim, pick);
        let (status, body) = s.structured(json!([nhs(&nhs_of(&r))])).await;
        assert_eq!(
            (status, spine_code(&body)),
            (404, "PATIENT_NOT_FOUND"),
            "{kind}"
        );
    }
    let (status, body) = s.structured(json!([nhs("9690937286")])).await;
    assert_eq!(
        (status, spine_code(&body)),
        (404, "PATIENT_NOT_FOUND"),
        "unknown"
    );
}

fn all_areas() -> Vec<Value> {
    vec![
        json!({"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": true}]}),
        json!({"name": "includeMedication"}),
        json!({"name": "includeProblems"}),
        json!({"name": "includeImmunisations"}),
        json!({"name": "includeUncategorisedData"}),
        json!({"name": "includeInvestigations"}),
        json!({"name": "includeReferrals"}),
        json!({"name": "includeDiaryEntries"}),
    ]
}

#[tokio::test]
async fn the_structured_record_holds_one_list_per_area_with_the_models_entries() {
    let s = start().await;
    let r = find(&s.sim, |r| {
        servable(r)
            && r.clinical.medications.iter().any(|m| !m.issues.is_empty())
            && r.clinical
                .observations
                .iter()
                .any(|o| o.concept.key == "bp")
            && r.clinical.observations.iter().any(|o| o.laboratory)
    });
    let mut params = vec![nhs(&nhs_of(&r))];
    params.extend(all_areas());
    let (status, bundle) = s.structured(json!(params)).await;
    assert_eq!(status, 200);
    assert_eq!(bundle["type"], "collection");
    assert_eq!(resources(&bundle, "Patient")[0]["id"], r.id.as_str());
    assert_eq!(resources(&bundle, "Organization").len(), 1);
    assert_eq!(resources(&bundle, "PractitionerRole").len(), 1);
    for (title, code) in [
        ("Allergies and adverse reactions", "886921000000105"),
        ("Ended allergies", "1103671000000101"),
        ("Medications and medical devices", "933361000000108"),
        ("Problems", "717711000000103"),
        ("Immunisations", "1102181000000102"),
        ("Miscellaneous record", "826501000000100"),
        ("Investigations and results", "887191000000108"),
        ("Outbound referral", "792931000000107"),
        ("Patient recall administration", "714311000000108"),
    ] {
        let l = list(&bundle, title);
        assert_eq!(l["code"]["coding"][0]["code"], code);
        assert_eq!(
            (l["status"].as_str(), l["mode"].as_str()),
            (Some("current"), Some("snapshot"))
        );
    }
    for empty in ["Outbound referral", "Patient recall administration"] {
        let l = list(&bundle, empty);
        assert_eq!(l["emptyReason"]["coding"][0]["code"], "no-content-recorded");
        assert_eq!(l["note"][0]["text"], "Information not available");
    }
    // Medication: statements, plans, issues, dm+d Medication.
    let requests = resources(&bundle, "MedicationRequest");
    assert!(requests.iter().any(|m| m["intent"] == "plan"));
    let issues: usize = r.clinical.medications.iter().map(|m| m.issues.len()).sum();
    let sensitive_meds = r
        .clinical
        .medications
        .iter()
        .filter(|m| {
            m.indication.is_some_and(|c| {
                r.clinical
                    .conditions
                    .iter()
                    .any(|x| x.id == c && x.sensitivity.is_some())
            })
        })
        .count();
    if sensitive_meds == 0 {
        assert_eq!(
            requests.iter().filter(|m| m["intent"] == "order").count(),
            issues
        );
        assert_eq!(
            list(&bundle, "Medications and medical devices")["entry"]
                .as_array()
                .map(Vec::len),
            Some(r.clinical.medications.len())
        );
    }
    assert!(!resources(&bundle, "Medication").is_empty());
    // Blood pressure as a triple.
    let bp = resources(&bundle, "Observation")
        .into_iter()
        .find(|o| o["related"].is_array())
        .expect("a BP panel");
    for member in bp["related"].as_array().expect("related") {
        let target = member["target"]["reference"]
            .as_str()
            .expect("ref")
            .trim_start_matches("Observation/");
        let part = resources(&bundle, "Observation")
            .into_iter()
            .find(|o| o["id"] == target)
            .expect("BP member in bundle");
        assert_eq!(part["valueQuantity"]["unit"], "mm[Hg]");
    }
    assert!(!resources(&bundle, "DiagnosticReport").is_empty());

    // Without prescription issues.
    let mut params = vec![nhs(&nhs_of(&r))];
    params.push(json!({"name": "includeMedication", "part": [{"name": "includePrescriptionIssues", "valueBoolean": false}]}));
    let (_, bundle) = s.structured(json!(params)).await;
    assert!(
        resources(&bundle, "MedicationRequest")
            .iter()
            .all(|m| m["intent"] == "plan")
    );
}

#[tokio::test]
async fn legacy_codes_stay_beside_snomed_and_problems_filter_by_status() {
    let s = start().await;
    let r = find(&s.sim, |r| {
        servable(r)
            && r.clinical.conditions.iter().any(|c| {
                c.sensitivity.is_none()
                    && c.coding.legacy(c.concept).is_some()
                    && c.coding.has_snomed(c.concept)
            })
            && r.clinical
                .conditions
                .iter()
                .any(|c| matches!(c.status, keel_sim::model::ConditionStatus::Resolved(_)))
    });
    let (_, bundle) = s
        .structured(json!([nhs(&nhs_of(&r)), {"name": "includeProblems"}]))
        .await;
    let with_legacy = resources(&bundle, "Condition")
        .into_iter()
        .find(|c| {
            c["code"]["coding"]
                .as_array()
                .is_some_and(|cs| cs.len() >= 2)
        })
        .expect("a legacy + SNOMED problem");
    let systems: Vec<&str> = with_legacy["code"]["coding"]
        .as_array()
        .expect("codings")
        .iter()
        .filter_map(|c| c["system"].as_str())
        .collect();
    assert!(systems.contains(&"http://snomed.info/sct"));
    assert!(systems.iter().any(|s| s.starts_with("http://read.info/")));
    let (_, active) = s.structured(json!([nhs(&nhs_of(&r)), {"name": "includeProblems", "part": [{"name": "filterStatus", "valueCode": "active"}]}])).await;
    assert!(
        resources(&active, "Condition")
            .iter()
            .all(|c| c["clinicalStatus"] == "active")
    );
    let (_, inactive) = s.structured(json!([nhs(&nhs_of(&r)), {"name": "includeProblems", "part": [{"name": "filterStatus", "valueCode": "inactive"}]}])).await;
    assert!(!resources(&inactive, "Condition").is_empty());
    assert!(
        resources(&inactive, "Condition")
            .iter()
            .all(|c| c["clinicalStatus"] == "inactive")
    );
}

#[tokio::test]
async fn consultations_come_most_recent_first_with_their_lists() {
    let s = start().await;
    let r = find(&s.sim, |r| {
        servable(r)
            && r.clinical
                .consultations
                .iter()
                .filter(|c| !c.confidential)
                .count()
                > 3
    });
    let (status, bundle) = s.structured(json!([nhs(&nhs_of(&r)), {"name": "includeConsultations", "part": [{"name": "includeNumberOfMostRecent", "valueInteger": 2}]}])).await;
    assert_eq!(status, 200);
    let main = list(&bundle, "List of consultations");
    assert_eq!(main["entry"].as_array().map(Vec::len), Some(2));
    let encounters = resources(&bundle, "Encounter");
    assert_eq!(encounters.len(), 2);
    let latest = r
        .clinical
        .consultations
        .iter()
        .filter(|c| !c.confidential)
        .map(|c| c.start)
        .max()
        .expect("one");
    let mut written = Vec::new();
    latest.write_to(&mut written);
    assert!(
        encounters
            .iter()
            .any(|e| e["period"]["start"].as_str().map(str::as_bytes) == Some(written.as_slice()))
    );
    for title in ["Consultation", "Topic (EHR)", "Category (EHR)"] {
        assert_eq!(
            lists(&bundle)
                .iter()
                .filter(|l| l["title"] == title)
                .count(),
            2,
            "{title}"
        );
    }
}

#[tokio::test]
async fn withheld_items_and_disabled_areas_are_flagged() {
    let s = start().await;
    let sensitive = find(&s.sim, |r| {
        servable(r)
            && r.clinical
                .conditions
                .iter()
                .any(|c| c.sensitivity.is_some())
    });
    let (_, bundle) = s
        .structured(json!([nhs(&nhs_of(&sensitive)), {"name": "includeProblems"}]))
        .await;
    let problems = list(&bundle, "Problems");
    assert!(warnings(problems).contains(&"confidential-items"));
    assert!(
        problems["note"]
            .as_array()
            .expect("notes")
            .iter()
            .any(|n| n["text"]
                == "Items excluded due to confidentiality and/or patient preferences.")
    );
    let withheld = sensitive
        .clinical
        .conditions
        .iter()
        .filter(|c| c.sensitivity.is_some())
        .count();
    assert_eq!(
        resources(&bundle, "Condition").len(),
        sensitive.clinical.conditions.len() - withheld
    );

    s.sim.disable_area(0, ClinicalArea::Immunisations);
    let r = find(&s.sim, servable);
    let (status, bundle) = s.structured(json!([nhs(&nhs_of(&r)), {"name": "includeImmunisations"}, {"name": "includeProblems"}])).await;
    assert_eq!(status, 200);
    let oo = resources(&bundle, "OperationOutcome");
    assert_eq!(oo.len(), 1);
    let issue = &oo[0]["issue"][0];
    assert_eq!(
        (issue["severity"].as_str(), issue["code"].as_str()),
        (Some("warning"), Some("not-supported"))
    );
    assert_eq!(issue["details"]["coding"][0]["code"], "NOT_IMPLEMENTED");
    assert_eq!(
        issue["details"]["text"],
        "includeImmunisations has been disabled"
    );
    assert_eq!(issue["diagnostics"], "includeImmunisations");
    assert!(lists(&bundle).iter().all(|l| l["title"] != "Immunisations"));
    s.sim.enable_area(0, ClinicalArea::Immunisations);
    let (_, bundle) = s
        .structured(json!([nhs(&nhs_of(&r)), {"name": "includeImmunisations"}]))
        .await;
    assert!(resources(&bundle, "OperationOutcome").is_empty());
}

#[tokio::test]
async fn a_recent_registration_is_in_transit_on_every_list() {
    let s = start().await;
    let as_of = s.sim.records().population().options().as_of;
    let r = find(&s.sim, |r| {
        servable(r) && r.registration.start >= as_of.plus(-gpconnect::structured::IN_TRANSIT_DAYS)
    });
    let mut params = vec![nhs(&nhs_of(&r))];
    params.extend(all_areas());
    let (_, bundle) = s.structured(json!(params)).await;
    for l in lists(&bundle) {
        assert!(warnings(l).contains(&"data-in-transit"), "{}", l["title"]);
        assert!(l["note"].as_array().expect("notes").iter().any(|n| {
            n["text"].as_str().is_some_and(|t| {
                t.starts_with("Patient record transfer from previous GP practice not yet complete")
            })
        }));
    }
}

// ---- appointments ----

fn appointment(s: &Server, slot: &Value, patient: &str) -> Value {
    json!({
        "resourceType": "Appointment",
        "contained": [{"resourceType": "Organization", "id": "1", "name": "Consumer", "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A11111"}]}],
        "extension": [{"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1", "valueReference": {"reference": "#1"}}],
        "status": "booked",
        "description": "Review",
        "start": slot["start"],
        "end": slot["end"],
        "slot": [{"reference": format!("Slot/{}", slot["id"].as_str().expect("id"))}],
        "participant": [{"actor": {"reference": format!("Patient/{patient}")}, "status": "accepted"}],
        "_root": s.root,
    })
}

#[tokio::test]
async fn slots_are_searched_booked_amended_and_cancelled() {
    let s = start().await;
    let read = claims(&s.root, "patient/*.read");
    let write = claims(&s.root, "patient/*.write");
    let first_day = s.sim.records().population().appointment_book(0).first_day;
    let window = format!(
        "start=ge{first_day}&end=le{}&status=free&_include=Slot:schedule&_include:recurse=Schedule:actor:Practitioner",
        first_day.plus(3)
    );
    let (status, bundle) = send(s.request(
        reqwest::Method::GET,
        &format!("/Slot?{window}"),
        SLOTS,
        &read,
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(bundle["type"], "searchset");
    let slots = resources(&bundle, "Slot");
    assert!(
        !slots.is_empty()
            && !resources(&bundle, "Schedule").is_empty()
            && !resources(&bundle, "Practitioner").is_empty()
    );
    let slot = slots[0].clone();

    for bad in [
        format!("start=ge{first_day}&status=free&_include=Slot:schedule"),
        format!(
            "start=ge{first_day}&end=le{}&status=free&_include=Slot:schedule",
            first_day.plus(15)
        ),
        format!(
            "start=ge{first_day}&end=le{}&_include=Slot:schedule",
            first_day.plus(1)
        ),
        format!(
            "start=ge{first_day}&end=le{}&status=free",
            first_day.plus(1)
        ),
        format!(
            "start={first_day}&end=le{}&status=free&_include=Slot:schedule",
            first_day.plus(1)
        ),
    ] {
        let (status, body) =
            send(s.request(reqwest::Method::GET, &format!("/Slot?{bad}"), SLOTS, &read)).await;
        assert_eq!(
            (status, spine_code(&body)),
            (422, "INVALID_PARAMETER"),
            "{bad}"
        );
    }

    let patient = find(&s.sim, servable);
    let post = |body: &Value| {
        s.request(reqwest::Method::POST, "/Appointment", CREATE, &write)
            .header("Content-Type", "application/fhir+json")
            .body(body.to_string())
    };
    let body = appointment(&s, &slot, &patient.id);
    let (status, booked) = send(post(&body)).await;
    assert_eq!(status, 201, "{booked}");
    let id = booked["id"].as_str().expect("id").to_string();
    assert_eq!(booked["meta"]["versionId"], "1");
    // A retry of the same booking (GP Connect has no idempotency key) → 409.
    let (status, dup) = send(post(&body)).await;
    assert_eq!((status, spine_code(&dup)), (409, "DUPLICATE_REJECTED"));
    // The slot is no longer free.
    let (_, bundle) = send(s.request(
        reqwest::Method::GET,
        &format!("/Slot?{window}"),
        SLOTS,
        &read,
    ))
    .await;
    assert!(
        resources(&bundle, "Slot")
            .iter()
            .all(|s| s["id"] != slot["id"])
    );
    // Book errors.
    let restricted = find(&s.sim, |r| {
        r.confidentiality != Confidentiality::Unrestricted && r.registration.is_active()
    });
    let (status, b) = send(post(&appointment(&s, slots[1], &restricted.id))).await;
    assert_eq!((status, spine_code(&b)), (404, "PATIENT_NOT_FOUND"));
    let mut unknown_slot = appointment(&s, slots[1], &patient.id);
    unknown_slot["slot"] = json!([{"reference": "Slot/nope"}]);
    let (status, b) = send(post(&unknown_slot)).await;
    assert_eq!((status, spine_code(&b)), (422, "REFERENCE_NOT_FOUND"));
    let mut no_org = appointment(&s, slots[1], &patient.id);
    no_org.as_object_mut().expect("object").remove("contained");
    let (status, b) = send(post(&no_org)).await;
    assert_eq!((status, spine_code(&b)), (422, "INVALID_RESOURCE"));

    // Read.
    let (status, got) = send(s.request(
        reqwest::Method::GET,
        &format!("/Appointment/{id}"),
        READ,
        &read,
    ))
    .await;
    assert_eq!((status, &got["status"]), (200, &json!("booked")));
    let (status, b) = send(s.request(reqwest::Method::GET, "/Appointment/nope", READ, &read)).await;
    assert_eq!((status, spine_code(&b)), (404, "NO_RECORD_FOUND"));

    // Amend: only comment/description; stale version → 409.
    let put = |interaction: &str, body: &Value, version: &str| {
        s.request(
            reqwest::Method::PUT,
            &format!("/Appointment/{id}"),
            interaction,
            &write,
        )
        .header("Content-Type", "application/fhir+json")
        .header("If-Match", format!("W/\"{version}\""))
        .body(body.to_string())
    };
    let mut amended = got.clone();
    amended["comment"] = json!("Please bring your inhaler");
    let (status, a) = send(put(AMEND, &amended, "1")).await;
    assert_eq!(
        (status, &a["comment"], &a["meta"]["versionId"]),
        (200, &json!("Please bring your inhaler"), &json!("2"))
    );
    let (status, b) = send(put(AMEND, &amended, "1")).await;
    assert_eq!((status, spine_code(&b)), (409, "CONFLICT"));
    let mut moved = a.clone();
    moved["start"] = slots[1]["start"].clone();
    let (status, b) = send(put(AMEND, &moved, "2")).await;
    assert_eq!((status, spine_code(&b)), (422, "INVALID_RESOURCE"));

    // Cancel, then amending the cancelled appointment fails.
    let mut cancel = a.clone();
    cancel["status"] = json!("cancelled");
    let (status, b) = send(put(CANCEL, &cancel, "2")).await;
    assert_eq!(
        (status, spine_code(&b)),
        (422, "INVALID_RESOURCE"),
        "no reason"
    );
    cancel["extension"].as_array_mut().expect("ext").push(json!({"url": "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1", "valueString": "Patient request"}));
    let (status, c) = send(put(CANCEL, &cancel, "2")).await;
    assert_eq!((status, &c["status"]), (200, &json!("cancelled")));
    let (status, b) = send(put(AMEND, &amended, "3")).await;
    assert_eq!((status, spine_code(&b)), (422, "INVALID_RESOURCE"));
    // The slot is free again.
    let (_, bundle) = send(s.request(
        reqwest::Method::GET,
        &format!("/Slot?{window}"),
        SLOTS,
        &read,
    ))
    .await;
    assert!(
        resources(&bundle, "Slot")
            .iter()
            .any(|s| s["id"] == slot["id"])
    );

    // The patient's appointments.
    let range = format!(
        "/Patient/{}/Appointment?start=ge{first_day}&start=le{}",
        patient.id,
        first_day.plus(14)
    );
    let (status, list) =
        send(s.request(reqwest::Method::GET, &range, PATIENT_APPOINTMENTS, &read)).await;
    assert_eq!(status, 200);
    assert_eq!(resources(&list, "Appointment").len(), 1);
    let inverted = format!(
        "/Patient/{}/Appointment?start=ge{}&start=le{first_day}",
        patient.id,
        first_day.plus(3)
    );
    let (status, b) =
        send(s.request(reqwest::Method::GET, &inverted, PATIENT_APPOINTMENTS, &read)).await;
    assert_eq!((status, spine_code(&b)), (422, "INVALID_PARAMETER"));
}

// ---- Access Record HTML ($gpc.getcarerecord) ----

const CARE_RECORD: &str = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getcarerecord";
const SECTION_SYSTEM: &str = "http://fhir.nhs.net/ValueSet/gpconnect-record-section-1";
const EXCLUDED: &str = "Items excluded due to confidentiality and/or patient preferences";

impl Server {
    async fn care_record(&self, parameters: Value) -> (u16, Value) {
        let body = json!({"resourceType": "Parameters", "parameter": parameters});
        send(
            self.request(
                reqwest::Method::POST,
                "/Patient/$gpc.getcarerecord",
                CARE_RECORD,
                &claims(&self.root, "patient/*.read"),
            )
            .header("Content-Type", "application/json+fhir")
            .body(body.to_string()),
        )
        .await
    }

    /// The narrative of `code` for `patient` (asserting a 200).
    async fn view(&self, patient: &PatientRecord, code: &str, period: Option<Value>) -> View {
        let mut params = vec![legacy_nhs(&nhs_of(patient)), section(code)];
        if let Some(p) = period {
            params.push(json!({"name": "timePeriod", "valuePeriod": p}));
        }
        let (status, bundle) = self.care_record(json!(params)).await;
        assert_eq!(status, 200, "{code}: {bundle}");
        View::parse(narrative(&bundle))
    }
}

fn section(code: &str) -> Value {
    json!({"name": "recordSection", "valueCodeableConcept": {"coding": [{"system": SECTION_SYSTEM, "code": code}]}})
}

fn legacy_nhs(n: &str) -> Value {
    json!({"name": "patientNHSNumber", "valueIdentifier": {"system": "http://fhir.nhs.net/Id/nhs-number", "value": n}})
}

fn narrative(bundle: &Value) -> &str {
    let composition = resources(bundle, "Composition");
    assert_eq!(composition.len(), 1);
    composition[0]["section"][0]["text"]["div"]
        .as_str()
        .expect("a narrative div")
}

/// One table of a view, under its `<h2>` (empty for single-table views).
#[derive(Debug, Default)]
struct Block {
    title: String,
    paragraphs: Vec<String>,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

/// An Access Record HTML narrative, parsed with quick-xml (which fails on XML that is not
/// well-formed).
#[derive(Debug, Default)]
struct View {
    h1: String,
    /// Paragraphs before the first `<h2>`.
    paragraphs: Vec<String>,
    blocks: Vec<Block>,
}

impl View {
    fn parse(div: &str) -> View {
        use quick_xml::events::Event;
        assert!(
            div.starts_with("<div xmlns=\"http://www.w3.org/1999/xhtml\">"),
            "{div}"
        );
        let mut reader = quick_xml::Reader::from_str(div);
        let mut view = View::default();
        let mut stack: Vec<String> = Vec::new();
        let mut text = String::new();
        let mut roots = 0;
        loop {
            match reader.read_event().expect("well-formed XHTML") {
                Event::Start(e) => {
                    let name = String::from_utf8(e.name().as_ref().to_vec()).expect("utf-8");
                    if stack.is_empty() {
                        roots += 1;
                    }
                    match name.as_str() {
                        "h2" => view.blocks.push(Block::default()),
                        "table" if view.blocks.last().is_none_or(|b| !b.columns.is_empty()) => {
                            view.blocks.push(Block::default())
                        }
                        "tr" if stack.last().is_some_and(|p| p == "tbody") => view
                            .blocks
                            .last_mut()
                            .expect("a table")
                            .rows
                            .push(Vec::new()),
                        _ => {}
                    }
                    stack.push(name);
                    text.clear();
                }
                Event::End(_) => {
                    let name = stack.pop().expect("balanced");
                    let t = std::mem::take(&mut text);
                    let block = view.blocks.last_mut();
                    match (name.as_str(), block) {
                        ("h1", _) => view.h1 = t,
                        ("h2", Some(b)) => b.title = t,
                        ("p", Some(b)) => b.paragraphs.push(t),
                        ("p", None) => view.paragraphs.push(t),
                        ("th", Some(b)) => b.columns.push(t),
                        ("td", Some(b)) => b.rows.last_mut().expect("a row").push(t),
                        _ => {}
                    }
                }
                Event::Text(t) => text.push_str(&t.decode().expect("text")),
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref().expect("char ref") {
                        Some(c) => c.to_string(),
                        None => {
                            let name = r.decode().expect("ref");
                            quick_xml::escape::resolve_xml_entity(&name)
                                .expect("an XML entity (XHTML has no HTML entities)")
                                .to_string()
                        }
                    };
                    text.push_str(&resolved);
                }
                Event::Eof => break,
                Event::Empty(_) => {}
                other => panic!("unexpected XML event {other:?}"),
            }
        }
        assert!(stack.is_empty());
        assert_eq!(roots, 1, "one root div");
        view
    }

    fn block(&self, title: &str) -> &Block {
        self.blocks
            .iter()
            .find(|b| b.title == title)
            .unwrap_or_else(|| panic!("a {title:?} table in {self:?}"))
    }

    fn titles(&self) -> Vec<&str> {
        self.blocks.iter().map(|b| b.title.as_str()).collect()
    }

    fn all_paragraphs(&self) -> Vec<&str> {
        self.paragraphs
            .iter()
            .chain(self.blocks.iter().flat_map(|b| &b.paragraphs))
            .map(String::as_str)
            .collect()
    }
}

fn settled(s: &Server) -> impl Fn(&PatientRecord) -> bool {
    let as_of = s.sim.records().population().options().as_of;
    move |r| {
        servable(r) && r.registration.start < as_of.plus(-gpconnect::structured::IN_TRANSIT_DAYS)
    }
}

fn active_problems(r: &PatientRecord) -> usize {
    r.clinical
        .conditions
        .iter()
        .filter(|c| matches!(c.status, ConditionStatus::Active) && c.sensitivity.is_none())
        .count()
}

#[tokio::test]
async fn every_record_section_is_a_well_formed_xhtml_view() {
    let s = start().await;
    let settled = settled(&s);
    let r = find(&s.sim, |r| {
        settled(r) && !r.clinical.consultations.is_empty() && !r.clinical.medications.is_empty()
    });
    let expected = [
        ("SUM", "Summary"),
        ("ADM", "Administrative Items"),
        ("ALL", "Allergies and Adverse Reactions"),
        ("CLI", "Clinical Items"),
        ("ENC", "Encounters"),
        ("IMM", "Immunisations"),
        ("MED", "Medications"),
        ("OBS", "Observations"),
        ("PRB", "Problems and Issues"),
        ("REF", "Referrals"),
    ];
    for (code, title) in expected {
        let params = json!([legacy_nhs(&nhs_of(&r)), section(code)]);
        let (status, bundle) = s.care_record(params).await;
        assert_eq!(status, 200, "{code}");
        assert_eq!(bundle["type"], "searchset");
        for kind in ["Patient", "Organization", "Practitioner", "Device"] {
            assert_eq!(resources(&bundle, kind).len(), 1, "{code} {kind}");
        }
        let composition = resources(&bundle, "Composition")[0];
        assert_eq!(
            composition["subject"]["reference"],
            format!("Patient/{}", r.id)
        );
        let coding = &composition["section"][0]["code"]["coding"][0];
        assert_eq!(
            (coding["system"].as_str(), coding["code"].as_str()),
            (Some(SECTION_SYSTEM), Some(code))
        );
        assert_eq!(composition["section"][0]["text"]["status"], "generated");
        let view = View::parse(narrative(&bundle));
        assert_eq!(view.h1, title);
    }
    let titles = |v: View| v.titles().into_iter().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        titles(s.view(&r, "SUM", None).await),
        [
            "Active Problems and Issues",
            "Recent Acute Medication",
            "Current Repeat Medication",
            "Current Allergies and Adverse Reactions",
            "Last 3 Encounters"
        ]
    );
    assert_eq!(
        titles(s.view(&r, "PRB", None).await),
        ["Active Problems and Issues", "Inactive Problems and Issues"]
    );
    assert_eq!(
        titles(s.view(&r, "ALL", None).await),
        [
            "Current Allergies and Adverse Reactions",
            "Historical Allergies and Adverse Reactions"
        ]
    );
    assert_eq!(
        titles(s.view(&r, "MED", None).await),
        [
            "Recent Acute Medication",
            "Current Repeat Medication",
            "Past Medication"
        ]
    );
    let referrals = s.view(&r, "REF", None).await;
    assert!(
        referrals
            .all_paragraphs()
            .contains(&"No 'Referrals' data is recorded for this patient.")
    );
}

#[tokio::test]
async fn care_record_tables_hold_the_models_items_most_recent_first() {
    let s = start().await;
    let settled = settled(&s);
    let r = find(&s.sim, |r| {
        settled(r)
            && r.clinical.consultations.len() > 3
            && active_problems(r) > 0
            && r.clinical
                .medications
                .iter()
                .any(|m| m.repeat && m.status == MedicationStatus::Active)
            && !r.clinical.immunisations.is_empty()
    });
    let c = &r.clinical;
    let prb = s.view(&r, "PRB", None).await;
    assert_eq!(
        prb.block("Active Problems and Issues").rows.len(),
        active_problems(&r)
    );
    assert_eq!(
        prb.block("Active Problems and Issues").columns,
        ["Start Date", "Entry", "Significance"]
    );
    let enc = s.view(&r, "ENC", None).await;
    assert!(enc.paragraphs.contains(&"All relevant items".to_string()));
    let shown: Vec<&Consultation> = c.consultations.iter().filter(|e| !e.confidential).collect();
    assert_eq!(
        enc.blocks[0].columns,
        ["Date", "Title", "Clinician", "Details"]
    );
    assert_eq!(enc.blocks[0].rows.len(), shown.len());
    let latest = shown
        .iter()
        .max_by_key(|e| e.start)
        .expect("a consultation");
    assert_eq!(enc.blocks[0].rows[0][3], latest.text, "most recent first");
    let imm = s.view(&r, "IMM", None).await;
    assert_eq!(imm.blocks[0].rows.len(), c.immunisations.len());
    let med = s.view(&r, "MED", None).await;
    let repeats = med.block("Current Repeat Medication");
    let current_repeats: Vec<&MedicationCourse> = c
        .medications
        .iter()
        .filter(|m| m.repeat && m.status == MedicationStatus::Active)
        .collect();
    if !med
        .block("Current Repeat Medication")
        .paragraphs
        .contains(&EXCLUDED.to_string())
    {
        assert_eq!(repeats.rows.len(), current_repeats.len());
    }
    assert!(repeats.rows.iter().all(|row| row[1] == "Repeat"));
    let all = s.view(&r, "ALL", None).await;
    assert_eq!(
        all.block("Current Allergies and Adverse Reactions")
            .rows
            .len(),
        c.allergies.iter().filter(|a| a.active).count()
    );
    let sum = s.view(&r, "SUM", None).await;
    assert_eq!(sum.block("Last 3 Encounters").rows.len(), 3);
    assert_eq!(
        sum.block("Last 3 Encounters").rows[0],
        enc.blocks[0].rows[0]
    );
    assert_eq!(
        sum.block("Active Problems and Issues").rows,
        prb.block("Active Problems and Issues").rows
    );
}

#[tokio::test]
async fn care_record_parameter_errors_have_their_documented_codes() {
    let s = start().await;
    let n = nhs_of(&find(&s.sim, servable));
    let period = |start: &str, end: &str| json!({"name": "timePeriod", "valuePeriod": {"start": start, "end": end}});
    let mut cases: Vec<(Value, u16, &str)> = Vec::new();
    for agnostic in ["SUM", "ALL", "IMM"] {
        cases.push((
            json!([
                legacy_nhs(&n),
                section(agnostic),
                period("2020-01-01", "2021-01-01")
            ]),
            422,
            "INVALID_PARAMETER",
        ));
    }
    cases.extend([
        (json!([legacy_nhs(&n), section("ENC"), period("2021-01-01", "2020-01-01")]), 422, "INVALID_PARAMETER"),
        (json!([legacy_nhs(&n), section("ENC"), {"name": "timePeriod", "valuePeriod": {}}]), 422, "INVALID_PARAMETER"),
        (json!([legacy_nhs(&n), section("ENC"), period("2020-01", "2021-01-01")]), 422, "INVALID_PARAMETER"),
        (json!([legacy_nhs(&n), section("XYZ")]), 422, "INVALID_PARAMETER"),
        (json!([legacy_nhs(&n), section("prb")]), 422, "INVALID_PARAMETER"),
        (
            json!([legacy_nhs(&n), {"name": "recordSection", "valueCodeableConcept": {"coding": [{"system": "http://example.org/sections", "code": "PRB"}]}}]),
            422,
            "INVALID_PARAMETER",
        ),
        (json!([legacy_nhs(&n)]), 422, "INVALID_PARAMETER"),
        (json!([section("PRB")]), 422, "INVALID_PARAMETER"),
        (json!([legacy_nhs(&n), section("PRB"), section("ENC")]), 422, "INVALID_PARAMETER"),
        (json!([legacy_nhs(&n), section("PRB"), {"name": "includeProblems"}]), 422, "INVALID_PARAMETER"),
        (json!([legacy_nhs("9434765918"), section("PRB")]), 400, "INVALID_NHS_NUMBER"),
        (
            json!([{"name": "patientNHSNumber", "valueIdentifier": {"system": "https://example.org/id", "value": n}}, section("PRB")]),
            400,
            "INVALID_IDENTIFIER_SYSTEM",
        ),
        (json!([{"value": 1}]), 422, "INVALID_RESOURCE"),
    ]);
    for (parameters, status, code) in cases {
        let (got, body) = s.care_record(parameters.clone()).await;
        assert_eq!((got, spine_code(&body)), (status, code), "{parameters}");
        assert!(body["issue"][0]["diagnostics"].is_string());
    }
    // The 1.x NHS number system is accepted too.
    let (status, _) = s.care_record(json!([nhs(&n), section("PRB")])).await;
    assert_eq!(status, 200);
    // The request checks are the provider's: another interaction id, another verb.
    let claims = claims(&s.root, "patient/*.read");
    let body = json!({"resourceType": "Parameters", "parameter": [legacy_nhs(&n), section("PRB")]})
        .to_string();
    let (status, oo) = send(
        s.request(
            reqwest::Method::POST,
            "/Patient/$gpc.getcarerecord",
            STRUCTURED,
            &claims,
        )
        .header("Content-Type", "application/json+fhir")
        .body(body),
    )
    .await;
    assert_eq!((status, spine_code(&oo)), (400, "BAD_REQUEST"));
    let (status, _) = send(s.request(
        reqwest::Method::GET,
        "/Patient/$gpc.getcarerecord",
        CARE_RECORD,
        &claims,
    ))
    .await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn care_record_patients_are_not_found_as_for_the_structured_record() {
    let s = start().await;
    let kinds: Vec<(&str, RecordFilter)> = vec![
        (
            "deceased",
            Box::new(|r: &PatientRecord| r.death_date.is_some()),
        ),
        (
            "unverified",
            Box::new(|r: &PatientRecord| {
                r.nhs_status != NhsNumberStatus::Verified && r.registration.is_active()
            }),
        ),
        (
            "restricted",
            Box::new(|r: &PatientRecord| {
                r.confidentiality != Confidentiality::Unrestricted && r.registration.is_active()
            }),
        ),
    ];
    for (kind, pick) in kinds {
        let r = find(&s.sim, pick);
        let (status, body) = s
            .care_record(json!([legacy_nhs(&nhs_of(&r)), section("SUM")]))
            .await;
        assert_eq!(
            (status, spine_code(&body)),
            (404, "PATIENT_NOT_FOUND"),
            "{kind}"
        );
    }
    let (status, body) = s
        .care_record(json!([legacy_nhs("9690937286"), section("SUM")]))
        .await;
    assert_eq!(
        (status, spine_code(&body)),
        (404, "PATIENT_NOT_FOUND"),
        "unknown"
    );
}

#[tokio::test]
async fn a_time_period_filters_the_view_and_shows_its_date_banner() {
    let s = start().await;
    let settled = settled(&s);
    let r = find(&s.sim, |r| settled(r) && r.clinical.consultations.len() > 6);
    let mut dates: Vec<keel_sim::date::Date> = r
        .clinical
        .consultations
        .iter()
        .map(|e| e.start.date)
        .collect();
    dates.sort();
    let (from, to) = (dates[dates.len() / 3], dates[2 * dates.len() / 3]);
    let expected = r
        .clinical
        .consultations
        .iter()
        .filter(|e| !e.confidential && e.start.date >= from && e.start.date <= to)
        .count();
    let view = s
        .view(
            &r,
            "ENC",
            Some(json!({"start": from.to_string(), "end": to.to_string()})),
        )
        .await;
    assert_eq!(view.blocks.first().map_or(0, |b| b.rows.len()), expected);
    let banner = |d: keel_sim::date::Date| {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let (y, m, day) = d.civil();
        format!("{day:02}-{}-{y:04}", MONTHS[m as usize - 1])
    };
    assert!(
        view.paragraphs.contains(&format!(
            "For the period {} to {}",
            banner(from),
            banner(to)
        )),
        "{view:?}"
    );
    let view = s
        .view(&r, "ENC", Some(json!({"start": from.to_string()})))
        .await;
    assert!(
        view.paragraphs
            .contains(&format!("All data items from {}", banner(from)))
    );
    let view = s
        .view(&r, "ENC", Some(json!({"end": to.to_string()})))
        .await;
    assert!(
        view.paragraphs
            .contains(&format!("All data items until {}", banner(to)))
    );
}

#[tokio::test]
async fn sensitive_and_confidential_items_are_excluded_behind_the_banner() {
    let s = start().await;
    let settled = settled(&s);
    let sensitive = find(&s.sim, |r| {
        settled(r)
            && r.clinical
                .conditions
                .iter()
                .any(|c| c.sensitivity.is_some() && matches!(c.status, ConditionStatus::Active))
    });
    let prb = s.view(&sensitive, "PRB", None).await;
    let active = prb.block("Active Problems and Issues");
    assert!(active.paragraphs.contains(&EXCLUDED.to_string()), "{prb:?}");
    assert_eq!(active.rows.len(), active_problems(&sensitive));
    let withheld: Vec<&str> = sensitive
        .clinical
        .conditions
        .iter()
        .filter(|c| c.sensitivity.is_some())
        .map(|c| c.concept.display)
        .collect();
    let cli = s.view(&sensitive, "CLI", None).await;
    assert!(cli.paragraphs.contains(&EXCLUDED.to_string()));
    assert!(
        cli.blocks
            .iter()
            .flat_map(|b| &b.rows)
            .all(|row| !withheld.contains(&row[1].as_str()))
    );

    let confidential = find(&s.sim, |r| {
        settled(r) && r.clinical.consultations.iter().any(|e| e.confidential)
    });
    let enc = s.view(&confidential, "ENC", None).await;
    assert!(enc.paragraphs.contains(&EXCLUDED.to_string()));

    let clean = find(&s.sim, |r| {
        settled(r)
            && active_problems(r) > 0
            && r.clinical
                .conditions
                .iter()
                .all(|c| c.sensitivity.is_none())
    });
    let prb = s.view(&clean, "PRB", None).await;
    assert!(!prb.all_paragraphs().contains(&EXCLUDED));
}

#[tokio::test]
async fn names_with_apostrophes_are_escaped_in_the_xhtml() {
    let apostrophe = |p: &Practice, staff: usize| {
        p.staff
            .get(staff)
            .is_some_and(|s| s.role.is_clinical() && s.name.text().contains('\''))
    };
    let practice = records()
        .population()
        .pcn()
        .practices
        .iter()
        .position(|p| (0..p.staff.len()).any(|i| apostrophe(p, i)))
        .expect("a clinician with an apostrophe in the test PCN");
    let s = start_at(practice).await;
    let settled = settled(&s);
    let p = &s.sim.records().population().pcn().practices[practice];
    let seen = |e: &Consultation| !e.confidential && apostrophe(p, e.clinician);
    let r = find_at(&s.sim, practice, |r| {
        settled(r) && r.clinical.consultations.iter().any(seen)
    });
    let name = r
        .clinical
        .consultations
        .iter()
        .find(|e| seen(e))
        .map(|e| p.staff[e.clinician].name.text())
        .expect("a clinician with an apostrophe");
    let (_, bundle) = s
        .care_record(json!([legacy_nhs(&nhs_of(&r)), section("ENC")]))
        .await;
    let div = narrative(&bundle);
    assert!(!div.contains(&name), "the raw name must not appear");
    assert!(div.contains(&name.replace('\'', "&#39;")));
    let view = View::parse(div);
    assert!(view.blocks[0].rows.iter().any(|row| row[2] == name));
}

#[tokio::test]
async fn a_record_in_transit_shows_only_items_since_registration_under_the_transfer_banner() {
    let s = start().await;
    let as_of = s.sim.records().population().options().as_of;
    let r = find(&s.sim, |r| {
        servable(r) && r.registration.start >= as_of.plus(-gpconnect::structured::IN_TRANSIT_DAYS)
    });
    let view = s.view(&r, "ENC", None).await;
    assert!(view.paragraphs.iter().any(|p| p
        .starts_with("Patient record transfer from previous GP Practice not yet complete; any information recorded before ")));
    let since = r
        .clinical
        .consultations
        .iter()
        .filter(|e| !e.confidential && e.start.date >= r.registration.start)
        .count();
    assert_eq!(view.blocks.first().map_or(0, |b| b.rows.len()), since);
}

// ---- What a provider offers (metadata) and capabilities not enabled ----

const METADATA: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1";

#[tokio::test]
async fn the_capability_statement_lists_what_is_enabled_and_the_rest_is_access_denied() {
    let s = start().await;
    let org = claims(&s.root, "organization/*.read");
    let (status, statement) =
        send(s.request(reqwest::Method::GET, "/metadata", METADATA, &org)).await;
    assert_eq!(status, 200);
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    let types = |st: &Value| -> Vec<String> {
        st["rest"][0]["resource"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["type"].as_str().map(str::to_string))
            .collect()
    };
    assert!(types(&statement).contains(&"Slot".to_string()));

    s.sim.disable_capability(
        0,
        keel_sim::gpconnect::capabilities::Capability::AppointmentManagement,
    );
    let (_, statement) = send(s.request(reqwest::Method::GET, "/metadata", METADATA, &org)).await;
    assert!(!types(&statement).contains(&"Slot".to_string()));
    assert_eq!(
        statement["rest"][0]["operation"][0]["name"],
        "gpc.getstructuredrecord"
    );

    let read = claims(&s.root, "patient/*.read");
    let first_day = s.sim.records().population().appointment_book(0).first_day;
    let window = format!(
        "start=ge{first_day}&end=le{}&status=free&_include=Slot:schedule",
        first_day.plus(3)
    );
    let (status, body) = send(s.request(
        reqwest::Method::GET,
        &format!("/Slot?{window}"),
        SLOTS,
        &read,
    ))
    .await;
    assert_eq!((status, spine_code(&body)), (403, "ACCESS DENIED"));

    // The wrong scope for metadata is refused like any other claim mismatch.
    let (status, body) = send(s.request(reqwest::Method::GET, "/metadata", METADATA, &read)).await;
    assert_eq!((status, spine_code(&body)), (400, "BAD_REQUEST"));
}
