//! Validation of real data: the HL7 R4 examples, Synthea bundles and NHS PDS examples.
//!
//! Needs `scripts/fetch-test-assets.sh` (HL7 package in `$KEEL_TEST_ASSETS`, default
//! `<repo>/.test-assets`) and the shared assets folder (`$KEEL_SHARED_ASSETS`,
//! default `<repo>/../shared/fhir-test-assets`). Missing assets fail the tests.

use super::*;
use std::io::Read;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hl7_package_dir() -> PathBuf {
    let assets = match std::env::var_os("KEEL_TEST_ASSETS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo_root().join(".test-assets"),
    };
    let dir = assets.join("hl7.fhir.r4.examples/package");
    assert!(
        dir.join("package.json").is_file(),
        "HL7 FHIR R4 examples not found in {}: run scripts/fetch-test-assets.sh",
        dir.display()
    );
    dir
}

fn shared_assets_dir() -> PathBuf {
    let dir = match std::env::var_os("KEEL_SHARED_ASSETS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo_root().join("../shared/fhir-test-assets"),
    };
    assert!(
        dir.is_dir(),
        "shared FHIR test assets not found at {} (set KEEL_SHARED_ASSETS to the fhir-test-assets folder)",
        dir.display()
    );
    dir
}

fn sorted_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

fn read_json(path: &Path, reader: impl Read) -> Value {
    serde_json::from_reader(std::io::BufReader::new(reader))
        .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}

fn open(path: &Path) -> std::fs::File {
    std::fs::File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

fn errors(issues: &[ValidationIssue]) -> Vec<&ValidationIssue> {
    issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .collect()
}

/// The big conformance bundles of the package (definitions, not examples).
const CONFORMANCE_BUNDLES: &[&str] = &[
    "Bundle-conceptmaps.json",
    "Bundle-dataelements.json",
    "Bundle-extensions.json",
    "Bundle-externals.json",
    "Bundle-profiles-others.json",
    "Bundle-resources.json",
    "Bundle-searchParams.json",
    "Bundle-terminologies.json",
    "Bundle-types.json",
    "Bundle-v2-valuesets.json",
    "Bundle-v3-valuesets.json",
    "Bundle-valueset-expansions.json",
    "Bundle-valuesets.json",
];

/// Conformance resource types, kept apart from the examples.
const CONFORMANCE_TYPES: &[&str] = &[
    "CapabilityStatement",
    "CodeSystem",
    "CompartmentDefinition",
    "ConceptMap",
    "GraphDefinition",
    "ImplementationGuide",
    "MessageDefinition",
    "NamingSystem",
    "OperationDefinition",
    "SearchParameter",
    "StructureDefinition",
    "StructureMap",
    "TerminologyCapabilities",
    "ValueSet",
];

/// HL7 examples that are genuinely invalid R4 (each checked by hand), with the reason.
const KNOWN_INVALID_EXAMPLES: &[(&str, &str)] = &[(
    "Questionnaire-qs1.json",
    "32 nested items lack Questionnaire.item.linkId (min 1)",
)];

/// HL7 conformance resources that are genuinely invalid R4 (checked by hand).
const KNOWN_INVALID_CONFORMANCE: &[(&str, &str)] = &[
    (
        "ImplementationGuide-fhir.json",
        "no ImplementationGuide.name nor .status (both min 1)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-author.json",
        "no SearchParameter.base (min 1)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-effective.json",
        "no SearchParameter.base (min 1)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-end.json",
        "no SearchParameter.base (min 1)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-keyword.json",
        "no SearchParameter.base (min 1)",
    ),
    (
        "SearchParameter-codesystem-extensions-CodeSystem-workflow.json",
        "no SearchParameter.base (min 1)",
    ),
    (
        "SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json",
        "id has 67 characters (id allows 64)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-author.json",
        "no SearchParameter.base (min 1)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-effective.json",
        "no SearchParameter.base (min 1)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-end.json",
        "no SearchParameter.base (min 1)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-keyword.json",
        "no SearchParameter.base (min 1)",
    ),
    (
        "SearchParameter-valueset-extensions-ValueSet-workflow.json",
        "no SearchParameter.base (min 1)",
    ),
    (
        "ig-r4.json",
        "no ImplementationGuide.name nor .status (both min 1)",
    ),
];

struct Outcome {
    accepted: usize,
    rejected: Vec<(String, ValidationIssue, usize)>,
    warnings: Vec<(String, ValidationIssue)>,
}

fn run_hl7(conformance: bool) -> Outcome {
    let dir = hl7_package_dir();
    let mut outcome = Outcome {
        accepted: 0,
        rejected: Vec::new(),
        warnings: Vec::new(),
    };
    for path in sorted_files(&dir, ".json") {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "package.json" {
            continue;
        }
        let value = read_json(&path, open(&path));
        let rt = value
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("");
        let is_conformance =
            CONFORMANCE_BUNDLES.contains(&name.as_str()) || CONFORMANCE_TYPES.contains(&rt);
        if is_conformance != conformance {
            continue;
        }
        let issues = validate(&value);
        for w in issues.iter().filter(|i| i.severity == Severity::Warning) {
            outcome.warnings.push((name.clone(), w.clone()));
        }
        let errs = errors(&issues);
        match errs.first() {
            None => outcome.accepted += 1,
            Some(first) => outcome.rejected.push((name, (*first).clone(), errs.len())),
        }
    }
    outcome
}

fn report(what: &str, outcome: &Outcome) {
    println!(
        "{what}: {} accepted, {} rejected",
        outcome.accepted,
        outcome.rejected.len()
    );
    for (name, issue, n) in &outcome.rejected {
        println!("  REJECTED {name} ({n} errors): {issue}");
    }
    println!("{what}: {} warnings", outcome.warnings.len());
    for (name, issue) in outcome.warnings.iter().take(40) {
        println!("  WARNING {name}: {issue}");
    }
}

#[test]
fn hl7_examples() {
    let outcome = run_hl7(false);
    report("HL7 R4 examples", &outcome);
    assert!(outcome.accepted > 500, "too few examples found");
    let rejected: Vec<&str> = outcome
        .rejected
        .iter()
        .map(|(n, _, _)| n.as_str())
        .collect();
    let expected: Vec<&str> = KNOWN_INVALID_EXAMPLES.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        rejected, expected,
        "rejected HL7 examples differ from the known-invalid list"
    );
}

#[test]
fn hl7_conformance_resources() {
    let outcome = run_hl7(true);
    report("HL7 R4 conformance resources", &outcome);
    assert!(
        outcome.accepted > 4000,
        "too few conformance resources found"
    );
    let rejected: Vec<&str> = outcome
        .rejected
        .iter()
        .map(|(n, _, _)| n.as_str())
        .collect();
    let expected: Vec<&str> = KNOWN_INVALID_CONFORMANCE.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        rejected, expected,
        "rejected HL7 conformance resources differ from the known-invalid list"
    );
}

/// Validates every entry resource of a Bundle file, and the Bundle; returns the
/// number of entry resources. Errors go to `failures`, warnings are counted.
fn validate_bundle_entries(
    path: &Path,
    bundle: &Value,
    failures: &mut Vec<String>,
    warnings: &mut usize,
) -> usize {
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{} has no entries", path.display()));
    let mut n = 0;
    for (i, entry) in entries.iter().enumerate() {
        let Some(resource) = entry.get("resource") else {
            continue;
        };
        n += 1;
        let issues = validate(resource);
        *warnings += issues.len() - errors(&issues).len();
        for issue in errors(&issues) {
            failures.push(format!("{} entry {i}: {issue}", path.display()));
        }
    }
    // The Bundle itself (transaction with request elements) must be valid as well.
    for issue in errors(&validate(bundle)) {
        failures.push(format!("{} (bundle): {issue}", path.display()));
    }
    n
}

fn sample<T: Clone>(items: &[T], n: usize) -> Vec<T> {
    if std::env::var_os("KEEL_VALIDATE_ALL").is_some() || items.len() <= n {
        return items.to_vec();
    }
    let step = items.len() / n;
    items.iter().step_by(step).take(n).cloned().collect()
}

#[test]
fn synthea_blaze_bundles() {
    let dir = shared_assets_dir().join("synthetic/blaze-synthea-120");
    let files = sorted_files(&dir, ".json.bz2");
    assert!(
        files.len() >= 10,
        "expected the Synthea bundles in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    let mut warnings = 0;
    let mut resources = 0;
    let start = std::time::Instant::now();
    let chosen = sample(&files, 12);
    for path in &chosen {
        let bundle = read_json(path, bzip2::read::MultiBzDecoder::new(open(path)));
        resources += validate_bundle_entries(path, &bundle, &mut failures, &mut warnings);
    }
    println!(
        "blaze-synthea-120: {} files, {resources} resources, {} errors, {warnings} warnings ({:?})",
        chosen.len(),
        failures.len(),
        start.elapsed()
    );
    for f in failures.iter().take(50) {
        println!("  {f}");
    }
    assert!(
        failures.is_empty(),
        "{} validation errors on Synthea data",
        failures.len()
    );
}

#[test]
fn synthea_smart_bundles() {
    let dir = shared_assets_dir().join("synthetic/smart-synthea-r4-300");
    let files = sorted_files(&dir, ".json.xz");
    assert!(
        files.len() >= 10,
        "expected the Synthea bundles in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    let mut warnings = 0;
    let mut resources = 0;
    let start = std::time::Instant::now();
    let chosen = sample(&files, 12);
    for path in &chosen {
        let bundle = read_json(path, liblzma::read::XzDecoder::new(open(path)));
        resources += validate_bundle_entries(path, &bundle, &mut failures, &mut warnings);
    }
    println!(
        "smart-synthea-r4-300: {} files, {resources} resources, {} errors, {warnings} warnings ({:?})",
        chosen.len(),
        failures.len(),
        start.elapsed()
    );
    for f in failures.iter().take(50) {
        println!("  {f}");
    }
    assert!(
        failures.is_empty(),
        "{} validation errors on Synthea data",
        failures.len()
    );
}

#[test]
fn nhs_pds_examples() {
    let root = shared_assets_dir().join("uk-pds-examples");
    let mut failures = Vec::new();
    let mut count = 0;
    for sub in ["Patient", "Bundle", "Coverage", "OperationOutcome"] {
        let dir = root.join(sub);
        if !dir.is_dir() {
            assert_ne!(sub, "Patient", "missing {}", dir.display());
            continue;
        }
        for path in sorted_files(&dir, ".json") {
            let value = read_json(&path, open(&path));
            count += 1;
            for issue in errors(&validate(&value)) {
                failures.push(format!("{}: {issue}", path.display()));
            }
        }
    }
    println!(
        "uk-pds-examples: {count} resources, {} errors",
        failures.len()
    );
    for f in &failures {
        println!("  {f}");
    }
    assert!(
        count >= 10,
        "expected the PDS examples in {}",
        root.display()
    );
    assert!(
        failures.is_empty(),
        "{} validation errors on PDS examples",
        failures.len()
    );
}

/// Collects JSON pointers to every object property and every string leaf.
fn collect_pointers(v: &Value, at: &mut String, keys: &mut Vec<String>, strings: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let len = at.len();
                at.push('/');
                at.push_str(&k.replace('~', "~0").replace('/', "~1"));
                keys.push(at.clone());
                collect_pointers(child, at, keys, strings);
                at.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let len = at.len();
                at.push('/');
                at.push_str(&i.to_string());
                collect_pointers(child, at, keys, strings);
                at.truncate(len);
            }
        }
        Value::String(_) => strings.push(at.clone()),
        _ => {}
    }
}

/// Shows that the validator reaches every part of real resources: renaming any
/// property, or emptying any string, of an accepted HL7 example is an error.
#[test]
fn hl7_examples_every_property_is_checked() {
    let dir = hl7_package_dir();
    let mut checked = 0usize;
    let mut missed = Vec::new();
    for path in sorted_files(&dir, ".json") {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "package.json" || CONFORMANCE_BUNDLES.contains(&name.as_str()) {
            continue;
        }
        let value = read_json(&path, open(&path));
        let rt = value
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("");
        if CONFORMANCE_TYPES.contains(&rt) || has_errors(&validate(&value)) {
            continue;
        }
        let (mut keys, mut strings) = (Vec::new(), Vec::new());
        collect_pointers(&value, &mut String::new(), &mut keys, &mut strings);
        // Up to 20 properties and 20 strings per example, spread evenly.
        for ptr in keys.iter().step_by((keys.len() / 20).max(1)) {
            let (parent, key) = ptr.rsplit_once('/').unwrap_or(("", ptr));
            let key = key.replace("~1", "/").replace("~0", "~");
            let mut v = value.clone();
            if let Some(Value::Object(map)) = v.pointer_mut(parent)
                && let Some(child) = map.remove(&key)
            {
                map.insert(format!("{key}Zz"), child);
            }
            checked += 1;
            if !has_errors(&validate(&v)) {
                missed.push(format!("{name}: renaming {ptr}"));
            }
        }
        for ptr in strings.iter().step_by((strings.len() / 20).max(1)) {
            let mut v = value.clone();
            if let Some(s) = v.pointer_mut(ptr) {
                *s = Value::String(String::new());
            }
            checked += 1;
            if !has_errors(&validate(&v)) {
                missed.push(format!("{name}: emptying {ptr}"));
            }
        }
    }
    println!("mutations checked: {checked}, missed: {}", missed.len());
    for m in missed.iter().take(30) {
        println!("  MISSED {m}");
    }
    assert!(checked > 5_000);
    assert!(
        missed.is_empty(),
        "{} mutations were not detected",
        missed.len()
    );
}

/// Prints validation throughput on Synthea resources (validation only, parsed
/// beforehand). The dev profile builds this crate without optimisation, so
/// run with `--release` for representative numbers.
#[test]
fn validation_throughput() {
    let dir = shared_assets_dir().join("synthetic/blaze-synthea-120");
    let files = sorted_files(&dir, ".json.bz2");
    let path = files
        .iter()
        .find(|p| !p.to_string_lossy().contains("/0-"))
        .unwrap_or_else(|| panic!("no patient bundle in {}", dir.display()));
    let bundle = read_json(path, bzip2::read::MultiBzDecoder::new(open(path)));
    let resources: Vec<&Value> = bundle["entry"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e.get("resource")).collect())
        .unwrap_or_default();
    assert!(!resources.is_empty());
    let _ = definitions::r4();
    let start = std::time::Instant::now();
    let mut n = 0usize;
    while start.elapsed() < std::time::Duration::from_millis(500) {
        for r in &resources {
            assert!(!has_errors(&validate(r)));
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "validated {n} Synthea resources in {secs:.2}s: {:.0} resources/s on one core",
        n as f64 / secs
    );
}
