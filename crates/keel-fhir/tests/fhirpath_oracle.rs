//! Differential test: Keel's FHIRPath evaluator (`keel_fhir::fhirpath`) against FHIRPath.js
//! (npm `fhirpath@5.2.2`, HL7's JavaScript implementation, written independently of Keel).
//!
//! Jobs: every HL7 R4 example resource (hl7.fhir.r4.examples@4.0.1) that is not a conformance
//! resource, times every search parameter of its type with an expression (composite and special
//! parameters excluded, as the indexer does). `scripts/fhirpath-oracle.mjs` evaluates each job
//! with FHIRPath.js and prints the results; this test evaluates the same expression on the same
//! file with `fhirpath::{parse, evaluate}` and `definitions::r4()`, and compares the two results
//! as multisets of JSON values (numbers numerically, objects structurally, order ignored).
//!
//! How the oracle treats what FHIRPath.js cannot take as it is (see the script for details):
//! - `resolve()`: evaluated against a stub FHIR server that holds every resource a literal
//!   reference names (`Type/id` answers `{"resourceType":Type}`); contained (`#id`) references
//!   FHIRPath.js resolves itself.
//! - `(X as T)` with several items in X is an error in FHIRPath.js (as in FHIRPath); R4 search
//!   parameters use it as a filter, which R5 writes `X.ofType(T)`. Those jobs are evaluated by
//!   FHIRPath.js in the R5 spelling and compared with ours for the R4 spelling.
//!
//! Needs `scripts/fetch-test-assets.sh` (the HL7 package and FHIRPath.js in `$KEEL_TEST_ASSETS`,
//! default `<repo>/.test-assets`) and `node`. Run it with
//! `cargo test -p keel-fhir --test fhirpath_oracle -- --nocapture` to see the counts.

use keel_fhir::definitions;
use keel_fhir::fhirpath::{self, Expr, Item, Literal};
use keel_fhir::index::indexable;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Jobs where Keel's result and FHIRPath.js's result are known to differ, as
/// `(example file, parameter code, why Keel's result is right or why it does not matter)`.
/// Every entry must still differ (a stale entry fails the test).
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "Observation-decimal.json",
        "combo-value-quantity",
        "the example's quantities 1.0 g, 1.00 g, 1e-22 g and 1.000000000000000000e-245 g: \
         FHIRPath.js's union drops duplicates comparing decimals rounded to 1e-8, so it keeps one \
         of 1.0/1.00 and loses 1e-245 g as equal to 1e-22 g; Keel keeps every distinct JSON \
         node. Keel keeps more, never less: the indexer turns 1.0 and 1.00 into one f64 \
         quantity (its entries are de-duplicated), and 1e-245 g is a different quantity that \
         must stay searchable",
    ),
    (
        "Observation-decimal.json",
        "component-value-quantity",
        "same quantities as combo-value-quantity (the components repeat them)",
    ),
];

/// Jobs FHIRPath.js cannot evaluate at all, as `(example file, parameter code, why)`: they are
/// excluded from the comparison. Every entry must still fail in FHIRPath.js.
const ORACLE_CANNOT_EVALUATE: &[(&str, &str, &str)] = &[
    (
        "Observation-f205.json",
        "combo-value-quantity",
        "the union `|` de-duplicates by converting Quantities to UCUM quantities, which \
         FHIRPath.js refuses for a Quantity with a comparator (`>60 mL/min/1.73m2`)",
    ),
    (
        "Observation-f205.json",
        "component-value-quantity",
        "same as combo-value-quantity: a Quantity with a comparator in a union",
    ),
];

/// Conformance and definition resources: not example data (as in the oracle script).
const SKIPPED_TYPES: &[&str] = &[
    "StructureDefinition",
    "SearchParameter",
    "ValueSet",
    "CodeSystem",
    "ConceptMap",
    "OperationDefinition",
    "CapabilityStatement",
    "ImplementationGuide",
    "NamingSystem",
    "CompartmentDefinition",
    "StructureMap",
    "GraphDefinition",
    "MessageDefinition",
    "TerminologyCapabilities",
];

const FETCH_HINT: &str = "run scripts/fetch-test-assets.sh (it needs npm), \
     or set KEEL_TEST_ASSETS to a folder that holds hl7.fhir.r4.examples/package and node/";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn test_assets_dir() -> PathBuf {
    match std::env::var_os("KEEL_TEST_ASSETS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_root().join(".test-assets"),
    }
}

/// One line of the oracle's output.
struct Job {
    file: String,
    resource_type: String,
    code: String,
    expression: String,
    resolve: bool,
    rewritten: Option<String>,
    /// FHIRPath.js's result, or its error message.
    oracle: Result<Vec<Value>, String>,
}

impl Job {
    fn from_line(line: &str) -> Job {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
            panic!("oracle printed a line that is not JSON ({e}): {line:.300}")
        });
        let text = |key: &str| {
            v[key]
                .as_str()
                .unwrap_or_else(|| panic!("oracle line without {key}: {line:.300}"))
                .to_string()
        };
        let oracle = match (&v["result"], &v["error"]) {
            (Value::Array(items), _) => Ok(items.clone()),
            (_, Value::String(message)) => Err(message.clone()),
            _ => panic!("oracle line without result or error: {line:.300}"),
        };
        Job {
            file: text("file"),
            resource_type: text("resourceType"),
            code: text("code"),
            expression: text("expression"),
            resolve: v["resolve"] == Value::Bool(true),
            rewritten: v["rewritten"].as_str().map(str::to_string),
            oracle,
        }
    }
}

/// Keel's result item as JSON, the form the oracle prints.
fn item_json(item: &Item<'_>) -> Value {
    match item {
        Item::Node { value, .. } => (*value).clone(),
        Item::Boolean(b) => Value::Bool(*b),
        Item::Literal(Literal::Boolean(b)) => Value::Bool(*b),
        Item::Literal(Literal::String(s)) => Value::String(s.clone()),
        Item::Literal(Literal::Number(n)) => {
            serde_json::from_str(n).unwrap_or_else(|_| Value::String(n.clone()))
        }
        // FHIRPath.js answers the (stub) resource itself; only its type is known to Keel.
        Item::Resolved { resource_type } => serde_json::json!({ "resourceType": resource_type }),
    }
}

/// A canonical text for a JSON value: object keys sorted, numbers by their f64 value.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Number(n) => match n.to_string().parse::<f64>() {
            Ok(f) => out.push_str(&format!("{f:?}")),
            Err(_) => out.push_str(&n.to_string()),
        },
        Value::Array(items) => {
            out.push('[');
            for item in items {
                canonical(item, out);
                out.push(',');
            }
            out.push(']');
        }
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            out.push('{');
            for (key, item) in sorted {
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(item, out);
                out.push(',');
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The multiset of a result: sorted canonical texts.
fn multiset(values: &[Value]) -> Vec<String> {
    let mut keys: Vec<String> = values
        .iter()
        .map(|v| {
            let mut s = String::new();
            canonical(v, &mut s);
            s
        })
        .collect();
    keys.sort();
    keys
}

fn shorten(values: &[Value]) -> String {
    let text = Value::Array(values.to_vec()).to_string();
    if text.len() > 600 {
        let mut end = 600;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} items)", &text[..end], values.len())
    } else {
        text
    }
}

/// Runs the oracle and hands each job to `each` as it arrives (node and this test overlap).
fn run_oracle(package: &Path, node_dir: &Path, mut each: impl FnMut(Job)) {
    let script = repo_root().join("scripts/fhirpath-oracle.mjs");
    let mut child = Command::new("node")
        .arg(&script)
        .arg(package)
        .arg(node_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `node {}`: {e}; node (and npm) are needed, then {FETCH_HINT}",
                script.display()
            )
        });
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    for line in stdout.lines() {
        let line = line.expect("oracle output is UTF-8");
        if !line.is_empty() {
            each(Job::from_line(&line));
        }
    }
    let status = child.wait().expect("wait for node");
    let stderr = stderr_reader.join().unwrap_or_default();
    assert!(
        status.success(),
        "the FHIRPath oracle failed ({status}):\n{stderr}\n{FETCH_HINT}"
    );
    eprint!("{stderr}");
}

#[derive(Default)]
struct Counts {
    jobs: usize,
    compared: usize,
    agreements: usize,
    known_differences: usize,
    excluded: usize,
    resolve_compared: usize,
    rewritten_compared: usize,
    non_empty_agreements: usize,
}

#[test]
fn fhirpath_agrees_with_fhirpath_js_on_the_hl7_examples() {
    let assets = test_assets_dir();
    let package = assets.join("hl7.fhir.r4.examples/package");
    let node_dir = assets.join("node");
    assert!(
        package.join("package.json").is_file(),
        "the HL7 R4 examples package is missing from {}: {FETCH_HINT}",
        package.display()
    );
    assert!(
        node_dir
            .join("node_modules/fhirpath/package.json")
            .is_file(),
        "FHIRPath.js (npm fhirpath@5.2.2) is missing from {}: {FETCH_HINT}",
        node_dir.display()
    );

    let defs = definitions::r4();
    let mut parsed: HashMap<String, Result<Expr, String>> = HashMap::new();
    let mut resource: Option<(String, Value)> = None;
    let mut counts = Counts::default();
    let mut failures: Vec<String> = Vec::new();
    let mut differing: BTreeSet<(String, String)> = BTreeSet::new();
    let mut oracle_errors: BTreeSet<(String, String)> = BTreeSet::new();
    let mut codes_by_file: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();

    run_oracle(&package, &node_dir, |job| {
        counts.jobs += 1;
        let key = (job.file.clone(), job.code.clone());
        let entry = codes_by_file
            .entry(job.file.clone())
            .or_insert_with(|| (job.resource_type.clone(), BTreeSet::new()));
        entry.1.insert(job.code.clone());

        // The oracle's jobs are the parameters this server indexes, with the same expressions.
        match defs.search_param(&job.resource_type, &job.code) {
            Some(def) if def.expression.as_deref() == Some(job.expression.as_str()) => {}
            Some(def) => failures.push(format!(
                "{} {}: the oracle evaluated {:?}, Keel's definitions say {:?}",
                job.file, job.code, job.expression, def.expression
            )),
            None => failures.push(format!(
                "{} {}: no such search parameter of {} in Keel's definitions",
                job.file, job.code, job.resource_type
            )),
        }

        let theirs = match &job.oracle {
            Ok(values) => values,
            Err(message) => {
                counts.excluded += 1;
                oracle_errors.insert(key);
                if !ORACLE_CANNOT_EVALUATE
                    .iter()
                    .any(|(f, c, _)| *f == job.file && *c == job.code)
                {
                    failures.push(format!(
                        "{} {} `{}`: FHIRPath.js cannot evaluate it ({message:.300}); \
                         add it to ORACLE_CANNOT_EVALUATE only with a reason",
                        job.file, job.code, job.expression
                    ));
                }
                return;
            }
        };

        if resource.as_ref().is_none_or(|(file, _)| *file != job.file) {
            let path = package.join(&job.file);
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let value: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
            resource = Some((job.file.clone(), value));
        }
        let Some((_, resource)) = &resource else {
            unreachable!("loaded above")
        };

        let expr = parsed
            .entry(job.expression.clone())
            .or_insert_with(|| fhirpath::parse(&job.expression).map_err(|e| e.to_string()));
        let ours: Vec<Value> = match expr {
            Ok(expr) => fhirpath::evaluate(expr, resource, defs)
                .iter()
                .map(item_json)
                .collect(),
            Err(e) => {
                failures.push(format!(
                    "{} {} `{}`: Keel cannot parse it: {e}",
                    job.file, job.code, job.expression
                ));
                return;
            }
        };

        counts.compared += 1;
        if job.resolve {
            counts.resolve_compared += 1;
        }
        if job.rewritten.is_some() {
            counts.rewritten_compared += 1;
        }
        if multiset(&ours) == multiset(theirs) {
            counts.agreements += 1;
            if !ours.is_empty() {
                counts.non_empty_agreements += 1;
            }
            return;
        }
        differing.insert(key);
        if KNOWN_DIFFERENCES
            .iter()
            .any(|(f, c, _)| *f == job.file && *c == job.code)
        {
            counts.known_differences += 1;
            return;
        }
        let oracle_expression = match &job.rewritten {
            Some(r) => format!(" (FHIRPath.js evaluated `{r}`)"),
            None => String::new(),
        };
        failures.push(format!(
            "{} {} `{}`{oracle_expression}:\n      Keel:        {}\n      FHIRPath.js: {}",
            job.file,
            job.code,
            job.expression,
            shorten(&ours),
            shorten(theirs)
        ));
    });

    // Every indexable parameter of every example's type was a job.
    for (file, (resource_type, codes)) in &codes_by_file {
        let ours: BTreeSet<String> = defs
            .search_params(resource_type)
            .filter(|d| indexable(d))
            .map(|d| d.code.clone())
            .collect();
        if &ours != codes {
            failures.push(format!(
                "{file}: the oracle evaluated parameters {:?}, Keel indexes {:?}",
                codes.difference(&ours).collect::<Vec<_>>(),
                ours.difference(codes).collect::<Vec<_>>()
            ));
        }
    }
    // Every example file was evaluated.
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&package).expect("read the examples package") {
        let name = entry.expect("directory entry").file_name();
        let name = name.to_string_lossy().to_string();
        if !name.ends_with(".json")
            || matches!(name.as_str(), "package.json" | ".index.json")
            || codes_by_file.contains_key(&name)
            || SKIPPED_TYPES.contains(&name.split('-').next().unwrap_or(""))
        {
            continue;
        }
        let text = std::fs::read_to_string(package.join(&name)).expect("read an example");
        let value: Value = serde_json::from_str(&text).expect("an example is JSON");
        let resource_type = value["resourceType"].as_str().unwrap_or("");
        if !SKIPPED_TYPES.contains(&resource_type) {
            missing.push(name);
        }
    }
    if !missing.is_empty() {
        failures.push(format!("examples the oracle did not evaluate: {missing:?}"));
    }
    // The allowlists hold nothing stale.
    for (file, code, _) in KNOWN_DIFFERENCES {
        if !differing.contains(&(file.to_string(), code.to_string())) {
            failures.push(format!(
                "KNOWN_DIFFERENCES lists {file} {code}, which now agrees (or is gone): remove it"
            ));
        }
    }
    for (file, code, _) in ORACLE_CANNOT_EVALUATE {
        if !oracle_errors.contains(&(file.to_string(), code.to_string())) {
            failures.push(format!(
                "ORACLE_CANNOT_EVALUATE lists {file} {code}, which FHIRPath.js now evaluates: remove it"
            ));
        }
    }

    let disagreements = differing.len();
    println!(
        "fhirpath oracle: {} jobs over {} example files; {} compared ({} with resolve() on the stub \
         server, {} with `as` in the R5 spelling for FHIRPath.js): {} agree ({} of them non-empty), \
         {} disagree ({} of them known differences); {} excluded (FHIRPath.js cannot evaluate)",
        counts.jobs,
        codes_by_file.len(),
        counts.compared,
        counts.resolve_compared,
        counts.rewritten_compared,
        counts.agreements,
        counts.non_empty_agreements,
        disagreements,
        counts.known_differences,
        counts.excluded,
    );
    assert!(
        counts.jobs > 10_000,
        "suspiciously few jobs: {}",
        counts.jobs
    );
    assert!(
        failures.is_empty(),
        "{} problem(s):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
