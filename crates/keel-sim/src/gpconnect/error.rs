//! Error answers: GP Connect OperationOutcomes (reference sheet §3.5) and the Spine Secure
//! Proxy's own error shape (no Spine code) for what the proxy rejects.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::fhir_response;

pub const SPINE_ERROR_SYSTEM: &str =
    "https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1";
const OPERATION_OUTCOME_PROFILE: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1";

/// A failed request: the HTTP status and the OperationOutcome answered.
#[derive(Debug, Clone)]
pub struct GpcError {
    pub status: StatusCode,
    pub body: Value,
}

impl GpcError {
    /// A provider error with a Spine error code.
    fn spine(
        status: StatusCode,
        code: &str,
        spine: &str,
        display: &str,
        diagnostics: &str,
    ) -> Self {
        GpcError {
            status,
            body: json!({
                "resourceType": "OperationOutcome",
                "meta": {"profile": [OPERATION_OUTCOME_PROFILE]},
                "issue": [{
                    "severity": "error",
                    "code": code,
                    "details": {"coding": [{
                        "system": SPINE_ERROR_SYSTEM,
                        "code": spine,
                        "display": display,
                    }]},
                    "diagnostics": diagnostics,
                }],
            }),
        }
    }

    /// An error raised by the Spine Secure Proxy: issue code and diagnostics only.
    fn proxy(status: StatusCode, code: &str, diagnostics: &str) -> Self {
        GpcError {
            status,
            body: json!({
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
            }),
        }
    }

    pub fn bad_request(diagnostics: &str) -> Self {
        Self::spine(
            StatusCode::BAD_REQUEST,
            "invalid",
            "BAD_REQUEST",
            "Bad request",
            diagnostics,
        )
    }

    pub fn invalid_nhs_number(diagnostics: &str) -> Self {
        Self::spine(
            StatusCode::BAD_REQUEST,
            "value",
            "INVALID_NHS_NUMBER",
            "NHS number invalid",
            diagnostics,
        )
    }

    pub fn invalid_identifier_system(diagnostics: &str) -> Self {
        Self::spine(
            StatusCode::BAD_REQUEST,
            "value",
            "INVALID_IDENTIFIER_SYSTEM",
            "Invalid identifier system",
            diagnostics,
        )
    }

    pub fn patient_not_found(diagnostics: &str) -> Self {
        Self::spine(
            StatusCode::NOT_FOUND,
            "not-found",
            "PATIENT_NOT_FOUND",
            "Patient record not found",
            diagnostics,
        )
    }

    pub fn organisation_not_found(diagnostics: &str) -> Self {
        Self::spine(
            StatusCode::NOT_FOUND,
            "not-found",
            "ORGANISATION_NOT_FOUND",
            "Organisation record not found",
            diagnostics,
        )
    }

    pub fn no_record_found(diagnostics: &str) -> Self {
        Self::spine(
            StatusCode::NOT_FOUND,
            "not-found",
            "NO_RECORD_FOUND",
            "No record found",
            diagnostics,
        )
    }

    pub fn duplicate_rejected(diagnostics: &str) -> Self {
        Self::spine(
            StatusCode::CONFLICT,
            "duplicate",
            "DUPLICATE_REJECTED",
            "Create would lead to creation of a duplicate resource",
            diagnostics,
        )
    }

    /// A stale `If-Match` version (modelled Spine code, see the module docs).
    pub fn version_conflict(diagnostics: &str) -> Self {
        Self::spine(
            StatusCode::CONFLICT,
            "conflict",
            "CONFLICT",
            "Version conflict",
            diagnostics,
        )
    }

    pub fn invalid_resource(diagnostics: &str) -> Self {
        Self::spine(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "INVALID_RESOURCE",
            "Submitted resource is not valid",
            diagnostics,
        )
    }

    pub fn invalid_parameter(diagnostics: &str) -> Self {
        Self::spine(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "INVALID_PARAMETER",
            "Submitted parameter is not valid",
            diagnostics,
        )
    }

    pub fn reference_not_found(diagnostics: &str) -> Self {
        Self::spine(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "REFERENCE_NOT_FOUND",
            "Referenced resource not found",
            diagnostics,
        )
    }

    pub fn not_implemented(diagnostics: &str) -> Self {
        Self::spine(
            StatusCode::NOT_IMPLEMENTED,
            "not-supported",
            "NOT_IMPLEMENTED",
            "FHIR resource or operation not implemented at server",
            diagnostics,
        )
    }

    /// 403 `ACCESS DENIED`: the capability is not enabled at this practice.
    pub fn access_denied(diagnostics: &str) -> Self {
        Self::spine(
            StatusCode::FORBIDDEN,
            "forbidden",
            "ACCESS DENIED",
            "Access denied",
            diagnostics,
        )
    }

    /// The proxy's 403: the ASID check failed.
    pub fn forbidden(diagnostics: &str) -> Self {
        Self::proxy(StatusCode::FORBIDDEN, "forbidden", diagnostics)
    }

    /// The proxy's 405: an HTTP verb the interaction does not have.
    pub fn method_not_allowed(diagnostics: &str) -> Self {
        Self::proxy(StatusCode::METHOD_NOT_ALLOWED, "not-supported", diagnostics)
    }

    /// The proxy's 415: a media type other than FHIR JSON.
    pub fn unsupported_media_type(diagnostics: &str) -> Self {
        Self::proxy(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            diagnostics,
        )
    }

    pub fn into_response(self) -> Response {
        let bytes = serde_json::to_vec(&self.body).unwrap_or_default();
        fhir_response(self.status, bytes, None)
    }
}
