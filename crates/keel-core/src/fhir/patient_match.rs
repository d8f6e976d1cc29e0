//! `Patient/$match`: the store's Patients most likely to be the person described, graded, with
//! the matcher's evidence — only those the actor may read.

use super::FhirService;
use crate::audit::RequestAudit;
use crate::context::RequestContext;
use crate::error::{FhirError, FhirResult};
use crate::identity::{MatchBasis, MatchGrade, grade_candidates, query_subject};
use crate::store::StoredResource;
use keel_identity::Evidence;
use serde_json::Value;
use std::collections::HashMap;

/// Matches returned when the request does not say (`count`).
pub const DEFAULT_MATCH_COUNT: usize = 10;
/// The most matches one request may ask for.
pub const MAX_MATCH_COUNT: usize = 100;

/// A `$match` request (the operation's input parameters).
#[derive(Debug, Clone, PartialEq)]
pub struct MatchRequest {
    /// The Patient to match.
    pub resource: Value,
    /// Only a single certain match, or nothing.
    pub only_certain: bool,
    /// The most matches to return.
    pub count: usize,
}

/// One stored Patient that may be the person.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientMatch {
    /// As the actor may see it (redacted where the policy says).
    pub patient: StoredResource,
    pub grade: MatchGrade,
    pub basis: MatchBasis,
    pub score: f64,
    pub evidence: Evidence,
}

/// What `$match` found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MatchResult {
    /// Best first.
    pub matches: Vec<PatientMatch>,
    /// With `onlyCertainMatches`: how many certain matches were found when more than one was
    /// (then none is returned: the caller must choose, not Keel).
    pub ambiguous_certain: usize,
    /// The model trained from the store cannot weigh demographics (see
    /// [`crate::identity::IndexedPatients::demographics_usable`]): only NHS numbers matched.
    pub demographics_unavailable: bool,
}

impl FhirService {
    /// Builds (or brings up to date) the patient index `$match` uses — reading every stored
    /// Patient and training the model the first time — so that the first request does not
    /// wait for it. Returns how many Patients it holds; nothing about any of them. The server
    /// runs it at start (local development or system context); a user does not.
    pub fn prepare_patient_index(&self, ctx: &RequestContext) -> FhirResult<usize> {
        if matches!(ctx.actor, crate::context::Actor::User { .. }) {
            return Err(FhirError::Forbidden {
                what: "building the patient index is the server's own work".into(),
                reasons: Vec::new(),
            });
        }
        let mut reader = self.store.reader()?;
        Ok(self.patient_index.current(&mut *reader)?.people())
    }

    /// Whether the actor may ask PDS to resolve a patient's identity (`/api/identity/trace`):
    /// the same type-level decision as `$match`, a search of Patients (`read-demographics`).
    /// The decision is noted in the audit record.
    pub fn authorize_pds_trace(
        &self,
        ctx: &RequestContext,
        audit: &mut RequestAudit,
    ) -> FhirResult<()> {
        audit.resource("Patient/$trace".to_string());
        let view = self.view(ctx, audit)?;
        if let Some(decision) = view.check_type("Patient")? {
            audit.decided(&decision);
        }
        Ok(())
    }

    /// `Patient/$match`. Candidates come from the person index over the whole store (the model
    /// is trained on every Patient), but only Patients the actor may read are returned or
    /// counted, and only those are noted in the audit record.
    pub fn match_patients(
        &self,
        ctx: &RequestContext,
        request: &MatchRequest,
        audit: &mut RequestAudit,
    ) -> FhirResult<MatchResult> {
        audit.resource("Patient/$match".to_string());
        if !(1..=MAX_MATCH_COUNT).contains(&request.count) {
            return Err(FhirError::BadRequest(format!(
                "count must be between 1 and {MAX_MATCH_COUNT}, not {}",
                request.count
            )));
        }
        let query = query_subject(&request.resource)?;
        let mut reader = self.store.reader()?;
        let view = self.view(ctx, audit)?;
        if let Some(decision) = view.check_type("Patient")? {
            audit.decided(&decision);
        }
        let indexed = self.patient_index.current(&mut *reader)?;
        let mut result = MatchResult {
            demographics_unavailable: !indexed.demographics_usable(),
            ..MatchResult::default()
        };
        let mut visible = Vec::new();
        for graded in grade_candidates(&indexed, &query) {
            let certain = graded.grade == MatchGrade::Certain;
            if visible.len() >= request.count && !certain {
                continue;
            }
            let subject = &indexed.subject(graded.position);
            let Some(found) = reader
                .read("Patient", &subject.record.id)?
                .filter(|f| !f.is_deleted())
            else {
                continue;
            };
            let permit = match view.decide_read(&mut *reader, &self.indexer, &found) {
                Ok(permit) => permit,
                Err(e @ (FhirError::Store(_) | FhirError::AuditUnavailable(_))) => return Err(e),
                // Not the actor's to see: neither returned nor counted.
                Err(_) => continue,
            };
            visible.push((graded, subject.record.source.clone(), found, permit));
        }
        // A record never links to two people of one practice without review.
        let mut certain_by_source: HashMap<&str, usize> = HashMap::new();
        for (g, source, ..) in &visible {
            if g.grade == MatchGrade::Certain {
                *certain_by_source.entry(source.as_str()).or_default() += 1;
            }
        }
        let shared: Vec<String> = certain_by_source
            .into_iter()
            .filter(|&(_, n)| n > 1)
            .map(|(s, _)| s.to_string())
            .collect();
        for (g, source, ..) in &mut visible {
            if g.grade == MatchGrade::Certain && shared.contains(source) {
                g.grade = MatchGrade::Probable;
            }
        }
        if request.only_certain {
            visible.retain(|(g, ..)| g.grade == MatchGrade::Certain);
            if visible.len() > 1 {
                result.ambiguous_certain = visible.len();
                visible.clear();
            }
        }
        visible.truncate(request.count);
        for (graded, _, found, permit) in visible {
            self.note(audit, &found);
            if let Some(decision) = &permit.decision {
                audit.decided(decision);
            }
            result.matches.push(PatientMatch {
                patient: view.prepare(found),
                grade: graded.grade,
                basis: graded.basis,
                score: graded.score,
                evidence: graded.evidence,
            });
        }
        Ok(result)
    }
}
