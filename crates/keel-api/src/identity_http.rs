//! The person index and its review queue over HTTP (JSON, under `/api/identity`; each pair is
//! also a FHIR `Linkage` in the store, see docs/identity.md):
//!
//! - `POST /api/identity/scan` — the matcher proposes links over every stored Patient and they
//!   are recorded (system clients and local development only); answers what changed;
//! - `GET /api/identity/links?status=needs-review|linked|not-linked&patient={id}` — the pairs,
//!   newest decision first, each with its status, who decided, why, the probability and the
//!   evidence; only pairs whose two Patients the caller may read;
//! - `POST /api/identity/links/{id}/decision` with `{"decision": "linked"|"not-linked",
//!   "reason": "..."}` — a person's decision, which supersedes the earlier one;
//! - `GET /api/identity/links/{id}` — every decision on the pair, newest first.
//!
//! Every request leaves one audit record ([`crate::audited::record_request`]); errors are
//! OperationOutcomes from [`crate::outcome`].

use crate::AppState;
use crate::auth::Principal;
use crate::fhir_http::json_response;
use crate::outcome::error_response_parts;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use keel_core::audit::RequestAudit;
use keel_core::fhir::{LinkFilter, ScanSummary, parse_query_string};
use keel_core::identity::{LinkStatus, PatientLink};
use keel_core::{FhirError, RequestContext};
use keel_fhir::datetime::format_instant;
use serde_json::{Value, json};
use std::sync::Arc;

/// Runs `work` on the blocking pool with a fresh audit note, and answers its result with the
/// note attached for the audit record.
async fn run(
    state: Arc<AppState>,
    headers: &HeaderMap,
    principal: &Principal,
    interaction: &'static str,
    work: impl FnOnce(&AppState, &RequestContext, &mut RequestAudit) -> Result<Value, FhirError>
    + Send
    + 'static,
) -> Response {
    let ctx = principal.context(state.correlation_id(headers));
    let done = tokio::task::spawn_blocking(move || {
        let mut audit = RequestAudit::new(interaction);
        let result = work(&state, &ctx, &mut audit);
        (result, audit)
    })
    .await;
    let (result, audit) = match done {
        Ok(done) => done,
        Err(e) => {
            return crate::fhir_http::plain_outcome(
                500,
                keel_model::IssueType::Exception,
                &format!("the request failed inside the server: {e}"),
            );
        }
    };
    let mut response = match result {
        Ok(body) => json_response(200, &body),
        Err(error) => {
            let (status, outcome) = error_response_parts(&error);
            json_response(status, &outcome.to_json())
        }
    };
    response.extensions_mut().insert(audit);
    response
}

pub async fn scan(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Extension(principal): Extension<Principal>,
) -> Response {
    run(
        state,
        &headers,
        &principal,
        "identity-scan",
        |state, ctx, audit| {
            let summary = state.fhir.scan_person_index(ctx, audit)?;
            Ok(summary_json(&summary))
        },
    )
    .await
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    Extension(principal): Extension<Principal>,
) -> Response {
    run(
        state,
        &headers,
        &principal,
        "identity-links",
        move |state, ctx, audit| {
            let filter = parse_filter(query.as_deref().unwrap_or(""))?;
            let links = state.fhir.identity_links(ctx, &filter, audit)?;
            Ok(json!({
                "total": links.len(),
                "links": links.iter().map(link_json).collect::<Vec<_>>(),
            }))
        },
    )
    .await
}

pub async fn history(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Extension(principal): Extension<Principal>,
) -> Response {
    run(
        state,
        &headers,
        &principal,
        "identity-link-history",
        move |state, ctx, audit| {
            let versions = state.fhir.identity_link_history(ctx, &id, audit)?;
            Ok(json!({
                "id": id,
                "decisions": versions.iter().map(link_json).collect::<Vec<_>>(),
            }))
        },
    )
    .await
}

pub async fn decide(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Extension(principal): Extension<Principal>,
    body: Bytes,
) -> Response {
    run(state, &headers, &principal, "identity-decision", move |state, ctx, audit| {
        let body: Value = serde_json::from_slice(&body).map_err(|e| {
            FhirError::BadRequest(format!(
                "the decision is not JSON ({e}); send {{\"decision\": \"linked\"|\"not-linked\", \"reason\": \"...\"}}"
            ))
        })?;
        let status = match body["decision"].as_str() {
            Some("linked") => LinkStatus::Linked,
            Some("not-linked") => LinkStatus::NotLinked,
            other => {
                return Err(FhirError::BadRequest(format!(
                    "decision must be \"linked\" or \"not-linked\", not {}",
                    other.map_or("absent".to_string(), |o| format!("\"{o}\""))
                )));
            }
        };
        let reason = body["reason"].as_str().unwrap_or_default();
        let link = state
            .fhir
            .decide_identity_link(ctx, &id, status, reason, audit)?;
        Ok(link_json(&link))
    })
    .await
}

fn parse_filter(query: &str) -> Result<LinkFilter, FhirError> {
    let mut filter = LinkFilter::default();
    for (key, value) in parse_query_string(query) {
        match key.as_str() {
            "status" => {
                filter.status = Some(LinkStatus::parse(&value).ok_or_else(|| {
                    FhirError::BadRequest(format!(
                        "status must be linked, needs-review or not-linked, not '{value}'"
                    ))
                })?);
            }
            "patient" => filter.patient = Some(value.trim_start_matches("Patient/").to_string()),
            other => {
                return Err(FhirError::BadRequest(format!(
                    "unknown parameter '{other}': the person index is listed by status and patient"
                )));
            }
        }
    }
    Ok(filter)
}

fn summary_json(s: &ScanSummary) -> Value {
    json!({
        "proposed": s.proposed,
        "linked": s.linked,
        "needs_review": s.needs_review,
        "withdrawn": s.withdrawn,
        "kept_decisions": s.kept_decisions,
    })
}

fn link_json(link: &PatientLink) -> Value {
    json!({
        "id": link.id,
        "version": link.version,
        "recorded_at": format_instant(link.recorded_at),
        "patients": [
            format!("Patient/{}", link.patients.0),
            format!("Patient/{}", link.patients.1),
        ],
        "status": link.status.code(),
        "decided_by": link.decided_by,
        "reason": link.reason,
        "probability": link.probability,
        "same_practice": link.same_practice,
        "evidence": link.evidence,
    })
}
