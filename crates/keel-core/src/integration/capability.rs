//! Capability profiles: which operations a practice supports, through which interface, with
//! which limits — so Keel picks a route per operation, or refuses before anyone does the work.
//!
//! A profile is built from the practice's configuration plus, where an interface can be asked,
//! what it said it offers when last asked: a [`Probe`] (see
//! [`super::PracticeConnection::capability_profile_with`]).

use keel_model::{Instant, OdsCode};
use serde::{Deserialize, Serialize};

use super::IntegrationError;

/// An operation of the capability contract ([`super::PracticeSystem`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    FindPatient,
    ReadProblems,
    ReadMedications,
    ReadAllergies,
    ReadObservations,
    ReadImmunisations,
    ReadConsultations,
    ReadDocuments,
    SearchFreeSlots,
    BookAppointment,
    CancelAppointment,
    CreateTask,
    AddEntry,
    AttachDocument,
}

impl Operation {
    pub const ALL: [Operation; 14] = [
        Operation::FindPatient,
        Operation::ReadProblems,
        Operation::ReadMedications,
        Operation::ReadAllergies,
        Operation::ReadObservations,
        Operation::ReadImmunisations,
        Operation::ReadConsultations,
        Operation::ReadDocuments,
        Operation::SearchFreeSlots,
        Operation::BookAppointment,
        Operation::CancelAppointment,
        Operation::CreateTask,
        Operation::AddEntry,
        Operation::AttachDocument,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Operation::FindPatient => "find-patient",
            Operation::ReadProblems => "read-problems",
            Operation::ReadMedications => "read-medications",
            Operation::ReadAllergies => "read-allergies",
            Operation::ReadObservations => "read-observations",
            Operation::ReadImmunisations => "read-immunisations",
            Operation::ReadConsultations => "read-consultations",
            Operation::ReadDocuments => "read-documents",
            Operation::SearchFreeSlots => "search-free-slots",
            Operation::BookAppointment => "book-appointment",
            Operation::CancelAppointment => "cancel-appointment",
            Operation::CreateTask => "create-task",
            Operation::AddEntry => "add-entry",
            Operation::AttachDocument => "attach-document",
        }
    }

    /// Whether the operation changes the practice's record (and so is never blindly retried).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Operation::BookAppointment
                | Operation::CancelAppointment
                | Operation::CreateTask
                | Operation::AddEntry
                | Operation::AttachDocument
        )
    }
}

/// An integration interface a practice can be reached through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Interface {
    GpConnect,
    EmisStyle,
    TppStyle,
    Pds,
}

impl Interface {
    pub fn key(self) -> &'static str {
        match self {
            Interface::GpConnect => "gp-connect",
            Interface::EmisStyle => "emis-style",
            Interface::TppStyle => "tpp-style",
            Interface::Pds => "pds",
        }
    }
}

/// What one interface at a practice said it offers when asked (e.g. GP Connect's
/// CapabilityStatement), as operations of the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub interface: Interface,
    /// The operations the interface offers, in [`Operation::ALL`] order.
    pub offered: Vec<Operation>,
    pub probed_at: Instant,
}

impl Probe {
    /// What was asked, in words for a reason: "the gp-connect CapabilityStatement".
    pub fn source(&self) -> String {
        match self.interface {
            Interface::GpConnect => "the gp-connect CapabilityStatement".into(),
            other => format!("the {} probe", other.key()),
        }
    }
}

/// How one operation is available at a practice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "support", rename_all = "kebab-case")]
pub enum Support {
    Supported {
        interface: Interface,
        /// Limits a caller should know before asking, in words (e.g. "slot search window at
        /// most 14 days").
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        limits: Vec<String>,
    },
    NotSupported {
        /// Why, in words safe to show (e.g. "GP Connect Appointment Management is not enabled").
        reason: String,
    },
}

/// One operation's route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRoute {
    pub operation: Operation,
    #[serde(flatten)]
    pub support: Support,
}

/// A practice's capability profile: one route per operation of the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityProfile {
    pub practice: OdsCode,
    pub operations: Vec<OperationRoute>,
}

impl CapabilityProfile {
    /// The interface to use for `operation`.
    ///
    /// # Errors
    /// [`IntegrationError::NotSupported`], naming the operation and why, when the practice
    /// cannot do it — before any request is made.
    pub fn route(&self, operation: Operation) -> Result<Interface, IntegrationError> {
        let found = self.operations.iter().find(|r| r.operation == operation);
        match found.map(|r| &r.support) {
            Some(Support::Supported { interface, .. }) => Ok(*interface),
            Some(Support::NotSupported { reason }) => Err(IntegrationError::NotSupported {
                practice: self.practice.clone(),
                operation,
                reason: reason.clone(),
            }),
            None => Err(IntegrationError::NotSupported {
                practice: self.practice.clone(),
                operation,
                reason: "the practice's capability profile does not list it".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> CapabilityProfile {
        CapabilityProfile {
            practice: OdsCode::parse("Y90001").expect("valid"),
            operations: vec![
                OperationRoute {
                    operation: Operation::ReadProblems,
                    support: Support::Supported {
                        interface: Interface::EmisStyle,
                        limits: vec![],
                    },
                },
                OperationRoute {
                    operation: Operation::BookAppointment,
                    support: Support::NotSupported {
                        reason: "GP Connect Appointment Management is not enabled".into(),
                    },
                },
            ],
        }
    }

    #[test]
    fn a_supported_operation_routes_to_its_interface() {
        assert_eq!(
            profile().route(Operation::ReadProblems).expect("routed"),
            Interface::EmisStyle
        );
    }

    #[test]
    fn an_unsupported_or_unlisted_operation_fails_naming_the_capability() {
        let err = profile()
            .route(Operation::BookAppointment)
            .expect_err("not supported");
        let text = err.to_string();
        assert!(text.contains("book-appointment"), "{text}");
        assert!(text.contains("not enabled"), "{text}");
        let err = profile()
            .route(Operation::CreateTask)
            .expect_err("unlisted");
        assert!(err.to_string().contains("create-task"));
    }

    #[test]
    fn the_profile_serialises_flat_and_machine_readable() {
        let json = serde_json::to_value(profile()).expect("serialise");
        assert_eq!(json["operations"][0]["operation"], "read-problems");
        assert_eq!(json["operations"][0]["support"], "supported");
        assert_eq!(json["operations"][0]["interface"], "emis-style");
        assert_eq!(json["operations"][1]["support"], "not-supported");
        let back: CapabilityProfile = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, profile());
    }

    #[test]
    fn keys_are_distinct() {
        let mut keys: Vec<&str> = Operation::ALL.iter().map(|o| o.key()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), Operation::ALL.len());
    }
}
