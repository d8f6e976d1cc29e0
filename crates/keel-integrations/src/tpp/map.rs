//! The pure mapping of TPP-style API answers into the canonical record: no I/O, no clock
//! (the retrieval time comes in [`Source`]). See the module docs of [`crate::tpp`] for the
//! field-by-field table and what is lost.

use keel_core::integration::SectionContent;
use keel_model::coding::systems;
use keel_model::record::{
    Allergy, AllergyStatus, Consultation, CourseKind, Demographics, Document, Immunisation,
    Medication, MedicationIssue, MedicationStatus, Observation, ObservationComponent,
    ObservationValue, Problem, ProblemStatus, RecordItem, RecordSection, Section, SectionWarning,
    SourceAttribute,
};
use keel_model::{
    ClinicalDate, CodeableConcept, Coding, Comparator, Decimal, Instant, NhsNumber, OdsCode,
    Provenance, Quantity, SourceSystem,
};
use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::fields::{self, Fields};
use super::uk_time;

/// The prefix of every [`SourceAttribute`] this mapping keeps.
pub const ATTRIBUTE_PREFIX: &str = "tpp-style:";
/// The code system of the simulator's synthetic dm+d ids (`"dm+d (synthetic)"`), kept apart
/// from dm+d's own as the FHIR export and GP Connect do.
pub const SYNTHETIC_DMD_SYSTEM: &str = "https://keel.invalid/sim/CodeSystem/synthetic-dmd";
/// SNOMED CT: systolic and diastolic blood pressure, the codes Keel gives the journal's
/// `Systolic` and `Diastolic` values (translations: the journal names them, it does not code them).
const SYSTOLIC: (&str, &str) = ("271649006", "Systolic blood pressure");
const DIASTOLIC: (&str, &str) = ("271650006", "Diastolic blood pressure");

/// Where mapped items come from: the practice and the time of retrieval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub practice: OdsCode,
    pub retrieved: Instant,
}

/// Parses an answer body as JSON.
///
/// # Errors
/// A description when the body is not JSON.
pub fn parse(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON ({e})"))
}

/// The `{"Error":{"Code","Message"}}` of an error answer, if it has that shape.
pub fn error_of(body: &[u8]) -> Option<(String, String)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let code = value.pointer("/Error/Code")?.as_str()?.to_string();
    let message = value
        .pointer("/Error/Message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Some((code, message))
}

/// One patient of a search answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub row: u64,
    /// `RegistrationStatus` is `Registered`.
    pub registered: bool,
}

/// The patients of `GET .../patients?nhsNumber=`.
///
/// # Errors
/// A description of what is missing.
pub fn search_results(body: &Value) -> Result<Vec<Candidate>, String> {
    let patients = body["Patients"]
        .as_array()
        .ok_or("the search answer has no Patients list")?;
    patients
        .iter()
        .map(|p| {
            let row = p["PatientRowIdentifier"]
                .as_u64()
                .ok_or("a search result has no PatientRowIdentifier")?;
            let registered = p["RegistrationStatus"] == "Registered";
            Ok(Candidate { row, registered })
        })
        .collect()
}

/// The patient of `GET .../patients/{row}`, with whether the NHS number is verified
/// (`NhsNumberStatus` `01`).
///
/// # Errors
/// A description of what is missing or malformed.
pub fn demographics(body: &Value) -> Result<(Demographics, bool), String> {
    let row = body["PatientRowIdentifier"]
        .as_u64()
        .ok_or("the patient has no PatientRowIdentifier")?;
    let nhs_number = body["NhsNumber"]
        .as_str()
        .map(|n| NhsNumber::parse(n).map_err(|_| "the NhsNumber is not valid"))
        .transpose()?;
    let registered = body.pointer("/Registration/Status") == Some(&Value::from("Registered"));
    let registered_practice = body["OrganisationUnit"]
        .as_str()
        .filter(|_| registered)
        .and_then(|ods| OdsCode::parse(ods).ok());
    let gender = body["Gender"].as_str().map(|g| match g {
        "Female" => "female",
        "Male" => "male",
        "Other" => "other",
        _ => "unknown",
    });
    let date = |key: &str| -> Result<Option<ClinicalDate>, String> {
        body[key]
            .as_str()
            .map(|d| ClinicalDate::parse(d).map_err(|_| format!("{key} is not a date")))
            .transpose()
    };
    let demographics = Demographics {
        nhs_number,
        source_patient_id: row.to_string(),
        family: body["Surname"].as_str().map(str::to_string),
        given: body["Forenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        birth_date: date("DateOfBirth")?,
        gender: gender.map(str::to_string),
        postcode: body
            .pointer("/Address/Postcode")
            .and_then(Value::as_str)
            .map(str::to_string),
        registered_practice,
        deceased: date("DateOfDeath")?,
    };
    Ok((demographics, body["NhsNumberStatus"] == "01"))
}

/// The `RowIdentifier`s of a journal or task list answer (the check after a lost write).
///
/// # Errors
/// A description when the list is missing.
pub fn row_identifiers(body: &Value, list: &str) -> Result<Vec<u64>, String> {
    body[list]
        .as_array()
        .ok_or_else(|| format!("the answer has no {list} list"))?
        .iter()
        .map(|e| {
            e["RowIdentifier"]
                .as_u64()
                .ok_or_else(|| format!("an item of {list} has no RowIdentifier"))
        })
        .collect()
}

/// The `RowIdentifier` of a `201 Created` answer.
///
/// # Errors
/// A description when it is missing.
pub fn created_row(body: &Value) -> Result<u64, String> {
    body["RowIdentifier"]
        .as_u64()
        .ok_or_else(|| "the answer has no RowIdentifier".to_string())
}

/// The journal's event type holding `section`, or `None` for medications (read from the
/// medication list, with their issues).
pub fn event_type(section: RecordSection) -> Option<&'static str> {
    match section {
        RecordSection::Problems => Some("Problem"),
        RecordSection::Medications => None,
        RecordSection::Allergies => Some("Allergy"),
        RecordSection::Observations => Some("CodedEntry"),
        RecordSection::Immunisations => Some("Immunisation"),
        RecordSection::Consultations => Some("Consultation"),
        RecordSection::Documents => Some("Document"),
    }
}

/// A journal answer, read lazily (see [`Fields`]).
#[derive(Debug, Clone, Deserialize)]
pub struct Journal<'a> {
    #[serde(rename = "Events", borrow)]
    events: Vec<Fields<'a>>,
    #[serde(rename = "WithheldConfidentialEvents", default)]
    withheld: u64,
}

/// Reads a journal answer (`GET .../journal`).
///
/// # Errors
/// A description when it is not a journal.
pub fn parse_journal(body: &[u8]) -> Result<Journal<'_>, String> {
    serde_json::from_slice(body).map_err(|e| format!("the journal cannot be read ({e})"))
}

/// A medication list answer, read lazily.
#[derive(Debug, Clone, Deserialize)]
pub struct MedicationList<'a> {
    #[serde(rename = "Medication", borrow)]
    courses: Vec<Fields<'a>>,
}

/// Reads a medication list answer (`GET .../medication`).
///
/// # Errors
/// A description when it is not a medication list.
pub fn parse_medication(body: &[u8]) -> Result<MedicationList<'_>, String> {
    serde_json::from_slice(body).map_err(|e| format!("the medication list cannot be read ({e})"))
}

const MEDICATIONS_NOT_IN_JOURNAL: &str =
    "medications are read from the medication list, not the journal";

/// One section from a journal answer: the events of the section's type, in journal order,
/// and [`SectionWarning::ConfidentialItemsWithheld`] when the answer counts withheld events.
/// The count is per answer, so the journal should be asked for the section's event type only.
/// For medications use [`medication_section`].
///
/// # Errors
/// A description of the first event that cannot be read.
pub fn journal_section(
    journal: &Journal,
    section: RecordSection,
    source: &Source,
) -> Result<SectionContent, String> {
    let warnings = if journal.withheld > 0 {
        vec![SectionWarning::ConfidentialItemsWithheld]
    } else {
        Vec::new()
    };
    let wanted = event_type(section).ok_or(MEDICATIONS_NOT_IN_JOURNAL)?;
    let of_type = journal
        .events
        .iter()
        .filter(|e| e.str("EventType").as_deref() == Some(wanted));
    Ok(match section {
        RecordSection::Problems => {
            SectionContent::Problems(collect(section, of_type, warnings, source, &PROBLEM)?)
        }
        RecordSection::Allergies => {
            SectionContent::Allergies(collect(section, of_type, warnings, source, &ALLERGY)?)
        }
        RecordSection::Observations => {
            SectionContent::Observations(collect(section, of_type, warnings, source, &OBSERVATION)?)
        }
        RecordSection::Immunisations => SectionContent::Immunisations(collect(
            section,
            of_type,
            warnings,
            source,
            &IMMUNISATION,
        )?),
        RecordSection::Consultations => SectionContent::Consultations(collect(
            section,
            of_type,
            warnings,
            source,
            &CONSULTATION,
        )?),
        RecordSection::Documents => {
            SectionContent::Documents(collect(section, of_type, warnings, source, &DOCUMENT)?)
        }
        RecordSection::Medications => return Err(MEDICATIONS_NOT_IN_JOURNAL.into()),
    })
}

/// The medications section from the medication list: every course with its issues. The list
/// has no confidential courses and no withheld count.
///
/// # Errors
/// A description of the first course that cannot be read.
pub fn medication_section(
    list: &MedicationList,
    source: &Source,
) -> Result<Section<Medication>, String> {
    collect(
        RecordSection::Medications,
        list.courses.iter(),
        Vec::new(),
        source,
        &MEDICATION,
    )
}

/// How one kind of event maps: the fields its content reads (every other field is kept as a
/// source attribute), the field holding its status word, and the content mapping.
struct Kind<T> {
    reads: &'static [&'static str],
    status: Option<&'static str>,
    content: fn(&Fields) -> Result<T, String>,
}

/// Fields every item's common part reads (identity, provenance, confidentiality).
const COMMON: &[&str] = &[
    "RowIdentifier",
    "EventType",
    "Time",
    "Confidential",
    "ClinicianName",
    "EnteredBy",
];

fn collect<'a, 'b: 'a, T>(
    section: RecordSection,
    entries: impl Iterator<Item = &'a Fields<'b>>,
    warnings: Vec<SectionWarning>,
    source: &Source,
    kind: &Kind<T>,
) -> Result<Section<T>, String> {
    let items = entries
        .map(|entry| item(entry, source, kind))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Section::from_items(section, items, warnings))
}

fn item<T>(e: &Fields, source: &Source, kind: &Kind<T>) -> Result<RecordItem<T>, String> {
    let row = e
        .u64("RowIdentifier")
        .ok_or("an entry has no RowIdentifier")?;
    let content = (kind.content)(e).map_err(|why| format!("entry {row}: {why}"))?;
    let mut provenance = Provenance::new(source.practice.clone(), SourceSystem::TppStyle)
        .with_retrieved(source.retrieved.clone());
    if let Some(recorded) = local_moment(e)?.and_then(|m| Instant::parse(&m).ok()) {
        provenance = provenance.with_recorded(recorded);
    }
    if let Some(author) = e.str("ClinicianName").or_else(|| e.str("EnteredBy")) {
        provenance = provenance.with_author(author);
    }
    if let Some(status) = kind.status.and_then(|key| e.str(key)) {
        provenance = provenance.with_status(status);
    }
    let mut source_attributes: Vec<SourceAttribute> = e
        .iter()
        .filter(|(key, raw)| {
            !COMMON.contains(key) && !kind.reads.contains(key) && raw.get() != "null"
        })
        .map(|(key, raw)| {
            SourceAttribute::new(format!("{ATTRIBUTE_PREFIX}{key}"), fields::words(raw))
        })
        .collect();
    if e.is_true("Confidential") {
        source_attributes.push(SourceAttribute::new(
            format!("{ATTRIBUTE_PREFIX}Confidential"),
            "true",
        ));
    }
    Ok(RecordItem {
        source_id: row.to_string(),
        content,
        provenance,
        source_attributes,
    })
}

fn owned(e: &Fields, key: &str) -> Option<String> {
    e.str(key).map(Cow::into_owned)
}

fn required(e: &Fields, key: &str) -> Result<String, String> {
    owned(e, key).ok_or_else(|| format!("no {key}"))
}

fn date(e: &Fields, key: &str) -> Result<Option<ClinicalDate>, String> {
    e.str(key)
        .map(|d| ClinicalDate::parse(&d).map_err(|_| format!("{key} is not a date")))
        .transpose()
}

/// `Date` with `Time` as a UK-local moment `YYYY-MM-DDThh:mm:00±hh:mm`, when both are given.
fn local_moment(e: &Fields) -> Result<Option<String>, String> {
    let (Some(day), Some(time)) = (e.str("Date"), e.str("Time")) else {
        return Ok(None);
    };
    let parsed = time::Date::parse(
        &day,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| "Date is not a date")?;
    let minute = parse_hhmm(&time).ok_or("Time is not hh:mm")?;
    let offset = uk_time::offset_of_local(parsed, minute);
    Ok(Some(format!(
        "{day}T{time}:00{}",
        uk_time::offset_text(offset)
    )))
}

fn parse_hhmm(time: &str) -> Option<u16> {
    let (h, m) = time.split_once(':')?;
    let valid = h.len() == 2 && m.len() == 2;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (valid && h < 24 && m < 60).then_some(h * 60 + m)
}

/// `Codes` (legacy first, SNOMED CT beside) as recorded; a scheme Keel does not know is kept
/// by its term only (its code survives as the `Codes` source attribute).
fn concept(e: &Fields) -> Result<CodeableConcept, String> {
    let codes = e.objects("Codes")?.ok_or("no Codes")?;
    let mut concept = CodeableConcept::default();
    for c in &codes {
        let scheme = c.str("Scheme").ok_or("a code has no Scheme")?;
        let code = c.str("Code").ok_or("a code has no Code")?;
        let term = owned(c, "Term");
        let system = match scheme.as_ref() {
            "CTV3" => systems::CTV3,
            "Read2" => systems::READ_V2,
            "SNOMED" => systems::SNOMED_CT,
            _ => {
                if concept.text.is_none() {
                    concept.text = term;
                }
                continue;
            }
        };
        let mut coding = Coding::new(system, code);
        if let Some(term) = term {
            coding = coding.with_display(term);
        }
        concept = concept.with_coding(coding);
    }
    Ok(concept)
}

fn drug(e: &Fields) -> Result<CodeableConcept, String> {
    let d = e.object("Drug")?.ok_or("no Drug")?;
    let scheme = d.str("Scheme").ok_or("the Drug has no Scheme")?;
    let code = d.str("Code").ok_or("the Drug has no Code")?;
    let system = match scheme.as_ref() {
        "dm+d" => systems::DMD,
        "dm+d (synthetic)" => SYNTHETIC_DMD_SYSTEM,
        other => return Err(format!("the Drug scheme {other} is not dm+d")),
    };
    let mut coding = Coding::new(system, code);
    if let Some(name) = owned(&d, "Name") {
        coding = coding.with_display(name);
    }
    Ok(CodeableConcept::from_coding(coding))
}

/// A number as written (`7.50` stays `7.50`), or a string holding one.
fn decimal(raw: &RawValue) -> Result<Decimal, String> {
    let text = fields::string(raw).unwrap_or(Cow::Borrowed(raw.get()));
    Decimal::parse(&text).map_err(|_| format!("{text} is not a decimal"))
}

fn quantity(raw: &RawValue, unit: Option<&str>) -> Result<Quantity, String> {
    let value = decimal(raw)?;
    Ok(match unit {
        Some(unit) => Quantity::new(value, unit),
        None => Quantity {
            value,
            comparator: None,
            unit: None,
            system: None,
            code: None,
            normalised: None,
        },
    })
}

fn comparator(text: &str) -> Result<Comparator, String> {
    match text {
        "<" => Ok(Comparator::LessThan),
        "<=" => Ok(Comparator::LessOrEqual),
        ">=" => Ok(Comparator::GreaterOrEqual),
        ">" => Ok(Comparator::GreaterThan),
        other => Err(format!("the comparator {other} is not known")),
    }
}

const PROBLEM: Kind<Problem> = Kind {
    reads: &["Codes", "OnsetDate", "EndDate"],
    status: Some("ProblemStatus"),
    content: problem,
};

fn problem(e: &Fields) -> Result<Problem, String> {
    let (status, significant) = match required(e, "ProblemStatus")?.as_str() {
        "Active" => (ProblemStatus::Active, None),
        "Significant past" => (ProblemStatus::Inactive, Some(true)),
        "Past" => (ProblemStatus::Inactive, Some(false)),
        other => return Err(format!("the problem status {other} is not known")),
    };
    Ok(Problem {
        code: concept(e)?,
        status,
        onset: date(e, "OnsetDate")?,
        ended: date(e, "EndDate")?,
        significant,
    })
}

const ALLERGY: Kind<Allergy> = Kind {
    reads: &["Codes", "Reaction", "Date"],
    status: Some("AllergyStatus"),
    content: allergy,
};

fn allergy(e: &Fields) -> Result<Allergy, String> {
    let status = match required(e, "AllergyStatus")?.as_str() {
        "Active" => AllergyStatus::Active,
        "Inactive" => AllergyStatus::Resolved,
        other => return Err(format!("the allergy status {other} is not known")),
    };
    let reaction = e.object("Reaction")?.map(|r| concept(&r)).transpose()?;
    Ok(Allergy {
        substance: concept(e)?,
        reaction,
        status,
        recorded: date(e, "Date")?,
    })
}

const OBSERVATION: Kind<Observation> = Kind {
    reads: &["Codes", "Date", "Value", "Text"],
    status: None,
    content: observation,
};

fn observation(e: &Fields) -> Result<Observation, String> {
    let note = owned(e, "Text");
    let (value, components, note) = match e.object("Value")? {
        None => (note.map(ObservationValue::Text), Vec::new(), None),
        Some(v) => {
            let unit = v.str("Unit");
            let unit = unit.as_deref();
            match (v.get("Systolic"), v.get("Diastolic"), v.get("Number")) {
                (Some(sys), Some(dia), _) => {
                    let part = |name: &str, (code, display): (&str, &str), raw: &RawValue| {
                        let mut code_of = CodeableConcept::from_text(name);
                        code_of.add_translation(
                            Coding::new(systems::SNOMED_CT, code).with_display(display),
                        );
                        quantity(raw, unit).map(|q| ObservationComponent {
                            code: code_of,
                            value: ObservationValue::Quantity(q),
                        })
                    };
                    let components = vec![
                        part("Systolic", SYSTOLIC, sys)?,
                        part("Diastolic", DIASTOLIC, dia)?,
                    ];
                    (None, components, note)
                }
                (_, _, Some(number)) => {
                    let mut q = quantity(number, unit)?;
                    if let Some(c) = v.str("Comparator") {
                        q = q.with_comparator(comparator(&c)?);
                    }
                    (Some(ObservationValue::Quantity(q)), Vec::new(), note)
                }
                _ => return Err("the Value has neither Number nor Systolic and Diastolic".into()),
            }
        }
    };
    Ok(Observation {
        code: concept(e)?,
        effective: date(e, "Date")?,
        value,
        components,
        note,
    })
}

const IMMUNISATION: Kind<Immunisation> = Kind {
    reads: &["Codes", "Date", "Product"],
    status: None,
    content: immunisation,
};

fn immunisation(e: &Fields) -> Result<Immunisation, String> {
    Ok(Immunisation {
        vaccine: concept(e)?,
        date: date(e, "Date")?,
        product: owned(e, "Product"),
    })
}

const CONSULTATION: Kind<Consultation> = Kind {
    reads: &["Date", "ConsultationType", "Text"],
    status: None,
    content: consultation,
};

fn consultation(e: &Fields) -> Result<Consultation, String> {
    let start = match local_moment(e)? {
        Some(moment) => {
            Some(ClinicalDate::parse(&moment).map_err(|_| "Date and Time are not a moment")?)
        }
        None => date(e, "Date")?,
    };
    Ok(Consultation {
        start,
        kind: owned(e, "ConsultationType"),
        clinician: owned(e, "ClinicianName").or_else(|| owned(e, "EnteredBy")),
        text: owned(e, "Text"),
    })
}

const DOCUMENT: Kind<Document> = Kind {
    reads: &["Date", "Title", "MimeType"],
    status: None,
    content: document,
};

fn document(e: &Fields) -> Result<Document, String> {
    Ok(Document {
        title: required(e, "Title")?,
        content_type: required(e, "MimeType")?,
        created: date(e, "Date")?,
    })
}

const MEDICATION: Kind<Medication> = Kind {
    reads: &[
        "Drug",
        "Dosage",
        "Quantity",
        "QuantityUnit",
        "PrescriptionType",
        "StartDate",
        "EndDate",
        "Issues",
    ],
    status: Some("Status"),
    content: medication,
};

fn medication(e: &Fields) -> Result<Medication, String> {
    let unit = e.str("QuantityUnit");
    let unit = unit.as_deref();
    let course = match required(e, "PrescriptionType")?.as_str() {
        "Repeat" => CourseKind::Repeat,
        "Acute" => CourseKind::Acute,
        other => return Err(format!("the prescription type {other} is not known")),
    };
    let status = match required(e, "Status")?.as_str() {
        "Current" => MedicationStatus::Active,
        "Ended" => MedicationStatus::Completed,
        "Discontinued" => MedicationStatus::Stopped,
        other => return Err(format!("the medication status {other} is not known")),
    };
    let issues = e
        .objects("Issues")?
        .unwrap_or_default()
        .iter()
        .map(|issue| {
            let day = issue.str("Date").ok_or("an issue has no Date")?;
            Ok(MedicationIssue {
                date: ClinicalDate::parse(&day).map_err(|_| "an issue Date is not a date")?,
                quantity: issue
                    .get("Quantity")
                    .map(|q| quantity(q, unit))
                    .transpose()?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Medication {
        medication: drug(e)?,
        dosage: owned(e, "Dosage"),
        quantity: e.get("Quantity").map(|q| quantity(q, unit)).transpose()?,
        course,
        status,
        start: date(e, "StartDate")?,
        end: date(e, "EndDate")?,
        issues,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_model::SectionState;
    use proptest::prelude::*;
    use serde_json::json;

    fn source() -> Source {
        Source {
            practice: OdsCode::parse("Y90001").expect("valid"),
            retrieved: Instant::parse("2026-01-05T10:00:00Z").expect("valid"),
        }
    }

    /// `section` of a journal answer with this body.
    fn section_of(body: &Value, section: RecordSection) -> Result<SectionContent, String> {
        let text = body.to_string();
        journal_section(&parse_journal(text.as_bytes())?, section, &source())
    }

    fn journal(events: Value, withheld: u64) -> Value {
        json!({"PatientRowIdentifier": 11, "EventCount": 1,
            "WithheldConfidentialEvents": withheld, "Events": events})
    }

    #[test]
    fn a_ctv3_problem_keeps_its_codes_in_order_and_its_status_word() {
        let body = journal(
            json!([{"RowIdentifier": 110000001, "EventType": "Problem", "Date": "2004-03-01",
                "Confidential": false, "ClinicianStaffRowIdentifier": 1001, "ClinicianName": "Dr A Jones",
                "Codes": [{"Scheme": "CTV3", "Code": "G20..", "Term": "Essential hypertension"},
                          {"Scheme": "SNOMED", "Code": "59621000", "Term": "Essential hypertension"}],
                "ProblemStatus": "Significant past", "OnsetDate": "2004", "EndDate": "2010-05-02"}]),
            0,
        );
        let SectionContent::Problems(section) =
            section_of(&body, RecordSection::Problems).expect("maps")
        else {
            panic!("problems");
        };
        let item = &section.items[0];
        let codings = item.content.code.codings();
        assert_eq!(codings[0].system, systems::CTV3);
        assert_eq!(codings[0].code, "G20..");
        assert_eq!(codings[1].system, systems::SNOMED_CT);
        assert!(codings.iter().all(|c| c.origin.is_source()));
        assert_eq!(item.content.status, ProblemStatus::Inactive);
        assert_eq!(item.content.significant, Some(true));
        assert_eq!(
            item.content.onset.as_ref().map(ClinicalDate::as_str),
            Some("2004")
        );
        assert_eq!(item.provenance.status.as_deref(), Some("Significant past"));
        assert_eq!(item.provenance.author.as_deref(), Some("Dr A Jones"));
        let names: Vec<&str> = item
            .source_attributes
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "tpp-style:Date",
                "tpp-style:ClinicianStaffRowIdentifier",
                "tpp-style:ProblemStatus"
            ]
        );
    }

    #[test]
    fn blood_pressure_is_one_observation_with_two_components_and_units_stay_as_recorded() {
        let mut body = journal(
            json!([
                {"RowIdentifier": 2, "EventType": "CodedEntry", "Date": "2019-01-02", "Confidential": false,
                 "Codes": [{"Scheme": "SNOMED", "Code": "75367002", "Term": "Blood pressure"}],
                 "Value": {"Systolic": 142, "Diastolic": 88, "Unit": "mmHg"}, "Source": "Practice"},
                {"RowIdentifier": 3, "EventType": "CodedEntry", "Date": "2009-01-02", "Confidential": false,
                 "Codes": [{"Scheme": "CTV3", "Code": "X772q", "Term": "HbA1c"}],
                 "Value": {"Number": 7.50, "Unit": "%", "Comparator": ">"}, "Source": "Laboratory"},
                {"RowIdentifier": 4, "EventType": "Problem"}
            ]),
            0,
        );
        // As the API writes it: JSON text with the trailing zero (the json! macro would
        // make it a float).
        body["Events"][1]["Value"]["Number"] = serde_json::from_str("7.50").expect("number");
        let SectionContent::Observations(section) =
            section_of(&body, RecordSection::Observations).expect("maps")
        else {
            panic!("observations");
        };
        assert_eq!(section.items.len(), 2, "only coded entries");
        let bp = &section.items[0].content;
        assert_eq!(bp.value, None);
        assert_eq!(bp.components.len(), 2);
        assert!(bp.components[0].code.has(systems::SNOMED_CT, SYSTOLIC.0));
        let ObservationValue::Quantity(q) = &bp.components[1].value else {
            panic!("quantity");
        };
        assert_eq!((q.value.as_str(), q.unit.as_deref()), ("88", Some("mmHg")));
        let Some(ObservationValue::Quantity(hba1c)) = &section.items[1].content.value else {
            panic!("quantity");
        };
        assert_eq!(hba1c.value.as_str(), "7.50");
        assert_eq!(hba1c.unit.as_deref(), Some("%"));
        assert_eq!(hba1c.comparator, Some(Comparator::GreaterThan));
        assert_eq!(
            section.items[1].source_attributes,
            [SourceAttribute::new("tpp-style:Source", "Laboratory")]
        );
    }

    #[test]
    fn withheld_events_give_the_warning_and_withheld_when_none_are_left() {
        let body = journal(json!([]), 2);
        let content = section_of(&body, RecordSection::Problems).expect("maps");
        let SectionContent::Problems(section) = content else {
            panic!("problems");
        };
        assert!(matches!(section.state, SectionState::Withheld { .. }));
        assert_eq!(
            section.warnings,
            [SectionWarning::ConfidentialItemsWithheld]
        );
        let empty = journal(json!([]), 0);
        let SectionContent::Problems(section) =
            section_of(&empty, RecordSection::Problems).expect("maps")
        else {
            panic!("problems");
        };
        assert_eq!(section.state, SectionState::NothingRecorded);
    }

    #[test]
    fn a_consultation_with_a_local_time_gets_its_uk_offset() {
        let body = journal(
            json!([{"RowIdentifier": 5, "EventType": "Consultation", "Date": "2025-07-01",
                "Time": "09:15", "Confidential": true, "ConsultationType": "Telephone",
                "DurationMinutes": 10, "Text": "Call back", "EnteredBy": "Standard User"}]),
            0,
        );
        let SectionContent::Consultations(section) =
            section_of(&body, RecordSection::Consultations).expect("maps")
        else {
            panic!("consultations");
        };
        let item = &section.items[0];
        assert_eq!(
            item.content.start.as_ref().map(ClinicalDate::as_str),
            Some("2025-07-01T09:15:00+01:00")
        );
        assert_eq!(
            item.provenance.recorded.as_ref().map(Instant::as_str),
            Some("2025-07-01T09:15:00+01:00")
        );
        assert!(
            item.source_attributes
                .contains(&SourceAttribute::new("tpp-style:Confidential", "true"))
        );
    }

    #[test]
    fn an_unknown_status_word_is_malformed_not_guessed() {
        let body = journal(
            json!([{"RowIdentifier": 1, "EventType": "Problem", "Codes": [], "ProblemStatus": "Dormant"}]),
            0,
        );
        let err = section_of(&body, RecordSection::Problems).expect_err("refused");
        assert!(err.contains("Dormant"), "{err}");
    }

    proptest! {
        #[test]
        fn mapping_any_json_never_panics(text in "\\PC{0,300}") {
            if let Ok(journal) = parse_journal(text.as_bytes()) {
                for section in RecordSection::ALL {
                    let _ = journal_section(&journal, section, &source());
                }
            }
            if let Ok(list) = parse_medication(text.as_bytes()) {
                let _ = medication_section(&list, &source());
            }
            if let Ok(value) = serde_json::from_str::<Value>(&text) {
                let _ = demographics(&value);
                let _ = search_results(&value);
            }
        }

        #[test]
        fn mapping_arbitrary_events_never_panics(
            events in proptest::collection::vec(event_strategy(), 0..8)
        ) {
            let body = journal(Value::Array(events.clone()), 1);
            for section in RecordSection::ALL {
                let _ = section_of(&body, section);
            }
            let list = json!({"Medication": events}).to_string();
            if let Ok(list) = parse_medication(list.as_bytes()) {
                let _ = medication_section(&list, &source());
            }
        }
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::from),
            Just(json!("2020-02-29")),
            Just(json!("10:61")),
            Just(json!("Active")),
            Just(json!([{"Scheme": "CTV3", "Code": "G20.."}, {"Scheme": 5}])),
            Just(json!({"Systolic": "x", "Diastolic": 1})),
            Just(
                serde_json::from_str(r#"{"Number": 1.5e400, "Comparator": "~"}"#)
                    .unwrap_or(Value::Null)
            ),
            Just(json!({"Scheme": "dm+d", "Code": "1"})),
            Just(json!([{"Date": "2020"}, {"Quantity": true}])),
        ]
    }

    fn event_strategy() -> impl Strategy<Value = Value> {
        const KEYS: [&str; 16] = [
            "RowIdentifier",
            "EventType",
            "Date",
            "Time",
            "Codes",
            "Value",
            "ProblemStatus",
            "AllergyStatus",
            "Status",
            "PrescriptionType",
            "Drug",
            "Issues",
            "Title",
            "MimeType",
            "Reaction",
            "Quantity",
        ];
        let types = prop_oneof![
            Just("Problem"),
            Just("CodedEntry"),
            Just("Allergy"),
            Just("Immunisation"),
            Just("Consultation"),
            Just("Document"),
        ];
        (
            types,
            any::<u64>(),
            proptest::collection::vec((0..KEYS.len(), scalar()), 0..10),
        )
            .prop_map(|(t, row, fields)| {
                let mut e: serde_json::Map<String, Value> = fields
                    .into_iter()
                    .map(|(k, v)| (KEYS[k].to_string(), v))
                    .collect();
                e.entry("EventType").or_insert_with(|| Value::from(t));
                e.entry("RowIdentifier").or_insert_with(|| Value::from(row));
                Value::Object(e)
            })
    }
}
