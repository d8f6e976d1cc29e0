//! Bulk export and idempotency keys over real HTTP against the real binary: the kick-off, the
//! status URL, the manifest and its NDJSON parts; a repeated kick-off or write with the same
//! `Idempotency-Key` answered from the first; and the export refused to roles without it.

mod common;

use common::{Server, keel, token};
use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn post(client: &Client, url: String, body: &Value, key: Option<&str>) -> Response {
    let mut request = client
        .post(url)
        .header("content-type", "application/fhir+json")
        .json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().expect("POST")
}

fn kick_off(client: &Client, url: String, key: Option<&str>) -> Response {
    let mut request = client.get(url).header("prefer", "respond-async");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().expect("kick-off")
}

fn location(response: &Response) -> String {
    response.headers()["content-location"]
        .to_str()
        .expect("content-location")
        .to_string()
}

/// Polls the status URL until the manifest (200).
fn wait_for_manifest(client: &Client, status_url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = client.get(status_url).send().expect("poll");
        if response.status() == 200 {
            return response.json().expect("manifest");
        }
        assert_eq!(response.status(), 202, "in progress until done");
        assert!(response.headers().contains_key("x-progress"));
        assert!(Instant::now() < deadline, "the export did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_bulk_export_runs_in_the_background_and_serves_its_parts() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let client = Server::client();
    let base = &server.base;
    for family in ["Ash", "Birch", "Cedar"] {
        let r = post(
            &client,
            format!("{base}/Patient"),
            &json!({"resourceType": "Patient", "name": [{"family": family}]}),
            None,
        );
        assert_eq!(r.status(), 201);
    }
    for value in [70, 72] {
        let r = post(
            &client,
            format!("{base}/Observation"),
            &json!({"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "364075005"}]},
                "valueQuantity": {"value": value, "unit": "/min"}}),
            None,
        );
        assert_eq!(r.status(), 201);
    }

    // Refusals lose nothing and say what to do.
    let r = client.get(format!("{base}/$export")).send().expect("GET");
    assert_eq!(r.status(), 400, "respond-async is required");
    let r = kick_off(
        &client,
        format!("{base}/$export?_typeFilter=Patient%3Fname%3DAsh"),
        None,
    );
    assert_eq!(r.status(), 400, "unsupported parameters are refused");
    let r = kick_off(&client, format!("{base}/$export?_type=NotAType"), None);
    assert_eq!(r.status(), 404);

    let r = kick_off(
        &client,
        format!("{base}/$export?_type=Patient,Observation"),
        None,
    );
    assert_eq!(r.status(), 202);
    let status_url = location(&r);
    let manifest = wait_for_manifest(&client, &status_url);
    assert_eq!(manifest["requiresAccessToken"], true);
    assert_eq!(
        manifest["request"],
        format!("{base}/$export?_type=Patient,Observation")
    );
    let outputs = manifest["output"].as_array().expect("output");
    let counts: Vec<(String, u64)> = outputs
        .iter()
        .map(|o| {
            (
                o["type"].as_str().expect("type").to_string(),
                o["count"].as_u64().expect("count"),
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![("Patient".to_string(), 3), ("Observation".to_string(), 2)]
    );
    for output in outputs {
        let r = client
            .get(output["url"].as_str().expect("url"))
            .send()
            .expect("download");
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/fhir+ndjson");
        let text = r.text().expect("text");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one resource per line"))
            .collect();
        assert_eq!(lines.len() as u64, output["count"].as_u64().expect("count"));
        assert!(lines.iter().all(|l| l["resourceType"] == output["type"]));
    }

    // `_since` after everything: an export with no parts. Deleting it removes it.
    let r = kick_off(
        &client,
        format!("{base}/$export?_since=2999-01-01T00:00:00Z"),
        None,
    );
    assert_eq!(r.status(), 202);
    let empty_url = location(&r);
    assert_eq!(wait_for_manifest(&client, &empty_url)["output"], json!([]));
    let r = client.delete(&empty_url).send().expect("DELETE");
    assert_eq!(
        r.status(),
        202,
        "the client says it has the parts: they are deleted"
    );
    let r = client.get(&empty_url).send().expect("GET");
    assert_eq!(r.status(), 404);
    let r = client.delete(&empty_url).send().expect("DELETE");
    assert_eq!(r.status(), 404, "once");

    // The same kick-off sent twice with one key is one export.
    let first = kick_off(
        &client,
        format!("{base}/$export?_type=Patient"),
        Some("export-1"),
    );
    let again = kick_off(
        &client,
        format!("{base}/$export?_type=Patient"),
        Some("export-1"),
    );
    assert_eq!(
        (first.status().as_u16(), again.status().as_u16()),
        (202, 202)
    );
    assert_eq!(location(&first), location(&again));
    let r = kick_off(
        &client,
        format!("{base}/$export?_type=Observation"),
        Some("export-1"),
    );
    assert_eq!(r.status(), 422, "a key reused for another request");
    let r = client
        .get(format!("{base}/_export/999999"))
        .send()
        .expect("GET");
    assert_eq!(r.status(), 404);
}

#[test]
fn writes_repeated_with_an_idempotency_key_happen_once() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let client = Server::client();
    let base = &server.base;
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Once"}]});
    let first = post(
        &client,
        format!("{base}/Patient"),
        &patient,
        Some("create-1"),
    );
    let again = post(
        &client,
        format!("{base}/Patient"),
        &patient,
        Some("create-1"),
    );
    assert_eq!(
        (first.status().as_u16(), again.status().as_u16()),
        (201, 201)
    );
    assert_eq!(first.headers()["location"], again.headers()["location"]);
    let created: Value = first.json().expect("body");
    let repeated: Value = again.json().expect("body");
    assert_eq!(created, repeated, "the same response");
    let found: Value = client
        .get(format!("{base}/Patient?family=Once&_summary=count"))
        .send()
        .expect("search")
        .json()
        .expect("bundle");
    assert_eq!(found["total"], 1);

    let other = json!({"resourceType": "Patient", "name": [{"family": "Other"}]});
    let r = post(&client, format!("{base}/Patient"), &other, Some("create-1"));
    assert_eq!(r.status(), 422);
    let outcome: Value = r.json().expect("outcome");
    assert_eq!(outcome["resourceType"], "OperationOutcome");

    // An update repeated with its key is not a second version.
    let id = created["id"].as_str().expect("id");
    let update = json!({"resourceType": "Patient", "id": id, "name": [{"family": "Once", "given": ["Updated"]}]});
    let put = |key: &str| {
        client
            .put(format!("{base}/Patient/{id}"))
            .header("content-type", "application/fhir+json")
            .header("idempotency-key", key)
            .json(&update)
            .send()
            .expect("PUT")
    };
    let v1 = put("update-1");
    let v2 = put("update-1");
    assert_eq!(v1.headers()["etag"], "W/\"2\"");
    assert_eq!(v2.headers()["etag"], "W/\"2\"");

    // Keys are for writes; elsewhere they are refused rather than ignored.
    let r = client
        .get(format!("{base}/Patient?family=Once"))
        .header("idempotency-key", "search-1")
        .send()
        .expect("search");
    assert_eq!(r.status(), 400);
    let r = client
        .post(format!("{base}/Patient"))
        .header("content-type", "application/fhir+json")
        .header("idempotency-key", "")
        .json(&patient)
        .send()
        .expect("POST");
    assert_eq!(r.status(), 400, "an empty key");
}

#[test]
fn a_bulk_export_needs_a_role_granted_it() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = keel()
        .args([
            "token", "--role", "R8000", "--org", "A81001", "--user", "init", "--data",
        ])
        .arg(data.path())
        .output()
        .expect("keel token");
    assert!(out.status.success(), "creates the development issuer");
    let server = Server::start_with_dev_issuer(data.path());
    let client = Server::client();
    let base = &server.base;
    let ask = |role: &str| {
        client
            .get(format!("{base}/$export?_type=Patient"))
            .header("prefer", "respond-async")
            .bearer_auth(token(
                data.path(),
                role,
                "A81001",
                "555000111222",
                "direct-care",
            ))
            .send()
            .expect("kick-off")
    };
    let refused = ask("R8003");
    assert_eq!(refused.status(), 403);
    let outcome: Value = refused.json().expect("outcome");
    assert!(outcome.to_string().contains("export"), "{outcome}");

    let accepted = ask("R8000");
    assert_eq!(accepted.status(), 202);
    let status_url = location(&accepted);
    // Another user does not see it.
    let other = client
        .get(&status_url)
        .bearer_auth(token(
            data.path(),
            "R8000",
            "A81001",
            "555000999888",
            "direct-care",
        ))
        .send()
        .expect("poll");
    assert_eq!(other.status(), 404);
}
