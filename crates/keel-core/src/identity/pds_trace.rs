//! Identity resolution against the national Personal Demographics Service (PDS): the NHS number
//! is the principal identifier when present and verified; PDS is asked whether it is current
//! (a superseded number is followed to the surviving record); a record without a verified
//! number, or whose demographics disagree with PDS for its number, is traced by a PDS search.
//!
//! The core does no I/O: PDS is reached through the [`PdsService`] port, implemented by the PDS
//! adapter in keel-integrations. Outcomes never guess: a trace is confident only when a
//! non-fuzzy search (every criterion matched exactly by PDS, score 1.0) finds one person and
//! nothing Keel compares disagrees; several results, a fuzzy result or a disagreement go to a
//! person to review; PDS not answering is [`TraceOutcome::Unavailable`], never "no match".
//! Every candidate carries its evidence: how PDS found it, PDS's score, and each field's
//! agreement with the record.

use super::patient_record::{NhsNumberClaim, query_subject};
use crate::context::RequestContext;
use crate::error::FhirResult;
use crate::integration::{BoxFuture, IntegrationError};
use keel_identity::{PersonRecord, Sex};
use keel_model::NhsNumber;
use keel_model::record::Demographics;
use serde_json::Value;

/// Results a trace asks PDS for (`_max-results`); more than this is "too many matches", which
/// goes to review rather than being narrowed by guesswork.
pub const TRACE_MAX_RESULTS: u8 = 10;

/// A patient as PDS holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct PdsPatient {
    pub demographics: Demographics,
    /// PDS restricts the patient (S-flag or very restricted): it withheld their location (and,
    /// for very restricted, name and birth date), which are never filled from elsewhere.
    pub restricted: bool,
}

/// PDS's answer to a retrieve by NHS number.
#[derive(Debug, Clone, PartialEq)]
pub enum PdsRetrieval {
    Current(PdsPatient),
    /// The number asked for was merged into another: the surviving record.
    Superseded(PdsPatient),
    NotFound,
    Invalidated,
}

/// A PDS demographic search (a trace's, or a person's search in the web UI).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PdsTraceQuery {
    /// Left out of the query when empty (a given name with gender and postcode can stand in).
    pub family: String,
    pub given: Option<String>,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    pub gender: Option<String>,
    pub postcode: Option<String>,
    /// PDS `_fuzzy-match`: Soundex, transposed names and history.
    pub fuzzy: bool,
    pub max_results: u8,
}

/// PDS's answer to a search.
#[derive(Debug, Clone, PartialEq)]
pub enum PdsSearchAnswer {
    /// Best first, each with PDS's score (1.0 = exact).
    Matches(Vec<(PdsPatient, f64)>),
    /// More matched than `_max-results`.
    TooManyMatches,
}

/// The port to PDS.
pub trait PdsService: Send + Sync {
    fn retrieve<'a>(
        &'a self,
        ctx: &'a RequestContext,
        nhs_number: NhsNumber,
    ) -> BoxFuture<'a, Result<PdsRetrieval, IntegrationError>>;

    fn search<'a>(
        &'a self,
        ctx: &'a RequestContext,
        query: &'a PdsTraceQuery,
    ) -> BoxFuture<'a, Result<PdsSearchAnswer, IntegrationError>>;
}

/// The record to resolve: what it claims and how it would be searched for.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSubject {
    pub nhs: Option<NhsNumberClaim>,
    /// Normalised, for comparison with what PDS holds.
    pub record: PersonRecord,
    /// The search criteria as the record gives them; `None` when it lacks a family name or a
    /// full birth date (PDS's minimum).
    pub search: Option<PdsTraceQuery>,
}

/// The record to resolve, from a FHIR Patient (the same reading as `$match`'s `resource`).
///
/// # Errors
/// [`crate::FhirError::BadRequest`] when it is not a Patient, has an invalid NHS number, or has
/// neither an NHS number nor a name and a birth date.
pub fn trace_subject(patient: &Value) -> FhirResult<TraceSubject> {
    let subject = query_subject(patient)?;
    let names = patient["name"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let name = names
        .iter()
        .find(|n| n["use"] == "official" || n["use"] == "usual")
        .or_else(|| names.first());
    let family = name.and_then(|n| n["family"].as_str()).map(str::trim);
    let given = name
        .and_then(|n| n.pointer("/given/0"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|g| !g.is_empty());
    let birth_date = patient["birthDate"].as_str().filter(|d| d.len() == 10);
    let addresses = patient["address"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let postcode = addresses
        .iter()
        .find(|a| a["use"] == "home")
        .or_else(|| addresses.first())
        .and_then(|a| a["postalCode"].as_str())
        .map(str::to_string);
    let gender = Some(subject.record.sex.code())
        .filter(|g| !g.is_empty())
        .map(str::to_string);
    let search = match (family.filter(|f| !f.is_empty()), birth_date) {
        (Some(family), Some(birth_date)) => Some(PdsTraceQuery {
            family: family.to_string(),
            given: given.map(str::to_string),
            birth_date: birth_date.to_string(),
            gender,
            postcode,
            fuzzy: false,
            max_results: TRACE_MAX_RESULTS,
        }),
        _ => None,
    };
    Ok(TraceSubject {
        nhs: subject.nhs,
        record: subject.record,
        search,
    })
}

/// How a candidate was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceBasis {
    /// PDS's record for the record's verified NHS number (or the record that superseded it).
    Retrieve,
    /// A non-fuzzy search: PDS matched every criterion exactly.
    ExactSearch,
    /// A fuzzy search (Soundex, transpositions, history).
    FuzzySearch,
}

impl TraceBasis {
    pub fn code(self) -> &'static str {
        match self {
            TraceBasis::Retrieve => "retrieve",
            TraceBasis::ExactSearch => "exact-search",
            TraceBasis::FuzzySearch => "fuzzy-search",
        }
    }
}

/// One field of the record compared with PDS's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    Agrees,
    Differs,
    /// Missing on either side (or withheld by PDS for a restricted patient).
    NotCompared,
}

impl Agreement {
    pub fn code(self) -> &'static str {
        match self {
            Agreement::Agrees => "agrees",
            Agreement::Differs => "differs",
            Agreement::NotCompared => "not-compared",
        }
    }
}

/// The fields compared, in order. A difference in any but the postcode (people move) is a
/// conflict.
pub const COMPARED_FIELDS: [&str; 6] = [
    "nhs_number",
    "family",
    "given",
    "birth_date",
    "gender",
    "postcode",
];

/// A person PDS proposes for the record, with the evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct PdsCandidate {
    pub patient: PdsPatient,
    pub basis: TraceBasis,
    /// PDS's search score; `None` for a retrieve.
    pub score: Option<f64>,
    /// One per [`COMPARED_FIELDS`] entry, in that order.
    pub fields: Vec<(&'static str, Agreement)>,
}

impl PdsCandidate {
    fn new(
        subject: &TraceSubject,
        patient: PdsPatient,
        basis: TraceBasis,
        score: Option<f64>,
    ) -> Self {
        let fields = compare(subject, &patient.demographics);
        PdsCandidate {
            patient,
            basis,
            score,
            fields,
        }
    }

    /// The NHS number PDS holds the person under.
    pub fn nhs_number(&self) -> Option<NhsNumber> {
        self.patient.demographics.nhs_number
    }

    /// Whether a field other than the postcode disagrees with the record.
    pub fn conflicts(&self) -> bool {
        self.fields
            .iter()
            .any(|&(name, a)| a == Agreement::Differs && name != "postcode")
    }
}

fn compare(subject: &TraceSubject, pds: &Demographics) -> Vec<(&'static str, Agreement)> {
    let theirs = national_record(pds);
    let ours = &subject.record;
    let text = |a: &str, b: &str| match (a.is_empty(), b.is_empty()) {
        (false, false) if a == b => Agreement::Agrees,
        (false, false) => Agreement::Differs,
        _ => Agreement::NotCompared,
    };
    let number = match (&subject.nhs, pds.nhs_number) {
        (Some(claim), Some(n)) => text(&claim.number, n.as_str()),
        _ => Agreement::NotCompared,
    };
    let birth = match (ours.birth_date_text(), theirs.birth_date_text()) {
        (Some(a), Some(b)) if a == b => Agreement::Agrees,
        (Some(_), Some(_)) => Agreement::Differs,
        _ => Agreement::NotCompared,
    };
    let sex = if ours.sex == Sex::Unknown || theirs.sex == Sex::Unknown {
        Agreement::NotCompared
    } else if ours.sex == theirs.sex {
        Agreement::Agrees
    } else {
        Agreement::Differs
    };
    vec![
        ("nhs_number", number),
        ("family", text(&ours.family, &theirs.family)),
        ("given", text(&ours.given, &theirs.given)),
        ("birth_date", birth),
        ("gender", sex),
        ("postcode", text(&ours.postcode, &theirs.postcode)),
    ]
}

/// PDS's demographics normalised as the matcher normalises a record.
fn national_record(pds: &Demographics) -> PersonRecord {
    let mut record = PersonRecord::new("")
        .with_family(pds.family.as_deref().unwrap_or(""))
        .with_given(pds.given.first().map_or("", String::as_str))
        .with_sex(pds.gender.as_deref().unwrap_or(""))
        .with_postcode(pds.postcode.as_deref().unwrap_or(""));
    if let Some(date) = &pds.birth_date {
        record = record.with_birth_date(date.as_str());
    }
    record
}

/// What PDS said of the record's verified NHS number.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberCheck {
    pub asked: NhsNumber,
    pub answer: NumberAnswer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberAnswer {
    Current,
    /// Merged into `by`: the record's number must be replaced by it.
    Superseded {
        by: NhsNumber,
    },
    NotFound,
    Invalidated,
}

impl NumberAnswer {
    pub fn code(self) -> &'static str {
        match self {
            NumberAnswer::Current => "current",
            NumberAnswer::Superseded { .. } => "superseded",
            NumberAnswer::NotFound => "not-found",
            NumberAnswer::Invalidated => "invalidated",
        }
    }
}

/// The outcome of resolving a record.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceOutcome {
    /// The record's verified number is the person's at PDS (followed if it was superseded) and
    /// nothing compared disagrees.
    Confirmed(PdsCandidate),
    /// One person found by an exact search, nothing compared disagreeing.
    Traced(PdsCandidate),
    /// A person must decide: several candidates, fuzzy-only candidates, a disagreement, or too
    /// many matches to list (then `candidates` is empty).
    NeedsReview {
        reason: String,
        candidates: Vec<PdsCandidate>,
    },
    /// PDS answered and holds no one matching.
    NoMatch { reason: String },
    /// The record does not hold enough to search PDS by, or PDS refused the search data.
    CannotTrace { reason: String },
    /// PDS could not be asked or did not answer: nothing is known, which is not "no match".
    Unavailable { reason: String },
}

impl TraceOutcome {
    pub fn code(&self) -> &'static str {
        match self {
            TraceOutcome::Confirmed(_) => "confirmed",
            TraceOutcome::Traced(_) => "traced",
            TraceOutcome::NeedsReview { .. } => "needs-review",
            TraceOutcome::NoMatch { .. } => "no-match",
            TraceOutcome::CannotTrace { .. } => "cannot-trace",
            TraceOutcome::Unavailable { .. } => "unavailable",
        }
    }
}

/// The number check (when the record has a verified number) and the outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub number_check: Option<NumberCheck>,
    pub outcome: TraceOutcome,
}

impl Resolution {
    /// Every NHS number involved (asked, superseding, proposed): what the audit record names.
    pub fn nhs_numbers(&self) -> Vec<NhsNumber> {
        let mut numbers = Vec::new();
        if let Some(check) = &self.number_check {
            numbers.push(check.asked);
            if let NumberAnswer::Superseded { by } = check.answer {
                numbers.push(by);
            }
        }
        let candidates: &[PdsCandidate] = match &self.outcome {
            TraceOutcome::Confirmed(c) | TraceOutcome::Traced(c) => std::slice::from_ref(c),
            TraceOutcome::NeedsReview { candidates, .. } => candidates,
            _ => &[],
        };
        numbers.extend(candidates.iter().filter_map(PdsCandidate::nhs_number));
        numbers.sort_unstable();
        numbers.dedup();
        numbers
    }
}

/// Resolves `subject` against PDS (see the module docs).
pub async fn resolve(
    pds: &dyn PdsService,
    ctx: &RequestContext,
    subject: &TraceSubject,
) -> Resolution {
    let verified = subject
        .nhs
        .as_ref()
        .filter(|c| c.verified)
        .and_then(|c| NhsNumber::parse(&c.number).ok());
    let Some(asked) = verified else {
        return Resolution {
            number_check: None,
            outcome: trace(pds, ctx, subject, None).await,
        };
    };
    let (answer, found) = match pds.retrieve(ctx, asked).await {
        Err(e) => {
            return Resolution {
                number_check: None,
                outcome: failed(&e),
            };
        }
        Ok(PdsRetrieval::Current(p)) => (NumberAnswer::Current, Some(p)),
        Ok(PdsRetrieval::Superseded(p)) => match p.demographics.nhs_number {
            Some(by) => (NumberAnswer::Superseded { by }, Some(p)),
            None => (NumberAnswer::NotFound, None),
        },
        Ok(PdsRetrieval::NotFound) => (NumberAnswer::NotFound, None),
        Ok(PdsRetrieval::Invalidated) => (NumberAnswer::Invalidated, None),
    };
    let number_check = Some(NumberCheck { asked, answer });
    let read = found.map(|p| PdsCandidate::new(subject, p, TraceBasis::Retrieve, None));
    if let Some(candidate) = &read {
        // A superseded number differs from the surviving one by design: only demographics
        // decide whether the surviving record is this person.
        let disagrees = candidate.fields.iter().any(|&(name, a)| {
            a == Agreement::Differs && name != "postcode" && name != "nhs_number"
        });
        if !disagrees {
            return Resolution {
                number_check,
                outcome: TraceOutcome::Confirmed(candidate.clone()),
            };
        }
    }
    Resolution {
        number_check,
        outcome: trace(pds, ctx, subject, read).await,
    }
}

/// A PDS search trace. `conflicting` is PDS's record for the record's own number when its
/// demographics disagree: it is shown beside whatever the search proposes, never dropped.
async fn trace(
    pds: &dyn PdsService,
    ctx: &RequestContext,
    subject: &TraceSubject,
    conflicting: Option<PdsCandidate>,
) -> TraceOutcome {
    let Some(query) = &subject.search else {
        return with_conflict(
            conflicting,
            TraceOutcome::CannotTrace {
                reason: "a PDS trace needs a family name and a full birth date".into(),
            },
        );
    };
    let exact = match pds.search(ctx, query).await {
        Ok(answer) => answer,
        Err(e) => return with_conflict(conflicting, failed(&e)),
    };
    let outcome = match exact {
        PdsSearchAnswer::TooManyMatches => too_many(),
        PdsSearchAnswer::Matches(found) if !found.is_empty() => {
            let candidates: Vec<PdsCandidate> = found
                .into_iter()
                .map(|(p, score)| {
                    PdsCandidate::new(subject, p, TraceBasis::ExactSearch, Some(score))
                })
                .collect();
            match candidates.as_slice() {
                [one] if one.score >= Some(1.0) && !one.conflicts() => {
                    TraceOutcome::Traced(one.clone())
                }
                [one] if one.conflicts() => TraceOutcome::NeedsReview {
                    reason: "one person matches at PDS but a field Keel compares disagrees".into(),
                    candidates,
                },
                _ => TraceOutcome::NeedsReview {
                    reason: format!(
                        "{} people match the record at PDS exactly",
                        candidates.len()
                    ),
                    candidates,
                },
            }
        }
        PdsSearchAnswer::Matches(_) => fuzzy_trace(pds, ctx, subject, query).await,
    };
    with_conflict(conflicting, outcome)
}

/// After no exact match: a fuzzy search on name, birth date and gender (not the postcode: a
/// person who moved, or whose address PDS withholds, is still found). Its results always go to
/// review.
async fn fuzzy_trace(
    pds: &dyn PdsService,
    ctx: &RequestContext,
    subject: &TraceSubject,
    exact: &PdsTraceQuery,
) -> TraceOutcome {
    if exact.given.is_none() {
        return TraceOutcome::NoMatch {
            reason: "no exact match at PDS; a fuzzy trace needs a given name".into(),
        };
    }
    let query = PdsTraceQuery {
        postcode: None,
        fuzzy: true,
        ..exact.clone()
    };
    match pds.search(ctx, &query).await {
        Err(e) => failed(&e),
        Ok(PdsSearchAnswer::TooManyMatches) => too_many(),
        Ok(PdsSearchAnswer::Matches(found)) if found.is_empty() => TraceOutcome::NoMatch {
            reason: "PDS holds no one matching the record, exactly or by fuzzy search".into(),
        },
        Ok(PdsSearchAnswer::Matches(found)) => TraceOutcome::NeedsReview {
            reason: "no exact match at PDS; fuzzy matches are never taken without review".into(),
            candidates: found
                .into_iter()
                .map(|(p, score)| {
                    PdsCandidate::new(subject, p, TraceBasis::FuzzySearch, Some(score))
                })
                .collect(),
        },
    }
}

fn too_many() -> TraceOutcome {
    TraceOutcome::NeedsReview {
        reason: format!(
            "more than {TRACE_MAX_RESULTS} people match at PDS: add a given name, gender or postcode"
        ),
        candidates: Vec::new(),
    }
}

/// The outcome when PDS's record for the record's own number disagrees with it: never a
/// confident answer, and that record is listed first for the reviewer.
fn with_conflict(conflicting: Option<PdsCandidate>, outcome: TraceOutcome) -> TraceOutcome {
    let Some(own) = conflicting else {
        return outcome;
    };
    let reason = "the record's demographics disagree with PDS's record for its NHS number";
    match outcome {
        TraceOutcome::Unavailable { .. } => outcome,
        TraceOutcome::Confirmed(c) | TraceOutcome::Traced(c) => review(reason, own, vec![c]),
        TraceOutcome::NeedsReview { candidates, .. } => review(reason, own, candidates),
        TraceOutcome::NoMatch { .. } | TraceOutcome::CannotTrace { .. } => {
            review(reason, own, Vec::new())
        }
    }
}

fn review(reason: &str, own: PdsCandidate, others: Vec<PdsCandidate>) -> TraceOutcome {
    let mut candidates = vec![own];
    for c in others {
        if !candidates.iter().any(|k| k.nhs_number() == c.nhs_number()) {
            candidates.push(c);
        }
    }
    TraceOutcome::NeedsReview {
        reason: reason.into(),
        candidates,
    }
}

fn failed(error: &IntegrationError) -> TraceOutcome {
    match error {
        IntegrationError::Refused { reason, .. } => TraceOutcome::CannotTrace {
            reason: reason.clone(),
        },
        other => TraceOutcome::Unavailable {
            reason: format!("PDS could not be asked: {other}"),
        },
    }
}
