//! Business identifiers (FHIR `Identifier`) and the UK identifier system URIs.

use serde::{Deserialize, Serialize};

use crate::{NhsNumber, OdsCode};

/// A business identifier: a value that is unique within the namespace named by `system`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// URI of the namespace, usually one of the constants in [`systems`].
    pub system: String,
    /// The identifier within that namespace, exactly as issued.
    pub value: String,
}

impl Identifier {
    /// An identifier in any system.
    pub fn new(system: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            system: system.into(),
            value: value.into(),
        }
    }

    /// The NHS number identifier (system [`systems::NHS_NUMBER`], value the 10 plain digits).
    pub fn nhs_number(number: &NhsNumber) -> Self {
        Self::new(systems::NHS_NUMBER, number.as_str())
    }

    /// The ODS organisation code identifier (system [`systems::ODS_ORGANISATION_CODE`]).
    pub fn ods(code: &OdsCode) -> Self {
        Self::new(systems::ODS_ORGANISATION_CODE, code.as_str())
    }
}

/// Identifier system URIs used in England (UK Core R4 and GP Connect common identifier systems).
pub mod systems {
    /// NHS number.
    pub const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
    /// ODS organisation code (note the US spelling of "organization" in the URI).
    pub const ODS_ORGANISATION_CODE: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
    /// ODS site code.
    pub const ODS_SITE_CODE: &str = "https://fhir.nhs.uk/Id/ods-site-code";
    /// Spine Directory Service user id (the smartcard user's UUID).
    pub const SDS_USER_ID: &str = "https://fhir.nhs.uk/Id/sds-user-id";
    /// Spine Directory Service role profile id (URP id).
    pub const SDS_ROLE_PROFILE_ID: &str = "https://fhir.nhs.uk/Id/sds-role-profile-id";
    /// General Medical Council reference number (7 digits, or `L` + 6 digits).
    pub const GMC_NUMBER: &str = "https://fhir.hl7.org.uk/Id/gmc-number";
    /// General medical practitioner (prescribing, PPD) code.
    pub const GMP_NUMBER: &str = "https://fhir.hl7.org.uk/Id/gmp-number";
    /// General Pharmaceutical Council registration number (7 digits starting with 2).
    pub const GPHC_NUMBER: &str = "https://fhir.hl7.org.uk/Id/gphc-number";
    /// Nursing and Midwifery Council PIN (8 characters).
    pub const NMC_NUMBER: &str = "https://fhir.hl7.org.uk/Id/nmc-number";
    /// Health and Care Professions Council registration number (2 letters and up to 6 digits).
    pub const HCPC_NUMBER: &str = "https://fhir.hl7.org.uk/Id/hcpc-number";
    /// e-Referral Service unique booking reference number.
    pub const UBRN: &str = "https://fhir.nhs.uk/Id/UBRN";
    /// EPS short-form prescription id (the prescription as a whole).
    pub const PRESCRIPTION_ORDER_NUMBER: &str = "https://fhir.nhs.uk/Id/prescription-order-number";
    /// EPS prescription line item id.
    pub const PRESCRIPTION_ORDER_ITEM_NUMBER: &str =
        "https://fhir.nhs.uk/Id/prescription-order-item-number";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhs_number_identifier_uses_plain_digits() {
        let number = NhsNumber::parse("999 123 4578").expect("valid");
        assert_eq!(
            Identifier::nhs_number(&number),
            Identifier::new("https://fhir.nhs.uk/Id/nhs-number", "9991234578")
        );
    }

    #[test]
    fn ods_identifier_uses_organisation_code_system() {
        let code = OdsCode::parse("a81001").expect("valid");
        let identifier = Identifier::ods(&code);
        assert_eq!(identifier.system, systems::ODS_ORGANISATION_CODE);
        assert_eq!(identifier.value, "A81001");
    }

    #[test]
    fn serialises_as_fhir_identifier() {
        let identifier = Identifier::new(systems::SDS_USER_ID, "123456789012");
        assert_eq!(
            serde_json::to_value(&identifier).expect("serialise"),
            serde_json::json!({
                "system": "https://fhir.nhs.uk/Id/sds-user-id",
                "value": "123456789012"
            })
        );
    }
}
