//! `POST /api/identity/trace` against the real binary (`keel serve --pds-url`) and the PDS
//! simulator over HTTP: a verified number confirmed, a record without one traced, access as
//! `$match`, one audit record naming the NHS numbers, and PDS going away reported as
//! `unavailable`. Synthetic patients, 999-range NHS numbers.

mod common;

use common::{Server, audit_events_of, keel, token};
use keel_sim::faults::FaultHandle;
use keel_sim::pds::{self, PdsSimulator};
use keel_sim::{Options, Population};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Stdio;

const PRACTICE: &str = "A81001";

fn post(
    client: &reqwest::blocking::Client,
    url: &str,
    token: &str,
    id: &str,
    body: &Value,
) -> (u16, Value) {
    let response = client
        .post(url)
        .bearer_auth(token)
        .header("x-request-id", id)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn trace_confirms_and_traces_through_pds_under_access_and_audit_and_says_when_pds_is_down() {
    let patients = pds::from_population(&Population::generate(Options {
        patients: 300,
        practices: 2,
        demographics_only: true,
        ..Options::default()
    }));
    let person = patients
        .iter()
        .find(|p| {
            pds::confidentiality_of(p) == "U"
                && p.get("deceasedDateTime").is_none()
                && patients
                    .iter()
                    .filter(|q| q["name"] == p["name"] && q["birthDate"] == p["birthDate"])
                    .count()
                    == 1
        })
        .expect("an ordinary patient")
        .clone();
    let nhs = person["id"].as_str().expect("id").to_string();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (addr, _task) = runtime
        .block_on(pds::serve_with_faults(
            PdsSimulator::new(patients),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            FaultHandle::default(),
        ))
        .expect("bind");

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let pds_url = format!("http://{addr}{}", pds::BASE_PATH);
    let server = Server::spawn(
        keel()
            .args([
                "serve",
                "--dev-issuer",
                "--listen",
                "127.0.0.1:0",
                "--pds-url",
            ])
            .arg(&pds_url)
            .arg("--data")
            .arg(data)
            .stderr(Stdio::inherit()),
    );
    let gp = token(data, "R8000", PRACTICE, "555000000001", "direct-care");
    let analyst = token(data, "R8012", PRACTICE, "555000000005", "secondary-use");
    let ig = token(data, "R0001", PRACTICE, "555000000004", "operations");
    let client = Server::client();
    let url = format!(
        "{}/api/identity/trace",
        server.base.trim_end_matches("/fhir")
    );

    let (status, confirmed) = post(&client, &url, &gp, "trace-1", &person);
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["outcome"], "confirmed", "{confirmed}");
    assert_eq!(confirmed["nhsNumber"], nhs.as_str());
    assert_eq!(confirmed["numberCheck"]["answer"], "current");
    assert_eq!(confirmed["candidates"][0]["basis"], "retrieve");
    assert!(
        confirmed["candidates"][0]["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .all(|f| f["agreement"] == "agrees"),
        "{confirmed}"
    );

    let mut unnumbered = person.clone();
    unnumbered
        .as_object_mut()
        .expect("object")
        .remove("identifier");
    let (status, traced) = post(&client, &url, &gp, "trace-2", &unnumbered);
    assert_eq!(status, 200, "{traced}");
    assert_eq!(traced["outcome"], "traced", "{traced}");
    assert_eq!(traced["nhsNumber"], nhs.as_str());
    assert_eq!(traced["candidates"][0]["basis"], "exact-search");
    assert_eq!(traced["candidates"][0]["score"], 1.0);

    let (status, refused) = post(&client, &url, &analyst, "trace-3", &person);
    assert_eq!(status, 403, "{refused}");

    let (status, bad) = post(
        &client,
        &url,
        &gp,
        "trace-4",
        &serde_json::json!({"resourceType": "Observation"}),
    );
    assert_eq!(status, 400, "{bad}");

    // One audit record per request, naming the NHS number traced.
    let of_request = audit_events_of(&client, &server.base, &ig);
    for id in ["trace-1", "trace-2", "trace-3"] {
        let records = of_request(id);
        assert_eq!(records.len(), 1, "{id}: {records:?}");
        assert_eq!(records[0]["subtype"][0]["code"], "identity-trace", "{id}");
    }
    assert!(of_request("trace-2")[0].to_string().contains(&nhs));

    // PDS goes away: the answer is "unavailable", not "no match".
    drop(runtime);
    let (status, down) = post(&client, &url, &gp, "trace-5", &unnumbered);
    assert_eq!(status, 200, "{down}");
    assert_eq!(down["outcome"], "unavailable", "{down}");
    assert_eq!(down["candidates"].as_array().map(Vec::len), Some(0));
    server.kill();
}
