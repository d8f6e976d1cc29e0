//! The request context every core service call takes: who is asking, for which organisation,
//! why, and the correlation id that ties logs, audit and responses together.

use crate::policy::BreakGlass;
use keel_model::OdsCode;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Who is making the request. Serialised (for audit records) with a `kind` tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Actor {
    /// A person, identified by their user id and the role they selected, with that role's
    /// national RBAC activity codes (`B0570`).
    User {
        user_id: String,
        role_code: String,
        /// Decided on, not audited: the audit record names the role.
        #[serde(skip)]
        activity_codes: Vec<String>,
    },
    /// A module or other system client, with its SMART v2-style scopes as granted.
    System {
        client_id: String,
        /// Decided on, not audited: the audit record names the client.
        #[serde(skip)]
        scopes: Vec<String>,
    },
    /// Local development with access control not yet configured. Only the HTTP edge's
    /// development mode and the CLI's offline commands (import) construct it.
    LocalDevelopment,
}

/// Why the data is being used. Direct care and secondary uses are treated differently by
/// opt-outs and data minimisation. Serialised as its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PurposeOfUse {
    DirectCare,
    Administration,
    SecondaryUse,
    Operations,
}

impl PurposeOfUse {
    pub fn as_code(self) -> &'static str {
        match self {
            PurposeOfUse::DirectCare => "direct-care",
            PurposeOfUse::Administration => "administration",
            PurposeOfUse::SecondaryUse => "secondary-use",
            PurposeOfUse::Operations => "operations",
        }
    }
}

/// An opaque id that correlates everything one request caused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CorrelationId(String);

impl<'de> Deserialize<'de> for CorrelationId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CorrelationId::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("not a log-safe correlation id"))
    }
}

impl CorrelationId {
    /// Accepts a caller-supplied id if it is short and printable, so it is safe in logs.
    pub fn parse(value: &str) -> Option<CorrelationId> {
        let ok = !value.is_empty()
            && value.len() <= 128
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        ok.then(|| CorrelationId(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Mandatory argument of every core service call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub actor: Actor,
    pub organisation: Option<OdsCode>,
    pub purpose: PurposeOfUse,
    pub correlation_id: CorrelationId,
    /// A break-glass the requester stated (reason and until when); the policy decides whether
    /// it is valid, and any use of it is flagged in the audit record and alerted.
    pub break_glass: Option<BreakGlass>,
}

impl RequestContext {
    /// The context the edge builds while access control is not configured.
    pub fn local_development(correlation_id: CorrelationId) -> RequestContext {
        RequestContext {
            actor: Actor::LocalDevelopment,
            organisation: None,
            purpose: PurposeOfUse::DirectCare,
            correlation_id,
            break_glass: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_are_log_safe() {
        assert!(CorrelationId::parse("abc-123_x.y:z").is_some());
        assert!(CorrelationId::parse("").is_none());
        assert!(CorrelationId::parse("a b").is_none());
        assert!(CorrelationId::parse("a\nb").is_none());
        assert!(CorrelationId::parse(&"x".repeat(129)).is_none());
    }
}
