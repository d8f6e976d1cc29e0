//! Which function reads each resource type, and how a resource names its patient.

use crate::policy::Function;

/// How access to a resource type is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeClass {
    /// The patient: decided on the patient themself.
    Patient,
    /// Part of a patient's record, linked to them by the `patient` search parameter.
    PatientData(Function),
    /// Shared reference data (organisations, practitioners, locations, medications,
    /// definitions): visible to every actor the policy knows.
    Shared,
    /// Never through the FHIR store for a restricted actor: cohort groups and links between
    /// people (secondary use), audit (served from the audit log).
    Hidden,
}

/// Types with patient references but no `patient` parameter that still hold patient data.
const HIDDEN: &[&str] = &[
    "AuditEvent",
    "Group",
    "Linkage",
    "MessageHeader",
    "PaymentNotice",
    "SupplyRequest",
    "VerificationResult",
];

/// The search parameter that links a resource to its patient.
pub const PATIENT_PARAM: &str = "patient";

/// The class of `resource_type`; `has_patient_param` says whether the type has the `patient`
/// search parameter (from the R4 definitions).
pub fn classify(resource_type: &str, has_patient_param: bool) -> TypeClass {
    if resource_type == "Patient" {
        return TypeClass::Patient;
    }
    if HIDDEN.contains(&resource_type) {
        return TypeClass::Hidden;
    }
    if !has_patient_param {
        return TypeClass::Shared;
    }
    TypeClass::PatientData(match resource_type {
        "EpisodeOfCare" => Function::ReadDemographics,
        "Appointment" | "AppointmentResponse" => Function::ReadAppointments,
        "Condition" => Function::ReadProblems,
        "MedicationRequest"
        | "MedicationStatement"
        | "MedicationDispense"
        | "MedicationAdministration" => Function::ReadMedications,
        "AllergyIntolerance" => Function::ReadAllergies,
        "Observation" | "DiagnosticReport" | "Specimen" | "MolecularSequence" => {
            Function::ReadObservations
        }
        "Immunization" | "ImmunizationEvaluation" | "ImmunizationRecommendation" => {
            Function::ReadImmunisations
        }
        "DocumentReference" | "DocumentManifest" | "Composition" | "Media" => {
            Function::ReadDocuments
        }
        // The rest of the clinical record (encounters, procedures, care plans, referrals,
        // tasks ...) is read with the consultations: the full record.
        _ => Function::ReadConsultations,
    })
}

/// The function that reads resources of this class; `None` for shared and hidden types.
pub fn read_function(class: TypeClass) -> Option<Function> {
    match class {
        TypeClass::Patient => Some(Function::ReadDemographics),
        TypeClass::PatientData(f) => Some(f),
        TypeClass::Shared | TypeClass::Hidden => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_types_map_to_their_functions() {
        assert_eq!(classify("Patient", false), TypeClass::Patient);
        assert_eq!(
            classify("Observation", true),
            TypeClass::PatientData(Function::ReadObservations)
        );
        assert_eq!(
            classify("Appointment", true),
            TypeClass::PatientData(Function::ReadAppointments)
        );
        assert_eq!(
            classify("Procedure", true),
            TypeClass::PatientData(Function::ReadConsultations)
        );
        assert_eq!(classify("Organization", false), TypeClass::Shared);
        assert_eq!(classify("Group", false), TypeClass::Hidden);
        assert_eq!(classify("AuditEvent", true), TypeClass::Hidden);
    }
}
