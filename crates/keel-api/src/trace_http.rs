//! `POST /api/identity/trace`: resolves a patient's identity against PDS (see
//! [`keel_core::identity::pds_trace`] and docs/identity.md). The body is a FHIR Patient, read as
//! `$match` reads its `resource`; the answer is JSON with the outcome (`confirmed`, `traced`,
//! `needs-review`, `no-match`, `cannot-trace`, `unavailable`), what PDS said of the record's
//! verified NHS number, and every candidate with its evidence.
//!
//! Access as `$match` (a search of Patients: `read-demographics`). One audit record
//! (`identity-trace`) naming every NHS number asked about or proposed; 503 when Keel has no
//! PDS endpoint (`keel serve --pds-url`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::Response;
use keel_core::audit::RequestAudit;
use keel_core::identity::pds_trace::{
    NumberAnswer, PdsCandidate, Resolution, TraceOutcome, resolve, trace_subject,
};
use keel_core::{FhirError, RequestContext};
use keel_model::IssueType;
use keel_model::identifier::systems;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Principal;
use crate::fhir_http::{json_response, plain_outcome};
use crate::outcome::error_response_parts;

pub async fn trace(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Extension(principal): Extension<Principal>,
    body: Bytes,
) -> Response {
    let ctx = principal.context(state.correlation_id(&headers));
    let checked = tokio::task::spawn_blocking({
        let (state, ctx) = (state.clone(), ctx.clone());
        move || {
            let mut audit = RequestAudit::new("identity-trace");
            let allowed = state.fhir.authorize_pds_trace(&ctx, &mut audit);
            (allowed, audit)
        }
    })
    .await;
    let (allowed, mut audit) = match checked {
        Ok(checked) => checked,
        Err(e) => {
            return plain_outcome(
                500,
                IssueType::Exception,
                &format!("the request failed inside the server: {e}"),
            );
        }
    };
    let mut response = answer(&state, &ctx, allowed, &body, &mut audit).await;
    response.extensions_mut().insert(audit);
    response
}

async fn answer(
    state: &AppState,
    ctx: &RequestContext,
    allowed: Result<(), FhirError>,
    body: &[u8],
    audit: &mut RequestAudit,
) -> Response {
    let result = allowed;
    let subject = result.and_then(|()| {
        let patient: Value = serde_json::from_slice(body).map_err(|e| {
            FhirError::BadRequest(format!(
                "the trace body is not JSON ({e}); send the Patient to resolve"
            ))
        })?;
        trace_subject(&patient)
    });
    let subject = match subject {
        Ok(subject) => subject,
        Err(error) => {
            let (status, outcome) = error_response_parts(&error);
            return json_response(status, &outcome.to_json());
        }
    };
    let Some(pds) = &state.pds else {
        return plain_outcome(
            503,
            IssueType::NotSupported,
            "Keel has no PDS endpoint configured (keel serve --pds-url): identities cannot be traced",
        );
    };
    let resolution = resolve(pds.as_ref(), ctx, &subject).await;
    for number in resolution.nhs_numbers() {
        audit.patient_by_identifier(systems::NHS_NUMBER, number.as_str());
    }
    json_response(200, &resolution_json(&resolution))
}

fn resolution_json(resolution: &Resolution) -> Value {
    let outcome = &resolution.outcome;
    let (reason, candidates): (Option<&str>, &[PdsCandidate]) = match outcome {
        TraceOutcome::Confirmed(c) | TraceOutcome::Traced(c) => (None, std::slice::from_ref(c)),
        TraceOutcome::NeedsReview { reason, candidates } => (Some(reason), candidates),
        TraceOutcome::NoMatch { reason }
        | TraceOutcome::CannotTrace { reason }
        | TraceOutcome::Unavailable { reason } => (Some(reason), &[]),
    };
    let nhs_number = match outcome {
        TraceOutcome::Confirmed(c) | TraceOutcome::Traced(c) => {
            c.nhs_number().map(|n| n.as_str().to_string())
        }
        _ => None,
    };
    json!({
        "outcome": outcome.code(),
        "nhsNumber": nhs_number,
        "reason": reason,
        "numberCheck": resolution.number_check.as_ref().map(|check| json!({
            "asked": check.asked.as_str(),
            "answer": check.answer.code(),
            "supersededBy": match check.answer {
                NumberAnswer::Superseded { by } => Some(by.as_str().to_string()),
                _ => None,
            },
        })),
        "candidates": candidates.iter().map(candidate_json).collect::<Vec<_>>(),
    })
}

fn candidate_json(c: &PdsCandidate) -> Value {
    let d = &c.patient.demographics;
    json!({
        "nhsNumber": c.nhs_number().map(|n| n.as_str().to_string()),
        "basis": c.basis.code(),
        "score": c.score,
        "restricted": c.patient.restricted,
        "fields": c.fields.iter().map(|&(name, agreement)| json!({
            "name": name,
            "agreement": agreement.code(),
        })).collect::<Vec<_>>(),
        "demographics": {
            "family": d.family,
            "given": d.given,
            "birthDate": d.birth_date.as_ref().map(|b| b.as_str()),
            "gender": d.gender,
            "postcode": d.postcode,
        },
    })
}
