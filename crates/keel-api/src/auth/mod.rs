//! Authentication at the HTTP edge, on every route but health, `/metrics` and the FHIR
//! CapabilityStatement (`GET /fhir/metadata`, which clients read to discover the server before
//! they hold a token; it carries no patient data).
//!
//! A request carries `Authorization: Bearer <JWT>`; [`TokenVerifier`] checks it and
//! [`claims`] turns its claims into a [`Principal`]: a CIS2 user (actor, role, activity codes,
//! the selected role's organisation) or a system client with SMART scopes. The purpose of use
//! is the `X-Purpose-Of-Use` header, else the token's `purpose_of_use` claim, else direct care.
//! A break-glass is stated with `X-Break-Glass-Reason` (the reason, printable ASCII) and
//! `X-Break-Glass-Until` (a FHIR instant); the policy decides whether it is valid.
//! A missing or refused token is a 401 OperationOutcome (`security`/`login`) with
//! `WWW-Authenticate: Bearer`. [`Authentication::Disabled`] (the binary's
//! `--insecure-no-auth`) lets every request through as local development.

mod claims;
mod jwks_url;
mod key_set;
mod verified_tokens;
mod verifier;

pub use claims::purpose_from_code;
pub use jwks_url::fetch_jwks;
pub use key_set::{KeySet, KeySetError};
pub use verifier::{TokenError, TokenVerifier};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use keel_core::policy::BreakGlass;
use keel_core::{Actor, CorrelationId, PurposeOfUse, RequestContext};
use keel_model::{IssueType, OdsCode};
use std::sync::Arc;

use crate::AppState;
use crate::fhir_http::plain_outcome;

/// How requests are authenticated.
pub enum Authentication {
    /// A valid bearer token is required.
    Required(TokenVerifier),
    /// Every request is local development: only for loopback development servers.
    Disabled,
}

/// Who the request is from, as established by its token.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub actor: Actor,
    pub organisation: Option<OdsCode>,
    pub purpose: PurposeOfUse,
    /// The break-glass stated with the request, if any.
    pub break_glass: Option<BreakGlass>,
}

impl Principal {
    fn local_development() -> Principal {
        Principal {
            actor: Actor::LocalDevelopment,
            organisation: None,
            purpose: PurposeOfUse::DirectCare,
            break_glass: None,
        }
    }

    /// An unauthenticated client reading the CapabilityStatement: a system client with no scopes,
    /// so nothing it could reach beyond discovery is permitted.
    fn discovery() -> Principal {
        Principal {
            actor: Actor::System {
                client_id: "anonymous-discovery".into(),
                scopes: Vec::new(),
            },
            organisation: None,
            purpose: PurposeOfUse::Operations,
            break_glass: None,
        }
    }

    /// The request context of a request from this principal.
    pub fn context(&self, correlation_id: CorrelationId) -> RequestContext {
        RequestContext {
            actor: self.actor.clone(),
            organisation: self.organisation.clone(),
            purpose: self.purpose,
            correlation_id,
            break_glass: self.break_glass.clone(),
        }
    }
}

const PURPOSE_HEADER: &str = "x-purpose-of-use";
const BREAK_GLASS_REASON_HEADER: &str = "x-break-glass-reason";
const BREAK_GLASS_UNTIL_HEADER: &str = "x-break-glass-until";

/// Middleware: authenticates the request and hands its [`Principal`] to the handler as a
/// request extension, or answers 401 (400 for an unknown `X-Purpose-Of-Use`).
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let is_discovery = request.method() == axum::http::Method::GET
        && request.uri().path().trim_end_matches('/') == "/fhir/metadata";
    let principal = match &state.authentication {
        Authentication::Disabled => Principal::local_development(),
        Authentication::Required(_) if is_discovery => Principal::discovery(),
        Authentication::Required(verifier) => {
            let Ok(purpose) = requested_purpose(request.headers()) else {
                return plain_outcome(
                    400,
                    IssueType::Invalid,
                    "X-Purpose-Of-Use must be one of direct-care, administration, secondary-use, operations",
                );
            };
            let break_glass = match stated_break_glass(request.headers()) {
                Ok(stated) => stated,
                Err(why) => return plain_outcome(400, IssueType::Invalid, why),
            };
            let verified = match bearer_token(request.headers()) {
                Ok(token) => verifier.verify_fetching_keys(token).await,
                Err(missing) => Err(missing),
            };
            match verified.and_then(|claims| claims.principal(purpose)) {
                Ok(principal) => Principal {
                    break_glass,
                    ..principal
                },
                Err(error) => return unauthorised(&error),
            }
        }
    };
    request.extensions_mut().insert(principal);
    next.run(request).await
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, TokenError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(TokenError::Missing)
}

/// The purpose `X-Purpose-Of-Use` states, if the header is there; `Err` when it names none.
fn requested_purpose(headers: &HeaderMap) -> Result<Option<PurposeOfUse>, ()> {
    let Some(value) = headers.get(PURPOSE_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(purpose_from_code)
        .map(Some)
        .ok_or(())
}

/// The break-glass the request states, if it states one; `Err` says what is malformed.
fn stated_break_glass(headers: &HeaderMap) -> Result<Option<BreakGlass>, &'static str> {
    let reason = headers.get(BREAK_GLASS_REASON_HEADER);
    let until = headers.get(BREAK_GLASS_UNTIL_HEADER);
    let (reason, until) = match (reason, until) {
        (None, None) => return Ok(None),
        (Some(reason), Some(until)) => (reason, until),
        _ => {
            return Err(
                "a break-glass needs both X-Break-Glass-Reason and X-Break-Glass-Until (a FHIR instant)",
            );
        }
    };
    let reason = reason
        .to_str()
        .map_err(|_| "X-Break-Glass-Reason must be printable ASCII text")?;
    let until = until
        .to_str()
        .ok()
        .and_then(|u| keel_fhir::datetime::parse_range(u).ok())
        .ok_or("X-Break-Glass-Until must be a FHIR instant, e.g. 2026-11-21T14:00:00Z")?;
    Ok(Some(BreakGlass {
        reason: reason.trim().to_string(),
        expires_at_millis: until.start,
    }))
}

/// 401 with an OperationOutcome and the RFC 6750 challenge: `error="invalid_token"` when a
/// token was presented and refused.
fn unauthorised(error: &TokenError) -> Response {
    let mut response = plain_outcome(401, IssueType::Login, &error.to_string());
    let challenge = match error {
        TokenError::Missing => HeaderValue::from_static("Bearer realm=\"keel\""),
        _ => HeaderValue::from_static("Bearer realm=\"keel\", error=\"invalid_token\""),
    };
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge);
    response
}
