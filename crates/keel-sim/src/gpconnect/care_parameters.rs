//! The `Parameters` body of `$gpc.getcarerecord` (Access Record HTML 0.7.x, reference sheet
//! §3.6), parsed and validated:
//!
//! - not JSON, not a `Parameters` resource, or a parameter without a name → 422
//!   `INVALID_RESOURCE` (as the structured record);
//! - `patientNHSNumber` or `recordSection` missing or repeated, an unknown parameter, a
//!   `recordSection` without a coding of the section system or with a code not in the value
//!   set (codes are upper case: `prb` is unknown), a `timePeriod` that is not a Period of whole
//!   dates or has neither start nor end, one ending before it starts, or a `timePeriod` for a
//!   time-agnostic section (SUM, ALL, IMM) → 422 `INVALID_PARAMETER`;
//! - an NHS number identifier of another system → 400 `INVALID_IDENTIFIER_SYSTEM`; a value
//!   failing the NHS number format or Modulus 11 check → 400 `INVALID_NHS_NUMBER`.

use keel_model::NhsNumber;
use serde_json::Value;

use super::error::GpcError;
use super::parameters::{NHS_NUMBER_SYSTEM, Period, nhs_number, whole_date};

/// The record-section value set of Access Record HTML.
pub const SECTION_SYSTEM: &str = "http://fhir.nhs.net/ValueSet/gpconnect-record-section-1";
/// The NHS number system of the DSTU2-era 0.7.x specification.
const LEGACY_NHS_NUMBER_SYSTEM: &str = "http://fhir.nhs.net/Id/nhs-number";

/// A care record section (one `recordSection` code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordSection {
    Summary,
    AdministrativeItems,
    Allergies,
    ClinicalItems,
    Encounters,
    Immunisations,
    Medications,
    Observations,
    Problems,
    Referrals,
}

impl RecordSection {
    pub const ALL: [RecordSection; 10] = [
        RecordSection::Summary,
        RecordSection::AdministrativeItems,
        RecordSection::Allergies,
        RecordSection::ClinicalItems,
        RecordSection::Encounters,
        RecordSection::Immunisations,
        RecordSection::Medications,
        RecordSection::Observations,
        RecordSection::Problems,
        RecordSection::Referrals,
    ];

    pub fn code(self) -> &'static str {
        match self {
            RecordSection::Summary => "SUM",
            RecordSection::AdministrativeItems => "ADM",
            RecordSection::Allergies => "ALL",
            RecordSection::ClinicalItems => "CLI",
            RecordSection::Encounters => "ENC",
            RecordSection::Immunisations => "IMM",
            RecordSection::Medications => "MED",
            RecordSection::Observations => "OBS",
            RecordSection::Problems => "PRB",
            RecordSection::Referrals => "REF",
        }
    }

    /// The section title (the view's `<h1>`).
    pub fn title(self) -> &'static str {
        match self {
            RecordSection::Summary => "Summary",
            RecordSection::AdministrativeItems => "Administrative Items",
            RecordSection::Allergies => "Allergies and Adverse Reactions",
            RecordSection::ClinicalItems => "Clinical Items",
            RecordSection::Encounters => "Encounters",
            RecordSection::Immunisations => "Immunisations",
            RecordSection::Medications => "Medications",
            RecordSection::Observations => "Observations",
            RecordSection::Problems => "Problems and Issues",
            RecordSection::Referrals => "Referrals",
        }
    }

    /// Sections that always return all relevant items and take no `timePeriod`.
    pub fn is_time_agnostic(self) -> bool {
        matches!(
            self,
            RecordSection::Summary | RecordSection::Allergies | RecordSection::Immunisations
        )
    }
}

/// A validated request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CareRecordQuery {
    pub nhs_number: NhsNumber,
    pub section: RecordSection,
    pub period: Option<Period>,
}

/// Parses and validates `body`.
pub fn parse(body: &[u8]) -> Result<CareRecordQuery, GpcError> {
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
    let mut nhs = None;
    let mut section = None;
    let mut period = None;
    let mut seen: Vec<&str> = Vec::new();
    for parameter in parameters {
        let name = parameter
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| GpcError::invalid_resource("a parameter has no name"))?;
        if seen.contains(&name) {
            return Err(GpcError::invalid_parameter(&format!("{name} is repeated")));
        }
        seen.push(name);
        match name {
            "patientNHSNumber" => {
                nhs = Some(nhs_number(
                    parameter,
                    &[LEGACY_NHS_NUMBER_SYSTEM, NHS_NUMBER_SYSTEM],
                )?);
            }
            "recordSection" => section = Some(record_section(parameter)?),
            "timePeriod" => period = Some(time_period(parameter)?),
            _ => {
                return Err(GpcError::invalid_parameter(&format!(
                    "{name} is not a parameter of this operation"
                )));
            }
        }
    }
    let nhs_number =
        nhs.ok_or_else(|| GpcError::invalid_parameter("patientNHSNumber is required"))?;
    let section =
        section.ok_or_else(|| GpcError::invalid_parameter("recordSection is required"))?;
    if period.is_some() && section.is_time_agnostic() {
        return Err(GpcError::invalid_parameter(&format!(
            "timePeriod is not allowed for the {} section",
            section.code()
        )));
    }
    Ok(CareRecordQuery {
        nhs_number,
        section,
        period,
    })
}

fn record_section(parameter: &Value) -> Result<RecordSection, GpcError> {
    let codings = parameter
        .pointer("/valueCodeableConcept/coding")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            GpcError::invalid_parameter("recordSection must be a CodeableConcept with a coding")
        })?;
    let code = codings
        .iter()
        .find(|c| c.get("system").and_then(Value::as_str) == Some(SECTION_SYSTEM))
        .and_then(|c| c.get("code"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            GpcError::invalid_parameter(&format!("recordSection needs a code of {SECTION_SYSTEM}"))
        })?;
    RecordSection::ALL
        .into_iter()
        .find(|s| s.code() == code)
        .ok_or_else(|| {
            GpcError::invalid_parameter(
                "recordSection is not a code of the record section value set",
            )
        })
}

fn time_period(parameter: &Value) -> Result<Period, GpcError> {
    const NAME: &str = "timePeriod";
    let value = parameter
        .get("valuePeriod")
        .filter(|v| v.is_object())
        .ok_or_else(|| GpcError::invalid_parameter("timePeriod must be a valuePeriod"))?;
    let bound = |key: &str| value.get(key).map(|v| whole_date(NAME, v)).transpose();
    let period = Period {
        start: bound("start")?,
        end: bound("end")?,
    };
    if period.start.is_none() && period.end.is_none() {
        return Err(GpcError::invalid_parameter(
            "timePeriod has neither start nor end",
        ));
    }
    if let (Some(s), Some(e)) = (period.start, period.end)
        && s > e
    {
        return Err(GpcError::invalid_parameter(
            "timePeriod ends before it starts",
        ));
    }
    Ok(period)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::date::Date;
    use proptest::prelude::*;
    use serde_json::json;

    fn body(parameters: Value) -> Vec<u8> {
        json!({"resourceType": "Parameters", "parameter": parameters})
            .to_string()
            .into_bytes()
    }

    fn section(code: &str) -> Value {
        json!({"name": "recordSection", "valueCodeableConcept": {"coding": [{"system": SECTION_SYSTEM, "code": code}]}})
    }

    fn nhs() -> Value {
        json!({"name": "patientNHSNumber", "valueIdentifier": {"system": LEGACY_NHS_NUMBER_SYSTEM, "value": "9690937286"}})
    }

    #[test]
    fn a_section_with_a_period_parses() {
        let q = parse(&body(json!([nhs(), section("ENC"),
            {"name": "timePeriod", "valuePeriod": {"start": "2020-01-01", "end": "2020-12-31"}}])))
        .expect("valid");
        assert_eq!(q.section, RecordSection::Encounters);
        assert_eq!(
            q.period,
            Some(Period {
                start: Some(Date::ymd(2020, 1, 1)),
                end: Some(Date::ymd(2020, 12, 31))
            })
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }

        /// Any list of known and unknown parameters with values of any shape.
        #[test]
        fn never_panics_on_any_parameter_list(
            params in proptest::collection::vec(
                (prop_oneof![Just("patientNHSNumber"), Just("recordSection"), Just("timePeriod"), Just("bogus")],
                 prop_oneof![Just(json!("SUM")), Just(json!("prb")), Just(json!({"start": "2020-02-30"})),
                     Just(json!({"coding": [{"system": SECTION_SYSTEM, "code": 7}]})), Just(json!(null)), Just(json!([]))]),
                0..5)
        ) {
            let parameter: Vec<Value> = params.into_iter().map(|(name, v)| {
                json!({"name": name, "valueCodeableConcept": v, "valuePeriod": v, "valueIdentifier": v})
            }).collect();
            let _ = parse(&body(json!(parameter)));
        }

        /// Every code is accepted exactly as written, and no other string.
        #[test]
        fn only_the_value_set_codes_are_sections(code in "[A-Za-z]{0,4}") {
            let parsed = parse(&body(json!([nhs(), section(&code)])));
            let known = RecordSection::ALL.iter().any(|s| s.code() == code);
            prop_assert_eq!(parsed.is_ok(), known);
        }
    }
}
