//! Acceptance: the NHS PDS FHIR API example payloads (UK Core Patients with NHS numbers, GP
//! links and UK Core extensions), from `Patient/` and from inside the searchset Bundles of the
//! other folders, are stored by the real `keel serve`, read back unchanged apart from `id` and
//! `meta` (with the confidentiality labels in `meta.security` kept), and are found by their
//! NHS number.

mod common;

use common::{
    Server, first_difference, search_all, shared_dir, summary_count, without_id_and_meta,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// A Patient payload and where it came from.
struct Payload {
    source: String,
    patient: Value,
}

fn pds_dir() -> PathBuf {
    let dir = shared_dir().join("fhir-test-assets/uk-pds-examples");
    assert!(
        dir.join("manifest.json").is_file(),
        "the PDS examples are expected at {} (with manifest.json)",
        dir.display()
    );
    dir
}

/// Patients in `value` (a Patient, or a Bundle holding Patients, at any depth).
fn collect_patients(value: &Value, source: &str, out: &mut Vec<Payload>) {
    match value["resourceType"].as_str() {
        Some("Patient") => out.push(Payload {
            source: source.to_string(),
            patient: value.clone(),
        }),
        Some("Bundle") => {
            for (i, entry) in value["entry"].as_array().into_iter().flatten().enumerate() {
                if entry.get("resource").is_some() {
                    collect_patients(&entry["resource"], &format!("{source} entry {i}"), out);
                }
            }
        }
        _ => {}
    }
}

/// Every Patient in the folder: the manifest's files, in manifest order (Patient files and the
/// resources of Bundles in any folder).
fn load_payloads(dir: &Path) -> (Vec<Payload>, usize, usize) {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifest.json")).expect("read manifest.json"),
    )
    .expect("manifest.json is JSON");
    let files = manifest["files"]
        .as_array()
        .expect("manifest.json has files");
    let mut payloads = Vec::new();
    let (mut patient_files, mut bundles_with_patients) = (0, 0);
    // Patient files first, then Bundles: a later PUT of the same id replaces an earlier one.
    let mut ordered: Vec<&Value> = files
        .iter()
        .filter(|f| f["resourceType"] == "Patient")
        .collect();
    ordered.extend(files.iter().filter(|f| f["resourceType"] != "Patient"));
    for entry in ordered {
        let file = entry["file"].as_str().expect("manifest file name");
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
        let json: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: not JSON: {e}"));
        let before = payloads.len();
        collect_patients(&json, file, &mut payloads);
        match json["resourceType"].as_str() {
            Some("Patient") => patient_files += 1,
            Some("Bundle") if payloads.len() > before => bundles_with_patients += 1,
            _ => {}
        }
    }
    // The folder is expected to match its manifest.
    let on_disk = std::fs::read_dir(dir.join("Patient"))
        .expect("read Patient/")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .count();
    assert_eq!(
        on_disk, patient_files,
        "Patient/ holds {on_disk} files but manifest.json lists {patient_files}"
    );
    (payloads, patient_files, bundles_with_patients)
}

fn nhs_numbers(patient: &Value) -> Vec<String> {
    patient["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["system"] == NHS_NUMBER)
        .filter_map(|i| i["value"].as_str().map(str::to_string))
        .collect()
}

/// `meta` without what the server sets.
fn meta_kept(resource: &Value) -> Value {
    let mut meta = resource
        .get("meta")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    if let Some(map) = meta.as_object_mut() {
        map.remove("versionId");
        map.remove("lastUpdated");
    }
    meta
}

fn get_json(client: &reqwest::blocking::Client, url: &str) -> Result<Value, String> {
    let response = client
        .get(url)
        .send()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    let text = response.text().map_err(|e| format!("GET {url}: {e}"))?;
    if status.as_u16() != 200 {
        return Err(format!("GET {url}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("GET {url}: not JSON ({e})"))
}

/// Differences between what was sent and what came back: the whole resource apart from
/// id/meta, then (for clearer messages) the identifiers and extensions, and the kept meta.
fn compare(sent: &Value, got: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["identifier", "extension"] {
        if sent.get(key) != got.get(key) {
            out.push(format!(
                "{key} changed: {}",
                first_difference(&sent[key], &got[key]).unwrap_or_default()
            ));
        }
    }
    if let Some(d) = first_difference(&without_id_and_meta(sent), &without_id_and_meta(got)) {
        out.push(format!("resource differs: {d}"));
    }
    if let Some(d) = first_difference(&meta_kept(sent), &meta_kept(got)) {
        out.push(format!(
            "meta (security labels, profiles, tags) not kept: {d}"
        ));
    }
    out
}

#[test]
fn pds_patients_round_trip_and_are_found_by_nhs_number() {
    let dir = pds_dir();
    let (payloads, patient_files, bundles_with_patients) = load_payloads(&dir);
    assert!(
        patient_files >= 20 && bundles_with_patients >= 20,
        "found {patient_files} Patient files and {bundles_with_patients} Bundles with Patients"
    );

    let data = tempfile::tempdir().expect("tempdir");
    let server = Server::start(data.path());
    let client = Server::client();
    let base = &server.base;

    let mut failures = Vec::new();
    // What each stored Patient should be now: id -> (source, last payload sent).
    let mut stored: BTreeMap<String, (String, Value)> = BTreeMap::new();
    for payload in &payloads {
        let source = &payload.source;
        let sent = &payload.patient;
        let body = serde_json::to_string(sent).expect("serialize");
        let (method, url, request) = match sent["id"].as_str() {
            Some(id) => (
                "PUT",
                format!("{base}/Patient/{id}"),
                client.put(format!("{base}/Patient/{id}")),
            ),
            None => (
                "POST",
                format!("{base}/Patient"),
                client.post(format!("{base}/Patient")),
            ),
        };
        let response = request
            .header("Content-Type", "application/fhir+json")
            .body(body)
            .send()
            .unwrap_or_else(|e| panic!("{source}: {method} {url}: {e}"));
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().unwrap_or_default();
        if status != 200 && status != 201 {
            failures.push(format!(
                "{source}: {method} {url}: expected 201 or 200, got {status}: {text}"
            ));
            continue;
        }
        let id = match (sent["id"].as_str(), &location) {
            (Some(id), _) => id.to_string(),
            (None, Some(location)) => {
                let current = location.split("/_history/").next().unwrap_or(location);
                current.rsplit('/').next().unwrap_or_default().to_string()
            }
            (None, None) => {
                failures.push(format!(
                    "{source}: POST {url}: {status} without a Location header"
                ));
                continue;
            }
        };
        let read = format!("{base}/Patient/{id}");
        match get_json(&client, &read) {
            Err(e) => failures.push(format!("{source}: read after {method}: {e}")),
            Ok(got) => {
                if got["id"].as_str() != Some(id.as_str()) {
                    failures.push(format!(
                        "{source}: GET {read}: id {} instead of {id}",
                        got["id"]
                    ));
                }
                for problem in compare(sent, &got) {
                    failures.push(format!("{source} (Patient/{id}): {problem}"));
                }
            }
        }
        stored.insert(id, (source.clone(), sent.clone()));
    }

    // Search by NHS number: exactly the stored Patients with that number, as last written.
    let mut by_number: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, (_, sent)) in &stored {
        for number in nhs_numbers(sent) {
            by_number.entry(number).or_default().insert(id.clone());
        }
    }
    for (number, expected_ids) in &by_number {
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/Patient"),
            &[("identifier", format!("{NHS_NUMBER}|{number}"))],
        )
        .expect("search url");
        let found = search_all(&client, url.as_str());
        let found_ids: BTreeSet<String> = found
            .iter()
            .filter_map(|p| p["id"].as_str().map(str::to_string))
            .collect();
        if found_ids != *expected_ids || found.len() != expected_ids.len() {
            failures.push(format!("search identifier={NHS_NUMBER}|{number}: found {found_ids:?} ({} entries), expected {expected_ids:?}", found.len()));
        }
        let total = summary_count(
            &client,
            base,
            &format!("Patient?{}", url.query().unwrap_or_default()),
        );
        if total != expected_ids.len() as u64 {
            failures.push(format!("search identifier={NHS_NUMBER}|{number}&_summary=count: total {total}, expected {}", expected_ids.len()));
        }
        for patient in &found {
            let Some((source, sent)) = patient["id"].as_str().and_then(|id| stored.get(id)) else {
                continue;
            };
            for problem in compare(sent, patient) {
                failures.push(format!(
                    "search {number}: Patient/{} (last sent from {source}): {problem}",
                    patient["id"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    let all = summary_count(&client, base, "Patient");
    if all != stored.len() as u64 {
        failures.push(format!(
            "Patient?_summary=count: {all}, expected {} stored Patients",
            stored.len()
        ));
    }

    println!(
        "PDS examples: {} Patient payloads ({patient_files} Patient files, {} from {bundles_with_patients} Bundles); {} Patients stored; {} NHS numbers searched; {} failure(s)",
        payloads.len(),
        payloads.len() - patient_files,
        stored.len(),
        by_number.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failure(s):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
