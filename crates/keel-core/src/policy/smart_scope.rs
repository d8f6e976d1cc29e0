//! SMART App Launch v2 scopes of system clients (`patient/Observation.rs`, `system/*.cruds`).

use super::function::SmartAccess;

/// The launch context a scope names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmartContext {
    Patient,
    User,
    System,
}

/// One parsed v2 scope. Scopes with `?` constraints are not accepted: the policy could not
/// enforce them, so they grant nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmartScope {
    pub context: SmartContext,
    /// A FHIR resource type, or `*`.
    pub resource_type: String,
    create: bool,
    read: bool,
    search: bool,
}

impl SmartScope {
    /// Parses `context/Type.perms` with v2 permission letters in `cruds` order.
    pub fn parse(scope: &str) -> Option<SmartScope> {
        let (context, rest) = scope.split_once('/')?;
        let context = match context {
            "patient" => SmartContext::Patient,
            "user" => SmartContext::User,
            "system" => SmartContext::System,
            _ => return None,
        };
        let (resource_type, perms) = rest.split_once('.')?;
        let type_ok = resource_type == "*"
            || (resource_type.starts_with(|c: char| c.is_ascii_uppercase())
                && resource_type.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !type_ok || perms.is_empty() {
            return None;
        }
        // Letters must be distinct and in `cruds` order.
        let mut position = 0;
        let mut letters = [false; 5];
        for c in perms.chars() {
            let index = "cruds".find(c)?;
            if index < position || letters[index] {
                return None;
            }
            letters[index] = true;
            position = index;
        }
        // Update and delete (`u`, `d`) are accepted but no function needs them.
        let [create, read, _, _, search] = letters;
        Some(SmartScope {
            context,
            resource_type: resource_type.to_string(),
            create,
            read,
            search,
        })
    }

    /// Whether this scope allows `access` on `resource_type` (`*` in the requirement needs a
    /// `*` scope).
    pub(crate) fn allows(&self, resource_type: &str, access: SmartAccess) -> bool {
        let type_ok = self.resource_type == "*" || self.resource_type == resource_type;
        let access_ok = match access {
            SmartAccess::ReadSearch => self.read && self.search,
            SmartAccess::Create => self.create,
        };
        type_ok && access_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_scopes_parse_and_malformed_ones_do_not() {
        let scope = SmartScope::parse("patient/Observation.rs").expect("valid");
        assert_eq!(scope.context, SmartContext::Patient);
        assert!(scope.allows("Observation", SmartAccess::ReadSearch));
        assert!(!scope.allows("Observation", SmartAccess::Create));
        assert!(!scope.allows("Condition", SmartAccess::ReadSearch));
        let all = SmartScope::parse("system/*.cruds").expect("valid");
        assert!(all.allows("Condition", SmartAccess::Create));
        for bad in [
            "patient/Observation.sr",
            "patient/Observation.rr",
            "patient/Observation.",
            "patient/Observation.read",
            "patient/Observation.rs?category=laboratory",
            "launch/Observation.rs",
            "patient/observation.rs",
            "Observation.rs",
        ] {
            assert_eq!(SmartScope::parse(bad), None, "{bad}");
        }
    }
}
