//! Identity resolution (keel-core's `pds_trace`) through the PDS adapter against the PDS
//! simulator over real HTTP: a verified number confirmed, a superseded number followed, a
//! unique trace, an ambiguous trace sent to review, a conflict, no match, and PDS unavailable
//! reported as such (never as "no match"). Synthetic patients, 999-range NHS numbers.

use std::net::SocketAddr;
use std::time::Duration;

use keel_core::identity::pds_trace::{
    Agreement, NumberAnswer, Resolution, TraceBasis, TraceOutcome, resolve, trace_subject,
};
use keel_core::{CorrelationId, RequestContext};
use keel_integrations::http::Endpoint;
use keel_integrations::pds::PdsClient;
use keel_sim::faults::FaultHandle;
use keel_sim::pds::{self, PdsSimulator};
use keel_sim::{Options, Population};
use serde_json::Value;

fn ctx() -> RequestContext {
    RequestContext::local_development(CorrelationId::parse("test-pds-trace").expect("valid"))
}

fn patients() -> Vec<Value> {
    pds::from_population(&Population::generate(Options {
        patients: 1000,
        practices: 2,
        demographics_only: true,
        ..Options::default()
    }))
}

/// Unrestricted, alive, and alone at PDS with its name, birth date and gender.
fn ordinary(all: &[Value], skip: usize) -> Value {
    let key = |p: &Value| {
        (
            p.pointer("/name/0/family").cloned(),
            p.pointer("/name/0/given/0").cloned(),
            p["birthDate"].clone(),
        )
    };
    all.iter()
        .filter(|p| pds::confidentiality_of(p) == "U" && p.get("deceasedDateTime").is_none())
        .filter(|p| all.iter().filter(|q| key(q) == key(p)).count() == 1)
        .nth(skip)
        .expect("such a patient")
        .clone()
}

async fn client_for(sim: PdsSimulator) -> PdsClient {
    let (addr, _task) = pds::serve_with_faults(
        sim,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        FaultHandle::default(),
    )
    .await
    .expect("bind");
    client_at(&format!("http://{addr}{}", pds::BASE_PATH))
}

fn client_at(url: &str) -> PdsClient {
    PdsClient::new(Endpoint::new(url, Duration::from_millis(800))).expect("client")
}

fn without_number(patient: &Value) -> Value {
    let mut p = patient.clone();
    p.as_object_mut().expect("object").remove("identifier");
    p
}

fn nhs(patient: &Value) -> &str {
    patient["id"].as_str().expect("id")
}

async fn resolve_with(client: &PdsClient, patient: &Value) -> Resolution {
    let subject = trace_subject(patient).expect("a traceable Patient");
    resolve(client, &ctx(), &subject).await
}

fn agreement(fields: &[(&str, Agreement)], name: &str) -> Agreement {
    fields.iter().find(|(n, _)| *n == name).expect("field").1
}

#[tokio::test]
async fn a_verified_number_is_confirmed_and_a_superseded_one_followed() {
    let all = patients();
    let person = ordinary(&all, 0);
    let merged_away = ordinary(&all, 1);
    let sim = PdsSimulator::new(all.clone());
    let client = client_for(sim.clone()).await;

    let resolution = resolve_with(&client, &person).await;
    let TraceOutcome::Confirmed(candidate) = &resolution.outcome else {
        panic!("expected confirmed, got {resolution:?}");
    };
    let check = resolution.number_check.as_ref().expect("number checked");
    assert_eq!(check.answer, NumberAnswer::Current);
    assert_eq!(candidate.basis, TraceBasis::Retrieve);
    assert_eq!(candidate.score, None);
    for field in [
        "nhs_number",
        "family",
        "given",
        "birth_date",
        "gender",
        "postcode",
    ] {
        assert_eq!(
            agreement(&candidate.fields, field),
            Agreement::Agrees,
            "{field}"
        );
    }

    // The person's record was merged into another number at PDS: the record still carries the
    // old one, verified.
    sim.supersede(nhs(&merged_away), nhs(&person));
    let mut old_record = person.clone();
    old_record["identifier"][0]["value"] = merged_away["id"].clone();
    let resolution = resolve_with(&client, &old_record).await;
    let check = resolution.number_check.as_ref().expect("number checked");
    assert_eq!(check.asked.as_str(), nhs(&merged_away));
    let NumberAnswer::Superseded { by } = check.answer else {
        panic!("expected superseded, got {check:?}");
    };
    assert_eq!(by.as_str(), nhs(&person));
    let TraceOutcome::Confirmed(candidate) = &resolution.outcome else {
        panic!("expected the surviving record confirmed, got {resolution:?}");
    };
    assert_eq!(
        candidate
            .nhs_number()
            .map(|n| n.as_str().to_string())
            .as_deref(),
        Some(nhs(&person))
    );
    assert_eq!(
        agreement(&candidate.fields, "nhs_number"),
        Agreement::Differs
    );
    assert_eq!(
        agreement(&candidate.fields, "birth_date"),
        Agreement::Agrees
    );
    let named: Vec<String> = resolution
        .nhs_numbers()
        .iter()
        .map(|n| n.as_str().to_string())
        .collect();
    assert!(
        named.contains(&nhs(&merged_away).to_string()) && named.contains(&nhs(&person).to_string())
    );
}

#[tokio::test]
async fn a_record_without_a_number_is_traced_when_one_person_matches_exactly() {
    let all = patients();
    let person = ordinary(&all, 2);
    let client = client_for(PdsSimulator::new(all)).await;

    let resolution = resolve_with(&client, &without_number(&person)).await;
    assert_eq!(resolution.number_check, None);
    let TraceOutcome::Traced(candidate) = &resolution.outcome else {
        panic!("expected a unique trace, got {resolution:?}");
    };
    assert_eq!(candidate.basis, TraceBasis::ExactSearch);
    assert_eq!(candidate.score, Some(1.0));
    assert_eq!(
        candidate.nhs_number().expect("number").as_str(),
        nhs(&person)
    );
    assert_eq!(
        agreement(&candidate.fields, "nhs_number"),
        Agreement::NotCompared
    );
    assert_eq!(agreement(&candidate.fields, "family"), Agreement::Agrees);
}

#[tokio::test]
async fn two_people_alike_at_pds_go_to_review_never_a_guess() {
    let mut all = patients();
    let person = ordinary(&all, 3);
    // Another real PDS record made to look exactly like the person (a twin registered alike).
    let twin_at = all
        .iter()
        .position(|p| p["id"] != person["id"] && pds::confidentiality_of(p) == "U")
        .expect("another patient");
    for field in ["name", "birthDate", "gender", "address"] {
        all[twin_at][field] = person[field].clone();
    }
    let twin = nhs(&all[twin_at]).to_string();
    let client = client_for(PdsSimulator::new(all)).await;

    let resolution = resolve_with(&client, &without_number(&person)).await;
    let TraceOutcome::NeedsReview { candidates, reason } = &resolution.outcome else {
        panic!("expected review, got {resolution:?}");
    };
    assert!(reason.contains("2 people"), "{reason}");
    let mut found: Vec<String> = candidates
        .iter()
        .map(|c| c.nhs_number().expect("number").as_str().to_string())
        .collect();
    found.sort();
    let mut expected = vec![nhs(&person).to_string(), twin];
    expected.sort();
    assert_eq!(found, expected);
    assert!(candidates.iter().all(|c| c.score == Some(1.0)));
}

#[tokio::test]
async fn a_number_whose_demographics_disagree_is_a_conflict_for_review() {
    let all = patients();
    let person = ordinary(&all, 4);
    let other = ordinary(&all, 5);
    let client = client_for(PdsSimulator::new(all)).await;

    // The other person's details filed under this person's verified number.
    let mut conflicting = other.clone();
    conflicting["identifier"] = person["identifier"].clone();
    let resolution = resolve_with(&client, &conflicting).await;
    assert_eq!(
        resolution.number_check.as_ref().map(|c| c.answer),
        Some(NumberAnswer::Current)
    );
    let TraceOutcome::NeedsReview { candidates, .. } = &resolution.outcome else {
        panic!("expected review, got {resolution:?}");
    };
    // PDS's record for the number first, then what the trace found (the other person).
    assert_eq!(
        candidates[0].nhs_number().expect("n").as_str(),
        nhs(&person)
    );
    assert_eq!(candidates[0].basis, TraceBasis::Retrieve);
    assert!(candidates[0].conflicts());
    assert!(
        candidates
            .iter()
            .any(|c| c.nhs_number().expect("n").as_str() == nhs(&other))
    );
}

#[tokio::test]
async fn nobody_at_pds_is_no_match_and_pds_down_is_unavailable() {
    let all = patients();
    let person = ordinary(&all, 6);
    let client = client_for(PdsSimulator::new(all)).await;

    let mut stranger = without_number(&person);
    stranger["name"] =
        serde_json::json!([{"use": "usual", "family": "Qzxwvutsr", "given": ["Ykjhgf"]}]);
    let resolution = resolve_with(&client, &stranger).await;
    assert!(
        matches!(resolution.outcome, TraceOutcome::NoMatch { .. }),
        "{resolution:?}"
    );

    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let down = client_at(&format!("http://{addr}{}", pds::BASE_PATH));
    for record in [person.clone(), without_number(&person)] {
        let resolution = resolve_with(&down, &record).await;
        assert!(
            matches!(resolution.outcome, TraceOutcome::Unavailable { .. }),
            "{resolution:?}"
        );
        assert_eq!(resolution.outcome.code(), "unavailable");
    }
}
