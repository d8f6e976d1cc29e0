//! The bodies of the TPP-style writes, built from the contract's requests, and where each
//! write is looked up again by its `ExternalReference` (the supplier has no client request
//! id: the check after a lost answer is the only way to know whether a write landed).
//!
//! What the API cannot file is refused here, before anything is sent: a partial date, a
//! Read v2 code (only CTV3 and SNOMED CT are accepted), a coded value, a comparator, and a
//! key longer than the 100 characters an `ExternalReference` may hold.

use base64::Engine;
use keel_core::integration::{DocumentRequest, EntryRequest, TaskRequest, WriteKey};
use keel_model::clinical_date::Precision;
use keel_model::coding::systems;
use keel_model::record::ObservationValue;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::uk_time;

/// The longest `ExternalReference` the API accepts, in characters.
pub const MAX_EXTERNAL_REFERENCE: usize = 100;

/// One write: where it goes, its body, and how to find it again.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The path after `/patients/{row}`.
    pub path: &'static str,
    pub body: Value,
    pub check: Check,
}

/// Where a write is found by its `ExternalReference`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `GET .../journal?externalReference=&eventType=`.
    Journal { event_type: &'static str },
    /// `GET .../tasks?externalReference=`.
    Tasks,
}

impl Check {
    /// The path after `/patients/{row}` and the query that finds `reference`.
    pub fn query(&self, reference: &str) -> (&'static str, Vec<(&'static str, String)>) {
        match self {
            Check::Journal { event_type } => (
                "/journal",
                vec![
                    ("externalReference", reference.to_string()),
                    ("eventType", (*event_type).to_string()),
                ],
            ),
            Check::Tasks => ("/tasks", vec![("externalReference", reference.to_string())]),
        }
    }

    /// The list the answer holds the found items in.
    pub fn list(&self) -> &'static str {
        match self {
            Check::Journal { .. } => "Events",
            Check::Tasks => "Tasks",
        }
    }
}

/// The key as an `ExternalReference`.
///
/// # Errors
/// Why the key cannot be one.
pub fn external_reference(key: &WriteKey) -> Result<&str, String> {
    let reference = key.0.as_str();
    if reference.trim().is_empty() {
        return Err("the write key is blank".into());
    }
    if reference.chars().count() > MAX_EXTERNAL_REFERENCE {
        return Err(format!(
            "the write key is longer than the {MAX_EXTERNAL_REFERENCE} characters an ExternalReference holds"
        ));
    }
    Ok(reference)
}

/// `POST .../tasks`, dated `now` (UK local).
///
/// # Errors
/// Why the API cannot take it.
pub fn task(request: &TaskRequest, now: OffsetDateTime) -> Result<Write, String> {
    Ok(Write {
        path: "/tasks",
        body: json!({
            "ExternalReference": external_reference(&request.key)?,
            "Date": uk_time::local_minute_text(now),
            "Description": request.description,
            "Urgent": request.urgent,
        }),
        check: Check::Tasks,
    })
}

/// `POST .../documents`, dated `now` (UK local), the content in base64.
///
/// # Errors
/// Why the API cannot take it.
pub fn document(request: &DocumentRequest, now: OffsetDateTime) -> Result<Write, String> {
    Ok(Write {
        path: "/documents",
        body: json!({
            "ExternalReference": external_reference(&request.key)?,
            "Date": uk_time::local_minute_text(now),
            "Title": request.title,
            "MimeType": request.content_type,
            "Content": base64::engine::general_purpose::STANDARD.encode(&request.content),
        }),
        check: Check::Journal {
            event_type: "Document",
        },
    })
}

/// `POST .../journal/coded-entries`: the SNOMED CT code when the concept has one, else its
/// CTV3 code; a quantity as `Value` and `Unit`; free text (the request's, or a text value) as
/// `Text`. The author is not sent: the API records the session's user as `EnteredBy`.
///
/// # Errors
/// Why the API cannot take it.
pub fn coded_entry(request: &EntryRequest) -> Result<Write, String> {
    let code = &request.code;
    let (scheme, coding) = if let Some(c) = code.coding_in(systems::SNOMED_CT) {
        ("SNOMED", c)
    } else if let Some(c) = code.coding_in(systems::CTV3) {
        ("CTV3", c)
    } else {
        return Err("this system files CTV3 or SNOMED CT codes only".into());
    };
    let mut body = Map::new();
    body.insert(
        "ExternalReference".into(),
        external_reference(&request.key)?.into(),
    );
    body.insert("Date".into(), entry_date(&request.date)?.into());
    body.insert("Scheme".into(), scheme.into());
    body.insert("Code".into(), coding.code.clone().into());
    let mut texts: Vec<&str> = Vec::new();
    match &request.value {
        None => {}
        Some(ObservationValue::Quantity(q)) => {
            if q.comparator.is_some() {
                return Err("this system files no comparator with a value".into());
            }
            let unit = q
                .unit
                .as_deref()
                .or(q.code.as_deref())
                .ok_or("this system files a value only with its unit")?;
            body.insert("Value".into(), q.value.as_str().into());
            body.insert("Unit".into(), unit.into());
        }
        Some(ObservationValue::Text(t)) => texts.push(t),
        Some(ObservationValue::Concept(_)) => {
            return Err("this system files no coded value with a coded entry".into());
        }
    }
    texts.extend(request.text.as_deref());
    if !texts.is_empty() {
        body.insert("Text".into(), texts.join("\n").into());
    }
    Ok(Write {
        path: "/journal/coded-entries",
        body: Value::Object(body),
        check: Check::Journal {
            event_type: "CodedEntry",
        },
    })
}

/// A clinical date as the API's `YYYY-MM-DD` or UK-local `YYYY-MM-DDThh:mm`.
fn entry_date(date: &keel_model::ClinicalDate) -> Result<String, String> {
    match date.precision() {
        Precision::Year | Precision::Month => {
            Err("this system files full dates only, not a year or a month".into())
        }
        Precision::Day => Ok(date.as_str().to_string()),
        Precision::Moment => OffsetDateTime::parse(date.as_str(), &Rfc3339)
            .map(uk_time::local_minute_text)
            .map_err(|_| "the entry's moment cannot be read".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::integration::PatientAtPractice;
    use keel_model::{ClinicalDate, CodeableConcept, Coding, Decimal, OdsCode, Quantity};
    use time::macros::datetime;

    fn entry(code: CodeableConcept, date: &str, value: Option<ObservationValue>) -> EntryRequest {
        EntryRequest {
            key: WriteKey("key-1".into()),
            patient: PatientAtPractice {
                practice: OdsCode::parse("Y90001").expect("valid"),
                source_patient_id: "11".into(),
                nhs_number: None,
            },
            date: ClinicalDate::parse(date).expect("valid"),
            code,
            value,
            text: Some("checked at home".into()),
            author: "Dr A".into(),
        }
    }

    #[test]
    fn a_coded_entry_prefers_snomed_and_keeps_the_value_as_written() {
        let code = CodeableConcept::from_coding(Coding::new(systems::CTV3, "XaPbt"))
            .with_coding(Coding::new(systems::SNOMED_CT, "1000731000000107"));
        let value = Quantity::new(Decimal::parse("48.0").expect("valid"), "mmol/mol");
        let write = coded_entry(&entry(
            code,
            "2025-07-01T09:30:00Z",
            Some(ObservationValue::Quantity(value)),
        ))
        .expect("fileable");
        assert_eq!(
            write.body,
            json!({"ExternalReference": "key-1", "Date": "2025-07-01T10:30", "Scheme": "SNOMED",
                "Code": "1000731000000107", "Value": "48.0", "Unit": "mmol/mol", "Text": "checked at home"})
        );
        assert_eq!(
            write.check,
            Check::Journal {
                event_type: "CodedEntry"
            }
        );
    }

    #[test]
    fn what_the_api_cannot_file_is_refused_before_sending() {
        let read2 = CodeableConcept::from_coding(Coding::new(systems::READ_V2, "G20.."));
        assert!(coded_entry(&entry(read2, "2025-07-01", None)).is_err());
        let ctv3 = CodeableConcept::from_coding(Coding::new(systems::CTV3, "G20.."));
        assert!(coded_entry(&entry(ctv3.clone(), "2025-07", None)).is_err());
        let coded = Some(ObservationValue::Concept(ctv3.clone()));
        assert!(coded_entry(&entry(ctv3.clone(), "2025-07-01", coded)).is_err());
        let mut long = entry(ctv3, "2025-07-01", None);
        long.key = WriteKey("k".repeat(101));
        assert!(coded_entry(&long).is_err());
    }

    #[test]
    fn a_task_is_dated_in_uk_local_time_and_checked_in_the_task_list() {
        let request = TaskRequest {
            key: WriteKey("task-1".into()),
            patient: PatientAtPractice {
                practice: OdsCode::parse("Y90001").expect("valid"),
                source_patient_id: "11".into(),
                nhs_number: None,
            },
            description: "Book a review".into(),
            urgent: true,
        };
        let write = task(&request, datetime!(2025-01-10 08:05 UTC)).expect("fileable");
        assert_eq!(write.body["Date"], "2025-01-10T08:05");
        assert_eq!(write.check.query("task-1").0, "/tasks");
    }
}
