//! Matching explains itself: the evidence of a known FEBRL4 pair, field by field, as
//! `keel match` writes it; and the duplicates of the generated population are found against
//! their known truth.

mod common;

use common::{keel, test_assets_dir};
use std::collections::HashMap;

fn run(args: &[&str], out: &std::path::Path) -> String {
    let output = keel()
        .arg("match")
        .args(args)
        .arg("--quiet")
        .arg("--out")
        .arg(out)
        .output()
        .expect("run keel match");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "keel match failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn a_known_febrl4_pair_explains_itself_field_by_field() {
    let febrl = test_assets_dir().join("febrl");
    assert!(
        febrl.join("dataset4a.csv").is_file(),
        "the FEBRL data sets are missing from {}: run scripts/fetch-test-assets.sh",
        febrl.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("pairs.csv");
    let left = febrl.join("dataset4a.csv");
    let right = febrl.join("dataset4b.csv");
    run(
        &[
            "--left",
            left.to_str().expect("path"),
            "--right",
            right.to_str().expect("path"),
        ],
        &out,
    );
    let text = std::fs::read_to_string(&out).expect("pairs");
    let rows = keel_identity::csv::parse(&text).expect("pairs parse");
    let header = &rows[0];
    // rec-561: "jack" / "elton", no family name on either side, same date of birth and
    // postcode, "3 light street" / "3 light setreet", same soc_sec_id (the NHS number column).
    let row = rows
        .iter()
        .find(|r| r[0] == "rec-561-org" && r[1] == "rec-561-dup-0")
        .expect("the pair rec-561 is written");
    let get: HashMap<&str, &str> = header
        .iter()
        .map(String::as_str)
        .zip(row.iter().map(String::as_str))
        .collect();
    let num = |k: &str| -> f64 { get[k].parse().unwrap_or_else(|_| panic!("{k}: {}", get[k])) };
    let expected_levels = [
        ("nhs_number", "exact"),
        ("given", "different"),
        ("family", "null"),
        ("birth_date", "exact"),
        ("sex", "null"),
        ("postcode", "exact"),
        ("address", "number and street similar"),
    ];
    for (field, level) in expected_levels {
        assert_eq!(get[&*format!("{field}_level")], level, "{field}");
    }
    // Weights: agreement on a rare identifier, date and postcode is strong evidence for;
    // different given names is evidence against; missing values are no evidence.
    assert!(num("nhs_number_weight") > 8.0, "{get:?}");
    assert!(num("given_weight") < -1.0, "{get:?}");
    assert_eq!(num("family_weight"), 0.0);
    assert!(num("birth_date_weight") > 8.0, "{get:?}");
    assert_eq!(num("sex_weight"), 0.0);
    assert!(num("postcode_weight") > 4.0, "{get:?}");
    assert!(num("address_weight") > 4.0, "{get:?}");
    assert!(num("prior_weight") < -8.0, "{get:?}");
    // The total is the prior plus every field's weight, and the probability follows from it.
    let sum: f64 = num("prior_weight")
        + expected_levels
            .iter()
            .map(|(f, _)| num(&format!("{f}_weight")))
            .sum::<f64>();
    assert!((sum - num("match_weight")).abs() < 0.01, "{sum} vs {get:?}");
    let odds = num("match_weight").exp2();
    assert!((odds / (1.0 + odds) - num("probability")).abs() < 1e-5);
    assert_eq!(get["outcome"], "linked");
}

#[test]
fn the_generated_populations_duplicates_are_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generated = keel()
        .args(["sim", "linkage", "--people", "5000", "--seed", "5", "--out"])
        .arg(dir.path())
        .output()
        .expect("run keel sim linkage");
    assert!(generated.status.success());
    let path = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let stdout = run(
        &[
            "--left",
            &path("left.csv"),
            "--right",
            &path("right.csv"),
            "--truth",
            &path("truth.csv"),
            "--nhs-number-column",
            "nhs_number",
        ],
        &dir.path().join("pairs.csv"),
    );
    let f1: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("precision "))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no F1 in:\n{stdout}"));
    assert!(f1 >= 0.98, "F1 {f1}:\n{stdout}");
}
