//! The decision function: every check runs, every reason is kept.

use super::decision::{Decision, Effect, Obligations, ReasonCode, RedactedField};
use super::document::{Grant, Policy, RoleProfile};
use super::function::{DataScope, Function};
use super::request::{
    AccessRequest, BreakGlass, CareLinkKind, OrganisationFacts, PatientFacts, PcnMembership,
    PdsRestriction, Relationship, Requester,
};
use crate::context::PurposeOfUse;

const MILLIS_PER_MINUTE: i64 = 60_000;

/// Decides one request under `policy`. Deny by default: a permit needs a role or scope that
/// grants the function for the purpose, the organisation scope the function needs, and no
/// opt-out that applies.
pub fn decide(policy: &Policy, request: &AccessRequest) -> Decision {
    let mut reasons = Vec::new();
    let authority = authority(policy, request, &mut reasons);
    let break_glass = check_break_glass(policy, request, authority.profile, &mut reasons);
    if break_glass {
        reasons.push(ReasonCode::BreakGlassActive);
    }
    let relationships = organisation_scope(policy, request, break_glass, &mut reasons);
    check_opt_outs(request, &mut reasons);

    let denied = reasons.iter().any(|r| r.is_denial());
    let obligations = if denied {
        Obligations::default()
    } else {
        obligations(
            policy,
            request,
            &authority,
            break_glass,
            &relationships,
            &mut reasons,
        )
    };
    let conceal_existence = denied
        && request.patient.as_ref().is_some_and(|p| {
            policy.conceal_existence_for.contains(&p.restriction)
                && reasons.iter().any(|r| {
                    matches!(
                        r,
                        ReasonCode::NoLegitimateRelationship | ReasonCode::NotRegisteredInPcn
                    )
                })
        });
    Decision {
        effect: if denied { Effect::Deny } else { Effect::Permit },
        reasons,
        policy_version: policy.version.clone(),
        obligations,
        conceal_existence,
    }
}

/// What the requester holds for this function: the user's profile and grant, or a system
/// client's scopes.
struct Authority<'p> {
    profile: Option<&'p RoleProfile>,
    grant: Option<&'p Grant>,
}

fn authority<'p>(
    policy: &'p Policy,
    request: &AccessRequest,
    reasons: &mut Vec<ReasonCode>,
) -> Authority<'p> {
    match &request.requester {
        Requester::User(role) => {
            let Some(profile) = policy.profile_for(role) else {
                reasons.push(ReasonCode::NoRoleMapping);
                return Authority {
                    profile: None,
                    grant: None,
                };
            };
            let grant = profile.grant(request.function);
            reasons.push(match grant {
                Some(_) => ReasonCode::RoleGrantsFunction,
                None => ReasonCode::FunctionNotGranted,
            });
            if !profile.purposes.contains(&request.purpose) {
                reasons.push(ReasonCode::PurposeNotAllowed);
            }
            Authority {
                profile: Some(profile),
                grant,
            }
        }
        Requester::System { scopes, .. } => {
            match request.function.smart_requirement() {
                None => reasons.push(ReasonCode::FunctionNotForSystems),
                Some((types, access)) => {
                    let covered = types
                        .iter()
                        .all(|t| scopes.iter().any(|s| s.allows(t, access)));
                    reasons.push(if covered {
                        ReasonCode::ScopeGrantsFunction
                    } else {
                        ReasonCode::ScopeMissing
                    });
                }
            }
            if !policy.system_client_purposes.contains(&request.purpose) {
                reasons.push(ReasonCode::PurposeNotAllowed);
            }
            Authority {
                profile: None,
                grant: None,
            }
        }
    }
}

/// Checks a stated break-glass; `true` when it is valid and may override the relationship.
fn check_break_glass(
    policy: &Policy,
    request: &AccessRequest,
    profile: Option<&RoleProfile>,
    reasons: &mut Vec<ReasonCode>,
) -> bool {
    let Some(BreakGlass {
        reason,
        expires_at_millis,
    }) = &request.break_glass
    else {
        if request.function == Function::BreakGlass {
            reasons.push(ReasonCode::BreakGlassDetailsMissing);
        }
        return false;
    };
    let before = reasons.len();
    if profile.is_none_or(|p| p.grant(Function::BreakGlass).is_none()) {
        reasons.push(ReasonCode::BreakGlassNotGranted);
    }
    if reason.trim().is_empty() {
        reasons.push(ReasonCode::BreakGlassReasonMissing);
    }
    if *expires_at_millis <= request.now_millis {
        reasons.push(ReasonCode::BreakGlassExpired);
    } else if expires_at_millis - request.now_millis
        > policy.break_glass.max_duration_minutes * MILLIS_PER_MINUTE
    {
        reasons.push(ReasonCode::BreakGlassTooLong);
    }
    if !policy.break_glass.purposes.contains(&request.purpose) {
        reasons.push(ReasonCode::BreakGlassPurposeNotAllowed);
    }
    reasons.len() == before
}

/// The organisation check the function's data scope needs; returns the relationships found.
fn organisation_scope(
    policy: &Policy,
    request: &AccessRequest,
    break_glass: bool,
    reasons: &mut Vec<ReasonCode>,
) -> Vec<Relationship> {
    let Some(organisation) = &request.organisation else {
        reasons.push(ReasonCode::OrganisationMissing);
        return Vec::new();
    };
    let scope = request.function.data_scope();
    if scope == DataScope::Organisation {
        return Vec::new();
    }
    let Some(patient) = &request.patient else {
        reasons.push(ReasonCode::PatientFactsMissing);
        return Vec::new();
    };
    let mut found = relationships(organisation, patient);
    found.retain(|r| policy.accepted_relationships.contains(r));
    if scope == DataScope::Pcn {
        found.retain(|r| r.is_registration());
    }
    reasons.extend(found.iter().map(|r| relationship_reason(*r)));
    if found.is_empty() {
        if scope == DataScope::Pcn {
            reasons.push(ReasonCode::NotRegisteredInPcn);
        } else if !break_glass && request.function != Function::BreakGlass {
            reasons.push(ReasonCode::NoLegitimateRelationship);
        }
    }
    found
}

fn relationships(organisation: &OrganisationFacts, patient: &PatientFacts) -> Vec<Relationship> {
    let mut found = Vec::new();
    if patient.registered_practice.as_ref() == Some(&organisation.ods) {
        found.push(Relationship::RegisteredPractice);
    }
    match (&organisation.pcn, &patient.practice_pcn) {
        (PcnMembership::MemberPractice(pcn), Some(practice_pcn)) if pcn == practice_pcn => {
            found.push(Relationship::PcnMemberPractice);
        }
        (PcnMembership::HubService(pcn), Some(practice_pcn)) if pcn == practice_pcn => {
            found.push(Relationship::PcnHubService);
        }
        _ => {}
    }
    for kind in [
        CareLinkKind::OpenTask,
        CareLinkKind::OpenReferral,
        CareLinkKind::Appointment,
    ] {
        if patient
            .care_links
            .iter()
            .any(|l| l.kind == kind && l.organisation == organisation.ods)
        {
            found.push(match kind {
                CareLinkKind::OpenTask => Relationship::OpenTask,
                CareLinkKind::OpenReferral => Relationship::OpenReferral,
                CareLinkKind::Appointment => Relationship::Appointment,
            });
        }
    }
    found
}

fn relationship_reason(relationship: Relationship) -> ReasonCode {
    match relationship {
        Relationship::RegisteredPractice => ReasonCode::RelationshipRegisteredPractice,
        Relationship::PcnMemberPractice => ReasonCode::RelationshipPcnMemberPractice,
        Relationship::PcnHubService => ReasonCode::RelationshipPcnHubService,
        Relationship::OpenTask => ReasonCode::RelationshipOpenTask,
        Relationship::OpenReferral => ReasonCode::RelationshipOpenReferral,
        Relationship::Appointment => ReasonCode::RelationshipAppointment,
    }
}

/// Opt-outs bind secondary use only; a Type 1 opt-out keeps data inside the registered
/// practice.
fn check_opt_outs(request: &AccessRequest, reasons: &mut Vec<ReasonCode>) {
    if request.purpose != PurposeOfUse::SecondaryUse {
        return;
    }
    let Some(patient) = &request.patient else {
        return;
    };
    if patient.national_data_opt_out {
        reasons.push(ReasonCode::NationalDataOptOut);
    }
    let inside_practice = match (&request.organisation, &patient.registered_practice) {
        (Some(org), Some(practice)) => &org.ods == practice,
        _ => false,
    };
    if patient.type1_opt_out && !inside_practice {
        reasons.push(ReasonCode::Type1OptOut);
    }
}

fn obligations(
    policy: &Policy,
    request: &AccessRequest,
    authority: &Authority<'_>,
    break_glass: bool,
    relationships: &[Relationship],
    reasons: &mut Vec<ReasonCode>,
) -> Obligations {
    let mut obligations = Obligations {
        flagged_audit_and_alert: break_glass,
        ..Obligations::default()
    };
    if let Some(grant) = authority.grant {
        obligations.pseudonymise = grant.pseudonymise;
        obligations
            .observation_categories
            .clone_from(&grant.observation_categories);
    }
    let Some(patient) = &request.patient else {
        return obligations;
    };
    obligations.redact = match patient.restriction {
        PdsRestriction::Unrestricted => Vec::new(),
        PdsRestriction::Restricted => vec![
            RedactedField::Address,
            RedactedField::Telecom,
            RedactedField::RegisteredGp,
        ],
        PdsRestriction::VeryRestricted => vec![
            RedactedField::Address,
            RedactedField::Telecom,
            RedactedField::RegisteredGp,
            RedactedField::Name,
            RedactedField::BirthDate,
        ],
    };
    if request.function.returns_clinical_entries() && !patient.sensitive_categories.is_empty() {
        let role_allows = authority
            .profile
            .is_some_and(|p| p.sensitive_visible_for.contains(&request.purpose));
        let place_allows = !policy.sensitive_only_at_registered_practice
            || relationships.contains(&Relationship::RegisteredPractice);
        if !(role_allows && place_allows) {
            obligations
                .withhold
                .clone_from(&patient.sensitive_categories);
            reasons.push(ReasonCode::SensitiveWithheld);
        }
    }
    obligations
}
