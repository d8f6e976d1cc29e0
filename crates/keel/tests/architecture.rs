//! Architecture invariants that the compiler cannot enforce (see ARCHITECTURE.md).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

/// Crates that mean I/O: databases, HTTP, async runtimes, templates.
const IO_CRATES: &[&str] = &[
    "tokio",
    "mio",
    "async-std",
    "rusqlite",
    "libsqlite3-sys",
    "sqlx",
    "postgres",
    "tokio-postgres",
    "reqwest",
    "hyper",
    "axum",
    "tower",
    "ureq",
    "minijinja",
    "askama",
    "tera",
    "handlebars",
];

#[test]
fn core_crates_have_no_io_dependencies() {
    let rustc = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("host triple");
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            &host,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("metadata JSON");
    let names: HashMap<String, String> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default().to_string(),
                p["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    // Normal (non-dev, non-build) dependency edges of the resolved graph.
    let mut edges: HashMap<String, Vec<String>> = HashMap::new();
    for node in metadata["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let id = node["id"].as_str().unwrap_or_default().to_string();
        let deps = node["deps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| k["kind"].is_null())
            })
            .filter_map(|d| d["pkg"].as_str().map(str::to_string))
            .collect();
        edges.insert(id, deps);
    }
    for krate in ["keel-model", "keel-fhir", "keel-core", "keel-identity"] {
        let root = names
            .iter()
            .find(|(_, n)| n.as_str() == krate)
            .map(|(id, _)| id.clone())
            .expect("crate in workspace");
        let mut seen = BTreeSet::new();
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            for dep in edges.get(&id).into_iter().flatten() {
                if seen.insert(names[dep].clone()) {
                    stack.push(dep.clone());
                }
            }
        }
        let forbidden: Vec<&String> = seen
            .iter()
            .filter(|n| {
                IO_CRATES.contains(&n.as_str())
                    || n.starts_with("keel-store")
                    || n.starts_with("keel-api")
            })
            .collect();
        assert!(
            forbidden.is_empty(),
            "{krate} depends on I/O crates: {forbidden:?}"
        );
    }
}

/// Public `FhirService` methods that read or write patient data take `&RequestContext`.
/// The exceptions read nothing from the store and are listed here on purpose.
#[test]
fn fhir_service_methods_take_a_request_context() {
    const NO_STORED_DATA: &[&str] = &[
        "new",
        "definitions",
        "check_type",
        "parse_search",
        "checkpoint",
        "ping",
        // Parses, validates and indexes the caller's own Bundle; reads no stored data.
        "prepare_bundle",
        // Configure and expose the access policy; read no stored data.
        "with_access",
        "with_audit",
        "access",
        // Runs a queued job under the context its kick-off recorded (rebuilt from the job):
        // every read it does is decided as that requester's.
        "run_next_export",
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../keel-core/src/fhir");
    let mut offenders = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("keel-core/src/fhir") {
        let path = entry.expect("entry").path();
        let source = std::fs::read_to_string(&path).expect("source");
        // The bodies of `impl FhirService` blocks: from the header to the next `}` in column 0.
        let mut rest = source.as_str();
        while let Some(start) = rest.find("\nimpl FhirService {") {
            let block = &rest[start..];
            let end = block.find("\n}\n").unwrap_or(block.len());
            let body = &block[..end];
            let lines: Vec<&str> = body.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let Some(after) = line.trim_start().strip_prefix("pub fn ") else {
                    continue;
                };
                let name = after.split(['(', '<']).next().unwrap_or_default();
                let signature = lines[i..]
                    .iter()
                    .take_while(|l| !l.contains('{'))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ")
                    + lines
                        .get(i + lines[i..].iter().take_while(|l| !l.contains('{')).count())
                        .copied()
                        .unwrap_or("");
                checked += 1;
                if !NO_STORED_DATA.contains(&name) && !signature.contains("&RequestContext") {
                    offenders.push(format!("{}: {name}", path.display()));
                }
            }
            rest = &block[end..];
        }
    }
    assert!(
        checked >= 15,
        "found only {checked} methods: is the scan still looking at the right files?"
    );
    assert!(
        offenders.is_empty(),
        "FhirService methods without a RequestContext: {offenders:#?}"
    );
}

/// The audit log is append-only: no source file of any crate updates or deletes its rows
/// (only the tamper tests do, as an attacker would).
#[test]
fn no_code_updates_or_deletes_audit_rows() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut offenders = Vec::new();
    let mut stack: Vec<std::path::PathBuf> = std::fs::read_dir(&crates)
        .expect("crates")
        .map(|e| e.expect("entry").path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("source dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path)
                .expect("source")
                .to_ascii_uppercase();
            for table in ["AUDIT", "AUDIT_CHECKPOINTS"] {
                for statement in [format!("UPDATE {table} "), format!("DELETE FROM {table}")] {
                    if source.contains(&statement) {
                        offenders.push(format!("{}: {statement}", path.display()));
                    }
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "audit rows changed in code: {offenders:?}"
    );
}
