//! Acceptance: two `keel serve` processes on one PostgreSQL database stay correct. 100
//! concurrent conditional creates for one identifier, split across the nodes, leave exactly
//! one resource; both nodes then find it, and its audit chain is one linear chain.

mod common;

use common::{Server, TestSchema, keel};
use serde_json::{Value, json};

const REQUESTS: usize = 100;
const CALLERS: usize = 20;

fn node(data: &std::path::Path, database: &str) -> Server {
    Server::start_with_args(data, &["--database", database])
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

/// A node on `database` with a short job lease, under a name the test can see in the queue.
fn node_named(data: &std::path::Path, database: &str, name: &str) -> Server {
    Server::start_with_args(
        data,
        &[
            "--job-lease-secs",
            "2",
            "--node",
            name,
            "--database",
            database,
        ],
    )
}

/// Acceptance: a background job (a bulk export) claimed by a node that then dies is run by
/// the other node once the lease ends, and its outputs are those of exactly one attempt. The
/// test holds the export outputs table, so the claiming node is stopped mid-job (blocked on its
/// first part) when it is killed; nothing in Keel knows about the test.
#[test]
fn a_background_job_survives_the_death_of_its_node_and_runs_exactly_once() {
    let schema = TestSchema::create("job_lease");
    let data = tempfile::tempdir().expect("tempdir");
    let mut nodes = [
        Some(node_named(data.path(), &schema.url, "node-a")),
        Some(node_named(data.path(), &schema.url, "node-b")),
    ];
    let bases: Vec<String> = nodes
        .iter()
        .map(|n| n.as_ref().expect("node").base.clone())
        .collect();
    let client = Server::client();
    for i in 0..30 {
        let status = client
            .post(format!("{}/Patient", bases[i % 2]))
            .header("content-type", "application/fhir+json")
            .json(&json!({"resourceType": "Patient", "name": [{"family": format!("Export{i}")}]}))
            .send()
            .expect("POST")
            .status();
        assert_eq!(status, 201);
    }

    let mut holder = postgres::Client::connect(&schema.url, postgres::NoTls).expect("connect");
    let mut watcher = postgres::Client::connect(&schema.url, postgres::NoTls).expect("connect");
    let mut hold = holder.transaction().expect("begin");
    hold.batch_execute("LOCK TABLE job_outputs IN EXCLUSIVE MODE")
        .expect("lock");

    let kick_off = client
        .get(format!("{}/$export?_type=Patient", bases[0]))
        .header("prefer", "respond-async")
        .header("accept", "application/fhir+json")
        .send()
        .expect("kick-off");
    assert_eq!(kick_off.status(), 202);
    let status_url = kick_off.headers()["content-location"]
        .to_str()
        .expect("location")
        .to_string();
    let job_id: i64 = status_url
        .rsplit('/')
        .next()
        .expect("id")
        .parse()
        .expect("id");

    // Wait until a node has claimed the export and is blocked writing its first part.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let owner: String = loop {
        let row = watcher
            .query_one(
                "SELECT lease_owner, (SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                 WHERE c.relname = 'job_outputs' AND NOT l.granted) FROM jobs WHERE id = $1",
                &[&job_id],
            )
            .expect("job");
        let (owner, waiting): (Option<String>, i64) = (row.get(0), row.get(1));
        if let (Some(owner), 1..) = (owner, waiting) {
            break owner;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no node claimed the export"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let dead = if owner == "node-a" { 0 } else { 1 };
    let survivor = 1 - dead;
    nodes[dead].take().expect("node").kill();
    hold.commit().expect("release the outputs table");

    // The survivor claims the job once the dead node's lease has ended and finishes it.
    let manifest: Value = loop {
        let response = client
            .get(status_url.replace(&bases[0], &bases[survivor]))
            .send()
            .expect("poll");
        if response.status() == 200 {
            break response.json().expect("manifest");
        }
        assert_eq!(response.status(), 202, "in progress until done");
        assert!(
            std::time::Instant::now() < deadline + std::time::Duration::from_secs(30),
            "the export did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let outputs = manifest["output"].as_array().expect("output");
    assert_eq!(outputs.len(), 1, "{manifest}");
    assert_eq!(outputs[0]["type"], "Patient");
    assert_eq!(outputs[0]["count"], 30);
    let url = outputs[0]["url"]
        .as_str()
        .expect("url")
        .replace(&bases[0], &bases[survivor]);
    let ndjson = client
        .get(url)
        .send()
        .expect("download")
        .text()
        .expect("text");
    let ids: std::collections::HashSet<String> = ndjson
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("a resource per line")["id"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect();
    assert_eq!(
        (ndjson.lines().count(), ids.len()),
        (30, 30),
        "every patient exactly once"
    );

    let row = watcher
        .query_one(
            "SELECT attempts, lease_owner, state, (SELECT count(*) FROM job_outputs WHERE job = $1) FROM jobs WHERE id = $1",
            &[&job_id],
        )
        .expect("job");
    let (attempts, last_owner, state, parts): (i32, Option<String>, String, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(state, "done");
    assert_eq!(attempts, 2, "claimed by the dead node, then once more");
    assert_eq!(last_owner.as_deref(), Some(["node-a", "node-b"][survivor]));
    assert_eq!(parts, 1, "the outputs of one attempt only");
}

/// A create retried with its `Idempotency-Key` — here 20 times at once, to both nodes — is one
/// resource, and every attempt gets the first one's answer.
#[test]
fn one_idempotency_key_across_two_nodes_creates_once() {
    let schema = TestSchema::create("idempotency");
    let data = tempfile::tempdir().expect("tempdir");
    let nodes = [
        node(data.path(), &schema.url),
        node(data.path(), &schema.url),
    ];
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Retried"}]});
    let answers: Vec<(u16, Option<String>)> = std::thread::scope(|scope| {
        let callers: Vec<_> = (0..20)
            .map(|i| {
                let (base, patient) = (&nodes[i % 2].base, &patient);
                scope.spawn(move || {
                    let response = Server::client()
                        .post(format!("{base}/Patient"))
                        .header("content-type", "application/fhir+json")
                        .header("idempotency-key", "retry-0001")
                        .json(patient)
                        .send()
                        .expect("POST");
                    let status = response.status().as_u16();
                    let body: Value = response.json().unwrap_or(Value::Null);
                    (status, body["id"].as_str().map(str::to_string))
                })
            })
            .collect();
        callers
            .into_iter()
            .map(|c| c.join().expect("caller"))
            .collect()
    });
    let first = answers[0].clone();
    assert_eq!(first.0, 201);
    assert!(answers.iter().all(|a| *a == first), "{answers:?}");
    for node in &nodes {
        let found: Value = Server::client()
            .get(format!(
                "{}/Patient?family=Retried&_summary=count",
                node.base
            ))
            .send()
            .expect("search")
            .json()
            .expect("bundle");
        assert_eq!(found["total"], 1);
    }
}
