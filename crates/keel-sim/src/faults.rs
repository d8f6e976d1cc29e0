//! Fault injection for the simulators: latency, errors, timeouts, outage windows and "commit
//! the write then drop the response", deterministic by seed and changeable at runtime.
//!
//! # Use
//!
//! - [`FaultConfig`] describes the faults (JSON: [`FaultConfig::to_json`] /
//!   [`FaultConfig::from_json`]); [`FaultConfig::default`] injects nothing.
//! - [`FaultHandle`] holds the live config behind an `Arc<RwLock<..>>`, the request sequence
//!   counter and the server's start instant (outage windows are offsets from it).
//! - [`FaultLayer`] is a tower layer applying the config to every request of the service it
//!   wraps; [`admin_router`] serves `GET`/`PUT /_admin/faults` and
//!   `POST /_admin/faults/reset`. Mount the admin router *outside* the layer, so an outage
//!   never blocks the endpoint that ends it.
//!
//! # Determinism
//!
//! Request `n` (counted from 0 since the handle was made or the config last replaced or reset)
//! draws its decisions from [`Rng::derive`]`(&[seed, PURPOSE, n])`, always in the same order
//! (latency, timeout, error, drop-after-commit), so the same seed and the same request order
//! give the same faults whatever the config's rates. Outage windows depend on elapsed time,
//! not on the seed.
//!
//! # Precedence
//!
//! Latency is applied first (to every request, including those that then fail). Then: an
//! outage answers `outage_status`; a timeout holds the request for `hang_ms` and drops the
//! connection without a response (the inner service never sees it); an error answers
//! `error_status` (inner service not called); a drop-after-commit calls the inner service,
//! waits for its response, discards it and drops the connection.
//!
//! # Dropping the connection
//!
//! A dropped response is a response whose body fails on its first poll: hyper then aborts the
//! connection before the head is flushed, so an HTTP client sees a transport error (connection
//! closed before a message completed) rather than a status.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::rng::Rng;

/// Stream purpose word for fault decisions.
const PURPOSE: u64 = 0xFA17_5EED;
/// Latencies and hangs are capped at ten minutes.
const MAX_MS: u64 = 600_000;

/// The latency added to each request, in milliseconds.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Latency {
    /// No added latency.
    #[default]
    None,
    /// Exactly `ms`.
    Fixed { ms: u64 },
    /// Uniform in `[min_ms, max_ms]`.
    Uniform { min_ms: u64, max_ms: u64 },
    /// Normal (approximate, bounded at ±3.46 sd; see [`Rng::normal`]), clamped at 0.
    Normal { mean_ms: f64, sd_ms: f64 },
    /// Log-normal: `median_ms * exp(sigma * N(0, 1))`.
    LogNormal { median_ms: f64, sigma: f64 },
}

impl Latency {
    /// Draws one latency in whole milliseconds (capped at ten minutes).
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        let ms = match *self {
            Latency::None => 0.0,
            Latency::Fixed { ms } => ms as f64,
            Latency::Uniform { min_ms, max_ms } => {
                return rng
                    .range(min_ms as i64, max_ms as i64)
                    .clamp(0, MAX_MS as i64) as u64;
            }
            Latency::Normal { mean_ms, sd_ms } => rng.gauss(mean_ms, sd_ms),
            Latency::LogNormal { median_ms, sigma } => {
                median_ms * crate::rng::exp(sigma * rng.normal())
            }
        };
        if ms.is_nan() || ms <= 0.0 {
            0
        } else {
            (ms.round() as u64).min(MAX_MS)
        }
    }

    fn to_json(&self) -> Value {
        match *self {
            Latency::None => json!({ "kind": "none" }),
            Latency::Fixed { ms } => json!({ "kind": "fixed", "ms": ms }),
            Latency::Uniform { min_ms, max_ms } => {
                json!({ "kind": "uniform", "min_ms": min_ms, "max_ms": max_ms })
            }
            Latency::Normal { mean_ms, sd_ms } => {
                json!({ "kind": "normal", "mean_ms": mean_ms, "sd_ms": sd_ms })
            }
            Latency::LogNormal { median_ms, sigma } => {
                json!({ "kind": "lognormal", "median_ms": median_ms, "sigma": sigma })
            }
        }
    }

    fn from_json(v: &Value) -> Result<Self, String> {
        if v.is_null() {
            return Ok(Latency::None);
        }
        let obj = v
            .as_object()
            .ok_or("latency: expected an object with \"kind\"")?;
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .ok_or("latency.kind: expected one of none, fixed, uniform, normal, lognormal")?;
        let allowed: &[&str] = match kind {
            "none" => &["kind"],
            "fixed" => &["kind", "ms"],
            "uniform" => &["kind", "min_ms", "max_ms"],
            "normal" => &["kind", "mean_ms", "sd_ms"],
            "lognormal" => &["kind", "median_ms", "sigma"],
            other => {
                return Err(format!(
                    "latency.kind: unknown kind {other:?} (expected none, fixed, uniform, normal, lognormal)"
                ));
            }
        };
        check_keys(obj, allowed, "latency.")?;
        let u = |k: &str| req_u64(obj, k, "latency.");
        let f = |k: &str| req_f64(obj, k, "latency.");
        let lat = match kind {
            "none" => Latency::None,
            "fixed" => Latency::Fixed { ms: u("ms")? },
            "uniform" => Latency::Uniform {
                min_ms: u("min_ms")?,
                max_ms: u("max_ms")?,
            },
            "normal" => Latency::Normal {
                mean_ms: f("mean_ms")?,
                sd_ms: f("sd_ms")?,
            },
            _ => Latency::LogNormal {
                median_ms: f("median_ms")?,
                sigma: f("sigma")?,
            },
        };
        Ok(lat)
    }

    fn validate(&self) -> Result<(), String> {
        match *self {
            Latency::None => Ok(()),
            Latency::Fixed { ms } if ms > MAX_MS => Err(format!("latency.ms: at most {MAX_MS}")),
            Latency::Uniform { min_ms, max_ms } if min_ms > max_ms || max_ms > MAX_MS => Err(
                format!("latency: need min_ms <= max_ms <= {MAX_MS}, got {min_ms}..{max_ms}"),
            ),
            Latency::Normal { mean_ms, sd_ms }
                if !(mean_ms.is_finite()
                    && sd_ms.is_finite()
                    && mean_ms >= 0.0
                    && sd_ms >= 0.0) =>
            {
                Err("latency: mean_ms and sd_ms must be finite and non-negative".into())
            }
            Latency::LogNormal { median_ms, sigma }
                if !(median_ms.is_finite()
                    && sigma.is_finite()
                    && median_ms > 0.0
                    && sigma >= 0.0) =>
            {
                Err(
                    "latency: median_ms must be positive and sigma non-negative, both finite"
                        .into(),
                )
            }
            _ => Ok(()),
        }
    }
}

/// What faults to inject. JSON field names are the Rust field names.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// Seed of the decision streams.
    pub seed: u64,
    /// Latency added to every request.
    pub latency: Latency,
    /// Probability (0..=1) of answering `error_status` instead of calling the service.
    pub error_rate: f64,
    /// Status of injected errors (default 503).
    pub error_status: u16,
    /// Body of injected errors and outages; `None` gives a Spine-style OperationOutcome.
    pub error_body: Option<Value>,
    /// Probability (0..=1) of holding the request `hang_ms` then dropping the connection.
    pub timeout_rate: f64,
    /// How long a timed-out request is held before its connection is dropped (default 30 s).
    pub hang_ms: u64,
    /// A manual outage switch: while true every request gets `outage_status`.
    pub outage: bool,
    /// Outage windows as `[start, end)` offsets in ms since the server started.
    pub outage_windows: Vec<(u64, u64)>,
    /// Status during an outage (default 503).
    pub outage_status: u16,
    /// Probability (0..=1) that the service handles the request (committing any write) and
    /// the connection is then dropped without the response.
    pub drop_response_after_commit: f64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            seed: 0,
            latency: Latency::None,
            error_rate: 0.0,
            error_status: 503,
            error_body: None,
            timeout_rate: 0.0,
            hang_ms: 30_000,
            outage: false,
            outage_windows: Vec::new(),
            outage_status: 503,
            drop_response_after_commit: 0.0,
        }
    }
}

const FIELDS: &[&str] = &[
    "seed",
    "latency",
    "error_rate",
    "error_status",
    "error_body",
    "timeout_rate",
    "hang_ms",
    "outage",
    "outage_windows",
    "outage_status",
    "drop_response_after_commit",
];

impl FaultConfig {
    /// The config as JSON (every field present).
    pub fn to_json(&self) -> Value {
        json!({
            "seed": self.seed,
            "latency": self.latency.to_json(),
            "error_rate": self.error_rate,
            "error_status": self.error_status,
            "error_body": self.error_body,
            "timeout_rate": self.timeout_rate,
            "hang_ms": self.hang_ms,
            "outage": self.outage,
            "outage_windows": self.outage_windows.iter().map(|&(s, e)| json!([s, e])).collect::<Vec<_>>(),
            "outage_status": self.outage_status,
            "drop_response_after_commit": self.drop_response_after_commit,
        })
    }

    /// Parses and validates a config; absent fields take their defaults, unknown fields are
    /// errors.
    ///
    /// # Errors
    /// A message naming the offending field.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let obj = v.as_object().ok_or("expected a JSON object")?;
        check_keys(obj, FIELDS, "")?;
        let mut c = FaultConfig::default();
        if let Some(x) = obj.get("seed") {
            c.seed = x.as_u64().ok_or("seed: expected a non-negative integer")?;
        }
        if let Some(x) = obj.get("latency") {
            c.latency = Latency::from_json(x)?;
        }
        for (key, slot) in [
            ("error_rate", &mut c.error_rate),
            ("timeout_rate", &mut c.timeout_rate),
            (
                "drop_response_after_commit",
                &mut c.drop_response_after_commit,
            ),
        ] {
            if obj.contains_key(key) {
                *slot = req_f64(obj, key, "")?;
            }
        }
        for (key, slot) in [
            ("error_status", &mut c.error_status),
            ("outage_status", &mut c.outage_status),
        ] {
            if obj.contains_key(key) {
                let n = req_u64(obj, key, "")?;
                *slot = u16::try_from(n).map_err(|_| format!("{key}: not an HTTP status"))?;
            }
        }
        if let Some(x) = obj.get("error_body") {
            c.error_body = (!x.is_null()).then(|| x.clone());
        }
        if obj.contains_key("hang_ms") {
            c.hang_ms = req_u64(obj, "hang_ms", "")?;
        }
        if let Some(x) = obj.get("outage") {
            c.outage = x.as_bool().ok_or("outage: expected true or false")?;
        }
        if let Some(x) = obj.get("outage_windows") {
            let bad = || "outage_windows: expected a list of [start_ms, end_ms] pairs".to_string();
            for w in x.as_array().ok_or_else(bad)? {
                let pair = w.as_array().filter(|p| p.len() == 2).ok_or_else(bad)?;
                let s = pair[0].as_u64().ok_or_else(bad)?;
                let e = pair[1].as_u64().ok_or_else(bad)?;
                c.outage_windows.push((s, e));
            }
        }
        c.validate()?;
        Ok(c)
    }

    /// Parses a config from JSON text (for example a command-line flag's value).
    ///
    /// # Errors
    /// Malformed JSON or an invalid config.
    pub fn from_json_str(s: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(s).map_err(|e| format!("invalid JSON: {e}"))?;
        Self::from_json(&v)
    }

    /// Checks probabilities, statuses, windows and latency parameters.
    ///
    /// # Errors
    /// A message naming the offending field.
    pub fn validate(&self) -> Result<(), String> {
        for (key, p) in [
            ("error_rate", self.error_rate),
            ("timeout_rate", self.timeout_rate),
            (
                "drop_response_after_commit",
                self.drop_response_after_commit,
            ),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{key}: a probability must be in 0..=1, got {p}"));
            }
        }
        for (key, s) in [
            ("error_status", self.error_status),
            ("outage_status", self.outage_status),
        ] {
            if !(100..=599).contains(&s) {
                return Err(format!("{key}: must be an HTTP status 100..=599, got {s}"));
            }
        }
        if self.hang_ms > MAX_MS {
            return Err(format!("hang_ms: at most {MAX_MS}"));
        }
        for &(s, e) in &self.outage_windows {
            if s >= e {
                return Err(format!(
                    "outage_windows: [{s}, {e}) is empty or reversed (need start < end)"
                ));
            }
        }
        self.latency.validate()
    }

    /// The decisions for request number `seq`, `elapsed` after the server started.
    pub fn decide(&self, seq: u64, elapsed: Duration) -> Decision {
        let mut rng = Rng::derive(&[self.seed, PURPOSE, seq]);
        let latency_ms = self.latency.sample(&mut rng);
        let timeout = rng.chance(self.timeout_rate);
        let error = rng.chance(self.error_rate);
        let drop = rng.chance(self.drop_response_after_commit);
        let now = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let outage = self.outage
            || self
                .outage_windows
                .iter()
                .any(|&(s, e)| s <= now && now < e);
        let action = if outage {
            Action::Outage
        } else if timeout {
            Action::Timeout
        } else if error {
            Action::Error
        } else if drop {
            Action::DropAfterCommit
        } else {
            Action::Pass
        };
        Decision { latency_ms, action }
    }

    fn fault_response(&self, status: u16) -> Response {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let body = self
            .error_body
            .clone()
            .unwrap_or_else(|| default_body(status));
        let mut resp = (status, body.to_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/fhir+json"),
        );
        resp
    }
}

/// What happens to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Pass,
    Outage,
    Timeout,
    Error,
    DropAfterCommit,
}

/// The fault decisions for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub latency_ms: u64,
    pub action: Action,
}

/// A plausible Spine-style OperationOutcome for an injected status.
fn default_body(status: StatusCode) -> Value {
    let (code, spine, display) = match status.as_u16() {
        429 => ("throttled", "TOO_MANY_REQUESTS", "Too many requests"),
        500 => ("exception", "SERVER_ERROR", "Internal server error"),
        502 | 504 => ("timeout", "TIMEOUT", "Upstream timeout"),
        503 => ("transient", "SERVICE_UNAVAILABLE", "Service unavailable"),
        _ => ("exception", "UNKNOWN_ERROR", "Unknown error"),
    };
    crate::pds::operation_outcome("error", code, spine, display, Some("Injected fault"))
}

/// The live fault state shared by a [`FaultLayer`] and its [`admin_router`].
#[derive(Clone, Debug)]
pub struct FaultHandle {
    config: Arc<RwLock<FaultConfig>>,
    seq: Arc<AtomicU64>,
    started: Instant,
}

impl Default for FaultHandle {
    fn default() -> Self {
        Self::new(FaultConfig::default())
    }
}

impl FaultHandle {
    /// A handle holding `config`; outage windows count from now.
    pub fn new(config: FaultConfig) -> Self {
        FaultHandle {
            config: Arc::new(RwLock::new(config)),
            seq: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
        }
    }

    /// The current config.
    pub fn get(&self) -> FaultConfig {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the config (after validating it) and restarts the request sequence at 0.
    ///
    /// # Errors
    /// The validation message.
    pub fn set(&self, config: FaultConfig) -> Result<(), String> {
        config.validate()?;
        let mut guard = self.config.write().unwrap_or_else(|e| e.into_inner());
        *guard = config;
        self.seq.store(0, Ordering::SeqCst);
        Ok(())
    }

    /// Restores [`FaultConfig::default`] and restarts the request sequence.
    pub fn reset(&self) {
        let _ = self.set(FaultConfig::default());
    }

    /// Time since the handle was made (the origin of outage windows).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn next(&self) -> (FaultConfig, Decision) {
        let config = self.get();
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        let decision = config.decide(seq, self.elapsed());
        (config, decision)
    }
}

/// A tower layer injecting the faults of a [`FaultHandle`].
#[derive(Clone, Debug)]
pub struct FaultLayer {
    handle: FaultHandle,
}

impl FaultLayer {
    pub fn new(handle: FaultHandle) -> Self {
        FaultLayer { handle }
    }
}

impl<S> tower::Layer<S> for FaultLayer {
    type Service = FaultService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        FaultService {
            inner,
            handle: self.handle.clone(),
        }
    }
}

/// The service made by [`FaultLayer`].
#[derive(Clone, Debug)]
pub struct FaultService<S> {
    inner: S,
    handle: FaultHandle,
}

impl<S> tower::Service<Request<Body>> for FaultService<S>
where
    S: tower::Service<Request<Body>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // Take the service that was driven to readiness, leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (config, decision) = self.handle.next();
        Box::pin(async move {
            if decision.latency_ms > 0 {
                tokio::time::sleep(Duration::from_millis(decision.latency_ms)).await;
            }
            let resp = match decision.action {
                Action::Pass => return inner.call(req).await,
                Action::Outage => config.fault_response(config.outage_status),
                Action::Error => config.fault_response(config.error_status),
                Action::Timeout => {
                    tokio::time::sleep(Duration::from_millis(config.hang_ms)).await;
                    dropped_connection()
                }
                Action::DropAfterCommit => {
                    let committed = inner.call(req).await;
                    drop(committed);
                    dropped_connection()
                }
            };
            tracing::debug!(?decision, "injected fault");
            Ok(resp)
        })
    }
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault injection: connection dropped")
    }
}

impl std::error::Error for Dropped {}

/// A response whose body fails at once, so hyper aborts the connection without a response.
pub fn dropped_connection() -> Response {
    Response::new(Body::new(FailingBody))
}

/// A body whose first frame is an error.
struct FailingBody;

impl http_body::Body for FailingBody {
    type Data = axum::body::Bytes;
    type Error = Dropped;
    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Poll::Ready(Some(Err(Dropped)))
    }
}

/// `GET`/`PUT /_admin/faults`, `POST /_admin/faults/reset` over `handle`.
pub fn admin_router(handle: FaultHandle) -> Router {
    Router::new()
        .route("/_admin/faults", get(get_config).put(put_config))
        .route("/_admin/faults/reset", post(reset_config))
        .with_state(handle)
}

async fn get_config(State(h): State<FaultHandle>) -> Response {
    json_response(StatusCode::OK, &h.get().to_json())
}

async fn put_config(State(h): State<FaultHandle>, body: String) -> Response {
    match FaultConfig::from_json_str(&body).and_then(|c| h.set(c.clone()).map(|()| c)) {
        Ok(c) => json_response(StatusCode::OK, &c.to_json()),
        Err(msg) => json_response(StatusCode::BAD_REQUEST, &json!({ "error": msg })),
    }
}

async fn reset_config(State(h): State<FaultHandle>) -> Response {
    h.reset();
    json_response(StatusCode::OK, &h.get().to_json())
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut resp = (status, v.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn check_keys(obj: &Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{prefix}{k}: unknown field (expected one of {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn req_u64(obj: &Map<String, Value>, key: &str, prefix: &str) -> Result<u64, String> {
    obj.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("{prefix}{key}: expected a non-negative integer"))
}

fn req_f64(obj: &Map<String, Value>, key: &str, prefix: &str) -> Result<f64, String> {
    obj.get(key)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("{prefix}{key}: expected a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_and_defaults_fill_in() {
        let c = FaultConfig {
            seed: 9,
            latency: Latency::LogNormal {
                median_ms: 40.0,
                sigma: 0.5,
            },
            error_rate: 0.25,
            outage_windows: vec![(10, 20)],
            ..FaultConfig::default()
        };
        assert_eq!(FaultConfig::from_json(&c.to_json()).expect("valid"), c);
        assert_eq!(
            FaultConfig::from_json(&json!({})).expect("valid"),
            FaultConfig::default()
        );
    }

    #[test]
    fn invalid_configs_are_rejected_with_the_field_named() {
        for (v, needle) in [
            (json!({ "error_rate": 1.5 }), "error_rate"),
            (json!({ "timeout_rate": -0.1 }), "timeout_rate"),
            (json!({ "outage_windows": [[20, 10]] }), "outage_windows"),
            (json!({ "outage_windows": [[1]] }), "outage_windows"),
            (json!({ "error_status": 42 }), "error_status"),
            (
                json!({ "latency": { "kind": "uniform", "min_ms": 9, "max_ms": 1 } }),
                "latency",
            ),
            (json!({ "latency": { "kind": "weibull" } }), "latency.kind"),
            (json!({ "surprise": true }), "surprise"),
        ] {
            let err = FaultConfig::from_json(&v).expect_err("invalid");
            assert!(err.contains(needle), "{v}: {err}");
        }
    }

    #[test]
    fn decisions_are_a_function_of_seed_and_sequence() {
        let c = FaultConfig {
            seed: 3,
            error_rate: 0.5,
            latency: Latency::Uniform {
                min_ms: 0,
                max_ms: 100,
            },
            ..FaultConfig::default()
        };
        let a: Vec<_> = (0..200).map(|i| c.decide(i, Duration::ZERO)).collect();
        let b: Vec<_> = (0..200).map(|i| c.decide(i, Duration::ZERO)).collect();
        assert_eq!(a, b);
        let errors = a.iter().filter(|d| d.action == Action::Error).count();
        assert!((70..=130).contains(&errors), "{errors}");
        let other = FaultConfig { seed: 4, ..c };
        let d: Vec<_> = (0..200).map(|i| other.decide(i, Duration::ZERO)).collect();
        assert_ne!(a, d);
    }

    #[test]
    fn outage_windows_are_half_open() {
        let c = FaultConfig {
            outage_windows: vec![(100, 200)],
            ..FaultConfig::default()
        };
        let at = |ms| c.decide(0, Duration::from_millis(ms)).action;
        assert_eq!(at(99), Action::Pass);
        assert_eq!(at(100), Action::Outage);
        assert_eq!(at(199), Action::Outage);
        assert_eq!(at(200), Action::Pass);
    }

    #[test]
    fn latency_samples_stay_in_range() {
        let mut rng = Rng::derive(&[1]);
        for _ in 0..1000 {
            let u = Latency::Uniform {
                min_ms: 10,
                max_ms: 20,
            }
            .sample(&mut rng);
            assert!((10..=20).contains(&u), "{u}");
            let n = Latency::Normal {
                mean_ms: 5.0,
                sd_ms: 10.0,
            }
            .sample(&mut rng);
            assert!(n <= 40, "{n}");
            let l = Latency::LogNormal {
                median_ms: 100.0,
                sigma: 0.5,
            }
            .sample(&mut rng);
            assert!((10..=1000).contains(&l), "{l}");
        }
        assert_eq!(Latency::Fixed { ms: 50 }.sample(&mut rng), 50);
        assert_eq!(Latency::None.sample(&mut rng), 0);
    }
}
