//! Redaction of restricted (`R`, S-flag) and very restricted (`V`) patients, and the reduced
//! Patient returned by search (reference sheet §4).

use serde_json::Value;

use super::confidentiality_of;

/// Fields removed for `R` (and `V`): location data.
pub const RESTRICTED_REMOVED: &[&str] = &["address", "telecom", "generalPractitioner", "contact"];
/// Further fields removed for `V`.
pub const VERY_RESTRICTED_REMOVED: &[&str] = &["name", "birthDate"];

/// Extensions not returned by search (place of birth, pharmacies, communication, contact
/// preferences).
const SEARCH_OMITTED_EXTENSIONS: &[&str] = &[
    "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NominatedPharmacy",
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-PreferredDispenserOrganization",
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-MedicalApplianceSupplier",
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSCommunication",
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-ContactPreference",
];

/// Whether the patient is `R` or `V`.
pub fn is_restricted(patient: &Value) -> bool {
    matches!(confidentiality_of(patient).as_str(), "R" | "V")
}

/// The Patient as a retrieve returns it.
pub fn for_retrieve(mut patient: Value) -> Value {
    redact(&mut patient);
    patient
}

/// The Patient as a search returns it: redacted and reduced.
pub fn for_search(mut patient: Value) -> Value {
    redact(&mut patient);
    if let Some(obj) = patient.as_object_mut() {
        if let Some(Value::Array(exts)) = obj.get_mut("extension") {
            exts.retain(|e| {
                e.get("url")
                    .and_then(Value::as_str)
                    .is_none_or(|u| !SEARCH_OMITTED_EXTENSIONS.contains(&u))
            });
            if exts.is_empty() {
                obj.remove("extension");
            }
        }
        if let Some(Value::Array(addrs)) = obj.get_mut("address") {
            addrs.retain(|a| {
                a.get("use")
                    .and_then(Value::as_str)
                    .is_none_or(|u| u == "home")
            });
            if addrs.is_empty() {
                obj.remove("address");
            }
        }
    }
    patient
}

fn redact(patient: &mut Value) {
    let code = confidentiality_of(patient);
    let Some(obj) = patient.as_object_mut() else {
        return;
    };
    if code == "R" || code == "V" {
        for f in RESTRICTED_REMOVED {
            obj.remove(*f);
        }
    }
    if code == "V" {
        for f in VERY_RESTRICTED_REMOVED {
            obj.remove(*f);
        }
    }
}
