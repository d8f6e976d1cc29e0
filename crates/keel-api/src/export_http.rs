//! Bulk export over HTTP (FHIR Bulk Data Access, system level): `GET /fhir/$export` with
//! `Prefer: respond-async` answers 202 with the status URL in `Content-Location`; polling it
//! answers 202 with `X-Progress` until the manifest (200); the manifest's parts are NDJSON
//! under the same URL; `DELETE` on the status URL cancels a running export or deletes a
//! finished one's parts.

use crate::AppState;
use crate::fhir_http::{FhirRequest, json_response, plain_outcome};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keel_core::FhirError;
use keel_core::audit::RequestAudit;
use keel_core::fhir::{ExportRequest, ExportStatus};
use keel_fhir::datetime;
use keel_model::IssueType;
use serde_json::json;

const NDJSON: &str = "application/fhir+ndjson";
/// The output formats a kick-off may ask for (all mean NDJSON).
const NDJSON_NAMES: [&str; 3] = ["application/fhir+ndjson", "application/ndjson", "ndjson"];

pub(crate) fn kick_off(
    state: &AppState,
    req: &FhirRequest,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("export");
    let prefers_async = req
        .header("prefer")
        .is_some_and(|p| p.split(',').any(|v| v.trim() == "respond-async"));
    if !prefers_async {
        return Err(FhirError::BadRequest(
            "a bulk export runs in the background: send the kick-off with `Prefer: respond-async`"
                .into(),
        ));
    }
    let mut request = ExportRequest {
        types: None,
        since: None,
        request_url: format!("{}/$export{}", req.base, req.query_suffix()),
    };
    for (name, value) in &req.params {
        match name.as_str() {
            "_type" => {
                let types = request.types.get_or_insert_with(Vec::new);
                types.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string),
                );
            }
            "_since" => {
                let range = datetime::parse_range(value).map_err(|e| {
                    FhirError::BadRequest(format!("_since must be a FHIR instant: {e}"))
                })?;
                request.since = Some(range.start);
            }
            "_outputFormat" if NDJSON_NAMES.contains(&value.as_str()) => {}
            "_outputFormat" => {
                return Err(FhirError::BadRequest(format!(
                    "_outputFormat={value} is not supported; exports are NDJSON (application/fhir+ndjson)"
                )));
            }
            other => {
                return Err(FhirError::BadRequest(format!(
                    "the bulk export parameter {other} is not supported; use _type, _since and _outputFormat"
                )));
            }
        }
    }
    let id = state.fhir.kick_off_export(&req.ctx, &request, audit)?;
    let mut response = StatusCode::ACCEPTED.into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("{}/_export/{id}", req.base)) {
        response
            .headers_mut()
            .insert(header::CONTENT_LOCATION, location);
    }
    Ok(response)
}

pub(crate) fn status(
    state: &AppState,
    req: &FhirRequest,
    id: &str,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("export-status");
    let id = job_id(id)?;
    Ok(match state.fhir.export_status(&req.ctx, id, audit)? {
        ExportStatus::InProgress { progress } => {
            let mut response = StatusCode::ACCEPTED.into_response();
            let headers = response.headers_mut();
            headers.insert("retry-after", HeaderValue::from_static("1"));
            let progress = progress.unwrap_or_else(|| "queued".into());
            if let Ok(value) = HeaderValue::from_str(&progress) {
                headers.insert("x-progress", value);
            }
            response
        }
        ExportStatus::Complete(manifest) => {
            let output: Vec<_> = manifest
                .outputs
                .iter()
                .map(|o| {
                    json!({
                        "type": o.name,
                        "url": format!("{}/_export/{id}/{}.ndjson", req.base, o.part),
                        "count": o.count,
                    })
                })
                .collect();
            let mut response = json_response(
                200,
                &json!({
                    "transactionTime": datetime::format_instant(manifest.transaction_time),
                    "request": manifest.request,
                    "requiresAccessToken": true,
                    "output": output,
                    "error": [],
                }),
            );
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        ExportStatus::Failed { message } => plain_outcome(
            500,
            IssueType::Exception,
            &format!(
                "the export failed: {message}. Nothing of it is available; kick off a new export."
            ),
        ),
    })
}

pub(crate) fn output(
    state: &AppState,
    req: &FhirRequest,
    id: &str,
    file: &str,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("export-output");
    let id = job_id(id)?;
    let part: u32 = file
        .strip_suffix(".ndjson")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| FhirError::NotFound {
            resource_type: "$export output".into(),
            id: file.to_string(),
        })?;
    let content = state.fhir.export_output(&req.ctx, id, part, audit)?;
    let mut response = (StatusCode::OK, content).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    Ok(response)
}

pub(crate) fn cancel(
    state: &AppState,
    req: &FhirRequest,
    id: &str,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("export-cancel");
    state.fhir.cancel_export(&req.ctx, job_id(id)?, audit)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

fn job_id(text: &str) -> Result<u64, FhirError> {
    text.parse().map_err(|_| FhirError::NotFound {
        resource_type: "$export".into(),
        id: text.to_string(),
    })
}
