//! `keel demo` end to end: the real binary starts the simulated PCN, Keel and the web UI,
//! prints where to go, and serves the pages over real HTTP — sign-in, a GP's view of a record,
//! one audit record for every page that touches patient data, and break-glass counted in
//! `/metrics` like the API's.

mod common;

use common::{Demo, token};
use reqwest::blocking::{Client, Response};
use reqwest::header;

/// A small population keeps the test light; every practice still has an example patient.
const PATIENTS: u64 = 300;
const GP_USER_ID: &str = "555000000101";
const RECEPTIONIST_USER_ID: &str = "555000000104";
const OUT_OF_AREA: &str = "Y99990";

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .expect("client")
}

/// A signed-in browser: the session cookie the sign-in set.
struct Browser<'a> {
    client: Client,
    origin: &'a str,
    cookie: String,
}

impl<'a> Browser<'a> {
    fn sign_in(demo: &'a Demo, user: &str, organisation: &str) -> Browser<'a> {
        let client = client();
        let origin = demo.origin();
        let response = client
            .post(format!("{origin}/ui/sign-in"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("user={user}&organisation={organisation}"))
            .send()
            .expect("sign in");
        assert_eq!(response.status(), 303, "sign-in redirects");
        let cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|c| c.to_str().ok())
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_string();
        Browser {
            client,
            origin,
            cookie,
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        page(
            self.client
                .get(format!("{}{path}", self.origin))
                .header(header::COOKIE, &self.cookie)
                .send()
                .expect("page request"),
        )
    }

    fn post(&self, path: &str, form: &str) -> (u16, String) {
        page(
            self.client
                .post(format!("{}{path}", self.origin))
                .header(header::COOKIE, &self.cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.to_string())
                .send()
                .expect("form post"),
        )
    }
}

fn page(response: Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().expect("page text"))
}

/// The value of the first `<option>` of the organisation list on the sign-in page.
fn first_organisation(sign_in_page: &str) -> String {
    let (_, rest) = sign_in_page
        .split_once("<option value=\"")
        .expect("an organisation to choose");
    rest.split('"').next().expect("closing quote").to_string()
}

/// The number of audit records the audit page says match its filter.
fn audit_total(audit_page: &str) -> u64 {
    let (_, rest) = audit_page
        .split_once("data-testid=\"audit\"><caption>")
        .expect("the audit table");
    rest.split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("the caption starts with the number of records")
}

#[test]
fn keel_demo_prints_its_url_and_a_gp_signs_in_and_reads_a_record() {
    let data = tempfile::tempdir().expect("tempdir");
    let demo = Demo::start(&data.path().join("keel"), PATIENTS);
    let origin = demo.origin().to_string();
    let welcome = demo.welcome.join("\n");
    assert!(
        welcome.contains(&format!("Open {origin}/ui/ and sign in")),
        "{welcome}"
    );
    assert!(welcome.contains("Keel demo ready in"), "{welcome}");
    let patients = demo.example_patients();
    assert!(
        patients.iter().any(|(_, p)| p.contains("emis-style"))
            && patients.iter().any(|(_, p)| p.contains("tpp-style")),
        "example patients at both kinds of practice: {patients:?}"
    );

    let (status, sign_in) = page(
        client()
            .get(format!("{origin}/ui/"))
            .send()
            .expect("sign-in page"),
    );
    assert_eq!(status, 200);
    assert!(
        sign_in.contains("Sign in to the demonstration"),
        "{sign_in}"
    );
    for role in [
        "gp",
        "nurse",
        "pharmacist",
        "receptionist",
        "pcn-manager",
        "ig-lead",
    ] {
        assert!(sign_in.contains(&format!("id=\"user-{role}\"")), "{role}");
    }
    let (status, _) = page(
        client()
            .get(format!("{origin}/ui/patient/{}", patients[0].0))
            .send()
            .expect("record without a session"),
    );
    assert_eq!(status, 303, "no session: back to sign-in");

    let gp = Browser::sign_in(&demo, "gp", &first_organisation(&sign_in));
    for (nhs, practice) in &patients {
        let (status, record) = gp.get(&format!("/ui/patient/{nhs}"));
        assert_eq!(status, 200, "{practice}: {record}");
        assert!(record.contains("data-testid=\"demographics\""));
        assert!(record.contains(&format!("{} {} {}", &nhs[..3], &nhs[3..6], &nhs[6..])));
        let system = if practice.contains("emis-style") {
            "via EMIS-style"
        } else {
            "via TPP-style"
        };
        assert!(record.contains(system), "{practice}: provenance");
        assert!(record.contains("retrieved "), "{practice}: retrieval time");
        assert!(
            record.contains("data-section=\"problems\"")
                && record.contains("data-state=\"recorded\""),
            "{practice}: recorded sections"
        );
    }
}

#[test]
fn every_ui_page_about_patients_leaves_one_audit_record_and_break_glass_is_counted() {
    let data = tempfile::tempdir().expect("tempdir");
    let demo = Demo::start(&data.path().join("keel"), PATIENTS);
    let (nhs, _) = demo.example_patients().remove(0);
    let (_, sign_in) = page(
        client()
            .get(format!("{}/ui/", demo.origin()))
            .send()
            .expect("sign-in page"),
    );
    let practice = first_organisation(&sign_in);

    // A GP of the PCN: four pages, each about patients.
    let gp = Browser::sign_in(&demo, "gp", &practice);
    for path in [
        "/ui/search".to_string(),
        format!("/ui/search?nhs={nhs}"),
        format!("/ui/patient/{nhs}"),
        "/ui/practices".to_string(),
    ] {
        let (status, _) = gp.get(&path);
        assert_eq!(status, 200, "{path}");
    }
    // The same GP at a centre outside the PCN: refused (one record), states a break-glass (a
    // form post that shows no patient data: no record), then reads under it (one record).
    let outside = Browser::sign_in(&demo, "gp", OUT_OF_AREA);
    let (status, refused) = outside.get(&format!("/ui/patient/{nhs}"));
    assert_eq!(status, 403, "{refused}");
    let (status, _) = outside.post(
        &format!("/ui/patient/{nhs}/break-glass"),
        "reason=Collapsed+at+the+centre&minutes=30",
    );
    assert_eq!(status, 303);
    let (status, record) = outside.get(&format!("/ui/patient/{nhs}"));
    assert_eq!(status, 200);
    assert!(record.contains("Break-glass access in force"));
    // A receptionist: one record page, clinical sections not shown.
    let receptionist = Browser::sign_in(&demo, "receptionist", &practice);
    let (status, record) = receptionist.get(&format!("/ui/patient/{nhs}"));
    assert_eq!(status, 200);
    assert!(record.contains("data-state=\"not-permitted\""));

    let ig = Browser::sign_in(&demo, "ig-lead", &practice);
    let (status, gp_trail) = ig.get(&format!("/ui/audit?agent={GP_USER_ID}"));
    assert_eq!(status, 200, "{gp_trail}");
    assert_eq!(
        audit_total(&gp_trail),
        6,
        "one record per GP page: {gp_trail}"
    );
    for interaction in ["ui patient search", "ui patient record", "ui practices"] {
        assert!(gp_trail.contains(interaction), "{interaction}");
    }
    assert_eq!(
        gp_trail.matches("data-break-glass=\"true\"").count(),
        1,
        "the read under break-glass is flagged"
    );
    let (_, receptionist_trail) = ig.get(&format!("/ui/audit?agent={RECEPTIONIST_USER_ID}"));
    assert_eq!(audit_total(&receptionist_trail), 1);

    let metrics = client()
        .get(format!("{}/metrics", demo.origin()))
        .send()
        .expect("metrics")
        .text()
        .expect("metrics text");
    assert!(
        metrics.lines().any(|l| l == "keel_break_glass_total 1"),
        "the UI's break-glass is counted: {metrics}"
    );
    assert!(!metrics.contains(&nhs), "no NHS number in the metrics");
}

/// A patient of the demonstration population (seed 1) with a sensitive problem on their
/// record: (NHS number, registered practice, another practice of the PCN, the sensitive
/// SNOMED CT code).
fn patient_with_a_sensitive_problem() -> (String, String, String, String) {
    use keel_sim::model::{Confidentiality, NhsNumberStatus, RegistrationType};
    use keel_sim::population::{Options, Population};
    let population = Population::generate(Options {
        seed: 1,
        patients: PATIENTS,
        practices: 5,
        demographics_only: false,
        as_of: Options::default().as_of,
    });
    let practices = &population.pcn().practices;
    population
        .persons()
        .find_map(|person| {
            let r = person.primary();
            let usable = r.registration.is_active()
                && r.death_date.is_none()
                && r.registration.kind == RegistrationType::Regular
                && r.nhs_status == NhsNumberStatus::Verified
                && r.confidentiality == Confidentiality::Unrestricted;
            let sensitive = r
                .clinical
                .conditions
                .iter()
                .find(|c| c.sensitivity.is_some())?;
            let nhs = r.nhs_number.filter(|_| usable)?;
            Some((
                nhs.as_str().to_string(),
                practices[r.practice].ods.as_str().to_string(),
                practices[(r.practice + 1) % practices.len()]
                    .ods
                    .as_str()
                    .to_string(),
                sensitive.concept.snomed.to_string(),
            ))
        })
        .expect("the demonstration population has a patient with a sensitive problem")
}

/// The List of `section` in a `$record` Bundle.
fn section_list<'b>(bundle: &'b serde_json::Value, section: &str) -> &'b serde_json::Value {
    bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "List" && r["code"]["coding"][0]["code"] == section)
        .unwrap_or_else(|| panic!("a List for {section}: {bundle}"))
}

#[test]
fn the_record_api_applies_the_same_access_decision_as_the_record_page() {
    let (nhs, registered, other, sensitive_code) = patient_with_a_sensitive_problem();
    let data = tempfile::tempdir().expect("tempdir");
    let keel_data = data.path().join("keel");
    let demo = Demo::start(&keel_data, PATIENTS);
    let url = format!(
        "{}/fhir/Patient/$record?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}",
        demo.origin()
    );
    let record = |bearer: &str| {
        let response = client()
            .get(&url)
            .bearer_auth(bearer)
            .send()
            .expect("$record");
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().expect("JSON"))
    };

    // GPs of the PCN: the record, without the sensitive entry (the simulated practices keep
    // confidential entries back, as GP systems do; entries that do arrive are withheld by
    // code in `RecordAccess::apply`, tested in keel-core), and the section says so.
    for practice in [&registered, &other] {
        let gp = token(&keel_data, "R8000", practice, GP_USER_ID, "direct-care");
        let (status, bundle) = record(&gp);
        assert_eq!(status, 200, "{bundle}");
        assert!(
            !bundle.to_string().contains(&sensitive_code),
            "the sensitive problem {sensitive_code} is withheld"
        );
        let problems = section_list(&bundle, "problems");
        assert!(
            problems.to_string().contains("confidential-items-withheld")
                || problems["emptyReason"]["coding"][0]["code"] == "withheld",
            "the section says so: {problems}"
        );
    }

    // A receptionist: demographics, and every clinical section withheld with the reason.
    let receptionist = token(
        &keel_data,
        "R8009",
        &registered,
        RECEPTIONIST_USER_ID,
        "administration",
    );
    let (status, bundle) = record(&receptionist);
    assert_eq!(status, 200, "{bundle}");
    assert!(
        bundle["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["resource"]["resourceType"] == "Patient"),
        "demographics are shown"
    );
    for section in [
        "problems",
        "medications",
        "allergies",
        "observations",
        "immunisations",
    ] {
        let list = section_list(&bundle, section);
        assert_eq!(
            list["emptyReason"]["coding"][0]["code"], "withheld",
            "{list}"
        );
        assert!(list["entry"].is_null(), "{list}");
        let note = list["note"][0]["text"].as_str().unwrap_or_default();
        assert!(
            note.contains("Not shown to your role") && note.contains("does not grant"),
            "{section}: {note}"
        );
    }

    // A GP outside the PCN: refused with why, recorded as a denial.
    let outside = token(&keel_data, "R8000", OUT_OF_AREA, GP_USER_ID, "direct-care");
    let (status, outcome) = record(&outside);
    assert_eq!(status, 403, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let ig = Browser::sign_in(&demo, "ig-lead", &registered);
    let (_, trail) = ig.get(&format!("/ui/audit?agent={GP_USER_ID}"));
    assert_eq!(audit_total(&trail), 3, "one record per $record: {trail}");
    assert_eq!(trail.matches("refused: ").count(), 1, "{trail}");
    let (_, trail) = ig.get(&format!("/ui/audit?agent={RECEPTIONIST_USER_ID}"));
    assert_eq!(audit_total(&trail), 1);
}
