//! What an actor asks to do: the functions the policy grants, and the data scope each needs.

use serde::{Deserialize, Serialize};

/// A function the policy can grant to a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Function {
    ReadDemographics,
    ReadContactDetails,
    ReadAppointments,
    ReadProblems,
    ReadMedications,
    ReadAllergies,
    ReadObservations,
    ReadImmunisations,
    ReadConsultations,
    ReadDocuments,
    WriteRecordEntries,
    BookAppointments,
    ReadPseudonymisedCohorts,
    ReadAudit,
    Export,
    BreakGlass,
}

/// How far a function's data reaches, which decides the organisation check it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataScope {
    /// One patient's data: needs a legitimate relationship (or valid break-glass).
    Patient,
    /// A patient's data inside a cohort of the PCN: the patient must be registered at a
    /// practice of the actor's PCN.
    Pcn,
    /// The actor's own organisation's records (audit), not a patient's.
    Organisation,
}

/// The SMART permission letters a system client's scope must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SmartAccess {
    /// `r` and `s`: read and search.
    ReadSearch,
    /// `c`: create.
    Create,
}

impl Function {
    /// Every function, in declaration order.
    pub const ALL: [Function; 16] = [
        Function::ReadDemographics,
        Function::ReadContactDetails,
        Function::ReadAppointments,
        Function::ReadProblems,
        Function::ReadMedications,
        Function::ReadAllergies,
        Function::ReadObservations,
        Function::ReadImmunisations,
        Function::ReadConsultations,
        Function::ReadDocuments,
        Function::WriteRecordEntries,
        Function::BookAppointments,
        Function::ReadPseudonymisedCohorts,
        Function::ReadAudit,
        Function::Export,
        Function::BreakGlass,
    ];

    pub fn data_scope(self) -> DataScope {
        match self {
            Function::ReadPseudonymisedCohorts => DataScope::Pcn,
            Function::ReadAudit => DataScope::Organisation,
            _ => DataScope::Patient,
        }
    }

    /// Whether the function returns clinical entries, so sensitive entries may be withheld.
    pub fn returns_clinical_entries(self) -> bool {
        matches!(
            self,
            Function::ReadProblems
                | Function::ReadMedications
                | Function::ReadAllergies
                | Function::ReadObservations
                | Function::ReadImmunisations
                | Function::ReadConsultations
                | Function::ReadDocuments
                | Function::ReadPseudonymisedCohorts
                | Function::Export
        )
    }

    /// The FHIR resource types (`*` for all) and permission a system client's scopes must
    /// cover; `None` when the function is for people only.
    pub(crate) fn smart_requirement(self) -> Option<(&'static [&'static str], SmartAccess)> {
        use SmartAccess::{Create, ReadSearch};
        let requirement: (&'static [&'static str], SmartAccess) = match self {
            Function::ReadDemographics | Function::ReadContactDetails => (&["Patient"], ReadSearch),
            Function::ReadAppointments => (&["Appointment"], ReadSearch),
            Function::ReadProblems => (&["Condition"], ReadSearch),
            Function::ReadMedications => {
                (&["MedicationRequest", "MedicationStatement"], ReadSearch)
            }
            Function::ReadAllergies => (&["AllergyIntolerance"], ReadSearch),
            Function::ReadObservations => (&["Observation"], ReadSearch),
            Function::ReadImmunisations => (&["Immunization"], ReadSearch),
            Function::ReadConsultations => (&["Encounter"], ReadSearch),
            Function::ReadDocuments => (&["DocumentReference"], ReadSearch),
            Function::WriteRecordEntries => (&["*"], Create),
            Function::BookAppointments => (&["Appointment"], Create),
            Function::ReadAudit => (&["AuditEvent"], ReadSearch),
            Function::Export => (&["*"], ReadSearch),
            Function::ReadPseudonymisedCohorts | Function::BreakGlass => return None,
        };
        Some(requirement)
    }
}
