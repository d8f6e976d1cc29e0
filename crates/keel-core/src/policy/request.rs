//! The facts a decision is made on. The caller gathers them (token claims, directory, PDS,
//! the record); the engine only reads them.

use keel_model::OdsCode;
use serde::{Deserialize, Serialize};

use super::function::Function;
use super::smart_scope::SmartScope;
use crate::context::PurposeOfUse;

/// Everything one decision needs.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRequest {
    pub requester: Requester,
    /// The organisation the actor acts for (a user's selected role organisation).
    pub organisation: Option<OrganisationFacts>,
    pub purpose: PurposeOfUse,
    pub function: Function,
    /// The patient's facts; `None` for functions that concern no patient (audit).
    pub patient: Option<PatientFacts>,
    pub break_glass: Option<BreakGlass>,
    /// Milliseconds since the Unix epoch, from the injected clock.
    pub now_millis: i64,
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq)]
pub enum Requester {
    User(UserRole),
    /// A module or other system client with SMART v2-style scopes.
    System {
        client_id: String,
        scopes: Vec<SmartScope>,
    },
}

/// A user's selected CIS2 role.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRole {
    /// The national RBAC role code, plain (`R8000`) or in full (`S8000:G8000:R8000`).
    pub role_code: String,
    /// The job role code, when known (`R1290` pharmacist).
    pub job_role_code: Option<String>,
    /// The role's national RBAC activity codes (`B0570`), included activities expanded.
    pub activity_codes: Vec<String>,
}

impl UserRole {
    /// The `R` code of the access role: the last `:`-separated part of the role code.
    pub fn access_role_code(&self) -> &str {
        self.role_code.rsplit(':').next().unwrap_or(&self.role_code)
    }
}

/// The organisation an actor acts for.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganisationFacts {
    pub ods: OdsCode,
    pub pcn: PcnMembership,
}

/// How an organisation belongs to a PCN.
#[derive(Debug, Clone, PartialEq)]
pub enum PcnMembership {
    None,
    /// A member practice of the PCN with this ODS code.
    MemberPractice(OdsCode),
    /// The hub service (extended access) of the PCN with this ODS code.
    HubService(OdsCode),
}

/// What is known about the patient, gathered before the decision.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PatientFacts {
    pub registered_practice: Option<OdsCode>,
    /// The PCN the registered practice belongs to.
    pub practice_pcn: Option<OdsCode>,
    /// Open tasks, referrals and appointments that link an organisation to the patient.
    pub care_links: Vec<CareLink>,
    pub restriction: PdsRestriction,
    pub national_data_opt_out: bool,
    pub type1_opt_out: bool,
    /// Codes of the sensitive categories present in the data asked for (`ivf`, `sti`, …).
    pub sensitive_categories: Vec<String>,
}

/// An open task, referral or appointment linking an organisation to the patient.
#[derive(Debug, Clone, PartialEq)]
pub struct CareLink {
    pub kind: CareLinkKind,
    pub organisation: OdsCode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CareLinkKind {
    OpenTask,
    OpenReferral,
    Appointment,
}

/// The PDS confidentiality code: `U` unrestricted, `R` restricted (S-flag), `V` very
/// restricted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PdsRestriction {
    #[default]
    Unrestricted,
    Restricted,
    VeryRestricted,
}

/// A legitimate relationship between the actor's organisation and the patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relationship {
    /// The patient is registered at the actor's organisation.
    RegisteredPractice,
    /// The patient is registered at a practice of the PCN the actor's practice belongs to.
    PcnMemberPractice,
    /// The patient is registered in the PCN whose hub service the actor works for.
    PcnHubService,
    OpenTask,
    OpenReferral,
    Appointment,
}

impl Relationship {
    /// Whether this relationship is registration in the actor's PCN (what cohorts need).
    pub fn is_registration(self) -> bool {
        matches!(
            self,
            Relationship::RegisteredPractice
                | Relationship::PcnMemberPractice
                | Relationship::PcnHubService
        )
    }
}

/// An emergency override of the legitimate-relationship check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlass {
    /// The stated reason; must not be blank.
    pub reason: String,
    pub expires_at_millis: i64,
}
