//! The bodies of the EMIS-style API's writes, built from the contract's requests — pure and
//! deterministic (the caller passes the clock), so a retry sends byte-identical bodies, which
//! the supplier requires to recognise a repeated request id.

use base64::Engine;
use keel_core::integration::{DocumentRequest, EntryRequest, TaskRequest};
use keel_model::coding::systems;
use keel_model::record::ObservationValue;
use keel_model::{Precision, Quantity};

use super::xml::XmlWriter;

/// A request the API cannot carry; sending it again unchanged would fail the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError(pub String);

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RequestError {}

fn refuse<T>(text: impl Into<String>) -> Result<T, RequestError> {
    Err(RequestError(text.into()))
}

/// `<Task Priority><Description/><Date/></Task>`; `created` is `YYYY-MM-DDThh:mm`.
pub fn task_body(request: &TaskRequest, created: &str) -> String {
    let priority = if request.urgent { "Urgent" } else { "Routine" };
    let mut w = XmlWriter::root("Task", &[("Priority", priority)]);
    w.text("Description", &[], &request.description);
    w.text("Date", &[], created);
    w.finish("Task")
}

/// `<Document><Title/><Date/><MimeType/><Content/></Document>`; `date` is `YYYY-MM-DD`.
pub fn document_body(request: &DocumentRequest, date: &str) -> String {
    let mut w = XmlWriter::root("Document", &[]);
    w.text("Title", &[], &request.title);
    w.text("Date", &[], date);
    w.text("MimeType", &[], &request.content_type);
    let content = base64::engine::general_purpose::STANDARD.encode(&request.content);
    w.text("Content", &[], &content);
    w.finish("Document")
}

/// The API's scheme for a code system it takes.
fn scheme_of(system: &str) -> Option<&'static str> {
    match system {
        systems::SNOMED_CT => Some("SNOMED"),
        systems::READ_V2 => Some("READ2"),
        systems::CTV3 => Some("CTV3"),
        _ => None,
    }
}

fn value_element(w: &mut XmlWriter, q: &Quantity) -> Result<(), RequestError> {
    let Some(unit) = q.unit.as_deref().or(q.code.as_deref()) else {
        return refuse("the EMIS-style API takes a value only with its unit");
    };
    let mut attrs = vec![("Unit", unit)];
    if let Some(c) = q.comparator {
        attrs.push(("Comparator", c.as_code()));
    }
    w.text("Value", &attrs, q.value.as_str());
    Ok(())
}

/// `<Event>` with the request's codes (SNOMED CT, Read v2, CTV3; one per scheme, first wins),
/// its day, value and free text.
///
/// # Errors
/// [`RequestError`] when the entry has no code in a scheme the API takes, no term for a
/// code, a date less precise than a day, a value that is a concept, or a quantity without
/// a unit.
pub fn entry_body(request: &EntryRequest) -> Result<String, RequestError> {
    let mut w = XmlWriter::root("Event", &[]);
    let mut schemes: Vec<&str> = Vec::new();
    for coding in request.code.codings() {
        let Some(scheme) = scheme_of(&coding.system) else {
            continue;
        };
        if schemes.contains(&scheme) {
            continue;
        }
        let Some(term) = coding.display.as_deref().or(request.code.text.as_deref()) else {
            return refuse(format!(
                "the {scheme} code has no term, which the API requires"
            ));
        };
        w.empty(
            "Code",
            &[("Scheme", scheme), ("Value", &coding.code), ("Term", term)],
        );
        schemes.push(scheme);
    }
    if schemes.is_empty() {
        return refuse("the EMIS-style API takes SNOMED CT, Read v2 or CTV3 codes only");
    }
    if request.date.precision() < Precision::Day {
        return refuse("the EMIS-style API takes entries with a full date only");
    }
    w.text("Date", &[], request.date.date_part());
    let mut free_text: Vec<&str> = Vec::new();
    match &request.value {
        None => {}
        Some(ObservationValue::Quantity(q)) => value_element(&mut w, q)?,
        Some(ObservationValue::Text(t)) => free_text.push(t),
        Some(ObservationValue::Concept(_)) => {
            return refuse("the EMIS-style API takes no coded value on an entry");
        }
    }
    if let Some(text) = &request.text {
        free_text.push(text);
    }
    if !free_text.is_empty() {
        w.text("FreeText", &[], &free_text.join("\n"));
    }
    Ok(w.finish("Event"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::integration::{PatientAtPractice, WriteKey};
    use keel_model::{ClinicalDate, CodeableConcept, Coding, Decimal, OdsCode};

    fn entry(code: CodeableConcept, date: &str, value: Option<ObservationValue>) -> EntryRequest {
        EntryRequest {
            key: WriteKey("k1".into()),
            patient: PatientAtPractice {
                practice: OdsCode::parse("Y90001").expect("valid"),
                source_patient_id: "G".into(),
                nhs_number: None,
            },
            date: ClinicalDate::parse(date).expect("valid"),
            code,
            value,
            text: Some("note & more".into()),
            author: "Dr A".into(),
        }
    }

    #[test]
    fn an_entry_carries_its_codes_day_value_and_text() {
        let code = CodeableConcept::from_coding(
            Coding::new(systems::CTV3, "XaERp").with_display("HbA1c level (DCCT aligned)"),
        )
        .with_coding(Coding::new(systems::LOINC, "4548-4"));
        let value =
            ObservationValue::Quantity(Quantity::new(Decimal::parse("7.1").expect("valid"), "%"));
        let body = entry_body(&entry(code, "2026-01-04T09:00:00Z", Some(value))).expect("body");
        assert!(
            body.contains(
                r#"<Code Scheme="CTV3" Value="XaERp" Term="HbA1c level (DCCT aligned)"/>"#
            ),
            "{body}"
        );
        assert!(!body.contains("4548-4"), "{body}");
        assert!(body.contains("<Date>2026-01-04</Date>"), "{body}");
        assert!(body.contains(r#"<Value Unit="%">7.1</Value>"#), "{body}");
        assert!(
            body.contains("<FreeText>note &amp; more</FreeText>"),
            "{body}"
        );
    }

    #[test]
    fn entries_the_api_cannot_carry_are_refused() {
        let snomed = CodeableConcept::from_coding(
            Coding::new(systems::SNOMED_CT, "38341003").with_display("HT"),
        );
        let loinc =
            CodeableConcept::from_coding(Coding::new(systems::LOINC, "1-8").with_display("x"));
        let no_term = CodeableConcept::from_coding(Coding::new(systems::SNOMED_CT, "38341003"));
        let concept_value = ObservationValue::Concept(snomed.clone());
        for (request, why) in [
            (entry(loinc, "2026-01-04", None), "codes only"),
            (entry(no_term, "2026-01-04", None), "term"),
            (entry(snomed.clone(), "2026-01", None), "full date"),
            (
                entry(snomed, "2026-01-04", Some(concept_value)),
                "coded value",
            ),
        ] {
            let refused = entry_body(&request).expect_err(why);
            assert!(refused.0.contains(why), "{refused}");
        }
    }
}
