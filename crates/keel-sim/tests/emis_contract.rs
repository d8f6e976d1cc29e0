//! Contract tests of the EMIS-style supplier API simulator over real HTTP.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use keel_sim::emis::guid::Guid;
use keel_sim::emis::request::{Element, parse_tree};
use keel_sim::emis::session::APPLICATION_ID;
use keel_sim::emis::{self, BASE_PATH, EmisSimulator};
use keel_sim::faults::{FaultConfig, FaultHandle};
use keel_sim::model::{CodingStyle, GpSystem, Person};
use keel_sim::records::PracticeRecords;
use keel_sim::{Options, Population};

/// One small PCN for every test (indexing it is the slow part).
fn records() -> Arc<PracticeRecords> {
    static RECORDS: OnceLock<Arc<PracticeRecords>> = OnceLock::new();
    RECORDS
        .get_or_init(|| {
            Arc::new(PracticeRecords::new(Population::generate(Options {
                patients: 1500,
                practices: 4,
                ..Options::default()
            })))
        })
        .clone()
}

fn practice_of(system: GpSystem) -> (usize, String) {
    let records = records();
    let p = records
        .population()
        .pcn()
        .practices
        .iter()
        .find(|p| p.system == system)
        .unwrap_or_else(|| panic!("a {system:?} practice in the test PCN"));
    (p.index, p.ods.as_str().to_string())
}

/// The first person (by index) whose primary record is at an EMIS-style practice and who
/// satisfies `wanted`.
fn emis_person(wanted: impl Fn(&Person) -> bool) -> Person {
    let records = records();
    let pop = records.population();
    pop.persons()
        .find(|p| {
            pop.pcn().practices[p.primary().practice].system == GpSystem::EmisStyle && wanted(p)
        })
        .expect("a matching person")
}

struct Api {
    root: String,
    faults: FaultHandle,
    client: reqwest::Client,
}

async fn start() -> Api {
    let faults = FaultHandle::default();
    let (addr, _h) = emis::serve(
        EmisSimulator::new(records()),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        faults.clone(),
    )
    .await
    .expect("bind");
    Api {
        root: format!("http://{addr}"),
        faults,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client"),
    }
}

struct Answer {
    status: u16,
    content_type: String,
    body: Element,
}

async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = resp.bytes().await.expect("body");
    let body =
        parse_tree(&bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)));
    Answer {
        status,
        content_type,
        body,
    }
}

fn child<'a>(e: &'a Element, name: &str) -> &'a Element {
    e.children
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{} has no {name}", e.name))
}

fn children<'a>(e: &'a Element, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
    e.children.iter().filter(move |c| c.name == name)
}

fn attr<'a>(e: &'a Element, key: &str) -> &'a str {
    e.attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{} has no attribute {key}", e.name))
}

fn error_code(a: &Answer) -> &str {
    assert_eq!(a.body.name, "Error", "{:?}", a.body);
    assert!(!child(&a.body, "Message").text.is_empty());
    &child(&a.body, "Code").text
}

impl Api {
    fn practice_url(&self, ods: &str) -> String {
        format!("{}{BASE_PATH}/practices/{ods}", self.root)
    }

    fn patient_url(&self, ods: &str, record_id: &str) -> String {
        format!(
            "{}/patients/{}",
            self.practice_url(ods),
            Guid::named(record_id)
        )
    }

    async fn login(&self, ods: &str) -> String {
        let records = records();
        let practice = records
            .population()
            .pcn()
            .practices
            .iter()
            .find(|p| p.ods.as_str() == ods)
            .expect("practice");
        let user = &practice.staff[0].id;
        let a = answer(
            self.client
                .post(format!("{}/sessions", self.practice_url(ods)))
                .header("X-Emis-Application-Id", APPLICATION_ID)
                .body(format!("<Login><UserId>{user}</UserId></Login>"))
                .send()
                .await
                .expect("login"),
        )
        .await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        assert_eq!(a.body.name, "Session");
        child(&a.body, "SessionToken").text.clone()
    }

    async fn get(&self, url: &str, token: &str) -> Answer {
        answer(
            self.client
                .get(url)
                .header("X-Emis-Application-Id", APPLICATION_ID)
                .header("X-Emis-Session-Token", token)
                .send()
                .await
                .expect("get"),
        )
        .await
    }

    async fn post(&self, url: &str, token: &str, request_id: Option<&str>, body: &str) -> Answer {
        let mut req = self
            .client
            .post(url)
            .header("X-Emis-Application-Id", APPLICATION_ID)
            .header("X-Emis-Session-Token", token)
            .body(body.to_string());
        if let Some(id) = request_id {
            req = req.header("X-Request-Id", id);
        }
        answer(req.send().await.expect("post")).await
    }
}

#[tokio::test]
async fn login_then_demographics_and_search_by_nhs_number_and_by_surname_and_birth_date() {
    let person =
        emis_person(|p| p.primary().nhs_number.is_some() && p.primary().registration.is_active());
    let r = person.primary();
    let ods = records().population().pcn().practices[r.practice]
        .ods
        .as_str()
        .to_string();
    let api = start().await;
    let token = api.login(&ods).await;

    let a = api.get(&api.patient_url(&ods, &r.id), &token).await;
    assert_eq!(a.status, 200);
    assert!(
        a.content_type.starts_with("application/xml"),
        "{}",
        a.content_type
    );
    assert_eq!(a.body.name, "Patient");
    assert_eq!(attr(&a.body, "Guid"), Guid::named(&r.id).to_string());
    let nhs = r.nhs_number.as_ref().expect("nhs").as_str().to_string();
    assert_eq!(child(&a.body, "NhsNumber").text, nhs);
    assert_eq!(child(&a.body, "FamilyName").text, r.name.family);
    assert_eq!(child(&a.body, "DateOfBirth").text, r.birth_date.to_string());
    assert_eq!(attr(child(&a.body, "Registration"), "Status"), "Active");

    let a = api
        .get(
            &format!("{}/patients?nhsNumber={nhs}", api.practice_url(&ods)),
            &token,
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body.name, "PatientMatches");
    let first = child(&a.body, "Patient");
    assert_eq!(attr(first, "Guid"), Guid::named(&r.id).to_string());

    let surname = r.name.family.to_uppercase();
    let a = api
        .get(
            &format!(
                "{}/patients?surname={surname}&dateOfBirth={}",
                api.practice_url(&ods),
                r.birth_date
            ),
            &token,
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(
        children(&a.body, "Patient").any(|p| attr(p, "Guid") == Guid::named(&r.id).to_string())
    );

    let a = api
        .get(
            &format!(
                "{}/patients?surname=Nobodyxyz&dateOfBirth=1901-01-01",
                api.practice_url(&ods)
            ),
            &token,
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(attr(&a.body, "Count"), "0");
}

#[tokio::test]
async fn search_parameter_errors_are_400() {
    let (_, ods) = practice_of(GpSystem::EmisStyle);
    let api = start().await;
    let token = api.login(&ods).await;
    for query in [
        "",
        "nhsNumber=9990000019",
        "nhsNumber=abc",
        "surname=Smith",
        "surname=Smith&dateOfBirth=1980-02-30",
        "nhsNumber=9990000018&surname=Smith",
        "family=Smith",
        "surname=A&surname=B&dateOfBirth=1980-01-01",
    ] {
        let a = api
            .get(
                &format!("{}/patients?{query}", api.practice_url(&ods)),
                &token,
            )
            .await;
        assert_eq!(a.status, 400, "{query}");
        assert_eq!(error_code(&a), "InvalidRequest", "{query}");
    }
}

#[tokio::test]
async fn application_session_and_credentials_are_checked() {
    let (_, ods) = practice_of(GpSystem::EmisStyle);
    let person = emis_person(|p| p.primary().practice == practice_of(GpSystem::EmisStyle).0);
    let api = start().await;
    let url = api.patient_url(&ods, &person.primary().id);

    // No application id; a wrong one.
    let a = answer(api.client.get(&url).send().await.expect("get")).await;
    assert_eq!((a.status, error_code(&a)), (401, "UnknownApplication"));
    let a = answer(
        api.client
            .get(&url)
            .header(
                "X-Emis-Application-Id",
                "00000000-0000-0000-0000-000000000000",
            )
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!((a.status, error_code(&a)), (401, "UnknownApplication"));

    // No session token; an unknown one; garbage.
    let a = answer(
        api.client
            .get(&url)
            .header("X-Emis-Application-Id", APPLICATION_ID)
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!((a.status, error_code(&a)), (401, "InvalidSession"));
    for token in [&Guid::named("session-999").to_string(), "nonsense"] {
        let a = api.get(&url, token).await;
        assert_eq!((a.status, error_code(&a)), (401, "InvalidSession"));
    }

    // A user who is not on the practice's staff.
    let a = answer(
        api.client
            .post(format!("{}/sessions", api.practice_url(&ods)))
            .header("X-Emis-Application-Id", APPLICATION_ID)
            .body("<Login><UserId>Y00000-S99</UserId></Login>")
            .send()
            .await
            .expect("login"),
    )
    .await;
    assert_eq!((a.status, error_code(&a)), (401, "InvalidCredentials"));

    // A session of another EMIS-style practice.
    let other = EmisSimulator::new(records())
        .practices()
        .into_iter()
        .find(|o| *o != ods);
    if let Some(other) = other {
        let token = api.login(&other).await;
        let a = api.get(&url, &token).await;
        assert_eq!((a.status, error_code(&a)), (403, "WrongOrganisation"));
    }

    // Sessions are deterministic: the first login gets the GUID named `session-1`.
    let api = start().await;
    assert_eq!(api.login(&ods).await, Guid::named("session-1").to_string());
}

#[tokio::test]
async fn other_suppliers_practices_unknown_routes_and_bad_ids_answer_in_the_api_shape() {
    let (_, tpp) = practice_of(GpSystem::TppStyle);
    let (emis_index, ods) = practice_of(GpSystem::EmisStyle);
    let api = start().await;

    let a = answer(
        api.client
            .post(format!("{}/sessions", api.practice_url(&tpp)))
            .header("X-Emis-Application-Id", APPLICATION_ID)
            .body("<Login><UserId>x</UserId></Login>")
            .send()
            .await
            .expect("login"),
    )
    .await;
    assert_eq!((a.status, error_code(&a)), (404, "PracticeNotFound"));

    let token = api.login(&ods).await;
    let tpp_patient = records()
        .at_practice(practice_of(GpSystem::TppStyle).0)
        .next()
        .map(|at| records().record(at).id)
        .expect("a TPP-style record");
    let a = api.get(&api.patient_url(&ods, &tpp_patient), &token).await;
    assert_eq!((a.status, error_code(&a)), (404, "PatientNotFound"));
    let a = api.get(&api.patient_url(&tpp, &tpp_patient), &token).await;
    assert_eq!((a.status, error_code(&a)), (404, "PracticeNotFound"));

    let a = api
        .get(
            &format!("{}/patients/not-a-guid", api.practice_url(&ods)),
            &token,
        )
        .await;
    assert_eq!((a.status, error_code(&a)), (400, "InvalidRequest"));

    let id = records()
        .at_practice(emis_index)
        .next()
        .map(|at| records().record(at).id)
        .expect("a record");
    let a = api
        .get(
            &format!("{}/record/letters", api.patient_url(&ods, &id)),
            &token,
        )
        .await;
    assert_eq!((a.status, error_code(&a)), (404, "NotFound"));
    let a = api
        .get(
            &format!(
                "{}/documents/{}",
                api.patient_url(&ods, &id),
                Guid::named("x")
            ),
            &token,
        )
        .await;
    assert_eq!((a.status, error_code(&a)), (404, "NotFound"));
    let a = api.get(&format!("{}/nowhere", api.root), &token).await;
    assert_eq!((a.status, error_code(&a)), (404, "NotFound"));
    let a = answer(
        api.client
            .delete(api.patient_url(&ods, &id))
            .send()
            .await
            .expect("delete"),
    )
    .await;
    assert_eq!((a.status, error_code(&a)), (405, "MethodNotAllowed"));
}

#[tokio::test]
async fn the_full_record_and_each_section_render_the_generated_record_with_codes_as_recorded() {
    // A patient whose record has legacy codes, repeat medication with issues, and values.
    let person = emis_person(|p| {
        let c = &p.primary().clinical;
        c.observations.iter().any(|o| {
            matches!(
                o.coding,
                CodingStyle::LegacyOnly(_) | CodingStyle::LegacyBeside(_)
            ) && o.coding.legacy(o.concept).is_some()
        }) && c.medications.iter().any(|m| m.repeat && m.issues.len() > 1)
            && !c.consultations.is_empty()
    });
    let r = person.primary();
    let c = &r.clinical;
    let ods = records().population().pcn().practices[r.practice]
        .ods
        .as_str()
        .to_string();
    let api = start().await;
    let token = api.login(&ods).await;
    let base = api.patient_url(&ods, &r.id);

    let full = api.get(&format!("{base}/record"), &token).await;
    assert_eq!(full.status, 200);
    assert_eq!(full.body.name, "MedicalRecord");
    assert_eq!(
        attr(&full.body, "PatientGuid"),
        Guid::named(&r.id).to_string()
    );
    child(&full.body, "Patient");
    let counts = [
        ("Problems", "Problem", c.conditions.len()),
        ("Medications", "Medication", c.medications.len()),
        ("Consultations", "Consultation", c.consultations.len()),
        ("Events", "Event", c.observations.len()),
        ("Allergies", "Allergy", c.allergies.len()),
        ("Immunisations", "Immunisation", c.immunisations.len()),
        ("Tasks", "Task", c.tasks.len()),
    ];
    for (section, item, n) in counts {
        let s = child(&full.body, section);
        assert_eq!(attr(s, "Count"), n.to_string(), "{section}");
        assert_eq!(children(s, item).count(), n, "{section}");
    }
    assert!(
        children(child(&full.body, "Appointments"), "Appointment").count() >= c.appointments.len()
    );

    // Each section alone is the same element as in the full record (plus the patient GUID).
    for path in [
        "problems",
        "medication",
        "consultations",
        "events",
        "allergies",
        "immunisations",
        "appointments",
        "tasks",
        "documents",
    ] {
        let a = api.get(&format!("{base}/record/{path}"), &token).await;
        assert_eq!(a.status, 200, "{path}");
        let mut alone = a.body.clone();
        alone.attrs.retain(|(k, _)| k != "PatientGuid");
        assert_eq!(child(&alone, "Users"), child(&full.body, "Users"));
        alone.children.retain(|c| c.name != "Users");
        let within = child(&full.body, &alone.name);
        assert_eq!(&alone, within, "{path}");
    }

    // Legacy codes as recorded: the legacy code first, SNOMED CT beside it unless recorded alone.
    let o = c
        .observations
        .iter()
        .find(|o| o.coding.legacy(o.concept).is_some())
        .expect("a legacy-coded observation");
    let guid = Guid::item(&r.id, "o", o.id).to_string();
    let events = child(&full.body, "Events");
    let e = children(events, "Event")
        .find(|e| attr(e, "Guid") == guid)
        .expect("the event");
    let codes: Vec<&Element> = children(e, "Code").collect();
    let (_, (legacy, _)) = o.coding.legacy(o.concept).expect("legacy");
    assert_eq!(attr(codes[0], "Value"), legacy);
    assert!(["READ2", "CTV3"].contains(&attr(codes[0], "Scheme")));
    match o.coding {
        CodingStyle::LegacyOnly(_) => assert_eq!(codes.len(), 1),
        _ => {
            assert_eq!(codes.len(), 2);
            assert_eq!(attr(codes[1], "Scheme"), "SNOMED");
            assert_eq!(attr(codes[1], "Value"), o.concept.snomed);
        }
    }

    // Medication: the course, then its issues, dm+d coded.
    let m = c
        .medications
        .iter()
        .find(|m| m.repeat && m.issues.len() > 1)
        .expect("repeat");
    let meds = child(&full.body, "Medications");
    let med = children(meds, "Medication")
        .find(|e| attr(e, "Guid") == Guid::item(&r.id, "ms", m.id).to_string())
        .expect("the course");
    assert_eq!(attr(med, "PrescriptionType"), "Repeat");
    let drug = child(med, "Drug");
    assert_eq!(attr(drug, "Value"), m.drug.code());
    assert!(["DMD", "SYNTHETIC-DMD"].contains(&attr(drug, "Scheme")));
    let issues = child(med, "Issues");
    assert_eq!(children(issues, "Issue").count(), m.issues.len());
    assert_eq!(
        attr(children(issues, "Issue").next().expect("issue"), "Guid"),
        Guid::named(&format!("{}-mi{}-1", r.id, m.id)).to_string()
    );

    // Consultations carry their free text in a section.
    let e = &c.consultations[0];
    let cons = children(child(&full.body, "Consultations"), "Consultation")
        .find(|x| attr(x, "Guid") == Guid::item(&r.id, "e", e.id).to_string())
        .expect("consultation");
    let history = children(cons, "Section")
        .find(|s| attr(s, "Heading") == "History")
        .expect("history");
    assert_eq!(child(history, "FreeText").text, e.text);
}

#[tokio::test]
async fn legacy_hba1c_in_percent_is_kept_in_percent() {
    let person = emis_person(|p| {
        p.primary()
            .clinical
            .observations
            .iter()
            .any(|o| o.concept.key == "hba1c-dcct")
    });
    let r = person.primary();
    let o = r
        .clinical
        .observations
        .iter()
        .find(|o| o.concept.key == "hba1c-dcct")
        .expect("a DCCT result");
    let ods = records().population().pcn().practices[r.practice]
        .ods
        .as_str()
        .to_string();
    let api = start().await;
    let token = api.login(&ods).await;
    let a = api
        .get(
            &format!("{}/record/events", api.patient_url(&ods, &r.id)),
            &token,
        )
        .await;
    let e = children(&a.body, "Event")
        .find(|e| attr(e, "Guid") == Guid::item(&r.id, "o", o.id).to_string())
        .expect("event");
    let value = child(e, "Value");
    assert_eq!(attr(value, "Unit"), "%");
    assert!(
        value
            .text
            .parse::<f64>()
            .is_ok_and(|v| (3.0..20.0).contains(&v)),
        "{}",
        value.text
    );
}

#[tokio::test]
async fn confidential_items_are_present_and_marked_with_a_count_per_section() {
    let person = emis_person(|p| {
        let c = &p.primary().clinical;
        c.conditions.iter().any(|x| x.sensitivity.is_some())
            || c.consultations.iter().any(|x| x.confidential)
    });
    let r = person.primary();
    let c = &r.clinical;
    let ods = records().population().pcn().practices[r.practice]
        .ods
        .as_str()
        .to_string();
    let api = start().await;
    let token = api.login(&ods).await;
    let a = api
        .get(&format!("{}/record", api.patient_url(&ods, &r.id)), &token)
        .await;
    let problems = child(&a.body, "Problems");
    let sensitive = c
        .conditions
        .iter()
        .filter(|x| x.sensitivity.is_some())
        .count();
    assert_eq!(attr(problems, "ConfidentialCount"), sensitive.to_string());
    for p in c.conditions.iter().filter(|x| x.sensitivity.is_some()) {
        let e = children(problems, "Problem")
            .find(|e| attr(e, "Guid") == Guid::item(&r.id, "c", p.id).to_string())
            .expect("the sensitive problem is present");
        assert_eq!(attr(e, "Confidential"), "true");
        assert_eq!(attr(e, "Sensitivity"), p.sensitivity.expect("s").key());
    }
    let consultations = child(&a.body, "Consultations");
    let confidential = c.consultations.iter().filter(|x| x.confidential).count();
    assert_eq!(
        attr(consultations, "ConfidentialCount"),
        confidential.to_string()
    );
    assert_eq!(
        children(consultations, "Consultation")
            .filter(|e| e
                .attrs
                .iter()
                .any(|(k, v)| k == "Confidential" && v == "true"))
            .count(),
        confidential
    );
}

const CONSULTATION: &str = r#"<Consultation xmlns="https://keel.invalid/sim/emis-style/1" Type="Telephone">
  <Date>2026-01-05T10:30</Date>
  <DurationMinutes>12</DurationMinutes>
  <Section Heading="History"><FreeText>Cough for 3 days &amp; mild fever.</FreeText></Section>
  <Section Heading="Examination">
    <Event><Code Scheme="SNOMED" Value="999791000000106" Term="Haemoglobin A1c level - IFCC standardised"/><Value Unit="mmol/mol">48</Value></Event>
  </Section>
  <Section Heading="Problem">
    <Problem Status="Active" Significance="Minor"><Code Scheme="READ2" Value="H33.." Term="Asthma"/><Code Scheme="SNOMED" Value="195967001" Term="Asthma"/></Problem>
  </Section>
</Consultation>"#;

const EVENT: &str = r#"<Event><Code Scheme="CTV3" Value="XaERp" Term="HbA1c level (DCCT aligned)"/><Date>2026-01-04</Date><Value Unit="%">7.1</Value></Event>"#;

const TASK: &str = r#"<Task Priority="Urgent"><Description>Call back about results</Description><Date>2026-01-05T11:00</Date></Task>"#;

const DOCUMENT: &str = r#"<Document><Title>Discharge summary</Title><Date>2026-01-03</Date><MimeType>text/plain</MimeType><Content>SGVsbG8sIHdvcmxkIQ==</Content></Document>"#;

fn write_target() -> (String, String) {
    let person = emis_person(|p| p.primary().registration.is_active());
    let r = person.primary();
    let ods = records().population().pcn().practices[r.practice]
        .ods
        .as_str()
        .to_string();
    (ods, r.id.clone())
}

fn item_guids(a: &Answer) -> Vec<(String, String)> {
    assert_eq!(a.body.name, "WriteResult", "{:?}", a.body);
    children(&a.body, "Item")
        .map(|i| (attr(i, "Type").to_string(), attr(i, "Guid").to_string()))
        .collect()
}

#[tokio::test]
async fn every_accepted_write_is_visible_in_later_reads() {
    let (ods, id) = write_target();
    let api = start().await;
    let token = api.login(&ods).await;
    let base = api.patient_url(&ods, &id);
    let before = api.get(&format!("{base}/record"), &token).await;
    let count = |a: &Answer, s: &str| {
        attr(child(&a.body, s), "Count")
            .parse::<usize>()
            .expect("n")
    };

    let a = api
        .post(&format!("{base}/consultations"), &token, None, CONSULTATION)
        .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    let items = item_guids(&a);
    assert_eq!(
        items.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
        ["Consultation", "Event", "Problem"]
    );
    // GUIDs of written items come from a per-patient counter.
    assert_eq!(items[0].1, Guid::named(&format!("{id}-w1")).to_string());
    assert_eq!(items[2].1, Guid::named(&format!("{id}-w3")).to_string());

    let a = api
        .post(&format!("{base}/codedentries"), &token, None, EVENT)
        .await;
    assert_eq!(a.status, 201);
    let event = item_guids(&a)[0].1.clone();
    let a = api.post(&format!("{base}/tasks"), &token, None, TASK).await;
    assert_eq!(a.status, 201);
    let task = item_guids(&a)[0].1.clone();
    let a = api
        .post(&format!("{base}/documents"), &token, None, DOCUMENT)
        .await;
    assert_eq!(a.status, 201);
    let document = item_guids(&a)[0].1.clone();

    let after = api.get(&format!("{base}/record"), &token).await;
    assert_eq!(
        count(&after, "Consultations"),
        count(&before, "Consultations") + 1
    );
    assert_eq!(count(&after, "Events"), count(&before, "Events") + 2);
    assert_eq!(count(&after, "Problems"), count(&before, "Problems") + 1);
    assert_eq!(count(&after, "Tasks"), count(&before, "Tasks") + 1);
    assert_eq!(count(&after, "Documents"), 1);

    let cons = children(child(&after.body, "Consultations"), "Consultation")
        .find(|c| attr(c, "Guid") == items[0].1)
        .expect("written consultation");
    assert_eq!(attr(cons, "Type"), "Telephone");
    assert_eq!(child(cons, "Date").text, "2026-01-05T10:30:00+00:00");
    let history = child(cons, "Section");
    assert_eq!(
        child(history, "FreeText").text,
        "Cough for 3 days & mild fever."
    );
    let entries: Vec<&str> = children(cons, "Section")
        .flat_map(|s| children(s, "Entry"))
        .map(|e| attr(e, "Guid"))
        .collect();
    assert_eq!(entries, [items[1].1.as_str(), items[2].1.as_str()]);

    // The coded entry: value and unit as written, legacy code as written.
    let events = api.get(&format!("{base}/record/events"), &token).await;
    let e = children(&events.body, "Event")
        .find(|e| attr(e, "Guid") == event)
        .expect("written event");
    assert_eq!(attr(child(e, "Value"), "Unit"), "%");
    assert_eq!(child(e, "Value").text, "7.1");
    assert_eq!(attr(child(e, "Code"), "Scheme"), "CTV3");
    let problem = children(child(&after.body, "Problems"), "Problem")
        .find(|p| attr(p, "Guid") == items[2].1)
        .expect("written problem");
    assert_eq!(
        child(problem, "Date").text,
        "2026-01-05",
        "dated by its consultation"
    );
    assert_eq!(child(problem, "ConsultationGuid").text, items[0].1);

    let tasks = api.get(&format!("{base}/record/tasks"), &token).await;
    let t = children(&tasks.body, "Task")
        .find(|t| attr(t, "Guid") == task)
        .expect("task");
    assert_eq!(attr(t, "Priority"), "Urgent");

    let d = api
        .get(&format!("{base}/documents/{document}"), &token)
        .await;
    assert_eq!(d.status, 200);
    assert_eq!(child(&d.body, "Content").text, "SGVsbG8sIHdvcmxkIQ==");
    assert_eq!(child(&d.body, "SizeBytes").text, "13");
}

#[tokio::test]
async fn a_retried_write_with_the_same_request_id_returns_the_original_and_writes_once() {
    let (ods, id) = write_target();
    let api = start().await;
    let token = api.login(&ods).await;
    let base = api.patient_url(&ods, &id);
    let url = format!("{base}/tasks");
    let first = api.post(&url, &token, Some("req-1"), TASK).await;
    assert_eq!(first.status, 201);
    let again = api.post(&url, &token, Some("req-1"), TASK).await;
    assert_eq!(again.status, 201);
    assert_eq!(item_guids(&again), item_guids(&first));
    let tasks = api.get(&format!("{base}/record/tasks"), &token).await;
    let guid = &item_guids(&first)[0].1;
    assert_eq!(
        children(&tasks.body, "Task")
            .filter(|t| attr(t, "Guid") == guid)
            .count(),
        1
    );

    // Same id, different body or different target: 409, nothing written.
    let other = TASK.replace("Call back", "Ring back");
    let a = api.post(&url, &token, Some("req-1"), &other).await;
    assert_eq!((a.status, error_code(&a)), (409, "RequestIdConflict"));
    let a = api
        .post(
            &format!("{base}/codedentries"),
            &token,
            Some("req-1"),
            EVENT,
        )
        .await;
    assert_eq!((a.status, error_code(&a)), (409, "RequestIdConflict"));
    let after = api.get(&format!("{base}/record/tasks"), &token).await;
    assert_eq!(attr(&after.body, "Count"), attr(&tasks.body, "Count"));

    // Without a request id, a retry is a second write.
    let a = api.post(&url, &token, None, TASK).await;
    let b = api.post(&url, &token, None, TASK).await;
    assert_ne!(item_guids(&a), item_guids(&b));

    let a = api.post(&url, &token, Some(""), TASK).await;
    assert_eq!((a.status, error_code(&a)), (400, "InvalidRequest"));
}

#[tokio::test]
async fn a_write_whose_answer_was_dropped_is_recognised_when_retried_with_its_request_id() {
    let (ods, id) = write_target();
    let api = start().await;
    let token = api.login(&ods).await;
    let base = api.patient_url(&ods, &id);
    let before = api
        .get(&format!("{base}/record/consultations"), &token)
        .await;

    api.faults
        .set(FaultConfig {
            drop_response_after_commit: 1.0,
            ..FaultConfig::default()
        })
        .expect("faults");
    let lost = api
        .client
        .post(format!("{base}/consultations"))
        .header("X-Emis-Application-Id", APPLICATION_ID)
        .header("X-Emis-Session-Token", &token)
        .header("X-Request-Id", "consult-42")
        .body(CONSULTATION)
        .send()
        .await;
    let err = lost.expect_err("the answer is dropped");
    assert!(!err.is_status(), "{err}");
    api.faults.reset();

    let retry = api
        .post(
            &format!("{base}/consultations"),
            &token,
            Some("consult-42"),
            CONSULTATION,
        )
        .await;
    assert_eq!(retry.status, 201);
    let items = item_guids(&retry);
    assert_eq!(
        items[0].1,
        Guid::named(&format!("{id}-w1")).to_string(),
        "the original write"
    );
    let after = api
        .get(&format!("{base}/record/consultations"), &token)
        .await;
    let n = |a: &Answer| attr(&a.body, "Count").parse::<usize>().expect("n");
    assert_eq!(n(&after), n(&before) + 1, "written once");
}

#[tokio::test]
async fn invalid_bodies_are_400_with_a_message_and_write_nothing() {
    let (ods, id) = write_target();
    let api = start().await;
    let token = api.login(&ods).await;
    let base = api.patient_url(&ods, &id);
    let before = api.get(&format!("{base}/record"), &token).await;
    let cases: Vec<(&str, String, &str)> = vec![
        ("consultations", "not xml".into(), "XML"),
        (
            "consultations",
            "<Consultation Type=\"Surgery\"><Date>2026-01-05T10:00</Date>".into(),
            "unclosed",
        ),
        (
            "consultations",
            CONSULTATION.replace("<Date>2026-01-05T10:30</Date>", ""),
            "missing mandatory element Date",
        ),
        (
            "consultations",
            CONSULTATION.replace("Type=\"Telephone\"", "Type=\"Video\""),
            "Type",
        ),
        // The second section's coded entry is bad: the first must not be written either.
        (
            "consultations",
            CONSULTATION.replace("Scheme=\"READ2\"", "Scheme=\"ICD10\""),
            "unknown code scheme",
        ),
        (
            "consultations",
            CONSULTATION.replace(
                "xmlns=\"https://keel.invalid/sim/emis-style/1\"",
                "xmlns=\"urn:other\"",
            ),
            "namespace",
        ),
        (
            "codedentries",
            EVENT.replace("XaERp", "XaERp1"),
            "not a valid CTV3 code",
        ),
        (
            "codedentries",
            EVENT.replace(
                "Scheme=\"CTV3\" Value=\"XaERp\"",
                "Scheme=\"SNOMED\" Value=\"999791000000107\"",
            ),
            "not a valid SNOMED code",
        ),
        (
            "codedentries",
            EVENT.replace("<Date>2026-01-04</Date>", "<Date>2026-13-04</Date>"),
            "not a date",
        ),
        (
            "codedentries",
            EVENT.replace(">7.1<", ">seven<"),
            "not a decimal",
        ),
        (
            "codedentries",
            EVENT.replace(" Term=\"HbA1c level (DCCT aligned)\"", ""),
            "Term",
        ),
        ("codedentries", "<Medication/>".into(), "Event or Problem"),
        (
            "codedentries",
            format!("<!DOCTYPE x [<!ENTITY e \"boom\">]>{EVENT}"),
            "DOCTYPE",
        ),
        (
            "tasks",
            TASK.replace("<Description>Call back about results</Description>", ""),
            "Description",
        ),
        (
            "tasks",
            TASK.replace("</Task>", "<Owner UserId=\"nobody\"/></Task>"),
            "Owner",
        ),
        (
            "tasks",
            TASK.replace("</Task>", "<Colour>red</Colour></Task>"),
            "unexpected element Colour",
        ),
        (
            "documents",
            DOCUMENT.replace("SGVsbG8sIHdvcmxkIQ==", "***"),
            "base64",
        ),
        (
            "documents",
            DOCUMENT.replace("text/plain", "plain"),
            "MimeType",
        ),
        (
            "documents",
            format!("{DOCUMENT}{DOCUMENT}"),
            "more than one root",
        ),
    ];
    for (path, body, needle) in &cases {
        let a = api
            .post(&format!("{base}/{path}"), &token, Some("bad"), body)
            .await;
        assert_eq!(a.status, 400, "{path}: {body}");
        assert_eq!(error_code(&a), "InvalidRequest");
        let message = &child(&a.body, "Message").text;
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
    }
    let after = api.get(&format!("{base}/record"), &token).await;
    assert_eq!(after.body, before.body, "nothing was written");
    // A rejected write does not use up its request id.
    let a = api
        .post(&format!("{base}/tasks"), &token, Some("bad"), TASK)
        .await;
    assert_eq!(a.status, 201);
    assert_eq!(
        item_guids(&a)[0].1,
        Guid::named(&format!("{id}-w1")).to_string()
    );
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let (ods, id) = write_target();
    let api = start().await;
    let token = api.login(&ods).await;
    let big = "A".repeat(emis::MAX_BODY_BYTES + 16);
    let body = DOCUMENT.replace("SGVsbG8sIHdvcmxkIQ==", &big);
    let a = api
        .post(
            &format!("{}/documents", api.patient_url(&ods, &id)),
            &token,
            None,
            &body,
        )
        .await;
    assert_eq!((a.status, error_code(&a)), (413, "RequestTooLarge"));
}

#[tokio::test]
async fn the_same_population_gives_the_same_answers_on_every_server() {
    let (ods, id) = write_target();
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let api = start().await;
        let token = api.login(&ods).await;
        let url = format!("{}/record", api.patient_url(&ods, &id));
        let raw = api
            .client
            .get(&url)
            .header("X-Emis-Application-Id", APPLICATION_ID)
            .header("X-Emis-Session-Token", &token)
            .send()
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        bodies.push(raw);
    }
    assert_eq!(bodies[0], bodies[1]);
}
