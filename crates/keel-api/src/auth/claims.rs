//! The claims Keel reads from a verified token, and who they make the caller.
//!
//! A user carries CIS2-style claims: `nhsid_useruid` (else `sub`), `nhsid_nrbac_roles[]` and
//! `selected_roleid`, which must be the `person_roleid` of one of those roles; that role's
//! `role_code`, `activity_codes` and `org_code` (the organisation acted for) are used. A system
//! client carries no CIS2 roles and a space-separated `scope` claim of SMART v2-style scopes;
//! it is named by `client_id` (else `sub`). `purpose_of_use` may state the purpose.

use keel_core::{Actor, PurposeOfUse};
use keel_model::OdsCode;
use serde::Deserialize;

use super::Principal;
use super::verifier::TokenError;

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Claims {
    /// Expiry (seconds since the epoch); the signature check requires it.
    pub(super) exp: u64,
    /// Not before (seconds since the epoch).
    pub(super) nbf: Option<u64>,
    sub: Option<String>,
    nhsid_useruid: Option<String>,
    #[serde(default)]
    nhsid_nrbac_roles: Vec<NrbacRole>,
    selected_roleid: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    /// For a system client: the ODS code of the organisation it acts for (a module deployed
    /// for the PCN's hub, say). Without it a system client reaches no patient data.
    org_code: Option<String>,
    purpose_of_use: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct NrbacRole {
    person_roleid: String,
    org_code: String,
    role_code: String,
    #[serde(default)]
    activity_codes: Vec<String>,
}

impl Claims {
    /// The caller the claims describe; `purpose` (the request's `X-Purpose-Of-Use`) wins over
    /// the `purpose_of_use` claim, and direct care is assumed when neither is given.
    pub(super) fn principal(self, purpose: Option<PurposeOfUse>) -> Result<Principal, TokenError> {
        let purpose = match (purpose, &self.purpose_of_use) {
            (Some(p), _) => p,
            (None, Some(code)) => purpose_from_code(code).ok_or_else(|| {
                TokenError::Claims(format!(
                    "purpose_of_use '{code}' is not a purpose Keel knows"
                ))
            })?,
            (None, None) => PurposeOfUse::DirectCare,
        };
        if self.nhsid_nrbac_roles.is_empty() {
            return self.system(purpose);
        }
        let selected = self
            .selected_roleid
            .as_deref()
            .ok_or_else(|| TokenError::Claims("a user's token needs selected_roleid".into()))?;
        let user_id = self
            .nhsid_useruid
            .or(self.sub)
            .ok_or_else(|| TokenError::Claims("no nhsid_useruid or sub".into()))?;
        let role = self
            .nhsid_nrbac_roles
            .into_iter()
            .find(|r| r.person_roleid == selected)
            .ok_or_else(|| {
                TokenError::Claims("selected_roleid is not one of nhsid_nrbac_roles".into())
            })?;
        let organisation = OdsCode::parse(&role.org_code)
            .map_err(|e| TokenError::Claims(format!("the selected role's org_code: {e}")))?;
        Ok(Principal {
            actor: Actor::User {
                user_id,
                role_code: role.role_code,
                activity_codes: role.activity_codes,
            },
            organisation: Some(organisation),
            purpose,
            break_glass: None,
        })
    }

    fn system(self, purpose: PurposeOfUse) -> Result<Principal, TokenError> {
        let scopes: Vec<String> = self
            .scope
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if scopes.is_empty() {
            return Err(TokenError::Claims(
                "neither CIS2 roles (nhsid_nrbac_roles) nor SMART scopes (scope)".into(),
            ));
        }
        let client_id = self
            .client_id
            .or(self.sub)
            .ok_or_else(|| TokenError::Claims("a system token needs client_id or sub".into()))?;
        let organisation = self
            .org_code
            .as_deref()
            .map(OdsCode::parse)
            .transpose()
            .map_err(|e| TokenError::Claims(format!("org_code: {e}")))?;
        Ok(Principal {
            actor: Actor::System { client_id, scopes },
            organisation,
            purpose,
            break_glass: None,
        })
    }
}

/// The purpose with this code (`direct-care`, `administration`, `secondary-use`,
/// `operations`).
pub fn purpose_from_code(code: &str) -> Option<PurposeOfUse> {
    [
        PurposeOfUse::DirectCare,
        PurposeOfUse::Administration,
        PurposeOfUse::SecondaryUse,
        PurposeOfUse::Operations,
    ]
    .into_iter()
    .find(|p| p.as_code() == code)
}
