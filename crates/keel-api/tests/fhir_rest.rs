//! The FHIR REST API over real HTTP, against the embedded SQLite store.

use keel_api::AppState;
use keel_api::auth::Authentication;
use keel_core::clock::{SequentialIds, SystemClock};
use keel_core::fhir::FhirService;
use keel_store::SqliteStore;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

struct TestServer {
    base: String,
    client: Client,
    _dir: tempfile::TempDir,
}

async fn server_with(max_body: Option<usize>) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open_dir(dir.path()).expect("store");
    let fhir = Arc::new(FhirService::new(
        Arc::new(store),
        Arc::new(SystemClock::default()),
        Arc::new(SequentialIds::new("t")),
    ));
    let mut state = AppState::new(fhir, None, "test".into(), Authentication::Disabled);
    if let Some(max) = max_body {
        state.max_body_bytes = max;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, keel_api::router(Arc::new(state))).await });
    TestServer {
        base: format!("http://{addr}/fhir"),
        client: Client::new(),
        _dir: dir,
    }
}

async fn server() -> TestServer {
    server_with(None).await
}

impl TestServer {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.client.request(method, format!("{}/{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/fhir+json")
                .body(body.to_string());
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"))
        };
        (status, headers, json)
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, _, b) = self.send(reqwest::Method::GET, path, None, &[]).await;
        (s, b)
    }
    async fn post(
        &self,
        path: &str,
        body: Value,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.send(reqwest::Method::POST, path, Some(body), &[])
            .await
    }
    async fn put(
        &self,
        path: &str,
        body: Value,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.send(reqwest::Method::PUT, path, Some(body), &[]).await
    }
}

fn patient(family: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family, "given": ["Ann"]}], "gender": "female", "birthDate": "1970-01-01",
           "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9991234578"}]})
}

fn issue_codes(outcome: &Value) -> Vec<String> {
    outcome["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["code"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_a_capability_statement() {
    let s = server().await;
    let (status, body) = s.get("metadata").await;
    assert_eq!(status, 200);
    assert_eq!(body["resourceType"], "CapabilityStatement");
    assert_eq!(body["fhirVersion"], "4.0.1");
    let patient = body["rest"][0]["resource"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["type"] == "Patient"))
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = patient["searchParam"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.contains(&"family") && names.contains(&"identifier") && names.contains(&"_id"));
    assert!(
        !names.contains(&"_text"),
        "special parameters are not advertised"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_read_update_vread_delete() {
    let s = server().await;
    let (status, headers, created) = s.post("Patient", patient("Smith")).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(headers["etag"], "W/\"1\"");
    assert!(
        headers["location"]
            .to_str()
            .unwrap_or("")
            .ends_with(&format!("/Patient/{id}/_history/1"))
    );
    assert_eq!(created["meta"]["versionId"], "1");

    let (status, read) = s.get(&format!("Patient/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(read, created);

    let mut changed = read.clone();
    changed["gender"] = json!("male");
    let (status, _, updated) = s.put(&format!("Patient/{id}"), changed.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(updated["meta"]["versionId"], "2");

    // A stale If-Match is refused and changes nothing.
    let (status, _, outcome) = s
        .send(
            reqwest::Method::PUT,
            &format!("Patient/{id}"),
            Some(changed.clone()),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(status, 412, "{outcome}");
    assert_eq!(issue_codes(&outcome), vec!["conflict"]);
    let (status, _, _) = s
        .send(
            reqwest::Method::PUT,
            &format!("Patient/{id}"),
            Some(changed),
            &[("if-match", "W/\"2\"")],
        )
        .await;
    assert_eq!(status, 200);

    let (status, v1) = s.get(&format!("Patient/{id}/_history/1")).await;
    assert_eq!(
        (status, v1["gender"].clone()),
        (StatusCode::OK, json!("female"))
    );

    let (status, _, _) = s
        .send(reqwest::Method::DELETE, &format!("Patient/{id}"), None, &[])
        .await;
    assert_eq!(status, 204);
    let (status, gone) = s.get(&format!("Patient/{id}")).await;
    assert_eq!(status, 410);
    assert_eq!(issue_codes(&gone), vec!["deleted"]);
    let (status, history) = s.get(&format!("Patient/{id}/_history")).await;
    assert_eq!(status, 200);
    assert_eq!(history["total"], 4);
    assert_eq!(history["entry"][0]["request"]["method"], "DELETE");
    assert_eq!(history["entry"][3]["request"]["method"], "POST");
    let (status, _) = s.get("Patient/unknown-id").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_creates_with_a_client_id_and_checks_ids() {
    let s = server().await;
    let mut p = patient("Jones");
    p["id"] = json!("client-1");
    let (status, _, body) = s.put("Patient/client-1", p.clone()).await;
    assert_eq!(
        (status, body["id"].clone()),
        (StatusCode::CREATED, json!("client-1"))
    );
    let (status, _, outcome) = s.put("Patient/other", p).await;
    assert_eq!(status, 400, "{outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_resources_get_422_with_locations_and_nothing_is_stored() {
    let s = server().await;
    let bad = json!({"resourceType": "Patient", "gender": "unknown-gender", "name": {"family": "x"}, "foo": 1});
    let (status, _, outcome) = s.post("Patient", bad).await;
    assert_eq!(status, 422, "{outcome}");
    let expressions: Vec<String> = outcome["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|i| i["expression"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect();
    assert!(
        expressions.iter().any(|e| e.starts_with("Patient.gender")),
        "{expressions:?}"
    );
    assert!(
        expressions.iter().any(|e| e.starts_with("Patient.name")),
        "{expressions:?}"
    );
    assert!(
        expressions.iter().any(|e| e.starts_with("Patient.foo")),
        "{expressions:?}"
    );
    let (_, all) = s.get("Patient?_summary=count").await;
    assert_eq!(all["total"], 0);

    let (status, _, outcome) = s.send(reqwest::Method::POST, "Patient", None, &[]).await;
    assert_eq!(status, 400, "{outcome}");
    let response = s
        .client
        .post(format!("{}/Patient", s.base))
        .header("content-type", "application/fhir+json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 400);
    let (status, outcome) = s.get("Nonsense/1").await;
    assert_eq!(status, 404);
    assert_eq!(issue_codes(&outcome), vec!["not-supported"]);
    let (status, _, _) = s.post("Observation", patient("wrong-type")).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decimals_and_unknown_extensions_are_kept_exactly() {
    let s = server().await;
    let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "temp"},
        "valueQuantity": {"value": 37.50, "unit": "C"},
        "extension": [{"url": "https://example.org/unknown", "valueDecimal": 1.000}]});
    let text = r#"{"resourceType":"Observation","status":"final","code":{"text":"temp"},"valueQuantity":{"value":37.50,"unit":"C"},"extension":[{"url":"https://example.org/unknown","valueDecimal":1.000}]}"#;
    let response = s
        .client
        .post(format!("{}/Observation", s.base))
        .header("content-type", "application/json")
        .body(text)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 201);
    let stored = response.text().await.expect("text");
    assert!(
        stored.contains(r#""value":37.50"#) && stored.contains(r#""valueDecimal":1.000"#),
        "{stored}"
    );
    let _ = obs;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_conditional_creates_leave_one_resource() {
    let s = Arc::new(server().await);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let (status, _, body) = s
                .send(
                    reqwest::Method::POST,
                    "Patient",
                    Some(patient("Race")),
                    &[(
                        "if-none-exist",
                        "identifier=https://fhir.nhs.uk/Id/nhs-number|9991234578",
                    )],
                )
                .await;
            (status, body["id"].as_str().map(str::to_string))
        }));
    }
    let results: Vec<(StatusCode, Option<String>)> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    assert_eq!(
        results.iter().filter(|(s, _)| *s == 201).count(),
        1,
        "{results:?}"
    );
    assert_eq!(results.iter().filter(|(s, _)| *s == 200).count(), 49);
    let ids: std::collections::HashSet<_> = results.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(ids.len(), 1);
    let (_, found) = s
        .get("Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9991234578")
        .await;
    assert_eq!(found["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_update_and_delete() {
    let s = server().await;
    let (status, _, first) = s
        .send(
            reqwest::Method::PUT,
            "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9991234578",
            Some(patient("A")),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{first}");
    let (status, _, second) = s
        .send(
            reqwest::Method::PUT,
            "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9991234578",
            Some(patient("B")),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["meta"]["versionId"], "2");
    s.post("Patient", patient("C")).await;
    let (status, _, outcome) = s
        .send(
            reqwest::Method::PUT,
            "Patient?given=Ann",
            Some(patient("D")),
            &[],
        )
        .await;
    assert_eq!(status, 412, "{outcome}");
    assert_eq!(issue_codes(&outcome), vec!["multiple-matches"]);
    let (status, _, _) = s
        .send(reqwest::Method::DELETE, "Patient?family=C", None, &[])
        .await;
    assert_eq!(status, 204);
    let (_, remaining) = s.get("Patient?_summary=count").await;
    assert_eq!(remaining["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_patch() {
    let s = server().await;
    let (_, _, created) = s.post("Patient", patient("Patchme")).await;
    let id = created["id"].as_str().unwrap_or_default();
    let ops = json!([{"op": "replace", "path": "/gender", "value": "other"}, {"op": "add", "path": "/active", "value": true}]);
    let response = s
        .client
        .patch(format!("{}/Patient/{id}", s.base))
        .header("content-type", "application/json-patch+json")
        .body(ops.to_string())
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        (
            body["gender"].clone(),
            body["active"].clone(),
            body["meta"]["versionId"].clone()
        ),
        (json!("other"), json!(true), json!("2"))
    );
    let bad = json!([{"op": "replace", "path": "/gender", "value": "not-a-gender"}]);
    let response = s
        .client
        .patch(format!("{}/Patient/{id}", s.base))
        .header("content-type", "application/json-patch+json")
        .body(bad.to_string())
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_return_and_formats() {
    let s = server().await;
    let (status, headers, body) = s
        .send(
            reqwest::Method::POST,
            "Patient",
            Some(patient("Min")),
            &[("prefer", "return=minimal")],
        )
        .await;
    assert_eq!((status, body), (StatusCode::CREATED, Value::Null));
    assert!(headers.contains_key("location"));
    let (_, _, body) = s
        .send(
            reqwest::Method::POST,
            "Patient",
            Some(patient("Oo")),
            &[("prefer", "return=OperationOutcome")],
        )
        .await;
    assert_eq!(body["resourceType"], "OperationOutcome");
    let (status, _) = s.get("Patient?_format=xml").await;
    assert_eq!(status, 406);
    let (status, _) = s.get("Patient?_format=json").await;
    assert_eq!(status, 200);
    let (status, _, _) = s
        .send(
            reqwest::Method::GET,
            "Patient",
            None,
            &[("accept", "application/fhir+xml")],
        )
        .await;
    assert_eq!(status, 406);
    let (status, _) = s.get("Patient/").await;
    assert_eq!(status, 200, "trailing slash on the type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    let s = server_with(Some(1024)).await;
    let mut big = patient("Big");
    big["text"] = json!({"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>", "x".repeat(4096))});
    let (status, _, outcome) = s.post("Patient", big).await;
    assert_eq!(status, 413, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_search_parameters_warn_or_fail_under_strict_handling() {
    let s = server().await;
    let (status, body) = s.get("Patient?nonsense=1").await;
    assert_eq!(status, 200);
    let outcome = body["entry"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["search"]["mode"] == "outcome"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(outcome["resource"]["issue"][0]["severity"], "warning");
    let (status, _, outcome) = s
        .send(
            reqwest::Method::GET,
            "Patient?nonsense=1",
            None,
            &[("prefer", "handling=strict")],
        )
        .await;
    assert_eq!(status, 400, "{outcome}");
    let (status, _) = s.get("Patient?birthdate=not-a-date").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_rewrite_references_and_are_atomic() {
    let s = server().await;
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111", "resource": patient("Tx"), "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222", "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"}}, "request": {"method": "POST", "url": "Observation"}}
    ]});
    let (status, _, response) = s.post("", bundle).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["type"], "transaction-response");
    assert_eq!(response["entry"][1]["response"]["status"], "201 Created");
    let location = response["entry"][0]["response"]["location"]
        .as_str()
        .unwrap_or_default();
    let patient_ref = location
        .split("/_history")
        .next()
        .unwrap_or_default()
        .to_string();
    let (_, obs) = s.get(&format!("Observation?subject={patient_ref}")).await;
    assert_eq!(obs["total"], 1);

    // A conditional reference resolves inside the transaction.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "y"},
            "subject": {"reference": "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9991234578"}}, "request": {"method": "POST", "url": "Observation"}}
    ]});
    let (status, _, response) = s.post("", bundle).await;
    assert_eq!(status, 200, "{response}");
    let (_, obs) = s.get(&format!("Observation?subject={patient_ref}")).await;
    assert_eq!(obs["total"], 2);

    // One bad entry: nothing of the transaction is stored, and the entry is named.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient("Atomic"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "bogus", "code": {"text": "z"}}, "request": {"method": "POST", "url": "Observation"}}
    ]});
    let (status, _, outcome) = s.post("", bundle).await;
    assert_eq!(status, 422, "{outcome}");
    assert!(outcome.to_string().contains("Bundle.entry[1]"), "{outcome}");
    let (_, found) = s.get("Patient?family=Atomic").await;
    assert_eq!(found["total"], 0);

    // A batch reports each entry on its own.
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": patient("BatchOk"), "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "bogus", "code": {"text": "z"}}, "request": {"method": "POST", "url": "Observation"}}
    ]});
    let (status, _, response) = s.post("", bundle).await;
    assert_eq!(status, 200);
    assert_eq!(response["entry"][0]["response"]["status"], "201 Created");
    assert_eq!(
        response["entry"][1]["response"]["status"],
        "422 Unprocessable Entity"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_features() {
    let s = server().await;
    let mut ids = Vec::new();
    for (family, birth) in [
        ("Alpha", "1950-05-01"),
        ("Beta", "1960-05-01"),
        ("Gamma", "1970-05-01"),
    ] {
        let mut p = patient(family);
        p["birthDate"] = json!(birth);
        let (_, _, body) = s.post("Patient", p).await;
        ids.push(body["id"].as_str().unwrap_or_default().to_string());
    }
    let (_, _, org) = s
        .post(
            "Organization",
            json!({"resourceType": "Organization", "name": "Practice"}),
        )
        .await;
    let org_id = org["id"].as_str().unwrap_or_default();
    for (i, id) in ids.iter().enumerate() {
        let obs = json!({"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
            "subject": {"reference": format!("Patient/{id}")}, "performer": [{"reference": format!("Organization/{org_id}")}],
            "effectiveDateTime": format!("201{i}-01-01"), "valueQuantity": {"value": 120 + i, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}});
        s.post("Observation", obs).await;
    }
    let cases: &[(&str, u64)] = &[
        ("Patient?family=alp", 1),
        ("Patient?family:exact=Alpha", 1),
        ("Patient?family:exact=alpha", 0),
        ("Patient?family:contains=amm", 1),
        ("Patient?birthdate=ge1960", 2),
        ("Patient?birthdate=lt1960-05-01", 1),
        ("Patient?birthdate=1960-05", 1),
        ("Patient?family=Alpha,Beta", 2),
        ("Patient?gender:not=male", 3),
        ("Patient?telecom:missing=true", 3),
        ("Observation?code=http://loinc.org|8480-6", 3),
        ("Observation?code=|8480-6", 0),
        ("Observation?value-quantity=gt120.5", 2),
        (
            "Observation?value-quantity=121|http://unitsofmeasure.org|mm[Hg]",
            1,
        ),
        ("Observation?subject:Patient.family=Beta", 1),
        ("Observation?patient.birthdate=ge1960", 2),
        ("Patient?_has:Observation:subject:date=2012", 1),
        ("Observation?date=ge2011&patient.family=Gamma", 1),
        ("Observation?performer:Organization.name=Prac", 3),
        ("Patient?_id=does-not-exist", 0),
    ];
    for (query, expected) in cases {
        let (status, body) = s.get(query).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(body["total"], *expected, "{query}");
    }
    let (_, sorted) = s.get("Patient?_sort=-birthdate").await;
    let families: Vec<&str> = sorted["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["name"][0]["family"].as_str())
        .collect();
    assert_eq!(families, vec!["Gamma", "Beta", "Alpha"]);

    let (_, included) = s
        .get("Observation?_include=Observation:subject&_include=Observation:performer")
        .await;
    let modes: Vec<&str> = included["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["search"]["mode"].as_str())
        .collect();
    assert_eq!(modes.iter().filter(|m| **m == "match").count(), 3);
    assert_eq!(modes.iter().filter(|m| **m == "include").count(), 4);
    let (_, rev) = s
        .get(&format!(
            "Patient?_id={}&_revinclude=Observation:subject",
            ids[0]
        ))
        .await;
    assert_eq!(rev["entry"].as_array().map(Vec::len), Some(2));

    // Paging: pages are disjoint and complete.
    let (_, page1) = s.get("Observation?_count=2&_sort=date").await;
    let next = page1["link"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
        .and_then(|l| l["url"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(next.contains("_offset=2"), "{page1}");
    let page2: Value = s
        .client
        .get(&next)
        .send()
        .await
        .expect("next")
        .json()
        .await
        .expect("json");
    assert_eq!(page2["entry"].as_array().map(Vec::len), Some(1));
    assert!(
        !page2["link"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|l| l["relation"] == "next")
    );

    // POST _search with a form body.
    let response = s
        .client
        .post(format!("{}/Patient/_search", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("family=Beta")
        .send()
        .await
        .expect("post search");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["total"], 1);

    let (_, count) = s.get("Observation?_summary=count").await;
    assert_eq!(
        (
            count["total"].clone(),
            count["entry"].as_array().map(Vec::len)
        ),
        (json!(3), Some(0))
    );

    let (status, everything) = s.get(&format!("Patient/{}/$everything", ids[1])).await;
    assert_eq!(status, 200);
    let types: Vec<&str> = everything["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["resourceType"].as_str())
        .collect();
    assert_eq!(types, vec!["Patient", "Observation", "Organization"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_and_system_history_with_since_and_count() {
    let s = server().await;
    for f in ["H1", "H2", "H3"] {
        s.post("Patient", patient(f)).await;
    }
    s.post(
        "Organization",
        json!({"resourceType": "Organization", "name": "O"}),
    )
    .await;
    let (_, history) = s.get("Patient/_history").await;
    assert_eq!(history["total"], 3);
    let (_, system) = s.get("_history?_count=2").await;
    assert_eq!(system["total"], 4);
    assert_eq!(system["entry"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        system["entry"][0]["resource"]["resourceType"],
        "Organization"
    );
    let (_, none) = s.get("_history?_since=2999-01-01").await;
    assert_eq!(none["total"], 0);
}
