//! The federated record: a patient's record assembled at the point of need from their
//! registered practice, section by section, through whichever interface the practice's
//! capability profile routes each section to.
//!
//! Nothing is guessed: a section the practice cannot give is never an empty list, and the
//! record says it is partial. It is [`keel_model::SectionState::Unavailable`] with the reason
//! when there is no route for it or the practice could not be reached at all, and
//! [`keel_model::SectionState::Failed`] when the practice answered but the section's own call
//! failed (timeout, refusal, an answer Keel cannot read). Sections are asked for concurrently, so one slow section does
//! not hold up the others beyond its own timeout.

use std::sync::Arc;

use futures_util::future::join_all;
use keel_model::record::{Demographics, RecordSection};
use keel_model::{NhsNumber, OdsCode};

use super::{
    CapabilityProfile, IntegrationError, Interface, Operation, PatientAtPractice,
    PracticeConnection, PracticeSystem, Probe, SectionContent, read_operation,
};
use crate::RequestContext;

/// One practice: its connection, the adapters that reach it, and what those of its interfaces
/// that can be asked said they offer when last probed.
#[derive(Clone)]
pub struct Practice {
    pub connection: PracticeConnection,
    pub systems: Vec<Arc<dyn PracticeSystem>>,
    /// The last successful probe of each interface that was probed (at most one each).
    pub probes: Vec<Probe>,
}

impl std::fmt::Debug for Practice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Practice")
            .field("ods", &self.connection.ods)
            .field(
                "probed",
                &self.probes.iter().map(|p| p.interface).collect::<Vec<_>>(),
            )
            .field(
                "systems",
                &self
                    .systems
                    .iter()
                    .map(|s| s.interface())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Practice {
    pub fn ods(&self) -> &OdsCode {
        &self.connection.ods
    }

    /// The capability profile from the connection and the probes.
    pub fn capability_profile(&self) -> CapabilityProfile {
        self.connection.capability_profile_with(&self.probes)
    }

    /// The adapter for `operation`, as the capability profile (with the probes) routes it.
    ///
    /// # Errors
    /// [`IntegrationError::NotSupported`] naming the operation and why, before any request.
    pub fn system_for(
        &self,
        operation: Operation,
    ) -> Result<&Arc<dyn PracticeSystem>, IntegrationError> {
        let interface = self.capability_profile().route(operation)?;
        self.adapter(interface)
            .ok_or_else(|| IntegrationError::NotSupported {
                practice: self.ods().clone(),
                operation,
                reason: format!("Keel has no {} adapter for this practice", interface.key()),
            })
    }

    fn adapter(&self, interface: Interface) -> Option<&Arc<dyn PracticeSystem>> {
        self.systems.iter().find(|s| s.interface() == interface)
    }
}

/// A patient's record from their registered practice.
#[derive(Debug, Clone, PartialEq)]
pub struct FederatedRecord {
    pub practice: OdsCode,
    /// The practice's record of the patient; `None` when the practice could not be asked.
    pub patient: Option<(PatientAtPractice, Demographics)>,
    /// The sections asked for, in the order asked.
    pub sections: Vec<SectionContent>,
}

impl FederatedRecord {
    /// Whether any section could not be had.
    pub fn is_partial(&self) -> bool {
        self.sections.iter().any(SectionContent::is_unavailable)
    }
}

/// Assembles the record of `nhs_number` at `practice`: finds the patient there, then reads
/// `sections` concurrently.
///
/// # Errors
/// [`IntegrationError::PatientNotFound`] when the practice holds no active record for the
/// patient. Every other failure becomes unavailable sections in the result.
pub async fn federated_record(
    ctx: &RequestContext,
    practice: &Practice,
    nhs_number: NhsNumber,
    sections: &[RecordSection],
) -> Result<FederatedRecord, IntegrationError> {
    let found = match practice.system_for(Operation::FindPatient) {
        Ok(system) => system.find_patient(ctx, nhs_number).await,
        Err(e) => Err(e),
    };
    let (patient, demographics) = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Err(IntegrationError::PatientNotFound {
                practice: practice.ods().clone(),
            });
        }
        Err(IntegrationError::PatientNotFound { practice }) => {
            return Err(IntegrationError::PatientNotFound { practice });
        }
        Err(e) => {
            let reason = unavailable_reason(&e);
            return Ok(FederatedRecord {
                practice: practice.ods().clone(),
                patient: None,
                sections: sections
                    .iter()
                    .map(|s| SectionContent::unavailable(*s, &reason))
                    .collect(),
            });
        }
    };
    let reads = sections.iter().map(|section| {
        let patient = &patient;
        async move {
            let answer = match practice.system_for(read_operation(*section)) {
                Ok(system) => system.read_section(ctx, patient, *section).await,
                Err(e) => Err(e),
            };
            answer.unwrap_or_else(|e| section_not_had(*section, &e))
        }
    });
    let sections = join_all(reads).await;
    Ok(FederatedRecord {
        practice: practice.ods().clone(),
        patient: Some((patient, demographics)),
        sections,
    })
}

/// A section whose read did not succeed at a practice that answered: unavailable when the
/// practice does not offer it, failed when the call itself failed or timed out.
fn section_not_had(section: RecordSection, error: &IntegrationError) -> SectionContent {
    let reason = unavailable_reason(error);
    match error {
        IntegrationError::NotSupported { .. } => SectionContent::unavailable(section, &reason),
        _ => SectionContent::empty(section, keel_model::SectionState::Failed { reason }),
    }
}

/// Words for a clinician about why a section could not be had.
fn unavailable_reason(error: &IntegrationError) -> String {
    match error {
        IntegrationError::NotSupported {
            operation, reason, ..
        } => format!(
            "Not available from this practice ({} is not supported: {reason}).",
            operation.key()
        ),
        IntegrationError::Unavailable { reason, .. } => {
            format!("The practice's system could not be reached ({reason}); try again later.")
        }
        IntegrationError::PatientNotFound { .. } => {
            "The practice holds no record for this patient.".into()
        }
        IntegrationError::Refused { reason, .. } => {
            format!("The practice's system refused the request: {reason}.")
        }
        IntegrationError::OutcomeUnknown { reason, .. }
        | IntegrationError::Malformed { reason, .. } => {
            format!("The practice's answer could not be used ({reason}).")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CorrelationId;
    use crate::integration::{
        BookingRequest, BoxFuture, CancellationRequest, ClinicalSystem, DocumentRequest,
        EntryRequest, FreeSlot, InterfaceConnection, TaskRequest, WriteReceipt,
    };
    use keel_model::record::{Problem, ProblemStatus, RecordItem, Section};
    use keel_model::{ClinicalDate, CodeableConcept, Coding, Provenance, SourceSystem};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// A GP Connect-only practice's adapter that answers from a script.
    struct Scripted {
        ods: OdsCode,
        find: Result<bool, IntegrationError>,
        down_sections: Vec<RecordSection>,
        asked: Mutex<Vec<RecordSection>>,
    }

    fn refused<T>(ods: &OdsCode) -> BoxFuture<'static, Result<T, IntegrationError>>
    where
        T: Send + 'static,
    {
        let practice = ods.clone();
        Box::pin(async move {
            Err(IntegrationError::Refused {
                practice,
                reason: "not scripted".into(),
            })
        })
    }

    impl PracticeSystem for Scripted {
        fn practice(&self) -> &OdsCode {
            &self.ods
        }
        fn interface(&self) -> Interface {
            Interface::GpConnect
        }
        fn probe<'a>(
            &'a self,
            _: &'a RequestContext,
        ) -> BoxFuture<'a, Result<Option<Vec<Operation>>, IntegrationError>> {
            Box::pin(async { Ok(None) })
        }
        fn find_patient<'a>(
            &'a self,
            _ctx: &'a RequestContext,
            nhs_number: NhsNumber,
        ) -> BoxFuture<'a, Result<Option<(PatientAtPractice, Demographics)>, IntegrationError>>
        {
            Box::pin(async move {
                match &self.find {
                    Ok(false) => Ok(None),
                    Err(e) => Err(e.clone()),
                    Ok(true) => Ok(Some((
                        PatientAtPractice {
                            practice: self.ods.clone(),
                            source_patient_id: "p-1".into(),
                            nhs_number: Some(nhs_number),
                        },
                        Demographics {
                            nhs_number: Some(nhs_number),
                            source_patient_id: "p-1".into(),
                            family: None,
                            given: vec![],
                            birth_date: None,
                            gender: None,
                            postcode: None,
                            registered_practice: Some(self.ods.clone()),
                            deceased: None,
                        },
                    ))),
                }
            })
        }
        fn read_section<'a>(
            &'a self,
            _ctx: &'a RequestContext,
            _patient: &'a PatientAtPractice,
            section: RecordSection,
        ) -> BoxFuture<'a, Result<SectionContent, IntegrationError>> {
            self.asked.lock().expect("lock").push(section);
            Box::pin(async move {
                if self.down_sections.contains(&section) {
                    return Err(IntegrationError::Unavailable {
                        practice: self.ods.clone(),
                        reason: "no answer within 2000 ms".into(),
                    });
                }
                Ok(match section {
                    RecordSection::Problems => SectionContent::Problems(Section::from_items(
                        section,
                        vec![RecordItem {
                            source_id: "c-1".into(),
                            content: Problem {
                                code: CodeableConcept::from_coding(Coding::new(
                                    "http://snomed.info/sct",
                                    "38341003",
                                )),
                                status: ProblemStatus::Active,
                                onset: ClinicalDate::parse("2004").ok(),
                                ended: None,
                                significant: None,
                            },
                            provenance: Provenance::new(self.ods.clone(), SourceSystem::GpConnect),
                            source_attributes: vec![],
                        }],
                        vec![],
                    )),
                    other => match SectionContent::unavailable(other, "") {
                        SectionContent::Allergies(_) => {
                            SectionContent::Allergies(Section::from_items(other, vec![], vec![]))
                        }
                        content => content,
                    },
                })
            })
        }
        fn search_free_slots<'a>(
            &'a self,
            _: &'a RequestContext,
            _: &'a ClinicalDate,
            _: &'a ClinicalDate,
        ) -> BoxFuture<'a, Result<Vec<FreeSlot>, IntegrationError>> {
            refused(&self.ods)
        }
        fn book_appointment<'a>(
            &'a self,
            _: &'a RequestContext,
            _: &'a BookingRequest,
        ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
            refused(&self.ods)
        }
        fn cancel_appointment<'a>(
            &'a self,
            _: &'a RequestContext,
            _: &'a CancellationRequest,
        ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
            refused(&self.ods)
        }
        fn create_task<'a>(
            &'a self,
            _: &'a RequestContext,
            _: &'a TaskRequest,
        ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
            refused(&self.ods)
        }
        fn add_entry<'a>(
            &'a self,
            _: &'a RequestContext,
            _: &'a EntryRequest,
        ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
            refused(&self.ods)
        }
        fn attach_document<'a>(
            &'a self,
            _: &'a RequestContext,
            _: &'a DocumentRequest,
        ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
            refused(&self.ods)
        }
    }

    fn practice(
        find: Result<bool, IntegrationError>,
        down: Vec<RecordSection>,
    ) -> (Practice, Arc<Scripted>) {
        let ods = OdsCode::parse("Y90002").expect("valid");
        let system = Arc::new(Scripted {
            ods: ods.clone(),
            find,
            down_sections: down,
            asked: Mutex::new(vec![]),
        });
        let connection = PracticeConnection {
            ods,
            name: "Hillside".into(),
            system: ClinicalSystem::TppStyle,
            interfaces: vec![InterfaceConnection {
                interface: Interface::GpConnect,
                base_url: "http://127.0.0.1:1".into(),
                enabled: true,
                version: Some("1.6.2".into()),
                timeout_ms: 2000,
                disabled_operations: vec![],
            }],
            local_configuration: BTreeMap::new(),
        };
        let practice = Practice {
            connection,
            systems: vec![system.clone()],
            probes: vec![],
        };
        (practice, system)
    }

    fn ctx() -> RequestContext {
        RequestContext::local_development(CorrelationId::parse("t").expect("valid"))
    }

    fn nhs() -> NhsNumber {
        NhsNumber::parse("9990000018").expect("valid")
    }

    fn state(content: &SectionContent) -> String {
        serde_json::to_value(content).expect("serialise")["state"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    #[tokio::test]
    async fn each_section_keeps_its_own_state_and_a_failed_call_is_failed_not_empty() {
        let (practice, system) = practice(Ok(true), vec![RecordSection::Medications]);
        let asked = [
            RecordSection::Problems,
            RecordSection::Allergies,
            RecordSection::Medications,
            RecordSection::Documents,
        ];
        let record = federated_record(&ctx(), &practice, nhs(), &asked)
            .await
            .expect("record");
        let states: Vec<String> = record.sections.iter().map(state).collect();
        assert_eq!(
            states,
            ["recorded", "nothing-recorded", "failed", "unavailable"]
        );
        assert!(record.is_partial());
        // Documents have no route through GP Connect: refused before any request.
        assert!(
            !system
                .asked
                .lock()
                .expect("lock")
                .contains(&RecordSection::Documents)
        );
        let json = serde_json::to_value(&record.sections[3]).expect("serialise");
        let reason = json["state"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("read-documents"), "{reason}");
    }

    #[tokio::test]
    async fn a_practice_that_cannot_be_reached_gives_every_section_unavailable() {
        let down = IntegrationError::Unavailable {
            practice: OdsCode::parse("Y90002").expect("valid"),
            reason: "could not connect".into(),
        };
        let (practice, _) = practice(Err(down), vec![]);
        let record = federated_record(&ctx(), &practice, nhs(), &RecordSection::ALL)
            .await
            .expect("record");
        assert!(record.patient.is_none());
        assert_eq!(record.sections.len(), RecordSection::ALL.len());
        assert!(record.sections.iter().all(SectionContent::is_unavailable));
    }

    #[tokio::test]
    async fn no_record_at_the_practice_is_an_error_not_an_empty_record() {
        let (practice, _) = practice(Ok(false), vec![]);
        let answer = federated_record(&ctx(), &practice, nhs(), &RecordSection::ALL).await;
        assert!(matches!(
            answer,
            Err(IntegrationError::PatientNotFound { .. })
        ));
    }

    #[tokio::test]
    async fn a_section_the_probe_does_not_offer_is_refused_before_any_request() {
        let (mut practice, system) = practice(Ok(true), vec![]);
        assert!(practice.system_for(Operation::ReadProblems).is_ok());
        practice.probes = vec![Probe {
            interface: Interface::GpConnect,
            offered: vec![Operation::FindPatient, Operation::ReadAllergies],
            probed_at: keel_model::Instant::parse("2026-01-05T09:30:00Z").expect("valid"),
        }];
        let err = practice
            .system_for(Operation::ReadProblems)
            .err()
            .expect("not offered");
        assert!(
            err.to_string()
                .contains("CapabilityStatement does not offer it"),
            "{err}"
        );
        let record = federated_record(
            &ctx(),
            &practice,
            nhs(),
            &[RecordSection::Problems, RecordSection::Allergies],
        )
        .await
        .expect("record");
        assert_eq!(
            record.sections.iter().map(state).collect::<Vec<_>>(),
            ["unavailable", "nothing-recorded"]
        );
        assert_eq!(
            *system.asked.lock().expect("lock"),
            [RecordSection::Allergies]
        );
    }
}
