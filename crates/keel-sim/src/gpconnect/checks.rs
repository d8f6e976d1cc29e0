//! The checks every GP Connect request passes before its interaction runs (reference sheet
//! §3.1–3.2): the Spine Secure Proxy headers, the unsigned audit JWT and the media types.
//!
//! Failures answer as the spec and the proxy do: 400 `BAD_REQUEST` for a missing or malformed
//! header, a mismatched `Ssp-InteractionID` or a bad JWT; the proxy's 403 when `Ssp-To` is not
//! this provider's ASID; the proxy's 415 for a media type other than FHIR JSON.

use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use super::error::GpcError;
use super::jwt;

const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const SDS_USER_SYSTEM: &str = "https://fhir.nhs.uk/Id/sds-user-id";
const SDS_ROLE_SYSTEM: &str = "https://fhir.nhs.uk/Id/sds-role-profile-id";
/// `exp` must be exactly `iat` plus five minutes.
const TOKEN_LIFETIME_SECONDS: i64 = 300;

/// The interactions this provider serves, each with its `Ssp-InteractionID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    GetStructuredRecord,
    GetCareRecord,
    SearchSlots,
    ReadAppointment,
    CreateAppointment,
    AmendAppointment,
    CancelAppointment,
    PatientAppointments,
    ReadMetadata,
}

impl Interaction {
    pub fn id(self) -> &'static str {
        match self {
            Interaction::GetStructuredRecord => {
                "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1"
            }
            Interaction::GetCareRecord => {
                "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getcarerecord"
            }
            Interaction::SearchSlots => "urn:nhs:names:services:gpconnect:fhir:rest:search:slot-1",
            Interaction::ReadAppointment => {
                "urn:nhs:names:services:gpconnect:fhir:rest:read:appointment-1"
            }
            Interaction::CreateAppointment => {
                "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1"
            }
            Interaction::AmendAppointment => {
                "urn:nhs:names:services:gpconnect:fhir:rest:update:appointment-1"
            }
            Interaction::CancelAppointment => {
                "urn:nhs:names:services:gpconnect:fhir:rest:cancel:appointment-1"
            }
            Interaction::PatientAppointments => {
                "urn:nhs:names:services:gpconnect:fhir:rest:search:patient_appointments-1"
            }
            Interaction::ReadMetadata => {
                "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata-1"
            }
        }
    }

    /// The `requested_scope` the JWT must carry.
    fn scope(self) -> &'static str {
        match self {
            Interaction::CreateAppointment
            | Interaction::AmendAppointment
            | Interaction::CancelAppointment => "patient/*.write",
            Interaction::ReadMetadata => "organization/*.read",
            _ => "patient/*.read",
        }
    }
}

/// What the request is checked against.
pub struct Expected<'a> {
    /// This provider's ASID (`Ssp-To`).
    pub asid: &'a str,
    /// This provider's service root path (`/{ODS}/STU3/1/gpconnect`), which `aud` must end with.
    pub service_root: &'a str,
    /// The interactions the route serves (a `PUT` of an Appointment is amend or cancel).
    pub interactions: &'a [Interaction],
    /// Unix seconds, for the token's expiry.
    pub now: i64,
    /// The request carries a FHIR body (its `Content-Type` is checked).
    pub has_body: bool,
}

/// Checks headers and token; returns the interaction named by `Ssp-InteractionID`.
pub fn check(headers: &HeaderMap, expected: &Expected<'_>) -> Result<Interaction, GpcError> {
    let trace = required(headers, "Ssp-TraceID")?;
    if !crate::pds::is_uuid(trace) {
        return Err(GpcError::bad_request("Ssp-TraceID must be a GUID"));
    }
    let from = required(headers, "Ssp-From")?;
    if from.is_empty() || !from.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GpcError::bad_request(
            "Ssp-From must be the consumer's ASID (digits)",
        ));
    }
    let to = required(headers, "Ssp-To")?;
    if to != expected.asid {
        return Err(GpcError::forbidden(
            "Ssp-To is not the ASID of this provider",
        ));
    }
    let interaction_id = required(headers, "Ssp-InteractionID")?;
    let interaction = expected
        .interactions
        .iter()
        .copied()
        .find(|i| i.id() == interaction_id)
        .ok_or_else(|| GpcError::bad_request("Ssp-InteractionID does not match the request"))?;
    let authorization = required(headers, "Authorization")?;
    let token = authorization
        .strip_prefix("Bearer ")
        .ok_or_else(|| GpcError::bad_request("Authorization must be 'Bearer <JWT>'"))?;
    let claims = jwt::decode(token.trim()).map_err(|e| GpcError::bad_request(&e.to_string()))?;
    check_claims(&claims, interaction, expected).map_err(|e| GpcError::bad_request(&e))?;
    check_media_types(headers, expected.has_body)?;
    Ok(interaction)
}

fn required<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, GpcError> {
    let value = headers
        .get(name)
        .ok_or_else(|| GpcError::bad_request(&format!("the {name} header is missing")))?;
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| GpcError::bad_request(&format!("the {name} header is not text")))
}

fn check_media_types(headers: &HeaderMap, has_body: bool) -> Result<(), GpcError> {
    if let Some(accept) = headers.get(header::ACCEPT) {
        let accept = accept.to_str().unwrap_or("");
        let ok = accept.split(',').any(|range| {
            let media = range.split(';').next().unwrap_or("").trim();
            matches!(
                media,
                "application/fhir+json" | "application/json+fhir" | "*/*" | "application/*"
            )
        });
        if !ok {
            return Err(GpcError::unsupported_media_type(
                "this provider answers application/fhir+json only",
            ));
        }
    }
    if has_body {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let media = content_type.split(';').next().unwrap_or("").trim();
        if !matches!(media, "application/fhir+json" | "application/json+fhir") {
            return Err(GpcError::unsupported_media_type(
                "Content-Type must be application/fhir+json",
            ));
        }
    }
    Ok(())
}

fn text<'c>(claims: &'c Map<String, Value>, name: &str) -> Result<&'c str, String> {
    match claims.get(name).and_then(Value::as_str) {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(format!("JWT claim {name} is missing or not a string")),
    }
}

fn seconds(claims: &Map<String, Value>, name: &str) -> Result<i64, String> {
    claims
        .get(name)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("JWT claim {name} is missing or not an integer"))
}

fn resource<'c>(
    claims: &'c Map<String, Value>,
    name: &str,
    kind: &str,
) -> Result<&'c Value, String> {
    let value = claims
        .get(name)
        .filter(|v| v.get("resourceType").and_then(Value::as_str) == Some(kind))
        .ok_or_else(|| format!("JWT claim {name} must be a {kind} resource"))?;
    Ok(value)
}

fn identifiers(resource: &Value) -> impl Iterator<Item = (&str, &str)> {
    resource
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| {
            Some((
                i.get("system").and_then(Value::as_str)?,
                i.get("value").and_then(Value::as_str)?,
            ))
        })
}

fn has_identifier(resource: &Value, system: &str) -> bool {
    identifiers(resource).any(|(s, v)| s == system && !v.trim().is_empty())
}

fn check_claims(
    claims: &Map<String, Value>,
    interaction: Interaction,
    expected: &Expected<'_>,
) -> Result<(), String> {
    text(claims, "iss")?;
    let sub = text(claims, "sub")?;
    let aud = text(claims, "aud")?;
    if !aud.trim_end_matches('/').ends_with(expected.service_root) {
        return Err("JWT claim aud is not this provider's service root".into());
    }
    let iat = seconds(claims, "iat")?;
    let exp = seconds(claims, "exp")?;
    if exp != iat.saturating_add(TOKEN_LIFETIME_SECONDS) {
        return Err("JWT claim exp must be iat + 300 seconds".into());
    }
    if exp <= expected.now {
        return Err("the JWT has expired".into());
    }
    if text(claims, "reason_for_request")? != "directcare" {
        return Err("JWT claim reason_for_request must be 'directcare'".into());
    }
    let scope = text(claims, "requested_scope")?;
    let mut scopes = scope.split_whitespace();
    if scopes.next() != Some(interaction.scope()) {
        return Err(format!(
            "JWT claim requested_scope must be '{}' for this interaction",
            interaction.scope()
        ));
    }
    if scopes.any(|s| s != "conf/N") {
        return Err("JWT claim requested_scope may add only 'conf/N' for direct care".into());
    }
    let device = resource(claims, "requesting_device", "Device")?;
    if identifiers(device).next().is_none() {
        return Err("JWT claim requesting_device must carry an identifier".into());
    }
    let organization = resource(claims, "requesting_organization", "Organization")?;
    if !has_identifier(organization, ODS_SYSTEM) {
        return Err("JWT claim requesting_organization must carry an ODS code identifier".into());
    }
    let practitioner = resource(claims, "requesting_practitioner", "Practitioner")?;
    if practitioner.get("id").and_then(Value::as_str) != Some(sub) {
        return Err("JWT claim sub must equal requesting_practitioner.id".into());
    }
    for system in [SDS_USER_SYSTEM, SDS_ROLE_SYSTEM] {
        if !has_identifier(practitioner, system) {
            return Err(format!(
                "JWT claim requesting_practitioner must carry an identifier of {system}"
            ));
        }
    }
    if practitioner.get("name").is_none() {
        return Err("JWT claim requesting_practitioner must carry a name".into());
    }
    Ok(())
}
