//! An audit record as a FHIR R4 AuditEvent, the form the information-governance role reads.

use super::record::{AuditOutcome, AuditRecord};
use crate::context::{Actor, PurposeOfUse};
use serde_json::{Value, json};

const SDS_USER_ID: &str = "https://fhir.nhs.uk/Id/sds-user-id";
const SDS_ROLE: &str = "https://fhir.nhs.uk/CodeSystem/UKCore-SDSJobRoleName";
const ODS_CODE: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const CLIENT_ID: &str = "https://keel.nhs.example/Id/client-id";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
/// The request's correlation id, which ties the record to logs and the response.
pub const CORRELATION_EXTENSION: &str =
    "https://keel.nhs.example/StructureDefinition/correlation-id";
/// The version of the access policy that decided.
pub const POLICY_EXTENSION: &str = "https://keel.nhs.example/StructureDefinition/policy-version";

/// The AuditEvent of entry `sequence` (its id).
pub fn audit_event(sequence: u64, record: &AuditRecord) -> Value {
    let mut purposes = vec![coding(ACT_REASON, purpose_code(record.purpose))];
    if record.break_glass.is_some() {
        purposes.push(coding(ACT_REASON, "BTG"));
    }
    let (outcome, description) = match &record.outcome {
        AuditOutcome::Permit => ("0", None),
        AuditOutcome::Deny { reason } => ("4", Some(reason.clone())),
        AuditOutcome::Error { message } => ("8", Some(message.clone())),
    };
    let mut extension = vec![json!({
        "url": CORRELATION_EXTENSION,
        "valueString": record.correlation_id.as_str(),
    })];
    if let Some(version) = &record.policy_version {
        extension.push(json!({"url": POLICY_EXTENSION, "valueString": version}));
    }
    let mut entity: Vec<Value> = record
        .subject
        .patients
        .iter()
        .map(|p| {
            let what = match p
                .strip_prefix("Patient?identifier=")
                .and_then(|i| i.split_once('|'))
            {
                Some((system, value)) => {
                    json!({"type": "Patient", "identifier": {"system": system, "value": value}})
                }
                None => json!({"reference": p}),
            };
            json!({
                "what": what,
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"},
            })
        })
        .collect();
    entity.extend(
        record
            .subject
            .resources
            .iter()
            .filter(|r| !record.subject.patients.contains(r))
            .map(|r| {
                if r.contains('/') {
                    json!({"what": {"reference": r}})
                } else {
                    json!({"name": r, "description": "resource type searched"})
                }
            }),
    );
    if let Some(bg) = &record.break_glass {
        entity.push(json!({
            "name": "break-glass",
            "description": bg.reason,
            "detail": [{"type": "granted", "valueString": bg.used.to_string()}],
        }));
    }
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": sequence.to_string(),
        "extension": extension,
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": record.subject.interaction}],
        "action": action(&record.subject.interaction),
        "recorded": record.when.as_str(),
        "outcome": outcome,
        "purposeOfEvent": [{"coding": purposes}],
        "agent": agents(record),
        "source": {"site": "keel", "observer": {"display": "Keel"}},
    });
    if let Some(description) = description {
        event["outcomeDesc"] = Value::String(description);
    }
    if !entity.is_empty() {
        event["entity"] = Value::Array(entity);
    }
    event
}

/// The requesting user or client, then the organisation they acted for.
fn agents(record: &AuditRecord) -> Value {
    let mut agent = match &record.actor {
        Actor::User {
            user_id, role_code, ..
        } => json!({
            "who": {"identifier": {"system": SDS_USER_ID, "value": user_id}},
            "role": [{"coding": [coding(SDS_ROLE, role_code)]}],
        }),
        Actor::System { client_id, .. } => json!({
            "who": {"identifier": {"system": CLIENT_ID, "value": client_id}},
            "type": {"coding": [coding("http://dicom.nema.org/resources/ontology/DCM", "110150")]},
        }),
        Actor::LocalDevelopment => json!({"who": {"display": "local development"}}),
    };
    agent["requestor"] = Value::Bool(true);
    let mut agents = vec![agent];
    if let Some(org) = &record.organisation {
        agents.push(json!({
            "who": {"type": "Organization", "identifier": {"system": ODS_CODE, "value": org.as_str()}},
            "requestor": false,
        }));
    }
    Value::Array(agents)
}

fn coding(system: &str, code: &str) -> Value {
    json!({"system": system, "code": code})
}

/// The v3 ActReason code of a purpose of use.
pub fn purpose_code(purpose: PurposeOfUse) -> &'static str {
    match purpose {
        PurposeOfUse::DirectCare => "TREAT",
        PurposeOfUse::Administration => "HOPERAT",
        PurposeOfUse::Operations => "HSYSADMIN",
        PurposeOfUse::SecondaryUse => "HRESCH",
    }
}

/// C, R, U, D or E for an interaction name.
fn action(interaction: &str) -> &'static str {
    match interaction {
        "create" => "C",
        "read" | "vread" | "history-instance" => "R",
        "update" | "patch" => "U",
        "delete" => "D",
        _ => "E",
    }
}
