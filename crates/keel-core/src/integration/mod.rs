//! The capability contract: one supplier-neutral way to ask a practice's GP system for a
//! patient's record, free slots and writes. Adapters (GP Connect, EMIS-style, TPP-style; PDS for
//! demographics) implement [`PracticeSystem`]; the core picks one per operation from the
//! practice's [`CapabilityProfile`], built from configuration plus what an interface that can
//! be asked ([`PracticeSystem::probe`]) said it offers.
//!
//! Results are canonical ([`keel_model::record`]) with provenance and section states. Failures
//! are [`IntegrationError`]s that say what is safe to do next: an unavailable practice may be
//! asked again (reads only); a write whose outcome is unknown must be *checked*, never sent
//! again blindly.

pub mod capability;
pub mod connection;
pub mod record;

use std::future::Future;
use std::pin::Pin;

use keel_model::record::{
    Allergy, Consultation, Demographics, Document, Immunisation, Medication, Observation,
    ObservationValue, Problem, RecordSection, Section,
};
use keel_model::{ClinicalDate, CodeableConcept, NhsNumber, OdsCode};
use serde::{Deserialize, Serialize};

pub use capability::{CapabilityProfile, Interface, Operation, OperationRoute, Probe, Support};
pub use connection::{ClinicalSystem, ConnectionError, InterfaceConnection, PracticeConnection};
pub use record::{FederatedRecord, Practice, federated_record};

use crate::RequestContext;

/// A boxed future, so adapters can sit behind `dyn PracticeSystem`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an adapter call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegrationError {
    /// The practice cannot do this at all (profile or interface). Asking again will not help.
    #[error("{practice} does not support {}: {reason}", operation.key())]
    NotSupported {
        practice: OdsCode,
        operation: Operation,
        reason: String,
    },
    /// The practice's system could not be reached or did not answer in time, or its circuit is
    /// open. A read may be asked again later; nothing was changed by a read.
    #[error("{practice} is unavailable: {reason}")]
    Unavailable { practice: OdsCode, reason: String },
    /// The practice holds no (active) record for the patient.
    #[error("the patient has no record at {practice}")]
    PatientNotFound { practice: OdsCode },
    /// The practice refused the request (access denied, slot taken, invalid content). Asking
    /// again unchanged will be refused again.
    #[error("{practice} refused the request: {reason}")]
    Refused { practice: OdsCode, reason: String },
    /// A write was sent and no answer came back: it may or may not have been made. Check the
    /// practice's record before deciding anything; never send it again blindly.
    #[error("the outcome of the write at {practice} is unknown: {reason}")]
    OutcomeUnknown { practice: OdsCode, reason: String },
    /// The practice answered with something Keel cannot read.
    #[error("{practice} sent an answer Keel cannot read: {reason}")]
    Malformed { practice: OdsCode, reason: String },
}

/// A patient's record at one practice, as found there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PatientAtPractice {
    pub practice: OdsCode,
    /// The practice system's own id of the record (GUID, row id, logical id).
    pub source_patient_id: String,
    pub nhs_number: Option<NhsNumber>,
}

/// One section's content, typed by section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SectionContent {
    Problems(Section<Problem>),
    Medications(Section<Medication>),
    Allergies(Section<Allergy>),
    Observations(Section<Observation>),
    Immunisations(Section<Immunisation>),
    Consultations(Section<Consultation>),
    Documents(Section<Document>),
}

impl SectionContent {
    pub fn section(&self) -> RecordSection {
        match self {
            SectionContent::Problems(s) => s.section,
            SectionContent::Medications(s) => s.section,
            SectionContent::Allergies(s) => s.section,
            SectionContent::Observations(s) => s.section,
            SectionContent::Immunisations(s) => s.section,
            SectionContent::Consultations(s) => s.section,
            SectionContent::Documents(s) => s.section,
        }
    }

    /// Whether the section could not be had (unavailable, or its call failed).
    pub fn is_unavailable(&self) -> bool {
        let state = match self {
            SectionContent::Problems(s) => &s.state,
            SectionContent::Medications(s) => &s.state,
            SectionContent::Allergies(s) => &s.state,
            SectionContent::Observations(s) => &s.state,
            SectionContent::Immunisations(s) => &s.state,
            SectionContent::Consultations(s) => &s.state,
            SectionContent::Documents(s) => &s.state,
        };
        matches!(
            state,
            keel_model::SectionState::Unavailable { .. } | keel_model::SectionState::Failed { .. }
        )
    }

    /// The section as unavailable, with the reason in words safe to show.
    pub fn unavailable(section: RecordSection, reason: &str) -> SectionContent {
        SectionContent::empty(
            section,
            keel_model::SectionState::Unavailable {
                reason: reason.into(),
            },
        )
    }

    /// The section with no items, in `state` (which says why).
    pub fn empty(section: RecordSection, state: keel_model::SectionState) -> SectionContent {
        match section {
            RecordSection::Problems => SectionContent::Problems(Section::empty(section, state)),
            RecordSection::Medications => {
                SectionContent::Medications(Section::empty(section, state))
            }
            RecordSection::Allergies => SectionContent::Allergies(Section::empty(section, state)),
            RecordSection::Observations => {
                SectionContent::Observations(Section::empty(section, state))
            }
            RecordSection::Immunisations => {
                SectionContent::Immunisations(Section::empty(section, state))
            }
            RecordSection::Consultations => {
                SectionContent::Consultations(Section::empty(section, state))
            }
            RecordSection::Documents => SectionContent::Documents(Section::empty(section, state)),
        }
    }
}

/// The operation that reads `section`.
pub fn read_operation(section: RecordSection) -> Operation {
    match section {
        RecordSection::Problems => Operation::ReadProblems,
        RecordSection::Medications => Operation::ReadMedications,
        RecordSection::Allergies => Operation::ReadAllergies,
        RecordSection::Observations => Operation::ReadObservations,
        RecordSection::Immunisations => Operation::ReadImmunisations,
        RecordSection::Consultations => Operation::ReadConsultations,
        RecordSection::Documents => Operation::ReadDocuments,
    }
}

/// The client's key for one intended write. The same key on a retry means "the same write";
/// adapters pass it to suppliers that recognise retries, and use it to look for a write whose
/// answer was lost at suppliers that do not.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WriteKey(pub String);

/// A free appointment slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeSlot {
    pub source_id: String,
    pub start: ClinicalDate,
    pub end: ClinicalDate,
    pub clinician: Option<String>,
    pub service: Option<String>,
}

/// What a write made at the practice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteReceipt {
    /// The practice system's id of what was created or changed.
    pub source_id: String,
    /// The version of it, where the system versions it (for a later amend or cancel).
    pub version: Option<String>,
}

/// A booking of one free slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRequest {
    pub key: WriteKey,
    pub patient: PatientAtPractice,
    /// The slot as a search found it: some systems book by its id alone, others (GP Connect)
    /// need its exact start and end too.
    pub slot: FreeSlot,
    pub description: Option<String>,
}

/// A cancellation of a booked appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancellationRequest {
    pub key: WriteKey,
    pub appointment: WriteReceipt,
    pub reason: String,
}

/// A task for the practice's workflow about a patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRequest {
    pub key: WriteKey,
    pub patient: PatientAtPractice,
    pub description: String,
    pub urgent: bool,
}

/// A coded entry (or a consultation note with coded entries) for the patient's record.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryRequest {
    pub key: WriteKey,
    pub patient: PatientAtPractice,
    pub date: ClinicalDate,
    pub code: CodeableConcept,
    pub value: Option<ObservationValue>,
    /// Free text: the consultation note when the entry is a consultation.
    pub text: Option<String>,
    pub author: String,
}

/// A document to file in the patient's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRequest {
    pub key: WriteKey,
    pub patient: PatientAtPractice,
    pub title: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// A practice's GP system, reached through one interface. Every method takes the request
/// context so the call is traced and audited under the right person and purpose.
pub trait PracticeSystem: Send + Sync {
    fn practice(&self) -> &OdsCode;

    fn interface(&self) -> Interface;

    /// The operations the interface says it offers at this practice, asked of the interface
    /// itself (GP Connect's CapabilityStatement); `None` when the interface cannot be asked.
    /// Nothing about a patient is sent.
    fn probe<'a>(
        &'a self,
        ctx: &'a RequestContext,
    ) -> BoxFuture<'a, Result<Option<Vec<Operation>>, IntegrationError>>;

    /// The practice's record for `nhs_number`: its demographics as the practice holds them,
    /// or `None` when the practice holds no active record for it.
    fn find_patient<'a>(
        &'a self,
        ctx: &'a RequestContext,
        nhs_number: NhsNumber,
    ) -> BoxFuture<'a, Result<Option<(PatientAtPractice, Demographics)>, IntegrationError>>;

    /// One section of the patient's record.
    fn read_section<'a>(
        &'a self,
        ctx: &'a RequestContext,
        patient: &'a PatientAtPractice,
        section: RecordSection,
    ) -> BoxFuture<'a, Result<SectionContent, IntegrationError>>;

    /// Free slots from `from` to `to` (whole days).
    fn search_free_slots<'a>(
        &'a self,
        ctx: &'a RequestContext,
        from: &'a ClinicalDate,
        to: &'a ClinicalDate,
    ) -> BoxFuture<'a, Result<Vec<FreeSlot>, IntegrationError>>;

    fn book_appointment<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a BookingRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>>;

    fn cancel_appointment<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a CancellationRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>>;

    fn create_task<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a TaskRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>>;

    fn add_entry<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a EntryRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>>;

    fn attach_document<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a DocumentRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_has_a_read_operation_and_an_unavailable_form() {
        for section in RecordSection::ALL {
            assert!(!read_operation(section).is_write());
            let content = SectionContent::unavailable(section, "practice offline");
            assert_eq!(content.section(), section);
            let json = serde_json::to_value(&content).expect("serialise");
            assert_eq!(json["state"]["state"], "unavailable");
        }
    }

    #[test]
    fn errors_say_what_is_safe_to_do() {
        let practice = OdsCode::parse("Y90001").expect("valid");
        let lost = IntegrationError::OutcomeUnknown {
            practice: practice.clone(),
            reason: "the connection closed before an answer".into(),
        };
        assert!(lost.to_string().contains("unknown"));
        let unsupported = IntegrationError::NotSupported {
            practice,
            operation: Operation::AttachDocument,
            reason: "documents are not enabled".into(),
        };
        assert!(unsupported.to_string().contains("attach-document"));
    }
}
