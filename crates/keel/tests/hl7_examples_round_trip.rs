//! Acceptance: every HL7 R4 example resource (hl7.fhir.r4.examples@4.0.1) that is not a
//! conformance or definition resource (or an AuditEvent, which only Keel writes) is accepted by update-as-create (or create) on the real
//! `keel serve`, and reads back exactly as sent apart from `id` and `meta`; decimals keep their
//! precision. The validator rejects exactly one known-invalid example.

mod common;

use common::{Server, first_difference, hl7_examples_dir, without_id_and_meta};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Conformance and definition resources (not example data), and AuditEvent: Keel writes its own
/// audit trail and refuses AuditEvents sent to it (`audit_completeness.rs` checks the refusal).
const SKIPPED_TYPES: &[&str] = &[
    "AuditEvent",
    "StructureDefinition",
    "SearchParameter",
    "ValueSet",
    "CodeSystem",
    "ConceptMap",
    "OperationDefinition",
    "CapabilityStatement",
    "ImplementationGuide",
    "NamingSystem",
    "CompartmentDefinition",
    "StructureMap",
    "GraphDefinition",
    "MessageDefinition",
    "TerminologyCapabilities",
];

/// Examples that are invalid R4 and must be rejected with 422 (items without `linkId`).
const EXPECTED_REJECTED: &[&str] = &["Questionnaire-qs1.json"];

const CLIENTS: usize = 4;

struct Example {
    file: String,
    text: String,
    json: Value,
    resource_type: String,
    id: Option<String>,
}

enum Outcome {
    RoundTripped,
    Rejected(String),
    Failed(String),
}

fn load_examples() -> (Vec<Example>, usize) {
    let dir = hl7_examples_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| {
            !matches!(
                p.file_name().and_then(|n| n.to_str()),
                Some("package.json" | ".index.json")
            )
        })
        .collect();
    paths.sort();
    let mut skipped = 0;
    let mut examples = Vec::new();
    for path in paths {
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name")
            .to_string();
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: cannot read: {e}"));
        let json: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: not JSON: {e}"));
        let resource_type = json["resourceType"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: no resourceType"))
            .to_string();
        if SKIPPED_TYPES.contains(&resource_type.as_str()) {
            skipped += 1;
            continue;
        }
        let id = json["id"].as_str().map(str::to_string);
        examples.push(Example {
            file,
            text,
            json,
            resource_type,
            id,
        });
    }
    (examples, skipped)
}

fn round_trip(client: &reqwest::blocking::Client, base: &str, example: &Example) -> Outcome {
    let file = &example.file;
    let (method, url) = match &example.id {
        Some(id) => ("PUT", format!("{base}/{}/{id}", example.resource_type)),
        None => ("POST", format!("{base}/{}", example.resource_type)),
    };
    let request = if example.id.is_some() {
        client.put(&url)
    } else {
        client.post(&url)
    };
    let response = match request
        .header("Content-Type", "application/fhir+json")
        .body(example.text.clone())
        .send()
    {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("{file}: {method} {url}: {e}")),
    };
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().unwrap_or_default();
    match status {
        200 | 201 => {}
        422 => return Outcome::Rejected(format!("{file}: {method} {url}: 422 {body}")),
        _ => {
            return Outcome::Failed(format!(
                "{file}: {method} {url}: expected 201 or 200, got {status}: {body}"
            ));
        }
    }
    let read_url = match (&example.id, location) {
        (Some(_), _) => url.clone(),
        (None, Some(location)) => {
            // Location is .../{type}/{id}/_history/{vid}: read the current version.
            let location = match location.split_once("/_history/") {
                Some((current, _)) => current.to_string(),
                None => location,
            };
            if location.starts_with("http") {
                location
            } else {
                format!("{base}/{}", location.trim_start_matches('/'))
            }
        }
        (None, None) => {
            return Outcome::Failed(format!(
                "{file}: POST {url}: {status} without a Location header"
            ));
        }
    };
    let response = match client
        .get(&read_url)
        .header("Accept", "application/fhir+json")
        .send()
    {
        Ok(r) => r,
        Err(e) => return Outcome::Failed(format!("{file}: GET {read_url}: {e}")),
    };
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    if status != 200 {
        return Outcome::Failed(format!(
            "{file}: GET {read_url} after a {method} that was accepted: {status} {text}"
        ));
    }
    let got: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return Outcome::Failed(format!("{file}: GET {read_url}: not JSON ({e})")),
    };
    if let Some(id) = &example.id
        && got["id"].as_str() != Some(id.as_str())
    {
        return Outcome::Failed(format!(
            "{file}: GET {read_url}: id {} instead of {id}",
            got["id"]
        ));
    }
    match first_difference(
        &without_id_and_meta(&example.json),
        &without_id_and_meta(&got),
    ) {
        None => Outcome::RoundTripped,
        Some(difference) => Outcome::Failed(format!(
            "{file}: read back differs from what was sent: {difference}"
        )),
    }
}

#[test]
fn hl7_r4_examples_round_trip_through_the_api() {
    let (examples, skipped) = load_examples();
    assert!(
        examples.len() >= 650,
        "only {} example resources found (skipped {skipped} definitions): is the package complete?",
        examples.len()
    );

    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let base = server.base.clone();
    let started = std::time::Instant::now();

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::with_capacity(examples.len()));
    std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| {
                let client = Server::client();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(example) = examples.get(i) else {
                        break;
                    };
                    let outcome = round_trip(&client, &base, example);
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((i, outcome));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, _)| *i);
    assert_eq!(results.len(), examples.len());

    let mut round_tripped = 0;
    let mut rejected = BTreeSet::new();
    let mut rejections = Vec::new();
    let mut failures = Vec::new();
    for (i, outcome) in &results {
        match outcome {
            Outcome::RoundTripped => round_tripped += 1,
            Outcome::Rejected(message) => {
                rejected.insert(examples[*i].file.clone());
                rejections.push(message.clone());
            }
            Outcome::Failed(message) => failures.push(message.clone()),
        }
    }
    let bundles = examples
        .iter()
        .filter(|e| e.resource_type == "Bundle")
        .count();
    println!(
        "HL7 R4 examples: {} resources ({bundles} Bundles) after skipping {skipped} definitions; {round_tripped} round-tripped, {} rejected (422), {} failed; {:.1} s with {CLIENTS} clients",
        examples.len(),
        rejected.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );

    for message in &rejections {
        let shown: String = message.chars().take(600).collect();
        println!("rejected: {shown}");
    }
    let expected: BTreeSet<String> = EXPECTED_REJECTED.iter().map(|s| s.to_string()).collect();
    let mut problems = Vec::new();
    if !failures.is_empty() {
        problems.push(format!(
            "{} accepted examples did not round-trip (or failed otherwise):\n  {}",
            failures.len(),
            failures.join("\n  ")
        ));
    }
    if rejected != expected {
        let unexpected: Vec<&String> = rejected.difference(&expected).collect();
        let missing: Vec<&String> = expected.difference(&rejected).collect();
        let details: Vec<&String> = rejections
            .iter()
            .filter(|m| unexpected.iter().any(|f| m.starts_with(f.as_str())))
            .collect();
        problems.push(format!(
            "the set of rejected (422) examples is wrong: rejected but valid {unexpected:?}; accepted but invalid {missing:?}\n  {}",
            details.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  ")
        ));
    }
    for message in rejections
        .iter()
        .filter(|m| m.starts_with("Questionnaire-qs1.json"))
    {
        if !message.contains("linkId") {
            problems.push(format!("Questionnaire-qs1.json was rejected, but not for its items without linkId: {message}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(round_tripped, examples.len() - expected.len());
}
