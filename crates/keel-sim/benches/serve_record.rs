//! Benchmark: each GP-system simulator serves a 5,000-entry record over real HTTP (issue 3:
//! p50 under 20 ms, no injected latency).
//!
//! For the default PCN (40,000 patients, seed 1) it picks the first patient with 5,000 to
//! 5,999 entries at an EMIS-style and at a TPP-style practice whom GP Connect may serve
//! (regular, active, verified, unrestricted), then times sequential requests from one client
//! on loopback: GP Connect `$gpc.getstructuredrecord` with every clinical area and the Access
//! Record HTML encounters view, the EMIS-style
//! full record extract, and the TPP-style journal. Time is request sent to body received.
//!
//! `cargo bench -p keel-sim --bench serve_record` (or `scripts/bench-sim-serve.sh`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_sim::emis::{self, EmisSimulator, guid::Guid};
use keel_sim::faults::FaultHandle;
use keel_sim::gpconnect::{self, GpConnectSimulator, jwt};
use keel_sim::model::{
    Confidentiality, GpSystem, NhsNumberStatus, PatientRecord, Person, RegistrationType,
};
use keel_sim::records::{PracticeRecords, RecordRef};
use keel_sim::tpp::{self, TppSimulator, rows};
use keel_sim::{Options, Population};
use serde_json::json;

const WARM_UP: usize = 5;
const SAMPLES: usize = 60;
/// The simulated "now" for GP Connect tokens: 2026-01-05, the population's as-of date.
const NOW: i64 = 1_767_600_000;
const STRUCTURED: &str =
    "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1";
const CARE_RECORD: &str = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getcarerecord";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

fn servable(r: &PatientRecord) -> bool {
    r.registration.is_active()
        && r.death_date.is_none()
        && r.registration.kind == RegistrationType::Regular
        && r.nhs_status == NhsNumberStatus::Verified
        && r.confidentiality == Confidentiality::Unrestricted
        && (5_000..6_000).contains(&r.clinical.entry_count())
}

fn pick(records: &PracticeRecords, system: GpSystem) -> Person {
    let population = records.population();
    population
        .persons()
        .find(|p| {
            population.pcn().practices[p.primary().practice].system == system
                && servable(p.primary())
        })
        .expect("a 5,000-entry record at such a practice in the default PCN")
}

struct Timing {
    p50: Duration,
    p99: Duration,
    bytes: usize,
}

async fn time(request: impl Fn() -> reqwest::RequestBuilder) -> Timing {
    let mut times = Vec::with_capacity(SAMPLES);
    let mut bytes = 0;
    for i in 0..WARM_UP + SAMPLES {
        let started = Instant::now();
        let response = request().send().await.expect("send");
        assert!(response.status().is_success(), "{}", response.status());
        bytes = response.bytes().await.expect("body").len();
        if i >= WARM_UP {
            times.push(started.elapsed());
        }
    }
    times.sort_unstable();
    Timing {
        p50: times[times.len() / 2],
        p99: times[(times.len() * 99 / 100).min(times.len() - 1)],
        bytes,
    }
}

fn report(name: &str, person: &Person, t: &Timing) {
    println!(
        "{name:<44} {:>6} entries {:>9} bytes  p50 {:>6.2} ms  p99 {:>6.2} ms",
        person.primary().clinical.entry_count(),
        t.bytes,
        t.p50.as_secs_f64() * 1000.0,
        t.p99.as_secs_f64() * 1000.0
    );
}

async fn run() {
    let records = Arc::new(PracticeRecords::new(Population::generate(
        Options::default(),
    )));
    let emis_person = pick(&records, GpSystem::EmisStyle);
    let tpp_person = pick(&records, GpSystem::TppStyle);
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let client = reqwest::Client::new();

    // GP Connect: the EMIS-style practice's patient, every clinical area.
    let gp_connect = GpConnectSimulator::new(records.clone());
    gp_connect.set_now(Some(NOW));
    let (at, _g) = gpconnect::serve(gp_connect.clone(), any, FaultHandle::default())
        .await
        .expect("bind");
    let practice = emis_person.primary().practice;
    let root = gp_connect.service_root(practice).expect("root").to_string();
    let asid = gp_connect.asid(practice).expect("asid").to_string();
    let nhs = emis_person
        .primary()
        .nhs_number
        .expect("nhs")
        .as_str()
        .to_string();
    let parameters = vec![
        json!({"name": "patientNHSNumber", "valueIdentifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}}),
        json!({"name": "includeAllergies", "part": [{"name": "includeResolvedAllergies", "valueBoolean": true}]}),
        json!({"name": "includeMedication", "part": [{"name": "includePrescriptionIssues", "valueBoolean": true}]}),
        json!({"name": "includeConsultations"}),
        json!({"name": "includeImmunisations"}),
        json!({"name": "includeUncategorisedData"}),
        json!({"name": "includeInvestigations"}),
        json!({"name": "includeReferrals"}),
    ];
    let body = json!({"resourceType": "Parameters", "parameter": parameters}).to_string();
    let claims = json!({
        "iss": "https://consumer.example/", "sub": "10019",
        "aud": format!("https://provider.example{root}"),
        "iat": NOW - 10, "exp": NOW - 10 + 300,
        "reason_for_request": "directcare", "requested_scope": "patient/*.read conf/N",
        "requesting_device": {"resourceType": "Device", "identifier": [{"system": "https://consumer.example/device", "value": "bench"}], "model": "keel-bench", "version": "1"},
        "requesting_organization": {"resourceType": "Organization", "name": "Bench", "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A11111"}]},
        "requesting_practitioner": {"resourceType": "Practitioner", "id": "10019", "name": [{"family": "Bench", "given": ["Clinician"]}],
            "identifier": [{"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "111111111"}, {"system": "https://fhir.nhs.uk/Id/sds-role-profile-id", "value": "22222222"}]},
    });
    let token = format!("Bearer {}", jwt::encode_unsigned(&claims));
    let url = format!("http://{at}{root}/Patient/$gpc.getstructuredrecord");
    let gpc = time(|| {
        client
            .post(&url)
            .header("Ssp-TraceID", "09a01679-2564-0fb4-5129-aecc81ea2706")
            .header("Ssp-From", "200000000359")
            .header("Ssp-To", &asid)
            .header("Ssp-InteractionID", STRUCTURED)
            .header("Authorization", &token)
            .header("Accept", "application/fhir+json")
            .header("Content-Type", "application/fhir+json")
            .body(body.clone())
    })
    .await;

    // GP Connect Access Record HTML: the encounters view (the largest).
    let care = json!({"resourceType": "Parameters", "parameter": [
        {"name": "patientNHSNumber", "valueIdentifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}},
        {"name": "recordSection", "valueCodeableConcept": {"coding": [{"system": "http://fhir.nhs.net/ValueSet/gpconnect-record-section-1", "code": "ENC"}]}},
    ]})
    .to_string();
    let url = format!("http://{at}{root}/Patient/$gpc.getcarerecord");
    let html = time(|| {
        client
            .post(&url)
            .header("Ssp-TraceID", "09a01679-2564-0fb4-5129-aecc81ea2706")
            .header("Ssp-From", "200000000359")
            .header("Ssp-To", &asid)
            .header("Ssp-InteractionID", CARE_RECORD)
            .header("Authorization", &token)
            .header("Accept", "application/fhir+json")
            .header("Content-Type", "application/fhir+json")
            .body(care.clone())
    })
    .await;

    // EMIS-style: the full record extract.
    let (at, _e) = emis::serve(
        EmisSimulator::new(records.clone()),
        any,
        FaultHandle::default(),
    )
    .await
    .expect("bind");
    let pcn = records.population().pcn();
    let ods = &pcn.practices[practice].ods;
    let base = format!("http://{at}{}/practices/{ods}", emis::BASE_PATH);
    let login = client
        .post(format!("{base}/sessions"))
        .header(
            emis::session::APPLICATION_HEADER,
            emis::session::APPLICATION_ID,
        )
        .body(format!(
            "<Login><UserId>{}</UserId></Login>",
            pcn.practices[practice].staff[0].id
        ))
        .send()
        .await
        .expect("login")
        .text()
        .await
        .expect("session");
    let session = login
        .split("<SessionToken>")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .expect("a session token")
        .to_string();
    let url = format!(
        "{base}/patients/{}/record",
        Guid::named(&emis_person.primary().id)
    );
    let emis_timing = time(|| {
        client
            .get(&url)
            .header(
                emis::session::APPLICATION_HEADER,
                emis::session::APPLICATION_ID,
            )
            .header(emis::session::SESSION_HEADER, &session)
    })
    .await;

    // TPP-style: the journal.
    let (at, _t) = tpp::serve(
        TppSimulator::new(records.clone()),
        any,
        FaultHandle::default(),
    )
    .await
    .expect("bind");
    let tpp_ods = &pcn.practices[tpp_person.primary().practice].ods;
    let row = rows::patient_row(RecordRef {
        person: tpp_person.index,
        record: 0,
    });
    let url = format!(
        "http://{at}{}/{tpp_ods}/patients/{row}/journal",
        tpp::BASE_PATH
    );
    let tpp_timing = time(|| {
        client
            .get(&url)
            .header(
                tpp::session::APPLICATION_HEADER,
                tpp::session::APPLICATION_ID,
            )
            .header(
                tpp::session::SESSION_HEADER,
                tpp::session::SENSITIVE_SESSION,
            )
    })
    .await;

    println!(
        "serving one 5,000-entry record, {SAMPLES} sequential requests after {WARM_UP} warm-up, loopback:"
    );
    report(
        "GP Connect $gpc.getstructuredrecord (all)",
        &emis_person,
        &gpc,
    );
    report(
        "GP Connect $gpc.getcarerecord (ENC, HTML)",
        &emis_person,
        &html,
    );
    report("EMIS-style record extract", &emis_person, &emis_timing);
    report("TPP-style journal", &tpp_person, &tpp_timing);
}
