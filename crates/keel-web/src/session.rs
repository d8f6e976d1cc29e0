//! Demonstration sign-in: a user chosen from [`DEMO_USERS`] (a CIS2-style role) acting for a
//! chosen organisation, kept in a server-side session named by a random cookie. Development
//! only: the pages say so, and nothing here authenticates a real person.

use std::collections::HashMap;
use std::sync::Mutex;

use keel_core::context::{Actor, PurposeOfUse};
use keel_core::policy::BreakGlass;
use keel_core::{CorrelationId, RequestContext};
use keel_model::{NhsNumber, OdsCode};

/// The session cookie's name.
pub const COOKIE: &str = "keel_demo_session";

/// A demonstration user: a national RBAC access role (and the activities the policy needs).
#[derive(Debug)]
pub struct DemoUser {
    /// Chosen on the sign-in form.
    pub key: &'static str,
    pub name: &'static str,
    /// The job, in words.
    pub job: &'static str,
    /// The national RBAC access role code.
    pub role_code: &'static str,
    pub role_name: &'static str,
    pub activity_codes: &'static [&'static str],
    /// The SDS user id (synthetic).
    pub user_id: &'static str,
    pub purpose: PurposeOfUse,
}

/// The demonstration users, one per role the demo shows.
pub const DEMO_USERS: [DemoUser; 6] = [
    DemoUser {
        key: "gp",
        name: "Dr Asha Patel",
        job: "GP",
        role_code: "R8000",
        role_name: "Clinical Practitioner Access Role",
        activity_codes: &[],
        user_id: "555000000101",
        purpose: PurposeOfUse::DirectCare,
    },
    DemoUser {
        key: "nurse",
        name: "Tom Okafor",
        job: "Practice nurse",
        role_code: "R8001",
        role_name: "Nurse Access Role",
        activity_codes: &[],
        user_id: "555000000102",
        purpose: PurposeOfUse::DirectCare,
    },
    DemoUser {
        key: "pharmacist",
        name: "Mei Chen",
        job: "Clinical pharmacist",
        role_code: "R8003",
        role_name: "Health Professional Access Role (pharmacist)",
        activity_codes: &["B0570"],
        user_id: "555000000103",
        purpose: PurposeOfUse::DirectCare,
    },
    DemoUser {
        key: "receptionist",
        name: "Gareth Lewis",
        job: "Receptionist",
        role_code: "R8009",
        role_name: "Receptionist Access Role",
        activity_codes: &[],
        user_id: "555000000104",
        purpose: PurposeOfUse::Administration,
    },
    DemoUser {
        key: "pcn-manager",
        name: "Sophie Turner",
        job: "PCN manager",
        role_code: "R8011",
        role_name: "Clerical Manager Access Role",
        activity_codes: &[],
        user_id: "555000000105",
        purpose: PurposeOfUse::Administration,
    },
    DemoUser {
        key: "ig-lead",
        name: "Priya Shah",
        job: "Information governance lead",
        role_code: "R0001",
        role_name: "Privacy Officer",
        activity_codes: &[],
        user_id: "555000000106",
        purpose: PurposeOfUse::Operations,
    },
];

impl DemoUser {
    pub fn by_key(key: &str) -> Option<&'static DemoUser> {
        DEMO_USERS.iter().find(|u| u.key == key)
    }

    /// Reads the audit trail (the information-governance role).
    pub fn reads_audit(&self) -> bool {
        self.purpose == PurposeOfUse::Operations
    }
}

/// A break-glass the user stated for one patient.
#[derive(Debug, Clone)]
pub struct StatedBreakGlass {
    pub patient: NhsNumber,
    pub break_glass: BreakGlass,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: &'static DemoUser,
    pub organisation: OdsCode,
    pub organisation_name: String,
    pub break_glass: Option<StatedBreakGlass>,
}

impl Session {
    /// The context of one request by this user, about `patient` when it names one (a
    /// break-glass stated for that patient goes with it).
    pub fn context(
        &self,
        correlation_id: CorrelationId,
        patient: Option<NhsNumber>,
    ) -> RequestContext {
        let break_glass = self
            .break_glass
            .as_ref()
            .filter(|b| Some(b.patient) == patient)
            .map(|b| b.break_glass.clone());
        RequestContext {
            actor: Actor::User {
                user_id: self.user.user_id.to_string(),
                role_code: self.user.role_code.to_string(),
                activity_codes: self
                    .user
                    .activity_codes
                    .iter()
                    .map(|c| c.to_string())
                    .collect(),
            },
            organisation: Some(self.organisation.clone()),
            purpose: self.user.purpose,
            correlation_id,
            break_glass,
        }
    }
}

/// The sessions of this process (a demo restarts signed out).
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session; its id, for the cookie.
    pub fn start(&self, session: Session) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        self.lock().insert(id.clone(), session);
        id
    }

    pub fn get(&self, id: &str) -> Option<Session> {
        self.lock().get(id).cloned()
    }

    pub fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Records a break-glass for the session's user.
    pub fn state_break_glass(&self, id: &str, stated: StatedBreakGlass) -> bool {
        match self.lock().get_mut(id) {
            Some(session) => {
                session.break_glass = Some(stated);
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The session id in a `Cookie` header.
pub fn session_id(cookie_header: &str) -> Option<&str> {
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(session_id("a=1; keel_demo_session=abc; b=2"), Some("abc"));
        assert_eq!(session_id("keel_demo_sessionx=abc"), None);
        assert_eq!(session_id(""), None);
    }

    #[test]
    fn a_break_glass_goes_only_with_requests_about_its_patient() {
        let patient = NhsNumber::parse("9990000018").expect("valid");
        let other = NhsNumber::parse("9990000026").expect("valid");
        let session = Session {
            user: &DEMO_USERS[0],
            organisation: OdsCode::parse("Y90001").expect("valid"),
            organisation_name: "A practice".into(),
            break_glass: Some(StatedBreakGlass {
                patient,
                break_glass: BreakGlass {
                    reason: "unconscious in clinic".into(),
                    expires_at_millis: 1,
                },
            }),
        };
        let id = CorrelationId::parse("t").expect("valid");
        assert!(
            session
                .context(id.clone(), Some(patient))
                .break_glass
                .is_some()
        );
        assert!(
            session
                .context(id.clone(), Some(other))
                .break_glass
                .is_none()
        );
        assert!(session.context(id, None).break_glass.is_none());
    }
}
