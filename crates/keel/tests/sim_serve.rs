//! `keel sim serve`: the real binary serves the generated population through the PDS, GP
//! Connect, EMIS-style and TPP-style simulators, and faults can be switched at runtime.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn sim_serve_answers_every_simulator_and_takes_faults_at_runtime() {
    let mut child = common::keel()
        .args([
            "sim",
            "serve",
            "--patients",
            "500",
            "--pds",
            "127.0.0.1:0",
            "--gp-connect",
            "127.0.0.1:0",
            "--emis",
            "127.0.0.1:0",
            "--tpp",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn keel sim serve");
    let stdout = child.stdout.take().expect("stdout");
    let lines: Vec<String> = BufReader::new(stdout)
        .lines()
        .take(4)
        .map(|l| l.expect("read"))
        .collect();
    let line = &lines[0];
    let base = line
        .strip_prefix("keel sim: PDS listening on ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    let root = base
        .split("/personal-demographics")
        .next()
        .unwrap_or_default()
        .to_string();
    let client = common::Server::client();
    let request_id = "6f1c2a8e-3b7d-4e9a-9c11-2d4f5b6a7c8d";

    // An unknown but valid test-range number: 404 with a Spine OperationOutcome.
    let response = client
        .get(format!("{base}/Patient/9990000018"))
        .header("X-Request-ID", request_id)
        .send()
        .expect("get");
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().expect("json");
    assert!(status == 200 || status == 404, "{status} {body}");
    assert!(
        body["resourceType"] == "Patient" || body["resourceType"] == "OperationOutcome",
        "{body}"
    );

    // An outage switched on through the admin endpoint, then reset.
    let put = client
        .put(format!("{root}/_admin/faults"))
        .header("content-type", "application/json")
        .body(r#"{"outage": true}"#)
        .send()
        .expect("put faults");
    assert_eq!(put.status().as_u16(), 200);
    let during = client
        .get(format!("{base}/Patient/9990000018"))
        .header("X-Request-ID", request_id)
        .send()
        .expect("get");
    assert_eq!(during.status().as_u16(), 503);
    let reset = client
        .post(format!("{root}/_admin/faults/reset"))
        .send()
        .expect("reset");
    assert_eq!(reset.status().as_u16(), 200);
    let after = client
        .get(format!("{base}/Patient/9990000018"))
        .header("X-Request-ID", request_id)
        .send()
        .expect("get");
    assert_ne!(after.status().as_u16(), 503);

    // The other simulators answer in their own shapes.
    let address = |prefix: &str| -> String {
        let line = lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in {lines:?}"));
        let url = line[prefix.len()..].split(' ').next().unwrap_or_default();
        url.split('/').take(3).collect::<Vec<_>>().join("/")
    };
    let gp_connect = address("keel sim: GP Connect listening on ");
    let unchecked = client
        .post(format!(
            "{gp_connect}/Y90001/STU3/1/gpconnect/Patient/$gpc.getstructuredrecord"
        ))
        .send()
        .expect("post");
    let status = unchecked.status().as_u16();
    let body: serde_json::Value = unchecked.json().expect("json");
    assert!(status == 400 || status == 404, "{status} {body}");
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");

    let emis = address("keel sim: EMIS-style listening on ");
    let no_app = client
        .get(format!(
            "{emis}/emis-style/api/v1/practices/Y90001/patients?nhsNumber=9990000018"
        ))
        .send()
        .expect("get");
    assert!(matches!(no_app.status().as_u16(), 401 | 404));
    assert!(
        no_app.text().expect("text").starts_with("<"),
        "EMIS-style answers in XML"
    );

    let tpp = address("keel sim: TPP-style listening on ");
    let no_session = client
        .get(format!(
            "{tpp}/tpp/v1/units/Y90001/patients?nhsNumber=9990000018"
        ))
        .send()
        .expect("get");
    assert!(matches!(no_session.status().as_u16(), 401 | 404));
    let body: serde_json::Value = no_session.json().expect("json");
    assert!(body.get("Error").is_some(), "TPP-style error shape: {body}");

    let _ = child.kill();
    let _ = child.wait();
}
