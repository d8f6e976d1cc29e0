//! Identity resolution (keel-core's `pds_trace`) through the PDS adapter against the PDS
//! simulator over real HTTP: a verified number confirmed, a superseded number followed, a
//! unique trace, an ambiguous trace sent to review, more people than PDS lists, a fuzzy-only
//! match, a conflict, an invalidated or unknown number, a record too thin to trace, a restricted
//! patient, no match, and PDS unavailable (refused, down or in an outage) reported as such
//! (never as "no match"). Synthetic patients, 999-range NHS numbers.

use std::net::SocketAddr;
use std::time::Duration;

use keel_core::identity::pds_trace::{
    Agreement, COMPARED_FIELDS, NumberAnswer, Resolution, TRACE_MAX_RESULTS, TraceBasis,
    TraceOutcome, resolve, trace_subject,
};
use keel_core::{CorrelationId, RequestContext};
use keel_integrations::circuit::CircuitPolicy;
use keel_integrations::http::Endpoint;
use keel_integrations::pds::PdsClient;
use keel_integrations::telemetry::IntegrationMetrics;
use keel_sim::faults::{FaultConfig, FaultHandle};
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
    client_with_faults(sim, FaultHandle::default()).await
}

async fn client_with_faults(sim: PdsSimulator, faults: FaultHandle) -> PdsClient {
    let (addr, _task) = pds::serve_with_faults(sim, SocketAddr::from(([127, 0, 0, 1], 0)), faults)
        .await
        .expect("bind");
    client_at(&format!("http://{addr}{}", pds::BASE_PATH))
}

/// Makes `count` other unrestricted records at PDS look exactly like `person`.
fn make_alike(all: &mut [Value], person: &Value, count: usize) {
    let others: Vec<usize> = (0..all.len())
        .filter(|&i| all[i]["id"] != person["id"] && pds::confidentiality_of(&all[i]) == "U")
        .take(count)
        .collect();
    assert_eq!(others.len(), count, "enough other patients");
    for i in others {
        for field in ["name", "birthDate", "gender", "address"] {
            all[i][field] = person[field].clone();
        }
    }
}

fn with_confidentiality(patient: &mut Value, code: &str) {
    patient["meta"]["security"] =
        serde_json::json!([{"system": pds::CONFIDENTIALITY_SYSTEM, "code": code}]);
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
    for field in COMPARED_FIELDS {
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
    make_alike(&mut all, &person, 1);
    let twin = all
        .iter()
        .find(|p| p["id"] != person["id"] && p["name"] == person["name"])
        .map(|p| nhs(p).to_string())
        .expect("the twin");
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

#[tokio::test]
async fn more_people_alike_than_pds_lists_go_to_review_with_none_proposed() {
    let mut all = patients();
    let person = ordinary(&all, 7);
    make_alike(&mut all, &person, usize::from(TRACE_MAX_RESULTS));
    let client = client_for(PdsSimulator::new(all)).await;

    let resolution = resolve_with(&client, &without_number(&person)).await;
    let TraceOutcome::NeedsReview { candidates, reason } = &resolution.outcome else {
        panic!("expected review, got {resolution:?}");
    };
    assert!(candidates.is_empty(), "{candidates:?}");
    assert!(reason.contains("more than 10"), "{reason}");
}

#[tokio::test]
async fn a_fuzzy_only_match_is_proposed_for_review_never_taken() {
    let all = patients();
    let person = ordinary(&all, 8);
    let client = client_for(PdsSimulator::new(all)).await;

    // One letter of the family name mistyped, no NHS number: no exact match, a fuzzy one.
    let mut misspelt = without_number(&person);
    let family = person
        .pointer("/name/0/family")
        .and_then(Value::as_str)
        .expect("family");
    let last = family.chars().last().expect("letter");
    let replacement = if last == 'x' { 'z' } else { 'x' };
    misspelt["name"][0]["family"] = Value::from(format!(
        "{}{replacement}",
        &family[..family.len() - last.len_utf8()]
    ));
    let resolution = resolve_with(&client, &misspelt).await;
    assert_eq!(resolution.number_check, None);
    let TraceOutcome::NeedsReview { candidates, reason } = &resolution.outcome else {
        panic!("expected review, got {resolution:?}");
    };
    assert!(reason.contains("fuzzy"), "{reason}");
    let found = candidates
        .iter()
        .find(|c| c.nhs_number().expect("n").as_str() == nhs(&person))
        .expect("the person proposed");
    assert_eq!(found.basis, TraceBasis::FuzzySearch);
    assert!(found.score.is_some_and(|s| s < 1.0), "{found:?}");
    assert_eq!(agreement(&found.fields, "family"), Agreement::Differs);
    assert_eq!(agreement(&found.fields, "birth_date"), Agreement::Agrees);
}

#[tokio::test]
async fn an_invalidated_or_unknown_number_is_never_confirmed() {
    let mut all = patients();
    let invalidated = ordinary(&all, 9);
    let unknown = ordinary(&all, 10);
    let at = |all: &[Value], p: &Value| all.iter().position(|q| q["id"] == p["id"]).expect("held");
    let i = at(&all, &invalidated);
    with_confidentiality(&mut all[i], "REDACTED");
    let j = at(&all, &unknown);
    all.remove(j);
    let client = client_for(PdsSimulator::new(all)).await;

    let resolution = resolve_with(&client, &invalidated).await;
    assert_eq!(
        resolution.number_check.as_ref().map(|c| c.answer),
        Some(NumberAnswer::Invalidated)
    );
    assert!(
        !matches!(
            resolution.outcome,
            TraceOutcome::Confirmed(_) | TraceOutcome::Traced(_)
        ),
        "{resolution:?}"
    );

    // A number PDS does not hold, on a record with demographics: traced by search, which
    // finds no one (the person is not at PDS at all).
    let resolution = resolve_with(&client, &unknown).await;
    assert_eq!(
        resolution.number_check.as_ref().map(|c| c.answer),
        Some(NumberAnswer::NotFound)
    );
    assert!(
        matches!(resolution.outcome, TraceOutcome::NoMatch { .. }),
        "{resolution:?}"
    );

    // The same without a birth date: nothing to search by.
    let mut thin = unknown.clone();
    thin.as_object_mut().expect("object").remove("birthDate");
    let resolution = resolve_with(&client, &thin).await;
    let TraceOutcome::CannotTrace { reason } = &resolution.outcome else {
        panic!("expected cannot-trace, got {resolution:?}");
    };
    assert!(reason.contains("birth date"), "{reason}");
}

#[tokio::test]
async fn a_restricted_patient_is_confirmed_without_their_location_being_compared() {
    let mut all = patients();
    let person = ordinary(&all, 11);
    let i = all
        .iter()
        .position(|q| q["id"] == person["id"])
        .expect("held");
    with_confidentiality(&mut all[i], "R");
    let client = client_for(PdsSimulator::new(all)).await;

    let resolution = resolve_with(&client, &person).await;
    let TraceOutcome::Confirmed(candidate) = &resolution.outcome else {
        panic!("expected confirmed, got {resolution:?}");
    };
    assert!(candidate.patient.restricted);
    assert_eq!(candidate.patient.demographics.postcode, None);
    assert_eq!(
        agreement(&candidate.fields, "postcode"),
        Agreement::NotCompared
    );
    assert_eq!(agreement(&candidate.fields, "family"), Agreement::Agrees);
}

#[tokio::test]
async fn a_pds_outage_is_unavailable_and_a_refused_search_cannot_trace() {
    let all = patients();
    let person = ordinary(&all, 12);
    let faults = FaultHandle::new(FaultConfig {
        outage: true,
        ..FaultConfig::default()
    });
    let client = client_with_faults(PdsSimulator::new(all.clone()), faults.clone()).await;
    for record in [person.clone(), without_number(&person)] {
        let resolution = resolve_with(&client, &record).await;
        let TraceOutcome::Unavailable { reason } = &resolution.outcome else {
            panic!("expected unavailable, got {resolution:?}");
        };
        assert!(reason.contains("PDS"), "{reason}");
    }
    faults.reset();
    assert!(matches!(
        resolve_with(&client, &person).await.outcome,
        TraceOutcome::Confirmed(_)
    ));

    // PDS refuses a family name with a wildcard in its first two characters.
    let mut wild = without_number(&person);
    wild["name"][0]["family"] = Value::from("*a");
    let resolution = resolve_with(&client, &wild).await;
    assert!(
        matches!(resolution.outcome, TraceOutcome::CannotTrace { .. }),
        "{resolution:?}"
    );
}

#[tokio::test]
async fn pds_calls_are_counted_and_a_failing_pds_opens_its_circuit() {
    let all = patients();
    let person = ordinary(&all, 13);
    let faults = FaultHandle::default();
    let metrics = IntegrationMetrics::new();
    let policy = CircuitPolicy {
        failure_threshold: 2,
        cooldown: Duration::from_secs(60),
    };
    let client = client_with_faults(PdsSimulator::new(all), faults.clone())
        .await
        .guarded_by(policy, metrics.clone());

    assert!(matches!(
        resolve_with(&client, &person).await.outcome,
        TraceOutcome::Confirmed(_)
    ));
    faults
        .set(FaultConfig {
            outage: true,
            ..FaultConfig::default()
        })
        .expect("faults");
    for _ in 0..2 {
        let resolution = resolve_with(&client, &person).await;
        assert!(
            matches!(resolution.outcome, TraceOutcome::Unavailable { .. }),
            "{resolution:?}"
        );
    }
    // Open: refused at once, without a request, even once PDS is back.
    faults.reset();
    let resolution = resolve_with(&client, &person).await;
    let TraceOutcome::Unavailable { reason } = &resolution.outcome else {
        panic!("expected unavailable, got {resolution:?}");
    };
    assert!(reason.contains("circuit open"), "{reason}");

    let text = prometheus::TextEncoder::new()
        .encode_to_string(&metrics.gather())
        .expect("encode");
    for line in [
        r#"keel_integration_calls_total{interface="pds",operation="retrieve",outcome="ok",practice="X26"} 1"#,
        r#"keel_integration_calls_total{interface="pds",operation="retrieve",outcome="unavailable",practice="X26"} 2"#,
        r#"keel_integration_calls_total{interface="pds",operation="retrieve",outcome="circuit-open",practice="X26"} 1"#,
        r#"keel_integration_circuit_open{interface="pds",practice="X26"} 1"#,
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    assert!(!text.contains(nhs(&person)), "no NHS number in the metrics");
}
