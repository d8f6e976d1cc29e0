//! `keel sim generate --format fhir` writes a population that `keel import` loads with zero
//! failures (every resource valid R4), and that the API then serves: patients found by NHS
//! number, observations by patient.

mod common;

use common::{Server, import, keel, summary_count};

#[test]
fn a_generated_population_imports_with_zero_failures() {
    let out = tempfile::tempdir().expect("tempdir");
    let generated = keel()
        .args([
            "sim",
            "generate",
            "--seed",
            "3",
            "--patients",
            "30",
            "--practices",
            "2",
        ])
        .args(["--format", "fhir", "--quiet", "--out"])
        .arg(out.path())
        .output()
        .expect("run keel sim generate");
    let stdout = String::from_utf8_lossy(&generated.stdout);
    assert!(
        generated.status.success(),
        "keel sim generate failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let resources: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("FHIR resources: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no resource count in:\n{stdout}"));
    assert!(resources > 1_000, "{resources} resources");

    let data = tempfile::tempdir().expect("tempdir");
    let (ok, import_out, import_err) = import(data.path(), &[out.path().to_path_buf()]);
    println!("{}", import_out.trim());
    assert!(
        ok && import_out.contains("; 0 failure(s)"),
        "keel import failed:\n{import_out}\n{import_err}"
    );
    assert!(
        import_out.starts_with(&format!("imported {resources} resources")),
        "generated {resources} resources, but: {import_out}"
    );

    // The API serves what was imported.
    let patients_file =
        std::fs::read_to_string(out.path().join("Patient.ndjson")).expect("Patient.ndjson");
    let records = patients_file.lines().count() as u64;
    let first: serde_json::Value =
        serde_json::from_str(patients_file.lines().next().expect("a patient")).expect("JSON");
    let server = Server::start(data.path());
    let client = Server::client();
    assert_eq!(summary_count(&client, &server.base, "Patient"), records);
    let nhs = first["identifier"]
        .as_array()
        .expect("identifiers")
        .iter()
        .find(|i| i["system"] == "https://fhir.nhs.uk/Id/nhs-number")
        .and_then(|i| i["value"].as_str());
    if let Some(nhs) = nhs {
        let query = format!("Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}");
        assert_eq!(summary_count(&client, &server.base, &query), 1, "{query}");
    }
    for rtype in ["Encounter", "Observation", "MedicationRequest", "Slot"] {
        let lines = std::fs::read_to_string(out.path().join(format!("{rtype}.ndjson")))
            .expect("ndjson")
            .lines()
            .count() as u64;
        assert!(lines > 0, "no {rtype}");
        assert_eq!(
            summary_count(&client, &server.base, rtype),
            lines,
            "{rtype}"
        );
    }
}
