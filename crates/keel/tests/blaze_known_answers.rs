//! Acceptance: all 122 Blaze Synthea files load with `keel import`, and the known-answer
//! searches from Blaze's own CI return exactly the expected counts, counted across pages.

mod common;

use common::{Server, blaze_dir, count_across_pages, import};

#[test]
fn blaze_synthea_loads_and_answers_the_known_searches() {
    let dir = blaze_dir();
    let data = tempfile::tempdir().expect("tempdir");
    let (ok, stdout, stderr) = import(data.path(), std::slice::from_ref(&dir));
    assert!(ok, "import failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("from 122 files") && stdout.contains("; 0 failure(s)"),
        "{stdout}"
    );

    let server = Server::start(data.path());
    let client = Server::client();
    let answers =
        std::fs::read_to_string(dir.join("known-answers.tsv")).expect("known-answers.tsv");
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
