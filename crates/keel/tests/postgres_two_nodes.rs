//! Acceptance: two `keel serve` processes on one PostgreSQL database stay correct. 100
//! concurrent conditional creates for one identifier, split across the nodes, leave exactly
//! one resource; both nodes then find it, and its audit chain is one linear chain.

mod common;

use common::{Server, TestSchema, keel};
use serde_json::{Value, json};
use std::process::Stdio;

const REQUESTS: usize = 100;
const CALLERS: usize = 20;

fn node(data: &std::path::Path, database: &str) -> Server {
    Server::spawn(
        keel()
            .args([
                "serve",
                "--insecure-no-auth",
                "--listen",
                "127.0.0.1:0",
                "--database",
                database,
                "--data",
            ])
            .arg(data)
            .stderr(Stdio::inherit()),
    )
}

#[test]
fn conditional_creates_split_across_two_postgres_nodes_leave_one_resource() {
    let schema = TestSchema::create("two_nodes");
    // One data directory: the nodes share the audit signing key, as a deployment would.
    let data = tempfile::tempdir().expect("tempdir");
    let nodes = [
        node(data.path(), &schema.url),
        node(data.path(), &schema.url),
    ];
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Race", "given": ["Ann"]}],
        "gender": "female", "birthDate": "1970-01-01",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9991234578"}]});

    let results: Vec<(usize, u16, Option<String>)> = std::thread::scope(|scope| {
        let callers: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let (bases, patient) = (&bases, &patient);
                scope.spawn(move || {
                    let client = Server::client();
                    (0..REQUESTS / CALLERS)
                        .map(|i| {
                            let n = caller * (REQUESTS / CALLERS) + i;
                            let node = n % 2;
                            let response = client
                                .post(format!("{}/Patient", bases[node]))
                                .header("content-type", "application/fhir+json")
                                .header(
                                    "if-none-exist",
                                    "identifier=https://fhir.nhs.uk/Id/nhs-number|9991234578",
                                )
                                .json(patient)
                                .send()
                                .expect("POST");
                            let status = response.status().as_u16();
                            let body: Value = response.json().unwrap_or(Value::Null);
                            (node, status, body["id"].as_str().map(str::to_string))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        callers
            .into_iter()
            .flat_map(|c| c.join().expect("caller"))
            .collect()
    });

    assert_eq!(results.len(), REQUESTS);
    for node in 0..2 {
        assert_eq!(
            results.iter().filter(|(n, _, _)| *n == node).count(),
            REQUESTS / 2,
            "half of the requests went to node {node}"
        );
    }
    let created = results.iter().filter(|(_, s, _)| *s == 201).count();
    let found = results.iter().filter(|(_, s, _)| *s == 200).count();
    assert_eq!((created, found), (1, REQUESTS - 1), "{results:?}");
    let ids: std::collections::HashSet<_> = results.iter().map(|(_, _, id)| id.clone()).collect();
    assert_eq!(ids.len(), 1, "every answer names the one resource: {ids:?}");

    let client = Server::client();
    for base in &bases {
        let bundle: Value = client
            .get(format!(
                "{base}/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9991234578"
            ))
            .send()
            .expect("search")
            .json()
            .expect("bundle");
        assert_eq!(bundle["total"], 1, "{base}");
    }
    drop(nodes);

    // Every request of both nodes left its record in one chain that verifies.
    let verify = keel()
        .args(["audit", "verify", "--database", &schema.url, "--data"])
        .arg(data.path())
        .output()
        .expect("keel audit verify");
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
