//! Observability over real HTTP: after a `$record`, `GET /metrics` shows the adapter calls by
//! practice, interface, operation and outcome and the HTTP requests by route shape — with no
//! NHS number anywhere; `GET /health/ready` lists every connection's circuit and turns
//! `degraded` (still 200) when one practice's circuit opens.

use std::net::SocketAddr;
use std::sync::Arc;

use keel_api::AppState;
use keel_api::auth::Authentication;
use keel_core::clock::{SequentialIds, SystemClock};
use keel_core::fhir::FhirService;
use keel_core::integration::PracticeConnection;
use keel_core::{CorrelationId, RequestContext};
use keel_integrations::directory::Directory;
use keel_integrations::gpconnect::request::Consumer;
use keel_model::OdsCode;
use keel_sim::connections::{self, SimulatorAddresses};
use keel_sim::faults::{FaultConfig, FaultHandle};
use keel_sim::model::{
    Confidentiality, GpSystem, NhsNumberStatus, PatientRecord, RegistrationType,
};
use keel_sim::records::PracticeRecords;
use keel_sim::{Options, Population, emis, gpconnect, tpp};
use keel_store::SqliteStore;
use serde_json::Value;

struct Running {
    origin: String,
    records: Arc<PracticeRecords>,
    tpp_faults: FaultHandle,
    _dir: tempfile::TempDir,
}

async fn start() -> Running {
    let records = Arc::new(PracticeRecords::new(Population::generate(Options {
        patients: 1000,
        practices: 4,
        ..Options::default()
    })));
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
    let json = connections::for_pcn(records.population().pcn(), &gp, addresses, 1_000);
    let wanted: Vec<PracticeConnection> = serde_json::from_value(json).expect("connections");
    let consumer = Consumer {
        asid: "200000000359".into(),
        endpoint: "https://keel.example/".into(),
        organisation: OdsCode::parse("U12345").expect("valid"),
        product: "keel".into(),
        version: "test".into(),
    };
    let directory = Directory::open(consumer, None, None).expect("directory");
    let ctx = RequestContext::local_development(CorrelationId::parse("t").expect("valid"));
    for c in wanted {
        directory.register(&ctx, c, None, None).expect("register");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let fhir = Arc::new(FhirService::new(
        Arc::new(SqliteStore::open_dir(dir.path()).expect("store")),
        Arc::new(SystemClock::default()),
        Arc::new(SequentialIds::new("t")),
    ));
    let state = AppState::new(fhir, None, "test".into(), Authentication::Disabled)
        .with_directory(Arc::new(directory));
    let listener = tokio::net::TcpListener::bind(any).await.expect("bind");
    let at = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, keel_api::router(Arc::new(state))).await });
    Running {
        origin: format!("http://{at}"),
        records,
        tpp_faults,
        _dir: dir,
    }
}

fn patient(records: &PracticeRecords, system: GpSystem) -> (String, String) {
    let population = records.population();
    let r: PatientRecord = population
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
        r.nhs_number.expect("an NHS number").as_str().to_string(),
        population.pcn().practices[r.practice]
            .ods
            .as_str()
            .to_string(),
    )
}

async fn record(running: &Running, (nhs, ods): &(String, String)) -> reqwest::StatusCode {
    reqwest::get(format!(
        "{}/fhir/Patient/$record?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}&practice={ods}&section=problems,allergies",
        running.origin
    ))
    .await
    .expect("get")
    .status()
}

async fn ready(running: &Running) -> (reqwest::StatusCode, Value) {
    let response = reqwest::get(format!("{}/health/ready", running.origin))
        .await
        .expect("get");
    (response.status(), response.json().await.expect("json"))
}

#[tokio::test]
async fn metrics_show_each_adapter_call_and_request_by_shape_without_patient_identifiers() {
    let running = start().await;
    let emis = patient(&running.records, GpSystem::EmisStyle);
    assert_eq!(record(&running, &emis).await, 200);

    let response = reqwest::get(format!("{}/metrics", running.origin))
        .await
        .expect("get");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        keel_api::metrics_http::CONTENT_TYPE
    );
    let text = response.text().await.expect("text");
    let ods = &emis.1;
    for line in [
        format!(
            r#"keel_integration_calls_total{{interface="emis-style",operation="find-patient",outcome="ok",practice="{ods}"}} 1"#
        ),
        format!(
            r#"keel_integration_calls_total{{interface="emis-style",operation="read-problems",outcome="ok",practice="{ods}"}} 1"#
        ),
        format!(
            r#"keel_integration_call_duration_seconds_count{{interface="emis-style",operation="read-allergies",practice="{ods}"}} 1"#
        ),
        format!(r#"keel_integration_circuit_open{{interface="emis-style",practice="{ods}"}} 0"#),
        r#"keel_http_requests_total{method="GET",route="/fhir/Patient/$record",status="200"} 1"#
            .to_string(),
    ] {
        assert!(text.contains(&line), "{line} not in\n{text}");
    }
    assert!(!text.contains(&emis.0), "the NHS number is in the metrics");
}

#[tokio::test]
async fn ready_lists_every_circuit_and_is_degraded_not_down_while_one_practice_is_open() {
    let running = start().await;
    let (status, body) = ready(&running).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["store"], "up");
    let connections = body["connections"].as_array().expect("connections");
    assert_eq!(connections.len(), 8);
    assert!(connections.iter().all(|c| c["circuit"] == "closed"));

    let tpp = patient(&running.records, GpSystem::TppStyle);
    running
        .tpp_faults
        .set(FaultConfig {
            outage: true,
            ..FaultConfig::default()
        })
        .expect("faults");
    // The default policy: five consecutive failures open the circuit.
    for _ in 0..5 {
        assert_eq!(record(&running, &tpp).await, 200, "a partial record");
    }
    let (status, body) = ready(&running).await;
    assert_eq!(status, 200, "Keel still serves the other practices");
    assert_eq!(body["status"], "degraded");
    let open: Vec<&Value> = body["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .filter(|c| c["circuit"] != "closed")
        .collect();
    assert_eq!(open.len(), 1, "{body}");
    assert_eq!(open[0]["practice"], tpp.1.as_str());
    assert_eq!(open[0]["interface"], "tpp-style");
    assert_eq!(open[0]["circuit"], "open");
}
