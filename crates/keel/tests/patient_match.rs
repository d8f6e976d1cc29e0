//! `POST /fhir/Patient/$match` and the person index's review queue against the real binary:
//! NHS number first (certain; a different number never matches), demographics by the
//! probabilistic matcher with its evidence, `onlyCertainMatches`, `count`, access control and
//! the audit record; then a scan of the store, the review queue, a decision and its reversal.
//! The population is synthetic (NHS numbers from the 999 test range).

mod common;

use common::{Server, audit_events_of, keel, token};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;

const NHS: &str = "https://fhir.nhs.uk/Id/nhs-number";
const VERIFIED: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";
const PCN_PRACTICE: &str = "A81001";
const PCN_PRACTICE_2: &str = "A81002";
const OUTSIDE_PRACTICE: &str = "B82001";

const GIVEN: &[&str] = &[
    "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Noah", "Mia", "Jack", "Ivy", "Leo",
    "Lily", "Arthur", "Freya", "Muhammad", "Grace", "Oscar", "Sophia", "Charlie", "Rosie",
    "Thomas", "Emily", "Alfie", "Ella", "Henry", "Evie", "Jacob", "Poppy", "Theo", "Florence",
];
const FAMILY: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Thomas", "Clarke", "Jackson", "Wood", "Harris", "Edwards", "Turner", "Martin", "Cooper",
    "Hill", "Ward", "Hughes", "Moore", "Clark", "King", "Harrison", "Lewis", "Baker", "Lee",
    "Allen", "Morris", "Khan",
];
const STREETS: &[&str] = &[
    "Mill Road",
    "Church Street",
    "Station Road",
    "Victoria Road",
    "Park Avenue",
    "High Street",
    "Green Lane",
    "Manor Road",
    "Kings Road",
    "Queens Road",
    "Grove Road",
    "Alexandra Road",
];
const POSTCODES: &[&str] = &[
    "LS6 4AP", "LS6 1BN", "LS7 3QD", "LS8 2HX", "LS16 5EE", "LS17 7PJ", "LS2 9JT", "LS11 6AD",
    "LS12 3BB", "LS13 4LU", "LS14 1AA", "LS15 8GB", "LS18 4QF", "LS19 6BU", "LS20 9LT",
];

/// A valid NHS number in the 999 test range from a six-digit serial.
fn nhs_number(serial: u32) -> Option<String> {
    let body = format!("999{serial:06}");
    let sum: u32 = body
        .bytes()
        .zip((2..=10).rev())
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = 11 - sum % 11;
    match check {
        11 => Some(format!("{body}0")),
        10 => None,
        c => Some(format!("{body}{c}")),
    }
}

struct Person {
    id: String,
    nhs: Option<String>,
    given: String,
    family: String,
    birth: String,
    gender: &'static str,
    street: String,
    postcode: String,
    practice: &'static str,
}

fn patient(p: &Person) -> Value {
    let mut patient = json!({
        "resourceType": "Patient",
        "id": p.id,
        "name": [{"use": "official", "family": p.family, "given": [p.given]}],
        "gender": p.gender,
        "birthDate": p.birth,
        "address": [{"use": "home", "line": [p.street], "city": "Leeds", "postalCode": p.postcode}],
        "generalPractitioner": [{"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": p.practice}}]
    });
    if let Some(nhs) = &p.nhs {
        patient["identifier"] = json!([{
            "system": NHS,
            "value": nhs,
            "extension": [{"url": VERIFIED, "valueCodeableConcept": {"coding": [{
                "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland",
                "code": "01"}]}}]
        }]);
    }
    patient
}

/// 400 distinct people over three practices (deterministic), then the special cases.
fn population() -> Vec<Person> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut people = Vec::new();
    let mut serial = 100;
    while people.len() < 400 {
        serial += 1;
        let Some(nhs) = nhs_number(serial) else {
            continue;
        };
        let i = people.len();
        people.push(Person {
            id: format!("p{i}"),
            nhs: Some(nhs),
            given: GIVEN[next(GIVEN.len())].into(),
            family: FAMILY[next(FAMILY.len())].into(),
            birth: format!(
                "{}-{:02}-{:02}",
                1940 + next(70),
                1 + next(12),
                1 + next(28)
            ),
            gender: if next(2) == 0 { "female" } else { "male" },
            street: format!("{} {}", 1 + next(120), STREETS[next(STREETS.len())]),
            postcode: POSTCODES[next(POSTCODES.len())].into(),
            practice: [PCN_PRACTICE, PCN_PRACTICE_2, OUTSIDE_PRACTICE][next(3)],
        });
    }
    // One person registered at two PCN practices (same verified NHS number).
    people[10].practice = PCN_PRACTICE;
    people.push(Person {
        id: "p10-second".into(),
        practice: PCN_PRACTICE_2,
        street: people[10].street.clone(),
        postcode: people[10].postcode.clone(),
        nhs: people[10].nhs.clone(),
        given: people[10].given.clone(),
        family: people[10].family.clone(),
        birth: people[10].birth.clone(),
        gender: people[10].gender,
    });
    // A duplicate registration within one practice, without an NHS number on the copy.
    people[20].practice = PCN_PRACTICE;
    people.push(Person {
        id: "p20-copy".into(),
        practice: PCN_PRACTICE,
        nhs: None,
        street: people[20].street.clone(),
        postcode: people[20].postcode.clone(),
        given: people[20].given.clone(),
        family: people[20].family.clone(),
        birth: people[20].birth.clone(),
        gender: people[20].gender,
    });
    for i in [5, 7, 9, 30] {
        people[i].practice = PCN_PRACTICE;
    }
    people
}

fn seed(data: &Path, people: &[Person]) {
    let entries: Vec<Value> = people
        .iter()
        .map(|p| {
            json!({"resource": patient(p), "request": {"method": "PUT", "url": format!("Patient/{}", p.id)}})
        })
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let file = data.join("people.json");
    std::fs::write(&file, bundle.to_string()).expect("write people");
    let (ok, out, err) = common::import(data, &[file]);
    assert!(ok, "import: {out}{err}");
    let pcn =
        json!({"code": "U12345", "name": "Test PCN", "practices": [PCN_PRACTICE, PCN_PRACTICE_2]});
    std::fs::write(data.join("pcn.json"), pcn.to_string()).expect("write pcn");
}

fn serve_with_auth(data: &Path) -> Server {
    Server::spawn(
        keel()
            .args(["serve", "--dev-issuer", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .arg("--pcn")
            .arg(data.join("pcn.json"))
            .stderr(Stdio::null()),
    )
}

fn parameters(resource: &Value, extra: &[Value]) -> Value {
    let mut parameter = vec![json!({"name": "resource", "resource": resource})];
    parameter.extend(extra.iter().cloned());
    json!({"resourceType": "Parameters", "parameter": parameter})
}

fn post(
    client: &reqwest::blocking::Client,
    url: &str,
    token: &str,
    request_id: &str,
    body: &Value,
) -> (u16, Value) {
    let response = client
        .post(url)
        .bearer_auth(token)
        .header("x-request-id", request_id)
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// (Patient id, grade, score, basis) of each match entry.
fn matches(bundle: &Value) -> Vec<(String, String, f64, String)> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| {
            let ext = e["search"]["extension"].as_array().expect("extensions");
            let grade = ext
                .iter()
                .find(|x| x["url"] == "http://hl7.org/fhir/StructureDefinition/match-grade")
                .and_then(|x| x["valueCode"].as_str())
                .expect("match-grade")
                .to_string();
            let evidence = ext
                .iter()
                .find(|x| {
                    x["url"]
                        .as_str()
                        .is_some_and(|u| u.ends_with("/match-evidence"))
                })
                .expect("match-evidence");
            let basis = evidence["extension"][0]["valueCode"]
                .as_str()
                .expect("basis")
                .to_string();
            (
                e["resource"]["id"].as_str().expect("id").to_string(),
                grade,
                e["search"]["score"].as_f64().expect("score"),
                basis,
            )
        })
        .collect()
}

#[test]
fn match_finds_patients_by_nhs_number_then_demographics_with_evidence_under_access_and_audit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let people = population();
    seed(data, &people);
    let gp = token(data, "R8000", PCN_PRACTICE, "555000000001", "direct-care");
    let outsider = token(
        data,
        "R8000",
        OUTSIDE_PRACTICE,
        "555000000003",
        "direct-care",
    );
    let analyst = token(data, "R8012", PCN_PRACTICE, "555000000005", "secondary-use");
    let ig = token(data, "R0001", PCN_PRACTICE, "555000000004", "operations");
    let server = serve_with_auth(data);
    let client = Server::client();
    let url = format!("{}/Patient/$match", server.base);

    // The metadata declares the operation.
    let metadata: Value = client
        .get(format!("{}/metadata", server.base))
        .send()
        .expect("metadata")
        .json()
        .expect("json");
    let patient_resource = metadata["rest"][0]["resource"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["type"] == "Patient")
        .expect("Patient")
        .clone();
    assert!(
        patient_resource["operation"]
            .as_array()
            .expect("operations")
            .iter()
            .any(|o| o["name"] == "match"
                && o["definition"] == "http://hl7.org/fhir/OperationDefinition/Patient-match"),
        "{patient_resource}"
    );

    // Certain by NHS number: the same verified number.
    let (status, bundle) = post(
        &client,
        &url,
        &gp,
        "match-1",
        &parameters(&patient(&people[5]), &[]),
    );
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "searchset");
    let found = matches(&bundle);
    assert_eq!(found[0].0, "p5", "{found:?}");
    assert_eq!((found[0].1.as_str(), found[0].2), ("certain", 1.0));
    assert_eq!(found[0].3, "nhs-number");
    let scores: Vec<f64> = found.iter().map(|m| m.2).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "sorted by score: {scores:?}"
    );

    // Probable by demographics: no NHS number, a misspelt given name, another address.
    let mut described = patient(&people[7]);
    described.as_object_mut().map(|m| m.remove("identifier"));
    let misspelt = format!("{}e", people[7].given);
    described["name"][0]["given"] = json!([misspelt]);
    described["address"] = json!([]);
    let (status, bundle) = post(&client, &url, &gp, "match-2", &parameters(&described, &[]));
    assert_eq!(status, 200, "{bundle}");
    let found = matches(&bundle);
    assert_eq!(found[0].0, "p7", "{found:?}");
    assert_eq!(found[0].1, "probable", "{found:?}");
    assert_eq!(found[0].3, "demographics");
    assert!(found[0].2 >= 0.5 && found[0].2 < 0.99, "{found:?}");
    // The evidence, field by field.
    let evidence = bundle["entry"][0]["search"]["extension"]
        .as_array()
        .expect("extensions")
        .iter()
        .find(|x| {
            x["url"]
                .as_str()
                .is_some_and(|u| u.ends_with("/match-evidence"))
        })
        .expect("evidence")
        .clone();
    let field = |name: &str| -> (String, f64) {
        let f = evidence["extension"]
            .as_array()
            .expect("parts")
            .iter()
            .find(|p| p["url"] == "field" && p["extension"][0]["valueCode"] == name)
            .unwrap_or_else(|| panic!("field {name}: {evidence}"));
        (
            f["extension"][1]["valueString"]
                .as_str()
                .expect("level")
                .to_string(),
            f["extension"][2]["valueDecimal"].as_f64().expect("weight"),
        )
    };
    assert_eq!(field("nhs_number"), ("null".to_string(), 0.0));
    assert_eq!(field("family").0, "exact");
    assert!(field("family").1 > 0.0);
    assert_eq!(field("birth_date").0, "exact");
    assert_ne!(field("given").0, "exact");
    assert_eq!(field("postcode").0, "null");

    // A conflicting NHS number never matches, however alike the rest.
    let mut conflicting = patient(&people[9]);
    conflicting["identifier"][0]["value"] = json!(nhs_number(999_990).expect("valid"));
    let (status, bundle) = post(
        &client,
        &url,
        &gp,
        "match-3",
        &parameters(&conflicting, &[]),
    );
    assert_eq!(status, 200, "{bundle}");
    assert!(matches(&bundle).iter().all(|m| m.0 != "p9"), "{bundle}");

    // onlyCertainMatches: one certain match is returned alone; two (one person at two
    // practices) are not returned at all, and the Bundle says why.
    let only = json!({"name": "onlyCertainMatches", "valueBoolean": true});
    let (status, bundle) = post(
        &client,
        &url,
        &gp,
        "match-4",
        &parameters(&patient(&people[5]), std::slice::from_ref(&only)),
    );
    assert_eq!(status, 200, "{bundle}");
    let found = matches(&bundle);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].0.as_str(), found[0].1.as_str()),
        ("p5", "certain")
    );
    let (status, bundle) = post(
        &client,
        &url,
        &gp,
        "match-5",
        &parameters(&patient(&people[10]), &[]),
    );
    assert_eq!(status, 200, "{bundle}");
    let certain: Vec<String> = matches(&bundle)
        .into_iter()
        .filter(|m| m.1 == "certain")
        .map(|m| m.0)
        .collect();
    assert_eq!(certain, vec!["p10".to_string(), "p10-second".to_string()]);
    let (status, bundle) = post(
        &client,
        &url,
        &gp,
        "match-6",
        &parameters(&patient(&people[10]), &[only]),
    );
    assert_eq!(status, 200, "{bundle}");
    assert!(matches(&bundle).is_empty(), "{bundle}");
    assert!(bundle.to_string().contains("multiple-matches"), "{bundle}");

    // count limits the entries; a bad count is a clear 400.
    let (status, bundle) = post(
        &client,
        &url,
        &gp,
        "match-7",
        &parameters(&described, &[json!({"name": "count", "valueInteger": 1})]),
    );
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(matches(&bundle).len(), 1);
    let (status, outcome) = post(
        &client,
        &url,
        &gp,
        "match-8",
        &parameters(&described, &[json!({"name": "count", "valueInteger": 0})]),
    );
    assert_eq!(status, 400, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert!(outcome.to_string().contains("count"), "{outcome}");
    let (status, outcome) = post(
        &client,
        &url,
        &gp,
        "match-9",
        &json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient", "gender": "male"}}]}),
    );
    assert_eq!(status, 400, "{outcome}");
    assert!(
        outcome
            .to_string()
            .contains("NHS number, or at least a name"),
        "{outcome}"
    );

    // Access: a GP outside the PCN has no relationship with p5 and gets no match (not even a
    // hint); a role without demographics is refused.
    let (status, bundle) = post(
        &client,
        &url,
        &outsider,
        "match-10",
        &parameters(&patient(&people[5]), &[]),
    );
    assert_eq!(status, 200, "{bundle}");
    assert!(matches(&bundle).iter().all(|m| m.0 != "p5"), "{bundle}");
    let (status, outcome) = post(
        &client,
        &url,
        &analyst,
        "match-11",
        &parameters(&patient(&people[5]), &[]),
    );
    assert_eq!(status, 403, "{outcome}");

    // One audit record per request, naming the returned patients.
    let of_request = audit_events_of(&client, &server.base, &ig);
    let first = of_request("match-1");
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["subtype"][0]["code"], "$match");
    let named: Vec<&str> = first[0]["entity"]
        .as_array()
        .expect("entities")
        .iter()
        .filter_map(|e| e["what"]["reference"].as_str())
        .filter(|r| r.starts_with("Patient/"))
        .collect();
    assert!(named.contains(&"Patient/p5"), "{named:?}");
    let outsiders = of_request("match-10");
    assert_eq!(outsiders.len(), 1);
    assert!(
        !outsiders[0]["entity"].to_string().contains("Patient/p5"),
        "a patient not returned is not named: {}",
        outsiders[0]
    );
    assert_eq!(of_request("match-11").len(), 1);
}

#[test]
fn the_person_index_links_across_practices_and_queues_duplicates_for_reversible_review() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path();
    let people = population();
    seed(data, &people);
    // The scan covers the whole store: an operator runs it (here: local development).
    {
        let server = Server::spawn(
            keel()
                .args([
                    "serve",
                    "--insecure-no-auth",
                    "--listen",
                    "127.0.0.1:0",
                    "--data",
                ])
                .arg(data)
                .stderr(Stdio::null()),
        );
        let origin = server.base.trim_end_matches("/fhir").to_string();
        let client = Server::client();
        let summary: Value = client
            .post(format!("{origin}/api/identity/scan"))
            .send()
            .expect("scan")
            .json()
            .expect("json");
        assert!(summary["linked"].as_u64() >= Some(1), "{summary}");
        assert!(summary["needs_review"].as_u64() >= Some(1), "{summary}");
        // A second scan changes nothing.
        let again: Value = client
            .post(format!("{origin}/api/identity/scan"))
            .send()
            .expect("scan")
            .json()
            .expect("json");
        assert_eq!(
            (again["linked"].as_u64(), again["needs_review"].as_u64()),
            (Some(0), Some(0)),
            "{again}"
        );
        server.kill();
    }
    let gp = token(data, "R8000", PCN_PRACTICE, "555000000001", "direct-care");
    let receptionist = token(data, "R8009", PCN_PRACTICE, "555000000002", "direct-care");
    let server = serve_with_auth(data);
    let origin = server.base.trim_end_matches("/fhir").to_string();
    let client = Server::client();
    let get = |path: &str, token: &str| -> (u16, Value) {
        let response = client
            .get(format!("{origin}{path}"))
            .bearer_auth(token)
            .send()
            .expect("get");
        (
            response.status().as_u16(),
            response.json().unwrap_or(Value::Null),
        )
    };

    // The person at two practices is linked by the matcher; the Patients are unchanged.
    let (status, linked) = get("/api/identity/links?status=linked&patient=p10", &gp);
    assert_eq!(status, 200, "{linked}");
    let link = &linked["links"][0];
    assert_eq!(
        link["patients"],
        json!(["Patient/p10", "Patient/p10-second"]),
        "{linked}"
    );
    assert_eq!(link["decided_by"], "matcher");
    let (_, p10) = get("/fhir/Patient/p10", &gp);
    assert_eq!(p10["meta"]["versionId"], "1", "{p10}");
    assert!(p10.get("link").is_none());

    // The duplicate within one practice waits for review, with its evidence.
    let (status, queue) = get("/api/identity/links?status=needs-review&patient=p20", &gp);
    assert_eq!(status, 200, "{queue}");
    let pair = queue["links"][0].clone();
    assert_eq!(
        pair["patients"],
        json!(["Patient/p20", "Patient/p20-copy"]),
        "{queue}"
    );
    assert_eq!(pair["same_practice"], true);
    assert!(pair["probability"].as_f64() > Some(0.5), "{pair}");
    assert!(
        pair["evidence"].to_string().contains("birth_date"),
        "{pair}"
    );
    let id = pair["id"].as_str().expect("id").to_string();
    let decide = |token: &str, request_id: &str, body: &Value| {
        post(
            &client,
            &format!("{origin}/api/identity/links/{id}/decision"),
            token,
            request_id,
            body,
        )
    };

    // A decision needs a reason and a role that writes records.
    let (status, outcome) = decide(&gp, "d-0", &json!({"decision": "linked", "reason": " "}));
    assert_eq!(status, 400, "{outcome}");
    let (status, outcome) = decide(
        &receptionist,
        "d-1",
        &json!({"decision": "linked", "reason": "same person"}),
    );
    assert_eq!(status, 403, "{outcome}");

    // Linked, then reversed: each decision with who and why, the history keeps both.
    let (status, first) = decide(
        &gp,
        "d-2",
        &json!({"decision": "linked", "reason": "registered twice; confirmed at the desk"}),
    );
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["status"], "linked");
    assert!(
        first["decided_by"]
            .as_str()
            .is_some_and(|d| d.contains("555000000001")),
        "{first}"
    );
    let (status, second) = decide(
        &gp,
        "d-3",
        &json!({"decision": "not-linked", "reason": "twins: different people"}),
    );
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["status"], "not-linked");
    let (status, history) = get(&format!("/api/identity/links/{id}"), &gp);
    assert_eq!(status, 200, "{history}");
    let decisions: Vec<(&str, &str)> = history["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| {
            (
                d["status"].as_str().unwrap_or(""),
                d["decided_by"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(decisions.len(), 3, "{history}");
    assert_eq!(decisions[0].0, "not-linked");
    assert_eq!(decisions[1].0, "linked");
    assert_eq!(decisions[2], ("needs-review", "matcher"));
    let (_, queue) = get("/api/identity/links?status=needs-review&patient=p20", &gp);
    assert_eq!(queue["total"], 0, "{queue}");
}
