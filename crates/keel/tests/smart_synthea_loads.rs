//! Acceptance (heavy): the 302 SMART Synthea R4 transaction Bundles (`.json.xz`) load with
//! `keel import` without a failure, and the store then holds 300 Patients and, since every
//! entry is a plain POST, exactly one resource per entry of each type.

mod common;

use common::{Server, import, shared_dir, summary_count};
use std::path::PathBuf;

/// Entries per resource type over the 302 files (all `POST`, no `ifNoneExist`), counted from the
/// raw Bundles; see the folder's README.md.
const EXPECTED: &[(&str, u64)] = &[
    ("Patient", 300),
    ("Observation", 43_670),
    ("Claim", 11_339),
    ("Encounter", 9_104),
    ("ExplanationOfBenefit", 9_104),
    ("Procedure", 6_818),
    ("Immunization", 3_553),
    ("DiagnosticReport", 3_105),
    ("MedicationRequest", 2_235),
    ("Condition", 2_148),
    ("CarePlan", 857),
    ("Organization", 592),
    ("Practitioner", 592),
    ("Goal", 572),
    ("AllergyIntolerance", 201),
    ("ImagingStudy", 185),
];

#[test]
fn smart_synthea_300_loads_with_keel_import() {
    let dir = shared_dir().join("fhir-test-assets/synthetic/smart-synthea-r4-300");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".json.xz"))
        })
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        302,
        "expected 302 .json.xz files in {}",
        dir.display()
    );

    let data = tempfile::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    let (ok, stdout, stderr) = import(data.path(), &files);
    let seconds = started.elapsed().as_secs_f64();
    println!("keel import: {}", stdout.trim());
    let stderr_tail = common::last_lines(&stderr, 40);
    assert!(
        ok,
        "keel import exited with failure:\n{stdout}\n{stderr_tail}"
    );
    assert!(
        stdout.contains("from 302 files"),
        "keel import did not report 302 files: {stdout}"
    );
    assert!(
        stdout.contains("; 0 failure(s)"),
        "keel import reported failures:\n{stdout}\n{stderr_tail}"
    );
    let total: u64 = EXPECTED.iter().map(|(_, n)| n).sum();
    assert!(
        stdout.contains(&format!("imported {total} resources")),
        "keel import should report {total} resources: {stdout}"
    );

    let server = Server::start(data.path());
    let client = Server::client();
    let mut wrong = Vec::new();
    for (resource_type, expected) in EXPECTED {
        let got = summary_count(&client, &server.base, resource_type);
        if got != *expected {
            wrong.push(format!(
                "{resource_type}: {got} stored, expected {expected}"
            ));
        }
    }
    println!(
        "SMART Synthea: import {seconds:.1} s; {} of {} type counts wrong",
        wrong.len(),
        EXPECTED.len()
    );
    assert_eq!(
        summary_count(&client, &server.base, "Patient"),
        300,
        "Patient?_summary=count"
    );
    assert!(
        wrong.is_empty(),
        "resource counts after the import are wrong:\n  {}",
        wrong.join("\n  ")
    );
}
