//! The PDS adapter against the PDS simulator over real HTTP: retrieve, superseded numbers,
//! restriction, search, and failures classified as "unavailable" within the timeout.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use keel_core::identity::pds_trace::PdsTraceQuery;
use keel_core::integration::IntegrationError;
use keel_core::{CorrelationId, RequestContext};
use keel_integrations::http::Endpoint;
use keel_integrations::pds::{PdsClient, Restriction, Retrieval, SearchOutcome};
use keel_model::NhsNumber;
use keel_sim::faults::{FaultConfig, FaultHandle};
use keel_sim::pds::{self, PdsSimulator};
use keel_sim::{Options, Population};
use serde_json::Value;

fn ctx() -> RequestContext {
    RequestContext::local_development(CorrelationId::parse("test-pds-adapter").expect("valid"))
}

fn patients() -> Vec<Value> {
    pds::from_population(&Population::generate(Options {
        patients: 2000,
        practices: 2,
        demographics_only: true,
        ..Options::default()
    }))
}

async fn start(sim: PdsSimulator, faults: FaultHandle) -> (PdsClient, FaultHandle) {
    let (addr, _task) =
        pds::serve_with_faults(sim, SocketAddr::from(([127, 0, 0, 1], 0)), faults.clone())
            .await
            .expect("bind");
    let endpoint = Endpoint::new(
        format!("http://{addr}{}", pds::BASE_PATH),
        Duration::from_millis(800),
    );
    (PdsClient::new(endpoint).expect("client"), faults)
}

fn nhs(patient: &Value) -> NhsNumber {
    NhsNumber::parse(patient["id"].as_str().expect("id")).expect("valid")
}

fn with_conf(all: &[Value], code: &str) -> Value {
    all.iter()
        .find(|p| pds::confidentiality_of(p) == code && p.get("deceasedDateTime").is_none())
        .expect("such a patient")
        .clone()
}

#[tokio::test]
async fn retrieve_maps_demographics_and_follows_superseded_numbers() {
    let all = patients();
    let u = with_conf(&all, "U");
    let merged_away = with_conf(&all[1..], "U");
    let sim = PdsSimulator::new(all.clone());
    let (client, _) = start(sim.clone(), FaultHandle::default()).await;

    let Retrieval::Found(record) = client.retrieve(&ctx(), nhs(&u)).await.expect("answer") else {
        panic!("expected the record");
    };
    assert_eq!(record.demographics.nhs_number, Some(nhs(&u)));
    assert_eq!(
        record.demographics.family.as_deref(),
        u.pointer("/name/0/family").and_then(Value::as_str)
    );
    assert_eq!(
        record.demographics.birth_date.as_ref().map(|d| d.as_str()),
        u["birthDate"].as_str()
    );
    assert_eq!(record.restriction, Restriction::Unrestricted);
    assert!(record.verified);
    assert!(record.provenance.retrieved.is_some());

    sim.supersede(
        merged_away["id"].as_str().expect("id"),
        u["id"].as_str().expect("id"),
    );
    let Retrieval::Superseded { record } = client
        .retrieve(&ctx(), nhs(&merged_away))
        .await
        .expect("answer")
    else {
        panic!("expected the surviving record");
    };
    assert_eq!(record.demographics.nhs_number, Some(nhs(&u)));

    let unknown = NhsNumber::parse("9990000018").expect("valid");
    assert_eq!(
        client.retrieve(&ctx(), unknown).await.expect("answer"),
        Retrieval::NotFound
    );
}

#[tokio::test]
async fn a_restricted_patient_comes_without_location() {
    let all = patients();
    let r = with_conf(&all, "R");
    let (client, _) = start(PdsSimulator::new(all), FaultHandle::default()).await;
    let Retrieval::Found(record) = client.retrieve(&ctx(), nhs(&r)).await.expect("answer") else {
        panic!("expected the record");
    };
    assert_eq!(record.restriction, Restriction::Restricted);
    assert_eq!(record.demographics.postcode, None);
    assert_eq!(record.demographics.registered_practice, None);
}

#[tokio::test]
async fn search_finds_the_patient_with_a_score_and_refusals_carry_the_reason() {
    let all = patients();
    let u = with_conf(&all, "U");
    let (client, _) = start(PdsSimulator::new(all), FaultHandle::default()).await;
    let query = PdsTraceQuery {
        family: u
            .pointer("/name/0/family")
            .and_then(Value::as_str)
            .expect("family")
            .into(),
        given: Some(
            u.pointer("/name/0/given/0")
                .and_then(Value::as_str)
                .expect("given")
                .into(),
        ),
        birth_date: u["birthDate"].as_str().expect("dob").into(),
        max_results: 10,
        ..PdsTraceQuery::default()
    };
    let SearchOutcome::Matches(matches) = client.search(&ctx(), &query).await.expect("answer")
    else {
        panic!("expected matches");
    };
    let best = matches.first().expect("a match");
    assert_eq!(best.record.demographics.nhs_number, Some(nhs(&u)));
    assert!((best.score - 1.0).abs() < 1e-9);

    let bad = PdsTraceQuery {
        family: "Smith".into(),
        birth_date: "not-a-date".into(),
        max_results: 5,
        ..PdsTraceQuery::default()
    };
    match client.search(&ctx(), &bad).await {
        Err(IntegrationError::Refused { reason, .. }) => {
            assert!(reason.contains("INVALID_SEARCH_DATA"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn an_outage_or_a_hang_is_unavailable_within_the_timeout() {
    let all = patients();
    let u = with_conf(&all, "U");
    let (client, faults) = start(PdsSimulator::new(all), FaultHandle::default()).await;

    faults
        .set(FaultConfig {
            outage: true,
            ..FaultConfig::default()
        })
        .expect("valid");
    assert!(matches!(
        client.retrieve(&ctx(), nhs(&u)).await,
        Err(IntegrationError::Unavailable { .. })
    ));

    faults
        .set(FaultConfig {
            timeout_rate: 1.0,
            hang_ms: 5_000,
            ..FaultConfig::default()
        })
        .expect("valid");
    let started = Instant::now();
    let answer = client.retrieve(&ctx(), nhs(&u)).await;
    assert!(
        matches!(answer, Err(IntegrationError::Unavailable { ref reason, .. }) if reason.contains("800 ms")),
        "{answer:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2_000),
        "{:?}",
        started.elapsed()
    );
}
