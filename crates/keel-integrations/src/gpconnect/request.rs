//! What every GP Connect request carries (reference sheet §3.1–3.2): the Spine Secure Proxy
//! headers and a fresh unsigned audit JWT built from the [`RequestContext`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keel_core::RequestContext;
use keel_core::context::{Actor, PurposeOfUse};
use keel_model::OdsCode;
use serde_json::{Value, json};

const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const SDS_USER_SYSTEM: &str = "https://fhir.nhs.uk/Id/sds-user-id";
const SDS_ROLE_SYSTEM: &str = "https://fhir.nhs.uk/Id/sds-role-profile-id";
const LOCAL_USER_SYSTEM: &str = "https://keel.invalid/Id/user";
/// What GP Connect takes for an SDS id the user does not have (no smartcard).
const UNKNOWN: &str = "UNK";
/// `exp` is `iat` plus five minutes.
const TOKEN_LIFETIME_SECONDS: i64 = 300;

/// A GP Connect interaction: its `Ssp-InteractionID` and the scope its token asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    GetStructuredRecord,
    SearchSlots,
    ReadAppointment,
    CreateAppointment,
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
            Interaction::SearchSlots => "urn:nhs:names:services:gpconnect:fhir:rest:search:slot-1",
            Interaction::ReadAppointment => {
                "urn:nhs:names:services:gpconnect:fhir:rest:read:appointment-1"
            }
            Interaction::CreateAppointment => {
                "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1"
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

    /// The `requested_scope` of the token (direct care: `conf/N`; the CapabilityStatement is
    /// about the organisation, not a patient).
    pub fn scope(self) -> &'static str {
        match self {
            Interaction::CreateAppointment | Interaction::CancelAppointment => {
                "patient/*.write conf/N"
            }
            Interaction::ReadMetadata => "organization/*.read",
            _ => "patient/*.read conf/N",
        }
    }
}

/// Who Keel is to the Spine: the consumer's identity in every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// Keel's ASID (`Ssp-From`).
    pub asid: String,
    /// Keel's Spine endpoint URL (the token's `iss`).
    pub endpoint: String,
    /// The organisation named when the request context names none.
    pub organisation: OdsCode,
    /// The requesting device: Keel's product name and version.
    pub product: String,
    pub version: String,
}

/// Why a request cannot be made under this context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotForDirectCare;

/// The token's claims for one request at `audience` (the provider's service root URL).
///
/// # Errors
/// [`NotForDirectCare`] for a secondary use: GP Connect is for direct care only.
pub fn claims(
    ctx: &RequestContext,
    consumer: &Consumer,
    audience: &str,
    interaction: Interaction,
    issued_at: i64,
) -> Result<Value, NotForDirectCare> {
    if ctx.purpose == PurposeOfUse::SecondaryUse {
        return Err(NotForDirectCare);
    }
    let (id, sds_user, sds_role) = match &ctx.actor {
        Actor::User {
            user_id, role_code, ..
        } => (user_id.as_str(), user_id.as_str(), role_code.as_str()),
        Actor::System { client_id, .. } => (client_id.as_str(), UNKNOWN, UNKNOWN),
        Actor::LocalDevelopment => ("local-development", UNKNOWN, UNKNOWN),
    };
    let organisation = ctx.organisation.as_ref().unwrap_or(&consumer.organisation);
    Ok(json!({
        "iss": consumer.endpoint,
        "sub": id,
        "aud": audience,
        "exp": issued_at + TOKEN_LIFETIME_SECONDS,
        "iat": issued_at,
        "reason_for_request": "directcare",
        "requested_scope": interaction.scope(),
        "requesting_device": {
            "resourceType": "Device",
            "identifier": [{"system": "https://keel.invalid/Id/device", "value": consumer.asid}],
            "model": consumer.product,
            "version": consumer.version,
        },
        "requesting_organization": {
            "resourceType": "Organization",
            "identifier": [{"system": ODS_SYSTEM, "value": organisation.as_str()}],
        },
        "requesting_practitioner": {
            "resourceType": "Practitioner",
            "id": id,
            "name": [{"text": id}],
            "identifier": [
                {"system": SDS_USER_SYSTEM, "value": sds_user},
                {"system": SDS_ROLE_SYSTEM, "value": sds_role},
                {"system": LOCAL_USER_SYSTEM, "value": id},
            ],
        },
    }))
}

/// `claims` as an unsigned JWT: `base64url(header).base64url(claims).`.
pub fn unsigned_jwt(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes());
    format!("{header}.{body}.")
}

/// Unix seconds now, for `iat`.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::CorrelationId;

    fn consumer() -> Consumer {
        Consumer {
            asid: "200000000359".into(),
            endpoint: "https://keel.example/".into(),
            organisation: OdsCode::parse("A11111").expect("valid"),
            product: "Keel".into(),
            version: "0.1.0".into(),
        }
    }

    #[test]
    fn a_users_token_names_them_and_expires_in_five_minutes() {
        let ctx = RequestContext {
            actor: Actor::User {
                user_id: "555".into(),
                role_code: "R8000".into(),
                activity_codes: Vec::new(),
            },
            organisation: Some(OdsCode::parse("Y90001").expect("valid")),
            purpose: PurposeOfUse::DirectCare,
            correlation_id: CorrelationId::parse("c").expect("valid"),
            break_glass: None,
        };
        let c = claims(
            &ctx,
            &consumer(),
            "https://p/X/STU3/1/gpconnect",
            Interaction::CreateAppointment,
            1000,
        )
        .expect("direct care");
        assert_eq!(c["sub"], "555");
        assert_eq!(c["requesting_practitioner"]["id"], "555");
        assert_eq!(c["exp"], 1300);
        assert_eq!(c["requested_scope"], "patient/*.write conf/N");
        assert_eq!(
            c["requesting_organization"]["identifier"][0]["value"],
            "Y90001"
        );
        let token = unsigned_jwt(&c);
        assert!(token.ends_with('.'));
        assert_eq!(token.split('.').count(), 3);
    }

    #[test]
    fn secondary_use_is_refused_and_the_consumer_organisation_is_the_default() {
        let mut ctx = RequestContext::local_development(CorrelationId::parse("c").expect("valid"));
        let c = claims(&ctx, &consumer(), "a", Interaction::GetStructuredRecord, 0).expect("ok");
        assert_eq!(
            c["requesting_organization"]["identifier"][0]["value"],
            "A11111"
        );
        assert_eq!(
            c["requesting_practitioner"]["identifier"][0]["value"],
            UNKNOWN
        );
        ctx.purpose = PurposeOfUse::SecondaryUse;
        assert_eq!(
            claims(&ctx, &consumer(), "a", Interaction::GetStructuredRecord, 0),
            Err(NotForDirectCare)
        );
    }
}
