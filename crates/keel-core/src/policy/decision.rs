//! What a decision says: the effect, every reason, the policy version and the obligations.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    Permit,
    Deny,
}

/// Why a decision came out as it did. A decision denies exactly when one of its reasons is a
/// denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReasonCode {
    // Reasons for a permit, or notes on one.
    RoleGrantsFunction,
    ScopeGrantsFunction,
    RelationshipRegisteredPractice,
    RelationshipPcnMemberPractice,
    RelationshipPcnHubService,
    RelationshipOpenTask,
    RelationshipOpenReferral,
    RelationshipAppointment,
    BreakGlassActive,
    SensitiveWithheld,
    // Denials.
    NoRoleMapping,
    FunctionNotGranted,
    PurposeNotAllowed,
    ScopeMissing,
    FunctionNotForSystems,
    OrganisationMissing,
    PatientFactsMissing,
    NoLegitimateRelationship,
    NotRegisteredInPcn,
    NationalDataOptOut,
    Type1OptOut,
    BreakGlassNotGranted,
    BreakGlassDetailsMissing,
    BreakGlassReasonMissing,
    BreakGlassExpired,
    BreakGlassTooLong,
    BreakGlassPurposeNotAllowed,
}

impl ReasonCode {
    pub fn as_code(self) -> &'static str {
        use ReasonCode::*;
        match self {
            RoleGrantsFunction => "role-grants-function",
            ScopeGrantsFunction => "scope-grants-function",
            RelationshipRegisteredPractice => "relationship-registered-practice",
            RelationshipPcnMemberPractice => "relationship-pcn-member-practice",
            RelationshipPcnHubService => "relationship-pcn-hub-service",
            RelationshipOpenTask => "relationship-open-task",
            RelationshipOpenReferral => "relationship-open-referral",
            RelationshipAppointment => "relationship-appointment",
            BreakGlassActive => "break-glass-active",
            SensitiveWithheld => "sensitive-withheld",
            NoRoleMapping => "no-role-mapping",
            FunctionNotGranted => "function-not-granted",
            PurposeNotAllowed => "purpose-not-allowed",
            ScopeMissing => "scope-missing",
            FunctionNotForSystems => "function-not-for-systems",
            OrganisationMissing => "organisation-missing",
            PatientFactsMissing => "patient-facts-missing",
            NoLegitimateRelationship => "no-legitimate-relationship",
            NotRegisteredInPcn => "not-registered-in-pcn",
            NationalDataOptOut => "national-data-opt-out",
            Type1OptOut => "type-1-opt-out",
            BreakGlassNotGranted => "break-glass-not-granted",
            BreakGlassDetailsMissing => "break-glass-details-missing",
            BreakGlassReasonMissing => "break-glass-reason-missing",
            BreakGlassExpired => "break-glass-expired",
            BreakGlassTooLong => "break-glass-too-long",
            BreakGlassPurposeNotAllowed => "break-glass-purpose-not-allowed",
        }
    }

    /// The reason in words, fit to show the actor when [`ReasonCode::safe_to_show`].
    pub fn words(self) -> &'static str {
        use ReasonCode::*;
        match self {
            RoleGrantsFunction => "your role grants this function",
            ScopeGrantsFunction => "the client's scopes grant this function",
            RelationshipRegisteredPractice => "the patient is registered at your organisation",
            RelationshipPcnMemberPractice => "the patient is registered at a practice in your PCN",
            RelationshipPcnHubService => "your hub service serves the patient's PCN",
            RelationshipOpenTask => "an open task links your organisation to the patient",
            RelationshipOpenReferral => "an open referral links your organisation to the patient",
            RelationshipAppointment => "an appointment links your organisation to the patient",
            BreakGlassActive => "break-glass is in force: this access is flagged and alerted",
            SensitiveWithheld => "some sensitive entries are withheld",
            NoRoleMapping => "your role has no access in this policy",
            FunctionNotGranted => "your role does not grant this function",
            PurposeNotAllowed => "this purpose of use is not allowed for your role",
            ScopeMissing => "the client's scopes do not cover this function",
            FunctionNotForSystems => "this function is for people, not system clients",
            OrganisationMissing => "no organisation was selected",
            PatientFactsMissing => "the request names no patient",
            NoLegitimateRelationship => {
                "no legitimate relationship links your organisation to this patient"
            }
            NotRegisteredInPcn => "the data is limited to patients registered in your PCN",
            NationalDataOptOut => "the patient has a national data opt-out",
            Type1OptOut => "the patient has a Type 1 opt-out",
            BreakGlassNotGranted => "your role may not use break-glass",
            BreakGlassDetailsMissing => "break-glass needs a reason and an expiry",
            BreakGlassReasonMissing => "break-glass needs a stated reason",
            BreakGlassExpired => "the break-glass has expired",
            BreakGlassTooLong => "the break-glass lasts longer than the policy allows",
            BreakGlassPurposeNotAllowed => "break-glass is only for the purposes the policy names",
        }
    }

    pub fn is_denial(self) -> bool {
        self >= ReasonCode::NoRoleMapping
    }

    /// Whether the reason may be shown to the actor: it does not disclose a fact about the
    /// patient (such as an opt-out) that the actor may not learn.
    pub fn safe_to_show(self) -> bool {
        !matches!(
            self,
            ReasonCode::NationalDataOptOut | ReasonCode::Type1OptOut
        )
    }
}

/// A demographic field to redact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RedactedField {
    Address,
    Telecom,
    RegisteredGp,
    Name,
    BirthDate,
}

/// What the caller must do with the data of a permitted request.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Obligations {
    pub redact: Vec<RedactedField>,
    /// Sensitive categories to withhold and report as withheld (never drop silently).
    pub withhold: Vec<String>,
    /// If not empty, return only observations in these categories.
    pub observation_categories: Vec<String>,
    pub pseudonymise: bool,
    /// Write the audit record flagged and raise an alert (break-glass).
    pub flagged_audit_and_alert: bool,
}

/// The answer to one access request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub effect: Effect,
    /// Every reason, permits and denials, in the order they were found.
    pub reasons: Vec<ReasonCode>,
    pub policy_version: String,
    /// Empty for a denial.
    pub obligations: Obligations,
    /// A denial that must read exactly as if the patient were not there.
    pub conceal_existence: bool,
}

impl Decision {
    pub fn is_permit(&self) -> bool {
        self.effect == Effect::Permit
    }

    /// The denial reasons the actor may see: none when existence is concealed, else those
    /// that disclose nothing about the patient (so a concealed fact changes nothing shown).
    pub fn denial_reasons_to_show(&self) -> Vec<ReasonCode> {
        if self.conceal_existence {
            return Vec::new();
        }
        self.reasons
            .iter()
            .copied()
            .filter(|r| r.is_denial() && r.safe_to_show())
            .collect()
    }
}
