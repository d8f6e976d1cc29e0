//! `read`, `search` and `import` against a tiny FHIR-like server on a loopback port, checking the
//! load generator's counts against what the server saw.

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use keel_loadgen::cli::{Cli, run_command};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Patients p0..p44 (family `Fam{i}`, born `19{i}-01-01`-ish) and `p-err`, whose read fails.
const PATIENTS: usize = 45;
const PAGE: usize = 10;

#[derive(Default)]
struct Seen {
    counts: HashMap<&'static str, u64>,
    observation_queries: Vec<String>,
}

impl Seen {
    fn get(&self, key: &str) -> u64 {
        self.counts.get(key).copied().unwrap_or(0)
    }
}

fn patient(i: usize) -> Value {
    json!({
        "resourceType": "Patient",
        "id": format!("p{i}"),
        "name": [{"family": format!("Fam {i}&Co"), "given": ["A"]}],
        "birthDate": format!("19{:02}-01-0{}", 10 + i, 1 + i % 9),
    })
}

fn all_patients() -> Vec<Value> {
    let mut all: Vec<Value> = (0..PATIENTS).map(patient).collect();
    all.push(json!({"resourceType": "Patient", "id": "p-err", "birthDate": "2000-01-01"}));
    all
}

fn query_params(query: &str) -> HashMap<String, String> {
    form_decode(query)
}

/// Minimal application/x-www-form-urlencoded decoding (percent escapes and '+').
fn form_decode(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

fn pct_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("hex");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf-8")
}

fn json_response(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        "application/fhir+json".parse().expect("header"),
    );
    r
}

fn bundle(kind: &str, resources: Vec<Value>, next: Option<String>) -> Value {
    let mut b = json!({
        "resourceType": "Bundle",
        "type": kind,
        "entry": resources.into_iter().map(|r| json!({"resource": r, "search": {"mode": "match"}})).collect::<Vec<_>>(),
    });
    if let Some(next) = next {
        b["link"] = json!([{"relation": "self", "url": "x"}, {"relation": "next", "url": next}]);
    }
    b
}

async fn handle(
    req: Request<Incoming>,
    seen: Arc<Mutex<Seen>>,
    host: String,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let params = query_params(&query);
    let bump = |key: &'static str| *seen.lock().expect("lock").counts.entry(key).or_default() += 1;
    let patients = all_patients();
    let response = match (method.as_str(), path.as_str()) {
        ("GET", "/fhir/Patient") if params.contains_key("_count") => {
            bump("discovery");
            let page: usize = params
                .get("_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let start = page * PAGE;
            let mut resources: Vec<Value> =
                patients.iter().skip(start).take(PAGE).cloned().collect();
            if page == 0 {
                resources.push(json!({"resourceType": "OperationOutcome", "id": "not-a-patient"}));
            }
            let next = (start + PAGE < patients.len())
                .then(|| format!("http://{host}/fhir/Patient?_count=10&_page={}", page + 1));
            json_response(StatusCode::OK, bundle("searchset", resources, next))
        }
        ("GET", "/fhir/Patient") => {
            let found = patients.iter().any(|p| {
                p["name"][0]["family"].as_str() == params.get("name").map(String::as_str)
                    && p["birthDate"].as_str() == params.get("birthdate").map(String::as_str)
            });
            if found {
                bump("patient-search:ok");
                json_response(StatusCode::OK, bundle("searchset", Vec::new(), None))
            } else {
                bump("patient-search:bad");
                json_response(
                    StatusCode::BAD_REQUEST,
                    json!({"resourceType": "OperationOutcome"}),
                )
            }
        }
        ("GET", "/fhir/Observation") => {
            let ok = params.get("code").map(String::as_str) == Some("http://loinc.org|8480-6")
                && params.get("patient").is_some_and(|p| p.starts_with('p'))
                && params.get("date").map(String::as_str) == Some("ge2015-01-01");
            let mut s = seen.lock().expect("lock");
            if s.observation_queries.len() < 5 {
                s.observation_queries.push(query.clone());
            }
            *s.counts
                .entry(if ok {
                    "observation-search:ok"
                } else {
                    "observation-search:bad"
                })
                .or_default() += 1;
            drop(s);
            json_response(
                if ok {
                    StatusCode::OK
                } else {
                    StatusCode::BAD_REQUEST
                },
                bundle("searchset", Vec::new(), None),
            )
        }
        ("GET", p) if p.starts_with("/fhir/Patient/") => {
            let id = &p["/fhir/Patient/".len()..];
            if id == "p-err" {
                bump("read:err");
                json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"resourceType": "OperationOutcome"}),
                )
            } else if let Some(p) = patients.iter().find(|p| p["id"] == id) {
                bump("read:ok");
                json_response(StatusCode::OK, p.clone())
            } else {
                bump("read:missing");
                json_response(
                    StatusCode::NOT_FOUND,
                    json!({"resourceType": "OperationOutcome"}),
                )
            }
        }
        ("POST", "/fhir/") | ("POST", "/fhir") => {
            bump("post");
            let posted: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let entries: Vec<Value> = posted["entry"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|e| {
                    let status = if e["resource"]["id"] == "bad" {
                        "400 Bad Request"
                    } else {
                        "201 Created"
                    };
                    json!({"response": {"status": status}})
                })
                .collect();
            json_response(
                StatusCode::OK,
                json!({"resourceType": "Bundle", "type": "batch-response", "entry": entries}),
            )
        }
        _ => {
            bump("other");
            json_response(
                StatusCode::NOT_FOUND,
                json!({"resourceType": "OperationOutcome"}),
            )
        }
    };
    Ok(response)
}

/// Starts the fake server on a free loopback port.
async fn start_server() -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen2.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(req, seen.clone(), addr.to_string()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

async fn run_json(args: &[&str]) -> (Value, bool) {
    let cli = Cli::try_parse_from(std::iter::once("keel-loadgen").chain(args.iter().copied()))
        .expect("arguments");
    let outcome = run_command(cli.command).await.expect("run");
    (outcome.json.expect("json output"), outcome.failed)
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_counts_match_the_server() {
    let (addr, seen) = start_server().await;
    let base = format!("http://{addr}/fhir");
    let pid = std::process::id().to_string();
    let (report, failed) = run_json(&[
        "read",
        "--base",
        &base,
        "--type",
        "Patient",
        "--connections",
        "4",
        "--duration",
        "800ms",
        "--json",
        "--pid",
        &pid,
    ])
    .await;
    let s = seen.lock().expect("lock");
    assert_eq!(
        n(&report["ids"]),
        PATIENTS as u64 + 1,
        "ids discovered over all pages, OperationOutcome left out"
    );
    assert_eq!(s.get("discovery"), 5, "45+1 patients in pages of 10");
    assert_eq!(n(&report["ok"]), s.get("read:ok"));
    assert_eq!(n(&report["errors"]), s.get("read:err"));
    assert_eq!(n(&report["errors_by_status"]["500"]), s.get("read:err"));
    assert_eq!(n(&report["requests"]), s.get("read:ok") + s.get("read:err"));
    assert_eq!(s.get("read:missing") + s.get("other"), 0);
    assert!(s.get("read:ok") > 100, "only {} reads", s.get("read:ok"));
    assert!(s.get("read:err") > 0, "p-err never read");
    assert!(failed);
    assert_eq!(
        n(&report["transport_errors"]) + n(&report["timeouts"]) + n(&report["reconnects"]),
        0
    );
    let throughput = report["throughput_rps"].as_f64().expect("rps");
    let measured = report["measured_s"].as_f64().expect("measured");
    assert!((0.8..3.0).contains(&measured), "{measured}");
    assert!(
        (throughput * measured - n(&report["requests"]) as f64).abs()
            < 0.01 * n(&report["requests"]) as f64 + 1.0
    );
    let lat = &report["latency_ms"];
    for q in ["p50", "p90", "p99", "p99_9", "max"] {
        assert!(lat[q].as_f64().expect(q) > 0.0, "{q}");
    }
    assert!(
        lat["p50"].as_f64() <= lat["p99"].as_f64() && lat["p99"].as_f64() <= lat["max"].as_f64()
    );
    assert!(report["server"]["rss_peak_mib"].as_f64().expect("rss") > 0.0);
    assert!(
        report["server"]["rss_peak_mib"].as_f64() >= report["server"]["rss_start_mib"].as_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_round_robin_with_warmup_counts_only_measured_requests() {
    let (addr, seen) = start_server().await;
    let base = format!("http://{addr}/fhir");
    let (report, _) = run_json(&[
        "read",
        "--base",
        &base,
        "--type",
        "Patient",
        "--connections",
        "3",
        "--warmup",
        "300ms",
        "--duration",
        "500ms",
        "--order",
        "round-robin",
        "--json",
    ])
    .await;
    let s = seen.lock().expect("lock");
    let served = s.get("read:ok") + s.get("read:err");
    assert_eq!(
        n(&report["requests"]) + n(&report["warmup_requests"]),
        served
    );
    assert!(n(&report["warmup_requests"]) > 0);
    // Round-robin over 46 ids: p-err comes up once every 46 reads per connection.
    let requests = n(&report["requests"]) as f64;
    let errors = n(&report["errors"]) as f64;
    assert!(
        (errors - requests / 46.0).abs() <= 4.0,
        "{errors} errors in {requests}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_fills_templates_and_reports_each_query() {
    let (addr, seen) = start_server().await;
    let base = format!("http://{addr}/fhir");
    let observation =
        "Observation?patient={Patient}&code=http://loinc.org|8480-6&date=ge2015-01-01";
    let patient = "Patient?name={Patient.name.family}&birthdate={Patient.birthDate}";
    let (report, failed) = run_json(&[
        "search",
        "--base",
        &base,
        "--connections",
        "5",
        "--duration",
        "800ms",
        "--query",
        observation,
        "--query",
        patient,
        "--json",
    ])
    .await;
    let s = seen.lock().expect("lock");
    assert!(!failed, "{report}");
    assert_eq!(
        s.get("observation-search:bad") + s.get("patient-search:bad") + s.get("other"),
        0
    );
    let queries = report["queries"].as_array().expect("queries");
    assert_eq!(queries.len(), 2);
    assert_eq!(queries[0]["query"], observation);
    assert_eq!(queries[1]["query"], patient);
    assert_eq!(n(&queries[0]["ok"]), s.get("observation-search:ok"));
    assert_eq!(n(&queries[1]["ok"]), s.get("patient-search:ok"));
    assert_eq!(
        n(&report["requests"]),
        s.get("observation-search:ok") + s.get("patient-search:ok")
    );
    assert_eq!(n(&report["errors"]), 0);
    // Round-robin per connection: the two queries differ by at most one request per connection.
    let (a, b) = (n(&queries[0]["requests"]), n(&queries[1]["requests"]));
    assert!(a.abs_diff(b) <= 5, "{a} vs {b}");
    assert!(a > 50);
    // The literal '|' was percent-encoded and the patient id substituted.
    let q = &s.observation_queries[0];
    assert!(
        q.starts_with("patient=p")
            && q.contains("code=http://loinc.org%7C8480-6&date=ge2015-01-01"),
        "{q}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_posts_every_bundle_and_counts_entries() {
    let (addr, seen) = start_server().await;
    let base = format!("http://{addr}/fhir");
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..5 {
        let mut entries =
            vec![json!({"resource": {"resourceType": "Patient", "id": format!("x{i}")}}); 3];
        if i == 2 {
            entries.push(json!({"resource": {"resourceType": "Patient", "id": "bad"}}));
        }
        let b = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
        std::fs::write(dir.path().join(format!("b{i}.json")), b.to_string()).expect("write");
    }
    let path = dir.path().to_string_lossy().into_owned();
    let (report, failed) = run_json(&[
        "import",
        "--base",
        &base,
        "--connections",
        "2",
        "--json",
        &path,
    ])
    .await;
    assert_eq!(seen.lock().expect("lock").get("post"), 5);
    assert_eq!(n(&report["files"]), 5);
    assert_eq!(n(&report["resources"]), 16);
    assert_eq!(n(&report["resources_ok"]), 15);
    assert_eq!(n(&report["files_failed"]), 1);
    assert!(failed);
    assert!(report["resources_per_s"].as_f64().expect("rate") > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_json_and_exits_by_status() {
    let (addr, seen) = start_server().await;
    let base = format!("http://{addr}/fhir");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_keel-loadgen"))
            .args([
                "search",
                "--base",
                &base,
                "--connections",
                "2",
                "--duration",
                "300ms",
                "--json",
            ])
            .args([
                "--query",
                "Patient?name={Patient.name.family}&birthdate={Patient.birthDate}",
            ])
            .output()
            .expect("run keel-loadgen")
    })
    .await
    .expect("join");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(
        n(&report["requests"]),
        seen.lock().expect("lock").get("patient-search:ok")
    );

    // A non-loopback base is refused before anything is sent.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_keel-loadgen"))
        .args([
            "read",
            "--base",
            "http://192.0.2.1/fhir",
            "--type",
            "Patient",
            "--duration",
            "1s",
        ])
        .output()
        .expect("run keel-loadgen");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--allow-remote"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_shows_requests_without_sending_them() {
    let (addr, seen) = start_server().await;
    let base = format!("http://{addr}/fhir");
    let (report, failed) = run_json(&[
        "search",
        "--base",
        &base,
        "--query",
        "Observation?patient={Patient}&code=http://loinc.org|8480-6",
        "--query",
        "Patient?name={Patient.name.family}",
        "--dry-run",
        "--json",
    ])
    .await;
    assert!(!failed);
    let s = seen.lock().expect("lock");
    assert_eq!(
        s.get("observation-search:ok")
            + s.get("observation-search:bad")
            + s.get("patient-search:ok"),
        0
    );
    let observations =
        report["requests"]["Observation?patient={Patient}&code=http://loinc.org|8480-6"]
            .as_array()
            .expect("list");
    assert_eq!(observations.len(), 5);
    for o in observations {
        let o = o.as_str().expect("string");
        assert!(
            o.starts_with("/fhir/Observation?patient=p")
                && o.ends_with("&code=http://loinc.org%7C8480-6"),
            "{o}"
        );
    }
    let patients = report["requests"]["Patient?name={Patient.name.family}"]
        .as_array()
        .expect("list");
    let first = patients[0].as_str().expect("string");
    assert!(
        first.starts_with("/fhir/Patient?name=Fam%20") && first.ends_with("%26Co"),
        "{first}"
    );
}
