//! `GET /metrics`: Prometheus text exposition (format 0.0.4) of Keel's HTTP requests and of
//! every adapter call made through the practice directory
//! ([`keel_integrations::telemetry`]).
//!
//! HTTP requests are counted by route *shape* (the matched route pattern, e.g.
//! `/fhir/Patient/{id}/$record`, never the path as sent, which may hold an NHS number),
//! method and status:
//! - `keel_http_requests_total{route,method,status}` (counter)
//! - `keel_http_request_duration_seconds{route,method}` (histogram, to the response head)
//! - `keel_break_glass_total` (counter): requests granted by break-glass

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::proto::MetricFamily;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::AppState;

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The route label of a request that matched no route.
const UNMATCHED: &str = "unmatched";

const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];

/// Keel's HTTP request metrics, in their own registry (see the module docs).
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    break_glass: IntCounter,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics::new()
    }
}

impl HttpMetrics {
    pub fn new() -> HttpMetrics {
        let registry = Registry::new();
        // Constant, valid definitions with distinct names in a new registry: cannot fail.
        let requests = IntCounterVec::new(
            Opts::new(
                "keel_http_requests_total",
                "HTTP requests, by route shape, method and status.",
            ),
            &["route", "method", "status"],
        )
        .expect("a valid constant counter definition");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "keel_http_request_duration_seconds",
                "Time to the response head, by route shape and method.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method"],
        )
        .expect("a valid constant histogram definition");
        let break_glass = IntCounter::new(
            "keel_break_glass_total",
            "Requests granted by break-glass (each is flagged in the audit trail).",
        )
        .expect("a valid constant counter definition");
        registry
            .register(Box::new(requests.clone()))
            .and_then(|()| registry.register(Box::new(duration.clone())))
            .and_then(|()| registry.register(Box::new(break_glass.clone())))
            .expect("distinct metric names in a new registry");
        HttpMetrics {
            registry,
            requests,
            duration,
            break_glass,
        }
    }

    /// Counts one request granted by break-glass.
    pub fn break_glass(&self) {
        self.break_glass.inc();
    }

    fn record(&self, route: &str, method: &Method, status: StatusCode, took: Duration) {
        let method = label_of(method);
        self.requests
            .with_label_values(&[route, method, status.as_str()])
            .inc();
        self.duration
            .with_label_values(&[route, method])
            .observe(took.as_secs_f64());
    }

    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }
}

/// A method as a label: the standard ones by name, anything else as `other` (a client may
/// send any token, and labels must stay few).
fn label_of(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts and times every request.
pub async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_string();
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .http_metrics
        .record(&route, &method, response.status(), started.elapsed());
    response
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut families = state.http_metrics.gather();
    if let Some(directory) = &state.directory {
        families.extend(directory.metrics().gather());
    }
    families.sort_by(|a, b| a.name().cmp(b.name()));
    match TextEncoder::new().encode_to_string(&families) {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the metrics could not be written: {e}"),
        )
            .into_response(),
    }
}
