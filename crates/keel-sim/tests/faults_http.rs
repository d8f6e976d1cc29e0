//! Fault injection over real HTTP: the PDS simulator behind `FaultLayer`, and a counting
//! handler for drop-after-commit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use keel_sim::faults::{FaultConfig, FaultHandle, FaultLayer, Latency};
use keel_sim::pds::{self, PdsSimulator};
use serde_json::{Value, json};

const REQ_ID: &str = "60E0B220-8136-4CA5-AE46-1D97EF59D068";
const NHS: &str = "9000000009";

fn sim() -> PdsSimulator {
    PdsSimulator::new(vec![json!({
        "resourceType": "Patient",
        "id": NHS,
        "identifier": [{ "system": pds::NHS_NUMBER_SYSTEM, "value": NHS }],
        "name": [{ "use": "usual", "family": "Smith", "given": ["Jane"] }],
        "gender": "female",
        "birthDate": "1980-01-01"
    })])
}

/// Starts PDS with `config`; returns the server root.
async fn start(config: FaultConfig) -> String {
    let (addr, _h) = pds::serve_with_faults(
        sim(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        FaultHandle::new(config),
    )
    .await
    .expect("bind");
    format!("http://{addr}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// Retrieves the patient; the status, or `None` on a transport error.
async fn retrieve(c: &reqwest::Client, root: &str) -> Option<u16> {
    let resp = c
        .get(format!("{root}{}/Patient/{NHS}", pds::BASE_PATH))
        .header("X-Request-ID", REQ_ID)
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    resp.bytes().await.ok()?;
    Some(status)
}

#[tokio::test]
async fn no_faults_by_default() {
    let root = start(FaultConfig::default()).await;
    let c = client();
    for _ in 0..5 {
        assert_eq!(retrieve(&c, &root).await, Some(200));
    }
}

#[tokio::test]
async fn error_rate_one_fails_every_request_with_an_operation_outcome() {
    let root = start(FaultConfig {
        error_rate: 1.0,
        ..FaultConfig::default()
    })
    .await;
    let c = client();
    for _ in 0..10 {
        assert_eq!(retrieve(&c, &root).await, Some(503));
    }
    let resp = c
        .get(format!("{root}/Patient/{NHS}"))
        .header("X-Request-ID", REQ_ID)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 503);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(
        body["issue"][0]["details"]["coding"][0]["code"],
        "SERVICE_UNAVAILABLE"
    );
}

#[tokio::test]
async fn half_error_rate_gives_the_same_failures_for_the_same_seed() {
    let config = FaultConfig {
        seed: 7,
        error_rate: 0.5,
        ..FaultConfig::default()
    };
    let mut runs = Vec::new();
    for seed in [7, 7, 8] {
        let root = start(FaultConfig {
            seed,
            ..config.clone()
        })
        .await;
        let c = client();
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(retrieve(&c, &root).await);
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert_ne!(runs[0], runs[2], "a different seed gives different faults");
    let failures = runs[0].iter().filter(|s| **s == Some(503)).count();
    assert!((8..=32).contains(&failures), "{failures} of 40 failed");
    assert!(runs[0].iter().all(|s| matches!(s, Some(200 | 503))));
}

#[tokio::test]
async fn fixed_latency_delays_every_response() {
    let root = start(FaultConfig {
        latency: Latency::Fixed { ms: 50 },
        ..FaultConfig::default()
    })
    .await;
    let c = client();
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(retrieve(&c, &root).await, Some(200));
        assert!(
            t.elapsed() >= Duration::from_millis(50),
            "{:?}",
            t.elapsed()
        );
    }
}

#[tokio::test]
async fn outage_switch_through_the_admin_endpoint_then_reset() {
    let root = start(FaultConfig::default()).await;
    let c = client();
    assert_eq!(retrieve(&c, &root).await, Some(200));

    let resp = c
        .put(format!("{root}/_admin/faults"))
        .body(json!({ "outage": true }).to_string())
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(retrieve(&c, &root).await, Some(503));
    let got: Value = c
        .get(format!("{root}/_admin/faults"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(got["outage"], true);
    assert_eq!(got["outage_status"], 503);

    let resp = c
        .post(format!("{root}/_admin/faults/reset"))
        .send()
        .await
        .expect("reset");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(retrieve(&c, &root).await, Some(200));
    let got: Value = c
        .get(format!("{root}/_admin/faults"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(got["outage"], false);
}

#[tokio::test]
async fn outage_window_ends_on_time() {
    let root = start(FaultConfig {
        outage_windows: vec![(0, 300)],
        outage_status: 502,
        ..FaultConfig::default()
    })
    .await;
    let c = client();
    assert_eq!(retrieve(&c, &root).await, Some(502));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(retrieve(&c, &root).await, Some(200));
}

#[tokio::test]
async fn invalid_admin_config_is_rejected_and_leaves_the_config_alone() {
    let root = start(FaultConfig::default()).await;
    let c = client();
    for body in [
        json!({ "error_rate": 1.5 }).to_string(),
        json!({ "outage_windows": [[500, 100]] }).to_string(),
        json!({ "latency": { "kind": "fixed" } }).to_string(),
        "not json".to_string(),
    ] {
        let resp = c
            .put(format!("{root}/_admin/faults"))
            .body(body.clone())
            .send()
            .await
            .expect("put");
        assert_eq!(resp.status().as_u16(), 400, "{body}");
        let err: Value = resp.json().await.expect("json");
        assert!(
            err["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{err}"
        );
    }
    let got: Value = c
        .get(format!("{root}/_admin/faults"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        FaultConfig::from_json(&got).expect("valid"),
        FaultConfig::default()
    );
    assert_eq!(retrieve(&c, &root).await, Some(200));
}

/// A router with one counting write endpoint behind the fault layer.
async fn start_counter(config: FaultConfig) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    let handle = FaultHandle::new(config);
    let app = Router::new()
        .route(
            "/write",
            post(move || {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    (axum::http::StatusCode::CREATED, "committed")
                }
            }),
        )
        .layer(FaultLayer::new(handle.clone()))
        .merge(keel_sim::faults::admin_router(handle));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), count)
}

#[tokio::test]
async fn drop_after_commit_commits_but_the_client_sees_a_transport_error() {
    let (root, count) = start_counter(FaultConfig {
        drop_response_after_commit: 1.0,
        ..FaultConfig::default()
    })
    .await;
    let c = client();
    let result = c.post(format!("{root}/write")).body("x").send().await;
    let err = result.expect_err("the response must be dropped");
    assert!(!err.is_status(), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 1, "the write was committed");

    // A naive retry commits it again: the duplicate the fault exists to expose.
    let _ = c.post(format!("{root}/write")).body("x").send().await;
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn timeout_holds_then_drops_without_reaching_the_service() {
    let (root, count) = start_counter(FaultConfig {
        timeout_rate: 1.0,
        hang_ms: 200,
        ..FaultConfig::default()
    })
    .await;
    let c = client();
    let t = Instant::now();
    let result = c.post(format!("{root}/write")).body("x").send().await;
    assert!(result.is_err(), "{result:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(count.load(Ordering::SeqCst), 0);

    // A client with less patience gives up first.
    let c = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .expect("client");
    let err = c
        .post(format!("{root}/write"))
        .send()
        .await
        .expect_err("timeout");
    assert!(err.is_timeout(), "{err}");
}
