//! `keel sim serve`: the real binary serves the generated population through the PDS
//! simulator, and its faults can be switched at runtime.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn sim_serve_answers_pds_requests_and_takes_faults_at_runtime() {
    let mut child = common::keel()
        .args(["sim", "serve", "--patients", "500", "--pds", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn keel sim serve");
    let stdout = child.stdout.take().expect("stdout");
    let line = BufReader::new(stdout)
        .lines()
        .next()
        .expect("a line")
        .expect("read");
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

    let _ = child.kill();
    let _ = child.wait();
}
