//! Keel's own time for an EMIS-style record of at least 5,000 entries: parsing the XML and
//! mapping every section into the canonical record (no HTTP). The raw extract is fetched once
//! from the simulator first. Run: `cargo bench -p keel-integrations --bench emis_map`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_integrations::emis::map::{self, ReadContext};
use keel_integrations::emis::xml;
use keel_model::OdsCode;
use keel_sim::emis::guid::Guid;
use keel_sim::emis::session::APPLICATION_ID;
use keel_sim::emis::{self, BASE_PATH, EmisSimulator};
use keel_sim::faults::FaultHandle;
use keel_sim::model::GpSystem;
use keel_sim::records::PracticeRecords;
use keel_sim::{Options, Population};

const RUNS: usize = 60;

/// The full `…/record` extract of the first EMIS-style record with 5,000 entries or more.
async fn fetch_extract() -> Result<(String, usize, Vec<u8>), Box<dyn std::error::Error>> {
    let records = Arc::new(PracticeRecords::new(Population::generate(
        Options::default(),
    )));
    let pop = records.population();
    let person = pop
        .persons()
        .find(|p| {
            pop.pcn().practices[p.primary().practice].system == GpSystem::EmisStyle
                && p.primary().clinical.entry_count() >= 5000
        })
        .ok_or("no 5,000-entry record at an EMIS-style practice")?;
    let r = person.primary();
    let practice = &pop.pcn().practices[r.practice];
    let (addr, _task) = emis::serve(
        EmisSimulator::new(records.clone()),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        FaultHandle::default(),
    )
    .await?;
    let client = reqwest::Client::new();
    let base = format!("http://{addr}{BASE_PATH}/practices/{}", practice.ods);
    let login = client
        .post(format!("{base}/sessions"))
        .header("X-Emis-Application-Id", APPLICATION_ID)
        .body(format!(
            "<Login><UserId>{}</UserId></Login>",
            practice.staff[0].id
        ))
        .send()
        .await?
        .bytes()
        .await?;
    let token = map::map_session(&login)?;
    let body = client
        .get(format!("{base}/patients/{}/record", Guid::named(&r.id)))
        .header("X-Emis-Application-Id", APPLICATION_ID)
        .header("X-Emis-Session-Token", token)
        .send()
        .await?
        .bytes()
        .await?;
    Ok((
        practice.ods.as_str().to_string(),
        r.clinical.entry_count() as usize,
        body.to_vec(),
    ))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Runtime::new()?;
    let (ods, entries, body) = runtime.block_on(fetch_extract())?;
    let practice = OdsCode::parse(&ods)?;
    let retrieved = keel_integrations::http::now();
    let ctx = ReadContext {
        practice: &practice,
        retrieved: &retrieved,
    };
    let mut last = None;
    let mut whole: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut parse_only: Vec<Duration> = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let tree = xml::parse(&body)?;
        parse_only.push(started.elapsed());
        std::hint::black_box(tree);

        let started = Instant::now();
        let record = map::map_medical_record(&body, &ctx)?;
        whole.push(started.elapsed());
        last = Some(std::hint::black_box(record));
    }
    let items: usize = last
        .iter()
        .flat_map(|record| &record.sections)
        .map(|s| serde_json::to_value(s).map_or(0, |v| v["items"].as_array().map_or(0, Vec::len)))
        .sum();
    let (p50, p99) = percentiles(&mut whole);
    let (parse_p50, _) = percentiles(&mut parse_only);
    println!(
        "emis_map: {entries}-entry record ({} bytes of XML, {items} canonical items): parse + map over {RUNS} runs p50 {p50:?}, p99 {p99:?} (of which XML parsing p50 {parse_p50:?})",
        body.len()
    );
    Ok(())
}

/// p50 and p99 of `times`.
fn percentiles(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    let at = |q: usize| times[(times.len() * q / 100).min(times.len() - 1)];
    (at(50), at(99))
}
