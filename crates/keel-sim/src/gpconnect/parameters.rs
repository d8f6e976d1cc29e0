//! The `Parameters` body of `$gpc.getstructuredrecord` (reference sheet §3.3), parsed and
//! validated with the documented error codes:
//!
//! - not JSON, not a `Parameters` resource, a parameter without a name, or both
//!   `consultationSearchPeriod` and `includeNumberOfMostRecent` → 422 `INVALID_RESOURCE`;
//! - `patientNHSNumber` missing, an unknown or repeated (part) parameter, a part parameter
//!   without its value, a missing `includeResolvedAllergies`, a date that is not a whole
//!   date, a period ending before it starts or starting after today, a
//!   `medicationSearchFromDate` after today, a `diaryEntriesSearchDate` before today, a bad
//!   `filterStatus`, a non-positive `includeNumberOfMostRecent`, or a part parameter not
//!   permitted with consultations or problems → 422 `INVALID_PARAMETER`;
//! - an NHS number identifier of another system → 400 `INVALID_IDENTIFIER_SYSTEM`; a value
//!   failing the NHS number format or Modulus 11 check → 400 `INVALID_NHS_NUMBER`.
//!
//! "Today" is the population's as-of date.

use keel_model::NhsNumber;
use serde_json::Value;

use super::dates::parse_date;
use super::error::GpcError;
use crate::date::Date;

pub(super) const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// A clinical area a consumer can ask for (one top-level parameter each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClinicalArea {
    Allergies,
    Medication,
    Consultations,
    Problems,
    Immunisations,
    Uncategorised,
    Investigations,
    Referrals,
    DiaryEntries,
}

impl ClinicalArea {
    pub const ALL: [ClinicalArea; 9] = [
        ClinicalArea::Allergies,
        ClinicalArea::Medication,
        ClinicalArea::Consultations,
        ClinicalArea::Problems,
        ClinicalArea::Immunisations,
        ClinicalArea::Uncategorised,
        ClinicalArea::Investigations,
        ClinicalArea::Referrals,
        ClinicalArea::DiaryEntries,
    ];

    /// The top-level parameter's name.
    pub fn parameter(self) -> &'static str {
        match self {
            ClinicalArea::Allergies => "includeAllergies",
            ClinicalArea::Medication => "includeMedication",
            ClinicalArea::Consultations => "includeConsultations",
            ClinicalArea::Problems => "includeProblems",
            ClinicalArea::Immunisations => "includeImmunisations",
            ClinicalArea::Uncategorised => "includeUncategorisedData",
            ClinicalArea::Investigations => "includeInvestigations",
            ClinicalArea::Referrals => "includeReferrals",
            ClinicalArea::DiaryEntries => "includeDiaryEntries",
        }
    }

    /// The part parameters it takes.
    fn parts(self) -> &'static [&'static str] {
        match self {
            ClinicalArea::Allergies => &["includeResolvedAllergies"],
            ClinicalArea::Medication => &["includePrescriptionIssues", "medicationSearchFromDate"],
            ClinicalArea::Consultations => {
                &["consultationSearchPeriod", "includeNumberOfMostRecent"]
            }
            ClinicalArea::Problems => &["filterStatus"],
            ClinicalArea::Immunisations => &["includeNotGiven", "includeStatus"],
            ClinicalArea::Uncategorised => &["uncategorisedDataSearchPeriod"],
            ClinicalArea::Investigations => &["investigationSearchPeriod"],
            ClinicalArea::Referrals => &["referralSearchPeriod"],
            ClinicalArea::DiaryEntries => &["diaryEntriesSearchDate"],
        }
    }
}

/// Part parameters not permitted alongside `includeConsultations` (problems: the same
/// without `filterStatus`).
const NOT_WITH_CONSULTATIONS: [&str; 7] = [
    "medicationSearchFromDate",
    "uncategorisedDataSearchPeriod",
    "filterStatus",
    "referralSearchPeriod",
    "diaryEntriesSearchDate",
    "includeNotGiven",
    "includeStatus",
];

/// A search period; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    pub start: Option<Date>,
    pub end: Option<Date>,
}

impl Period {
    pub fn contains(&self, date: Date) -> bool {
        self.start.is_none_or(|s| date >= s) && self.end.is_none_or(|e| date <= e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemStatus {
    Active,
    Inactive,
}

/// A validated request.
#[derive(Debug, Clone, Default)]
pub struct StructuredQuery {
    pub nhs_number: Option<NhsNumber>,
    /// Requested areas, in request order.
    pub areas: Vec<ClinicalArea>,
    pub include_resolved_allergies: bool,
    pub include_prescription_issues: bool,
    pub medication_from: Option<Date>,
    pub consultation_period: Option<Period>,
    pub most_recent_consultations: Option<u64>,
    pub problem_status: Option<ProblemStatus>,
    pub uncategorised_period: Option<Period>,
    pub investigation_period: Option<Period>,
}

impl StructuredQuery {
    pub fn wants(&self, area: ClinicalArea) -> bool {
        self.areas.contains(&area)
    }
}

/// Parses and validates `body`; `today` bounds the dates.
pub fn parse(body: &[u8], today: Date) -> Result<(NhsNumber, StructuredQuery), GpcError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| GpcError::invalid_resource("the body is not a JSON Parameters resource"))?;
    if value.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(GpcError::invalid_resource(
            "the body must be a Parameters resource",
        ));
    }
    let parameters = value
        .get("parameter")
        .and_then(Value::as_array)
        .ok_or_else(|| GpcError::invalid_resource("Parameters.parameter must be an array"))?;
    let mut query = StructuredQuery {
        include_prescription_issues: true,
        ..StructuredQuery::default()
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut parts_seen: Vec<&str> = Vec::new();
    for parameter in parameters {
        let name = parameter
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| GpcError::invalid_resource("a parameter has no name"))?;
        if seen.contains(&name) {
            return Err(GpcError::invalid_parameter(&format!("{name} is repeated")));
        }
        seen.push(name);
        if name == "patientNHSNumber" {
            query.nhs_number = Some(nhs_number(parameter, &[NHS_NUMBER_SYSTEM])?);
            continue;
        }
        let area = ClinicalArea::ALL
            .into_iter()
            .find(|a| a.parameter() == name)
            .ok_or_else(|| {
                GpcError::invalid_parameter(&format!("{name} is not a parameter of this operation"))
            })?;
        query.areas.push(area);
        for part in parameter
            .get("part")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let part_name = part
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| GpcError::invalid_resource("a part parameter has no name"))?;
            if !area.parts().contains(&part_name) {
                return Err(GpcError::invalid_parameter(&format!(
                    "{part_name} is not a part of {name}"
                )));
            }
            if parts_seen.contains(&part_name) {
                return Err(GpcError::invalid_parameter(&format!(
                    "{part_name} is repeated"
                )));
            }
            parts_seen.push(part_name);
            apply_part(&mut query, part_name, part, today)?;
        }
        if area == ClinicalArea::Allergies && !parts_seen.contains(&"includeResolvedAllergies") {
            return Err(GpcError::invalid_parameter(
                "includeAllergies requires includeResolvedAllergies",
            ));
        }
    }
    let nhs_number = query
        .nhs_number
        .ok_or_else(|| GpcError::invalid_parameter("patientNHSNumber is required"))?;
    if query.consultation_period.is_some() && query.most_recent_consultations.is_some() {
        return Err(GpcError::invalid_resource(
            "consultationSearchPeriod and includeNumberOfMostRecent are mutually exclusive",
        ));
    }
    for (area, exempt) in [
        (ClinicalArea::Consultations, None),
        (ClinicalArea::Problems, Some("filterStatus")),
    ] {
        if !query.wants(area) {
            continue;
        }
        if let Some(part) = parts_seen
            .iter()
            .find(|p| NOT_WITH_CONSULTATIONS.contains(p) && Some(**p) != exempt)
        {
            return Err(GpcError::invalid_parameter(&format!(
                "{part} is not permitted with {}",
                area.parameter()
            )));
        }
    }
    Ok((nhs_number, query))
}

/// The `patientNHSNumber` parameter's NHS number; its identifier system must be one of
/// `systems`.
pub(super) fn nhs_number(parameter: &Value, systems: &[&str]) -> Result<NhsNumber, GpcError> {
    let identifier = parameter.get("valueIdentifier").ok_or_else(|| {
        GpcError::invalid_parameter("patientNHSNumber must have a valueIdentifier")
    })?;
    let system = identifier.get("system").and_then(Value::as_str);
    if !system.is_some_and(|s| systems.contains(&s)) {
        return Err(GpcError::invalid_identifier_system(&format!(
            "patientNHSNumber system must be {}",
            systems.join(" or ")
        )));
    }
    let value = identifier
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| GpcError::invalid_parameter("patientNHSNumber has no value"))?;
    let digits_only = value.len() == 10 && value.bytes().all(|b| b.is_ascii_digit());
    match NhsNumber::parse(value) {
        Ok(n) if digits_only => Ok(n),
        _ => Err(GpcError::invalid_nhs_number(
            "patientNHSNumber is not a valid NHS number",
        )),
    }
}

fn apply_part(
    query: &mut StructuredQuery,
    name: &str,
    part: &Value,
    today: Date,
) -> Result<(), GpcError> {
    let missing = || GpcError::invalid_parameter(&format!("{name} has no value of the right type"));
    match name {
        "includeResolvedAllergies" => {
            query.include_resolved_allergies = part
                .get("valueBoolean")
                .and_then(Value::as_bool)
                .ok_or_else(missing)?;
        }
        "includePrescriptionIssues" => {
            query.include_prescription_issues = part
                .get("valueBoolean")
                .and_then(Value::as_bool)
                .ok_or_else(missing)?;
        }
        "includeNotGiven" | "includeStatus" => {
            part.get("valueBoolean")
                .and_then(Value::as_bool)
                .ok_or_else(missing)?;
        }
        "medicationSearchFromDate" => {
            let date = whole_date(name, part.get("valueDate").ok_or_else(missing)?)?;
            if date > today {
                return Err(GpcError::invalid_parameter(
                    "medicationSearchFromDate is after today",
                ));
            }
            query.medication_from = Some(date);
        }
        "diaryEntriesSearchDate" => {
            let date = whole_date(name, part.get("valueDate").ok_or_else(missing)?)?;
            if date < today {
                return Err(GpcError::invalid_parameter(
                    "diaryEntriesSearchDate is before today",
                ));
            }
        }
        "includeNumberOfMostRecent" => {
            let n = part
                .get("valueInteger")
                .and_then(Value::as_u64)
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    GpcError::invalid_parameter(
                        "includeNumberOfMostRecent must be a positive integer",
                    )
                })?;
            query.most_recent_consultations = Some(n);
        }
        "filterStatus" => {
            query.problem_status = Some(match part.get("valueCode").and_then(Value::as_str) {
                Some("active") => ProblemStatus::Active,
                Some("inactive") => ProblemStatus::Inactive,
                _ => {
                    return Err(GpcError::invalid_parameter(
                        "filterStatus must be 'active' or 'inactive'",
                    ));
                }
            });
        }
        _ => {
            // The remaining parts are search periods.
            let period = period(name, part.get("valuePeriod").ok_or_else(missing)?, today)?;
            match name {
                "consultationSearchPeriod" => query.consultation_period = Some(period),
                "uncategorisedDataSearchPeriod" => query.uncategorised_period = Some(period),
                "investigationSearchPeriod" => query.investigation_period = Some(period),
                _ => {} // referralSearchPeriod: validated; the model holds no referrals.
            }
        }
    }
    Ok(())
}

pub(super) fn whole_date(name: &str, value: &Value) -> Result<Date, GpcError> {
    value.as_str().and_then(parse_date).ok_or_else(|| {
        GpcError::invalid_parameter(&format!("{name} must be a whole date (YYYY-MM-DD)"))
    })
}

fn period(name: &str, value: &Value, today: Date) -> Result<Period, GpcError> {
    let bound = |key: &str| value.get(key).map(|v| whole_date(name, v)).transpose();
    let period = Period {
        start: bound("start")?,
        end: bound("end")?,
    };
    if period.start.is_none() && period.end.is_none() {
        return Err(GpcError::invalid_parameter(&format!(
            "{name} has neither start nor end"
        )));
    }
    if let (Some(s), Some(e)) = (period.start, period.end)
        && s > e
    {
        return Err(GpcError::invalid_parameter(&format!(
            "{name} ends before it starts"
        )));
    }
    if period.start.is_some_and(|s| s > today) {
        return Err(GpcError::invalid_parameter(&format!(
            "{name} starts after today"
        )));
    }
    Ok(period)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn today() -> Date {
        Date::ymd(2026, 1, 5)
    }

    #[test]
    fn a_full_query_parses() {
        let body = json!({"resourceType": "Parameters", "parameter": [
            {"name": "patientNHSNumber", "valueIdentifier": {"system": NHS_NUMBER_SYSTEM, "value": "9690937286"}},
            {"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": true}]},
            {"name": "includeMedication", "part": [{"name": "includePrescriptionIssues", "valueBoolean": false}]},
            {"name": "includeConsultations", "part": [{"name": "includeNumberOfMostRecent", "valueInteger": 3}]},
            {"name": "includeReferrals"},
        ]});
        let (nhs, q) = parse(body.to_string().as_bytes(), today()).expect("valid");
        assert_eq!(nhs.as_str(), "9690937286");
        assert!(q.include_resolved_allergies && !q.include_prescription_issues);
        assert_eq!(q.most_recent_consultations, Some(3));
        assert_eq!(q.areas.len(), 4);
    }

    proptest! {
        /// Any body, JSON or not, gets an answer and never a panic.
        #[test]
        fn never_panics_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&body, today());
        }

        /// Any parameter list of known and unknown names with values of any type.
        #[test]
        fn never_panics_on_any_parameter_list(
            params in proptest::collection::vec(
                (prop_oneof![Just("patientNHSNumber"), Just("includeAllergies"), Just("includeConsultations"), Just("includeMedication"), Just("bogus")],
                 proptest::collection::vec((prop_oneof![Just("includeResolvedAllergies"), Just("consultationSearchPeriod"), Just("includeNumberOfMostRecent"), Just("medicationSearchFromDate"), Just("x")],
                     prop_oneof![Just(json!(true)), Just(json!("2025-01-01")), Just(json!({"start": "2025-13-01"})), Just(json!(-1)), Just(json!(null))]), 0..3)),
                0..5)
        ) {
            let parameter: Vec<Value> = params.into_iter().map(|(name, parts)| {
                let parts: Vec<Value> = parts.into_iter().map(|(n, v)| json!({"name": n, "valueBoolean": v, "valueDate": v, "valuePeriod": v, "valueInteger": v})).collect();
                json!({"name": name, "part": parts, "valueIdentifier": {"system": NHS_NUMBER_SYSTEM, "value": "9690937286"}})
            }).collect();
            let body = json!({"resourceType": "Parameters", "parameter": parameter});
            let _ = parse(body.to_string().as_bytes(), today());
        }
    }
}
