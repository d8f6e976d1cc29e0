//! What one request did, gathered while it runs and made into its one audit record at the end.

use super::record::{AuditOutcome, AuditRecord, BreakGlass, Subject};
use crate::context::RequestContext;
use crate::fhir::IdempotencyKey;
use crate::policy::Decision;
use keel_model::Instant;
use std::collections::BTreeSet;

/// The audit note of one request. The edge creates it with the interaction, the core notes the
/// patients and resources touched and the decisions taken, and the edge records it once — unless
/// the core already recorded it inside a write transaction.
#[derive(Debug, Clone, Default)]
pub struct RequestAudit {
    interaction: String,
    patients: BTreeSet<String>,
    resources: Vec<String>,
    policy_version: Option<String>,
    break_glass_used: bool,
    recorded: Option<u64>,
    /// The request's idempotency key: its write, the record of its response and this audit
    /// record commit together.
    idempotency_key: Option<IdempotencyKey>,
}

impl RequestAudit {
    pub fn new(interaction: impl Into<String>) -> RequestAudit {
        RequestAudit {
            interaction: interaction.into(),
            ..RequestAudit::default()
        }
    }

    pub fn set_idempotency_key(&mut self, key: IdempotencyKey) {
        self.idempotency_key = Some(key);
    }

    pub fn idempotency_key(&self) -> Option<&IdempotencyKey> {
        self.idempotency_key.as_ref()
    }

    pub fn interaction(&self) -> &str {
        &self.interaction
    }

    pub fn set_interaction(&mut self, interaction: impl Into<String>) {
        self.interaction = interaction.into();
    }

    /// A patient the request touched, by id.
    pub fn patient(&mut self, id: &str) {
        self.patients.insert(format!("Patient/{id}"));
    }

    /// A patient the request named by an identifier (an NHS number), not by a stored id:
    /// recorded as `Patient?identifier=system|value`.
    pub fn patient_by_identifier(&mut self, system: &str, value: &str) {
        self.patients
            .insert(format!("Patient?identifier={system}|{value}"));
    }

    /// A resource (`Type/id`, `Type/id/_history/n`) or a type searched.
    pub fn resource(&mut self, reference: String) {
        if !self.resources.contains(&reference) {
            self.resources.push(reference);
        }
    }

    pub fn patients(&self) -> impl Iterator<Item = &str> {
        self.patients.iter().map(String::as_str)
    }

    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// A policy decision taken for the request; a break-glass decision flags the record.
    pub fn decided(&mut self, decision: &Decision) {
        self.policy_version = Some(decision.policy_version.clone());
        self.break_glass_used |= decision.obligations.flagged_audit_and_alert;
    }

    /// The policy the request was decided under (also when nothing needed a decision).
    pub fn policy(&mut self, version: &str) {
        if self.policy_version.is_none() {
            self.policy_version = Some(version.to_string());
        }
    }

    /// Did break-glass grant access for this request?
    pub fn break_glass_used(&self) -> bool {
        self.break_glass_used
    }

    /// The record has been appended (inside a write transaction) as `sequence`.
    pub fn mark_recorded(&mut self, sequence: u64) {
        self.recorded = Some(sequence);
    }

    pub fn recorded(&self) -> Option<u64> {
        self.recorded
    }

    /// The audit record of the request under `ctx`, at `when`, with `outcome`. A stated
    /// break-glass is part of the record whether or not it was needed or valid.
    pub fn to_record(
        &self,
        ctx: &RequestContext,
        when: Instant,
        outcome: AuditOutcome,
    ) -> AuditRecord {
        let mut record = AuditRecord::new(
            ctx,
            when,
            Subject {
                interaction: self.interaction.clone(),
                patients: self.patients.iter().cloned().collect(),
                resources: self.resources.clone(),
            },
            outcome,
        );
        record.policy_version = self.policy_version.clone();
        record.break_glass = ctx.break_glass.as_ref().map(|b| BreakGlass {
            reason: b.reason.clone(),
            used: self.break_glass_used,
        });
        record
    }
}
