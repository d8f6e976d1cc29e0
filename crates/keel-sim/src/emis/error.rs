//! The API's error answer: an HTTP status and
//! `<Error xmlns="…"><Code>…</Code><Message>…</Message></Error>`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::xml::XmlOut;

/// The media type of every answer.
pub const XML_CONTENT_TYPE: &str = "application/xml; charset=utf-8";

/// The error codes of the API (the `<Code>` element).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 401: no `X-Emis-Application-Id`, or not the paired application.
    UnknownApplication,
    /// 401: login with a user who is not on the practice's staff.
    InvalidCredentials,
    /// 401: no `X-Emis-Session-Token`, or not a session of this application.
    InvalidSession,
    /// 403: a session of another practice.
    WrongOrganisation,
    /// 404: no EMIS-style practice with this ODS code.
    PracticeNotFound,
    /// 404: no such patient at the practice.
    PatientNotFound,
    /// 404: no such record section, document or route.
    NotFound,
    /// 405: the route exists for another method.
    MethodNotAllowed,
    /// 400: the request is malformed or misses a mandatory field.
    InvalidRequest,
    /// 409: a client request id reused with a different request.
    RequestIdConflict,
    /// 413: a body over the size limit.
    RequestTooLarge,
    /// 500: the answer could not be written.
    InternalError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownApplication => "UnknownApplication",
            ErrorCode::InvalidCredentials => "InvalidCredentials",
            ErrorCode::InvalidSession => "InvalidSession",
            ErrorCode::WrongOrganisation => "WrongOrganisation",
            ErrorCode::PracticeNotFound => "PracticeNotFound",
            ErrorCode::PatientNotFound => "PatientNotFound",
            ErrorCode::NotFound => "NotFound",
            ErrorCode::MethodNotAllowed => "MethodNotAllowed",
            ErrorCode::InvalidRequest => "InvalidRequest",
            ErrorCode::RequestIdConflict => "RequestIdConflict",
            ErrorCode::RequestTooLarge => "RequestTooLarge",
            ErrorCode::InternalError => "InternalError",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::UnknownApplication
            | ErrorCode::InvalidCredentials
            | ErrorCode::InvalidSession => StatusCode::UNAUTHORIZED,
            ErrorCode::WrongOrganisation => StatusCode::FORBIDDEN,
            ErrorCode::PracticeNotFound | ErrorCode::PatientNotFound | ErrorCode::NotFound => {
                StatusCode::NOT_FOUND
            }
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::RequestIdConflict => StatusCode::CONFLICT,
            ErrorCode::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    pub fn internal(e: &std::io::Error) -> ApiError {
        ApiError::new(
            ErrorCode::InternalError,
            format!("the answer could not be written: {e}"),
        )
    }

    /// The `<Error>` document.
    pub fn body(&self) -> Vec<u8> {
        let written = XmlOut::new(256).and_then(|mut x| {
            x.root("Error", &[])?;
            x.text("Code", &[], self.code.as_str())?;
            x.text("Message", &[], &self.message)?;
            x.end("Error")?;
            Ok(x.finish())
        });
        // Writing to memory does not fail; keep an answer even if it did.
        written.unwrap_or_else(|_| self.code.as_str().as_bytes().to_vec())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        xml_response(self.code.status(), self.body())
    }
}

/// An XML answer with `status`.
pub fn xml_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(XML_CONTENT_TYPE),
    );
    resp
}
