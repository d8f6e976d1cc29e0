//! Acceptance: all 122 Blaze Synthea files load with `keel import`, and the known-answer
//! searches from Blaze's own CI return exactly the expected counts, counted across pages — on
//! the embedded SQLite database and on PostgreSQL.

mod common;

use common::{Server, TestSchema, blaze_dir, count_across_pages, keel};
use std::process::Stdio;

#[test]
fn blaze_synthea_loads_and_answers_the_known_searches() {
    let data = tempfile::tempdir().expect("tempdir");
    import_blaze(data.path(), &[]);
    let server = Server::start(data.path());
    answers_the_known_searches(&server);
}

#[test]
fn blaze_synthea_loads_and_answers_the_known_searches_on_postgres() {
    let schema = TestSchema::create("blaze");
    let data = tempfile::tempdir().expect("tempdir");
    import_blaze(data.path(), &["--database", &schema.url]);
    let server = Server::spawn(
        keel()
            .args(["serve", "--insecure-no-auth", "--listen", "127.0.0.1:0"])
            .args(["--database", &schema.url, "--data"])
            .arg(data.path())
            .stderr(Stdio::inherit()),
    );
    answers_the_known_searches(&server);
}

fn import_blaze(data: &std::path::Path, extra: &[&str]) {
    let output = keel()
        .arg("import")
        .args(extra)
        .arg("--data")
        .arg(data)
        .arg(blaze_dir())
        .output()
        .expect("run keel import");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "import failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("from 122 files") && stdout.contains("; 0 failure(s)"),
        "{stdout}"
    );
}

fn answers_the_known_searches(server: &Server) {
    let client = Server::client();
    let answers =
        std::fs::read_to_string(blaze_dir().join("known-answers.tsv")).expect("known-answers.tsv");
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in answers.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (step, resource_type, query, sort, expected) =
            (cols[0], cols[2], cols[3], cols[4], cols[5]);
        if resource_type == "(system)" {
            continue; // Blaze's whole-server count: not a property of the data set
        }
        let expected: usize = expected.parse().expect("expected count");
        let mut url = format!("{}/{resource_type}?{query}&_count=500", server.base);
        if !sort.is_empty() {
            url.push_str(&format!("&_sort={sort}"));
        }
        let (count, total) = count_across_pages(&client, &url);
        checked += 1;
        if count != expected || total != Some(expected as u64) {
            failures.push(format!("step {step}: {resource_type}?{query} sort={sort}: got {count} (total {total:?}), expected {expected}"));
        }
    }
    assert_eq!(checked, 45);
    assert!(
        failures.is_empty(),
        "{} of {checked} searches wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
