//! The person index and its review queue over the store (see [`crate::identity::links`]):
//! scanning the stored Patients for links, listing pairs, deciding on one, and a pair's
//! decision history. Every call takes the request context and notes the patients it touched.

use super::FhirService;
use super::write::Written;
use crate::audit::RequestAudit;
use crate::context::{Actor, RequestContext};
use crate::error::{FhirError, FhirResult};
use crate::identity::evidence_json::evidence_extension;
use crate::identity::links::{LinkStatus, MATCHER, PatientLink, pair_id, propose_links};
use crate::policy::Function;
use crate::store::{StoreRead, StoredResource};
use std::collections::BTreeMap;

/// Linkage versions read per store call.
const PAGE: usize = 10_000;

/// The most decisions a pair's history shows (newest first).
pub const MAX_DECISIONS_SHOWN: usize = 1_000;

/// What a scan changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanSummary {
    /// Pairs the matcher proposed.
    pub proposed: usize,
    /// Pairs recorded or changed as linked, and as needing review.
    pub linked: usize,
    pub needs_review: usize,
    /// Matcher links no longer proposed, recorded as not linked.
    pub withdrawn: usize,
    /// Pairs a person decided, left as they decided.
    pub kept_decisions: usize,
}

impl Written for ScanSummary {
    fn written(&self) -> Option<&StoredResource> {
        None
    }
}

impl Written for PatientLink {
    fn written(&self) -> Option<&StoredResource> {
        None
    }
}

/// Which pairs to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkFilter {
    pub status: Option<LinkStatus>,
    /// Only pairs with this Patient.
    pub patient: Option<String>,
}

impl FhirService {
    /// Proposes links over every stored Patient and records them: new and changed proposals
    /// are written, matcher links no longer proposed become not linked, and a pair a person
    /// decided is left as decided. Covers the whole store, so only a system client or local
    /// development runs it.
    pub fn scan_person_index(
        &self,
        ctx: &RequestContext,
        audit: &mut RequestAudit,
    ) -> FhirResult<ScanSummary> {
        audit.resource("Linkage".to_string());
        if matches!(ctx.actor, Actor::User { .. }) {
            return Err(FhirError::Forbidden {
                what: "the person-index scan reads every Patient in the store: a system client or an operator runs it, not a user".into(),
                reasons: Vec::new(),
            });
        }
        let mut reader = self.store.reader()?;
        let indexed = self.patient_index.current(&mut *reader)?;
        let existing = current_links(&mut *reader)?;
        drop(reader);
        let proposals = propose_links(&indexed);
        let mut summary = ScanSummary {
            proposed: proposals.len(),
            ..ScanSummary::default()
        };
        let mut wanted: BTreeMap<String, PatientLink> = BTreeMap::new();
        for p in &proposals {
            let (a, b) = (
                &indexed.subject(p.a).record.id,
                &indexed.subject(p.b).record.id,
            );
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            let id = pair_id(a, b);
            wanted.insert(
                id.clone(),
                PatientLink {
                    id,
                    version: 0,
                    recorded_at: 0,
                    patients: (a.clone(), b.clone()),
                    status: p.status,
                    decided_by: MATCHER.into(),
                    reason: if p.same_practice {
                        "the matcher found two records at one practice: never linked without review"
                            .into()
                    } else {
                        format!("the matcher proposed this pair ({})", p.basis.code())
                    },
                    probability: p.probability,
                    same_practice: p.same_practice,
                    evidence: evidence_extension(p.basis.code(), &p.evidence),
                },
            );
        }
        let mut writes = Vec::new();
        for (id, link) in &wanted {
            match existing.get(id) {
                Some(current) if !current.decided_by_matcher() => summary.kept_decisions += 1,
                Some(current) if current.status == link.status => {}
                _ => {
                    match link.status {
                        LinkStatus::Linked => summary.linked += 1,
                        _ => summary.needs_review += 1,
                    }
                    writes.push(link.clone());
                }
            }
        }
        for (id, current) in &existing {
            if current.decided_by_matcher()
                && current.status != LinkStatus::NotLinked
                && !wanted.contains_key(id)
            {
                summary.withdrawn += 1;
                writes.push(PatientLink {
                    status: LinkStatus::NotLinked,
                    reason: "the matcher no longer proposes this pair".into(),
                    ..current.clone()
                });
            }
        }
        for link in &writes {
            audit.patient(&link.patients.0);
            audit.patient(&link.patients.1);
        }
        self.in_audited_transaction(ctx, audit, |tx, _| {
            for link in writes {
                let checked = self.check("Linkage", link.to_linkage())?;
                self.update_in(tx, "Linkage", &link.id, checked, None)?;
            }
            Ok(summary)
        })
    }

    /// The person index's pairs, newest decision first: those whose two Patients the actor
    /// may both read (others are neither listed nor counted).
    pub fn identity_links(
        &self,
        ctx: &RequestContext,
        filter: &LinkFilter,
        audit: &mut RequestAudit,
    ) -> FhirResult<Vec<PatientLink>> {
        audit.resource("Linkage".to_string());
        let mut reader = self.store.reader()?;
        let view = self.view(ctx, audit)?;
        if let Some(decision) = view.decide_in_general(Function::ReadDemographics) {
            audit.decided(&decision);
            if !decision.is_permit() {
                return Err(crate::access::forbidden(
                    "the person index shows patients' demographics",
                    &decision,
                ));
            }
        }
        let mut links: Vec<PatientLink> = current_links(&mut *reader)?
            .into_values()
            .filter(|l| filter.status.is_none_or(|s| l.status == s))
            .filter(|l| {
                filter
                    .patient
                    .as_ref()
                    .is_none_or(|p| &l.patients.0 == p || &l.patients.1 == p)
            })
            .collect();
        links.sort_by(|a, b| b.recorded_at.cmp(&a.recorded_at).then(a.id.cmp(&b.id)));
        let mut visible = Vec::new();
        for link in links {
            if self.may_read_both(&view, &mut *reader, &link, audit)? {
                visible.push(link);
            }
        }
        Ok(visible)
    }

    /// A person's decision on a pair: `Linked` or `NotLinked`, with a reason. Recorded as a new
    /// version of the pair's Linkage (who, when, why), so it supersedes earlier decisions and
    /// can itself be superseded; history keeps them all.
    pub fn decide_identity_link(
        &self,
        ctx: &RequestContext,
        id: &str,
        status: LinkStatus,
        reason: &str,
        audit: &mut RequestAudit,
    ) -> FhirResult<PatientLink> {
        audit.resource(format!("Linkage/{id}"));
        if status == LinkStatus::NeedsReview {
            return Err(FhirError::BadRequest(
                "a decision is linked or not-linked; needs-review is what the matcher proposes"
                    .into(),
            ));
        }
        if reason.trim().is_empty() {
            return Err(FhirError::BadRequest(
                "a decision needs a reason: say why these records are (or are not) one person"
                    .into(),
            ));
        }
        let decided_by = match &ctx.actor {
            Actor::User {
                user_id, role_code, ..
            } => format!(
                "user {user_id} ({role_code}) at {}",
                ctx.organisation
                    .as_ref()
                    .map_or("no organisation", |o| o.as_str())
            ),
            Actor::LocalDevelopment => "local development".to_string(),
            Actor::System { .. } => {
                return Err(FhirError::Forbidden {
                    what: "a link decision is a person's: a system client cannot make it".into(),
                    reasons: Vec::new(),
                });
            }
        };
        let mut reader = self.store.reader()?;
        let view = self.view(ctx, audit)?;
        if let Some(decision) = view.decide_in_general(Function::WriteRecordEntries) {
            audit.decided(&decision);
            if !decision.is_permit() {
                return Err(crate::access::forbidden(
                    "deciding whether two records are one person",
                    &decision,
                ));
            }
        }
        let current = reader
            .read("Linkage", id)?
            .as_ref()
            .and_then(PatientLink::from_stored)
            .ok_or_else(|| FhirError::NotFound {
                resource_type: "Linkage".into(),
                id: id.into(),
            })?;
        if !self.may_read_both(&view, &mut *reader, &current, audit)? {
            return Err(FhirError::NotFound {
                resource_type: "Linkage".into(),
                id: id.into(),
            });
        }
        drop(reader);
        let decided = PatientLink {
            status,
            decided_by,
            reason: reason.trim().to_string(),
            ..current
        };
        self.in_audited_transaction(ctx, audit, |tx, _| {
            let checked = self.check("Linkage", decided.to_linkage())?;
            let written = self.update_in(tx, "Linkage", id, checked, Some(decided.version))?;
            Ok(PatientLink {
                version: written.resource.version,
                recorded_at: written.resource.last_updated,
                ..decided
            })
        })
    }

    /// Every decision on one pair, newest first.
    pub fn identity_link_history(
        &self,
        ctx: &RequestContext,
        id: &str,
        audit: &mut RequestAudit,
    ) -> FhirResult<Vec<PatientLink>> {
        let links = self.identity_links(ctx, &LinkFilter::default(), audit)?;
        audit.resource(format!("Linkage/{id}"));
        if !links.iter().any(|l| l.id == id) {
            return Err(FhirError::NotFound {
                resource_type: "Linkage".into(),
                id: id.into(),
            });
        }
        let mut reader = self.store.reader()?;
        let current = reader.read("Linkage", id)?.map_or(0, |c| c.version);
        let mut decisions = Vec::new();
        for version in (1..=current).rev().take(MAX_DECISIONS_SHOWN) {
            if let Some(link) = reader
                .read_version("Linkage", id, version)?
                .as_ref()
                .and_then(PatientLink::from_stored)
            {
                decisions.push(link);
            }
        }
        Ok(decisions)
    }

    /// May the actor read both Patients of `link`? Notes them (and the decisions) when so.
    fn may_read_both(
        &self,
        view: &crate::access::AccessView,
        reader: &mut dyn StoreRead,
        link: &PatientLink,
        audit: &mut RequestAudit,
    ) -> FhirResult<bool> {
        let mut found = Vec::new();
        for id in [&link.patients.0, &link.patients.1] {
            let Some(patient) = reader.read("Patient", id)?.filter(|p| !p.is_deleted()) else {
                return Ok(false);
            };
            match view.decide_read(reader, &self.indexer, &patient) {
                Ok(permit) => found.push((patient, permit)),
                Err(e @ (FhirError::Store(_) | FhirError::AuditUnavailable(_))) => return Err(e),
                Err(_) => return Ok(false),
            }
        }
        for (patient, permit) in found {
            self.note(audit, &patient);
            if let Some(decision) = &permit.decision {
                audit.decided(decision);
            }
        }
        Ok(true)
    }
}

/// The current version of every person-index Linkage, by id.
fn current_links(reader: &mut dyn StoreRead) -> FhirResult<BTreeMap<String, PatientLink>> {
    let head = reader.version_head()?;
    let mut latest: BTreeMap<String, StoredResource> = BTreeMap::new();
    let mut from = 0;
    loop {
        let page = reader.versions_between("Linkage", from, head, PAGE)?;
        for v in &page {
            latest.insert(v.resource.id.clone(), v.resource.clone());
        }
        match page.last() {
            Some(last) if page.len() == PAGE => from = last.sequence,
            _ => break,
        }
    }
    Ok(latest
        .values()
        .filter_map(PatientLink::from_stored)
        .map(|l| (l.id.clone(), l))
        .collect())
}
