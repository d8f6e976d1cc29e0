//! Redaction of a Patient before it leaves: PDS restrictions (`meta.security` R: address,
//! telecom, contacts, registered GP and managing organisation; V: also name and birth date)
//! and contact details for roles that may not read them.

use super::facts::CONFIDENTIALITY_SYSTEM;
use crate::store::StoredResource;
use serde_json::Value;
use std::sync::Arc;

const CONTACT_FIELDS: &[&str] = &["address", "telecom", "contact"];
const RESTRICTED_FIELDS: &[&str] = &[
    "address",
    "telecom",
    "contact",
    "generalPractitioner",
    "managingOrganization",
];
const VERY_RESTRICTED_FIELDS: &[&str] = &["name", "birthDate"];

/// The Patient with the fields the actor may not see removed; `contact_details` says whether
/// the actor's role reads contact details at all.
pub fn redact_patient(mut resource: StoredResource, contact_details: bool) -> StoredResource {
    let Some(body) = resource.body.as_deref() else {
        return resource;
    };
    let Ok(mut json) = serde_json::from_str::<Value>(body) else {
        return resource;
    };
    let level = confidentiality(&json);
    let mut remove: Vec<&str> = Vec::new();
    if !contact_details {
        remove.extend(CONTACT_FIELDS);
    }
    if level >= 1 {
        remove.extend(RESTRICTED_FIELDS);
    }
    if level >= 2 {
        remove.extend(VERY_RESTRICTED_FIELDS);
    }
    let Some(map) = json.as_object_mut() else {
        return resource;
    };
    let mut changed = false;
    for field in remove {
        changed |= map.remove(field).is_some();
    }
    if changed && let Ok(text) = serde_json::to_string(&json) {
        resource.body = Some(Arc::from(text));
    }
    resource
}

/// 0 unrestricted, 1 restricted (R), 2 very restricted (V).
fn confidentiality(json: &Value) -> u8 {
    json.pointer("/meta/security")
        .and_then(Value::as_array)
        .map(|labels| {
            labels
                .iter()
                .filter(|l| l.get("system").and_then(Value::as_str) == Some(CONFIDENTIALITY_SYSTEM))
                .filter_map(|l| match l.get("code").and_then(Value::as_str) {
                    Some("R") => Some(1),
                    Some("V") => Some(2),
                    _ => None,
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteMethod;

    fn patient(json: &str) -> StoredResource {
        StoredResource {
            resource_type: "Patient".into(),
            id: "p".into(),
            version: 1,
            last_updated: 0,
            body: Some(Arc::from(json)),
            method: WriteMethod::Create,
        }
    }

    #[test]
    fn restrictions_remove_their_fields() {
        let r = format!(
            r#"{{"resourceType":"Patient","meta":{{"security":[{{"system":"{CONFIDENTIALITY_SYSTEM}","code":"R"}}]}},"name":[{{"family":"X"}}],"address":[{{"city":"Leeds"}}],"generalPractitioner":[{{"reference":"Organization/A"}}]}}"#
        );
        let out = redact_patient(patient(&r), true);
        let body = out.body.as_deref().unwrap_or("");
        assert!(body.contains("\"name\""));
        assert!(!body.contains("address") && !body.contains("generalPractitioner"));
        let v = r.replace("\"R\"", "\"V\"");
        let out = redact_patient(patient(&v), true);
        assert!(!out.body.as_deref().unwrap_or("").contains("\"name\""));
    }

    #[test]
    fn contact_details_need_their_function() {
        let r = r#"{"resourceType":"Patient","telecom":[{"value":"0113"}],"gender":"male"}"#;
        assert!(
            redact_patient(patient(r), true)
                .body
                .as_deref()
                .unwrap_or("")
                .contains("telecom")
        );
        assert!(
            !redact_patient(patient(r), false)
                .body
                .as_deref()
                .unwrap_or("")
                .contains("telecom")
        );
    }
}
