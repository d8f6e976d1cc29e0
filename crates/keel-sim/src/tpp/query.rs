//! Query strings of the read endpoints: patient search and the journal's filters.
//! Unknown parameters and malformed values are 400 `InvalidRequest`, never ignored.

use keel_model::NhsNumber;

use super::error::TppError;
use super::writes::parse_date;
use crate::date::Date;

/// The journal's event types, as the `EventType` field and the `eventType` filter spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Consultation,
    Problem,
    CodedEntry,
    Medication,
    Issue,
    Allergy,
    Immunisation,
    Document,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        EventType::Consultation,
        EventType::Problem,
        EventType::CodedEntry,
        EventType::Medication,
        EventType::Issue,
        EventType::Allergy,
        EventType::Immunisation,
        EventType::Document,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventType::Consultation => "Consultation",
            EventType::Problem => "Problem",
            EventType::CodedEntry => "CodedEntry",
            EventType::Medication => "Medication",
            EventType::Issue => "Issue",
            EventType::Allergy => "Allergy",
            EventType::Immunisation => "Immunisation",
            EventType::Document => "Document",
        }
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn once(slot: &mut Option<String>, name: &str, value: String) -> Result<(), TppError> {
    if slot.is_some() {
        return Err(TppError::invalid_request(format!(
            "'{name}' may be given once"
        )));
    }
    *slot = Some(value);
    Ok(())
}

fn date_param(name: &str, value: &str) -> Result<Date, TppError> {
    parse_date(value)
        .ok_or_else(|| TppError::invalid_request(format!("'{name}' must be a date YYYY-MM-DD")))
}

/// A patient search: by NHS number, or by surname and date of birth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientSearch {
    NhsNumber(NhsNumber),
    /// Surname lower-cased; matched ignoring case.
    Demographics {
        surname: String,
        birth: Date,
    },
}

impl PatientSearch {
    pub fn parse(query: Option<&str>) -> Result<PatientSearch, TppError> {
        let (mut nhs, mut surname, mut birth) = (None, None, None);
        for (k, v) in pairs(query) {
            match k.as_str() {
                "nhsNumber" => once(&mut nhs, &k, v)?,
                "surname" => once(&mut surname, &k, v)?,
                "dateOfBirth" => once(&mut birth, &k, v)?,
                _ => {
                    return Err(TppError::invalid_request(format!(
                        "Unknown search parameter '{k}' (expected nhsNumber, or surname and dateOfBirth)"
                    )));
                }
            }
        }
        match (nhs, surname, birth) {
            (Some(nhs), None, None) => {
                let valid = nhs.len() == 10 && nhs.bytes().all(|b| b.is_ascii_digit());
                let number = NhsNumber::parse(&nhs).ok().filter(|_| valid);
                number.map(PatientSearch::NhsNumber).ok_or_else(|| {
                    TppError::invalid_request(
                        "'nhsNumber' must be ten digits with a valid check digit",
                    )
                })
            }
            (None, Some(surname), Some(birth)) if !surname.trim().is_empty() => {
                Ok(PatientSearch::Demographics {
                    surname: surname.trim().to_lowercase(),
                    birth: date_param("dateOfBirth", &birth)?,
                })
            }
            _ => Err(TppError::invalid_request(
                "Search by nhsNumber alone, or by surname and dateOfBirth together",
            )),
        }
    }
}

/// The journal's filters; all optional, all combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalFilter {
    pub from: Option<Date>,
    pub to: Option<Date>,
    /// Bit set of [`EventType`]s; 0 means every type.
    types: u16,
    pub external_reference: Option<String>,
}

impl JournalFilter {
    /// Parses `from`, `to` (inclusive dates), `eventType` (comma-separated, repeatable) and
    /// `externalReference` (exact match).
    pub fn parse(query: Option<&str>) -> Result<JournalFilter, TppError> {
        let (mut from, mut to, mut reference) = (None, None, None);
        let mut types = 0u16;
        for (k, v) in pairs(query) {
            match k.as_str() {
                "from" => once(&mut from, &k, v)?,
                "to" => once(&mut to, &k, v)?,
                "externalReference" => once(&mut reference, &k, v)?,
                "eventType" => {
                    for name in v.split(',') {
                        let t = EventType::ALL
                            .into_iter()
                            .find(|t| t.name() == name)
                            .ok_or_else(|| {
                                TppError::invalid_request(format!(
                                    "Unknown eventType '{name}' (expected one of Consultation, Problem, CodedEntry, Medication, Issue, Allergy, Immunisation, Document)"
                                ))
                            })?;
                        types |= t.bit();
                    }
                }
                _ => {
                    return Err(TppError::invalid_request(format!(
                        "Unknown journal parameter '{k}' (expected from, to, eventType, externalReference)"
                    )));
                }
            }
        }
        let from = from.map(|v| date_param("from", &v)).transpose()?;
        let to = to.map(|v| date_param("to", &v)).transpose()?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(TppError::invalid_request("'from' is after 'to'"));
        }
        Ok(JournalFilter {
            from,
            to,
            types,
            external_reference: reference,
        })
    }

    pub fn wants_type(&self, t: EventType) -> bool {
        self.types == 0 || self.types & t.bit() != 0
    }

    pub fn wants_date(&self, date: Date) -> bool {
        self.from.is_none_or(|f| date >= f) && self.to.is_none_or(|t| date <= t)
    }

    /// Only written events carry an `ExternalReference`; with this filter set, generated
    /// events never match.
    pub fn wants_reference(&self, reference: Option<&str>) -> bool {
        match &self.external_reference {
            None => true,
            Some(wanted) => reference == Some(wanted.as_str()),
        }
    }
}

/// The tasks list's one filter: `externalReference`.
pub fn task_filter(query: Option<&str>) -> Result<Option<String>, TppError> {
    let mut reference = None;
    for (k, v) in pairs(query) {
        if k != "externalReference" {
            return Err(TppError::invalid_request(format!(
                "Unknown tasks parameter '{k}' (expected externalReference)"
            )));
        }
        once(&mut reference, &k, v)?;
    }
    Ok(reference)
}

/// Lists with no parameters: anything given is an error.
pub fn no_parameters(query: Option<&str>) -> Result<(), TppError> {
    match pairs(query).first() {
        None => Ok(()),
        Some((k, _)) => Err(TppError::invalid_request(format!(
            "Unknown parameter '{k}' (this list takes none)"
        ))),
    }
}
