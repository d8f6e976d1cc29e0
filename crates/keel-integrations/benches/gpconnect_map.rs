//! The GP Connect adapter's own time for a 5,000-entry record: parse and map every section's
//! structured record Bundle (and, separately, render the mapped sections as JSON), no HTTP.
//! The Bundles are fetched once from the simulator (default PCN: 40,000 patients, seed 1).
//!
//! `cargo bench -p keel-integrations --bench gpconnect_map`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_core::{CorrelationId, RequestContext};
use keel_integrations::gpconnect::map::{self, Source};
use keel_integrations::gpconnect::request::{self, Consumer, Interaction};
use keel_integrations::http;
use keel_model::record::RecordSection;
use keel_model::{NhsNumber, OdsCode};
use keel_sim::faults::FaultHandle;
use keel_sim::gpconnect::{self, GpConnectSimulator};
use keel_sim::model::{Confidentiality, NhsNumberStatus, RegistrationType};
use keel_sim::records::PracticeRecords;
use keel_sim::{Options, Population};

const RUNS: usize = 51;
const SECTIONS: [RecordSection; 6] = [
    RecordSection::Problems,
    RecordSection::Medications,
    RecordSection::Allergies,
    RecordSection::Observations,
    RecordSection::Immunisations,
    RecordSection::Consultations,
];

fn main() {
    let records = Arc::new(PracticeRecords::new(Population::generate(
        Options::default(),
    )));
    let pop = records.population();
    let (practice, nhs, entries) = (0..pop.len())
        .find_map(|i| {
            let person = pop.person(i);
            let r = person.primary();
            let entries = r.clinical.entry_count();
            let servable = r.registration.is_active()
                && r.death_date.is_none()
                && r.registration.kind == RegistrationType::Regular
                && r.nhs_status == NhsNumberStatus::Verified
                && r.confidentiality == Confidentiality::Unrestricted;
            (servable && (5_000..6_000).contains(&entries)).then_some((
                r.practice,
                r.nhs_number,
                entries,
            ))
        })
        .expect("a 5,000-entry record in the default PCN");
    let nhs = nhs.expect("an NHS number");
    let ods = pop.pcn().practices[practice].ods.clone();
    let bodies = fetch(records.clone(), practice, &nhs);
    let bytes: usize = bodies.iter().map(Vec::len).sum();

    let retrieved = http::now();
    let source = Source {
        practice: &ods,
        retrieved: &retrieved,
    };
    let mut assemble = Vec::with_capacity(RUNS);
    let mut render = Vec::with_capacity(RUNS);
    let mut items = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let mut sections = Vec::with_capacity(SECTIONS.len());
        for (section, body) in SECTIONS.iter().zip(&bodies) {
            sections.push(map::map_section(body, *section, &source).expect("maps"));
        }
        assemble.push(started.elapsed());
        let rendered = serde_json::to_vec(&sections).expect("render");
        render.push(started.elapsed());
        items = rendered.len();
        std::hint::black_box(&sections);
    }
    println!(
        "GP Connect, {entries}-entry record, {} Bundles, {bytes} bytes in, {items} bytes rendered, {RUNS} runs",
        SECTIONS.len()
    );
    report("parse + map", &mut assemble);
    report("parse + map + render", &mut render);
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3
    );
}

/// Each section's Bundle, fetched once over HTTP.
fn fetch(records: Arc<PracticeRecords>, practice: usize, nhs: &NhsNumber) -> Vec<Vec<u8>> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let sim = GpConnectSimulator::new(records);
        let (addr, _task) = gpconnect::serve(
            sim.clone(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            FaultHandle::default(),
        )
        .await
        .expect("bind");
        let root = format!("http://{addr}{}", sim.service_root(practice).expect("root"));
        let consumer = Consumer {
            asid: "200000000359".into(),
            endpoint: "https://keel.example/".into(),
            organisation: OdsCode::parse("A11111").expect("valid"),
            product: "Keel".into(),
            version: "bench".into(),
        };
        let ctx = RequestContext::local_development(CorrelationId::parse("bench").expect("valid"));
        let client = reqwest::Client::new();
        let mut bodies = Vec::new();
        for section in SECTIONS {
            let claims = request::claims(
                &ctx,
                &consumer,
                &root,
                Interaction::GetStructuredRecord,
                request::unix_now(),
            )
            .expect("direct care");
            let parameters = map::parameters(nhs, Some(section)).expect("an area");
            let response = client
                .post(format!("{root}/Patient/$gpc.getstructuredrecord"))
                .header("Ssp-TraceID", http::request_id())
                .header("Ssp-From", &consumer.asid)
                .header("Ssp-To", sim.asid(practice).expect("asid"))
                .header("Ssp-InteractionID", Interaction::GetStructuredRecord.id())
                .header(
                    "Authorization",
                    format!("Bearer {}", request::unsigned_jwt(&claims)),
                )
                .header("Content-Type", "application/fhir+json")
                .body(parameters.to_string())
                .send()
                .await
                .expect("answer");
            assert_eq!(response.status().as_u16(), 200);
            bodies.push(response.bytes().await.expect("body").to_vec());
        }
        bodies
    })
}
