//! `keel demo` end to end: the real binary starts the simulated PCN, Keel and the web UI,
//! prints where to go, and serves the pages over real HTTP — sign-in, a GP's view of a record,
//! one audit record for every page that touches patient data, and break-glass counted in
//! `/metrics` like the API's.

mod common;

use common::Demo;
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
