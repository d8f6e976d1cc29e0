//! Shared harness for end-to-end tests: the real `keel` binary, over real HTTP.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn keel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keel"))
}

/// A development bearer token from `keel token` for a CIS2-style user of `data`'s issuer.
pub fn token(data: &Path, role: &str, org: &str, user: &str, purpose: &str) -> String {
    let out = keel()
        .args(["token", "--role", role, "--org", org, "--user", user])
        .args(["--purpose", purpose, "--data"])
        .arg(data)
        .output()
        .expect("keel token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

pub fn shared_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    assert!(
        dir.is_dir(),
        "the shared test assets are expected at {}",
        dir.display()
    );
    dir
}

pub fn blaze_dir() -> PathBuf {
    shared_dir().join("fhir-test-assets/synthetic/blaze-synthea-120")
}

/// Runs `keel import` and returns (success, stdout, stderr).
pub fn import(data: &Path, paths: &[PathBuf]) -> (bool, String, String) {
    let output = keel()
        .arg("import")
        .arg("--data")
        .arg(data)
        .args(paths)
        .output()
        .expect("run keel import");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A running `keel serve`, stopped when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Server::start_with_args(data, &[])
    }

    /// Starts `keel serve` (no authentication, any free port) with `extra` arguments.
    pub fn start_with_args(data: &Path, extra: &[&str]) -> Server {
        Server::spawn(
            keel()
                .args([
                    "serve",
                    "--insecure-no-auth",
                    "--listen",
                    "127.0.0.1:0",
                    "--data",
                ])
                .arg(data)
                .args(extra)
                .stderr(Stdio::inherit()),
        )
    }

    /// Starts `keel serve` with authentication on, trusting the data directory's development
    /// issuer (`keel token`).
    pub fn start_with_dev_issuer(data: &Path) -> Server {
        Server::spawn(
            keel()
                .args(["serve", "--dev-issuer", "--listen", "127.0.0.1:0", "--data"])
                .arg(data)
                .stderr(Stdio::inherit()),
        )
    }

    /// Spawns the prepared `keel serve` command and waits for its listening line.
    pub fn spawn(command: &mut Command) -> Server {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn keel serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("keel serve exited before listening")
                .expect("read stdout");
            if let Some(url) = line.strip_prefix("keel: listening on ") {
                break url.trim().to_string();
            }
        };
        Server { child, base }
    }

    pub fn client() -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client")
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Follows `next` links from `url` and returns (number of match entries, first page total).
pub fn count_across_pages(client: &reqwest::blocking::Client, url: &str) -> (usize, Option<u64>) {
    let mut next = Some(url.to_string());
    let mut count = 0;
    let mut total = None;
    let mut pages = 0;
    while let Some(url) = next.take() {
        let response = client.get(&url).send().expect("search request");
        let status = response.status();
        let body: serde_json::Value = response.json().expect("search response is JSON");
        assert!(status.is_success(), "{url}: {status} {body}");
        if pages == 0 {
            total = body["total"].as_u64();
        }
        pages += 1;
        count += body["entry"].as_array().map_or(0, |e| {
            e.iter().filter(|e| e["search"]["mode"] == "match").count()
        });
        next = body["link"]
            .as_array()
            .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(str::to_string);
        assert!(pages < 10_000, "paging does not end");
    }
    (count, total)
}

/// The folder of the test assets that `scripts/fetch-test-assets.sh` downloads:
/// `$KEEL_TEST_ASSETS`, or `<repo>/.test-assets`.
pub fn test_assets_dir() -> PathBuf {
    match std::env::var_os("KEEL_TEST_ASSETS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.test-assets"),
    }
}

/// The extracted HL7 R4 examples package (hl7.fhir.r4.examples@4.0.1); panics with the command
/// to run when it is missing.
pub fn hl7_examples_dir() -> PathBuf {
    let dir = test_assets_dir().join("hl7.fhir.r4.examples/package");
    assert!(
        dir.join("package.json").is_file(),
        "the HL7 R4 examples package is missing from {}: run scripts/fetch-test-assets.sh (it needs npm) \
         or set KEEL_TEST_ASSETS to a folder that holds hl7.fhir.r4.examples/package",
        dir.display()
    );
    dir
}

/// `value` without the root keys `id` and `meta` (what a server may set).
pub fn without_id_and_meta(value: &serde_json::Value) -> serde_json::Value {
    let mut value = value.clone();
    if let Some(map) = value.as_object_mut() {
        map.remove("id");
        map.remove("meta");
    }
    value
}

/// The first place where `sent` and `got` differ, as a JSON path with both values, or None when
/// they are equal. Object key order is ignored; numbers compare by their text (the workspace's
/// serde_json keeps decimals exactly).
pub fn first_difference(sent: &serde_json::Value, got: &serde_json::Value) -> Option<String> {
    fn short(v: Option<&serde_json::Value>) -> String {
        match v {
            None => "(absent)".into(),
            Some(v) => {
                let s = v.to_string();
                if s.chars().count() > 160 {
                    format!("{}…", s.chars().take(160).collect::<String>())
                } else {
                    s
                }
            }
        }
    }
    fn walk(path: &str, sent: &serde_json::Value, got: &serde_json::Value) -> Option<String> {
        use serde_json::Value;
        match (sent, got) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, va) in a {
                    let p = format!("{path}.{k}");
                    match b.get(k) {
                        None => {
                            return Some(format!("{p}: sent {}, got (absent)", short(Some(va))));
                        }
                        Some(vb) => {
                            if let Some(d) = walk(&p, va, vb) {
                                return Some(d);
                            }
                        }
                    }
                }
                b.iter()
                    .find(|(k, _)| !a.contains_key(*k))
                    .map(|(k, vb)| format!("{path}.{k}: sent (absent), got {}", short(Some(vb))))
            }
            (Value::Array(a), Value::Array(b)) => {
                for i in 0..a.len().max(b.len()) {
                    let p = format!("{path}[{i}]");
                    match (a.get(i), b.get(i)) {
                        (Some(va), Some(vb)) => {
                            if let Some(d) = walk(&p, va, vb) {
                                return Some(d);
                            }
                        }
                        (va, vb) => {
                            return Some(format!(
                                "{p}: sent {}, got {} (arrays of {} and {})",
                                short(va),
                                short(vb),
                                a.len(),
                                b.len()
                            ));
                        }
                    }
                }
                None
            }
            (a, b) if a == b => None,
            (a, b) => Some(format!(
                "{path}: sent {}, got {}",
                short(Some(a)),
                short(Some(b))
            )),
        }
    }
    walk("$", sent, got)
}

/// The `total` of `GET {base}/{query}` with `_summary=count` appended.
pub fn summary_count(client: &reqwest::blocking::Client, base: &str, query: &str) -> u64 {
    let sep = if query.contains('?') { '&' } else { '?' };
    let url = format!("{base}/{query}{sep}_summary=count");
    let response = client
        .get(&url)
        .send()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status();
    let text = response
        .text()
        .unwrap_or_else(|e| panic!("GET {url}: cannot read the body: {e}"));
    assert!(status.is_success(), "GET {url}: {status} {text}");
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {text}"));
    body["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("GET {url}: no total in {text}"))
}

/// Follows `next` links from `url` and returns every `match` resource.
pub fn search_all(client: &reqwest::blocking::Client, url: &str) -> Vec<serde_json::Value> {
    let mut next = Some(url.to_string());
    let mut out = Vec::new();
    let mut pages = 0;
    while let Some(url) = next.take() {
        let response = client
            .get(&url)
            .send()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = response.status();
        let text = response
            .text()
            .unwrap_or_else(|e| panic!("GET {url}: cannot read the body: {e}"));
        assert!(status.is_success(), "GET {url}: {status} {text}");
        let body: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {text}"));
        pages += 1;
        for entry in body["entry"].as_array().into_iter().flatten() {
            if entry["search"]["mode"] == "match" {
                out.push(entry["resource"].clone());
            }
        }
        next = body["link"]
            .as_array()
            .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(str::to_string);
        assert!(pages < 10_000, "paging does not end at {url}");
    }
    out
}

/// Starts `keel serve` with its stderr (the log) written to `log`.
pub fn start_logging_to(data: &Path, log: &Path) -> Server {
    start_with(data, log, &[])
}

/// Starts `keel serve` with `extra` arguments and its stderr (the log, at debug level)
/// written to `log`.
pub fn start_with(data: &Path, log: &Path, extra: &[&str]) -> Server {
    let file = std::fs::File::create(log).expect("log file");
    Server::spawn(
        keel()
            .args([
                "serve",
                "--insecure-no-auth",
                "--listen",
                "127.0.0.1:0",
                "--data",
            ])
            .arg(data)
            .args(extra)
            .env("KEEL_LOG", "debug")
            .stderr(Stdio::from(file)),
    )
}

/// A running `keel sim serve`, killed when dropped.
pub struct Simulators {
    child: Child,
    /// Its stdout lines up to the "connections written" line.
    pub lines: Vec<String>,
}

impl Simulators {
    /// Starts every simulator on a free port for `patients` people at `practices` practices,
    /// writing their practice connections to `connections`, with `extra` arguments.
    pub fn start(
        patients: u64,
        practices: usize,
        connections: &Path,
        extra: &[&str],
    ) -> Simulators {
        let mut child = keel()
            .args(["sim", "serve", "--patients", &patients.to_string()])
            .args(["--practices", &practices.to_string()])
            .args(["--pds", "127.0.0.1:0", "--gp-connect", "127.0.0.1:0"])
            .args(["--emis", "127.0.0.1:0", "--tpp", "127.0.0.1:0"])
            .args(extra)
            .arg("--connections-out")
            .arg(connections)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn keel sim serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read stdout");
            let done = line.starts_with("keel sim: practice connections written");
            lines.push(line);
            if done {
                break;
            }
        }
        Simulators { child, lines }
    }

    /// The URL printed after `prefix` (e.g. "keel sim: PDS listening on ").
    pub fn url(&self, prefix: &str) -> String {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("no {prefix:?} line in {:?}", self.lines))
            .to_string()
    }

    /// The scheme and authority of the URL printed after `prefix`.
    pub fn origin(&self, prefix: &str) -> String {
        self.url(prefix)
            .split('/')
            .take(3)
            .collect::<Vec<_>>()
            .join("/")
    }
}

impl Drop for Simulators {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `n` lines of `text` (for failure messages about long outputs).
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running `keel demo` (the simulated PCN, Keel and the web UI), stopped when dropped.
pub struct Demo {
    server: Server,
    /// What it printed up to and including its welcome (the URL, users and patients).
    pub welcome: Vec<String>,
}

impl Demo {
    /// Starts `keel demo` with `patients` people on free ports and waits until it says it is
    /// ready; the rest of its output is drained in the background.
    pub fn start(data: &Path, patients: u64) -> Demo {
        let mut child = keel()
            .args(["demo", "--listen", "127.0.0.1:0", "--patients"])
            .arg(patients.to_string())
            .arg("--data")
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn keel demo");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut welcome = Vec::new();
        let mut base = None;
        loop {
            let line = lines
                .next()
                .expect("keel demo exited before its welcome")
                .expect("read stdout");
            if let Some(url) = line.strip_prefix("keel: listening on ") {
                base = Some(url.trim().to_string());
            }
            let last = line.contains("Ctrl-C stops");
            welcome.push(line);
            if last {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Demo {
            server: Server {
                child,
                base: base.expect("keel demo printed where it listens"),
            },
            welcome,
        }
    }

    /// The web UI's origin (`http://host:port`).
    pub fn origin(&self) -> &str {
        self.server
            .base
            .strip_suffix("/fhir")
            .expect("the FHIR base ends in /fhir")
    }

    /// The example patients it printed: (NHS number, practice line).
    pub fn example_patients(&self) -> Vec<(String, String)> {
        self.welcome
            .iter()
            .filter_map(|l| {
                let (nhs, rest) = l.trim().split_once("  registered at ")?;
                (nhs.len() == 10 && nhs.starts_with("999")).then(|| (nhs.into(), rest.into()))
            })
            .collect()
    }
}

/// A fresh PostgreSQL schema for one test, dropped with the guard. The server is
/// `KEEL_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`, which `.ci/run`
/// starts when it is not running).
pub struct TestSchema {
    name: String,
    base: String,
    /// A `--database` URL whose connections use this schema.
    pub url: String,
}

impl TestSchema {
    pub fn create(label: &str) -> TestSchema {
        let base = std::env::var("KEEL_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
        let name = format!("keel_{label}_{}", std::process::id());
        let mut client = postgres::Client::connect(&base, postgres::NoTls)
            .unwrap_or_else(|e| panic!("PostgreSQL at {base} (start it, or run .ci/run): {e}"));
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
            ))
            .expect("create schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-csearch_path%3D{name}");
        TestSchema { name, base, url }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name));
        }
    }
}

/// The audit records of one request (by its `X-Request-ID`), among the first 1,000 AuditEvents
/// `token` may read.
pub fn audit_events_of(
    client: &reqwest::blocking::Client,
    base: &str,
    token: &str,
) -> impl Fn(&str) -> Vec<serde_json::Value> + use<> {
    let events: serde_json::Value = client
        .get(format!("{base}/AuditEvent?_count=1000"))
        .bearer_auth(token)
        .send()
        .expect("audit search")
        .json()
        .expect("json");
    move |id: &str| {
        events["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["resource"].clone())
            .filter(|e| e["extension"].to_string().contains(&format!("\"{id}\"")))
            .collect()
    }
}
