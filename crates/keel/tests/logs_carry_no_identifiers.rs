//! Invariant: no patient identifier or name appears in the logs, whatever the requests carry.

mod common;

use serde_json::json;

#[test]
fn request_logs_carry_no_patient_identifiers() {
    let data = tempfile::tempdir().expect("tempdir");
    let log = data.path().join("keel.log");
    let server = common::start_logging_to(data.path(), &log);
    let client = common::Server::client();
    let nhs = "9991234578";
    let family = "Zebedee-Quintrell";
    let patient = json!({"resourceType": "Patient", "id": "pat-zq", "name": [{"family": family, "given": ["Ottoline"]}], "birthDate": "1931-02-28",
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}]});
    let put = client
        .put(format!("{}/Patient/pat-zq", server.base))
        .header("content-type", "application/fhir+json")
        .body(patient.to_string())
        .send()
        .expect("put");
    assert_eq!(put.status(), 201);
    for url in [
        format!(
            "{}/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}",
            server.base
        ),
        format!(
            "{}/Patient?family={family}&birthdate=1931-02-28",
            server.base
        ),
        format!("{}/Patient/pat-zq", server.base),
        format!("{}/Patient/{nhs}", server.base),
        format!("{}/Patient?family:bogus={family}", server.base),
        format!("{}/{family}/{nhs}", server.base),
    ] {
        let _ = client.get(url).send().expect("get");
    }
    let bad = json!({"resourceType": "Patient", "name": [{"family": family}], "gender": nhs});
    let _ = client
        .post(format!("{}/Patient", server.base))
        .header("content-type", "application/fhir+json")
        .body(bad.to_string())
        .send()
        .expect("post");
    server.kill();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.matches("request").count() >= 8,
        "requests are logged: {text}"
    );
    for secret in [nhs, family, "Ottoline", "1931-02-28", "pat-zq"] {
        assert!(!text.contains(secret), "the log contains {secret}:\n{text}");
    }
}
