//! Contract tests of the TPP-style supplier API simulator over real HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use keel_sim::faults::{FaultConfig, FaultHandle};
use keel_sim::model::{CodingStyle, GpSystem, LegacyScheme, PatientRecord, RecordRole};
use keel_sim::records::{PracticeRecords, RecordRef};
use keel_sim::tpp::{self, TppSimulator, error, session};
use keel_sim::{Options, Population};
use serde_json::{Value, json};

const STANDARD: &str = session::STANDARD_SESSION;
const SENSITIVE: &str = session::SENSITIVE_SESSION;

struct Fixture {
    records: Arc<PracticeRecords>,
    /// A TPP-style and an EMIS-style practice's ODS codes.
    tpp_unit: String,
    emis_unit: String,
}

fn fixture() -> Fixture {
    let records = Arc::new(PracticeRecords::new(Population::generate(Options {
        patients: 2_500,
        practices: 4,
        ..Options::default()
    })));
    let pcn = records.population().pcn();
    let unit = |system| {
        pcn.practices
            .iter()
            .find(|p| p.system == system)
            .map(|p| p.ods.as_str().to_string())
            .expect("a practice of each system")
    };
    Fixture {
        tpp_unit: unit(GpSystem::TppStyle),
        emis_unit: unit(GpSystem::EmisStyle),
        records,
    }
}

impl Fixture {
    fn practice(&self) -> usize {
        let pcn = self.records.population().pcn();
        pcn.practices
            .iter()
            .position(|p| p.ods.as_str() == self.tpp_unit)
            .expect("unit")
    }

    /// The first record at the TPP-style unit satisfying `wanted`, with its RowIdentifier.
    fn patient(&self, wanted: impl Fn(&PatientRecord) -> bool) -> (u64, PatientRecord) {
        self.records
            .at_practice(self.practice())
            .find_map(|at| {
                let record = self.records.record(at);
                wanted(&record).then(|| (tpp::rows::patient_row(at), record))
            })
            .expect("a matching patient")
    }

    async fn start(&self, faults: FaultHandle) -> Api {
        let sim = TppSimulator::new(self.records.clone());
        let (addr, _h) = tpp::serve(sim, SocketAddr::from(([127, 0, 0, 1], 0)), faults)
            .await
            .expect("bind");
        Api {
            root: format!("http://{addr}"),
            base: format!("http://{addr}{}/{}", tpp::BASE_PATH, self.tpp_unit),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client"),
        }
    }
}

struct Api {
    root: String,
    /// `.../units/{tpp unit}`.
    base: String,
    client: reqwest::Client,
}

impl Api {
    fn signed(&self, req: reqwest::RequestBuilder, session: &str) -> reqwest::RequestBuilder {
        req.header(session::APPLICATION_HEADER, session::APPLICATION_ID)
            .header(session::SESSION_HEADER, session)
    }

    async fn read(resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body: {text}"));
        (status, body)
    }

    async fn get_as(&self, path: &str, session: &str) -> (u16, Value) {
        let req = self.client.get(format!("{}{path}", self.base));
        Api::read(self.signed(req, session).send().await.expect("send")).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(path, STANDARD).await
    }

    async fn post_raw(&self, path: &str, body: &str) -> Result<(u16, Value), reqwest::Error> {
        let req = self.client.post(format!("{}{path}", self.base));
        let resp = self
            .signed(req, STANDARD)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        Ok(Api::read(resp).await)
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, &body.to_string()).await.expect("send")
    }
}

fn error_code(body: &Value) -> &str {
    body.pointer("/Error/Code")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn events(body: &Value) -> &Vec<Value> {
    body["Events"].as_array().expect("Events")
}

fn journal_size(r: &PatientRecord, with_confidential: bool) -> usize {
    let c = &r.clinical;
    let hidden = |confidential: bool| usize::from(confidential && !with_confidential);
    c.consultations.len()
        - c.consultations
            .iter()
            .map(|x| hidden(x.confidential))
            .sum::<usize>()
        + c.conditions.len()
        - c.conditions
            .iter()
            .map(|x| hidden(x.sensitivity.is_some()))
            .sum::<usize>()
        + c.observations.len()
        - c.observations
            .iter()
            .map(|x| hidden(x.sensitivity.is_some()))
            .sum::<usize>()
        + c.medications.len()
        + c.medications.iter().map(|m| m.issues.len()).sum::<usize>()
        + c.allergies.len()
        + c.immunisations.len()
}

fn active_with_nhs(r: &PatientRecord) -> bool {
    r.role == RecordRole::Primary && r.registration.is_active() && r.nhs_number.is_some()
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_401_in_the_api_shape() {
    let f = fixture();
    let api = f.start(FaultHandle::default()).await;
    let (row, _) = f.patient(active_with_nhs);
    let url = format!("{}/patients/{row}", api.base);
    let cases = [
        (None, Some(STANDARD)),
        (Some("SOME-OTHER-APP"), Some(STANDARD)),
        (Some(session::APPLICATION_ID), None),
        (Some(session::APPLICATION_ID), Some("expired-token")),
    ];
    for (app, token) in cases {
        let mut req = api.client.get(&url);
        if let Some(app) = app {
            req = req.header(session::APPLICATION_HEADER, app);
        }
        if let Some(token) = token {
            req = req.header(session::SESSION_HEADER, token);
        }
        let (status, body) = Api::read(req.send().await.expect("send")).await;
        assert_eq!(status, 401, "{app:?} {token:?}");
        assert_eq!(error_code(&body), "AuthenticationFailed");
        assert!(
            body["Error"]["Message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let (status, _) = api.get(&format!("/patients/{row}")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unknown_units_patients_routes_and_methods_answer_in_the_api_shape() {
    let f = fixture();
    let api = f.start(FaultHandle::default()).await;
    let (row, _) = f.patient(active_with_nhs);
    let emis_base = api.base.replace(&f.tpp_unit, &f.emis_unit);
    for unit_base in [emis_base, api.base.replace(&f.tpp_unit, "Y00000")] {
        let req = api.client.get(format!("{unit_base}/patients/{row}"));
        let (status, body) = Api::read(api.signed(req, STANDARD).send().await.expect("send")).await;
        assert_eq!((status, error_code(&body)), (404, "UnitNotFound"));
    }
    // A record at an EMIS-style practice is not at this unit.
    let emis_practice = f
        .records
        .population()
        .pcn()
        .practices
        .iter()
        .position(|p| p.ods.as_str() == f.emis_unit)
        .expect("emis practice");
    let emis_row = tpp::rows::patient_row(
        f.records
            .at_practice(emis_practice)
            .next()
            .expect("an EMIS-style record"),
    );
    for path in [
        format!("/patients/{emis_row}"),
        "/patients/999999999".to_string(),
        "/patients/0/journal".to_string(),
    ] {
        let (status, body) = api.get(&path).await;
        assert_eq!(
            (status, error_code(&body)),
            (404, "PatientNotFound"),
            "{path}"
        );
    }
    let (status, body) = api.get("/patients/abc/journal").await;
    assert_eq!((status, error_code(&body)), (400, "InvalidRequest"));
    let (status, body) = api.get(&format!("/patients/{row}/nothing-here")).await;
    assert_eq!((status, error_code(&body)), (404, "NoSuchEndpoint"));
    let (status, body) = api
        .post(&format!("/patients/{row}/medication"), &json!({}))
        .await;
    assert_eq!((status, error_code(&body)), (405, "MethodNotAllowed"));
    let (status, body) = api.get(&format!("/patients/{row}/medication?x=1")).await;
    assert_eq!((status, error_code(&body)), (400, "InvalidRequest"));
    let (status, body) = api.get(&format!("/patients/{row}/documents/12")).await;
    assert_eq!((status, error_code(&body)), (404, "ItemNotFound"));
    let resp = api
        .client
        .get(format!("{}/elsewhere", api.root))
        .send()
        .await
        .expect("send");
    let (status, body) = Api::read(resp).await;
    assert_eq!((status, error_code(&body)), (404, "NoSuchEndpoint"));
}

#[tokio::test]
async fn search_by_nhs_number_and_by_surname_with_date_of_birth() {
    let f = fixture();
    let api = f.start(FaultHandle::default()).await;
    let (row, record) = f.patient(active_with_nhs);
    let nhs = record
        .nhs_number
        .as_ref()
        .expect("nhs")
        .as_str()
        .to_string();

    let (status, body) = api.get(&format!("/patients?nhsNumber={nhs}")).await;
    assert_eq!(status, 200);
    let found = body["Patients"].as_array().expect("Patients");
    assert_eq!(found[0]["PatientRowIdentifier"], row);
    assert_eq!(found[0]["NhsNumber"], nhs.as_str());
    assert_eq!(found[0]["Surname"], record.name.family.as_str());
    assert_eq!(found[0]["RegistrationStatus"], "Registered");

    let surname = record.name.family.to_uppercase();
    let (status, body) = api
        .get(&format!(
            "/patients?surname={surname}&dateOfBirth={}",
            record.birth_date
        ))
        .await;
    assert_eq!(status, 200);
    let rows: Vec<&Value> = body["Patients"]
        .as_array()
        .expect("Patients")
        .iter()
        .map(|p| &p["PatientRowIdentifier"])
        .collect();
    assert!(rows.contains(&&json!(row)), "{body}");

    let (status, body) = api
        .get(&format!(
            "/patients?surname={surname}&dateOfBirth=1800-01-01"
        ))
        .await;
    assert_eq!((status, body), (200, json!({"Patients": []})));
    // A valid NHS number nobody at this unit holds.
    let (status, body) = api.get("/patients?nhsNumber=9000000009").await;
    assert_eq!((status, body), (200, json!({"Patients": []})));

    for bad in [
        "",
        "?nhsNumber=9000000008",
        "?nhsNumber=12345",
        &format!("?nhsNumber={nhs}&surname=X"),
        "?surname=Smith",
        "?surname=Smith&dateOfBirth=1980-02-30",
        "?postcode=LS1",
        &format!("?nhsNumber={nhs}&nhsNumber={nhs}"),
    ] {
        let (status, body) = api.get(&format!("/patients{bad}")).await;
        assert_eq!(
            (status, error_code(&body)),
            (400, "InvalidRequest"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn demographics_render_the_generated_record() {
    let f = fixture();
    let api = f.start(FaultHandle::default()).await;
    let (row, r) = f.patient(active_with_nhs);
    let (status, body) = api.get(&format!("/patients/{row}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["PatientRowIdentifier"], row);
    assert_eq!(body["OrganisationUnit"], f.tpp_unit.as_str());
    assert_eq!(body["LocalPatientNumber"], r.local_number.as_str());
    assert_eq!(
        body["NhsNumber"],
        r.nhs_number.as_ref().map(|n| n.as_str()).expect("nhs")
    );
    assert_eq!(body["NhsNumberStatus"], r.nhs_status.code());
    assert_eq!(body["Surname"], r.name.family.as_str());
    assert_eq!(body["Forenames"], json!(r.name.given));
    assert_eq!(body["DateOfBirth"], r.birth_date.to_string());
    assert_eq!(body["Address"]["Postcode"], r.address.postcode.as_str());
    assert_eq!(body["Registration"]["Status"], "Registered");
    assert_eq!(
        body["Registration"]["StartDate"],
        r.registration.start.to_string()
    );

    let (_, ended) = f.patient(|r| r.registration.end.is_some());
    let ended_row = f
        .records
        .at_practice(f.practice())
        .find(|at| f.records.record(*at).id == ended.id)
        .map(tpp::rows::patient_row)
        .expect("row");
    let (status, body) = api.get(&format!("/patients/{ended_row}")).await;
    assert_eq!(status, 200);
    assert!(body["Registration"]["EndDate"].is_string());
    assert!(matches!(
        body["Registration"]["Status"].as_str(),
        Some("Deregistered" | "Deceased")
    ));
}

fn legacy_beside(r: &PatientRecord) -> bool {
    r.clinical.conditions.iter().any(|c| {
        c.sensitivity.is_none()
            && c.coding == CodingStyle::LegacyBeside(LegacyScheme::Ctv3)
            && c.concept.ctv3.is_some()
    })
}

#[tokio::test]
async fn the_journal_lists_every_event_ctv3_first_with_snomed_beside() {
    let f = fixture();
    let api = f.start(FaultHandle::default()).await;
    let (row, r) = f.patient(|r| {
        legacy_beside(r) && r.clinical.medications.iter().any(|m| !m.issues.is_empty())
    });
    let (status, body) = api
        .get_as(&format!("/patients/{row}/journal"), SENSITIVE)
        .await;
    assert_eq!(status, 200);
    let list = events(&body);
    assert_eq!(list.len(), journal_size(&r, true));
    assert_eq!(body["EventCount"], list.len());
    assert_eq!(body["WithheldConfidentialEvents"], 0);
    // Oldest first; RowIdentifiers unique and belonging to this patient.
    let dates: Vec<&str> = list
        .iter()
        .map(|e| e["Date"].as_str().expect("Date"))
        .collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]));
    let mut rows: Vec<u64> = list
        .iter()
        .map(|e| e["RowIdentifier"].as_u64().expect("row"))
        .collect();
    rows.sort_unstable();
    rows.dedup();
    assert_eq!(rows.len(), list.len());
    assert!(rows.iter().all(|r| tpp::rows::patient_of_item(*r) == row));

    let c = r
        .clinical
        .conditions
        .iter()
        .find(|c| {
            c.sensitivity.is_none()
                && c.coding == CodingStyle::LegacyBeside(LegacyScheme::Ctv3)
                && c.concept.ctv3.is_some()
        })
        .expect("a CTV3 + SNOMED problem");
    let problem = list
        .iter()
        .find(|e| e["EventType"] == "Problem" && e["Codes"][1]["Code"] == c.concept.snomed)
        .expect("the problem in the journal");
    let (ctv3, term) = c.concept.ctv3.expect("ctv3");
    assert_eq!(
        problem["Codes"][0],
        json!({"Scheme": "CTV3", "Code": ctv3, "Term": term})
    );
    assert_eq!(problem["Codes"][1]["Scheme"], "SNOMED");
    assert!(matches!(
        problem["ProblemStatus"].as_str(),
        Some("Active" | "Past" | "Significant past")
    ));
    let issue = list
        .iter()
        .find(|e| e["EventType"] == "Issue")
        .expect("an issue");
    assert!(
        issue["Drug"]["Scheme"]
            .as_str()
            .is_some_and(|s| s.starts_with("dm+d"))
    );
    assert!(issue["MedicationRowIdentifier"].is_u64());
}

#[tokio::test]
async fn the_journal_filters_by_date_range_and_event_type() {
    let f = fixture();
    let api = f.start(FaultHandle::default()).await;
    let (row, _) = f.patient(|r| r.clinical.entry_count() > 100 && legacy_beside(r));
    let (_, all) = api.get(&format!("/patients/{row}/journal")).await;
    let all = events(&all).clone();
    let (from, to) = ("2015-01-01", "2019-12-31");
    let (status, body) = api
        .get(&format!(
            "/patients/{row}/journal?from={from}&to={to}&eventType=Problem,CodedEntry"
        ))
        .await;
    assert_eq!(status, 200);
    let expected: Vec<&Value> = all
        .iter()
        .filter(|e| {
            let d = e["Date"].as_str().expect("date");
            (from..=to).contains(&d)
                && matches!(e["EventType"].as_str(), Some("Problem" | "CodedEntry"))
        })
        .collect();
    let got: Vec<&Value> = events(&body).iter().collect();
    assert_eq!(got, expected);
    let (_, repeated) = api
        .get(&format!(
            "/patients/{row}/journal?from={from}&to={to}&eventType=Problem&eventType=CodedEntry"
        ))
        .await;
    assert_eq!(events(&repeated).len(), expected.len());
    let (_, meds) = api
        .get(&format!("/patients/{row}/journal?eventType=Issue"))
        .await;
    assert!(events(&meds).iter().all(|e| e["EventType"] == "Issue"));

    for bad in [
        "from=2019-13-01",
        "to=yesterday",
        "from=2020-01-01&to=2019-01-01",
        "eventType=Letter",
        "sort=desc",
        "from=2019-01-01&from=2019-01-02",
    ] {
        let (status, body) = api.get(&format!("/patients/{row}/journal?{bad}")).await;
        assert_eq!(
            (status, error_code(&body)),
            (400, "InvalidRequest"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn confidential_entries_are_withheld_unless_the_session_may_see_sensitive_data() {
    let f = fixture();
    let api = f.start(FaultHandle::default()).await;
    let (row, r) = f.patient(|r| {
        r.clinical
            .conditions
            .iter()
            .any(|c| c.sensitivity.is_some())
            || r.clinical.consultations.iter().any(|c| c.confidential)
    });
    let hidden = journal_size(&r, true) - journal_size(&r, false);
    assert!(hidden > 0);

    let (_, standard) = api
        .get_as(&format!("/patients/{row}/journal"), STANDARD)
        .await;
    assert_eq!(events(&standard).len(), journal_size(&r, false));
    assert_eq!(standard["WithheldConfidentialEvents"], hidden);
    assert!(events(&standard).iter().all(|e| e["Confidential"] == false));

    let (_, sensitive) = api
        .get_as(&format!("/patients/{row}/journal"), SENSITIVE)
        .await;
    assert_eq!(events(&sensitive).len(), journal_size(&r, true));
    assert_eq!(sensitive["WithheldConfidentialEvents"], 0);
    let flagged = events(&sensitive)
        .iter()
        .filter(|e| e["Confidential"] == true)
        .count();
    assert_eq!(flagged, hidden);
}

#[tokio::test]
async fn medication_appointments_and_tasks_use_the_supplier_vocabulary() {
    let f = fixture();
    let api = f.start(FaultHandle::default()).await;
    let (row, r) = f.patient(|r| {
        r.clinical.medications.len() > 3
            && !r.clinical.appointments.is_empty()
            && !r.clinical.tasks.is_empty()
    });
    let (status, body) = api.get(&format!("/patients/{row}/medication")).await;
    assert_eq!(status, 200);
    let meds = body["Medication"].as_array().expect("Medication");
    assert_eq!(meds.len(), r.clinical.medications.len());
    for (m, course) in meds.iter().zip(&r.clinical.medications) {
        assert_eq!(m["Drug"]["Code"], course.drug.code());
        assert_eq!(
            m["Issues"].as_array().expect("Issues").len(),
            course.issues.len()
        );
        match m["Status"].as_str() {
            Some("Current") => assert!(m.get("EndDate").is_none()),
            Some("Ended") => assert!(m["EndDate"].is_string()),
            Some("Discontinued") => {
                assert!(m["EndDate"].is_string());
                assert_eq!(m["DiscontinuationReason"], "Stopped by clinician");
            }
            other => panic!("status {other:?}"),
        }
    }
    let (status, body) = api.get(&format!("/patients/{row}/appointments")).await;
    assert_eq!(status, 200);
    let appts = body["Appointments"].as_array().expect("Appointments");
    assert_eq!(appts.len(), r.clinical.appointments.len());
    assert!(appts.iter().all(|a| matches!(
        a["Status"].as_str(),
        Some("Booked" | "Attended" | "DNA" | "Cancelled")
    )));
    let (status, body) = api.get(&format!("/patients/{row}/tasks")).await;
    assert_eq!(status, 200);
    let tasks = body["Tasks"].as_array().expect("Tasks");
    assert_eq!(tasks.len(), r.clinical.tasks.len());
    assert!(tasks.iter().all(|t| matches!(
        t["Status"].as_str(),
        Some("Outstanding" | "In progress" | "Completed" | "Cancelled")
    )));
    let (status, body) = api.get(&format!("/patients/{row}/tasks?owner=1")).await;
    assert_eq!((status, error_code(&body)), (400, "InvalidRequest"));
}

fn consultation_body(reference: &str) -> Value {
    json!({
        "ExternalReference": reference,
        "Date": "2026-01-05T10:30",
        "ConsultationType": "Telephone",
        "Text": "Reviewed blood pressure; home readings fine.",
        "CodedItems": [
            {"Scheme": "CTV3", "Code": "G20..", "Text": "long-standing"},
            {"Scheme": "SNOMED", "Code": "59621000"}
        ]
    })
}

#[tokio::test]
async fn every_write_is_visible_in_later_reads() {
    let f = fixture();
    let api = f.start(FaultHandle::default()).await;
    let (row, r) = f.patient(active_with_nhs);
    let before = journal_size(&r, false);

    let (status, created) = api
        .post(
            &format!("/patients/{row}/journal/consultations"),
            &consultation_body("ext-consult-1"),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let consultation = created["RowIdentifier"].as_u64().expect("row");
    assert_eq!(tpp::rows::patient_of_item(consultation), row);
    assert_eq!(
        created["CodedItemRowIdentifiers"]
            .as_array()
            .expect("items")
            .len(),
        2
    );

    let (status, entry) = api
        .post(
            &format!("/patients/{row}/journal/coded-entries"),
            &json!({"ExternalReference": "ext-bp-1", "Date": "2026-01-05", "Scheme": "SNOMED", "Code": "1000731000000107", "Value": 48, "Unit": "mmol/mol"}),
        )
        .await;
    assert_eq!(status, 201, "{entry}");

    let content = "JVBERi0xLjQK"; // "%PDF-1.4\n"
    let (status, doc) = api
        .post(
            &format!("/patients/{row}/documents"),
            &json!({"ExternalReference": "ext-doc-1", "Date": "2026-01-04", "Title": "Discharge letter", "MimeType": "application/pdf", "Content": content}),
        )
        .await;
    assert_eq!(status, 201, "{doc}");
    let doc_row = doc["RowIdentifier"].as_u64().expect("row");

    let (status, task) = api
        .post(
            &format!("/patients/{row}/tasks"),
            &json!({"ExternalReference": "ext-task-1", "Date": "2026-01-05T11:00", "Description": "Book annual review", "Urgent": true}),
        )
        .await;
    assert_eq!(status, 201, "{task}");

    let (_, journal) = api.get(&format!("/patients/{row}/journal")).await;
    let list = events(&journal);
    assert_eq!(
        list.len(),
        before + 5,
        "consultation, its 2 items, the entry, the document"
    );
    let written = list
        .iter()
        .find(|e| e["RowIdentifier"] == consultation)
        .expect("consultation");
    assert_eq!(written["EventType"], "Consultation");
    assert_eq!(written["ConsultationType"], "Telephone");
    assert_eq!(written["Time"], "10:30");
    assert_eq!(written["ExternalReference"], "ext-consult-1");
    assert_eq!(written["EnteredBy"], "Standard User");
    let items: Vec<&Value> = list
        .iter()
        .filter(|e| e["ConsultationRowIdentifier"] == consultation)
        .collect();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0]["Codes"][0]["Scheme"], "CTV3",
        "a CTV3 item is filed with SNOMED beside"
    );
    assert_eq!(
        items[0]["Codes"][1],
        json!({"Scheme": "SNOMED", "Code": "59621000", "Term": "Essential hypertension"})
    );
    assert_eq!(
        items[1]["Codes"].as_array().expect("codes").len(),
        1,
        "a SNOMED item stays SNOMED"
    );
    let coded = list
        .iter()
        .find(|e| e["ExternalReference"] == "ext-bp-1")
        .expect("entry");
    assert_eq!(coded["Value"], json!({"Number": 48, "Unit": "mmol/mol"}));
    let document = list
        .iter()
        .find(|e| e["EventType"] == "Document")
        .expect("document");
    assert_eq!(document["SizeBytes"], 9);

    let (status, read) = api
        .get(&format!("/patients/{row}/documents/{doc_row}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(read["Content"], content);
    assert_eq!(read["Title"], "Discharge letter");

    let (_, tasks) = api
        .get(&format!(
            "/patients/{row}/tasks?externalReference=ext-task-1"
        ))
        .await;
    let tasks = tasks["Tasks"].as_array().expect("Tasks");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["Status"], "Outstanding");
    assert_eq!(tasks[0]["Urgent"], true);
    let (_, all_tasks) = api.get(&format!("/patients/{row}/tasks")).await;
    assert_eq!(
        all_tasks["Tasks"].as_array().expect("Tasks").len(),
        r.clinical.tasks.len() + 1
    );
}

#[tokio::test]
async fn invalid_writes_are_rejected_in_the_api_shape_and_file_nothing() {
    let f = fixture();
    let api = f.start(FaultHandle::default()).await;
    let (row, r) = f.patient(active_with_nhs);
    let consult = format!("/patients/{row}/journal/consultations");
    let coded = format!("/patients/{row}/journal/coded-entries");
    let docs = format!("/patients/{row}/documents");
    let tasks = format!("/patients/{row}/tasks");
    let not_in_dictionary = format!(
        "1234567{}",
        keel_sim::codes::verhoeff_check_digit("1234567")
    );
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = consultation_body("ext-bad");
        change(&mut body);
        body.to_string()
    };
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (&consult, "{not json".into(), 400, "MalformedRequest"),
        (&consult, "[1,2]".into(), 400, "MalformedRequest"),
        (&consult, "".into(), 400, "MalformedRequest"),
        (&consult, with(&|b| { b.as_object_mut().map(|o| o.remove("ExternalReference")); }), 422, "MissingField"),
        (&consult, with(&|b| b["ExternalReference"] = json!("  ")), 422, "MissingField"),
        (&consult, with(&|b| b["ExternalReference"] = json!("x".repeat(101))), 422, "InvalidValue"),
        (&consult, with(&|b| { b.as_object_mut().map(|o| o.remove("Text")); }), 422, "MissingField"),
        (&consult, with(&|b| b["Date"] = json!("2026-02-30")), 422, "InvalidValue"),
        (&consult, with(&|b| b["Date"] = json!("2026-01-05T25:00")), 422, "InvalidValue"),
        (&consult, with(&|b| b["ConsultationType"] = json!("Video")), 422, "InvalidValue"),
        (&consult, with(&|b| b["Confidential"] = json!("yes")), 422, "InvalidValue"),
        (&consult, with(&|b| b["Clinician"] = json!("Dr Who")), 422, "UnknownField"),
        (&consult, with(&|b| b["CodedItems"][1]["Scheme"] = json!("ICD10")), 422, "UnknownCodeScheme"),
        (&consult, with(&|b| b["CodedItems"][1]["Code"] = json!("12345")), 422, "InvalidValue"),
        (&consult, with(&|b| b["CodedItems"][1]["Code"] = json!(not_in_dictionary)), 422, "UnknownCode"),
        (&consult, with(&|b| b["CodedItems"][0]["Code"] = json!("Zz999")), 422, "UnknownCode"),
        (&consult, with(&|b| b["CodedItems"][0]["Value"] = json!("high")), 422, "InvalidValue"),
        (&consult, with(&|b| b["CodedItems"][0]["Value"] = json!(5)), 422, "MissingField"),
        (&consult, with(&|b| b["CodedItems"] = json!({})), 422, "InvalidValue"),
        (&coded, json!({"ExternalReference": "e", "Date": "2026-01-05", "Scheme": "READ2", "Code": "G20.."}).to_string(), 422, "UnknownCodeScheme"),
        (&coded, json!({"ExternalReference": "e", "Date": "2026-01-05", "Scheme": "CTV3"}).to_string(), 422, "MissingField"),
        (&docs, json!({"ExternalReference": "e", "Date": "2026-01-05", "Title": "t", "MimeType": "application/pdf", "Content": "not base64!"}).to_string(), 422, "InvalidValue"),
        (&docs, json!({"ExternalReference": "e", "Date": "2026-01-05", "Title": "t", "MimeType": "pdf", "Content": "AAAA"}).to_string(), 422, "InvalidValue"),
        (&docs, json!({"ExternalReference": "e", "Date": "2026-01-05", "MimeType": "application/pdf", "Content": "AAAA"}).to_string(), 422, "MissingField"),
        (&tasks, json!({"ExternalReference": "e", "Date": "2026-01-05"}).to_string(), 422, "MissingField"),
        (&tasks, json!({"ExternalReference": "e", "Date": "2026-01-05", "Description": "d", "Urgent": 1}).to_string(), 422, "InvalidValue"),
    ];
    for (path, body, status, code) in &cases {
        let (got, answer) = api.post_raw(path, body).await.expect("send");
        assert_eq!(
            (got, error_code(&answer)),
            (*status, *code),
            "{path} {body}: {answer}"
        );
        assert!(
            answer["Error"]["Message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // Over the document size limit: 413 in the API's shape.
    let big = "A".repeat(8 * 1024 * 1024 + 4);
    let body = format!(
        r#"{{"ExternalReference":"e","Date":"2026-01-05","Title":"t","MimeType":"text/plain","Content":"{big}"}}"#
    );
    let (status, answer) = api.post_raw(&docs, &body).await.expect("send");
    assert_eq!((status, error_code(&answer)), (413, "RequestTooLarge"));

    let (_, journal) = api.get(&format!("/patients/{row}/journal")).await;
    assert_eq!(
        events(&journal).len(),
        journal_size(&r, false),
        "nothing half-written"
    );
    let (_, t) = api.get(&format!("/patients/{row}/tasks")).await;
    assert_eq!(
        t["Tasks"].as_array().expect("Tasks").len(),
        r.clinical.tasks.len()
    );
}

async fn set_faults(api: &Api, config: &FaultConfig) {
    let resp = api
        .client
        .put(format!("{}/_admin/faults", api.root))
        .body(config.to_json().to_string())
        .send()
        .await
        .expect("admin");
    assert_eq!(resp.status().as_u16(), 200);
}

fn drop_every_response() -> FaultConfig {
    FaultConfig {
        drop_response_after_commit: 1.0,
        ..FaultConfig::default()
    }
}

async fn entries_with(api: &Api, row: u64, reference: &str) -> usize {
    let (status, body) = api
        .get(&format!(
            "/patients/{row}/journal?externalReference={reference}"
        ))
        .await;
    assert_eq!(status, 200);
    events(&body).len()
}

#[tokio::test]
async fn a_naive_retry_after_a_lost_response_files_a_duplicate() {
    let f = fixture();
    let api = f.start(FaultHandle::default()).await;
    let (row, _) = f.patient(active_with_nhs);
    let path = format!("/patients/{row}/journal/consultations");
    let body = consultation_body("ext-naive").to_string();

    set_faults(&api, &drop_every_response()).await;
    assert!(
        api.post_raw(&path, &body).await.is_err(),
        "the response is lost"
    );
    // The client retries blindly; this response is lost too, then one gets through.
    assert!(api.post_raw(&path, &body).await.is_err());
    set_faults(&api, &FaultConfig::default()).await;
    let (status, _) = api.post_raw(&path, &body).await.expect("send");
    assert_eq!(status, 201);

    assert_eq!(
        entries_with(&api, row, "ext-naive").await,
        3,
        "no client request id: three copies"
    );
}

#[tokio::test]
async fn checking_the_external_reference_before_retrying_files_exactly_one() {
    let f = fixture();
    let api = f.start(FaultHandle::default()).await;
    let (row, _) = f.patient(active_with_nhs);
    let path = format!("/patients/{row}/journal/consultations");
    let body = consultation_body("ext-careful").to_string();

    set_faults(&api, &drop_every_response()).await;
    assert!(
        api.post_raw(&path, &body).await.is_err(),
        "the response is lost"
    );
    set_faults(&api, &FaultConfig::default()).await;

    // Check, then decide: the write landed, so the client does not retry.
    if entries_with(&api, row, "ext-careful").await == 0 {
        let (status, _) = api.post_raw(&path, &body).await.expect("send");
        assert_eq!(status, 201);
    }
    assert_eq!(entries_with(&api, row, "ext-careful").await, 1);

    // A write that never reached the server (outage) is found missing and then retried.
    set_faults(
        &api,
        &FaultConfig {
            outage: true,
            ..FaultConfig::default()
        },
    )
    .await;
    let other = consultation_body("ext-outage").to_string();
    let (status, _) = api.post_raw(&path, &other).await.expect("send");
    assert_eq!(status, 503);
    set_faults(&api, &FaultConfig::default()).await;
    assert_eq!(entries_with(&api, row, "ext-outage").await, 0);
    let (status, _) = api.post_raw(&path, &other).await.expect("send");
    assert_eq!(status, 201);
    assert_eq!(entries_with(&api, row, "ext-outage").await, 1);
}

#[tokio::test]
async fn injected_errors_can_take_the_api_error_shape() {
    let f = fixture();
    let api = f
        .start(FaultHandle::new(FaultConfig {
            error_rate: 1.0,
            error_body: Some(error::error_body("ServiceUnavailable", "Try again later")),
            ..FaultConfig::default()
        }))
        .await;
    let (row, _) = f.patient(active_with_nhs);
    let (status, body) = api.get(&format!("/patients/{row}")).await;
    assert_eq!((status, error_code(&body)), (503, "ServiceUnavailable"));
}

#[test]
fn patient_row_identifiers_follow_the_documented_derivation() {
    let at = RecordRef {
        person: 1234,
        record: 1,
    };
    assert_eq!(tpp::rows::patient_row(at), 12_342);
    assert_eq!(tpp::rows::record_of(12_342), Some(at));
}
