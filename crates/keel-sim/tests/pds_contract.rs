//! Contract tests of the PDS simulator over real HTTP.

use std::net::SocketAddr;
use std::path::Path;

use keel_sim::pds::{self, PdsSimulator};
use keel_sim::{Options, Population};
use serde_json::Value;

const REQ_ID: &str = "60E0B220-8136-4CA5-AE46-1D97EF59D068";
/// The NHS PDS example payloads, in the shared assets beside the repository.
fn examples() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fhir-test-assets/uk-pds-examples/Patient");
    assert!(
        dir.is_dir(),
        "the NHS PDS examples are expected at {}",
        dir.display()
    );
    dir
}

async fn start(sim: PdsSimulator) -> String {
    let (addr, _h) = pds::serve(sim, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    format!("http://{addr}{}", pds::BASE_PATH)
}

async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = reqwest::Client::new()
        .get(url)
        .header("X-Request-ID", REQ_ID)
        .header("X-Correlation-ID", "corr-1")
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.expect("json body");
    (status, headers, body)
}

fn spine_code(oo: &Value) -> &str {
    oo.pointer("/issue/0/details/coding/0/code")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn population() -> Vec<Value> {
    let pop = Population::generate(Options {
        patients: 3000,
        practices: 2,
        demographics_only: true,
        ..Options::default()
    });
    pds::from_population(&pop)
}

fn with_conf(all: &[Value], code: &str) -> Value {
    all.iter()
        .find(|p| pds::confidentiality_of(p) == code)
        .unwrap_or_else(|| panic!("a {code} patient in the population"))
        .clone()
}

#[tokio::test]
async fn retrieve_404_400_and_headers() {
    let all = population();
    let u = all
        .iter()
        .find(|p| pds::confidentiality_of(p) == "U" && p.get("generalPractitioner").is_some())
        .expect("U patient")
        .clone();
    let id = u["id"].as_str().expect("id").to_string();
    let base = start(PdsSimulator::new(all)).await;

    let (status, headers, body) = get(&format!("{base}/Patient/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(body, u);
    assert_eq!(headers["etag"], "W/\"1\"");
    assert_eq!(headers["x-request-id"], REQ_ID);
    assert_eq!(headers["x-correlation-id"], "corr-1");
    assert_eq!(
        body["identifier"][0]["system"],
        "https://fhir.nhs.uk/Id/nhs-number"
    );
    assert_eq!(
        body["identifier"][0]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
        "01"
    );
    assert_eq!(
        body["generalPractitioner"][0]["identifier"]["system"],
        "https://fhir.nhs.uk/Id/ods-organization-code"
    );

    let (status, _, body) = get(&format!("{base}/Patient/9111231130")).await;
    assert_eq!((status, spine_code(&body)), (404, "RESOURCE_NOT_FOUND"));
    for bad in ["9000000000", "123", "900000000X"] {
        let (status, _, body) = get(&format!("{base}/Patient/{bad}")).await;
        assert_eq!(
            (status, spine_code(&body)),
            (400, "INVALID_RESOURCE_ID"),
            "{bad}"
        );
    }

    // Missing X-Request-ID.
    let resp = reqwest::get(format!("{base}/Patient/{id}"))
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(spine_code(&body), "MISSING_VALUE");
}

#[tokio::test]
async fn restricted_and_very_restricted_are_redacted() {
    let all = population();
    let r = with_conf(&all, "R");
    let v = with_conf(&all, "V");
    let base = start(PdsSimulator::new(all)).await;

    let (status, _, body) = get(&format!("{base}/Patient/{}", r["id"].as_str().expect("id"))).await;
    assert_eq!(status, 200);
    for f in ["address", "telecom", "generalPractitioner"] {
        assert!(body.get(f).is_none(), "R keeps {f}");
    }
    assert!(body.get("name").is_some() && body.get("birthDate").is_some());

    let (status, _, body) = get(&format!("{base}/Patient/{}", v["id"].as_str().expect("id"))).await;
    assert_eq!(status, 200);
    for f in [
        "address",
        "telecom",
        "generalPractitioner",
        "name",
        "birthDate",
    ] {
        assert!(body.get(f).is_none(), "V keeps {f}");
    }

    // Search finds R by name + DOB, redacted; never with postcode.
    let family = r["name"][0]["family"].as_str().expect("family");
    let dob = r["birthDate"].as_str().expect("dob");
    let (status, _, bundle) =
        get(&format!("{base}/Patient?family={family}&birthdate=eq{dob}")).await;
    assert_eq!(status, 200);
    let entry = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["resource"]["id"] == r["id"])
        .expect("R patient found");
    assert!(entry["resource"].get("address").is_none());
    let pc = r["address"][0]["postalCode"].as_str().expect("postcode");
    let (_, _, bundle) = get(&format!(
        "{base}/Patient?family={family}&birthdate={dob}&address-postalcode={pc}"
    ))
    .await;
    let found = bundle["entry"]
        .as_array()
        .is_some_and(|es| es.iter().any(|e| e["resource"]["id"] == r["id"]));
    assert!(!found, "postcode search returned a restricted patient");
}

#[tokio::test]
async fn search_exact_fuzzy_and_errors() {
    let all = population();
    let u = all
        .iter()
        .find(|p| {
            pds::confidentiality_of(p) == "U"
                && p["name"][0]["family"]
                    .as_str()
                    .is_some_and(|f| f.len() >= 5)
        })
        .expect("U patient")
        .clone();
    let base = start(PdsSimulator::new(all)).await;
    let family = u["name"][0]["family"].as_str().expect("family").to_string();
    let given = u["name"][0]["given"][0]
        .as_str()
        .expect("given")
        .to_string();
    let dob = u["birthDate"].as_str().expect("dob").to_string();
    let gender = u["gender"].as_str().expect("gender").to_string();

    // Exact (non-fuzzy, case-insensitive).
    let (status, _, bundle) = get(&format!(
        "{base}/Patient?family={}&given={given}&gender={gender}&birthdate=eq{dob}&_exact-match=true",
        family.to_uppercase()
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(bundle["type"], "searchset");
    assert_eq!(bundle["entry"][0]["resource"]["id"], u["id"]);
    assert_eq!(bundle["entry"][0]["search"]["score"], 1.0);
    assert!(
        bundle["entry"][0]["fullUrl"]
            .as_str()
            .expect("fullUrl")
            .ends_with(u["id"].as_str().expect("id"))
    );

    // Fuzzy: one-letter typo (swap the last two letters) and an accent.
    let mut typo: Vec<char> = family.chars().collect();
    let n = typo.len();
    typo.swap(n - 1, n - 2);
    let typo: String = typo.into_iter().collect();
    let accented = given.replacen('e', "é", 1).replacen('a', "á", 1);
    let (status, _, bundle) = get(&format!(
        "{base}/Patient?family={typo}&given={accented}&birthdate={dob}&_fuzzy-match=true"
    ))
    .await;
    assert_eq!(status, 200);
    let hit = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["resource"]["id"] == u["id"])
        .expect("fuzzy match");
    let score = hit["search"]["score"].as_f64().expect("score");
    assert!(score > 0.0 && score <= 1.0);
    // Non-fuzzy with the typo finds nothing: an empty searchset.
    if typo.to_lowercase() != family.to_lowercase() {
        let (status, _, bundle) = get(&format!(
            "{base}/Patient?family={typo}&given=Zzzz&birthdate={dob}"
        ))
        .await;
        assert_eq!(status, 200);
        assert_eq!(bundle["total"], 0);
        assert!(bundle.get("entry").is_none());
    }

    // Date range.
    let (_, _, bundle) = get(&format!(
        "{base}/Patient?family={family}&birthdate=ge{dob}&birthdate=le{dob}"
    ))
    .await;
    assert!(
        bundle["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["resource"]["id"] == u["id"])
    );

    // Errors.
    let (status, _, body) = get(&format!("{base}/Patient?family={family}")).await;
    assert_eq!((status, spine_code(&body)), (400, "MISSING_VALUE"));
    let (status, _, body) = get(&format!(
        "{base}/Patient?family={family}&birthdate={dob}&address-postcode=LS1"
    ))
    .await;
    assert_eq!((status, spine_code(&body)), (400, "INVALID_SEARCH_DATA"));
    let (status, _, body) = get(&format!("{base}/Patient?family=*a&birthdate={dob}")).await;
    assert_eq!((status, spine_code(&body)), (400, "INVALID_SEARCH_DATA"));

    // Too many matches: a wildcard over a wide range with _max-results=1.
    let prefix: String = family.chars().take(2).collect();
    let (status, _, body) = get(&format!(
        "{base}/Patient?family={prefix}*&birthdate=ge1900-01-01&_max-results=1"
    ))
    .await;
    if body["resourceType"] == "OperationOutcome" {
        assert_eq!((status, spine_code(&body)), (200, "TOO_MANY_MATCHES"));
    }
}

#[tokio::test]
async fn deceased_and_superseded() {
    let all = population();
    let dead = all
        .iter()
        .find(|p| p.get("deceasedDateTime").is_some() && pds::confidentiality_of(p) == "U")
        .expect("a deceased patient")
        .clone();
    let other = all
        .iter()
        .find(|p| p["id"] != dead["id"] && pds::confidentiality_of(p) == "U")
        .expect("another")
        .clone();
    let sim = PdsSimulator::new(all);
    sim.supersede(
        other["id"].as_str().expect("id"),
        dead["id"].as_str().expect("id"),
    );
    let base = start(sim).await;
    let (status, _, body) = get(&format!(
        "{base}/Patient/{}",
        dead["id"].as_str().expect("id")
    ))
    .await;
    assert_eq!(status, 200);
    assert!(
        body["deceasedDateTime"]
            .as_str()
            .expect("deceased")
            .ends_with("T00:00:00+00:00")
    );
    assert!(body["extension"].as_array().expect("ext").iter().any(|e| e["url"]
        == "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-DeathNotificationStatus"));
    // The superseded number returns the surviving record.
    let (status, _, body) = get(&format!(
        "{base}/Patient/{}",
        other["id"].as_str().expect("id")
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], dead["id"]);
}

#[tokio::test]
async fn nhs_examples_round_trip() {
    let dir = examples();
    let mut examples = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        // The patientResponses are the stored records (searchResponses duplicate their ids).
        if name.starts_with("patientResponses__") {
            let text = std::fs::read_to_string(&path).expect("read");
            examples.push(serde_json::from_str::<Value>(&text).expect("json"));
        }
    }
    assert!(examples.len() >= 10);
    let base = start(PdsSimulator::new(examples.clone())).await;
    for ex in &examples {
        let id = ex["id"].as_str().expect("id");
        let (status, headers, body) = get(&format!("{base}/Patient/{id}")).await;
        assert_eq!(status, 200, "{id}");
        let version = ex["meta"]["versionId"].as_str().expect("version");
        assert_eq!(headers["etag"], format!("W/\"{version}\"").as_str());
        let mut expected = ex.clone();
        match pds::confidentiality_of(ex).as_str() {
            "R" | "V" => {
                for f in ["address", "telecom", "generalPractitioner", "contact"] {
                    expected.as_object_mut().expect("object").remove(f);
                }
            }
            _ => {}
        }
        assert_eq!(body, expected, "{id} served back changed");
    }
    // 9000000009: UK Core extensions intact.
    let (_, _, body) = get(&format!("{base}/Patient/9000000009")).await;
    let urls: Vec<&str> = body["extension"]
        .as_array()
        .expect("ext")
        .iter()
        .filter_map(|e| e["url"].as_str())
        .collect();
    assert!(urls.contains(
        &"https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NominatedPharmacy"
    ));
    assert!(urls.contains(
        &"https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-DeathNotificationStatus"
    ));
    assert!(
        body["address"][0]["extension"][0]["url"]
            .as_str()
            .expect("AddressKey")
            .ends_with("AddressKey")
    );
    // 9000000025 (R) searched by name: found, redacted.
    let (_, _, body) = get(&format!("{base}/Patient/9000000025")).await;
    assert_eq!(body["meta"]["security"][0]["code"], "R");
    assert!(body.get("address").is_none() && body.get("generalPractitioner").is_none());
    let family = body["name"][0]["family"]
        .as_str()
        .expect("family")
        .to_string();
    let dob = body["birthDate"].as_str().expect("dob").to_string();
    let (_, _, bundle) = get(&format!("{base}/Patient?family={family}&birthdate={dob}")).await;
    assert_eq!(bundle["entry"][0]["resource"]["id"], "9000000025");
    // Search of 9000000009 drops the reduced-search extensions.
    let (_, _, bundle) = get(&format!(
        "{base}/Patient?family=Smith&given=Jane&birthdate=2010-10-22"
    ))
    .await;
    let hit = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["resource"]["id"] == "9000000009")
        .expect("found");
    let urls: Vec<&str> = hit["resource"]["extension"]
        .as_array()
        .expect("ext")
        .iter()
        .filter_map(|e| e["url"].as_str())
        .collect();
    assert!(!urls.contains(
        &"https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NominatedPharmacy"
    ));
    assert!(urls.contains(
        &"https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-DeathNotificationStatus"
    ));
}

#[tokio::test]
async fn too_many_matches_v_flag_and_invalidated() {
    let path = examples().join("patientResponses__patient_9000000009.json");
    let text = std::fs::read_to_string(&path).expect("the PDS example for 9000000009");
    let jane: Value = serde_json::from_str(&text).expect("json");
    let mut twin = jane.clone();
    twin["id"] = "9000000017".into();
    let mut very = jane.clone();
    very["id"] = "9434765919".into();
    very["meta"]["security"][0]["code"] = "V".into();
    let mut gone = jane.clone();
    gone["id"] = "9690937286".into();
    gone["meta"]["security"][0]["code"] = "REDACTED".into();
    let base = start(PdsSimulator::new(vec![jane, twin, very, gone])).await;

    let q = "family=smith&given=JANE&birthdate=2010-10-22";
    let (status, _, body) = get(&format!("{base}/Patient?{q}&_max-results=1")).await;
    assert_eq!((status, spine_code(&body)), (200, "TOO_MANY_MATCHES"));
    let (status, _, body) = get(&format!("{base}/Patient?{q}&_max-results=51")).await;
    assert_eq!((status, spine_code(&body)), (400, "INVALID_SEARCH_DATA"));
    let (_, _, bundle) = get(&format!("{base}/Patient?{q}")).await;
    // The V patient matches on its stored name but is returned without it; REDACTED never.
    let ids: Vec<&str> = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str())
        .collect();
    assert_eq!(ids, ["9000000009", "9000000017", "9434765919"]);
    let v = &bundle["entry"][2]["resource"];
    assert!(v.get("name").is_none() && v.get("birthDate").is_none() && v.get("address").is_none());

    let (status, _, body) = get(&format!("{base}/Patient/9434765919")).await;
    assert_eq!(status, 200);
    for f in [
        "name",
        "birthDate",
        "address",
        "telecom",
        "generalPractitioner",
        "contact",
    ] {
        assert!(body.get(f).is_none(), "V keeps {f}");
    }
    let (status, _, body) = get(&format!("{base}/Patient/9690937286")).await;
    assert_eq!((status, spine_code(&body)), (404, "INVALIDATED_RESOURCE"));
}

async fn patch(
    url: &str,
    request_id: &str,
    if_match: Option<&str>,
    content_type: &str,
    body: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new()
        .patch(url)
        .header("X-Request-ID", request_id)
        .header("Content-Type", content_type)
        .body(body.to_string());
    if let Some(tag) = if_match {
        req = req.header("If-Match", tag);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.expect("json body"))
}

const PATCH_TYPE: &str = "application/json-patch+json";
const TO_MALE: &str = r#"{"patches":[{"op":"replace","path":"/gender","value":"male"}]}"#;

#[tokio::test]
async fn update_with_if_match_bumps_the_version_and_is_visible_to_retrieve() {
    let all = population();
    let u = with_conf(&all, "U");
    let id = u["id"].as_str().expect("id").to_string();
    let base = start(PdsSimulator::new(all)).await;
    let url = format!("{base}/Patient/{id}");

    let (status, headers, body) = patch(&url, REQ_ID, Some("W/\"1\""), PATCH_TYPE, TO_MALE).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["etag"], "W/\"2\"");
    assert_eq!(body["gender"], "male");
    assert_eq!(body["meta"]["versionId"], "2");

    let (status, headers, body) = get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(headers["etag"], "W/\"2\"");
    assert_eq!(body["gender"], "male");

    // The same version again is stale now.
    let other = "7D9D7A4C-2E7B-4C68-9A49-1F2D3C4B5A69";
    let (status, _, body) = patch(&url, other, Some("W/\"1\""), PATCH_TYPE, TO_MALE).await;
    assert_eq!(status, 409);
    assert_eq!(spine_code(&body), "RESOURCE_VERSION_MISMATCH");
}

#[tokio::test]
async fn a_retried_update_with_the_same_request_id_is_answered_not_applied_twice() {
    let all = population();
    let u = with_conf(&all, "U");
    let id = u["id"].as_str().expect("id").to_string();
    let base = start(PdsSimulator::new(all)).await;
    let url = format!("{base}/Patient/{id}");
    let add_name = r#"{"patches":[{"op":"add","path":"/name/-","value":{"use":"nickname","family":"Retry"}}]}"#;

    let (first_status, _, first) = patch(&url, REQ_ID, Some("W/\"1\""), PATCH_TYPE, add_name).await;
    let (again_status, _, again) = patch(&url, REQ_ID, Some("W/\"1\""), PATCH_TYPE, add_name).await;
    assert_eq!((first_status, again_status), (200, 200));
    assert_eq!(first, again);
    let (_, _, now) = get(&url).await;
    assert_eq!(now["meta"]["versionId"], "2", "applied once");
    let nicknames = now["name"]
        .as_array()
        .expect("names")
        .iter()
        .filter(|n| n["family"] == "Retry")
        .count();
    assert_eq!(nicknames, 1);

    // The same request id for a different request is refused.
    let (status, _, body) = patch(&url, REQ_ID, Some("W/\"2\""), PATCH_TYPE, TO_MALE).await;
    assert_eq!(status, 400);
    assert_eq!(spine_code(&body), "INVALID_VALUE");
}

/// Target URL ("" = the superseded number), If-Match, Content-Type, body, status, Spine code.
type UpdateCase<'a> = (&'a str, Option<&'a str>, &'a str, &'a str, u16, &'a str);

#[tokio::test]
async fn update_errors() {
    let all = population();
    let u = with_conf(&all, "U");
    let id = u["id"].as_str().expect("id").to_string();
    let sim = PdsSimulator::new(all);
    let survivor = id.clone();
    let old = "9990000018";
    sim.supersede(old, &survivor);
    let base = start(sim).await;
    let url = format!("{base}/Patient/{id}");
    let ids = [
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000003",
        "00000000-0000-4000-8000-000000000004",
        "00000000-0000-4000-8000-000000000005",
        "00000000-0000-4000-8000-000000000006",
        "00000000-0000-4000-8000-000000000007",
    ];
    let cases: [UpdateCase; 7] = [
        (&url, None, PATCH_TYPE, TO_MALE, 412, "PRECONDITION_FAILED"),
        (
            &url,
            Some("1"),
            PATCH_TYPE,
            TO_MALE,
            412,
            "PRECONDITION_FAILED",
        ),
        (
            &url,
            Some("W/\"1\""),
            "application/json",
            TO_MALE,
            400,
            "INVALID_UPDATE",
        ),
        (
            &url,
            Some("W/\"1\""),
            PATCH_TYPE,
            r#"{"patches":[{"op":"move","from":"/a","path":"/b"}]}"#,
            400,
            "INVALID_UPDATE",
        ),
        (
            &url,
            Some("W/\"1\""),
            PATCH_TYPE,
            r#"{"patches":[{"op":"replace","path":"/id","value":"9000000009"}]}"#,
            403,
            "FORBIDDEN_UPDATE",
        ),
        (
            &url,
            Some("W/\"1\""),
            PATCH_TYPE,
            r#"{"patches":[{"op":"replace","path":"/gender","value":"lots"}]}"#,
            400,
            "VALIDATION_ERROR",
        ),
        (
            "",
            Some("W/\"1\""),
            PATCH_TYPE,
            TO_MALE,
            404,
            "RESOURCE_NOT_FOUND",
        ),
    ];
    for (i, (target, tag, ctype, body, want_status, want_code)) in cases.into_iter().enumerate() {
        let target = if target.is_empty() {
            format!("{base}/Patient/{old}")
        } else {
            target.to_string()
        };
        let (status, _, answer) = patch(&target, ids[i], tag, ctype, body).await;
        assert_eq!(status, want_status, "case {i}: {answer}");
        assert_eq!(spine_code(&answer), want_code, "case {i}");
    }
    // Nothing above changed the record.
    let (_, _, now) = get(&url).await;
    assert_eq!(now["meta"]["versionId"], "1");
    assert_eq!(now["gender"], u["gender"]);
}
