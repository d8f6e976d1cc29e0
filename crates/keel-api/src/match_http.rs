//! `POST /fhir/Patient/$match` (FHIR R4 operation Patient-match): reads the input Parameters,
//! asks the core, and answers a `searchset` Bundle of the matching Patients, best first, each
//! with `search.score`, the `match-grade` extension and Keel's `match-evidence` extension (the
//! matcher's evidence field by field; see docs/identity.md).

use crate::AppState;
use crate::fhir_http::{FhirRequest, text_response};
use axum::response::Response;
use keel_core::FhirError;
use keel_core::audit::RequestAudit;
use keel_core::fhir::{DEFAULT_MATCH_COUNT, MatchRequest, MatchResult, PatientMatch};
use keel_core::identity::evidence_json::{evidence_extension, round};
use keel_model::{IssueType, OperationOutcome};
use serde_json::{Value, json};

pub const MATCH_GRADE_EXTENSION: &str = "http://hl7.org/fhir/StructureDefinition/match-grade";

pub(crate) fn match_patients(
    state: &AppState,
    req: &FhirRequest,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("$match");
    let request = parse_parameters(&req.body)?;
    let result = state.fhir.match_patients(&req.ctx, &request, audit)?;
    Ok(text_response(200, searchset(&req.base, &result)))
}

/// The operation's input: `resource` (a Patient, required), `onlyCertainMatches` (boolean),
/// `count` (positive integer). Anything else is refused, naming it.
fn parse_parameters(body: &[u8]) -> Result<MatchRequest, FhirError> {
    let parameters: Value = serde_json::from_slice(body).map_err(|e| {
        FhirError::BadRequest(format!(
            "the $match body is not JSON: {e}; send a Parameters resource"
        ))
    })?;
    if parameters["resourceType"] != "Parameters" {
        return Err(FhirError::BadRequest(
            "$match takes a Parameters resource with a `resource` parameter holding the Patient"
                .into(),
        ));
    }
    let mut request = MatchRequest {
        resource: Value::Null,
        only_certain: false,
        count: DEFAULT_MATCH_COUNT,
    };
    let empty = Vec::new();
    for p in parameters["parameter"].as_array().unwrap_or(&empty) {
        match p["name"].as_str().unwrap_or_default() {
            "resource" => request.resource = p["resource"].clone(),
            "onlyCertainMatches" => {
                request.only_certain = p["valueBoolean"].as_bool().ok_or_else(|| {
                    FhirError::BadRequest("onlyCertainMatches must be a valueBoolean".into())
                })?;
            }
            "count" => {
                let count = p["valueInteger"]
                    .as_u64()
                    .or_else(|| p["valuePositiveInt"].as_u64())
                    .ok_or_else(|| {
                        FhirError::BadRequest("count must be a positive valueInteger".into())
                    })?;
                request.count = usize::try_from(count).unwrap_or(usize::MAX);
            }
            other => {
                return Err(FhirError::BadRequest(format!(
                    "$match has no parameter '{other}'; it takes resource, onlyCertainMatches and count"
                )));
            }
        }
    }
    if request.resource.is_null() {
        return Err(FhirError::BadRequest(
            "$match needs the `resource` parameter: the Patient to find".into(),
        ));
    }
    Ok(request)
}

fn searchset(base: &str, result: &MatchResult) -> String {
    let mut entries: Vec<String> = result
        .matches
        .iter()
        .filter_map(|m| {
            let body = m.patient.body.as_ref()?;
            Some(format!(
                r#"{{"fullUrl":{},"resource":{body},"search":{}}}"#,
                Value::String(format!("{base}/Patient/{}", m.patient.id)),
                search_element(m)
            ))
        })
        .collect();
    if result.demographics_unavailable {
        let outcome = OperationOutcome::new().warning(
            IssueType::Incomplete,
            "only NHS numbers were matched: the model trained from the stored Patients cannot \
             weigh names and dates of birth yet (too few records of one person twice to learn \
             from); a Patient without a matching NHS number may still be stored",
        );
        entries.push(format!(
            r#"{{"resource":{},"search":{{"mode":"outcome"}}}}"#,
            outcome.to_json()
        ));
    }
    if result.ambiguous_certain > 0 {
        let outcome = OperationOutcome::new().information(
            IssueType::MultipleMatches,
            format!(
                "{} Patients match with certainty, so none is returned with onlyCertainMatches; \
                 ask without it to see them graded, and choose",
                result.ambiguous_certain
            ),
        );
        entries.push(format!(
            r#"{{"resource":{},"search":{{"mode":"outcome"}}}}"#,
            outcome.to_json()
        ));
    }
    format!(
        r#"{{"resourceType":"Bundle","type":"searchset","total":{},"entry":[{}]}}"#,
        result.matches.len(),
        entries.join(",")
    )
}

fn search_element(m: &PatientMatch) -> Value {
    json!({
        "extension": [
            {"url": MATCH_GRADE_EXTENSION, "valueCode": m.grade.code()},
            evidence_extension(m.basis.code(), &m.evidence),
        ],
        "mode": "match",
        "score": round(m.score),
    })
}
