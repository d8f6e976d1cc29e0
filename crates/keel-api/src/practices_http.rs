//! The practice directory over HTTP (JSON, not FHIR):
//!
//! - `GET /api/practices` — every practice's current connection (secrets masked) with its
//!   version, who changed it and when, and its capability profile;
//! - `GET /api/practices/{ods}` (with `ETag: W/"<version>"`), `.../capabilities`,
//!   `.../history` (every version, oldest first);
//! - `PUT /api/practices/{ods}` — a new version of the connection; `If-Match: W/"<version>"`
//!   is required to change an existing practice (412 when stale), `?reason=` is kept with it.
//!   The new version starts unprobed and is probed in the background at once;
//! - `POST /api/practices/{ods}/probe` — asks the practice's interfaces what they offer now
//!   (GP Connect's CapabilityStatement) and answers with the capability profile that follows.
//!   A probe that failed is listed (200), never an error of the request: the previous probe,
//!   or configuration alone, stays in force.
//!
//! A capability profile is shown as it routes: built from the connection plus the probes of
//! the current version, with the probes themselves (`probes`: interface, `probed_at`,
//! `offered`) and the interfaces whose last probe failed (`probe_failures`). Older versions in
//! `.../history` are shown with their profile from configuration alone.
//!
//! Errors are OperationOutcomes from [`crate::integration_outcome`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use keel_core::RequestContext;
use keel_core::integration::PracticeConnection;
use keel_integrations::directory::{ConnectionVersion, Directory, DirectoryError};
use keel_integrations::probing::ProbeStatus;
use keel_model::{IssueType, OdsCode, OperationOutcome};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Principal;
use crate::integration_outcome::directory_error;

/// Keys whose values are never shown.
const SECRET_MARKERS: [&str; 3] = ["token", "secret", "password"];

fn json_answer(status: u16, body: &Value) -> Response {
    let mut response = (
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK),
        body.to_string(),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn outcome(status: u16, outcome: &OperationOutcome) -> Response {
    json_answer(status, &outcome.to_json())
}

fn refuse(status: u16, code: IssueType, message: &str) -> Response {
    outcome(status, &OperationOutcome::new().error(code, message))
}

/// A refusal: the status and its OperationOutcome, made into a response at the end.
struct Refusal(u16, OperationOutcome);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        outcome(self.0, &self.1)
    }
}

fn refusal(status: u16, code: IssueType, message: &str) -> Refusal {
    Refusal(status, OperationOutcome::new().error(code, message))
}

fn directory(state: &AppState) -> Result<&Arc<Directory>, Refusal> {
    state.directory.as_ref().ok_or_else(|| {
        refusal(
            404,
            IssueType::NotFound,
            "no practice directory is configured on this server",
        )
    })
}

fn parse_ods(ods: &str) -> Result<OdsCode, Refusal> {
    OdsCode::parse(ods).map_err(|e| refusal(400, IssueType::Value, &format!("'{ods}': {e}")))
}

/// The capability profile of `connection` with `probing`, and the probes themselves.
fn profile_view(connection: &PracticeConnection, probing: &ProbeStatus) -> Value {
    let mut shown = serde_json::to_value(connection.capability_profile_with(&probing.probes))
        .unwrap_or(Value::Null);
    shown["probes"] = serde_json::to_value(&probing.probes).unwrap_or(Value::Null);
    shown["probe_failures"] = serde_json::to_value(&probing.failures).unwrap_or(Value::Null);
    shown
}

/// What probing the current version of `ods` has found.
fn found_by_probing(directory: &Directory, ods: &OdsCode) -> ProbeStatus {
    directory.probe_status(ods).unwrap_or_default()
}

/// A version as shown: secrets masked, with the capability profile built with `probing`.
fn view(version: &ConnectionVersion, probing: &ProbeStatus) -> Value {
    let mut shown = serde_json::to_value(version).unwrap_or(Value::Null);
    if let Some(local) = shown
        .pointer_mut("/connection/local_configuration")
        .and_then(Value::as_object_mut)
    {
        for (key, value) in local.iter_mut() {
            if SECRET_MARKERS.iter().any(|m| key.contains(m)) {
                *value = json!("(set)");
            }
        }
    }
    shown["capabilities"] = profile_view(&version.connection, probing);
    shown
}

pub async fn list(State(state): State<Arc<AppState>>) -> Response {
    let Some(directory) = &state.directory else {
        return json_answer(200, &json!([]));
    };
    let all: Vec<Value> = directory
        .current()
        .iter()
        .map(|v| view(v, &found_by_probing(directory, &v.connection.ods)))
        .collect();
    json_answer(200, &Value::Array(all))
}

/// The current version of `ods` and what probing it has found.
fn current(state: &AppState, ods: &str) -> Result<(ConnectionVersion, ProbeStatus), Refusal> {
    let directory = directory(state)?;
    let ods = parse_ods(ods)?;
    let version = directory.history(&ods).pop().ok_or_else(|| {
        let (status, o) = directory_error(&DirectoryError::UnknownPractice(ods.clone()));
        Refusal(status, o)
    })?;
    Ok((version, found_by_probing(directory, &ods)))
}

pub async fn one(State(state): State<Arc<AppState>>, Path(ods): Path<String>) -> Response {
    match current(&state, &ods) {
        Ok((version, probing)) => {
            let mut response = json_answer(200, &view(&version, &probing));
            if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{}\"", version.version)) {
                response.headers_mut().insert(header::ETAG, etag);
            }
            response
        }
        Err(refusal) => refusal.into_response(),
    }
}

pub async fn capabilities(State(state): State<Arc<AppState>>, Path(ods): Path<String>) -> Response {
    match current(&state, &ods) {
        Ok((version, probing)) => json_answer(200, &profile_view(&version.connection, &probing)),
        Err(refusal) => refusal.into_response(),
    }
}

pub async fn probe(
    State(state): State<Arc<AppState>>,
    Path(ods): Path<String>,
    headers: HeaderMap,
    Extension(principal): Extension<Principal>,
) -> Response {
    let directory = match directory(&state) {
        Ok(d) => d.clone(),
        Err(refusal) => return refusal.into_response(),
    };
    let ods = match parse_ods(&ods) {
        Ok(ods) => ods,
        Err(refusal) => return refusal.into_response(),
    };
    let ctx = context(&state, &headers, &principal);
    match directory.probe(&ctx, &ods).await {
        Ok(probing) => match directory.history(&ods).pop() {
            Some(version) => json_answer(200, &profile_view(&version.connection, &probing)),
            None => outcome_of(&DirectoryError::UnknownPractice(ods)),
        },
        Err(e) => outcome_of(&e),
    }
}

fn outcome_of(error: &DirectoryError) -> Response {
    let (status, o) = directory_error(error);
    outcome(status, &o)
}

/// The request's context: its principal, under the caller's `X-Request-Id` or a new one.
fn context(state: &AppState, headers: &HeaderMap, principal: &Principal) -> RequestContext {
    principal.context(state.correlation_id(headers))
}

pub async fn history(State(state): State<Arc<AppState>>, Path(ods): Path<String>) -> Response {
    let directory = match directory(&state) {
        Ok(d) => d,
        Err(refusal) => return refusal.into_response(),
    };
    let ods = match parse_ods(&ods) {
        Ok(ods) => ods,
        Err(refusal) => return refusal.into_response(),
    };
    let versions = directory.history(&ods);
    if versions.is_empty() {
        return outcome_of(&DirectoryError::UnknownPractice(ods));
    }
    let unprobed = ProbeStatus::default();
    let current = found_by_probing(directory, &ods);
    let shown = versions.iter().enumerate().map(|(i, v)| {
        let latest = i + 1 == versions.len();
        view(v, if latest { &current } else { &unprobed })
    });
    json_answer(200, &Value::Array(shown.collect()))
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Path(ods): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    Extension(principal): Extension<Principal>,
    body: Bytes,
) -> Response {
    let directory = match directory(&state) {
        Ok(d) => d.clone(),
        Err(refusal) => return refusal.into_response(),
    };
    let ods = match parse_ods(&ods) {
        Ok(ods) => ods,
        Err(refusal) => return refusal.into_response(),
    };
    let connection: PracticeConnection = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return refuse(
                400,
                IssueType::Structure,
                &format!("the body is not a practice connection: {e}"),
            );
        }
    };
    if connection.ods != ods {
        return refuse(
            400,
            IssueType::Invalid,
            &format!(
                "the connection is for {} but the URL names {ods}",
                connection.ods
            ),
        );
    }
    let expected = match headers.get(header::IF_MATCH).map(|v| v.to_str()) {
        None => None,
        Some(Ok(tag)) => match version_of(tag) {
            Some(v) => Some(v),
            None => {
                return refuse(
                    400,
                    IssueType::Invalid,
                    &format!("If-Match '{tag}' is not a version ETag like W/\"3\""),
                );
            }
        },
        Some(Err(_)) => return refuse(400, IssueType::Invalid, "If-Match is not readable"),
    };
    let reason = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "reason")
        .map(|(_, v)| v.into_owned());
    let ctx = context(&state, &headers, &principal);
    let registering = directory.clone();
    let registered = tokio::task::spawn_blocking(move || {
        let version = registering.register(&ctx, connection, expected, reason);
        (ctx, version)
    })
    .await;
    match registered {
        Ok((ctx, Ok(version))) => {
            let status = if version.version == 1 { 201 } else { 200 };
            let probing = found_by_probing(&directory, &ods);
            let mut response = json_answer(status, &view(&version, &probing));
            tokio::spawn(async move { directory.probe(&ctx, &ods).await });
            if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{}\"", version.version)) {
                response.headers_mut().insert(header::ETAG, etag);
            }
            response
        }
        Ok((_, Err(e))) => outcome_of(&e),
        Err(e) => refuse(
            500,
            IssueType::Exception,
            &format!("the change failed: {e}"),
        ),
    }
}

fn version_of(tag: &str) -> Option<u64> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}
