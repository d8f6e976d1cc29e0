//! A FHIR R4 Patient as the matcher sees it: a [`PersonRecord`] (names, date of birth, sex,
//! postcode, first address line, registered practice) and the NHS number it claims, with
//! whether that number is verified.

use crate::error::{FhirError, FhirResult};
use keel_identity::PersonRecord;
use keel_model::{NhsNumber, identifier::systems};
use serde::Deserialize;

/// The UK Core extension on an NHS number identifier that says how it was verified.
pub const NHS_VERIFICATION_EXTENSION: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";

/// The NHS number a Patient carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NhsNumberClaim {
    /// Ten digits, valid by Modulus 11.
    pub number: String,
    /// Verification status "present and verified" (`01` or `number-present-and-verified`).
    pub verified: bool,
}

/// A Patient as the matcher compares it.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchSubject {
    pub record: PersonRecord,
    pub nhs: Option<NhsNumberClaim>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PatientFields {
    resource_type: String,
    identifier: Vec<IdentifierFields>,
    name: Vec<NameFields>,
    gender: Option<String>,
    birth_date: Option<String>,
    address: Vec<AddressFields>,
    general_practitioner: Vec<ReferenceFields>,
    managing_organization: Option<ReferenceFields>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct IdentifierFields {
    system: Option<String>,
    value: Option<String>,
    extension: Vec<ExtensionFields>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ExtensionFields {
    url: String,
    value_codeable_concept: Option<ConceptFields>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConceptFields {
    coding: Vec<CodingFields>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CodingFields {
    code: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NameFields {
    #[serde(rename = "use")]
    use_: Option<String>,
    family: Option<String>,
    given: Vec<String>,
    period: Option<PeriodFields>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct AddressFields {
    #[serde(rename = "use")]
    use_: Option<String>,
    line: Vec<String>,
    postal_code: Option<String>,
    period: Option<PeriodFields>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PeriodFields {
    end: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReferenceFields {
    reference: Option<String>,
    identifier: Option<IdentifierFields>,
}

/// The matcher's view of a stored Patient (`id` is its store id). A Patient whose practice is
/// not recorded is its own source, so the one-practice rule never groups it with another.
pub fn stored_subject(id: &str, body: &str) -> Result<MatchSubject, String> {
    let fields: PatientFields = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let practice = practice_of(&fields).unwrap_or_else(|| format!("unregistered/{id}"));
    subject(id, &practice, &fields, false)
}

/// The matcher's view of the Patient a `$match` request sends. Errors say what is wrong with it.
pub fn query_subject(resource: &serde_json::Value) -> FhirResult<MatchSubject> {
    let fields: PatientFields = serde_json::from_value(resource.clone()).map_err(|e| {
        FhirError::BadRequest(format!(
            "the resource parameter is not a readable Patient: {e}"
        ))
    })?;
    if fields.resource_type != "Patient" {
        return Err(FhirError::BadRequest(format!(
            "the resource parameter must be a Patient, not {}",
            if fields.resource_type.is_empty() {
                "a resource without a resourceType"
            } else {
                &fields.resource_type
            }
        )));
    }
    let subject = subject("", "", &fields, true).map_err(FhirError::BadRequest)?;
    let r = &subject.record;
    let has_name = !r.family.is_empty() || !r.given.is_empty();
    if subject.nhs.is_none() && !(has_name && r.birth_year.is_some()) {
        return Err(FhirError::BadRequest(
            "a Patient to match needs an NHS number, or at least a name and a birth date".into(),
        ));
    }
    Ok(subject)
}

fn subject(
    id: &str,
    practice: &str,
    fields: &PatientFields,
    strict: bool,
) -> Result<MatchSubject, String> {
    let mut record = PersonRecord::new(id).with_source(practice);
    let nhs = nhs_number(fields, strict)?;
    if let Some(claim) = &nhs {
        record = record.with_nhs_number(&claim.number);
    }
    if let Some(name) = preferred(&fields.name, |n| n.use_.as_deref(), |n| &n.period) {
        record = record
            .with_given(name.given.first().map_or("", String::as_str))
            .with_family(name.family.as_deref().unwrap_or(""));
    }
    if let Some(date) = &fields.birth_date {
        record = record.with_birth_date(date);
    }
    if let Some(gender) = &fields.gender {
        record = record.with_sex(gender);
    }
    if let Some(address) = preferred(&fields.address, |a| a.use_.as_deref(), |a| &a.period) {
        record = record
            .with_postcode(address.postal_code.as_deref().unwrap_or(""))
            .with_address(address.line.first().map_or("", String::as_str));
    }
    Ok(MatchSubject { record, nhs })
}

/// The NHS number identifier, if any. A number that fails its check digit is an error in a
/// query (`strict`) and ignored in a stored record (it cannot identify anyone).
fn nhs_number(fields: &PatientFields, strict: bool) -> Result<Option<NhsNumberClaim>, String> {
    let Some(identifier) = fields
        .identifier
        .iter()
        .find(|i| i.system.as_deref() == Some(systems::NHS_NUMBER) && i.value.is_some())
    else {
        return Ok(None);
    };
    let value = identifier.value.as_deref().unwrap_or_default();
    let number = match NhsNumber::parse(value) {
        Ok(number) => number,
        Err(e) if strict => return Err(format!("the Patient's NHS number is not valid: {e}")),
        Err(_) => return Ok(None),
    };
    let verified = identifier.extension.iter().any(|e| {
        e.url == NHS_VERIFICATION_EXTENSION
            && e.value_codeable_concept.as_ref().is_some_and(|c| {
                c.coding.iter().any(|c| {
                    matches!(
                        c.code.as_deref(),
                        Some("01" | "number-present-and-verified")
                    )
                })
            })
    });
    Ok(Some(NhsNumberClaim {
        number: number.as_str().to_string(),
        verified,
    }))
}

/// The current entry to compare: an `official` (names) or `home` (addresses) one without an
/// end date, else any without an end date, else the first.
fn preferred<T>(
    items: &[T],
    use_of: impl Fn(&T) -> Option<&str>,
    period_of: impl Fn(&T) -> &Option<PeriodFields>,
) -> Option<&T> {
    let current = |t: &&T| period_of(t).as_ref().is_none_or(|p| p.end.is_none());
    items
        .iter()
        .filter(current)
        .find(|t| matches!(use_of(t), Some("official" | "usual" | "home")))
        .or_else(|| items.iter().find(current))
        .or_else(|| items.first())
}

/// The registered practice: the first `generalPractitioner` that is an Organization (its id, or
/// its ODS code when referred to by identifier: Keel's Organizations have their ODS code as id),
/// else the managing organisation.
fn practice_of(fields: &PatientFields) -> Option<String> {
    let organisation = |r: &ReferenceFields| -> Option<String> {
        if let Some(reference) = &r.reference
            && let Some(id) = reference.strip_prefix("Organization/")
        {
            return Some(id.to_string());
        }
        let identifier = r.identifier.as_ref()?;
        (identifier.system.as_deref() == Some(systems::ODS_ORGANISATION_CODE))
            .then(|| identifier.value.clone())
            .flatten()
    };
    fields
        .general_practitioner
        .iter()
        .find_map(organisation)
        .or_else(|| fields.managing_organization.as_ref().and_then(organisation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patient() -> serde_json::Value {
        json!({
            "resourceType": "Patient",
            "identifier": [{
                "system": "https://fhir.nhs.uk/Id/nhs-number",
                "value": "9990000018",
                "extension": [{
                    "url": NHS_VERIFICATION_EXTENSION,
                    "valueCodeableConcept": {"coding": [{"code": "01"}]}
                }]
            }],
            "name": [
                {"use": "old", "family": "Smith", "given": ["Ann"], "period": {"end": "2001-01-01"}},
                {"use": "official", "family": "Jones", "given": ["Ann", "Marie"]}
            ],
            "gender": "female",
            "birthDate": "1980-02-29",
            "address": [{"use": "home", "line": ["12 Mill Rd", "Headingley"], "postalCode": "ls64ap"}],
            "generalPractitioner": [{"reference": "Organization/Y90001"}]
        })
    }

    #[test]
    fn a_stored_patient_becomes_a_normalised_record_of_its_practice() {
        let s = stored_subject("p1", &patient().to_string()).expect("readable");
        let r = &s.record;
        assert_eq!(
            (r.given.as_str(), r.family.as_str()),
            ("ann", "jones"),
            "the current official name"
        );
        assert_eq!(
            (r.birth_year, r.birth_month, r.birth_day),
            (Some(1980), Some(2), Some(29))
        );
        assert_eq!(r.postcode, "LS6 4AP");
        assert_eq!(r.address, "12 mill road");
        assert_eq!(r.source, "Y90001");
        assert_eq!(
            s.nhs,
            Some(NhsNumberClaim {
                number: "9990000018".into(),
                verified: true
            })
        );
    }

    #[test]
    fn a_patient_without_a_practice_is_its_own_source() {
        let mut p = patient();
        p.as_object_mut().map(|m| m.remove("generalPractitioner"));
        let s = stored_subject("p9", &p.to_string()).expect("readable");
        assert_eq!(s.record.source, "unregistered/p9");
    }

    #[test]
    fn a_query_must_be_a_patient_with_enough_to_match_on() {
        let err = query_subject(&json!({"resourceType": "Observation"})).expect_err("refused");
        assert!(err.to_string().contains("must be a Patient"), "{err}");
        let err = query_subject(&json!({"resourceType": "Patient", "gender": "male"}))
            .expect_err("refused");
        assert!(err.to_string().contains("NHS number, or at least"), "{err}");
        let mut p = patient();
        p["identifier"][0]["value"] = json!("9990000019");
        let err = query_subject(&p).expect_err("refused");
        assert!(err.to_string().contains("NHS number is not valid"), "{err}");
        let mut unverified = patient();
        unverified["identifier"][0]
            .as_object_mut()
            .map(|m| m.remove("extension"));
        let s = query_subject(&unverified).expect("a query");
        assert_eq!(s.nhs.map(|n| n.verified), Some(false));
    }
}
