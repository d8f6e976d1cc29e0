//! IM1-style access: the paired application's id on every request, and a session token from
//! a practice user's login.

use std::collections::HashMap;

use axum::http::HeaderMap;

use super::error::{ApiError, ErrorCode};
use super::guid::Guid;

/// The one application paired with the simulator (as an IM1 pairing issues an application id).
pub const APPLICATION_ID: &str = "5D1B7E2A-3C4F-4A8B-9E6D-0F1A2B3C4D5E";
pub const APPLICATION_HEADER: &str = "x-emis-application-id";
pub const SESSION_HEADER: &str = "x-emis-session-token";

/// An open session: a user (staff index) at a practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub practice: usize,
    pub user: usize,
}

/// The open sessions, by token.
#[derive(Debug, Default)]
pub struct Sessions {
    by_token: HashMap<Guid, Session>,
    opened: u32,
}

impl Sessions {
    /// Opens a session; its token is the GUID named `session-{n}`.
    pub fn open(&mut self, session: Session) -> Guid {
        self.opened += 1;
        let token = Guid::named(&format!("session-{}", self.opened));
        self.by_token.insert(token, session);
        token
    }

    pub fn get(&self, token: Guid) -> Option<Session> {
        self.by_token.get(&token).copied()
    }
}

/// Checks the application id header.
pub fn check_application(headers: &HeaderMap) -> Result<(), ApiError> {
    let paired = Guid::parse(APPLICATION_ID);
    match headers.get(APPLICATION_HEADER).map(|v| v.to_str()) {
        None => Err(ApiError::new(
            ErrorCode::UnknownApplication,
            "the X-Emis-Application-Id header is missing",
        )),
        Some(Ok(v)) if Guid::parse(v.trim()).is_some() && Guid::parse(v.trim()) == paired => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::UnknownApplication,
            "the application is not paired with this system",
        )),
    }
}

/// The session token header, as a GUID.
pub fn token(headers: &HeaderMap) -> Result<Guid, ApiError> {
    let Some(v) = headers.get(SESSION_HEADER) else {
        return Err(ApiError::new(
            ErrorCode::InvalidSession,
            "the X-Emis-Session-Token header is missing",
        ));
    };
    v.to_str()
        .ok()
        .and_then(|s| Guid::parse(s.trim()))
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidSession, "the session token is not valid"))
}
