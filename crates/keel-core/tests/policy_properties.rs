//! Properties of the policy engine over random actors, patients and requests, under the
//! default policy.

use keel_core::PurposeOfUse;
use keel_core::policy::{
    AccessRequest, BreakGlass, CareLink, CareLinkKind, Decision, Function, OrganisationFacts,
    PatientFacts, PcnMembership, PdsRestriction, Policy, ReasonCode, Requester, SmartScope,
    UserRole, decide,
};
use keel_model::OdsCode;
use proptest::prelude::*;

const NOW: i64 = 1_800_000_000_000;
const ORGS: [&str; 4] = ["A81001", "A81002", "Y00001", "C83001"];
const PCNS: [&str; 2] = ["U00001", "U00002"];
const ROLES: [&str; 14] = [
    "R8000",
    "R8001",
    "R8002",
    "R8003",
    "R8004",
    "R8008",
    "R8009",
    "R8010",
    "R8011",
    "R8012",
    "R0001",
    "R5105",
    "S8000:G8000:R8000",
    "R9999",
];
const SCOPES: [&str; 6] = [
    "patient/Observation.rs",
    "system/*.rs",
    "system/*.cruds",
    "patient/Appointment.c",
    "system/Patient.rs",
    "system/AuditEvent.rs",
];

fn ods(code: &str) -> OdsCode {
    OdsCode::parse(code).expect("ODS code")
}

fn policy() -> Policy {
    Policy::default_policy().expect("default policy")
}

fn purpose() -> impl Strategy<Value = PurposeOfUse> {
    prop_oneof![
        Just(PurposeOfUse::DirectCare),
        Just(PurposeOfUse::Administration),
        Just(PurposeOfUse::SecondaryUse),
        Just(PurposeOfUse::Operations),
    ]
}

fn restriction() -> impl Strategy<Value = PdsRestriction> {
    prop_oneof![
        Just(PdsRestriction::Unrestricted),
        Just(PdsRestriction::Restricted),
        Just(PdsRestriction::VeryRestricted),
    ]
}

fn user(role: impl Strategy<Value = String>) -> impl Strategy<Value = Requester> {
    (
        role,
        proptest::option::of(prop_oneof![Just("R1290"), Just("R0260")]),
        proptest::collection::vec(
            prop_oneof![Just("B0570"), Just("B0278"), Just("B0820")],
            0..3,
        ),
    )
        .prop_map(|(role_code, job, activities)| {
            Requester::User(UserRole {
                role_code,
                job_role_code: job.map(str::to_string),
                activity_codes: activities.into_iter().map(str::to_string).collect(),
            })
        })
}

fn requester() -> impl Strategy<Value = Requester> {
    prop_oneof![
        3 => user(proptest::sample::select(&ROLES[..]).prop_map(str::to_string)),
        1 => proptest::collection::vec(proptest::sample::select(&SCOPES[..]), 0..3).prop_map(|s| {
            Requester::System {
                client_id: "module".into(),
                scopes: s.into_iter().filter_map(SmartScope::parse).collect(),
            }
        }),
    ]
}

fn organisation() -> impl Strategy<Value = Option<OrganisationFacts>> {
    proptest::option::weighted(
        0.9,
        (
            proptest::sample::select(&ORGS[..]),
            0..3usize,
            proptest::sample::select(&PCNS[..]),
        )
            .prop_map(|(org, membership, pcn)| OrganisationFacts {
                ods: ods(org),
                pcn: match membership {
                    0 => PcnMembership::None,
                    1 => PcnMembership::MemberPractice(ods(pcn)),
                    _ => PcnMembership::HubService(ods(pcn)),
                },
            }),
    )
}

fn patient() -> impl Strategy<Value = Option<PatientFacts>> {
    let link = (0..3usize, proptest::sample::select(&ORGS[..])).prop_map(|(kind, org)| CareLink {
        kind: [
            CareLinkKind::OpenTask,
            CareLinkKind::OpenReferral,
            CareLinkKind::Appointment,
        ][kind],
        organisation: ods(org),
    });
    proptest::option::weighted(
        0.9,
        (
            proptest::option::of(proptest::sample::select(&ORGS[..])),
            proptest::option::of(proptest::sample::select(&PCNS[..])),
            proptest::collection::vec(link, 0..2),
            restriction(),
            any::<bool>(),
            any::<bool>(),
            proptest::collection::vec(prop_oneof![Just("ivf"), Just("sti")], 0..2),
        )
            .prop_map(|(practice, pcn, links, restriction, ndoo, t1, sensitive)| {
                PatientFacts {
                    registered_practice: practice.map(ods),
                    practice_pcn: pcn.map(ods),
                    care_links: links,
                    restriction,
                    national_data_opt_out: ndoo,
                    type1_opt_out: t1,
                    sensitive_categories: sensitive.into_iter().map(str::to_string).collect(),
                }
            }),
    )
}

fn break_glass() -> impl Strategy<Value = Option<BreakGlass>> {
    proptest::option::of(
        (prop_oneof![Just(""), Just("cardiac arrest")], -600i64..600).prop_map(
            |(reason, minutes)| BreakGlass {
                reason: reason.to_string(),
                expires_at_millis: NOW + minutes * 60_000,
            },
        ),
    )
}

fn request_with(
    requester: impl Strategy<Value = Requester>,
) -> impl Strategy<Value = AccessRequest> {
    (
        requester,
        organisation(),
        purpose(),
        proptest::sample::select(&Function::ALL[..]),
        patient(),
        break_glass(),
    )
        .prop_map(
            |(requester, organisation, purpose, function, patient, break_glass)| AccessRequest {
                requester,
                organisation,
                purpose,
                function,
                patient,
                break_glass,
                now_millis: NOW,
            },
        )
}

fn request() -> impl Strategy<Value = AccessRequest> {
    request_with(requester())
}

fn is_consistent(decision: &Decision) -> bool {
    let denied = decision.reasons.iter().any(|r| r.is_denial());
    decision.is_permit() != denied
        && (decision.is_permit() || decision.obligations == Default::default())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn deny_by_default_a_role_without_a_mapping_is_always_denied(
        request in request_with(user("R[0-9]{4}".prop_filter("mapped", |r| {
            !policy().profiles.iter().any(|p| p.role_codes.contains(r))
        }))),
    ) {
        let decision = decide(&policy(), &request);
        prop_assert!(!decision.is_permit());
        prop_assert!(decision.reasons.contains(&ReasonCode::NoRoleMapping));
    }

    #[test]
    fn break_glass_never_permits_at_or_beyond_its_expiry(request in request()) {
        let decision = decide(&policy(), &request);
        if let Some(bg) = &request.break_glass && bg.expires_at_millis <= request.now_millis {
            prop_assert!(!decision.is_permit());
            prop_assert!(decision.reasons.contains(&ReasonCode::BreakGlassExpired));
        }
        if decision.obligations.flagged_audit_and_alert {
            prop_assert!(request.break_glass.is_some());
        }
    }

    #[test]
    fn opt_outs_never_affect_direct_care_or_any_purpose_but_secondary_use(
        request in request(), ndoo in any::<bool>(), t1 in any::<bool>(),
    ) {
        let mut request = request;
        if request.purpose == PurposeOfUse::SecondaryUse {
            request.purpose = PurposeOfUse::DirectCare;
        }
        let mut flipped = request.clone();
        if let Some(p) = &mut flipped.patient {
            p.national_data_opt_out = ndoo;
            p.type1_opt_out = t1;
        }
        prop_assert_eq!(decide(&policy(), &request), decide(&policy(), &flipped));
    }

    #[test]
    fn adding_a_restriction_never_removes_a_redaction(
        request in request(), a in restriction(), b in restriction(),
    ) {
        let (weaker, stronger) = (a.min(b), a.max(b));
        let with = |r| {
            let mut request = request.clone();
            if let Some(p) = &mut request.patient { p.restriction = r; }
            decide(&policy(), &request)
        };
        let (weak, strong) = (with(weaker), with(stronger));
        prop_assert_eq!(weak.effect, strong.effect);
        for field in &weak.obligations.redact {
            prop_assert!(strong.obligations.redact.contains(field));
        }
    }

    #[test]
    fn what_a_denial_shows_never_depends_on_an_opt_out(request in request()) {
        let mut flipped = request.clone();
        if let Some(p) = &mut flipped.patient {
            p.national_data_opt_out = !p.national_data_opt_out;
            p.type1_opt_out = !p.type1_opt_out;
        }
        let (a, b) = (decide(&policy(), &request), decide(&policy(), &flipped));
        if !a.is_permit() && !b.is_permit() {
            prop_assert_eq!(a.denial_reasons_to_show(), b.denial_reasons_to_show());
        }
    }

    #[test]
    fn every_decision_is_consistent_versioned_and_within_the_role(request in request()) {
        let policy = policy();
        let decision = decide(&policy, &request);
        prop_assert!(is_consistent(&decision));
        prop_assert_eq!(&decision.policy_version, &policy.version);
        if decision.is_permit() {
            if let Requester::User(role) = &request.requester {
                let profile = policy.profile_for(role);
                prop_assert!(profile.is_some_and(|p| p.grant(request.function).is_some()
                    && p.purposes.contains(&request.purpose)));
            }
            // Sensitive entries present in clinical data are shown or reported withheld.
            if let Some(p) = &request.patient && !decision.obligations.withhold.is_empty() {
                prop_assert_eq!(&decision.obligations.withhold, &p.sensitive_categories);
                prop_assert!(decision.reasons.contains(&ReasonCode::SensitiveWithheld));
            }
        }
    }
}
