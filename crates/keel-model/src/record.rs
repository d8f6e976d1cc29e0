//! The canonical patient record: what any GP system's record maps to, section by section.
//!
//! Every adapter (GP Connect, EMIS-style, TPP-style) maps its supplier's record into these
//! types, so a module asks one question and gets the same clinically meaningful answer from
//! any practice. Three rules hold throughout:
//!
//! - codes and units stay as the source recorded them ([`CodeableConcept`], [`Quantity`]);
//!   translations are added beside them, never in their place;
//! - each item carries its [`Provenance`], and every supplier field with no canonical home is
//!   kept as a [`SourceAttribute`] rather than forced into a wrong one;
//! - each section says which [`SectionState`] it is in, and what the source warned about
//!   ([`SectionWarning`]), so "nothing recorded", "withheld" and "unavailable" never look alike.

use serde::{Deserialize, Serialize};

use crate::{
    ClinicalDate, CodeableConcept, NhsNumber, OdsCode, Provenance, Quantity, SectionState,
};

/// The clinical sections of a patient record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordSection {
    Problems,
    Medications,
    Allergies,
    Observations,
    Immunisations,
    Consultations,
    Documents,
}

impl RecordSection {
    pub const ALL: [RecordSection; 7] = [
        RecordSection::Problems,
        RecordSection::Medications,
        RecordSection::Allergies,
        RecordSection::Observations,
        RecordSection::Immunisations,
        RecordSection::Consultations,
        RecordSection::Documents,
    ];

    /// The name used in APIs (`?section=medications`).
    pub fn key(self) -> &'static str {
        match self {
            RecordSection::Problems => "problems",
            RecordSection::Medications => "medications",
            RecordSection::Allergies => "allergies",
            RecordSection::Observations => "observations",
            RecordSection::Immunisations => "immunisations",
            RecordSection::Consultations => "consultations",
            RecordSection::Documents => "documents",
        }
    }

    /// The section named `key` (see [`RecordSection::key`]).
    pub fn from_key(key: &str) -> Option<RecordSection> {
        RecordSection::ALL.into_iter().find(|s| s.key() == key)
    }

    /// A heading for people.
    pub fn title(self) -> &'static str {
        match self {
            RecordSection::Problems => "Problems",
            RecordSection::Medications => "Medications",
            RecordSection::Allergies => "Allergies and adverse reactions",
            RecordSection::Observations => "Observations",
            RecordSection::Immunisations => "Immunisations",
            RecordSection::Consultations => "Consultations",
            RecordSection::Documents => "Documents",
        }
    }
}

/// A supplier field with no canonical equivalent, kept with the name the source gave it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceAttribute {
    pub name: String,
    pub value: String,
}

impl SourceAttribute {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// One item of a section: the clinical content, where it came from, and what had no home.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordItem<T> {
    /// The source's own identifier of the item, stable across reads.
    pub source_id: String,
    pub content: T,
    pub provenance: Provenance,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_attributes: Vec<SourceAttribute>,
}

/// What the source said about a section beyond its items.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "warning", rename_all = "kebab-case")]
pub enum SectionWarning {
    /// Some items were left out for confidentiality or patient preference.
    ConfidentialItemsWithheld,
    /// The record is still being transferred from the previous practice; items recorded before
    /// `since` may be missing.
    DataInTransit { since: Option<ClinicalDate> },
    /// Items are waiting to be filed at the practice and are not shown.
    DataAwaitingFiling,
}

/// A section as read from one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section<T> {
    pub section: RecordSection,
    pub state: SectionState,
    pub items: Vec<RecordItem<T>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<SectionWarning>,
}

impl<T> Section<T> {
    /// A section holding `items`: [`SectionState::Recorded`] when there are any, otherwise
    /// [`SectionState::NothingRecorded`] — or [`SectionState::Withheld`] when the source said
    /// it left items out and none are left.
    pub fn from_items(
        section: RecordSection,
        items: Vec<RecordItem<T>>,
        warnings: Vec<SectionWarning>,
    ) -> Self {
        let withheld = warnings.contains(&SectionWarning::ConfidentialItemsWithheld);
        let state = match (items.is_empty(), withheld) {
            (false, _) => SectionState::Recorded,
            (true, true) => SectionState::Withheld {
                reason: "Items excluded due to confidentiality and/or patient preferences.".into(),
            },
            (true, false) => SectionState::NothingRecorded,
        };
        Section {
            section,
            state,
            items,
            warnings,
        }
    }

    /// A section the source could not give, with the reason in words safe to show.
    pub fn unavailable(section: RecordSection, reason: impl Into<String>) -> Self {
        Section::empty(
            section,
            SectionState::Unavailable {
                reason: reason.into(),
            },
        )
    }

    /// A section with no items, in `state` (which says why).
    pub fn empty(section: RecordSection, state: SectionState) -> Self {
        Section {
            section,
            state,
            items: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// Who the patient is, as the source holds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Demographics {
    pub nhs_number: Option<NhsNumber>,
    /// The source's own patient identifier (GUID, row id, logical id).
    pub source_patient_id: String,
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub given: Vec<String>,
    pub birth_date: Option<ClinicalDate>,
    /// FHIR administrative gender: `male`, `female`, `other` or `unknown`.
    pub gender: Option<String>,
    pub postcode: Option<String>,
    pub registered_practice: Option<OdsCode>,
    pub deceased: Option<ClinicalDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemStatus {
    Active,
    /// Ended: resolved, past or inactive at the source.
    Inactive,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub code: CodeableConcept,
    pub status: ProblemStatus,
    pub onset: Option<ClinicalDate>,
    pub ended: Option<ClinicalDate>,
    /// Whether the source holds it as a long-term (major/significant) problem.
    pub significant: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CourseKind {
    Acute,
    Repeat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MedicationStatus {
    Active,
    /// Finished as planned.
    Completed,
    /// Stopped or discontinued by a clinician.
    Stopped,
}

/// One prescribing course with its issues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Medication {
    /// The medicine, dm+d-coded as recorded.
    pub medication: CodeableConcept,
    pub dosage: Option<String>,
    pub quantity: Option<Quantity>,
    pub course: CourseKind,
    pub status: MedicationStatus,
    pub start: Option<ClinicalDate>,
    pub end: Option<ClinicalDate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issues: Vec<MedicationIssue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MedicationIssue {
    pub date: ClinicalDate,
    pub quantity: Option<Quantity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AllergyStatus {
    Active,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Allergy {
    pub substance: CodeableConcept,
    pub reaction: Option<CodeableConcept>,
    pub status: AllergyStatus,
    pub recorded: Option<ClinicalDate>,
}

/// The value of an observation, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObservationValue {
    Quantity(Quantity),
    Text(String),
    Concept(CodeableConcept),
}

/// A part of a panel, such as the systolic reading of a blood pressure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservationComponent {
    pub code: CodeableConcept,
    pub value: ObservationValue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub code: CodeableConcept,
    pub effective: Option<ClinicalDate>,
    pub value: Option<ObservationValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ObservationComponent>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Immunisation {
    pub vaccine: CodeableConcept,
    pub date: Option<ClinicalDate>,
    /// The product name as recorded, when the code names the procedure only.
    pub product: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consultation {
    pub start: Option<ClinicalDate>,
    /// Surgery, telephone, home visit, ... in the source's words.
    pub kind: Option<String>,
    pub clinician: Option<String>,
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub title: String,
    pub content_type: String,
    pub created: Option<ClinicalDate>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Coding, SourceSystem};

    fn item(id: &str) -> RecordItem<Problem> {
        RecordItem {
            source_id: id.into(),
            content: Problem {
                code: CodeableConcept::from_coding(Coding::new(
                    "http://snomed.info/sct",
                    "38341003",
                )),
                status: ProblemStatus::Active,
                onset: Some(ClinicalDate::parse("2004").expect("valid")),
                ended: None,
                significant: Some(true),
            },
            provenance: Provenance::new(
                OdsCode::parse("Y90001").expect("valid"),
                SourceSystem::EmisStyle,
            ),
            source_attributes: vec![SourceAttribute::new("emis:ProblemType", "Major")],
        }
    }

    #[test]
    fn section_keys_round_trip() {
        for section in RecordSection::ALL {
            assert_eq!(RecordSection::from_key(section.key()), Some(section));
        }
        assert_eq!(RecordSection::from_key("everything"), None);
    }

    #[test]
    fn the_state_follows_items_and_warnings() {
        let recorded = Section::from_items(RecordSection::Problems, vec![item("p1")], vec![]);
        assert_eq!(recorded.state, SectionState::Recorded);
        let nothing = Section::<Problem>::from_items(RecordSection::Problems, vec![], vec![]);
        assert_eq!(nothing.state, SectionState::NothingRecorded);
        let all_withheld = Section::<Problem>::from_items(
            RecordSection::Problems,
            vec![],
            vec![SectionWarning::ConfidentialItemsWithheld],
        );
        assert!(matches!(all_withheld.state, SectionState::Withheld { .. }));
        let some_withheld = Section::from_items(
            RecordSection::Problems,
            vec![item("p1")],
            vec![SectionWarning::ConfidentialItemsWithheld],
        );
        assert_eq!(some_withheld.state, SectionState::Recorded);
        let down = Section::<Problem>::unavailable(RecordSection::Problems, "practice offline");
        assert!(matches!(down.state, SectionState::Unavailable { .. }));
    }

    #[test]
    fn a_section_serialises_with_its_state_provenance_and_source_attributes() {
        let section = Section::from_items(RecordSection::Problems, vec![item("p1")], vec![]);
        let json = serde_json::to_value(&section).expect("serialise");
        assert_eq!(json["section"], "problems");
        assert_eq!(json["state"]["state"], "recorded");
        assert_eq!(
            json["items"][0]["provenance"]["source_system"],
            "emis-style"
        );
        assert_eq!(
            json["items"][0]["source_attributes"][0]["name"],
            "emis:ProblemType"
        );
        let back: Section<Problem> = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, section);
    }
}
