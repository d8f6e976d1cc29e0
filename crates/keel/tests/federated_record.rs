//! End to end, with the real binaries over real HTTP: `keel sim serve` runs the simulated PCN
//! (PDS, GP Connect, EMIS-style, TPP-style) and writes its practice connections; `keel serve
//! --connections` registers them; a module reads patients' records through `$record` and the
//! practice directory through `/api/practices`, where a probe finds GP Connect appointments
//! switched off at the EMIS-style practice. Neither the log of the whole scenario nor the
//! `/metrics` text at its end carries a patient identifier, name or date of birth.

mod common;

use keel_api::record_fhir::{ITEM_PROVENANCE_URL, SOURCE_ATTRIBUTE_URL};
use keel_sim::model::{
    Confidentiality, GpSystem, NhsNumberStatus, PatientRecord, RegistrationType,
};
use keel_sim::{Options, Population};
use serde_json::Value;

const PATIENTS: u64 = 1500;
const PRACTICES: usize = 4;

/// Patients every route will serve, one per system, with problems and medications, and the
/// ODS code of the EMIS-style patient's practice.
fn patients() -> (PatientRecord, PatientRecord, String) {
    let population = Population::generate(Options {
        patients: PATIENTS,
        practices: PRACTICES,
        ..Options::default()
    });
    let pick = |system: GpSystem| {
        population
            .persons()
            .map(|p| p.primary().clone())
            .find(|r| {
                population.pcn().practices[r.practice].system == system
                    && r.registration.is_active()
                    && r.death_date.is_none()
                    && r.registration.kind == RegistrationType::Regular
                    && r.nhs_status == NhsNumberStatus::Verified
                    && r.confidentiality == Confidentiality::Unrestricted
                    && r.clinical.conditions.len() > 1
                    && !r.clinical.medications.is_empty()
            })
            .expect("such a patient")
    };
    let emis = pick(GpSystem::EmisStyle);
    let emis_ods = population.pcn().practices[emis.practice]
        .ods
        .as_str()
        .to_string();
    (emis, pick(GpSystem::TppStyle), emis_ods)
}

fn nhs(r: &PatientRecord) -> String {
    r.nhs_number.expect("an NHS number").as_str().to_string()
}

fn resources<'a>(bundle: &'a Value, kind: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == kind)
        .collect()
}

fn has_extension(resource: &Value, url: &str) -> bool {
    resource["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["url"] == url)
}

#[test]
fn a_module_reads_records_across_suppliers_and_sees_gaps_honestly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let connections = dir.path().join("connections.json");
    let (emis_patient, tpp_patient, emis_ods) = patients();
    let switched_off = format!("{emis_ods}:appointments");
    let sims = common::Simulators::start(
        PATIENTS,
        PRACTICES,
        &connections,
        &["--gp-connect-disable", &switched_off],
    );
    let pds = sims.url("keel sim: PDS listening on ");
    let tpp_origin = sims.origin("keel sim: TPP-style listening on ");
    let log = dir.path().join("keel.log");
    let data = dir.path().join("data");
    let server = common::start_with(
        &data,
        &log,
        &[
            "--connections",
            connections.to_str().expect("utf-8 path"),
            "--pds-url",
            &pds,
        ],
    );
    let client = common::Server::client();
    let origin = server.base.trim_end_matches("/fhir").to_string();

    // The practice directory: every practice with its capability profile.
    let practices: Value = client
        .get(format!("{origin}/api/practices"))
        .send()
        .expect("get")
        .json()
        .expect("json");
    assert_eq!(practices.as_array().map(Vec::len), Some(PRACTICES));
    for p in practices.as_array().into_iter().flatten() {
        assert_eq!(p["version"], 1);
        assert!(
            p["capabilities"]["operations"]
                .as_array()
                .is_some_and(|o| o.len() == 14)
        );
        let local = &p["connection"]["local_configuration"];
        if let Some(token) = local.get("tpp-style.session-token") {
            assert_eq!(token, "(set)", "secrets are masked");
        }
    }

    // Probing the EMIS-style practice reads GP Connect's CapabilityStatement: appointments are
    // switched off there, so booking is refused naming it; the supplier API cannot be asked.
    let probed = client
        .post(format!("{origin}/api/practices/{emis_ods}/probe"))
        .send()
        .expect("post");
    assert_eq!(probed.status(), 200);
    let profile: Value = probed.json().expect("json");
    assert_eq!(
        profile["probes"].as_array().map(Vec::len),
        Some(1),
        "{profile}"
    );
    assert_eq!(profile["probes"][0]["interface"], "gp-connect");
    assert!(profile["probes"][0]["probed_at"].is_string());
    let offered = profile["probes"][0]["offered"].to_string();
    assert!(offered.contains("read-problems") && !offered.contains("book-appointment"));
    let shown: Value = client
        .get(format!("{origin}/api/practices/{emis_ods}/capabilities"))
        .send()
        .expect("get")
        .json()
        .expect("json");
    assert_eq!(shown["operations"], profile["operations"]);
    let booking = profile["operations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["operation"] == "book-appointment")
        .expect("listed");
    assert_eq!(booking["support"], "not-supported");
    assert!(
        booking["reason"]
            .as_str()
            .is_some_and(|r| r.contains("the gp-connect CapabilityStatement does not offer it")),
        "{booking}"
    );

    // The EMIS-style patient's record, by NHS number, through the supplier API.
    let url = format!(
        "{}/Patient/$record?identifier=https://fhir.nhs.uk/Id/nhs-number|{}&section=problems,medications",
        server.base,
        nhs(&emis_patient)
    );
    let response = client.get(&url).send().expect("get");
    assert_eq!(response.status(), 200);
    let bundle: Value = response.json().expect("json");
    assert_eq!(bundle["type"], "collection");
    let lists = resources(&bundle, "List");
    assert_eq!(lists.len(), 2);
    assert!(
        lists
            .iter()
            .all(|l| l["entry"].as_array().is_some_and(|e| !e.is_empty()))
    );
    let conditions = resources(&bundle, "Condition");
    assert_eq!(conditions.len(), emis_patient.clinical.conditions.len());
    for c in &conditions {
        assert!(
            c["meta"]["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("emis-style#"))
        );
        assert!(has_extension(c, ITEM_PROVENANCE_URL), "{c}");
    }
    let item_resources: Vec<&Value> = ["Condition", "MedicationStatement"]
        .iter()
        .flat_map(|k| resources(&bundle, k))
        .collect();
    assert!(
        item_resources
            .iter()
            .any(|r| has_extension(r, SOURCE_ATTRIBUTE_URL)),
        "an unmapped supplier field survives as a source attribute"
    );

    // Switching GP Connect off at the TPP-style practice: a new version, and booking is refused
    // by the capability profile, naming why.
    let tpp_ods = practices
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["connection"]["system"] == "tpp-style")
        .and_then(|p| p["connection"]["ods"].as_str())
        .expect("a TPP-style practice")
        .to_string();
    let mut connection: Value = client
        .get(format!("{origin}/api/practices/{tpp_ods}"))
        .send()
        .expect("get")
        .json::<Value>()
        .expect("json")["connection"]
        .clone();
    // Secrets come back masked; the real ones are in the connections file.
    let real: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&connections).expect("file")).expect("json");
    connection["local_configuration"] = real
        .iter()
        .find(|c| c["ods"] == tpp_ods.as_str())
        .expect("the practice")["local_configuration"]
        .clone();
    for i in connection["interfaces"].as_array_mut().expect("interfaces") {
        if i["interface"] == "gp-connect" {
            i["enabled"] = Value::Bool(false);
        }
    }
    let put = client
        .put(format!(
            "{origin}/api/practices/{tpp_ods}?reason=GP%20Connect%20suspended"
        ))
        .header("If-Match", "W/\"1\"")
        .body(connection.to_string())
        .send()
        .expect("put");
    assert_eq!(put.status(), 200);
    let stale = client
        .put(format!("{origin}/api/practices/{tpp_ods}"))
        .header("If-Match", "W/\"1\"")
        .body(connection.to_string())
        .send()
        .expect("put");
    assert_eq!(stale.status(), 412);
    let profile: Value = client
        .get(format!("{origin}/api/practices/{tpp_ods}/capabilities"))
        .send()
        .expect("get")
        .json()
        .expect("json");
    let booking = profile["operations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["operation"] == "book-appointment")
        .expect("listed");
    assert_eq!(booking["support"], "not-supported");
    assert!(
        booking["reason"]
            .as_str()
            .is_some_and(|r| r.contains("gp-connect is disabled"))
    );
    let history: Value = client
        .get(format!("{origin}/api/practices/{tpp_ods}/history"))
        .send()
        .expect("get")
        .json()
        .expect("json");
    assert_eq!(history.as_array().map(Vec::len), Some(2));
    assert_eq!(history[1]["reason"], "GP Connect suspended");

    // The TPP-style practice in an outage: every section unavailable, said in FHIR terms.
    let outage = client
        .put(format!("{tpp_origin}/_admin/faults"))
        .header("content-type", "application/json")
        .body(r#"{"outage": true}"#)
        .send()
        .expect("put faults");
    assert_eq!(outage.status(), 200);
    let url = format!(
        "{}/Patient/$record?identifier=https://fhir.nhs.uk/Id/nhs-number|{}",
        server.base,
        nhs(&tpp_patient)
    );
    let bundle: Value = client.get(&url).send().expect("get").json().expect("json");
    let lists = resources(&bundle, "List");
    assert_eq!(lists.len(), 7);
    for l in &lists {
        assert!(
            l.get("entry").is_none(),
            "an unavailable section is never a list of items"
        );
        assert_eq!(l["emptyReason"]["coding"][0]["code"], "unavailable", "{l}");
    }
    assert!(!resources(&bundle, "OperationOutcome").is_empty());
    client
        .post(format!("{tpp_origin}/_admin/faults/reset"))
        .send()
        .expect("reset");

    // Refusals say what is wrong.
    let bad = client
        .get(format!(
            "{}/Patient/$record?identifier=https://fhir.nhs.uk/Id/nhs-number|123",
            server.base
        ))
        .send()
        .expect("get");
    assert_eq!(bad.status(), 400);
    let unknown = client
        .get(format!(
            "{}/Patient/$record?identifier=https://fhir.nhs.uk/Id/nhs-number|9990000018",
            server.base
        ))
        .send()
        .expect("get");
    assert_eq!(unknown.status(), 422);

    // Readiness lists every connection; the metrics count every adapter call by practice,
    // interface, operation and outcome, and every request by route shape.
    let ready = client
        .get(format!("{origin}/health/ready"))
        .send()
        .expect("get");
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().expect("json");
    // Two interfaces per practice, less GP Connect switched off at the TPP-style one.
    assert_eq!(
        ready["connections"].as_array().map(Vec::len),
        Some(2 * PRACTICES - 1)
    );
    let metrics = client
        .get(format!("{origin}/metrics"))
        .send()
        .expect("get")
        .text()
        .expect("text");
    for expected in [
        r#"interface="emis-style",operation="read-problems",outcome="ok""#,
        r#"interface="tpp-style",operation="find-patient",outcome="unavailable""#,
        r#"keel_http_requests_total{method="GET",route="/fhir/Patient/$record",status="200"}"#,
    ] {
        assert!(metrics.contains(expected), "{expected} not in\n{metrics}");
    }

    server.kill();
    let text = std::fs::read_to_string(&log).expect("log");
    let traced: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("keel::integration") && l.contains("practice system call"))
        .collect();
    assert!(!traced.is_empty(), "every adapter call is traced");
    for field in [
        "correlation_id=",
        "practice=",
        "interface=",
        "operation=",
        "outcome=",
        "latency_ms=",
    ] {
        assert!(
            traced.iter().all(|l| l.contains(field)),
            "{field} in {traced:?}"
        );
    }
    for patient in [&emis_patient, &tpp_patient] {
        let birth = patient.birth_date.to_string();
        for secret in [nhs(patient), patient.name.family.clone(), birth] {
            assert!(!text.contains(&secret), "the log contains {secret}");
            assert!(!metrics.contains(&secret), "the metrics contain {secret}");
        }
        for given in &patient.name.given {
            assert!(!metrics.contains(given), "the metrics contain {given}");
        }
    }
}
