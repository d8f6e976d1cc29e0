//! Acceptance: `kill -9` in the middle of `keel import`, then restart.
//!
//! 1. `keel import` of the Blaze Synthea set is SIGKILLed once the database file shows
//!    committed data (it has grown past a checkpoint), most likely inside a transaction.
//! 2. `keel serve` opens the same directory and answers consistently: every Patient found reads
//!    back, each patient Bundle is all or nothing (its Patient is there with exactly the number of
//!    resources of each type its Bundle holds, or none of them is), and every Observation's
//!    subject is a stored Patient.
//! 3. A re-run of the same import exits 0 with no failure, imports only the Bundles that had not
//!    been committed, and leaves exactly the counts of a clean full import: nothing lost, nothing
//!    duplicated.

mod common;

use common::{Server, blaze_dir, import, keel, search_all, summary_count};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const SYNTHEA_ID: &str = "https://github.com/synthetichealth/synthea";
/// Kill once the main database file (written only by WAL checkpoints, so holding committed
/// data) is this big: about a tenth of the full import.
const KILL_AT_DB_BYTES: u64 = 40 << 20;

/// One patient transaction Bundle of the source set.
struct PatientBundle {
    file: String,
    synthea_id: String,
    entries: u64,
    /// Entries per resource type.
    types: BTreeMap<String, u64>,
}

struct Source {
    patients: Vec<PatientBundle>,
    /// Entries of the two batch Bundles loaded first.
    information_entries: u64,
    files: usize,
}

fn read_bundle(path: &Path) -> Value {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut text = String::new();
    bzip2::read::MultiBzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{}: cannot decompress: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

fn read_source(dir: &Path) -> Source {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".json.bz2"))
        })
        .collect();
    paths.sort();
    let mut source = Source {
        patients: Vec::new(),
        information_entries: 0,
        files: paths.len(),
    };
    for path in paths {
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name")
            .to_string();
        let bundle = read_bundle(&path);
        let entries = bundle["entry"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: no entries"));
        if bundle["type"] == "batch" {
            source.information_entries += entries.len() as u64;
            continue;
        }
        assert_eq!(
            bundle["type"], "transaction",
            "{file}: expected a transaction Bundle"
        );
        let mut types = BTreeMap::new();
        let mut synthea_id = None;
        for entry in entries {
            let resource = &entry["resource"];
            let resource_type = resource["resourceType"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: entry without resourceType"))
                .to_string();
            assert!(
                entry["request"]["method"] == "POST"
                    && entry["request"].get("ifNoneExist").is_none(),
                "{file}: expected plain POST entries"
            );
            if resource_type == "Patient" {
                let id = resource["identifier"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|i| i["system"] == SYNTHEA_ID)
                    .and_then(|i| i["value"].as_str());
                synthea_id = Some(
                    id.unwrap_or_else(|| {
                        panic!("{file}: Patient without a {SYNTHEA_ID} identifier")
                    })
                    .to_string(),
                );
            }
            *types.entry(resource_type).or_insert(0) += 1;
        }
        let synthea_id = synthea_id.unwrap_or_else(|| panic!("{file}: no Patient"));
        assert_eq!(
            types.get("Patient"),
            Some(&1),
            "{file}: expected one Patient"
        );
        source.patients.push(PatientBundle {
            file,
            synthea_id,
            entries: entries.len() as u64,
            types,
        });
    }
    source
}

/// The stored ids of the Patient with this Synthea identifier.
fn patient_ids(client: &reqwest::blocking::Client, base: &str, synthea_id: &str) -> Vec<String> {
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/Patient"),
        &[("identifier", format!("{SYNTHEA_ID}|{synthea_id}"))],
    )
    .expect("url");
    search_all(client, url.as_str())
        .iter()
        .map(|p| p["id"].as_str().expect("Patient id").to_string())
        .collect()
}

/// Checks that each patient Bundle is all or nothing, and that the totals per type are exactly
/// those of the Bundles present. Returns the Bundles present, and the failures found.
fn check_all_or_nothing<'a>(
    client: &reqwest::blocking::Client,
    base: &str,
    source: &'a Source,
    stage: &str,
) -> (Vec<&'a PatientBundle>, Vec<String>) {
    let mut failures = Vec::new();
    let mut present = Vec::new();
    for bundle in &source.patients {
        let ids = patient_ids(client, base, &bundle.synthea_id);
        match ids.as_slice() {
            [] => {}
            [id] => {
                present.push(bundle);
                let expected = bundle.types.get("Observation").copied().unwrap_or(0);
                let got = summary_count(client, base, &format!("Observation?subject=Patient/{id}"));
                if got != expected {
                    failures.push(format!("{stage}: {} (Patient/{id}): {got} Observations stored, the Bundle holds {expected}: a half-written transaction", bundle.file));
                }
            }
            many => failures.push(format!(
                "{stage}: {}: its Patient is stored {} times: {many:?}",
                bundle.file,
                many.len()
            )),
        }
    }
    // Totals per type: exactly what the Bundles present hold (the batch Bundles hold only
    // Organization, Location, Practitioner and PractitionerRole, which patient Bundles don't create).
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for bundle in &source.patients {
        for resource_type in bundle.types.keys() {
            expected.entry(resource_type.as_str()).or_insert(0);
        }
    }
    for bundle in &present {
        for (resource_type, n) in &bundle.types {
            *expected.entry(resource_type.as_str()).or_insert(0) += n;
        }
    }
    for (resource_type, n) in &expected {
        let got = summary_count(client, base, resource_type);
        if got != *n {
            failures.push(format!("{stage}: {got} {resource_type} stored, but the {} patient Bundles present hold {n}", present.len()));
        }
    }
    (present, failures)
}

#[test]
fn import_killed_with_sigkill_resumes_without_loss_or_duplicates() {
    let dir = blaze_dir();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();

    // The source's shape, read while the import runs.
    let reader = {
        let dir = dir.clone();
        std::thread::spawn(move || read_source(&dir))
    };

    // 1. Start the import and SIGKILL it once committed data is on disk.
    let started = Instant::now();
    let out = std::fs::File::create(data.join("import-1.out")).expect("create import log");
    let err = std::fs::File::create(data.join("import-1.err")).expect("create import log");
    let mut child = keel()
        .arg("import")
        .arg("--data")
        .arg(data)
        .arg(&dir)
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("spawn keel import");
    let db = data.join("keel.sqlite");
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let stdout = std::fs::read_to_string(data.join("import-1.out")).unwrap_or_default();
            let stderr = std::fs::read_to_string(data.join("import-1.err")).unwrap_or_default();
            panic!(
                "keel import ended ({status}) before it was killed, with {} bytes in keel.sqlite (the kill waits for {KILL_AT_DB_BYTES}): \
                 lower KILL_AT_DB_BYTES\n{stdout}\n{stderr}",
                std::fs::metadata(&db).map_or(0, |m| m.len())
            );
        }
        if std::fs::metadata(&db).map_or(0, |m| m.len()) >= KILL_AT_DB_BYTES {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "keel.sqlite did not reach {KILL_AT_DB_BYTES} bytes in 15 minutes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().expect("SIGKILL keel import"); // SIGKILL on unix
    let status = child.wait().expect("wait for keel import");
    let wal = std::fs::metadata(data.join("keel.sqlite-wal")).map_or(0, |m| m.len());
    println!(
        "killed keel import ({status}) after {:.1} s: keel.sqlite {} bytes, keel.sqlite-wal {wal} bytes",
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&db).map_or(0, |m| m.len())
    );
    assert!(
        !status.success(),
        "keel import was expected to die of SIGKILL, but exited {status}"
    );

    let source = reader.join().expect("read the source Bundles");
    assert_eq!(source.files, 122, "the Blaze set has 122 Bundles");
    assert_eq!(
        source.patients.len(),
        120,
        "the Blaze set has 120 patient Bundles"
    );
    let all_entries =
        source.information_entries + source.patients.iter().map(|b| b.entries).sum::<u64>();

    // 2. The database opens after the crash and is consistent.
    let server = Server::start(data);
    let client = Server::client();
    let base = server.base.clone();
    let patients_after_crash = summary_count(&client, &base, "Patient");
    let observations_after_crash = summary_count(&client, &base, "Observation");
    println!(
        "after the crash: {patients_after_crash} Patients, {observations_after_crash} Observations"
    );
    let mut failures = Vec::new();
    for patient in search_all(&client, &format!("{base}/Patient?_count=200")) {
        let id = patient["id"].as_str().unwrap_or_default();
        let response = client
            .get(format!("{base}/Patient/{id}"))
            .send()
            .expect("read Patient");
        if response.status().as_u16() != 200 {
            failures.push(format!(
                "after the crash: Patient/{id} is found by search but reads {}",
                response.status()
            ));
        }
    }
    let (present, mut found) = check_all_or_nothing(&client, &base, &source, "after the crash");
    failures.append(&mut found);
    let present_observations: u64 = present
        .iter()
        .map(|b| b.types.get("Observation").copied().unwrap_or(0))
        .sum();
    if present_observations != observations_after_crash {
        failures.push(format!(
            "after the crash: {observations_after_crash} Observations stored, but only {present_observations} have their subject among the stored Patients"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} failure(s) after the crash:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
    assert!(
        !present.is_empty() && present.len() < source.patients.len(),
        "the kill should land in the middle of the import, but {} of {} patient Bundles were committed: adjust KILL_AT_DB_BYTES",
        present.len(),
        source.patients.len()
    );
    server.kill();

    // 3. Resume: only what was not committed is imported, and the result is a full import.
    let resumed = Instant::now();
    let (ok, stdout, stderr) = import(data, std::slice::from_ref(&dir));
    let stderr_tail = common::last_lines(&stderr, 40);
    println!(
        "resumed import in {:.1} s: {}",
        resumed.elapsed().as_secs_f64(),
        stdout.trim()
    );
    assert!(
        ok,
        "the resumed keel import failed:\n{stdout}\n{stderr_tail}"
    );
    assert!(
        stdout.contains("from 122 files") && stdout.contains("; 0 failure(s)"),
        "the resumed keel import reported:\n{stdout}\n{stderr_tail}"
    );
    // Both batch Bundles were checkpointed before the first patient Bundle started.
    let expected_resumed: u64 = source
        .patients
        .iter()
        .filter(|b| !present.iter().any(|p| p.file == b.file))
        .map(|b| b.entries)
        .sum();
    assert!(
        stdout.contains(&format!("imported {expected_resumed} resources ")),
        "the resumed import should import only the {} uncommitted patient Bundles ({expected_resumed} resources), not the {} committed ones or the batch Bundles: {stdout}",
        source.patients.len() - present.len(),
        present.len()
    );

    let server = Server::start(data);
    let base = server.base.clone();
    let (present, failures) =
        check_all_or_nothing(&client, &base, &source, "after the resumed import");
    assert!(
        failures.is_empty(),
        "{} failure(s) after the resumed import:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
    assert_eq!(
        present.len(),
        120,
        "every patient Bundle is present after the resumed import"
    );
    // The clean full import's totals.
    assert_eq!(
        summary_count(&client, &base, "Patient"),
        120,
        "Patients after the resumed import"
    );
    assert_eq!(
        summary_count(&client, &base, "Observation"),
        42_929,
        "Observations after the resumed import"
    );
    println!(
        "crash and resume: {patients_after_crash} of 120 patient Bundles committed before the kill; {all_entries} entries in the set; {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
}
