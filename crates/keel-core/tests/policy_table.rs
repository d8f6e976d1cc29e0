//! The table-driven authorisation suite: every row of `policy_cases.csv` is one request under
//! the default policy, with the decision, the exact set of reason codes and the obligations
//! it must produce.
//!
//! The world of the table: the patient is registered at practice A81001 in PCN U00001.
//! `relationship` places the actor: `registered` (A81001, member of U00001), `pcn-member`
//! (A81002, member of U00001), `pcn-hub` (Y00001, hub of U00001), `task`/`referral`/
//! `appointment` (C83001, outside the PCN, linked by an open task, referral or appointment),
//! `none` (C83001, no link), `other-pcn` (B82001, member of U00002), `no-org` (no
//! organisation selected), `no-patient` (A81001, no patient in the request).
//! `actor`: a role code, `+` job role or activity codes; or `sys:` and `|`-separated scopes.
//! `break_glass`: `valid` (a reason, an hour left), `expired`, `blank` (no reason),
//! `too-long` (five hours). `opt_out`: `ndoo`, `t1`, `both`. Obligations: `redact:` fields,
//! `withhold:` categories, `obs:` observation categories, `pseudonymise`, `alert`, `conceal`.

use std::collections::BTreeSet;

use keel_core::PurposeOfUse;
use keel_core::policy::{
    AccessRequest, BreakGlass, CareLink, CareLinkKind, Decision, Function, OrganisationFacts,
    PatientFacts, PcnMembership, PdsRestriction, Policy, Requester, SmartScope, UserRole, decide,
};
use keel_model::OdsCode;

const CASES: &str = include_str!("policy_cases.csv");
const NOW: i64 = 1_800_000_000_000;
const MINUTE: i64 = 60_000;

fn ods(code: &str) -> OdsCode {
    OdsCode::parse(code).expect("ODS code")
}

fn from_code<T: serde::de::DeserializeOwned>(code: &str) -> T {
    serde_json::from_value(serde_json::Value::String(code.to_string()))
        .unwrap_or_else(|e| panic!("{code}: {e}"))
}

fn requester(actor: &str) -> Requester {
    if let Some(scopes) = actor.strip_prefix("sys:") {
        return Requester::System {
            client_id: "module".into(),
            scopes: scopes
                .split('|')
                .map(|s| SmartScope::parse(s).unwrap_or_else(|| panic!("scope {s}")))
                .collect(),
        };
    }
    let mut parts = actor.split('+');
    let role_code = parts.next().expect("role").to_string();
    let (activities, job_roles): (Vec<&str>, Vec<&str>) = parts.partition(|p| p.starts_with('B'));
    Requester::User(UserRole {
        role_code,
        job_role_code: job_roles.first().map(|j| j.to_string()),
        activity_codes: activities.into_iter().map(str::to_string).collect(),
    })
}

fn request(row: &Row) -> AccessRequest {
    let member = |org: &str, pcn: &str| OrganisationFacts {
        ods: ods(org),
        pcn: PcnMembership::MemberPractice(ods(pcn)),
    };
    let outsider = OrganisationFacts {
        ods: ods("C83001"),
        pcn: PcnMembership::None,
    };
    let link = |kind| CareLink {
        kind,
        organisation: ods("C83001"),
    };
    let mut patient = PatientFacts {
        registered_practice: Some(ods("A81001")),
        practice_pcn: Some(ods("U00001")),
        restriction: match row.restriction {
            "U" => PdsRestriction::Unrestricted,
            "R" => PdsRestriction::Restricted,
            "V" => PdsRestriction::VeryRestricted,
            other => panic!("restriction {other}"),
        },
        national_data_opt_out: matches!(row.opt_out, "ndoo" | "both"),
        type1_opt_out: matches!(row.opt_out, "t1" | "both"),
        sensitive_categories: match row.sensitive {
            "-" => Vec::new(),
            list => list.split('|').map(str::to_string).collect(),
        },
        ..PatientFacts::default()
    };
    let organisation = match row.relationship {
        "registered" | "no-patient" => Some(member("A81001", "U00001")),
        "pcn-member" => Some(member("A81002", "U00001")),
        "pcn-hub" => Some(OrganisationFacts {
            ods: ods("Y00001"),
            pcn: PcnMembership::HubService(ods("U00001")),
        }),
        "other-pcn" => Some(member("B82001", "U00002")),
        "task" | "referral" | "appointment" | "none" => Some(outsider),
        "no-org" => None,
        other => panic!("relationship {other}"),
    };
    match row.relationship {
        "task" => patient.care_links.push(link(CareLinkKind::OpenTask)),
        "referral" => patient.care_links.push(link(CareLinkKind::OpenReferral)),
        "appointment" => patient.care_links.push(link(CareLinkKind::Appointment)),
        _ => {}
    }
    let reason = "unconscious in the waiting room".to_string();
    let break_glass = match row.break_glass {
        "-" => None,
        "valid" => Some((reason, NOW + 60 * MINUTE)),
        "expired" => Some((reason, NOW - 1)),
        "blank" => Some(("  ".to_string(), NOW + 60 * MINUTE)),
        "too-long" => Some((reason, NOW + 300 * MINUTE)),
        other => panic!("break-glass {other}"),
    }
    .map(|(reason, expires_at_millis)| BreakGlass {
        reason,
        expires_at_millis,
    });
    AccessRequest {
        requester: requester(row.actor),
        organisation,
        purpose: from_code::<PurposeOfUse>(row.purpose),
        function: from_code::<Function>(row.function),
        patient: (row.relationship != "no-patient").then_some(patient),
        break_glass,
        now_millis: NOW,
    }
}

struct Row<'a> {
    line: usize,
    group: &'a str,
    actor: &'a str,
    function: &'a str,
    purpose: &'a str,
    relationship: &'a str,
    restriction: &'a str,
    opt_out: &'a str,
    sensitive: &'a str,
    break_glass: &'a str,
    expect: &'a str,
    reasons: &'a str,
    obligations: &'a str,
}

fn rows() -> Vec<Row<'static>> {
    CASES
        .lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            assert_eq!(f.len(), 12, "line {}: {l}", i + 1);
            Row {
                line: i + 1,
                group: f[0],
                actor: f[1],
                function: f[2],
                purpose: f[3],
                relationship: f[4],
                restriction: f[5],
                opt_out: f[6],
                sensitive: f[7],
                break_glass: f[8],
                expect: f[9],
                reasons: f[10],
                obligations: f[11],
            }
        })
        .collect()
}

fn code<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value).expect("serialise") {
        serde_json::Value::String(s) => s,
        other => panic!("not a code: {other}"),
    }
}

/// The decision's obligations in the table's notation.
fn obligation_tokens(decision: &Decision) -> BTreeSet<String> {
    let o = &decision.obligations;
    let mut tokens = BTreeSet::new();
    let list = |name: &str, items: Vec<String>| format!("{name}:{}", items.join("|"));
    if !o.redact.is_empty() {
        tokens.insert(list("redact", o.redact.iter().map(code).collect()));
    }
    if !o.withhold.is_empty() {
        tokens.insert(list("withhold", o.withhold.clone()));
    }
    if !o.observation_categories.is_empty() {
        tokens.insert(list("obs", o.observation_categories.clone()));
    }
    if o.pseudonymise {
        tokens.insert("pseudonymise".into());
    }
    if o.flagged_audit_and_alert {
        tokens.insert("alert".into());
    }
    if decision.conceal_existence {
        tokens.insert("conceal".into());
    }
    tokens
}

fn set(field: &str, separator: char) -> BTreeSet<String> {
    field
        .split(separator)
        .filter(|t| !t.is_empty() && *t != "-")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_case_in_the_table_gets_its_decision_reasons_and_obligations() {
    let policy = Policy::default_policy().expect("default policy");
    let rows = rows();
    assert!(rows.len() >= 200, "only {} cases", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let decision = decide(&policy, &request(row));
        let effect = if decision.is_permit() {
            "permit"
        } else {
            "deny"
        };
        let reasons: BTreeSet<String> = decision
            .reasons
            .iter()
            .map(|r| r.as_code().to_string())
            .collect();
        let obligations = obligation_tokens(&decision);
        if effect != row.expect
            || reasons != set(row.reasons, ';')
            || obligations != set(row.obligations, ' ')
        {
            failures.push(format!(
                "line {} [{}] {} {} {}: got {effect} reasons {reasons:?} obligations {obligations:?}",
                row.line, row.group, row.actor, row.function, row.relationship
            ));
        }
        assert_eq!(decision.policy_version, policy.version);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn the_table_covers_every_function_and_group() {
    let rows = rows();
    for function in Function::ALL {
        assert!(
            rows.iter()
                .any(|r| from_code::<Function>(r.function) == function),
            "{function:?}"
        );
    }
    let groups: BTreeSet<&str> = rows.iter().map(|r| r.group).collect();
    for group in [
        "roles",
        "relationships",
        "restrictions",
        "purposes",
        "sensitive",
        "break-glass",
        "systems",
        "identity",
    ] {
        assert!(groups.contains(group), "group {group}");
    }
}
