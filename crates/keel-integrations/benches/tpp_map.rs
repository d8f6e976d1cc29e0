//! The TPP-style adapter's own time for a 5,000-entry record: parse and map every section
//! (the journal's six and the medication list), no HTTP. The bodies are fetched once from the
//! simulator first. Run with `cargo bench -p keel-integrations --bench tpp_map`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_core::integration::SectionContent;
use keel_integrations::tpp::map::{self, Source};
use keel_model::OdsCode;
use keel_model::record::RecordSection;
use keel_sim::faults::FaultHandle;
use keel_sim::records::PracticeRecords;
use keel_sim::tpp::{self, TppSimulator, session};
use keel_sim::{Options, Population};

/// Person 29335's primary record at TPP-style practice Y96764 of the default PCN (40,000
/// patients, seed 1): 5,066 journal events (the simulator's own timing test uses it too).
const UNIT: &str = "Y96764";
const PATIENT: u64 = 293_351;
const RUNS: usize = 60;

async fn fetch(client: &reqwest::Client, url: String) -> Vec<u8> {
    let response = client
        .get(url)
        .header(session::APPLICATION_HEADER, session::APPLICATION_ID)
        .header(session::SESSION_HEADER, session::SENSITIVE_SESSION)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200);
    response.bytes().await.expect("body").to_vec()
}

fn item_count(content: &SectionContent) -> usize {
    match content {
        SectionContent::Problems(s) => s.items.len(),
        SectionContent::Medications(s) => s.items.len(),
        SectionContent::Allergies(s) => s.items.len(),
        SectionContent::Observations(s) => s.items.len(),
        SectionContent::Immunisations(s) => s.items.len(),
        SectionContent::Consultations(s) => s.items.len(),
        SectionContent::Documents(s) => s.items.len(),
    }
}

/// Parses and maps the whole record once; the number of items mapped.
fn map_record(journal: &[u8], medication: &[u8], source: &Source) -> usize {
    let journal = map::parse_journal(journal).expect("journal");
    let mut items = 0;
    for section in RecordSection::ALL {
        if map::event_type(section).is_some() {
            let content = map::journal_section(&journal, section, source).expect("maps");
            items += item_count(&content);
        }
    }
    let list = map::parse_medication(medication).expect("medication list");
    items
        + map::medication_section(&list, source)
            .expect("maps")
            .items
            .len()
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (journal, medication) = runtime.block_on(async {
        let records = Arc::new(PracticeRecords::new(Population::generate(
            Options::default(),
        )));
        let (addr, _task) = tpp::serve(
            TppSimulator::new(records),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            FaultHandle::default(),
        )
        .await
        .expect("bind");
        let base = format!("http://{addr}{}/{UNIT}/patients/{PATIENT}", tpp::BASE_PATH);
        let client = reqwest::Client::new();
        (
            fetch(&client, format!("{base}/journal")).await,
            fetch(&client, format!("{base}/medication")).await,
        )
    });
    let events = map::parse(&journal).expect("JSON")["EventCount"]
        .as_u64()
        .expect("EventCount");
    assert!(events >= 5_000, "{events} events");
    let source = Source {
        practice: OdsCode::parse(UNIT).expect("valid"),
        retrieved: keel_integrations::http::now(),
    };
    let items = map_record(&journal, &medication, &source);

    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let started = Instant::now();
            black_box(map_record(
                black_box(&journal),
                black_box(&medication),
                &source,
            ));
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    let p50 = times[RUNS / 2];
    let p99 = times[(RUNS * 99 / 100).min(RUNS - 1)];
    println!(
        "tpp_map: {events} journal events ({} + {} bytes), {items} items mapped: p50 {p50:?}, p99 {p99:?} over {RUNS} runs",
        journal.len(),
        medication.len()
    );
}
