//! Resilience over real HTTP against the simulated PCN: a practice whose system hangs costs
//! its own records their time budget and no more, does not slow another practice's record, and
//! after repeated failures its circuit opens so its records fail at once — while every other
//! connection stays closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_core::integration::{FederatedRecord, Interface, PracticeConnection, SectionContent};
use keel_core::{CorrelationId, RequestContext};
use keel_integrations::circuit::{CircuitPolicy, CircuitState};
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
use keel_sim::{Options, emis, gpconnect, tpp};

/// Every connection's timeout: the longest a read may take.
const BUDGET: Duration = Duration::from_millis(400);

struct Pcn {
    records: Arc<PracticeRecords>,
    connections: Vec<PracticeConnection>,
    tpp_faults: FaultHandle,
}

async fn start() -> Pcn {
    let records = Arc::new(PracticeRecords::new(keel_sim::Population::generate(
        Options {
            patients: 2000,
            practices: 4,
            ..Options::default()
        },
    )));
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let gp = gpconnect::GpConnectSimulator::new(records.clone());
    let (gp_connect, _) = gpconnect::serve(gp.clone(), any, FaultHandle::default())
        .await
        .expect("bind");
    let emis_sim = emis::EmisSimulator::new(records.clone());
    let (emis, _) = emis::serve(emis_sim, any, FaultHandle::default())
        .await
        .expect("bind");
    let tpp_faults = FaultHandle::default();
    let tpp_sim = tpp::TppSimulator::new(records.clone());
    let (tpp, _) = tpp::serve(tpp_sim, any, tpp_faults.clone())
        .await
        .expect("bind");
    let addresses = SimulatorAddresses {
        gp_connect,
        emis,
        tpp,
    };
    let json = connections::for_pcn(
        records.population().pcn(),
        &gp,
        addresses,
        u64::try_from(BUDGET.as_millis()).expect("small"),
    );
    Pcn {
        records,
        connections: serde_json::from_value(json).expect("connections"),
        tpp_faults,
    }
}

fn ctx() -> RequestContext {
    RequestContext::local_development(CorrelationId::parse("test-resilience").expect("valid"))
}

fn directory(pcn: &Pcn, policy: CircuitPolicy) -> Directory {
    let consumer = Consumer {
        asid: "200000000359".into(),
        endpoint: "https://keel.example/".into(),
        organisation: OdsCode::parse("U12345").expect("valid"),
        product: "keel".into(),
        version: "test".into(),
    };
    let directory = Directory::open_with(consumer, None, None, policy).expect("open");
    for c in &pcn.connections {
        directory
            .register(&ctx(), c.clone(), None, None)
            .expect("register");
    }
    directory
}

/// A patient with a record at a practice on `system`, and that practice.
fn patient(pcn: &Pcn, system: GpSystem) -> (NhsNumber, OdsCode) {
    let population = pcn.records.population();
    let record: PatientRecord = population
        .persons()
        .map(|p| p.primary().clone())
        .find(|r| {
            population.pcn().practices[r.practice].system == system
                && r.registration.is_active()
                && r.death_date.is_none()
                && r.registration.kind == RegistrationType::Regular
                && r.nhs_status == NhsNumberStatus::Verified
                && r.confidentiality == Confidentiality::Unrestricted
        })
        .expect("such a patient");
    (
        record.nhs_number.expect("an NHS number"),
        population.pcn().practices[record.practice].ods.clone(),
    )
}

/// The record of `who`, timed.
async fn timed_record(
    directory: &Directory,
    (nhs, ods): &(NhsNumber, OdsCode),
) -> (FederatedRecord, Duration) {
    let started = Instant::now();
    let record = directory
        .record(&ctx(), *nhs, Some(ods.clone()), &RecordSection::ALL)
        .await
        .expect("record");
    (record, started.elapsed())
}

fn hang_everything(pcn: &Pcn) {
    pcn.tpp_faults
        .set(FaultConfig {
            timeout_rate: 1.0,
            hang_ms: 30_000,
            ..FaultConfig::default()
        })
        .expect("faults");
}

fn unavailable_reasons(record: &FederatedRecord) -> Vec<String> {
    record
        .sections
        .iter()
        .map(|s| {
            assert!(s.is_unavailable(), "{s:?}");
            serde_json::to_value(s).expect("json")["state"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practice_in_a_hang_does_not_slow_a_record_from_another_practice() {
    let pcn = start().await;
    let directory = directory(&pcn, CircuitPolicy::default());
    let emis = patient(&pcn, GpSystem::EmisStyle);
    let tpp = patient(&pcn, GpSystem::TppStyle);
    timed_record(&directory, &emis).await;
    let (_, before) = timed_record(&directory, &emis).await;

    hang_everything(&pcn);
    let ((hung, hung_took), (other, other_took)) = tokio::join!(
        timed_record(&directory, &tpp),
        timed_record(&directory, &emis)
    );
    eprintln!(
        "EMIS-style record alone {before:?}; beside a hung TPP-style practice {other_took:?}; \
         the hung practice's record {hung_took:?} (budget {BUDGET:?})"
    );
    // The hung practice costs its record its budget, and no more.
    assert!(hung.is_partial() && hung.patient.is_none());
    assert!(
        unavailable_reasons(&hung)
            .iter()
            .all(|r| r.contains(&format!("no answer within {} ms", BUDGET.as_millis())))
    );
    assert!(
        hung_took >= BUDGET && hung_took < BUDGET * 3,
        "{hung_took:?}"
    );
    // The other practice's record is whole, and not held up by the hang.
    assert!(!other.is_partial());
    assert!(
        other
            .sections
            .iter()
            .all(|s| !SectionContent::is_unavailable(s))
    );
    assert!(
        other_took < BUDGET && other_took < before * 3 + Duration::from_millis(150),
        "alone {before:?}, beside the hang {other_took:?}"
    );
}

#[tokio::test]
async fn repeated_hangs_open_that_practices_circuit_and_its_records_then_fail_at_once() {
    let pcn = start().await;
    let policy = CircuitPolicy {
        failure_threshold: 2,
        cooldown: Duration::from_secs(60),
    };
    let directory = directory(&pcn, policy);
    let tpp = patient(&pcn, GpSystem::TppStyle);
    hang_everything(&pcn);
    for _ in 0..2 {
        let (_, took) = timed_record(&directory, &tpp).await;
        assert!(took >= BUDGET, "{took:?}");
    }
    let (record, took) = timed_record(&directory, &tpp).await;
    assert!(
        took < BUDGET / 4,
        "an open circuit answers at once: {took:?}"
    );
    assert!(
        unavailable_reasons(&record)
            .iter()
            .all(|r| r.contains("circuit open")),
        "{record:?}"
    );
    let health = directory.connection_health();
    let open: Vec<(OdsCode, Interface)> = health
        .iter()
        .filter(|h| h.circuit != CircuitState::Closed)
        .map(|h| (h.practice.clone(), h.interface))
        .collect();
    assert_eq!(open, [(tpp.1.clone(), Interface::TppStyle)]);
    assert_eq!(health.len(), 8, "two interfaces at each of four practices");

    let text = prometheus::TextEncoder::new()
        .encode_to_string(&directory.metrics().gather())
        .expect("encode");
    let ods = tpp.1.as_str();
    for line in [
        format!(
            r#"keel_integration_calls_total{{interface="tpp-style",operation="find-patient",outcome="unavailable",practice="{ods}"}} 2"#
        ),
        format!(
            r#"keel_integration_calls_total{{interface="tpp-style",operation="find-patient",outcome="circuit-open",practice="{ods}"}} 1"#
        ),
        format!(r#"keel_integration_circuit_open{{interface="tpp-style",practice="{ods}"}} 1"#),
    ] {
        assert!(text.contains(&line), "{line} not in\n{text}");
    }
}
