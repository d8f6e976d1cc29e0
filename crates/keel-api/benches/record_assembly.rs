//! Benchmark: Keel's own time to assemble a 5,000-entry record (issue: p50 under 25 ms,
//! simulator time excluded: parse, map, policy, render).
//!
//! For the default PCN (40,000 patients, seed 1) it picks the first patient with 5,000 to
//! 5,999 entries at an EMIS-style and at a TPP-style practice whom every route will serve
//! (regular, active, alive, verified NHS number, unrestricted). The simulators run
//! in-process; in front of each sits a **replay proxy**: the first request with a given
//! (method, path and query, body) is forwarded and its status, headers and body kept; every
//! later identical request is answered from memory at once. The practice connections point
//! at the proxies, so after a warm-up that fills them the simulators do no work.
//!
//! Timed, per route: `Directory::record` for every section, `record_bundle_then_free` (the
//! Bundle's JSON bytes, as the `$record` handler makes them: the record itself is freed on the
//! blocking pool after the bytes are ready, so that freeing overlaps the next sample rather
//! than being timed) and freeing the bytes. Routes: EMIS-style and TPP-style (each patient at their
//! own practice through its supplier API) and GP Connect (a second directory with the supplier
//! interfaces disabled, so reads route to GP Connect; both patients). The time still includes
//! the loopback transfer of the replayed bytes into Keel: Keel's side of the wire.
//!
//! The bench runs with the allocator `keel serve` runs with (mimalloc), as `read_auth_audit`
//! does: the record's many small allocations and their freeing are part of what is timed.
//!
//! `cargo bench -p keel-api --bench record_assembly`

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keel_api::record_fhir::record_bundle_then_free;
use keel_core::integration::{Interface, PracticeConnection};
use keel_core::{CorrelationId, RequestContext};
use keel_integrations::directory::Directory;
use keel_integrations::gpconnect::request::Consumer;
use keel_model::record::RecordSection;
use keel_model::{NhsNumber, OdsCode};
use keel_sim::connections::{self, SimulatorAddresses};
use keel_sim::faults::FaultHandle;
use keel_sim::model::{
    Confidentiality, GpSystem, NhsNumberStatus, PatientRecord, RegistrationType,
};
use keel_sim::records::PracticeRecords;
use keel_sim::{Options, Population, emis, gpconnect, tpp};

/// The allocator `keel serve` runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WARM_UP: usize = 3;
const SAMPLES: usize = 40;
const TIMEOUT_MS: u64 = 10_000;
/// The most a replayed body may be (the largest record answers are a few MB).
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

// ---------------------------------------------------------------------------------------------
// The replay proxy

/// One recorded answer.
struct Recorded {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// Forwards the first request of each (method, path and query, body) to `upstream` and keeps
/// the answer; answers the later ones from memory.
struct ReplayProxy {
    upstream: String,
    client: reqwest::Client,
    recorded: Mutex<HashMap<(Method, String, Bytes), Arc<Recorded>>>,
    forwarded: AtomicUsize,
    replayed: AtomicUsize,
}

impl ReplayProxy {
    async fn answer(&self, request: Request<Body>) -> Response {
        let (parts, body) = request.into_parts();
        let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
            return (StatusCode::BAD_REQUEST, "unreadable body").into_response();
        };
        let target = parts.uri.path_and_query().map_or_else(
            || parts.uri.path().to_string(),
            |pq| pq.as_str().to_string(),
        );
        let key = (parts.method.clone(), target.clone(), body.clone());
        let known = self
            .recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let recorded = match known {
            Some(recorded) => {
                self.replayed.fetch_add(1, Ordering::Relaxed);
                recorded
            }
            None => {
                let Some(recorded) = self
                    .forward(&parts.method, &target, &parts.headers, body)
                    .await
                else {
                    return (StatusCode::BAD_GATEWAY, "upstream failed").into_response();
                };
                self.forwarded.fetch_add(1, Ordering::Relaxed);
                let recorded = Arc::new(recorded);
                self.recorded
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, recorded.clone());
                recorded
            }
        };
        let mut response = Response::new(Body::from(recorded.body.clone()));
        *response.status_mut() = recorded.status;
        *response.headers_mut() = recorded.headers.clone();
        response
    }

    async fn forward(
        &self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Option<Recorded> {
        let mut sent = headers.clone();
        sent.remove(header::HOST);
        sent.remove(header::CONTENT_LENGTH);
        let answer = self
            .client
            .request(method.clone(), format!("{}{target}", self.upstream))
            .headers(sent)
            .body(body)
            .send()
            .await
            .ok()?;
        let status = answer.status();
        let mut headers = answer.headers().clone();
        for hop in [
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::CONNECTION,
        ] {
            headers.remove(hop);
        }
        let body = answer.bytes().await.ok()?;
        Some(Recorded {
            status,
            headers,
            body,
        })
    }
}

/// Starts a replay proxy in front of `upstream`; returns its address and the proxy.
async fn replay_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<ReplayProxy>) {
    let proxy = Arc::new(ReplayProxy {
        upstream: format!("http://{upstream}"),
        client: reqwest::Client::new(),
        recorded: Mutex::new(HashMap::new()),
        forwarded: AtomicUsize::new(0),
        replayed: AtomicUsize::new(0),
    });
    let state = proxy.clone();
    let router = Router::new().fallback(move |request: Request<Body>| {
        let proxy = state.clone();
        async move { proxy.answer(request).await }
    });
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind the proxy");
    let at = listener.local_addr().expect("the proxy's address");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("the proxy runs");
    });
    (at, proxy)
}

// ---------------------------------------------------------------------------------------------
// The PCN, the patients and the directories

fn ctx() -> RequestContext {
    RequestContext::local_development(CorrelationId::parse("bench-record-assembly").expect("valid"))
}

fn consumer() -> Consumer {
    Consumer {
        asid: "200000000359".into(),
        endpoint: "https://keel.example/".into(),
        organisation: OdsCode::parse("U12345").expect("valid"),
        product: "keel".into(),
        version: "bench".into(),
    }
}

fn servable(r: &PatientRecord) -> bool {
    r.registration.is_active()
        && r.death_date.is_none()
        && r.registration.kind == RegistrationType::Regular
        && r.nhs_status == NhsNumberStatus::Verified
        && r.confidentiality == Confidentiality::Unrestricted
        && (5_000..6_000).contains(&r.clinical.entry_count())
}

fn pick(records: &PracticeRecords, system: GpSystem) -> PatientRecord {
    let population = records.population();
    population
        .persons()
        .map(|p| p.primary().clone())
        .find(|r| population.pcn().practices[r.practice].system == system && servable(r))
        .expect("a 5,000-entry record at such a practice in the default PCN")
}

/// A directory holding `connections`, with `supplier_enabled` deciding whether each
/// practice's supplier API is on (off: reads route to GP Connect).
fn directory(connections: &[PracticeConnection], supplier_enabled: bool) -> Directory {
    let directory = Directory::open(consumer(), None, None).expect("open");
    for c in connections {
        let mut c = c.clone();
        for i in &mut c.interfaces {
            if matches!(i.interface, Interface::EmisStyle | Interface::TppStyle) {
                i.enabled = supplier_enabled;
            }
        }
        directory
            .register(&ctx(), c, None, Some("bench".into()))
            .expect("register");
    }
    directory
}

// ---------------------------------------------------------------------------------------------
// Timing

/// The p50 and p99 of some durations.
#[derive(Clone, Copy)]
struct Percentiles {
    p50: Duration,
    p99: Duration,
}

fn percentiles(mut times: Vec<Duration>) -> Percentiles {
    times.sort_unstable();
    Percentiles {
        p50: times[times.len() / 2],
        p99: times[(times.len() * 99 / 100).min(times.len() - 1)],
    }
}

struct Timing {
    total: Percentiles,
    /// `Directory::record` alone: the wire, parse, map and policy.
    record: Percentiles,
    /// `record_bundle_then_free` alone (the Bundle's JSON bytes).
    bundle: Percentiles,
    /// Freeing the Bundle's bytes (the record is freed off the request's path).
    dropped: Percentiles,
    shape: Shape,
}

/// What one assembly gave.
#[derive(Default)]
struct Shape {
    bundle_entries: usize,
    bytes: usize,
    unavailable: Vec<&'static str>,
}

/// How long each phase of one assembly took.
struct Phases {
    record: Duration,
    bundle: Duration,
    /// Freeing the Bundle's bytes.
    dropped: Duration,
}

/// One assembly: the record of every section and its Bundle's bytes, as the `$record`
/// handler makes them (`record_bundle_then_free`: the record is freed on the blocking pool
/// once the bytes are ready, off the request's path).
async fn assemble(directory: &Directory, nhs: NhsNumber, practice: &OdsCode) -> (Shape, Phases) {
    let started = Instant::now();
    let record = directory
        .record(&ctx(), nhs, Some(practice.clone()), &RecordSection::ALL)
        .await
        .expect("record");
    let recorded = Instant::now();
    // The bench's own bookkeeping, not timed.
    let unavailable = RecordSection::ALL
        .iter()
        .zip(&record.sections)
        .filter(|(_, s)| s.is_unavailable())
        .map(|(section, _)| section.key())
        .collect();
    let rendering = Instant::now();
    let bundle = record_bundle_then_free(record);
    let rendered = Instant::now();
    let shape = Shape {
        bundle_entries: count(&bundle, b"\"fullUrl\""),
        bytes: bundle.len(),
        unavailable,
    };
    let freeing = Instant::now();
    drop(bundle);
    let phases = Phases {
        record: recorded - started,
        bundle: rendered - rendering,
        dropped: freeing.elapsed(),
    };
    (shape, phases)
}

/// How often `needle` occurs in `haystack` (Bundle entries: each has one `fullUrl`).
fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

fn forwarded(proxies: &[Arc<ReplayProxy>]) -> usize {
    proxies
        .iter()
        .map(|p| p.forwarded.load(Ordering::Relaxed))
        .sum()
}

async fn time(
    directory: &Directory,
    patient: &PatientRecord,
    practice: &OdsCode,
    proxies: &[Arc<ReplayProxy>],
) -> Timing {
    let nhs = patient.nhs_number.expect("an NHS number");
    for _ in 0..WARM_UP {
        assemble(directory, nhs, practice).await;
    }
    let forwarded_before = forwarded(proxies);
    let mut total = Vec::with_capacity(SAMPLES);
    let mut record = Vec::with_capacity(SAMPLES);
    let mut bundle = Vec::with_capacity(SAMPLES);
    let mut dropped = Vec::with_capacity(SAMPLES);
    let mut shape = Shape::default();
    for _ in 0..SAMPLES {
        let (s, phases) = assemble(directory, nhs, practice).await;
        // Keel's work only: the bench's own counting of the Bundle's entries is left out.
        total.push(phases.record + phases.bundle + phases.dropped);
        record.push(phases.record);
        bundle.push(phases.bundle);
        dropped.push(phases.dropped);
        shape = s;
    }
    assert_eq!(
        forwarded_before,
        forwarded(proxies),
        "every timed request should have been replayed, none forwarded to a simulator"
    );
    Timing {
        total: percentiles(total),
        record: percentiles(record),
        bundle: percentiles(bundle),
        dropped: percentiles(dropped),
        shape,
    }
}

/// The wire alone: every answer `proxy` keeps whose request `belongs` to the patient, fetched
/// from the proxy all at once and read into memory, nothing parsed. Returns the p50 and the
/// bytes fetched.
async fn wire_only(
    proxy_at: SocketAddr,
    proxy: &ReplayProxy,
    belongs: impl Fn(&str, &[u8]) -> bool,
) -> (Percentiles, usize) {
    let requests: Vec<(Method, String, Bytes)> = proxy
        .recorded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .filter(|(_, target, body)| belongs(target, body))
        .cloned()
        .collect();
    let client = reqwest::Client::new();
    let fetch_all = || {
        futures::future::join_all(requests.iter().map(|(method, target, body)| {
            let request = client
                .request(method.clone(), format!("http://{proxy_at}{target}"))
                .body(body.clone());
            async move {
                let answer = request.send().await.expect("replayed");
                answer.bytes().await.expect("body").len()
            }
        }))
    };
    for _ in 0..WARM_UP {
        fetch_all().await;
    }
    let mut times = Vec::with_capacity(SAMPLES);
    let mut fetched = 0;
    for _ in 0..SAMPLES {
        let started = Instant::now();
        fetched = fetch_all().await.iter().sum();
        times.push(started.elapsed());
    }
    (percentiles(times), fetched)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(route: &str, patient: &PatientRecord, t: &Timing, wire: (Percentiles, usize)) {
    let unavailable = if t.shape.unavailable.is_empty() {
        String::new()
    } else {
        format!("; unavailable: {}", t.shape.unavailable.join(", "))
    };
    println!(
        "{route:<40} p50 {:>7.2} ms  p99 {:>7.2} ms  ({} sim entries, {} Bundle entries, {} Bundle bytes{unavailable})",
        ms(t.total.p50),
        ms(t.total.p99),
        patient.clinical.entry_count(),
        t.shape.bundle_entries,
        t.shape.bytes,
    );
    println!(
        "{:<40} p50 by phase: record {:.2} ms (wire alone {:.2} ms for {} answer bytes) | record_bundle_then_free {:.2} ms | freeing the bytes {:.2} ms",
        "",
        ms(t.record.p50),
        ms(wire.0.p50),
        wire.1,
        ms(t.bundle.p50),
        ms(t.dropped.p50),
    );
}

async fn run() {
    let records = Arc::new(PracticeRecords::new(Population::generate(
        Options::default(),
    )));
    let emis_patient = pick(&records, GpSystem::EmisStyle);
    let tpp_patient = pick(&records, GpSystem::TppStyle);
    let any = SocketAddr::from(([127, 0, 0, 1], 0));

    let gp = gpconnect::GpConnectSimulator::new(records.clone());
    let (gp_at, _g) = gpconnect::serve(gp.clone(), any, FaultHandle::default())
        .await
        .expect("bind");
    let (emis_at, _e) = emis::serve(
        emis::EmisSimulator::new(records.clone()),
        any,
        FaultHandle::default(),
    )
    .await
    .expect("bind");
    let (tpp_at, _t) = tpp::serve(
        tpp::TppSimulator::new(records.clone()),
        any,
        FaultHandle::default(),
    )
    .await
    .expect("bind");
    let (gp_proxy_at, gp_proxy) = replay_proxy(gp_at).await;
    let (emis_proxy_at, emis_proxy) = replay_proxy(emis_at).await;
    let (tpp_proxy_at, tpp_proxy) = replay_proxy(tpp_at).await;
    let proxies = [gp_proxy, emis_proxy, tpp_proxy];

    let pcn = records.population().pcn();
    let json = connections::for_pcn(
        pcn,
        &gp,
        SimulatorAddresses {
            gp_connect: gp_proxy_at,
            emis: emis_proxy_at,
            tpp: tpp_proxy_at,
        },
        TIMEOUT_MS,
    );
    let connections: Vec<PracticeConnection> =
        serde_json::from_value(json).expect("the simulated PCN's connections");
    let through_supplier = directory(&connections, true);
    let through_gp_connect = directory(&connections, false);

    let emis_ods = pcn.practices[emis_patient.practice].ods.clone();
    let tpp_ods = pcn.practices[tpp_patient.practice].ods.clone();
    let emis = time(&through_supplier, &emis_patient, &emis_ods, &proxies).await;
    let tpp = time(&through_supplier, &tpp_patient, &tpp_ods, &proxies).await;
    let gpc_emis = time(&through_gp_connect, &emis_patient, &emis_ods, &proxies).await;
    let gpc_tpp = time(&through_gp_connect, &tpp_patient, &tpp_ods, &proxies).await;
    let [gp_proxy, emis_proxy, tpp_proxy] = &proxies;
    let everything = |_: &str, _: &[u8]| true;
    let emis_wire = wire_only(emis_proxy_at, emis_proxy, everything).await;
    let tpp_wire = wire_only(tpp_proxy_at, tpp_proxy, everything).await;
    let names = |patient: &PatientRecord| {
        let nhs = patient
            .nhs_number
            .expect("an NHS number")
            .as_str()
            .to_string();
        move |_: &str, body: &[u8]| String::from_utf8_lossy(body).contains(&nhs)
    };
    let gpc_emis_wire = wire_only(gp_proxy_at, gp_proxy, names(&emis_patient)).await;
    let gpc_tpp_wire = wire_only(gp_proxy_at, gp_proxy, names(&tpp_patient)).await;

    println!(
        "Keel assembling one 5,000-entry record: Directory::record of all {} sections + record_bundle_then_free (JSON bytes; the record is freed on the blocking pool after them).",
        RecordSection::ALL.len()
    );
    println!(
        "{SAMPLES} sequential runs after {WARM_UP} warm-up; the simulators are behind replay proxies and every timed request was replayed."
    );
    println!(
        "Times include the loopback transfer of the replayed answers into Keel (Keel's side of the wire). Target: p50 < 25 ms."
    );
    report("EMIS-style route", &emis_patient, &emis, emis_wire);
    report("TPP-style route", &tpp_patient, &tpp, tpp_wire);
    report(
        "GP Connect route (EMIS-style practice)",
        &emis_patient,
        &gpc_emis,
        gpc_emis_wire,
    );
    report(
        "GP Connect route (TPP-style practice)",
        &tpp_patient,
        &gpc_tpp,
        gpc_tpp_wire,
    );
    let replayed: usize = proxies
        .iter()
        .map(|p| p.replayed.load(Ordering::Relaxed))
        .sum();
    println!(
        "replay proxies: {} requests forwarded to simulators (warm-up), {replayed} replayed",
        forwarded(&proxies)
    );
}
