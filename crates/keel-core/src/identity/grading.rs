//! How sure a `$match` candidate is: the NHS number first, then the probabilistic matcher.
//!
//! - Two different NHS numbers are two people: such a candidate is never a match, whatever
//!   the demographics say.
//! - The same NHS number, verified on the query, with a date of birth that does not disagree,
//!   is `certain` (score 1).
//! - Otherwise the Fellegi–Sunter probability decides: at or above the link threshold
//!   `certain`, at or above the review threshold `probable`, at or above [`POSSIBLE`]
//!   `possible`; below, not a candidate. The same NHS number with a disagreeing date of birth
//!   is at most `probable`: someone must look.

use crate::identity::patient_index::IndexedPatients;
use crate::identity::patient_record::MatchSubject;
use keel_identity::{Evidence, Field, Thresholds};
use std::collections::BTreeMap;

/// The lowest probability reported as a `possible` match.
pub const POSSIBLE: f64 = 0.1;

/// How many of the best-scoring people the matcher proposes per query.
const POOL: usize = 100;

/// FHIR's match-grade (http://hl7.org/fhir/StructureDefinition/match-grade), less
/// `certainly-not`, which is never returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchGrade {
    Certain,
    Probable,
    Possible,
}

impl MatchGrade {
    pub fn code(self) -> &'static str {
        match self {
            MatchGrade::Certain => "certain",
            MatchGrade::Probable => "probable",
            MatchGrade::Possible => "possible",
        }
    }
}

/// What a grade rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchBasis {
    /// The same verified NHS number.
    NhsNumber,
    /// The probabilistic matcher's score of the demographics.
    Demographics,
}

impl MatchBasis {
    pub fn code(self) -> &'static str {
        match self {
            MatchBasis::NhsNumber => "nhs-number",
            MatchBasis::Demographics => "demographics",
        }
    }
}

/// One graded candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Graded {
    /// Position in the index ([`IndexedPatients::subject`]).
    pub position: usize,
    pub grade: MatchGrade,
    pub basis: MatchBasis,
    /// 1 for an NHS number match, else the matcher's probability.
    pub score: f64,
    pub evidence: Evidence,
}

/// Every candidate for `query` worth reporting (only NHS number matches when the model cannot
/// weigh demographics: [`IndexedPatients::demographics_usable`]), best first: by score, then by match weight
/// (probabilities close to 1 round to 1, and an NHS number match scores 1 whatever the rest
/// says), then by Patient id.
pub fn grade_candidates(indexed: &IndexedPatients, query: &MatchSubject) -> Vec<Graded> {
    let mut evidence: BTreeMap<usize, Evidence> = indexed
        .index
        .best_candidates(&query.record, POOL)
        .into_iter()
        .map(|c| (c.index, c.evidence))
        .collect();
    if let Some(nhs) = &query.nhs {
        for position in indexed.with_nhs_number(&nhs.number) {
            let position = position as usize;
            evidence.entry(position).or_insert_with(|| {
                indexed
                    .index
                    .compare(&query.record, &indexed.subject(position).record)
            });
        }
    }
    let thresholds = indexed.index.thresholds();
    let verified = query.nhs.as_ref().is_some_and(|n| n.verified);
    let demographics = indexed.demographics_usable();
    let mut graded: Vec<Graded> = evidence
        .into_iter()
        .filter_map(|(position, evidence)| {
            let stored = &indexed.subject(position);
            let (grade, basis, score) = grade_pair(query, stored, verified, &evidence, thresholds)?;
            if basis == MatchBasis::Demographics && !demographics {
                return None;
            }
            Some(Graded {
                position,
                grade,
                basis,
                score,
                evidence,
            })
        })
        .collect();
    graded.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.evidence.match_weight.total_cmp(&a.evidence.match_weight))
            .then_with(|| {
                indexed
                    .subject(a.position)
                    .record
                    .id
                    .cmp(&indexed.subject(b.position).record.id)
            })
    });
    graded
}

/// The grade of two records with `evidence` between them; `verified` says whether the NHS
/// number relied on is verified. `None`: not a match worth reporting (different NHS numbers,
/// or a probability below [`POSSIBLE`]).
pub fn grade_pair(
    a: &MatchSubject,
    b: &MatchSubject,
    verified: bool,
    evidence: &Evidence,
    thresholds: Thresholds,
) -> Option<(MatchGrade, MatchBasis, f64)> {
    let same_number = match (&a.nhs, &b.nhs) {
        (Some(x), Some(y)) if x.number != y.number => return None,
        (Some(_), Some(_)) => true,
        _ => false,
    };
    let birth_disagrees = evidence.field(Field::BirthDate).level == 0;
    if same_number && verified && !birth_disagrees {
        return Some((MatchGrade::Certain, MatchBasis::NhsNumber, 1.0));
    }
    let p = evidence.probability;
    let mut grade = if p >= thresholds.link {
        MatchGrade::Certain
    } else if p >= thresholds.review {
        MatchGrade::Probable
    } else if p >= POSSIBLE {
        MatchGrade::Possible
    } else {
        return None;
    };
    if same_number && birth_disagrees {
        grade = grade.max(MatchGrade::Probable);
    }
    Some((grade, MatchBasis::Demographics, p))
}
