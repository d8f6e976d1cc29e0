//! The policy document: a versioned JSON file mapping national RBAC roles to functions with
//! their data scope, and the rules for relationships, sensitive entries and break-glass.

use serde::{Deserialize, Serialize};

use super::function::Function;
use super::request::{PdsRestriction, Relationship, UserRole};
use crate::context::PurposeOfUse;

/// The policy Keel ships with.
const DEFAULT_POLICY_JSON: &str = include_str!("../../policy/default-policy.json");

/// A complete, versioned access policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Quoted in every decision and audit record.
    pub version: String,
    /// Checked in order; a user gets the first profile that matches their role.
    pub profiles: Vec<RoleProfile>,
    /// Purposes system clients may state (their functions come from their scopes).
    pub system_client_purposes: Vec<PurposeOfUse>,
    /// Relationships that count as legitimate.
    pub accepted_relationships: Vec<Relationship>,
    /// The sensitive categories entries may be marked with (a category not listed here is
    /// withheld all the same).
    pub sensitive_categories: Vec<SensitiveCategory>,
    /// Sensitive entries are shown only to the patient's registered practice.
    pub sensitive_only_at_registered_practice: bool,
    pub break_glass: BreakGlassRules,
    /// Patients with these PDS restrictions are not acknowledged to an actor without a
    /// relationship: the denial reads as if the patient were not there.
    pub conceal_existence_for: Vec<PdsRestriction>,
}

/// A group of national RBAC roles and what they may do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleProfile {
    pub name: String,
    /// Access role codes (`R8000`).
    pub role_codes: Vec<String>,
    /// If not empty, the user must also hold one of these job role or activity codes.
    #[serde(default)]
    pub requires_any_of: Vec<String>,
    pub purposes: Vec<PurposeOfUse>,
    pub grants: Vec<Grant>,
    /// Purposes for which sensitive entries are shown to this profile.
    #[serde(default)]
    pub sensitive_visible_for: Vec<PurposeOfUse>,
}

/// One function granted to a profile, with its data minimisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub function: Function,
    /// The data must be pseudonymised before it leaves.
    #[serde(default)]
    pub pseudonymise: bool,
    /// If not empty, only observations in these categories (FHIR observation-category codes).
    #[serde(default)]
    pub observation_categories: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensitiveCategory {
    pub code: String,
    pub display: String,
    /// The value set: SNOMED CT concept ids whose entries belong to the category.
    #[serde(default)]
    pub snomed_codes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassRules {
    /// The longest a break-glass may last from the moment of the decision.
    pub max_duration_minutes: i64,
    pub purposes: Vec<PurposeOfUse>,
}

/// Why a policy document was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy is not valid JSON of the policy shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the policy has no version")]
    MissingVersion,
    #[error("role code {role_code} is in profiles {first} and {second} with the same conditions")]
    AmbiguousRole {
        role_code: String,
        first: String,
        second: String,
    },
    #[error("profile {profile} grants {function:?} twice")]
    DuplicateGrant { profile: String, function: Function },
    #[error("the break-glass duration must be positive, found {0} minutes")]
    BreakGlassDuration(i64),
}

impl Policy {
    /// The committed default policy (`crates/keel-core/policy/default-policy.json`).
    pub fn default_policy() -> Result<Policy, PolicyError> {
        Policy::from_json(DEFAULT_POLICY_JSON)
    }

    /// Parses and checks a policy document; callers read the file (the core does no I/O).
    pub fn from_json(json: &str) -> Result<Policy, PolicyError> {
        let policy: Policy = serde_json::from_str(json)?;
        policy.check()?;
        Ok(policy)
    }

    fn check(&self) -> Result<(), PolicyError> {
        if self.version.trim().is_empty() {
            return Err(PolicyError::MissingVersion);
        }
        if self.break_glass.max_duration_minutes <= 0 {
            return Err(PolicyError::BreakGlassDuration(
                self.break_glass.max_duration_minutes,
            ));
        }
        for (i, profile) in self.profiles.iter().enumerate() {
            for (j, grant) in profile.grants.iter().enumerate() {
                if profile.grants[..j]
                    .iter()
                    .any(|g| g.function == grant.function)
                {
                    return Err(PolicyError::DuplicateGrant {
                        profile: profile.name.clone(),
                        function: grant.function,
                    });
                }
            }
            // A later profile with the same role and the same conditions could never match.
            for earlier in &self.profiles[..i] {
                let shadowed = earlier.requires_any_of == profile.requires_any_of;
                if let Some(code) = profile
                    .role_codes
                    .iter()
                    .find(|c| shadowed && earlier.role_codes.contains(c))
                {
                    return Err(PolicyError::AmbiguousRole {
                        role_code: code.clone(),
                        first: earlier.name.clone(),
                        second: profile.name.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The first profile matching the user's access role (and job role or activities).
    pub fn profile_for(&self, user: &UserRole) -> Option<&RoleProfile> {
        let role = user.access_role_code();
        self.profiles.iter().find(|p| {
            p.role_codes.iter().any(|c| c == role)
                && (p.requires_any_of.is_empty()
                    || p.requires_any_of.iter().any(|needed| {
                        user.job_role_code.as_deref() == Some(needed.as_str())
                            || user.activity_codes.iter().any(|a| a == needed)
                    }))
        })
    }
}

impl RoleProfile {
    pub fn grant(&self, function: Function) -> Option<&Grant> {
        self.grants.iter().find(|g| g.function == function)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_loads_and_round_trips() {
        let policy = Policy::default_policy().expect("default policy");
        assert!(!policy.version.is_empty());
        let json = serde_json::to_string(&policy).expect("serialise");
        assert_eq!(Policy::from_json(&json).expect("reload"), policy);
    }

    #[test]
    fn malformed_policies_are_refused_with_the_reason() {
        let mut policy = Policy::default_policy().expect("default policy");
        policy.version = " ".into();
        let json = serde_json::to_string(&policy).expect("serialise");
        assert!(matches!(
            Policy::from_json(&json),
            Err(PolicyError::MissingVersion)
        ));

        let mut policy = Policy::default_policy().expect("default policy");
        let copy = policy.profiles[0].clone();
        policy.profiles.push(copy);
        let json = serde_json::to_string(&policy).expect("serialise");
        assert!(matches!(
            Policy::from_json(&json),
            Err(PolicyError::AmbiguousRole { .. })
        ));

        let mut policy = Policy::default_policy().expect("default policy");
        let grant = policy.profiles[0].grants[0].clone();
        policy.profiles[0].grants.push(grant);
        let json = serde_json::to_string(&policy).expect("serialise");
        assert!(matches!(
            Policy::from_json(&json),
            Err(PolicyError::DuplicateGrant { .. })
        ));

        assert!(matches!(
            Policy::from_json(r#"{"version": "1"}"#),
            Err(PolicyError::Json(_))
        ));
    }
}
