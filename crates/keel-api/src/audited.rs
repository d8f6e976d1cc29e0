//! One audit record per request: [`finish`] turns what a request did (its
//! [`RequestAudit`]) and its result into the record, appends it, and only then lets the response
//! go — if the record cannot be written, the response is a 503 instead. Break-glass use raises
//! an alert. Also the AuditEvent read and search interactions.

use crate::AppState;
use crate::auth::Principal;
use crate::fhir_http::{FhirRequest, error_response, json_response};
use crate::metrics_http::HttpMetrics;
use crate::outcome::audit_outcome;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use keel_core::audit::{AuditOutcome, RequestAudit, audit_event};
use keel_core::fhir::AuditWrite;
use keel_core::{Actor, FhirError, RequestContext};
use serde_json::{Value, json};
use std::sync::Arc;

/// A request's response, held until its audit record is committed.
pub(crate) struct Finishing {
    response: Response,
    write: Result<AuditWrite, FhirError>,
    /// The request's context, when it was a permitted break-glass access (an alert is due).
    break_glass: Option<RequestContext>,
}

/// Queues the audit record of a request from what it did and its result (on the blocking
/// pool: the record is built and encoded here).
pub(crate) fn finish(
    state: &AppState,
    ctx: &RequestContext,
    audit: &RequestAudit,
    result: Result<Response, FhirError>,
) -> Finishing {
    let (response, outcome) = match result {
        Ok(mut response) => {
            let status = response.status();
            // A handler that refused says so itself (a denial, not an error).
            let outcome = if let Some(outcome) = response.extensions_mut().remove::<AuditOutcome>()
            {
                outcome
            } else if status.is_client_error() || status.is_server_error() {
                AuditOutcome::Error {
                    message: format!("HTTP {}", status.as_u16()),
                }
            } else {
                AuditOutcome::Permit
            };
            (response, outcome)
        }
        Err(error) => (error_response(&error), audit_outcome(&error)),
    };
    let break_glass =
        (outcome == AuditOutcome::Permit && audit.break_glass_used()).then(|| ctx.clone());
    Finishing {
        response,
        write: state.fhir.submit_audit(ctx, audit, outcome),
        break_glass,
    }
}

impl Finishing {
    /// The response, once the audit record is committed; a 503 instead if it cannot be.
    pub(crate) async fn respond(self, state: &AppState) -> Response {
        let committed = match self.write {
            Ok(write) => write.committed().await,
            Err(error) => Err(error),
        };
        match committed {
            Ok(sequence) => {
                if let Some(ctx) = &self.break_glass {
                    alert_break_glass(&state.http_metrics, ctx, sequence);
                }
                self.response
            }
            Err(error) => error_response(&error),
        }
    }
}

/// A break-glass access: a warning on the `keel::alert` target (for the operator's alerting)
/// and the `keel_break_glass_total` counter. It names the audit entry, the role and the
/// organisation — never the patient, whom the audit entry names. The API and the web UI both
/// raise it through here.
pub fn alert_break_glass(metrics: &HttpMetrics, ctx: &RequestContext, sequence: Option<u64>) {
    metrics.break_glass();
    let role = match &ctx.actor {
        Actor::User { role_code, .. } => role_code.as_str(),
        Actor::System { .. } => "system",
        Actor::LocalDevelopment => "local-development",
    };
    tracing::warn!(
        target: "keel::alert",
        audit_entry = sequence.unwrap_or(0),
        correlation_id = %ctx.correlation_id,
        role,
        organisation = ctx.organisation.as_ref().map_or("", |o| o.as_str()),
        "break-glass access: review audit entry"
    );
}

/// `GET /fhir/AuditEvent?...`: a searchset of AuditEvents, newest first.
pub(crate) fn search(
    state: &AppState,
    req: &FhirRequest,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("search-type");
    let page = state.fhir.search_audit(&req.ctx, &req.params, audit)?;
    let entries: Vec<Value> = page
        .entries
        .iter()
        .map(|(sequence, record)| {
            json!({
                "fullUrl": format!("{}/AuditEvent/{sequence}", req.base),
                "resource": audit_event(*sequence, record),
                "search": {"mode": "match"},
            })
        })
        .collect();
    Ok(json_response(
        200,
        &json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": page.total,
            "entry": entries,
        }),
    ))
}

/// `GET /fhir/AuditEvent/{id}`.
pub(crate) fn read(
    state: &AppState,
    req: &FhirRequest,
    id: &str,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("read");
    let (sequence, record) = state.fhir.read_audit(&req.ctx, id, audit)?;
    Ok(json_response(200, &audit_event(sequence, &record)))
}

/// Middleware for the routes outside the FHIR REST router (`$record`, `/api/practices`): one
/// audit record per request, written before the response leaves. A handler that knows more
/// (the patient) puts its [`RequestAudit`] in the response's extensions.
pub async fn record_request(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let correlation_id = state.correlation_id(request.headers());
    let echoed = HeaderValue::from_str(correlation_id.as_str()).ok();
    if let Some(value) = &echoed {
        // The handler takes the same id.
        request.headers_mut().insert("x-request-id", value.clone());
    }
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return next.run(request).await;
    };
    let interaction = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |p| {
            format!("{} {}", request.method(), p.as_str())
        });
    let ctx = principal.context(correlation_id);
    let mut response = next.run(request).await;
    let audit = response
        .extensions_mut()
        .remove::<RequestAudit>()
        .unwrap_or_else(|| RequestAudit::new(interaction));
    let blocking_state = state.clone();
    let finishing =
        tokio::task::spawn_blocking(move || finish(&blocking_state, &ctx, &audit, Ok(response)))
            .await;
    let mut response = match finishing {
        Ok(finishing) => finishing.respond(&state).await,
        Err(e) => crate::fhir_http::plain_outcome(
            500,
            keel_model::IssueType::Exception,
            &format!("the request failed inside the server: {e}"),
        ),
    };
    if let Some(value) = echoed {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
