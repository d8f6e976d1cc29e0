//! One audit record: who did what, to which patients, why, when, with what outcome.
//!
//! Canonical encoding: the record is serialised with `serde_json` in the declaration order of
//! the fields below (structs, never maps, so the order cannot vary), compact, UTF-8. Absent
//! optional parts are written as `null`, so every record has the same keys. The bytes are what
//! the store keeps and what the hash chain covers; changing a field's name or order is a new
//! encoding and needs a new chain (or a version marker), never a silent change.

use crate::context::{Actor, CorrelationId, PurposeOfUse, RequestContext};
use keel_model::{Instant, OdsCode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When it happened.
    pub when: Instant,
    /// Who: the user (id and role) or system client.
    pub actor: Actor,
    /// The organisation the actor acted for (the selected role's organisation).
    pub organisation: Option<OdsCode>,
    /// What was done and to what.
    pub subject: Subject,
    /// Why.
    pub purpose: PurposeOfUse,
    pub outcome: AuditOutcome,
    /// The version of the access policy that decided (see `policy::Decision`); `None` when
    /// the request failed before a decision.
    pub policy_version: Option<String>,
    pub correlation_id: CorrelationId,
    /// Set when the request stated a break-glass.
    pub break_glass: Option<BreakGlass>,
    /// Set when the request carried an automated recommendation.
    pub recommendation: Option<AutomatedRecommendation>,
}

/// What was done, to which patients and resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The function or interaction, e.g. `read`, `search-type`, `$everything`, `export`.
    pub interaction: String,
    /// Patient references (`Patient/123`) the request touched.
    pub patients: Vec<String>,
    /// Resource references (`Observation/9/_history/2`) or types searched.
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum AuditOutcome {
    Permit,
    Deny { reason: String },
    Error { message: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlass {
    pub reason: String,
    /// Did it grant access the request would otherwise not have had (flagged and alerted)?
    pub used: bool,
}

/// The inputs and the rule or model version of an automated recommendation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutomatedRecommendation {
    pub inputs: Vec<String>,
    pub rule_version: String,
}

/// The record could not be encoded (cannot happen for these types; kept typed, not unwrapped).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the audit record: {0}")]
pub struct EncodeError(#[from] serde_json::Error);

impl AuditRecord {
    /// A record of `subject` done under `ctx` at `when`, without policy version, break-glass or
    /// recommendation.
    pub fn new(
        ctx: &RequestContext,
        when: Instant,
        subject: Subject,
        outcome: AuditOutcome,
    ) -> Self {
        AuditRecord {
            when,
            actor: ctx.actor.clone(),
            organisation: ctx.organisation.clone(),
            subject,
            purpose: ctx.purpose,
            outcome,
            policy_version: None,
            correlation_id: ctx.correlation_id.clone(),
            break_glass: None,
            recommendation: None,
        }
    }

    /// The canonical bytes (see the module documentation).
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        Ok(serde_json::to_vec(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_encoding_has_a_fixed_field_order() {
        let ctx = RequestContext {
            actor: Actor::User {
                user_id: "555021935107".into(),
                role_code: "R8000".into(),
                activity_codes: Vec::new(),
            },
            organisation: Some(OdsCode::parse("A81001").expect("ods")),
            purpose: PurposeOfUse::DirectCare,
            correlation_id: CorrelationId::parse("req-1").expect("id"),
            break_glass: None,
        };
        let mut record = AuditRecord::new(
            &ctx,
            Instant::parse("2026-01-02T03:04:05Z").expect("instant"),
            Subject {
                interaction: "read".into(),
                patients: vec!["Patient/p1".into()],
                resources: vec!["Patient/p1".into()],
            },
            AuditOutcome::Deny {
                reason: "no legitimate relationship".into(),
            },
        );
        record.policy_version = Some("2026-01".into());
        record.break_glass = Some(BreakGlass {
            reason: "unconscious in A&E".into(),
            used: true,
        });
        let text = String::from_utf8(record.canonical_bytes().expect("encode")).expect("utf-8");
        assert_eq!(
            text,
            r#"{"when":"2026-01-02T03:04:05Z","actor":{"kind":"user","user_id":"555021935107","role_code":"R8000"},"organisation":"A81001","subject":{"interaction":"read","patients":["Patient/p1"],"resources":["Patient/p1"]},"purpose":"direct-care","outcome":{"result":"deny","reason":"no legitimate relationship"},"policy_version":"2026-01","correlation_id":"req-1","break_glass":{"reason":"unconscious in A&E","used":true},"recommendation":null}"#
        );
    }
}
