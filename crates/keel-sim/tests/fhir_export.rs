//! The FHIR export: one NDJSON file per resource type, unique ids, references that resolve
//! across files, UK Core identifiers and the security labels the design promises.

use std::collections::{HashMap, HashSet};

use keel_sim::output::{self, Format, WriteOptions};
use keel_sim::population::{Options, Population};
use serde_json::Value;

fn collect_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "reference"
                    && let Some(s) = v.as_str()
                {
                    out.push(s.to_string());
                }
                collect_references(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

#[test]
fn ids_are_unique_and_every_reference_resolves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let population = Population::generate(Options {
        seed: 11,
        patients: 120,
        practices: 3,
        ..Options::default()
    });
    let summary = output::write(
        &population,
        &WriteOptions {
            out: dir.path().to_path_buf(),
            format: Format::Fhir,
            threads: 2,
        },
        |_| {},
    )
    .expect("write");
    assert!(
        !dir.path().join("native").exists(),
        "fhir only writes no native files"
    );

    let mut ids: HashSet<String> = HashSet::new();
    let mut references = Vec::new();
    let mut by_type: HashMap<String, Vec<Value>> = HashMap::new();
    for entry in std::fs::read_dir(dir.path()).expect("read_dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string();
        let rtype = name
            .strip_suffix(".ndjson")
            .expect("only .ndjson files")
            .to_string();
        for (i, line) in std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .enumerate()
        {
            let resource: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{name} line {}: {e}", i + 1));
            assert_eq!(
                resource["resourceType"],
                rtype.as_str(),
                "{name} line {}",
                i + 1
            );
            let id = resource["id"].as_str().expect("id").to_string();
            assert!(
                id.len() <= 64
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'),
                "bad id {id}"
            );
            assert!(
                ids.insert(format!("{rtype}/{id}")),
                "duplicate id {rtype}/{id}"
            );
            collect_references(&resource, &mut references);
            by_type.entry(rtype.clone()).or_default().push(resource);
        }
    }
    let total: u64 = summary.fhir.iter().map(|(_, n)| n).sum();
    assert_eq!(ids.len() as u64, total);
    for reference in &references {
        assert!(ids.contains(reference), "unresolved reference {reference}");
    }

    // UK Core identifiers and extensions.
    let patients = &by_type["Patient"];
    let mut verified = 0;
    let mut unverified = 0;
    for p in patients {
        assert_eq!(p["meta"]["security"][0]["code"], "HTEST");
        for identifier in p["identifier"].as_array().expect("identifiers") {
            if identifier["system"] == "https://fhir.nhs.uk/Id/nhs-number" {
                let ext = &identifier["extension"][0];
                assert_eq!(
                    ext["url"],
                    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
                );
                let code = ext["valueCodeableConcept"]["coding"][0]["code"]
                    .as_str()
                    .expect("code");
                if code == "01" {
                    verified += 1;
                } else {
                    unverified += 1;
                }
            }
        }
        assert!(
            p["generalPractitioner"][0]["reference"]
                .as_str()
                .expect("GP")
                .starts_with("Organization/Y9")
        );
    }
    assert!(
        verified > 100 && verified > unverified * 5,
        "{verified} verified, {unverified} not"
    );
    for org in &by_type["Organization"] {
        assert_eq!(
            org["identifier"][0]["system"],
            "https://fhir.nhs.uk/Id/ods-organization-code"
        );
    }
    // Blood pressure as one Observation with systolic and diastolic components.
    let bp = by_type["Observation"]
        .iter()
        .find(|o| {
            o["code"]["coding"]
                .as_array()
                .expect("coding")
                .iter()
                .any(|c| c["code"] == "75367002")
        })
        .expect("a blood pressure");
    assert_eq!(bp["component"].as_array().expect("components").len(), 2);
    assert_eq!(bp["component"][0]["valueQuantity"]["code"], "mm[Hg]");
    // Every consultation has its free text as a comment note.
    let encounters = by_type["Encounter"].len();
    let notes = by_type["Observation"]
        .iter()
        .filter(|o| o["code"]["coding"][0]["code"] == "37331000000100")
        .count();
    assert_eq!(encounters, notes);
    // Repeat issues point at their template.
    let issue = by_type["MedicationRequest"]
        .iter()
        .find(|m| m["intent"] == "order")
        .expect("an issue");
    assert!(
        issue["basedOn"][0]["reference"]
            .as_str()
            .expect("basedOn")
            .starts_with("MedicationRequest/")
    );
}
