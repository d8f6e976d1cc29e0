//! What each provider offers: its GP Connect capabilities, switchable per practice, and the
//! CapabilityStatement that says so (`GET {root}/metadata`, interaction
//! `urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1`).
//!
//! A request for a capability the practice has not enabled gets 403 `ACCESS DENIED` (reference
//! sheet §3.5: "GP Connect / capability not enabled at practice"). The CapabilityStatement lists
//! only what is enabled — so a consumer can find out before asking.

use serde_json::{Value, json};

use super::checks::Interaction;

/// A GP Connect capability a practice enables or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    AccessRecordStructured,
    AccessRecordHtml,
    AppointmentManagement,
}

impl Capability {
    pub const ALL: [Capability; 3] = [
        Capability::AccessRecordStructured,
        Capability::AccessRecordHtml,
        Capability::AppointmentManagement,
    ];

    /// The name used in flags and docs.
    pub fn key(self) -> &'static str {
        match self {
            Capability::AccessRecordStructured => "structured",
            Capability::AccessRecordHtml => "html",
            Capability::AppointmentManagement => "appointments",
        }
    }

    pub fn from_key(key: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.key() == key)
    }

    /// The capability an interaction belongs to; `None` for metadata, which is always there.
    pub fn of(interaction: Interaction) -> Option<Capability> {
        match interaction {
            Interaction::GetStructuredRecord => Some(Capability::AccessRecordStructured),
            Interaction::GetCareRecord => Some(Capability::AccessRecordHtml),
            Interaction::SearchSlots
            | Interaction::ReadAppointment
            | Interaction::CreateAppointment
            | Interaction::AmendAppointment
            | Interaction::CancelAppointment
            | Interaction::PatientAppointments => Some(Capability::AppointmentManagement),
            Interaction::ReadMetadata => None,
        }
    }
}

/// The STU3 CapabilityStatement of a provider with `enabled` capabilities.
pub fn capability_statement(ods: &str, enabled: &[Capability]) -> Value {
    let mut operations = Vec::new();
    let mut resources = Vec::new();
    if enabled.contains(&Capability::AccessRecordStructured) {
        operations.push(json!({"name": "gpc.getstructuredrecord", "definition": {
            "reference": "https://fhir.nhs.uk/STU3/OperationDefinition/GPConnect-GetStructuredRecord-Operation-1"}}));
    }
    if enabled.contains(&Capability::AccessRecordHtml) {
        operations.push(json!({"name": "gpc.getcarerecord", "definition": {
            "reference": "http://fhir.nhs.net/OperationDefinition/gpconnect-getcarerecord-operation-1"}}));
    }
    if enabled.contains(&Capability::AppointmentManagement) {
        resources.push(json!({"type": "Slot", "interaction": [{"code": "search-type"}],
            "searchParam": [{"name": "start", "type": "date"}, {"name": "end", "type": "date"},
                            {"name": "status", "type": "token"}, {"name": "searchFilter", "type": "token"}]}));
        resources.push(json!({"type": "Appointment", "interaction": [
            {"code": "read"}, {"code": "create"}, {"code": "update"}]}));
        resources.push(
            json!({"type": "Patient", "interaction": [{"code": "search-type"}],
            "searchParam": [{"name": "identifier", "type": "token"}]}),
        );
    }
    json!({
        "resourceType": "CapabilityStatement",
        "version": "1.6.2",
        "name": format!("GP Connect provider {ods}"),
        "status": "active",
        "date": "2026-01-05",
        "publisher": "keel-sim",
        "kind": "instance",
        "software": {"name": "keel-sim GP Connect provider", "version": "1"},
        "fhirVersion": "3.0.1",
        "acceptUnknown": "both",
        "format": ["application/fhir+json"],
        "rest": [{"mode": "server", "security": {"cors": true},
                  "resource": resources, "operation": operations}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interaction_but_metadata_belongs_to_a_capability() {
        assert_eq!(Capability::of(Interaction::ReadMetadata), None);
        assert_eq!(
            Capability::of(Interaction::CreateAppointment),
            Some(Capability::AppointmentManagement)
        );
        for c in Capability::ALL {
            assert_eq!(Capability::from_key(c.key()), Some(c));
        }
    }

    #[test]
    fn the_statement_lists_only_what_is_enabled() {
        let all = capability_statement("Y90001", &Capability::ALL);
        assert_eq!(
            all["rest"][0]["operation"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(all["rest"][0]["resource"].as_array().map(Vec::len), Some(3));
        let some = capability_statement("Y90001", &[Capability::AccessRecordStructured]);
        assert_eq!(
            some["rest"][0]["operation"][0]["name"],
            "gpc.getstructuredrecord"
        );
        assert_eq!(
            some["rest"][0]["resource"].as_array().map(Vec::len),
            Some(0)
        );
    }
}
