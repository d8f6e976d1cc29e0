//! The API's one error shape: `{"Error":{"Code":"PatientNotFound","Message":"..."}}` with the
//! HTTP status beside it. Every error the simulator answers — authentication, routing,
//! validation — has this shape (the fault layer's injected errors are shaped by its own
//! config; tests pass [`error_body`] there).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answer of the TPP-style API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TppError {
    pub status: StatusCode,
    /// Stable machine-readable code (the table in the module docs of [`crate::tpp`]).
    pub code: &'static str,
    pub message: String,
}

impl TppError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        TppError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 401: missing or wrong application id or session token.
    pub fn unauthorised(message: impl Into<String>) -> Self {
        TppError::new(StatusCode::UNAUTHORIZED, "AuthenticationFailed", message)
    }

    /// 404: the organisation unit is unknown or does not run this system.
    pub fn unit_not_found(unit: &str) -> Self {
        TppError::new(
            StatusCode::NOT_FOUND,
            "UnitNotFound",
            format!("No organisation unit '{unit}' on this system"),
        )
    }

    /// 404: no such patient at this unit.
    pub fn patient_not_found() -> Self {
        TppError::new(
            StatusCode::NOT_FOUND,
            "PatientNotFound",
            "No patient with this RowIdentifier at this organisation unit",
        )
    }

    /// 404: no such item (document) for this patient.
    pub fn item_not_found(what: &str) -> Self {
        TppError::new(
            StatusCode::NOT_FOUND,
            "ItemNotFound",
            format!("No {what} with this RowIdentifier for this patient"),
        )
    }

    /// 404: no such endpoint.
    pub fn no_route() -> Self {
        TppError::new(StatusCode::NOT_FOUND, "NoSuchEndpoint", "No such endpoint")
    }

    /// 405: the endpoint exists but not for this method.
    pub fn method_not_allowed() -> Self {
        TppError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "This endpoint does not accept this method",
        )
    }

    /// 400: a query parameter or path segment that cannot be understood.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        TppError::new(StatusCode::BAD_REQUEST, "InvalidRequest", message)
    }

    /// 400: the body is not a JSON object.
    pub fn malformed_body(message: impl Into<String>) -> Self {
        TppError::new(StatusCode::BAD_REQUEST, "MalformedRequest", message)
    }

    /// 413: the body is larger than the API accepts.
    pub fn too_large(message: impl Into<String>) -> Self {
        TppError::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLarge", message)
    }

    /// 422: a mandatory field is missing or empty.
    pub fn missing_field(field: &str) -> Self {
        TppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "MissingField",
            format!("'{field}' is mandatory"),
        )
    }

    /// 422: a field has a value of the wrong type or form.
    pub fn invalid_value(field: &str, why: &str) -> Self {
        TppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidValue",
            format!("'{field}': {why}"),
        )
    }

    /// 422: a code scheme this system does not hold.
    pub fn unknown_code_scheme(field: &str, scheme: &str) -> Self {
        TppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UnknownCodeScheme",
            format!("'{field}': unknown code scheme '{scheme}' (expected CTV3 or SNOMED)"),
        )
    }

    /// 422: a code not in this system's dictionary.
    pub fn unknown_code(field: &str, scheme: &str, code: &str) -> Self {
        TppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UnknownCode",
            format!("'{field}': {scheme} code '{code}' is not in the dictionary"),
        )
    }

    /// 422: a field this write does not take.
    pub fn unknown_field(field: &str) -> Self {
        TppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UnknownField",
            format!("'{field}' is not a field of this request"),
        )
    }

    /// The body of this error.
    pub fn body(&self) -> Value {
        error_body(self.code, &self.message)
    }
}

/// `{"Error":{"Code":code,"Message":message}}`.
pub fn error_body(code: &str, message: &str) -> Value {
    json!({"Error": {"Code": code, "Message": message}})
}

impl IntoResponse for TppError {
    fn into_response(self) -> Response {
        let bytes = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut resp = (self.status, bytes).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}
