//! The federated record ([`FederatedRecord`]) as a FHIR R4 `collection` Bundle, for
//! `GET /fhir/Patient/{id}/$record`: a pure function from the canonical record to JSON.
//!
//! # Shape
//!
//! - **Patient** from the practice's demographics: NHS number (`https://fhir.nhs.uk/Id/nhs-number`),
//!   the practice's own patient id ([`SOURCE_PATIENT_SYSTEM`]), name, birthDate, gender,
//!   deceasedDateTime, address postcode, generalPractitioner by ODS identifier; nothing for
//!   what is `None`. Absent when the practice could not be asked.
//! - **OperationOutcome**, only when a section is unavailable: one issue per unavailable
//!   section (severity `warning`, code `incomplete`, `details` coded with the section from
//!   [`RECORD_SECTION_SYSTEM`] and the reason as text, `diagnostics` naming both). The Bundle
//!   then carries the `meta.tag` [`RECORD_COMPLETENESS_SYSTEM`]`#partial`.
//! - **List** per section asked for, in order: status `current`, mode `snapshot`, title,
//!   `code` [`RECORD_SECTION_SYSTEM`]`#<section key>`, subject (when there is a Patient). A
//!   recorded section has one `entry.item` per item; an empty one has `emptyReason` (from
//!   [`SectionState::empty_reason`]: `nilknown`, `withheld`, `unavailable`) and a `note` with
//!   the reason. Each source warning is a [`SECTION_WARNING_URL`] extension whose `valueCode`
//!   is the warning's key; data-in-transit's date rides on `_valueCode` as a
//!   [`SECTION_WARNING_SINCE_URL`] extension (an extension cannot hold a value and
//!   sub-extensions both).
//! - **Item resources**: problem → Condition; medication course → MedicationStatement plus a
//!   MedicationRequest per issue (listed in the statement's `derivedFrom`); allergy →
//!   AllergyIntolerance; observation → Observation; immunisation → Immunization;
//!   consultation → Encounter; document → DocumentReference. The `items` module says
//!   how each is shaped.
//!
//! Every item resource (issues included) has `meta.source` `<source system>#<ODS>`, an
//! [`ITEM_PROVENANCE_URL`] extension with the provenance fields present, one
//! [`SOURCE_ATTRIBUTE_URL`] extension per source attribute (an unmapped supplier field,
//! kept with its name), and the source's id as an identifier ([`SOURCE_ITEM_SYSTEM`]).
//! Codings and quantities are exactly as canonical; a Keel translation carries a
//! [`CODING_ORIGIN_URL`] extension.
//!
//! Ids are UUIDs hashed from what names the resource (see the `ids` module): stable across reads,
//! valid FHIR ids whatever the source's ids hold. `fullUrl` and every reference are the
//! `urn:uuid:` form: the resources are not stored by Keel, so no RESTful URL would resolve.
//!
//! # What is lost or approximated
//!
//! - Canonical text R4 cannot hold (empty strings; codes and URIs with stray whitespace) is
//!   omitted or normalised, the exact original kept in an [`ORIGINAL_TEXT_URL`] extension; an
//!   empty source attribute name or value has no sub-extension, and one with both empty is
//!   dropped. An empty required concept becomes a data-absent reason.
//! - A medication issue's quantity is a `SimpleQuantity`, which R4 forbids a comparator: a
//!   comparator there is dropped. Issues are `completed` orders; the source has no status.
//! - Observation status is `final` and Encounter status `finished`, class v3 `UNK` (a filed
//!   GP record entry; the canonical record carries no status or class). An immunisation with
//!   no date has `occurrenceString` "Date not recorded".
//! - Patient `birthDate` is a `date`: a birth moment keeps its date part. A gender outside R4's
//!   four codes is not a `gender` but a source-attribute extension named `gender`.
//! - A section whose state says recorded but holds no items is shown as nothing recorded; a
//!   section with items whose state says otherwise shows its items and the reason in a note
//!   (R4 lists with entries cannot have an empty reason).

mod datatypes;
mod ids;
mod items;

use keel_core::integration::{FederatedRecord, PatientAtPractice, SectionContent};
use keel_model::identifier::systems::NHS_NUMBER;
use keel_model::record::{Demographics, RecordSection, Section, SectionWarning};
use keel_model::{OdsCode, SectionState};
use serde_json::{Value, json};

use datatypes::{Obj, coding, object, ods_identifier, source_attribute};
use ids::{Ids, urn};
use items::{ItemContext, Rendered, render_items};

/// The code system of record sections; codes are [`RecordSection::key`].
pub const RECORD_SECTION_SYSTEM: &str = "https://keel.example/fhir/CodeSystem/record-section";
/// The code system of the Bundle's completeness tag (`partial`).
pub const RECORD_COMPLETENESS_SYSTEM: &str =
    "https://keel.example/fhir/CodeSystem/record-completeness";
/// A source's warning about a section (List extension, `valueCode` the warning key).
pub const SECTION_WARNING_URL: &str =
    "https://keel.example/fhir/StructureDefinition/section-warning";
/// The date since which data is in transit (on a section warning's `_valueCode`).
pub const SECTION_WARNING_SINCE_URL: &str =
    "https://keel.example/fhir/StructureDefinition/section-warning-since";
/// Where an item came from: sub-extensions `source-organisation`, `source-system`,
/// `recorded`, `retrieved`, `author`, `status`, `source-version`.
pub const ITEM_PROVENANCE_URL: &str =
    "https://keel.example/fhir/StructureDefinition/item-provenance";
/// A supplier field with no canonical home: sub-extensions `name` and `value`.
pub const SOURCE_ATTRIBUTE_URL: &str =
    "https://keel.example/fhir/StructureDefinition/source-attribute";
/// On a Coding Keel derived rather than received: `valueCode` `translated`.
pub const CODING_ORIGIN_URL: &str = "https://keel.example/fhir/StructureDefinition/coding-origin";
/// The exact canonical text of a primitive R4 could not hold verbatim.
pub const ORIGINAL_TEXT_URL: &str = "https://keel.example/fhir/StructureDefinition/original-text";
/// On a Quantity: Keel's conversion to a canonical UCUM unit.
pub const NORMALISED_QUANTITY_URL: &str =
    "https://keel.example/fhir/StructureDefinition/normalised-quantity";
/// On a Condition: whether the source holds it as a significant (major) problem.
pub const PROBLEM_SIGNIFICANT_URL: &str =
    "https://keel.example/fhir/StructureDefinition/problem-significant";
/// On a MedicationStatement: the course kind, `acute` or `repeat`.
pub const COURSE_KIND_URL: &str = "https://keel.example/fhir/StructureDefinition/course-kind";
/// On a MedicationStatement: the quantity authorised per issue of the course.
pub const COURSE_QUANTITY_URL: &str =
    "https://keel.example/fhir/StructureDefinition/course-quantity";
/// On an Immunization: the product name as recorded.
pub const VACCINE_PRODUCT_URL: &str =
    "https://keel.example/fhir/StructureDefinition/vaccine-product";
/// On an Encounter: the consultation's free text.
pub const CONSULTATION_TEXT_URL: &str =
    "https://keel.example/fhir/StructureDefinition/consultation-text";
/// The source's own id of an item.
pub const SOURCE_ITEM_SYSTEM: &str = "https://keel.example/fhir/Id/source-item";
/// The practice system's own id of the patient.
pub const SOURCE_PATIENT_SYSTEM: &str = "https://keel.example/fhir/Id/source-patient";

/// The note on a section the practice holds nothing for.
const NOTHING_RECORDED_NOTE: &str = "The practice holds nothing recorded in this section.";

/// Renders `record` as a FHIR R4 `collection` Bundle.
pub fn record_bundle(record: &FederatedRecord) -> Value {
    let mut ids = Ids::default();
    let mut entries = Vec::new();
    let patient_id = record
        .patient
        .as_ref()
        .map(|(at, _)| at.source_patient_id.as_str());
    let subject = match &record.patient {
        Some((at, demographics)) => {
            let id = ids.mint(&["patient", record.practice.as_str(), &at.source_patient_id]);
            let reference = json!({"reference": urn(&id)});
            entries.push(entry(&id, patient(&id, at, demographics)));
            Some(reference)
        }
        None => None,
    };
    let unavailable: Vec<(RecordSection, &str)> = record
        .sections
        .iter()
        .filter_map(|content| match state(content) {
            SectionState::Unavailable { reason } => Some((content.section(), reason.as_str())),
            _ => None,
        })
        .collect();
    if !unavailable.is_empty() {
        let id = ids.mint(&[
            "outcome",
            record.practice.as_str(),
            patient_id.unwrap_or_default(),
        ]);
        entries.push(entry(&id, outcome(&id, &unavailable)));
    }
    // R4 requires a subject on most item resources; items only come with a patient, but a
    // record built otherwise still renders valid resources.
    let item_subject = subject
        .clone()
        .unwrap_or_else(|| json!({"display": "The patient (not found at the practice)"}));
    let mut resources = Vec::new();
    for content in &record.sections {
        let section = content.section();
        let list_id = ids.mint(&[
            "list",
            record.practice.as_str(),
            patient_id.unwrap_or_default(),
            section.key(),
        ]);
        let mut ctx = ItemContext {
            subject: &item_subject,
            ids: &mut ids,
            section: section.key(),
        };
        let references = section_items(content, &mut ctx, &mut resources);
        let list = list(&list_id, content, subject.as_ref(), references);
        entries.push(entry(&list_id, list));
    }
    entries.extend(resources.into_iter().map(|r| entry(&r.id, r.resource)));
    let mut bundle = Obj::new();
    bundle.set("resourceType", Value::from("Bundle"));
    if record.is_partial() {
        bundle.set(
            "meta",
            json!({"tag": [{
                "system": RECORD_COMPLETENESS_SYSTEM,
                "code": "partial",
                "display": "Partial record: some sections could not be had"
            }]}),
        );
    }
    bundle
        .set("type", Value::from("collection"))
        .set_array("entry", entries);
    bundle.build()
}

fn entry(id: &str, resource: Value) -> Value {
    object([("fullUrl", Value::from(urn(id))), ("resource", resource)])
}

fn state(content: &SectionContent) -> &SectionState {
    match content {
        SectionContent::Problems(s) => &s.state,
        SectionContent::Medications(s) => &s.state,
        SectionContent::Allergies(s) => &s.state,
        SectionContent::Observations(s) => &s.state,
        SectionContent::Immunisations(s) => &s.state,
        SectionContent::Consultations(s) => &s.state,
        SectionContent::Documents(s) => &s.state,
    }
}

fn warnings(content: &SectionContent) -> &[SectionWarning] {
    match content {
        SectionContent::Problems(s) => &s.warnings,
        SectionContent::Medications(s) => &s.warnings,
        SectionContent::Allergies(s) => &s.warnings,
        SectionContent::Observations(s) => &s.warnings,
        SectionContent::Immunisations(s) => &s.warnings,
        SectionContent::Consultations(s) => &s.warnings,
        SectionContent::Documents(s) => &s.warnings,
    }
}

/// Renders the section's item resources into `out`; the references to them.
fn section_items(
    content: &SectionContent,
    ctx: &mut ItemContext<'_>,
    out: &mut Vec<Rendered>,
) -> Vec<String> {
    fn items<T>(section: &Section<T>) -> &[keel_model::record::RecordItem<T>] {
        &section.items
    }
    match content {
        SectionContent::Problems(s) => render_items(items(s), ctx, items::problem, out),
        SectionContent::Medications(s) => render_items(items(s), ctx, items::medication, out),
        SectionContent::Allergies(s) => render_items(items(s), ctx, items::allergy, out),
        SectionContent::Observations(s) => render_items(items(s), ctx, items::observation, out),
        SectionContent::Immunisations(s) => render_items(items(s), ctx, items::immunisation, out),
        SectionContent::Consultations(s) => render_items(items(s), ctx, items::consultation, out),
        SectionContent::Documents(s) => render_items(items(s), ctx, items::document, out),
    }
}

/// The coding of `section` in [`RECORD_SECTION_SYSTEM`].
fn section_coding(section: RecordSection) -> Value {
    json!({"system": RECORD_SECTION_SYSTEM, "code": section.key(), "display": section.title()})
}

fn list(
    id: &str,
    content: &SectionContent,
    subject: Option<&Value>,
    references: Vec<String>,
) -> Value {
    let section = content.section();
    let state = match state(content) {
        SectionState::Recorded if references.is_empty() => &SectionState::NothingRecorded,
        state => state,
    };
    let mut out = Obj::new();
    out.set("resourceType", Value::from("List"))
        .set("id", Value::from(id))
        .set_array(
            "extension",
            warnings(content).iter().map(warning_extension).collect(),
        )
        .set("status", Value::from("current"))
        .set("mode", Value::from("snapshot"))
        .set("title", Value::from(section.title()))
        .set(
            "code",
            object([("coding", Value::Array(vec![section_coding(section)]))]),
        )
        .set_some("subject", subject.cloned());
    let note = match state {
        SectionState::Recorded => None,
        SectionState::NothingRecorded => Some(NOTHING_RECORDED_NOTE),
        SectionState::Withheld { reason } | SectionState::Unavailable { reason } => {
            Some(reason.as_str()).filter(|r| !r.is_empty())
        }
    };
    if references.is_empty() {
        let reason = state
            .empty_reason()
            .and_then(|c| coding(&c))
            .map(|c| object([("coding", Value::Array(vec![c]))]));
        out.set_some("emptyReason", reason);
    } else {
        let entries = references
            .into_iter()
            .map(|reference| json!({"item": {"reference": reference}}))
            .collect();
        out.set_array("entry", entries);
    }
    out.set_some("note", note.map(|text| json!([{"text": text}])));
    out.build()
}

fn warning_extension(warning: &SectionWarning) -> Value {
    match warning {
        SectionWarning::ConfidentialItemsWithheld => {
            json!({"url": SECTION_WARNING_URL, "valueCode": "confidential-items-withheld"})
        }
        SectionWarning::DataAwaitingFiling => {
            json!({"url": SECTION_WARNING_URL, "valueCode": "data-awaiting-filing"})
        }
        SectionWarning::DataInTransit { since: None } => {
            json!({"url": SECTION_WARNING_URL, "valueCode": "data-in-transit"})
        }
        SectionWarning::DataInTransit { since: Some(since) } => json!({
            "url": SECTION_WARNING_URL,
            "valueCode": "data-in-transit",
            "_valueCode": {"extension": [
                {"url": SECTION_WARNING_SINCE_URL, "valueDateTime": since.as_str()}
            ]}
        }),
    }
}

fn outcome(id: &str, unavailable: &[(RecordSection, &str)]) -> Value {
    let issues: Vec<Value> = unavailable
        .iter()
        .map(|(section, reason)| {
            let reason = if reason.is_empty() {
                "no reason was given"
            } else {
                reason
            };
            json!({
                "severity": "warning",
                "code": "incomplete",
                "details": {"coding": [section_coding(*section)], "text": reason},
                "diagnostics": format!(
                    "The {} section ({}) could not be had: {reason}",
                    section.title(),
                    section.key()
                )
            })
        })
        .collect();
    object([
        ("resourceType", Value::from("OperationOutcome")),
        ("id", Value::from(id)),
        ("issue", Value::Array(issues)),
    ])
}

const GENDERS: [&str; 4] = ["male", "female", "other", "unknown"];

fn patient(id: &str, at: &PatientAtPractice, demographics: &Demographics) -> Value {
    let mut out = Obj::new();
    out.set("resourceType", Value::from("Patient"))
        .set("id", Value::from(id));
    let gender = demographics.gender.as_deref();
    let odd_gender = gender
        .filter(|g| !GENDERS.contains(g))
        .and_then(|g| source_attribute(&keel_model::record::SourceAttribute::new("gender", g)));
    out.set_some("extension", odd_gender.map(|e| Value::Array(vec![e])));
    let mut identifiers = Vec::new();
    if let Some(nhs) = demographics.nhs_number.or(at.nhs_number) {
        identifiers.push(json!({"system": NHS_NUMBER, "value": nhs.as_str()}));
    }
    if !demographics.source_patient_id.is_empty() {
        identifiers.push(
            json!({"system": SOURCE_PATIENT_SYSTEM, "value": demographics.source_patient_id}),
        );
    }
    out.set_array("identifier", identifiers);
    let mut name = Obj::new();
    if let Some(family) = &demographics.family {
        name.string("family", family);
    }
    let given: Vec<Value> = demographics
        .given
        .iter()
        .filter(|g| !g.is_empty())
        .map(|g| Value::from(g.as_str()))
        .collect();
    name.set_array("given", given);
    if !name.is_empty() {
        out.set("name", Value::Array(vec![name.build()]));
    }
    out.set_some(
        "gender",
        gender.filter(|g| GENDERS.contains(g)).map(Value::from),
    )
    .set_some(
        "birthDate",
        demographics
            .birth_date
            .as_ref()
            .map(|d| Value::from(d.date_part())),
    )
    .date_time("deceasedDateTime", demographics.deceased.as_ref());
    if let Some(postcode) = demographics.postcode.as_deref().filter(|p| !p.is_empty()) {
        out.set("address", json!([{"postalCode": postcode}]));
    }
    out.set_some(
        "generalPractitioner",
        demographics
            .registered_practice
            .as_ref()
            .map(|ods: &OdsCode| {
                Value::Array(vec![object([
                    ("type", Value::from("Organization")),
                    ("identifier", ods_identifier(ods)),
                ])])
            }),
    );
    out.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_model::record::{Problem, ProblemStatus, RecordItem, SourceAttribute};
    use keel_model::{ClinicalDate, CodeableConcept, Coding, NhsNumber, Provenance, SourceSystem};

    fn ods() -> OdsCode {
        OdsCode::parse("Y90001").expect("ods")
    }

    fn problem(source_id: &str) -> RecordItem<Problem> {
        RecordItem {
            source_id: source_id.into(),
            content: Problem {
                code: CodeableConcept::from_coding(
                    Coding::new("http://snomed.info/sct", "38341003").with_display("Hypertension"),
                ),
                status: ProblemStatus::Active,
                onset: ClinicalDate::parse("2004").ok(),
                ended: None,
                significant: Some(true),
            },
            provenance: Provenance::new(ods(), SourceSystem::EmisStyle),
            source_attributes: vec![SourceAttribute::new("emis:ProblemType", "Major")],
        }
    }

    fn with_patient(sections: Vec<SectionContent>) -> FederatedRecord {
        let nhs = NhsNumber::parse("9990000018").expect("nhs");
        FederatedRecord {
            practice: ods(),
            patient: Some((
                PatientAtPractice {
                    practice: ods(),
                    source_patient_id: "p-1".into(),
                    nhs_number: Some(nhs),
                },
                Demographics {
                    nhs_number: Some(nhs),
                    source_patient_id: "p-1".into(),
                    family: Some("Smith".into()),
                    given: vec!["Ann".into()],
                    birth_date: ClinicalDate::parse("1950-02-03").ok(),
                    gender: Some("female".into()),
                    postcode: None,
                    registered_practice: Some(ods()),
                    deceased: None,
                },
            )),
            sections,
        }
    }

    fn resources<'a>(bundle: &'a Value, resource_type: &str) -> Vec<&'a Value> {
        bundle["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == resource_type)
            .collect()
    }

    #[test]
    fn a_recorded_section_lists_its_items_and_nothing_else() {
        let section = Section::from_items(RecordSection::Problems, vec![problem("c-1")], vec![]);
        let bundle = record_bundle(&with_patient(vec![SectionContent::Problems(section)]));
        let list = resources(&bundle, "List")[0];
        assert_eq!(list["status"], "current");
        assert_eq!(list["mode"], "snapshot");
        assert_eq!(list["title"], "Problems");
        assert_eq!(
            list["code"]["coding"][0],
            json!({"system": RECORD_SECTION_SYSTEM, "code": "problems", "display": "Problems"})
        );
        let condition = resources(&bundle, "Condition")[0];
        let reference = format!("urn:uuid:{}", condition["id"].as_str().expect("id"));
        assert_eq!(list["entry"][0]["item"]["reference"], reference.as_str());
        assert!(list.get("emptyReason").is_none() && list.get("note").is_none());
        let patient = resources(&bundle, "Patient")[0];
        assert_eq!(
            list["subject"]["reference"],
            format!("urn:uuid:{}", patient["id"].as_str().expect("id")).as_str()
        );
        assert!(resources(&bundle, "OperationOutcome").is_empty());
        assert!(bundle.get("meta").is_none());
    }

    #[test]
    fn empty_sections_say_why_with_the_r4_empty_reason() {
        let sections = vec![
            SectionContent::Problems(Section::from_items(RecordSection::Problems, vec![], vec![])),
            SectionContent::Allergies(Section::from_items(
                RecordSection::Allergies,
                vec![],
                vec![SectionWarning::ConfidentialItemsWithheld],
            )),
            SectionContent::unavailable(RecordSection::Medications, "no answer within 2000 ms"),
        ];
        let bundle = record_bundle(&with_patient(sections));
        let lists = resources(&bundle, "List");
        let reasons: Vec<&Value> = lists
            .iter()
            .map(|l| &l["emptyReason"]["coding"][0]["code"])
            .collect();
        assert_eq!(reasons, ["nilknown", "withheld", "unavailable"]);
        assert!(lists.iter().all(|l| l.get("entry").is_none()));
        assert_eq!(lists[0]["note"][0]["text"], NOTHING_RECORDED_NOTE);
        assert_eq!(
            lists[1]["note"][0]["text"],
            "Items excluded due to confidentiality and/or patient preferences."
        );
        assert_eq!(
            lists[1]["extension"][0],
            json!({"url": SECTION_WARNING_URL, "valueCode": "confidential-items-withheld"})
        );
        assert_eq!(lists[2]["note"][0]["text"], "no answer within 2000 ms");
        let outcome = resources(&bundle, "OperationOutcome");
        assert_eq!(outcome.len(), 1);
        let issues = outcome[0]["issue"].as_array().expect("issues");
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0]["severity"], "warning");
        assert_eq!(issues[0]["code"], "incomplete");
        assert_eq!(issues[0]["details"]["coding"][0]["code"], "medications");
        let diagnostics = issues[0]["diagnostics"].as_str().expect("diagnostics");
        assert!(diagnostics.contains("Medications") && diagnostics.contains("2000 ms"));
        assert_eq!(bundle["meta"]["tag"][0]["code"], "partial");
    }

    #[test]
    fn a_practice_that_could_not_be_asked_still_gives_every_list_and_the_outcome() {
        let record = FederatedRecord {
            practice: ods(),
            patient: None,
            sections: RecordSection::ALL
                .iter()
                .map(|s| SectionContent::unavailable(*s, "could not connect"))
                .collect(),
        };
        let bundle = record_bundle(&record);
        assert!(resources(&bundle, "Patient").is_empty());
        let lists = resources(&bundle, "List");
        assert_eq!(lists.len(), RecordSection::ALL.len());
        assert!(lists.iter().all(|l| l.get("subject").is_none()));
        let issues = &resources(&bundle, "OperationOutcome")[0]["issue"];
        assert_eq!(
            issues.as_array().map(Vec::len),
            Some(RecordSection::ALL.len())
        );
        assert_eq!(bundle["meta"]["tag"][0]["code"], "partial");
    }

    #[test]
    fn data_in_transit_carries_its_date() {
        let section = Section::from_items(
            RecordSection::Problems,
            vec![problem("c-1")],
            vec![SectionWarning::DataInTransit {
                since: ClinicalDate::parse("2024-11-02").ok(),
            }],
        );
        let bundle = record_bundle(&with_patient(vec![SectionContent::Problems(section)]));
        let warning = &resources(&bundle, "List")[0]["extension"][0];
        assert_eq!(warning["valueCode"], "data-in-transit");
        assert_eq!(
            warning["_valueCode"]["extension"][0],
            json!({"url": SECTION_WARNING_SINCE_URL, "valueDateTime": "2024-11-02"})
        );
    }

    #[test]
    fn the_patient_has_what_the_practice_holds_and_nothing_for_what_it_does_not() {
        let bundle = record_bundle(&with_patient(vec![]));
        let patient = resources(&bundle, "Patient")[0];
        assert_eq!(
            patient["identifier"][0],
            json!({"system": NHS_NUMBER, "value": "9990000018"})
        );
        assert_eq!(
            patient["name"][0],
            json!({"family": "Smith", "given": ["Ann"]})
        );
        assert_eq!(patient["birthDate"], "1950-02-03");
        assert_eq!(patient["gender"], "female");
        assert_eq!(
            patient["generalPractitioner"][0]["identifier"]["value"],
            "Y90001"
        );
        assert!(patient.get("address").is_none() && patient.get("deceasedDateTime").is_none());
    }

    #[test]
    fn ids_are_the_same_on_every_read() {
        let record = with_patient(vec![SectionContent::Problems(Section::from_items(
            RecordSection::Problems,
            vec![problem("c-1"), problem("c-2")],
            vec![],
        ))]);
        assert_eq!(record_bundle(&record), record_bundle(&record));
    }
}
