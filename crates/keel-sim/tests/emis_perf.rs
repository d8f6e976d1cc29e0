//! The EMIS-style record extract of a 5,000-entry record, timed over real HTTP. Run in
//! release: `cargo test --release -p keel-sim --test emis_perf -- --ignored --nocapture`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_sim::emis::guid::Guid;
use keel_sim::emis::session::APPLICATION_ID;
use keel_sim::emis::{self, BASE_PATH, EmisSimulator};
use keel_sim::faults::FaultHandle;
use keel_sim::model::GpSystem;
use keel_sim::records::PracticeRecords;
use keel_sim::{Options, Population};

#[tokio::test]
#[ignore = "a timing: run in release"]
async fn a_5000_entry_record_extract_takes_under_20_ms_p50() {
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
        .expect("a 5,000-entry record at an EMIS-style practice");
    let r = person.primary();
    let practice = &pop.pcn().practices[r.practice];
    println!(
        "patient index {} at {}: {} entries",
        person.index,
        practice.ods,
        r.clinical.entry_count()
    );

    let (addr, _h) = emis::serve(
        EmisSimulator::new(records.clone()),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        FaultHandle::default(),
    )
    .await
    .expect("bind");
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
        .await
        .expect("login")
        .text()
        .await
        .expect("session");
    let token = login
        .split("<SessionToken>")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .expect("token")
        .to_string();
    let url = format!("{base}/patients/{}/record", Guid::named(&r.id));

    let mut times: Vec<Duration> = Vec::new();
    let mut size = 0;
    for _ in 0..60 {
        let t = Instant::now();
        let body = client
            .get(&url)
            .header("X-Emis-Application-Id", APPLICATION_ID)
            .header("X-Emis-Session-Token", &token)
            .send()
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        times.push(t.elapsed());
        size = body.len();
    }
    times.sort();
    let p50 = times[times.len() / 2];
    let p95 = times[times.len() * 95 / 100];
    let t = Instant::now();
    let regenerated = records.record(records.by_record_id(&r.id).expect("indexed"));
    let generation = t.elapsed();
    println!(
        "{} bytes; p50 {p50:?}, p95 {p95:?}, of which regenerating the record {generation:?} ({} entries)",
        size,
        regenerated.clinical.entry_count()
    );
    assert!(p50 < Duration::from_millis(20), "p50 {p50:?}");
}
