//! Keel's HTTP edge: the FHIR R4 REST API at `/fhir`, the practice directory at
//! `/api/practices`, health endpoints ([`health_http`]) and Prometheus metrics at `/metrics`
//! ([`metrics_http`]). Core services run on the blocking pool; errors are mapped once, in
//! [`outcome`].

pub mod audited;
pub mod auth;
mod capability;
mod export_http;
pub mod fhir_http;
pub mod health_http;
pub mod identity_http;
pub mod integration_outcome;
pub mod job_worker;
pub mod match_http;
pub mod metrics_http;
pub mod outcome;
pub mod practices_http;
pub mod record_fhir;
pub mod record_http;
mod render;
pub mod trace_http;

use auth::Authentication;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{any, get, post};
use keel_core::CorrelationId;
use keel_core::fhir::FhirService;
use keel_core::identity::pds_trace::PdsService;
use keel_integrations::directory::Directory;
use metrics_http::HttpMetrics;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest request body accepted (a big transaction Bundle).
pub const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

pub struct AppState {
    pub fhir: Arc<FhirService>,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// The public base URL of `/fhir`, when not derived from the Host header.
    pub base_url: Option<String>,
    /// The practice directory, when practices are connected.
    pub directory: Option<Arc<Directory>>,
    /// PDS, when an endpoint is configured: identity resolution (`/api/identity/trace`).
    pub pds: Option<Arc<dyn PdsService>>,
    /// How requests are authenticated; every route but health and `/metrics` requires it.
    pub authentication: Authentication,
    http_metrics: HttpMetrics,
    request_counter: AtomicU64,
    instance: String,
}

impl AppState {
    pub fn new(
        fhir: Arc<FhirService>,
        base_url: Option<String>,
        instance: String,
        authentication: Authentication,
    ) -> Self {
        AppState {
            fhir,
            authentication,
            base_url,
            max_body_bytes: MAX_BODY_BYTES,
            directory: None,
            pds: None,
            http_metrics: HttpMetrics::new(),
            request_counter: AtomicU64::new(0),
            instance,
        }
    }

    /// The state with a practice directory.
    pub fn with_directory(mut self, directory: Arc<Directory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// The state with PDS for identity resolution.
    pub fn with_pds(mut self, pds: Arc<dyn PdsService>) -> Self {
        self.pds = Some(pds);
        self
    }

    /// The HTTP metrics `/metrics` exposes (shared: a clone counts into the same registry, so
    /// the web UI's break-glass accesses are counted with the API's).
    pub fn http_metrics(&self) -> &HttpMetrics {
        &self.http_metrics
    }

    /// A new correlation id: this instance's tag and a counter.
    fn new_correlation_id(&self) -> CorrelationId {
        let id = format!(
            "{}-{}",
            self.instance,
            self.request_counter.fetch_add(1, Ordering::Relaxed)
        );
        CorrelationId::parse(&id)
            .unwrap_or_else(|| CorrelationId::parse("keel").expect("a constant id is valid"))
    }

    /// The request's correlation id: the caller's `X-Request-Id` when it is log-safe, else a
    /// new one.
    fn correlation_id(&self, headers: &HeaderMap) -> CorrelationId {
        headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(CorrelationId::parse)
            .unwrap_or_else(|| self.new_correlation_id())
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.max_body_bytes;
    let open = Router::new()
        .route("/health/live", get(health_http::live))
        .route("/health/ready", get(health_http::ready))
        .route("/metrics", get(metrics_http::metrics));
    // Outside the FHIR REST router, which audits its own requests: one record per request.
    let audited_here = Router::new()
        .route(
            "/fhir/Patient/{id}/$record",
            get(record_http::for_stored_patient),
        )
        .route("/fhir/Patient/$record", get(record_http::by_identifier))
        .route("/api/identity/scan", post(identity_http::scan))
        .route("/api/identity/trace", post(trace_http::trace))
        .route("/api/identity/links", get(identity_http::list))
        .route("/api/identity/links/{id}", get(identity_http::history))
        .route(
            "/api/identity/links/{id}/decision",
            post(identity_http::decide),
        )
        .route("/api/practices", get(practices_http::list))
        .route(
            "/api/practices/{ods}",
            get(practices_http::one).put(practices_http::put),
        )
        .route(
            "/api/practices/{ods}/capabilities",
            get(practices_http::capabilities),
        )
        .route("/api/practices/{ods}/history", get(practices_http::history))
        .route("/api/practices/{ods}/probe", post(practices_http::probe))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audited::record_request,
        ));
    Router::new()
        .route("/fhir", any(fhir_http::handle))
        .route("/fhir/", any(fhir_http::handle))
        .route("/fhir/{*path}", any(fhir_http::handle))
        .merge(audited_here)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .merge(open)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics_http::track,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
