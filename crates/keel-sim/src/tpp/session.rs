//! The modelled IM1 session: every call carries the paired application's id and a session
//! token, and the session decides whether confidential (sensitive) entries are visible.
//!
//! Real IM1 pairing issues an application id per assured product and a session per logged-on
//! user; the simulator models that with one paired application and two fixed sessions, so
//! tests and the CLI need no logon call.

use axum::http::HeaderMap;

use super::error::TppError;

/// Header carrying the paired application's id.
pub const APPLICATION_HEADER: &str = "X-TPP-Application-Id";
/// Header carrying the user's session token.
pub const SESSION_HEADER: &str = "X-TPP-Session-Token";

/// The one paired application.
pub const APPLICATION_ID: &str = "KEEL-SIM-PAIRED-APP";
/// A session whose user lacks the "sensitive data" permission: confidential entries withheld.
pub const STANDARD_SESSION: &str = "session-standard-user";
/// A session whose user holds the "sensitive data" permission: confidential entries shown.
pub const SENSITIVE_SESSION: &str = "session-sensitive-user";

/// The user behind a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// Recorded as `EnteredBy` on what the session writes.
    pub user: &'static str,
    pub sees_confidential: bool,
}

/// The session of a request, or 401 when the application id or token is missing or wrong.
pub fn authenticate(headers: &HeaderMap) -> Result<Session, TppError> {
    let app = headers
        .get(APPLICATION_HEADER)
        .ok_or_else(|| TppError::unauthorised(format!("{APPLICATION_HEADER} is missing")))?;
    if app.as_bytes() != APPLICATION_ID.as_bytes() {
        return Err(TppError::unauthorised(
            "The application is not paired with this system",
        ));
    }
    let token = headers
        .get(SESSION_HEADER)
        .ok_or_else(|| TppError::unauthorised(format!("{SESSION_HEADER} is missing")))?;
    match token.as_bytes() {
        t if t == STANDARD_SESSION.as_bytes() => Ok(Session {
            user: "Standard User",
            sees_confidential: false,
        }),
        t if t == SENSITIVE_SESSION.as_bytes() => Ok(Session {
            user: "Sensitive Data User",
            sees_confidential: true,
        }),
        _ => Err(TppError::unauthorised(
            "The session token is not valid or has expired",
        )),
    }
}
