//! Benchmark: 200 concurrent record requests across 5 practices with one of them down (issue:
//! the healthy practices' p99 unaffected beyond 10%, the down one answers within its timeout).
//!
//! A PCN of 5 practices and 10,000 patients (seed 1). Each practice has its own simulators —
//! its supplier's (EMIS-style or TPP-style) and a GP Connect one, each on its own port with
//! its own fault handle, all fed from one `PracticeRecords` — and a connection with a
//! 2,000 ms timeout in one shared `Directory`. 40 servable patients per practice (active,
//! regular, alive, verified NHS number, unrestricted).
//!
//! A round is 200 tokio tasks on one multi-thread runtime, started together, each calling
//! `Directory::record` for every section for one patient (40 per practice); each task times
//! its own call. Round A: all practices up. Round B: practice 5's supplier simulator hangs
//! every request (`timeout_rate: 1.0`), so its calls must end by the 2,000 ms timeout with
//! every section unavailable. One unmeasured warm-up round, then A and B alternate three
//! times; the report gives, per practice, the median over the three rounds of each round's
//! p50 and p99 (with 40 calls, p99 is the slowest call).
//!
//! `cargo bench -p keel-api --bench record_concurrency`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_core::integration::PracticeConnection;
use keel_core::{CorrelationId, RequestContext};
use keel_integrations::directory::Directory;
use keel_integrations::gpconnect::request::Consumer;
use keel_model::record::RecordSection;
use keel_model::{NhsNumber, OdsCode};
use keel_sim::connections::{self, SimulatorAddresses};
use keel_sim::faults::{FaultConfig, FaultHandle};
use keel_sim::model::{
    Confidentiality, GpSystem, NhsNumberStatus, PatientRecord, RegistrationType,
};
use keel_sim::records::PracticeRecords;
use keel_sim::{Options, Population, emis, gpconnect, tpp};

const PRACTICES: usize = 5;
const PATIENTS_PER_PRACTICE: usize = 40;
const TIMEOUT_MS: u64 = 2_000;
const REPEATS: usize = 3;
/// The practice taken down in round B (practice 5).
const DOWN: usize = PRACTICES - 1;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

fn ctx() -> RequestContext {
    RequestContext::local_development(
        CorrelationId::parse("bench-record-concurrency").expect("valid"),
    )
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
}

/// One practice: its simulators' fault handle for the supplier API, its ODS code and patients.
struct PracticeUnderTest {
    ods: OdsCode,
    system: GpSystem,
    supplier_faults: FaultHandle,
    patients: Vec<NhsNumber>,
    entries: u64,
}

/// Starts practice `index`'s own simulators; returns it with its connection.
async fn start_practice(
    records: &Arc<PracticeRecords>,
    index: usize,
) -> (PracticeUnderTest, PracticeConnection) {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let pcn = records.population().pcn();
    let system = pcn.practices[index].system;
    let gp = gpconnect::GpConnectSimulator::new(records.clone());
    let (gp_at, _) = gpconnect::serve(gp.clone(), any, FaultHandle::default())
        .await
        .expect("bind");
    let supplier_faults = FaultHandle::default();
    let (supplier_at, _) = match system {
        GpSystem::EmisStyle => emis::serve(
            emis::EmisSimulator::new(records.clone()),
            any,
            supplier_faults.clone(),
        )
        .await
        .expect("bind"),
        GpSystem::TppStyle => tpp::serve(
            tpp::TppSimulator::new(records.clone()),
            any,
            supplier_faults.clone(),
        )
        .await
        .expect("bind"),
    };
    let json = connections::for_pcn(
        pcn,
        &gp,
        SimulatorAddresses {
            gp_connect: gp_at,
            emis: supplier_at,
            tpp: supplier_at,
        },
        TIMEOUT_MS,
    );
    let connection: PracticeConnection =
        serde_json::from_value(json[index].clone()).expect("the practice's connection");
    let chosen: Vec<PatientRecord> = records
        .population()
        .persons()
        .map(|p| p.primary().clone())
        .filter(|r| r.practice == index && servable(r))
        .take(PATIENTS_PER_PRACTICE)
        .collect();
    assert_eq!(chosen.len(), PATIENTS_PER_PRACTICE, "servable patients");
    let practice = PracticeUnderTest {
        ods: pcn.practices[index].ods.clone(),
        system,
        supplier_faults,
        patients: chosen
            .iter()
            .map(|r| r.nhs_number.expect("an NHS number"))
            .collect(),
        entries: chosen.iter().map(|r| r.clinical.entry_count()).sum(),
    };
    (practice, connection)
}

/// One call's outcome.
struct Call {
    practice: usize,
    latency: Duration,
    partial: bool,
}

/// 200 concurrent record calls, 40 per practice, interleaved.
async fn round(directory: &Arc<Directory>, practices: &[PracticeUnderTest]) -> Vec<Call> {
    let mut tasks = Vec::new();
    for patient in 0..PATIENTS_PER_PRACTICE {
        for (index, practice) in practices.iter().enumerate() {
            let directory = directory.clone();
            let nhs = practice.patients[patient];
            let ods = practice.ods.clone();
            tasks.push(tokio::spawn(async move {
                let started = Instant::now();
                let record = directory
                    .record(&ctx(), nhs, Some(ods), &RecordSection::ALL)
                    .await
                    .expect("a record, partial or whole");
                Call {
                    practice: index,
                    latency: started.elapsed(),
                    partial: record.is_partial(),
                }
            }));
        }
    }
    let mut calls = Vec::with_capacity(tasks.len());
    for task in tasks {
        calls.push(task.await.expect("the task ran"));
    }
    calls
}

/// Per practice: (p50, p99, max, partial calls) of one round.
fn summarise(calls: &[Call]) -> Vec<(Duration, Duration, Duration, usize)> {
    (0..PRACTICES)
        .map(|index| {
            let mut times: Vec<Duration> = calls
                .iter()
                .filter(|c| c.practice == index)
                .map(|c| c.latency)
                .collect();
            times.sort_unstable();
            let partial = calls
                .iter()
                .filter(|c| c.practice == index && c.partial)
                .count();
            (
                times[times.len() / 2],
                times[(times.len() * 99 / 100).min(times.len() - 1)],
                times[times.len() - 1],
                partial,
            )
        })
        .collect()
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run() {
    let records = Arc::new(PracticeRecords::new(Population::generate(Options {
        patients: 10_000,
        practices: PRACTICES,
        ..Options::default()
    })));
    let directory = Arc::new(Directory::open(consumer(), None, None).expect("open"));
    let mut practices = Vec::new();
    for index in 0..PRACTICES {
        let (practice, connection) = start_practice(&records, index).await;
        directory
            .register(&ctx(), connection, None, Some("bench".into()))
            .expect("register");
        practices.push(practice);
    }
    let hang = FaultConfig {
        timeout_rate: 1.0,
        ..FaultConfig::default()
    };

    round(&directory, &practices).await;
    let mut up = Vec::new();
    let mut down = Vec::new();
    for _ in 0..REPEATS {
        up.push(summarise(&round(&directory, &practices).await));
        practices[DOWN]
            .supplier_faults
            .set(hang.clone())
            .expect("valid");
        down.push(summarise(&round(&directory, &practices).await));
        practices[DOWN].supplier_faults.reset();
        // The outage opened the practice's circuit; a new version of its connection starts
        // with closed circuits, so the next round A has every practice up again.
        let current = directory
            .history(&practices[DOWN].ods)
            .pop()
            .expect("registered");
        directory
            .register(
                &ctx(),
                current.connection,
                Some(current.version),
                Some("back up after the outage".into()),
            )
            .expect("re-register");
    }

    println!(
        "{} concurrent Directory::record calls (all {} sections), {PATIENTS_PER_PRACTICE} per practice, {PRACTICES} practices each with its own simulators, timeout {TIMEOUT_MS} ms;",
        PRACTICES * PATIENTS_PER_PRACTICE,
        RecordSection::ALL.len()
    );
    println!(
        "round A: all up; round B: practice {}'s supplier simulator hangs every request. Median over {REPEATS} rounds of each (p99 of 40 calls = the slowest).",
        DOWN + 1
    );
    for (index, practice) in practices.iter().enumerate() {
        let p50 = |rounds: &[Vec<(Duration, Duration, Duration, usize)>]| {
            median(rounds.iter().map(|r| r[index].0).collect())
        };
        let p99 = |rounds: &[Vec<(Duration, Duration, Duration, usize)>]| {
            median(rounds.iter().map(|r| r[index].1).collect())
        };
        let partial = |rounds: &[Vec<(Duration, Duration, Duration, usize)>]| {
            rounds.iter().map(|r| r[index].3).sum::<usize>()
        };
        let label = format!(
            "practice {} {} ({:?}, {} entries in its 40 records)",
            index + 1,
            practice.ods,
            practice.system,
            practice.entries
        );
        println!(
            "{label:<60} A: p50 {:>7.1} ms p99 {:>7.1} ms | B: p50 {:>7.1} ms p99 {:>7.1} ms | p99 B/A {:.3} | partial records A {} B {}",
            ms(p50(&up)),
            ms(p99(&up)),
            ms(p50(&down)),
            ms(p99(&down)),
            ms(p99(&down)) / ms(p99(&up)),
            partial(&up),
            partial(&down)
        );
    }
    let healthy_worst = (0..PRACTICES)
        .filter(|&i| i != DOWN)
        .map(|i| {
            ms(median(down.iter().map(|r| r[i].1).collect()))
                / ms(median(up.iter().map(|r| r[i].1).collect()))
        })
        .fold(0.0_f64, f64::max);
    let down_max = down.iter().map(|r| r[DOWN].2).max().unwrap_or_default();
    println!(
        "healthy practices: worst p99 ratio B/A {healthy_worst:.3} (target <= 1.10); down practice: max latency {:.1} ms against its {TIMEOUT_MS} ms timeout ({:.3}x)",
        ms(down_max),
        ms(down_max) / TIMEOUT_MS as f64
    );
}
