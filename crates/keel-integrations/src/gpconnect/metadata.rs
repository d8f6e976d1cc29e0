//! The provider's CapabilityStatement (`GET {root}/metadata`) mapped to the operations of the
//! capability contract it offers — the GP Connect side of a probe.
//!
//! | CapabilityStatement says | operations |
//! |---|---|
//! | operation `gpc.getstructuredrecord` (Access Record Structured) | find patient; read problems, medications, allergies, observations, immunisations, consultations |
//! | resource `Slot` with interaction `search-type` | search free slots |
//! | resource `Appointment` with interaction `create` | book appointment |
//! | resource `Appointment` with interaction `update` | cancel appointment (a cancel is an update of the status) |
//!
//! What is not used: `gpc.getcarerecord` (Access Record HTML; Keel reads the structured record
//! only), the `Patient` resource, search parameters, `version` and `fhirVersion` (not compared
//! with the connection's configured version), and the clinical areas a practice switched off
//! inside the structured record — those show up only when a section is read (the Bundle's
//! `NOT_IMPLEMENTED` warning). Documents, tasks, entries are never offered through GP Connect
//! here, whatever the statement says.

use keel_core::integration::Operation;
use serde::Deserialize;

/// The operations Access Record Structured carries.
const STRUCTURED_RECORD: [Operation; 7] = [
    Operation::FindPatient,
    Operation::ReadProblems,
    Operation::ReadMedications,
    Operation::ReadAllergies,
    Operation::ReadObservations,
    Operation::ReadImmunisations,
    Operation::ReadConsultations,
];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CapabilityStatement {
    resource_type: String,
    #[serde(default)]
    rest: Vec<Rest>,
}

#[derive(Debug, Deserialize)]
struct Rest {
    #[serde(default)]
    resource: Vec<Resource>,
    #[serde(default)]
    operation: Vec<Named>,
}

#[derive(Debug, Deserialize)]
struct Resource {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    interaction: Vec<Interaction>,
}

#[derive(Debug, Deserialize)]
struct Interaction {
    code: String,
}

#[derive(Debug, Deserialize)]
struct Named {
    name: String,
}

impl Resource {
    fn allows(&self, kind: &str, code: &str) -> bool {
        self.kind == kind && self.interaction.iter().any(|i| i.code == code)
    }
}

/// The operations the CapabilityStatement in `body` offers, in [`Operation::ALL`] order.
///
/// # Errors
/// In words, when the body is not a CapabilityStatement.
pub fn offered_operations(body: &[u8]) -> Result<Vec<Operation>, String> {
    let statement: CapabilityStatement = serde_json::from_slice(body)
        .map_err(|e| format!("the metadata answer is not a CapabilityStatement: {e}"))?;
    if statement.resource_type != "CapabilityStatement" {
        return Err(format!(
            "the metadata answer is a {}, not a CapabilityStatement",
            statement.resource_type
        ));
    }
    let mut offered = Vec::new();
    for rest in &statement.rest {
        if rest
            .operation
            .iter()
            .any(|o| o.name == "gpc.getstructuredrecord")
        {
            offered.extend(STRUCTURED_RECORD);
        }
        for resource in &rest.resource {
            if resource.allows("Slot", "search-type") {
                offered.push(Operation::SearchFreeSlots);
            }
            if resource.allows("Appointment", "create") {
                offered.push(Operation::BookAppointment);
            }
            if resource.allows("Appointment", "update") {
                offered.push(Operation::CancelAppointment);
            }
        }
    }
    offered.sort_unstable();
    offered.dedup();
    Ok(offered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn statement(resources: serde_json::Value, operations: serde_json::Value) -> Vec<u8> {
        json!({
            "resourceType": "CapabilityStatement",
            "kind": "instance",
            "fhirVersion": "3.0.1",
            "rest": [{"mode": "server", "resource": resources, "operation": operations}],
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn the_structured_record_and_appointments_map_to_their_operations() {
        let body = statement(
            json!([
                {"type": "Slot", "interaction": [{"code": "search-type"}]},
                {"type": "Appointment", "interaction": [
                    {"code": "read"}, {"code": "create"}, {"code": "update"}]},
                {"type": "Patient", "interaction": [{"code": "search-type"}]},
            ]),
            json!([{"name": "gpc.getstructuredrecord"}, {"name": "gpc.getcarerecord"}]),
        );
        let offered = offered_operations(&body).expect("a statement");
        let mut expected = STRUCTURED_RECORD.to_vec();
        expected.extend([
            Operation::SearchFreeSlots,
            Operation::BookAppointment,
            Operation::CancelAppointment,
        ]);
        assert_eq!(offered, expected);
        assert!(!offered.contains(&Operation::ReadDocuments));
    }

    #[test]
    fn only_what_is_listed_is_offered() {
        let record_only = statement(json!([]), json!([{"name": "gpc.getstructuredrecord"}]));
        assert_eq!(
            offered_operations(&record_only).expect("a statement"),
            STRUCTURED_RECORD
        );
        let read_only_appointments = statement(
            json!([{"type": "Appointment", "interaction": [{"code": "read"}]}]),
            json!([{"name": "gpc.getcarerecord"}]),
        );
        assert_eq!(
            offered_operations(&read_only_appointments).expect("a statement"),
            []
        );
        let no_rest = br#"{"resourceType":"CapabilityStatement"}"#;
        assert_eq!(offered_operations(no_rest).expect("a statement"), []);
    }

    #[test]
    fn anything_else_is_an_error_not_an_empty_offer() {
        for body in [
            &b"not json"[..],
            br#"{"resourceType":"OperationOutcome","issue":[]}"#,
            br#"{"resourceType":"CapabilityStatement","rest":{"mode":"server"}}"#,
            br#"{"resourceType":"CapabilityStatement","rest":[{"resource":[{"interaction":[]}]}]}"#,
        ] {
            assert!(offered_operations(body).is_err(), "{body:?}");
        }
    }
}
