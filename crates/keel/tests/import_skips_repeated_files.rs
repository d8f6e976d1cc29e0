//! `keel import` keys its checkpoints by file, so a file named twice in one run (directly, or
//! as itself and inside a named directory) is stored once: the second occurrence is skipped, as
//! it would be in a re-run, and no resource is duplicated.

mod common;

use common::{Server, import, shared_dir, summary_count};

#[test]
fn a_file_named_twice_in_one_import_is_stored_once() {
    let source = shared_dir().join("fhir-test-assets/synthetic/smart-synthea-r4-300/Abdul_Koepp_e925b0f3-8006-43f6-aa31-94bd215e55e7.json.xz");
    let inputs = tempfile::tempdir().expect("tempdir");
    let file = inputs.path().join("patient.json.xz");
    std::fs::copy(&source, &file).unwrap_or_else(|e| panic!("copy {}: {e}", source.display()));

    for (case, paths) in [
        ("the same file twice", vec![file.clone(), file.clone()]),
        (
            "a directory and a file inside it",
            vec![inputs.path().to_path_buf(), file.clone()],
        ),
    ] {
        let data = tempfile::tempdir().expect("tempdir");
        let (ok, stdout, stderr) = import(data.path(), &paths);
        assert!(
            ok && stdout.contains("; 0 failure(s)"),
            "{case}: keel import failed:\n{stdout}\n{stderr}"
        );
        let server = Server::start(data.path());
        let client = Server::client();
        let patients = summary_count(&client, &server.base, "Patient");
        let observations = summary_count(&client, &server.base, "Observation");
        println!(
            "{case}: {patients} Patient(s), {observations} Observations; keel import said: {}",
            stdout.trim()
        );
        assert_eq!(
            patients,
            1,
            "{case}: the Bundle (one Patient) was stored {patients} times by one `keel import` run: {}",
            stdout.trim()
        );
    }
}
