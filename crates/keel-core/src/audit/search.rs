//! Searching the audit log as AuditEvents: by patient, agent, date, outcome, interaction and
//! break-glass, newest first. A scan of the log (the information-governance role's occasional
//! question, not a hot path); entries that do not decode are reported, never skipped.

use super::record::{AuditOutcome, AuditRecord};
use crate::context::Actor;
use crate::store::{AuditRead, StoreError};
use keel_fhir::datetime::{DateRange, parse_range};

/// Entries read per store call.
const READ_BATCH: usize = 10_000;
pub const DEFAULT_COUNT: usize = 50;
pub const MAX_COUNT: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditQueryError {
    #[error(
        "unknown AuditEvent search parameter '{0}' (known: patient, agent, date, outcome, subtype, break-glass, _count, _offset)"
    )]
    UnknownParameter(String),
    #[error("the value '{value}' of '{name}' is not valid: {why}")]
    BadValue {
        name: String,
        value: String,
        why: &'static str,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AuditSearchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("audit entry {sequence} does not decode: {why}")]
    Undecodable { sequence: u64, why: String },
}

/// One date condition: the record's time compared with a FHIR date range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateCondition {
    Within(DateRange),
    Before(i64),
    AtOrBefore(i64),
    After(i64),
    AtOrAfter(i64),
}

impl DateCondition {
    fn holds(self, at: i64) -> bool {
        match self {
            DateCondition::Within(r) => r.start <= at && at < r.end,
            DateCondition::Before(t) => at < t,
            DateCondition::AtOrBefore(t) => at < t,
            DateCondition::After(t) => at >= t,
            DateCondition::AtOrAfter(t) => at >= t,
        }
    }
}

/// What an AuditEvent search asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditQuery {
    patient: Option<String>,
    agent: Option<String>,
    dates: Vec<DateCondition>,
    outcome: Option<String>,
    subtype: Option<String>,
    break_glass: Option<bool>,
    pub count: usize,
    pub offset: usize,
}

impl AuditQuery {
    pub fn parse(params: &[(String, String)]) -> Result<AuditQuery, AuditQueryError> {
        let mut query = AuditQuery {
            count: DEFAULT_COUNT,
            ..AuditQuery::default()
        };
        for (name, value) in params {
            let bad = |why: &'static str| AuditQueryError::BadValue {
                name: name.clone(),
                value: value.clone(),
                why,
            };
            match name.as_str() {
                "patient" | "entity" => {
                    let id = value.strip_prefix("Patient/").unwrap_or(value);
                    if id.is_empty() || id.contains('/') {
                        return Err(bad("expected a patient id or Patient/id"));
                    }
                    query.patient = Some(format!("Patient/{id}"));
                }
                "agent" | "agent.identifier" => {
                    let id = value.rsplit('|').next().unwrap_or(value);
                    if id.is_empty() {
                        return Err(bad("expected a user id or client id"));
                    }
                    query.agent = Some(id.to_string());
                }
                "date" => query.dates.push(date_condition(value).ok_or_else(|| {
                    bad("expected a FHIR date or instant, optionally prefixed eq, lt, le, gt or ge")
                })?),
                "outcome" => {
                    if !["0", "4", "8"].contains(&value.as_str()) {
                        return Err(bad("expected 0 (success), 4 (denied) or 8 (failed)"));
                    }
                    query.outcome = Some(value.clone());
                }
                "subtype" => query.subtype = Some(value.rsplit('|').next().unwrap_or(value).into()),
                "break-glass" => {
                    query.break_glass = Some(match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad("expected true or false")),
                    })
                }
                "_count" => {
                    query.count = value
                        .parse::<usize>()
                        .map_err(|_| bad("expected a whole number"))?
                        .min(MAX_COUNT)
                }
                "_offset" => {
                    query.offset = value.parse().map_err(|_| bad("expected a whole number"))?
                }
                "_format" | "_pretty" => {}
                other => return Err(AuditQueryError::UnknownParameter(other.to_string())),
            }
        }
        Ok(query)
    }

    fn matches(&self, record: &AuditRecord) -> bool {
        if let Some(patient) = &self.patient
            && !record.subject.patients.contains(patient)
        {
            return false;
        }
        if let Some(agent) = &self.agent {
            let id = match &record.actor {
                Actor::User { user_id, .. } => user_id.as_str(),
                Actor::System { client_id, .. } => client_id.as_str(),
                Actor::LocalDevelopment => "",
            };
            if id != agent {
                return false;
            }
        }
        if !self.dates.is_empty() {
            let Ok(at) = parse_range(record.when.as_str()) else {
                return false;
            };
            if !self.dates.iter().all(|d| d.holds(at.start)) {
                return false;
            }
        }
        if let Some(outcome) = &self.outcome {
            let code = match record.outcome {
                AuditOutcome::Permit => "0",
                AuditOutcome::Deny { .. } => "4",
                AuditOutcome::Error { .. } => "8",
            };
            if code != outcome {
                return false;
            }
        }
        if let Some(subtype) = &self.subtype
            && &record.subject.interaction != subtype
        {
            return false;
        }
        if let Some(flag) = self.break_glass
            && record.break_glass.is_some() != flag
        {
            return false;
        }
        true
    }
}

fn date_condition(value: &str) -> Option<DateCondition> {
    let (prefix, text) = match value.get(..2) {
        Some(p @ ("eq" | "lt" | "le" | "gt" | "ge")) => (p, &value[2..]),
        _ => ("eq", value),
    };
    let range = parse_range(text).ok()?;
    Some(match prefix {
        "lt" => DateCondition::Before(range.start),
        "le" => DateCondition::AtOrBefore(range.end),
        "gt" => DateCondition::After(range.end),
        "ge" => DateCondition::AtOrAfter(range.start),
        _ => DateCondition::Within(range),
    })
}

/// One page of matching records, newest first, and how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    pub total: usize,
    pub entries: Vec<(u64, AuditRecord)>,
}

/// Runs `query` over the whole log; `visible` says which records the reader may see.
pub fn search_audit(
    log: &mut dyn AuditRead,
    query: &AuditQuery,
    visible: impl Fn(&AuditRecord) -> bool,
) -> Result<AuditPage, AuditSearchError> {
    let mut matching = Vec::new();
    let mut from = 1;
    loop {
        let batch = log.audit_entries(from, READ_BATCH)?;
        let Some(last) = batch.last() else { break };
        from = last.sequence + 1;
        for entry in batch {
            let record: AuditRecord = serde_json::from_slice(&entry.record).map_err(|e| {
                AuditSearchError::Undecodable {
                    sequence: entry.sequence,
                    why: e.to_string(),
                }
            })?;
            if visible(&record) && query.matches(&record) {
                matching.push((entry.sequence, record));
            }
        }
    }
    let total = matching.len();
    matching.reverse();
    let entries = matching
        .into_iter()
        .skip(query.offset)
        .take(query.count)
        .collect();
    Ok(AuditPage { total, entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dates_compare_as_ranges() {
        let day = date_condition("2026-01-02").expect("date");
        let start = parse_range("2026-01-02T00:00:00Z").expect("t").start;
        assert!(day.holds(start));
        assert!(!day.holds(start - 1));
        assert!(date_condition("ge2026-01-02").expect("ge").holds(start));
        assert!(!date_condition("lt2026-01-02").expect("lt").holds(start));
        assert!(
            date_condition("le2026-01-02")
                .expect("le")
                .holds(start + 1000)
        );
        assert!(date_condition("gt2026-01-01").expect("gt").holds(start));
        assert!(date_condition("2026-13-01").is_none());
    }

    #[test]
    fn unknown_parameters_and_bad_values_are_refused() {
        assert_eq!(
            AuditQuery::parse(&params(&[("name", "x")])),
            Err(AuditQueryError::UnknownParameter("name".into()))
        );
        assert!(AuditQuery::parse(&params(&[("outcome", "2")])).is_err());
        assert!(AuditQuery::parse(&params(&[("break-glass", "yes")])).is_err());
        assert!(AuditQuery::parse(&params(&[("patient", "Practitioner/1/x")])).is_err());
        let q = AuditQuery::parse(&params(&[("patient", "Patient/p1"), ("_count", "5000")]))
            .expect("parse");
        assert_eq!(q.patient.as_deref(), Some("Patient/p1"));
        assert_eq!(q.count, MAX_COUNT);
    }
}
