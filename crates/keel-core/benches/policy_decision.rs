//! The cost of one policy decision under the default policy, over a mix of requests (each
//! role, relationships, restrictions, opt-outs, sensitive entries, break-glass, system
//! clients). Times batches of decisions and reports p50/p99 per decision.
//! Run: `cargo bench -p keel-core --bench policy_decision`.

use std::hint::black_box;
use std::time::Instant;

use keel_core::PurposeOfUse;
use keel_core::policy::{
    AccessRequest, BreakGlass, CareLink, CareLinkKind, Function, OrganisationFacts, PatientFacts,
    PcnMembership, PdsRestriction, Policy, Requester, SmartScope, UserRole, decide,
};
use keel_model::OdsCode;

const NOW: i64 = 1_800_000_000_000;
const BATCH: usize = 1_000;
const BATCHES: usize = 2_000;

fn requests() -> Result<Vec<AccessRequest>, Box<dyn std::error::Error>> {
    let practice = OdsCode::parse("A81001")?;
    let pcn = OdsCode::parse("U00001")?;
    let outsider = OdsCode::parse("C83001")?;
    let roles = [
        ("S8000:G8000:R8000", None, vec![]),
        ("R8003", Some("R1290"), vec![]),
        ("R8003", None, vec!["B0570".to_string()]),
        ("R8009", None, vec![]),
        ("R8012", None, vec![]),
        ("R0001", None, vec![]),
        ("R9999", None, vec![]),
    ];
    let mut requesters: Vec<Requester> = roles
        .into_iter()
        .map(|(role, job, activities)| {
            Requester::User(UserRole {
                role_code: role.to_string(),
                job_role_code: job.map(str::to_string),
                activity_codes: activities,
            })
        })
        .collect();
    requesters.push(Requester::System {
        client_id: "module".into(),
        scopes: ["patient/Observation.rs", "system/Patient.rs"]
            .into_iter()
            .filter_map(SmartScope::parse)
            .collect(),
    });
    let organisations = [
        OrganisationFacts {
            ods: practice.clone(),
            pcn: PcnMembership::MemberPractice(pcn.clone()),
        },
        OrganisationFacts {
            ods: OdsCode::parse("A81002")?,
            pcn: PcnMembership::MemberPractice(pcn.clone()),
        },
        OrganisationFacts {
            ods: outsider.clone(),
            pcn: PcnMembership::None,
        },
    ];
    let purposes = [
        PurposeOfUse::DirectCare,
        PurposeOfUse::Administration,
        PurposeOfUse::SecondaryUse,
    ];
    let restrictions = [
        PdsRestriction::Unrestricted,
        PdsRestriction::Restricted,
        PdsRestriction::VeryRestricted,
    ];
    let mut requests = Vec::new();
    let mut n = 0usize;
    for (r, requester) in requesters.iter().enumerate() {
        for organisation in &organisations {
            for purpose in purposes {
                for function in Function::ALL {
                    n += 1;
                    let patient = PatientFacts {
                        registered_practice: Some(practice.clone()),
                        practice_pcn: Some(pcn.clone()),
                        care_links: if n.is_multiple_of(4) {
                            vec![CareLink {
                                kind: CareLinkKind::OpenReferral,
                                organisation: outsider.clone(),
                            }]
                        } else {
                            Vec::new()
                        },
                        restriction: restrictions[n % 3],
                        national_data_opt_out: n.is_multiple_of(5),
                        type1_opt_out: n.is_multiple_of(7),
                        sensitive_categories: if n.is_multiple_of(3) {
                            vec!["ivf".to_string()]
                        } else {
                            Vec::new()
                        },
                    };
                    requests.push(AccessRequest {
                        requester: requester.clone(),
                        organisation: Some(organisation.clone()),
                        purpose,
                        function,
                        patient: (function != Function::ReadAudit).then_some(patient),
                        // Break-glass only by the clinician, who may use it.
                        break_glass: (r == 0 && n.is_multiple_of(6)).then(|| BreakGlass {
                            reason: "collapsed at the surgery".into(),
                            expires_at_millis: NOW + 30 * 60_000,
                        }),
                        now_millis: NOW,
                    });
                }
            }
        }
    }
    Ok(requests)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let policy = Policy::default_policy()?;
    let requests = requests()?;
    let mut permits = 0usize;
    for request in &requests {
        permits += usize::from(decide(&policy, request).is_permit());
    }
    let mut per_decision_ns = Vec::with_capacity(BATCHES);
    let mut next = 0usize;
    for _ in 0..BATCHES {
        let start = Instant::now();
        for _ in 0..BATCH {
            black_box(decide(&policy, black_box(&requests[next])));
            next = (next + 1) % requests.len();
        }
        per_decision_ns.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    per_decision_ns.sort_by(f64::total_cmp);
    let at = |q: f64| per_decision_ns[((per_decision_ns.len() - 1) as f64 * q) as usize];
    println!(
        "policy_decision: {} decisions over {} distinct requests ({permits} permits), \
         batches of {BATCH}: p50 {:.0} ns, p99 {:.0} ns, max {:.0} ns per decision",
        BATCH * BATCHES,
        requests.len(),
        at(0.50),
        at(0.99),
        at(1.0),
    );
    Ok(())
}
