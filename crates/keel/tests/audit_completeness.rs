//! Audit completeness with the real binary: a scenario of many requests by several roles —
//! reads, searches, writes, history, `$everything`, denials, unknown ids, refused formats,
//! break-glass, the practice directory and `$record` — yields exactly one audit record per
//! request, with the right fields, readable as AuditEvents by the information-governance role
//! only; the break-glass raises the alert counter; `keel audit verify` then passes.

mod common;

use common::{Server, keel, token};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;

const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const PCN_PRACTICE: &str = "A81001";
const OUTSIDE_PRACTICE: &str = "B82001";

fn patient(id: &str, practice: &str) -> Value {
    json!({"resourceType": "Patient", "id": id,
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}],
        "name": [{"family": "Test", "given": ["Audit"]}],
        "generalPractitioner": [{"identifier": {"system": ODS, "value": practice}}]})
}

fn observation(id: &str, patient: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "271649006"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "valueQuantity": {"value": 120, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}})
}

fn seed(data: &Path) {
    let entries: Vec<Value> = [
        patient("p1", PCN_PRACTICE),
        observation("o1", "p1"),
        patient("p2", OUTSIDE_PRACTICE),
        observation("o2", "p2"),
    ]
    .into_iter()
    .map(|r| {
        let url = format!(
            "{}/{}",
            r["resourceType"].as_str().expect("type"),
            r["id"].as_str().expect("id")
        );
        json!({"resource": r, "request": {"method": "PUT", "url": url}})
    })
    .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let file = data.join("seed.json");
    std::fs::write(&file, bundle.to_string()).expect("write seed");
    let (ok, out, err) = common::import(data, &[file]);
    assert!(ok, "import: {out}{err}");
    let pcn = json!({"code": "U12345", "name": "Test PCN", "practices": [PCN_PRACTICE, "A81002"]});
    std::fs::write(data.join("pcn.json"), pcn.to_string()).expect("write pcn");
}

struct Caller<'a> {
    client: reqwest::blocking::Client,
    origin: String,
    sent: Vec<(String, u16)>,
    data: &'a Path,
}

impl Caller<'_> {
    /// Sends one request with a fresh correlation id; returns its status and body.
    fn send(
        &mut self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> (u16, Value) {
        let id = format!("audit-test-{}", self.sent.len() + 1);
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.origin))
            .bearer_auth(token)
            .header("x-request-id", &id);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/fhir+json")
                .body(body.to_string());
        }
        let response = request.send().expect("send");
        let status = response.status().as_u16();
        assert_eq!(
            response
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok()),
            Some(id.as_str()),
            "{path}"
        );
        let body = response.json().unwrap_or(Value::Null);
        self.sent.push((id, status));
        (status, body)
    }
}

#[test]
fn every_request_leaves_exactly_one_audit_record_with_its_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    seed(data);
    let gp = token(data, "R8000", PCN_PRACTICE, "555000000001", "direct-care");
    let receptionist = token(data, "R8009", PCN_PRACTICE, "555000000002", "direct-care");
    let outsider = token(
        data,
        "R8000",
        OUTSIDE_PRACTICE,
        "555000000003",
        "direct-care",
    );
    let ig = token(data, "R0001", PCN_PRACTICE, "555000000004", "operations");
    let server = Server::spawn(
        keel()
            .args(["serve", "--dev-issuer", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .arg("--pcn")
            .arg(data.join("pcn.json"))
            .stderr(Stdio::null()),
    );
    let origin = server.base.trim_end_matches("/fhir").to_string();
    let mut c = Caller {
        client: Server::client(),
        origin: origin.clone(),
        sent: Vec::new(),
        data,
    };
    use reqwest::Method as M;
    let until = keel_fhir_instant_in_one_hour();
    let expectations: Vec<(u16, &str, &str)> = vec![
        (
            c.send(M::GET, "/fhir/Patient/p1", &gp, &[], None).0,
            "read",
            "0",
        ),
        (
            c.send(M::GET, "/fhir/Observation/o1", &gp, &[], None).0,
            "read",
            "0",
        ),
        (
            c.send(M::GET, "/fhir/Observation?patient=p1", &gp, &[], None)
                .0,
            "search-type",
            "0",
        ),
        (
            c.send(M::GET, "/fhir/Observation/o1", &receptionist, &[], None)
                .0,
            "read",
            "4",
        ),
        (
            c.send(M::GET, "/fhir/Patient/p1", &outsider, &[], None).0,
            "read",
            "4",
        ),
        (
            c.send(M::GET, "/fhir/Patient/nope", &gp, &[], None).0,
            "read",
            "8",
        ),
        (
            c.send(
                M::POST,
                "/fhir/Observation",
                &gp,
                &[],
                Some(&observation("new", "p1")),
            )
            .0,
            "create",
            "0",
        ),
        (
            c.send(M::GET, "/fhir/Patient/p1/_history", &gp, &[], None)
                .0,
            "history-instance",
            "0",
        ),
        (
            c.send(M::GET, "/fhir/Patient/p1/$everything", &gp, &[], None)
                .0,
            "$everything",
            "0",
        ),
        (
            c.send(M::GET, "/fhir/NotAType", &gp, &[], None).0,
            "search-type",
            "8",
        ),
        (
            c.send(
                M::GET,
                "/fhir/Patient/p1",
                &gp,
                &[("accept", "application/xml")],
                None,
            )
            .0,
            "refused",
            "8",
        ),
        (
            c.send(M::GET, "/fhir/Patient/p2", &gp, &[], None).0,
            "read",
            "4",
        ),
        (
            c.send(
                M::GET,
                "/fhir/Patient/p2",
                &gp,
                &[
                    (
                        "x-break-glass-reason",
                        "unconscious at the hub, no record here",
                    ),
                    ("x-break-glass-until", &until),
                ],
                None,
            )
            .0,
            "read",
            "0",
        ),
        (
            c.send(M::GET, "/fhir/AuditEvent", &receptionist, &[], None)
                .0,
            "search-type",
            "4",
        ),
        (
            c.send(M::GET, "/api/practices", &gp, &[], None).0,
            "GET /api/practices",
            "0",
        ),
        (
            c.send(
                M::GET,
                "/fhir/Patient/$record?identifier=https://fhir.nhs.uk/Id/nhs-number|9990000018",
                &gp,
                &[],
                None,
            )
            .0,
            "$record",
            "8",
        ),
    ];
    // A break-glass the role may not use is refused, and says why.
    let (status, refusal) = c.send(
        M::GET,
        "/fhir/Patient/p2",
        &receptionist,
        &[
            ("x-break-glass-reason", "curious"),
            ("x-break-glass-until", &until),
        ],
        None,
    );
    assert!(
        refusal.to_string().contains("break-glass-not-granted"),
        "{refusal}"
    );
    let mut expectations = expectations;
    expectations.push((status, "read", "4"));
    let statuses: Vec<u16> = expectations.iter().map(|e| e.0).collect();
    assert_eq!(
        statuses,
        vec![
            200, 200, 200, 403, 403, 404, 201, 200, 200, 404, 406, 403, 200, 403, 200, 422, 403
        ],
        "{:?}",
        c.sent
    );

    // The information-governance role reads them all back.
    let (status, bundle) = c.send(M::GET, "/fhir/AuditEvent?_count=1000", &ig, &[], None);
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["total"], expectations.len(), "{bundle}");
    let mut by_correlation: HashMap<String, Vec<Value>> = HashMap::new();
    for entry in bundle["entry"].as_array().expect("entries") {
        let event = entry["resource"].clone();
        let id = event["extension"]
            .as_array()
            .and_then(|e| {
                e.iter().find(|x| {
                    x["url"]
                        .as_str()
                        .is_some_and(|u| u.ends_with("correlation-id"))
                })
            })
            .and_then(|x| x["valueString"].as_str())
            .expect("correlation id")
            .to_string();
        by_correlation.entry(id).or_default().push(event);
    }
    for ((id, _), (_, interaction, outcome)) in c.sent.iter().zip(&expectations) {
        let events = by_correlation
            .get(id)
            .unwrap_or_else(|| panic!("no record for {id}"));
        assert_eq!(events.len(), 1, "{id}: {events:?}");
        let event = &events[0];
        assert_eq!(event["subtype"][0]["code"], *interaction, "{id}: {event}");
        assert_eq!(event["outcome"], *outcome, "{id}: {event}");
        assert!(event["recorded"].as_str().is_some(), "{id}");
    }
    // Field by field for a permitted read, a denial, a write and the break-glass.
    let read = &by_correlation["audit-test-1"][0];
    assert_eq!(read["action"], "R");
    assert_eq!(
        read["agent"][0]["who"]["identifier"]["value"],
        "555000000001"
    );
    assert_eq!(read["agent"][0]["role"][0]["coding"][0]["code"], "R8000");
    assert_eq!(read["agent"][1]["who"]["identifier"]["value"], PCN_PRACTICE);
    assert_eq!(read["purposeOfEvent"][0]["coding"][0]["code"], "TREAT");
    assert_eq!(read["entity"][0]["what"]["reference"], "Patient/p1");
    assert!(
        read["extension"].to_string().contains("policy-version"),
        "{read}"
    );
    let denied = &by_correlation["audit-test-4"][0];
    assert!(
        denied["outcomeDesc"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{denied}"
    );
    let created = &by_correlation["audit-test-7"][0];
    assert_eq!(created["action"], "C");
    assert_eq!(
        created["entity"][0]["what"]["reference"], "Patient/p1",
        "{created}"
    );
    let glass = &by_correlation["audit-test-13"][0];
    assert_eq!(
        glass["purposeOfEvent"][0]["coding"][1]["code"], "BTG",
        "{glass}"
    );
    assert!(
        glass.to_string().contains("unconscious at the hub"),
        "{glass}"
    );
    let refused_glass = &by_correlation["audit-test-12"][0];
    assert_eq!(
        refused_glass["entity"][0]["what"]["reference"],
        "Patient/p2"
    );
    let record = &by_correlation["audit-test-16"][0];
    assert_eq!(
        record["entity"][0]["what"]["identifier"]["value"], "9990000018",
        "{record}"
    );

    // Searching narrows: by patient, by agent, by outcome, by break-glass.
    let count = |c: &mut Caller, query: &str| -> u64 {
        let (status, bundle) = c.send(M::GET, &format!("/fhir/AuditEvent?{query}"), &ig, &[], None);
        assert_eq!(status, 200, "{bundle}");
        bundle["total"].as_u64().expect("total")
    };
    assert_eq!(count(&mut c, "break-glass=true"), 2);
    assert_eq!(count(&mut c, "agent=555000000003"), 1);
    assert!(count(&mut c, "patient=p1") >= 6);
    assert_eq!(count(&mut c, "outcome=4&agent=555000000002"), 3);
    let (status, one) = c.send(M::GET, "/fhir/AuditEvent/1", &ig, &[], None);
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["resourceType"], "AuditEvent");
    let (status, _) = c.send(
        M::POST,
        "/fhir/AuditEvent",
        &gp,
        &[],
        Some(&json!({"resourceType": "AuditEvent"})),
    );
    assert_eq!(status, 400);

    // The break-glass raised the alert counter.
    let metrics = c
        .client
        .get(format!("{origin}/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    assert!(metrics.contains("keel_break_glass_total 1"), "{metrics}");

    let requests = c.sent.len();
    server.kill();
    let verify = keel()
        .args(["audit", "verify", "--data"])
        .arg(c.data)
        .output()
        .expect("verify");
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(
        said.contains(&format!("{requests} entries")) || said.contains(&requests.to_string()),
        "{said}"
    );
}

/// An instant one hour from now, as a FHIR instant.
fn keel_fhir_instant_in_one_hour() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time");
    let in_an_hour = i64::try_from(now.as_millis()).expect("millis") + 3_600_000;
    keel_fhir::datetime::format_instant(in_an_hour)
}
