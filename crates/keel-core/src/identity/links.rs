//! The person index across practices: pairs of stored Patients the matcher says are one
//! person, each kept as a Keel-owned FHIR `Linkage` (never a change to the Patients
//! themselves), with a status — linked, needs review, not linked — who decided it, why, the
//! probability and the evidence. A later decision is a new version of the same Linkage, so
//! every decision stays in its history.
//!
//! What the matcher proposes ([`propose_links`]): pairs of different practices at or above the
//! link threshold (or with the same verified NHS number) are linked; pairs between the review
//! and link thresholds, and every pair within one practice, go to review; a record linked to
//! two people of one practice sends those links to review (keel-identity's one-source rule).

use crate::identity::evidence_json::{MATCH_EVIDENCE_EXTENSION, round};
use crate::identity::grading::{MatchBasis, MatchGrade, grade_pair};
use crate::identity::patient_index::IndexedPatients;
use crate::store::StoredResource;
use keel_identity::{Decision, Evidence, Outcome, apply_one_source_rule};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

pub const IDENTITY_LINK_EXTENSION: &str =
    "https://keel.example/fhir/StructureDefinition/identity-link";

/// Who decides a link made by the matcher.
pub const MATCHER: &str = "matcher";

/// Candidates looked at per record when proposing links.
const CANDIDATES_PER_RECORD: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinkStatus {
    Linked,
    NeedsReview,
    NotLinked,
}

impl LinkStatus {
    pub fn code(self) -> &'static str {
        match self {
            LinkStatus::Linked => "linked",
            LinkStatus::NeedsReview => "needs-review",
            LinkStatus::NotLinked => "not-linked",
        }
    }

    pub fn parse(code: &str) -> Option<LinkStatus> {
        match code {
            "linked" => Some(LinkStatus::Linked),
            "needs-review" => Some(LinkStatus::NeedsReview),
            "not-linked" => Some(LinkStatus::NotLinked),
            _ => None,
        }
    }
}

/// A link the matcher proposes between two indexed people (`a < b`, index positions).
#[derive(Debug, Clone, PartialEq)]
pub struct ProposedLink {
    pub a: usize,
    pub b: usize,
    pub status: LinkStatus,
    pub basis: MatchBasis,
    pub probability: f64,
    pub same_practice: bool,
    pub evidence: Evidence,
}

/// Every link the matcher proposes over the indexed Patients, in (a, b) order (only pairs
/// sharing an NHS number when the model cannot weigh demographics).
pub fn propose_links(indexed: &IndexedPatients) -> Vec<ProposedLink> {
    let thresholds = indexed.index.thresholds();
    let demographics = indexed.demographics_usable();
    let mut pairs: BTreeMap<(usize, usize), Evidence> = BTreeMap::new();
    for (i, subject) in indexed.subjects() {
        for c in indexed
            .index
            .best_candidates(&subject.record, CANDIDATES_PER_RECORD)
        {
            if c.index != i && c.evidence.probability >= thresholds.review {
                pairs
                    .entry((i.min(c.index), i.max(c.index)))
                    .or_insert(c.evidence);
            }
        }
        if let Some(nhs) = &subject.nhs {
            for j in indexed.with_nhs_number(&nhs.number) {
                let j = j as usize;
                if j > i {
                    pairs.entry((i, j)).or_insert_with(|| {
                        indexed
                            .index
                            .compare(&subject.record, &indexed.subject(j).record)
                    });
                }
            }
        }
    }
    let mut sources: HashMap<&str, u32> = HashMap::new();
    let mut proposed = Vec::new();
    let mut decisions = Vec::new();
    for ((a, b), evidence) in pairs {
        let (sa, sb) = (indexed.subject(a), indexed.subject(b));
        let verified = sa.nhs.as_ref().is_some_and(|n| n.verified)
            || sb.nhs.as_ref().is_some_and(|n| n.verified);
        let Some((grade, basis, probability)) = grade_pair(sa, sb, verified, &evidence, thresholds)
        else {
            continue;
        };
        if basis == MatchBasis::Demographics && !demographics {
            continue;
        }
        let same_practice = sa.record.source == sb.record.source;
        let status = match grade {
            MatchGrade::Certain if !same_practice => LinkStatus::Linked,
            MatchGrade::Certain | MatchGrade::Probable => LinkStatus::NeedsReview,
            MatchGrade::Possible => continue,
        };
        let next = sources.len() as u32;
        let source_a = *sources.entry(sa.record.source.as_str()).or_insert(next);
        let next = sources.len() as u32;
        let source_b = *sources.entry(sb.record.source.as_str()).or_insert(next);
        decisions.push(Decision {
            a: a as u32,
            b: b as u32,
            source_a,
            source_b,
            outcome: if status == LinkStatus::Linked {
                Outcome::Linked
            } else {
                Outcome::NeedsReview
            },
        });
        proposed.push(ProposedLink {
            a,
            b,
            status,
            basis,
            probability,
            same_practice,
            evidence,
        });
    }
    apply_one_source_rule(&mut decisions);
    for (link, decision) in proposed.iter_mut().zip(&decisions) {
        if decision.outcome == Outcome::NeedsReview {
            link.status = LinkStatus::NeedsReview;
        }
    }
    proposed
}

/// The Linkage id of the pair of Patients `a` and `b` (in either order): one per pair, so
/// every decision on a pair is a version of one resource.
pub fn pair_id(a: &str, b: &str) -> String {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    let digest = Sha256::digest(format!("Patient/{x}|Patient/{y}").as_bytes());
    let hex: String = digest[..20].iter().map(|b| format!("{b:02x}")).collect();
    format!("pair-{hex}")
}

/// One pair of the person index as stored (one version of its Linkage).
#[derive(Debug, Clone, PartialEq)]
pub struct PatientLink {
    pub id: String,
    pub version: u64,
    /// When this decision was recorded (ms since the epoch).
    pub recorded_at: i64,
    /// The two Patient ids, in order.
    pub patients: (String, String),
    pub status: LinkStatus,
    /// `matcher`, or the person who decided (user, role, organisation).
    pub decided_by: String,
    pub reason: String,
    pub probability: f64,
    pub same_practice: bool,
    /// The `match-evidence` extension.
    pub evidence: Value,
}

impl PatientLink {
    pub fn decided_by_matcher(&self) -> bool {
        self.decided_by == MATCHER
    }

    /// The Linkage resource (without `id` and `meta`, which the store sets).
    pub fn to_linkage(&self) -> Value {
        json!({
            "resourceType": "Linkage",
            "id": self.id,
            "extension": [{
                "url": IDENTITY_LINK_EXTENSION,
                "extension": [
                    {"url": "status", "valueCode": self.status.code()},
                    {"url": "decidedBy", "valueString": self.decided_by},
                    {"url": "reason", "valueString": self.reason},
                    {"url": "probability", "valueDecimal": round(self.probability)},
                    {"url": "samePractice", "valueBoolean": self.same_practice},
                    self.evidence,
                ]
            }],
            "active": self.status == LinkStatus::Linked,
            "item": [
                {"type": "source", "resource": {"reference": format!("Patient/{}", self.patients.0)}},
                {"type": "alternate", "resource": {"reference": format!("Patient/{}", self.patients.1)}},
            ]
        })
    }

    /// A stored Linkage version read back; `None` if it is not one of the person index's.
    pub fn from_stored(stored: &StoredResource) -> Option<PatientLink> {
        let body: Value = serde_json::from_str(stored.body.as_deref()?).ok()?;
        let ext = body["extension"]
            .as_array()?
            .iter()
            .find(|e| e["url"] == IDENTITY_LINK_EXTENSION)?;
        let parts = ext["extension"].as_array()?;
        let part = |url: &str| parts.iter().find(|p| p["url"] == url);
        let text = |url: &str, key: &str| {
            part(url)
                .and_then(|p| p[key].as_str())
                .unwrap_or_default()
                .to_string()
        };
        let patient = |i: usize| {
            body["item"][i]["resource"]["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("Patient/"))
                .map(str::to_string)
        };
        Some(PatientLink {
            id: stored.id.clone(),
            version: stored.version,
            recorded_at: stored.last_updated,
            patients: (patient(0)?, patient(1)?),
            status: LinkStatus::parse(&text("status", "valueCode"))?,
            decided_by: text("decidedBy", "valueString"),
            reason: text("reason", "valueString"),
            probability: part("probability")
                .and_then(|p| p["valueDecimal"].as_f64())
                .unwrap_or_default(),
            same_practice: part("samePractice")
                .and_then(|p| p["valueBoolean"].as_bool())
                .unwrap_or_default(),
            evidence: part(MATCH_EVIDENCE_EXTENSION)
                .cloned()
                .unwrap_or(Value::Null),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteMethod;
    use std::sync::Arc;

    #[test]
    fn one_id_per_pair_in_either_order() {
        assert_eq!(pair_id("a", "b"), pair_id("b", "a"));
        assert_ne!(pair_id("a", "b"), pair_id("a", "c"));
        assert!(pair_id("x", "y").len() <= 64);
    }

    #[test]
    fn a_link_survives_the_linkage_round_trip() {
        let link = PatientLink {
            id: pair_id("p1", "p2"),
            version: 3,
            recorded_at: 1_700_000_000_000,
            patients: ("p1".into(), "p2".into()),
            status: LinkStatus::NotLinked,
            decided_by: "user 555021935107 (R8000) at Y90001".into(),
            reason: "twins: same address and birth date".into(),
            probability: 0.97,
            same_practice: true,
            evidence: json!({"url": MATCH_EVIDENCE_EXTENSION, "extension": []}),
        };
        let stored = StoredResource {
            resource_type: "Linkage".into(),
            id: link.id.clone(),
            version: 3,
            last_updated: 1_700_000_000_000,
            body: Some(Arc::from(link.to_linkage().to_string())),
            method: WriteMethod::Update,
        };
        assert_eq!(PatientLink::from_stored(&stored), Some(link));
    }
}
