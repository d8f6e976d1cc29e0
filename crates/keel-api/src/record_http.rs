//! `$record`: a patient's record assembled at the point of need from their registered practice.
//!
//! - `GET /fhir/Patient/{id}/$record` — the patient held in Keel's store: the NHS number is its
//!   `https://fhir.nhs.uk/Id/nhs-number` identifier, and its `generalPractitioner` ODS identifier
//!   is the practice hint when PDS cannot say;
//! - `GET /fhir/Patient/$record?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}` — by NHS number.
//!
//! Parameters: `section` (repeatable or comma-separated: problems, medications, allergies,
//! observations, immunisations, consultations, documents; default all), `practice` (ODS hint).
//! The answer is a `collection` Bundle ([`crate::record_fhir`]); a section the practice could not
//! give is in it as unavailable, never as an empty list.

use std::sync::Arc;

use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use keel_core::audit::RequestAudit;
use keel_core::fhir::Access;
use keel_core::{FhirError, RequestContext};
use keel_integrations::directory::RecordError;
use keel_model::record::RecordSection;
use keel_model::{IssueType, NhsNumber, OdsCode, OperationOutcome};
use serde_json::Value;

use crate::AppState;
use crate::auth::Principal;
use crate::fhir_http::{json_bytes_response, json_response, plain_outcome};
use crate::integration_outcome::record_error;
use crate::outcome::{audit_outcome, error_response_parts};

const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

/// What the query asks for.
struct RecordQuery {
    sections: Vec<RecordSection>,
    identifier: Option<String>,
    practice: Option<OdsCode>,
}

fn parse_query(query: Option<&str>) -> Result<RecordQuery, String> {
    let mut sections = Vec::new();
    let mut identifier = None;
    let mut practice = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "section" => {
                for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let section = RecordSection::from_key(name).ok_or_else(|| {
                        let known: Vec<&str> = RecordSection::ALL.iter().map(|s| s.key()).collect();
                        format!("unknown section '{name}' (known: {})", known.join(", "))
                    })?;
                    if !sections.contains(&section) {
                        sections.push(section);
                    }
                }
            }
            "identifier" => identifier = Some(value.into_owned()),
            "practice" => {
                practice =
                    Some(OdsCode::parse(&value).map_err(|e| format!("practice '{value}': {e}"))?);
            }
            "_format" => {}
            other => return Err(format!("'{other}' is not a parameter of $record")),
        }
    }
    if sections.is_empty() {
        sections = RecordSection::ALL.to_vec();
    }
    Ok(RecordQuery {
        sections,
        identifier,
        practice,
    })
}

/// The request's context: its principal, under the caller's `X-Request-Id` or a new one.
fn context(state: &AppState, headers: &HeaderMap, principal: &Principal) -> RequestContext {
    principal.context(state.correlation_id(headers))
}

fn fhir_error(error: &FhirError) -> Response {
    let (status, outcome) = error_response_parts(error);
    json_response(status, &outcome.to_json())
}

fn invalid(message: &str) -> Response {
    plain_outcome(400, IssueType::Invalid, message)
}

/// The NHS number and practice hint of a Patient resource.
fn patient_identity(patient: &Value) -> (Option<NhsNumber>, Option<OdsCode>) {
    let nhs = patient["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["system"] == NHS_NUMBER_SYSTEM)
        .find_map(|i| i["value"].as_str().and_then(|v| NhsNumber::parse(v).ok()));
    let practice = patient["generalPractitioner"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r.pointer("/identifier/system") == Some(&Value::from(ODS_SYSTEM)))
        .find_map(|r| {
            r.pointer("/identifier/value")
                .and_then(Value::as_str)
                .and_then(|v| OdsCode::parse(v).ok())
        });
    (nhs, practice)
}

pub async fn for_stored_patient(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    Extension(principal): Extension<Principal>,
) -> Response {
    let ctx = context(&state, &headers, &principal);
    let query = match parse_query(query.as_deref()) {
        Ok(q) => q,
        Err(message) => return invalid(&message),
    };
    if query.identifier.is_some() {
        return invalid("'identifier' is for Patient/$record; this patient is named by its id");
    }
    let fhir = state.fhir.clone();
    let read_ctx = ctx.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut audit = RequestAudit::new("$record");
        let stored = fhir.read(&read_ctx, "Patient", &id, &mut audit);
        (stored, audit)
    })
    .await;
    let (stored, audit) = match read {
        Ok(read) => read,
        Err(e) => {
            return plain_outcome(500, IssueType::Exception, &format!("the read failed: {e}"));
        }
    };
    let stored = match stored {
        Ok(stored) => stored,
        Err(e) => return with_audit(fhir_error(&e), audit),
    };
    let patient: Value = stored
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    let (nhs, hint) = patient_identity(&patient);
    let Some(nhs) = nhs else {
        return with_audit(
            plain_outcome(
                422,
                IssueType::BusinessRule,
                "this Patient has no valid NHS number identifier, so its registered practice cannot be asked",
            ),
            audit,
        );
    };
    let (response, audit) = assemble(
        &state,
        &ctx,
        nhs,
        query.practice.or(hint),
        &query.sections,
        audit,
    )
    .await;
    with_audit(response, audit)
}

/// The response, carrying what the request did for its audit record
/// ([`crate::audited::record_request`]).
fn with_audit(mut response: Response, audit: RequestAudit) -> Response {
    response.extensions_mut().insert(audit);
    response
}

pub async fn by_identifier(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    Extension(principal): Extension<Principal>,
) -> Response {
    let ctx = context(&state, &headers, &principal);
    let query = match parse_query(query.as_deref()) {
        Ok(q) => q,
        Err(message) => return invalid(&message),
    };
    let Some(identifier) = &query.identifier else {
        return invalid(
            "Patient/$record needs identifier=https://fhir.nhs.uk/Id/nhs-number|{NHS number}",
        );
    };
    let nhs = match identifier.split_once('|') {
        Some((NHS_NUMBER_SYSTEM, value)) => NhsNumber::parse(value),
        _ => {
            return invalid(&format!(
                "identifier must be {NHS_NUMBER_SYSTEM}|{{NHS number}}"
            ));
        }
    };
    let Ok(nhs) = nhs else {
        return invalid("the identifier is not a valid NHS number (10 digits, Modulus 11)");
    };
    let mut audit = RequestAudit::new("$record");
    audit.patient_by_identifier(NHS_NUMBER_SYSTEM, nhs.as_str());
    let (response, audit) =
        assemble(&state, &ctx, nhs, query.practice, &query.sections, audit).await;
    with_audit(response, audit)
}

/// The record of `nhs` as the caller may see it: the registered practice is found, the access
/// policy decides on the patient and each section (the same decision as the web UI's record
/// page, [`keel_core::fhir::FhirService::decide_record`]), only the permitted sections are
/// asked for, and the decision is applied to the answer (sections not permitted are withheld
/// with the reason, sensitive entries taken out).
async fn assemble(
    state: &AppState,
    ctx: &RequestContext,
    nhs: NhsNumber,
    hint: Option<OdsCode>,
    sections: &[RecordSection],
    audit: RequestAudit,
) -> (Response, RequestAudit) {
    let Some(directory) = &state.directory else {
        let response = json_response(
            422,
            &OperationOutcome::new()
                .error(
                    IssueType::NotSupported,
                    "no practices are connected to this server",
                )
                .with_details("Connect practices first (keel serve --connections FILE).")
                .to_json(),
        );
        return (response, audit);
    };
    let practice = match directory.registered_practice(ctx, nhs, hint).await {
        Ok(practice) => practice,
        Err(e) => return (integration_error(&e), audit),
    };
    let fhir = state.fhir.clone();
    let decide_ctx = ctx.clone();
    let decide_practice = practice.clone();
    let asked = sections.to_vec();
    let mut audit = audit;
    let decided = tokio::task::spawn_blocking(move || {
        let access = fhir.decide_record(&decide_ctx, Some(&decide_practice), &asked, &mut audit);
        (access, audit)
    })
    .await;
    let (access, audit) = match decided {
        Ok(decided) => decided,
        Err(e) => {
            let response = plain_outcome(
                500,
                IssueType::Exception,
                &format!("the decision failed: {e}"),
            );
            return (response, RequestAudit::new("$record"));
        }
    };
    let access = match access {
        Ok(access) => access,
        Err(e) => return (refused(&e), audit),
    };
    if let Access::Refused { reasons } = &access.demographics {
        let refusal = FhirError::Forbidden {
            what: "you may not see this patient's record".into(),
            reasons: reasons
                .iter()
                .map(|r| (r.as_code().to_string(), r.words().to_string()))
                .collect(),
        };
        return (refused(&refusal), audit);
    }
    let response = match directory
        .record_at(ctx, &practice, nhs, &access.permitted_sections())
        .await
    {
        Ok(record) => json_bytes_response(
            200,
            crate::record_fhir::record_bundle_then_free(access.apply(record)),
        ),
        Err(e) => integration_error(&e),
    };
    (response, audit)
}

fn integration_error(error: &RecordError) -> Response {
    let (status, outcome) = record_error(error);
    json_response(status, &outcome.to_json())
}

/// A refusal (or a failed decision) with the outcome its audit record is to carry.
fn refused(error: &FhirError) -> Response {
    let mut response = fhir_error(error);
    response.extensions_mut().insert(audit_outcome(error));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_parse_repeated_or_comma_separated_and_unknown_ones_are_named() {
        let q = parse_query(Some(
            "section=problems,allergies&section=problems&section=documents",
        ))
        .expect("valid");
        assert_eq!(
            q.sections,
            [
                RecordSection::Problems,
                RecordSection::Allergies,
                RecordSection::Documents
            ]
        );
        let all = parse_query(None).expect("valid");
        assert_eq!(all.sections.len(), RecordSection::ALL.len());
        let err = parse_query(Some("section=everything"))
            .err()
            .expect("refused");
        assert!(
            err.contains("everything") && err.contains("medications"),
            "{err}"
        );
        assert!(parse_query(Some("sort=date")).is_err());
        assert!(parse_query(Some("practice=!!")).is_err());
    }

    #[test]
    fn identity_comes_from_the_nhs_number_identifier_and_the_gp_ods_code() {
        let patient = serde_json::json!({
            "resourceType": "Patient",
            "identifier": [{"system": "urn:other", "value": "x"},
                           {"system": NHS_NUMBER_SYSTEM, "value": "9990000018"}],
            "generalPractitioner": [{"identifier": {"system": ODS_SYSTEM, "value": "Y90001"}}],
        });
        let (nhs, practice) = patient_identity(&patient);
        assert_eq!(
            nhs.map(|n| n.as_str().to_string()).as_deref(),
            Some("9990000018")
        );
        assert_eq!(
            practice.map(|p| p.as_str().to_string()).as_deref(),
            Some("Y90001")
        );
        assert_eq!(patient_identity(&serde_json::json!({})), (None, None));
    }
}
