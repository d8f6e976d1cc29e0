//! The TPP-style journal of a 5,000-event record, served over HTTP, well under 20 ms p50.
//! Timing means nothing in a debug build: run with `cargo nextest run --release -p keel-sim
//! --test tpp_journal_speed`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_sim::faults::FaultHandle;
use keel_sim::records::PracticeRecords;
use keel_sim::tpp::{self, TppSimulator, session};
use keel_sim::{Options, Population};
use serde_json::Value;

/// Person 29335's primary record (RowIdentifier 293351) at TPP-style practice Y96764 of the
/// default PCN (40,000 patients, seed 1): 5,066 journal events.
const UNIT: &str = "Y96764";
const PATIENT: u64 = 293_351;

#[tokio::test]
#[cfg_attr(debug_assertions, ignore = "timing needs a release build")]
async fn a_5000_event_journal_is_served_in_well_under_20_ms_p50() {
    let records = Arc::new(PracticeRecords::new(Population::generate(
        Options::default(),
    )));
    let sim = TppSimulator::new(records);
    let (addr, _h) = tpp::serve(
        sim,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        FaultHandle::default(),
    )
    .await
    .expect("bind");
    let url = format!(
        "http://{addr}{}/{UNIT}/patients/{PATIENT}/journal",
        tpp::BASE_PATH
    );
    let client = reqwest::Client::new();
    let fetch = || async {
        let t = Instant::now();
        let resp = client
            .get(&url)
            .header(session::APPLICATION_HEADER, session::APPLICATION_ID)
            .header(session::SESSION_HEADER, session::SENSITIVE_SESSION)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 200);
        let bytes = resp.bytes().await.expect("body");
        (t.elapsed(), bytes)
    };
    let (_, first) = fetch().await;
    let body: Value = serde_json::from_slice(&first).expect("json");
    let events = body["EventCount"].as_u64().expect("EventCount");
    assert!(events >= 5_000, "{events} events");

    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..60 {
        times.push(fetch().await.0);
    }
    times.sort_unstable();
    let p50 = times[times.len() / 2];
    let p90 = times[times.len() * 9 / 10];
    println!(
        "journal of {events} events, {} bytes: p50 {p50:?}, p90 {p90:?}",
        first.len()
    );
    assert!(p50 < Duration::from_millis(20), "p50 {p50:?}");
}
