//! `Patient/$match` latency through the core (`FhirService::match_patients`: the request's
//! access view, the cached person index — trained by EM from the stored Patients on first use —
//! candidates graded NHS number first, each candidate read from the store and decided on, the
//! audit note), against an embedded store of synthetic Patients.
//!
//! The store: `BENCH_DATA=<data dir>` uses an existing one (e.g. `keel sim generate --format
//! fhir` then `keel import`); otherwise the left file of `keel sim linkage` (`BENCH_PEOPLE`,
//! default 100,000) is stored as FHIR Patients of five practices. Queries: the right file's
//! records of the same people (typing errors, changed addresses, missing NHS numbers; those
//! with too little to match on are left out: they are refused before any work), or with
//! `BENCH_DATA` the stored Patients with their NHS number removed and a letter of the given name
//! dropped. Prints the first (training) call's time and the p50/p99 of 2,000 single requests;
//! then the same with a Patient written before each request (the query itself stored as a new
//! Patient: the cached index must follow the write before it answers; the write's own time is
//! not counted); then the criterion measurement.
//!
//!     cargo bench -p keel-api --bench patient_match
//!     BENCH_PEOPLE=1000000 cargo bench -p keel-api --bench patient_match

use criterion::{Criterion, criterion_group, criterion_main};
use keel_core::audit::RequestAudit;
use keel_core::clock::{SequentialIds, SystemClock};
use keel_core::fhir::{FhirService, MatchRequest};
use keel_core::store::ResourceStore;
use keel_core::{CorrelationId, RequestContext};
use keel_sim::linkage::LinkageOptions;
use keel_store::{Durability, SqliteStore};
use serde_json::{Value, json};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

const QUERIES: usize = 2_000;
const PRACTICES: [&str; 5] = ["A81001", "A81002", "A81003", "A81004", "A81005"];

fn ctx() -> RequestContext {
    RequestContext::local_development(CorrelationId::parse("bench-match").expect("id"))
}

/// A linkage CSV row (id, given, family, sex, birth date, postcode, street number, street,
/// NHS number) as a FHIR Patient; an NHS number that fails its check digit is left out.
fn patient(row: &str, practice: &str) -> Value {
    let fields = keel_identity::csv::parse(row)
        .unwrap_or_default()
        .pop()
        .unwrap_or_default();
    let get = |i: usize| fields.get(i).map_or("", |s| s.trim());
    let mut p = json!({
        "resourceType": "Patient",
        "id": get(0),
        "generalPractitioner": [{"reference": format!("Organization/{practice}")}]
    });
    // Empty values are left out (FHIR allows no empty strings).
    let mut name = json!({});
    if !get(2).is_empty() {
        name["family"] = json!(get(2));
    }
    if !get(1).is_empty() {
        name["given"] = json!([get(1)]);
    }
    if name.as_object().is_some_and(|n| !n.is_empty()) {
        p["name"] = json!([name]);
    }
    let mut address = json!({});
    let line = format!("{} {}", get(6), get(7));
    if !line.trim().is_empty() {
        address["line"] = json!([line.trim()]);
    }
    if !get(5).is_empty() {
        address["postalCode"] = json!(get(5));
    }
    if address.as_object().is_some_and(|a| !a.is_empty()) {
        p["address"] = json!([address]);
    }
    let (y, m, d) = keel_identity::record::parse_birth_date(get(4));
    if let (Some(y), Some(m), Some(d)) = (y, m, d) {
        // A date that does not exist (the linkage files' typing errors) is left out.
        let date = format!("{y:04}-{m:02}-{d:02}");
        if keel_model::ClinicalDate::parse(&date).is_ok() {
            p["birthDate"] = json!(date);
        }
    }
    match keel_identity::Sex::parse(get(3)).code() {
        "" => {}
        sex => p["gender"] = json!(sex),
    }
    if keel_model::NhsNumber::parse(get(8)).is_ok() {
        p["identifier"] = json!([{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": get(8)}]);
    }
    p
}

fn seed(fhir: &FhirService, options: &LinkageOptions) {
    let started = Instant::now();
    let mut entries = Vec::new();
    for i in 0..options.people {
        let p = patient(&options.left_row(i), PRACTICES[(i % 5) as usize]);
        let url = format!("Patient/{}", p["id"].as_str().unwrap_or_default());
        entries.push(json!({"resource": p, "request": {"method": "PUT", "url": url}}));
        if entries.len() == 5_000 || i + 1 == options.people {
            let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": std::mem::take(&mut entries)});
            let stored = fhir.process_bundle(&ctx(), bundle).expect("store patients");
            if let Some(Err(e)) = stored.entries.iter().find(|e| e.is_err()) {
                panic!("a Patient was not stored: {e:?}");
            }
        }
    }
    eprintln!(
        "stored {} Patients in {:.1} s",
        options.people,
        started.elapsed().as_secs_f64()
    );
}

/// Stored Patients made into queries: no NHS number, one letter of the given name dropped.
fn queries_from_store(store: &dyn ResourceStore) -> Vec<Value> {
    let mut reader = store.reader().expect("reader");
    let head = reader.version_head().expect("head");
    let versions = reader
        .versions_between("Patient", 0, head, 200_000)
        .expect("patients");
    let step = (versions.len() / QUERIES).max(1);
    versions
        .iter()
        .step_by(step)
        .filter_map(|v| serde_json::from_str::<Value>(v.resource.body.as_deref()?).ok())
        .map(|mut p| {
            if let Some(m) = p.as_object_mut() {
                m.remove("identifier");
                m.remove("id");
                m.remove("meta");
            }
            let mut given: Vec<char> = p["name"][0]["given"][0]
                .as_str()
                .unwrap_or_default()
                .chars()
                .collect();
            if given.len() > 3 {
                given.remove(2);
                p["name"][0]["given"][0] = json!(given.into_iter().collect::<String>());
            }
            p
        })
        .take(QUERIES)
        .collect()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let given: Option<PathBuf> = std::env::var_os("BENCH_DATA").map(PathBuf::from);
    let store: Arc<SqliteStore> = Arc::new(
        SqliteStore::open_dir_with(
            given.as_deref().unwrap_or(dir.path()),
            Durability::Resumable,
        )
        .expect("store"),
    );
    let fhir = FhirService::new(
        store.clone(),
        Arc::new(SystemClock::default()),
        Arc::new(SequentialIds::new("b")),
    );
    let queries: Vec<Value> = if given.is_some() {
        queries_from_store(store.as_ref())
    } else {
        let people: u64 = std::env::var("BENCH_PEOPLE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000);
        let options = LinkageOptions {
            seed: 1,
            people,
            overlap: 0.9,
        };
        seed(&fhir, &options);
        (0..QUERIES as u64)
            .map(|j| {
                patient(
                    &options.right_row(j * (people / QUERIES as u64).max(1)).0,
                    "A81001",
                )
            })
            .collect()
    };
    // A record too incomplete to match on (no NHS number, no name or birth date) is refused
    // with a 400 before any work: not what is measured.
    let queries: Vec<Value> = queries
        .into_iter()
        .filter(|q| keel_core::identity::query_subject(q).is_ok())
        .collect();
    let request = |resource: &Value| MatchRequest {
        resource: resource.clone(),
        only_certain: false,
        count: 10,
    };
    let run = |q: &Value| fhir.match_patients(&ctx(), &request(q), &mut RequestAudit::default());
    let started = Instant::now();
    let first = run(&queries[0]).expect("match");
    eprintln!(
        "first $match (reads every Patient, trains the model, builds the index): {:.1} s; {} matches",
        started.elapsed().as_secs_f64(),
        first.matches.len()
    );
    let timed = |label: &str, before_each: &dyn Fn(usize, &Value)| {
        let mut found = 0;
        let mut times: Vec<f64> = queries
            .iter()
            .enumerate()
            .map(|(j, q)| {
                before_each(j, q);
                let t = Instant::now();
                let result = run(q);
                let ms = t.elapsed().as_secs_f64() * 1e3;
                if result.is_ok_and(|r| !r.matches.is_empty()) {
                    found += 1;
                }
                ms
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
        eprintln!(
            "{} $match requests{label} ({found} with a match): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            times.len(),
            at(0.5),
            at(0.99),
            at(1.0)
        );
    };
    timed("", &|_, _| {});
    timed(", a Patient written before each", &|j, q| {
        let id = format!("written-{j}");
        let mut body = q.clone();
        body["id"] = json!(id);
        fhir.update(
            &ctx(),
            "Patient",
            &id,
            body,
            None,
            &mut RequestAudit::default(),
        )
        .expect("write a Patient");
    });
    let mut next = 0;
    c.bench_function("patient_match", |b| {
        b.iter(|| {
            next = (next + 1) % queries.len();
            black_box(run(&queries[next]).expect("match"))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
