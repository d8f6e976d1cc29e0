//! The same patient's record through two routes maps to the same canonical content: an
//! EMIS-style practice's patient through the EMIS-style API and through GP Connect, a TPP-style
//! practice's patient through the TPP-style API and through GP Connect (so all three routes
//! agree). Compared per section, as multisets of clinically meaningful keys; what each mapping
//! documents as different (unit coding, display texts, source attributes, provenance, ids) is
//! left out of the keys.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use keel_core::integration::{Interface, PracticeConnection, SectionContent};
use keel_core::{CorrelationId, RequestContext};
use keel_integrations::directory::Directory;
use keel_integrations::gpconnect::request::Consumer;
use keel_model::coding::systems;
use keel_model::record::{ObservationValue, RecordSection};
use keel_model::{CodeableConcept, OdsCode};
use keel_sim::connections::{self, SimulatorAddresses};
use keel_sim::faults::FaultHandle;
use keel_sim::model::{
    Confidentiality, GpSystem, NhsNumberStatus, PatientRecord, RegistrationType,
};
use keel_sim::records::PracticeRecords;
use keel_sim::{Options, Population, emis, gpconnect, tpp};

fn ctx() -> RequestContext {
    RequestContext::local_development(CorrelationId::parse("test-cross-route").expect("valid"))
}

async fn connections() -> (Arc<PracticeRecords>, Vec<PracticeConnection>) {
    let records = Arc::new(PracticeRecords::new(Population::generate(Options {
        patients: 1500,
        practices: 4,
        ..Options::default()
    })));
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let gp = gpconnect::GpConnectSimulator::new(records.clone());
    let (gp_at, _g) = gpconnect::serve(gp.clone(), any, FaultHandle::default())
        .await
        .expect("bind");
    let (emis_at, _e) = emis::serve(
        emis::EmisSimulator::new(records.clone()),
        any,
        FaultHandle::default(),
    )
    .await
    .expect("bind");
    let (tpp_at, _t) = tpp::serve(
        tpp::TppSimulator::new(records.clone()),
        any,
        FaultHandle::default(),
    )
    .await
    .expect("bind");
    let json = connections::for_pcn(
        records.population().pcn(),
        &gp,
        SimulatorAddresses {
            gp_connect: gp_at,
            emis: emis_at,
            tpp: tpp_at,
        },
        5_000,
    );
    (records, serde_json::from_value(json).expect("connections"))
}

fn directory(connections: &[PracticeConnection], supplier_enabled: bool) -> Directory {
    let consumer = Consumer {
        asid: "200000000359".into(),
        endpoint: "https://keel.example/".into(),
        organisation: OdsCode::parse("U12345").expect("valid"),
        product: "keel".into(),
        version: "test".into(),
    };
    let directory = Directory::open(consumer, None, None).expect("open");
    for c in connections {
        let mut c = c.clone();
        for i in &mut c.interfaces {
            if i.interface != Interface::GpConnect {
                i.enabled = supplier_enabled;
            }
        }
        directory.register(&ctx(), c, None, None).expect("register");
    }
    directory
}

/// Patients with a rich record whom every route serves.
fn patients(records: &PracticeRecords, system: GpSystem, n: usize) -> Vec<PatientRecord> {
    let population = records.population();
    population
        .persons()
        .map(|p| p.primary().clone())
        .filter(|r| {
            population.pcn().practices[r.practice].system == system
                && r.registration.is_active()
                && r.death_date.is_none()
                && r.registration.kind == RegistrationType::Regular
                && r.nhs_status == NhsNumberStatus::Verified
                && r.confidentiality == Confidentiality::Unrestricted
                && r.clinical.entry_count() > 40
        })
        .take(n)
        .collect()
}

/// The codes of a concept as `system|code`, sorted — translations left out, and LOINC (GP
/// Connect providers send it beside SNOMED CT; the supplier APIs carry none — documented).
fn codes(concept: &CodeableConcept) -> String {
    let mut codes: Vec<String> = concept
        .originals()
        .filter(|c| c.system != systems::LOINC)
        .map(|c| {
            // dm+d ids travel under either system (see keel_model::coding::systems::DMD).
            let system = if c.system == systems::DMD {
                systems::SNOMED_CT
            } else {
                c.system.as_str()
            };
            format!("{system}|{}", c.code)
        })
        .collect();
    codes.sort();
    codes.join(" ")
}

fn value(v: &Option<ObservationValue>) -> String {
    match v {
        Some(ObservationValue::Quantity(q)) => format!(
            "{}{} {}",
            q.comparator.map(|c| c.as_code()).unwrap_or(""),
            q.value.as_str(),
            // Unit text as recorded: UCUM's `mm[Hg]` and the suppliers' `mmHg` are one unit.
            q.unit
                .as_deref()
                .or(q.code.as_deref())
                .unwrap_or("")
                .replace(['[', ']'], "")
        ),
        Some(ObservationValue::Text(t)) => format!("text:{t}"),
        Some(ObservationValue::Concept(c)) => format!("concept:{}", codes(c)),
        None => String::new(),
    }
}

fn date(d: &Option<keel_model::ClinicalDate>) -> String {
    d.as_ref()
        .map(|d| d.date_part().to_string())
        .unwrap_or_default()
}

/// The section's state and its items' keys, counted.
fn keys(section: &SectionContent) -> (String, BTreeMap<String, usize>) {
    let mut keys: Vec<String> = Vec::new();
    let state = match section {
        SectionContent::Problems(s) => {
            keys.extend(s.items.iter().map(|i| {
                let p = &i.content;
                format!(
                    "{} {:?} {} {}",
                    codes(&p.code),
                    p.status,
                    date(&p.onset),
                    date(&p.ended)
                )
            }));
            &s.state
        }
        SectionContent::Medications(s) => {
            keys.extend(s.items.iter().map(|i| {
                let m = &i.content;
                format!(
                    "{} {:?} {:?} {} issues:{}",
                    codes(&m.medication),
                    m.course,
                    m.status,
                    date(&m.start),
                    m.issues.len()
                )
            }));
            &s.state
        }
        SectionContent::Allergies(s) => {
            keys.extend(s.items.iter().map(|i| {
                let a = &i.content;
                format!(
                    "{} {:?} {}",
                    codes(&a.substance),
                    a.status,
                    date(&a.recorded)
                )
            }));
            &s.state
        }
        SectionContent::Observations(s) => {
            keys.extend(s.items.iter().map(|i| {
                let o = &i.content;
                let components: Vec<String> = o
                    .components
                    .iter()
                    .map(|c| value(&Some(c.value.clone())))
                    .collect();
                format!(
                    "{} {} {} [{}]",
                    codes(&o.code),
                    date(&o.effective),
                    value(&o.value),
                    components.join(", ")
                )
            }));
            &s.state
        }
        SectionContent::Immunisations(s) => {
            keys.extend(
                s.items
                    .iter()
                    .map(|i| format!("{} {}", codes(&i.content.vaccine), date(&i.content.date))),
            );
            &s.state
        }
        SectionContent::Consultations(s) => {
            keys.extend(s.items.iter().map(|i| date(&i.content.start)));
            &s.state
        }
        SectionContent::Documents(s) => &s.state,
    };
    let mut counted = BTreeMap::new();
    for k in keys {
        *counted.entry(k).or_insert(0) += 1;
    }
    (format!("{state:?}"), counted)
}

/// The sections both routes can give (GP Connect offers no documents).
const COMPARED: [RecordSection; 6] = [
    RecordSection::Problems,
    RecordSection::Medications,
    RecordSection::Allergies,
    RecordSection::Observations,
    RecordSection::Immunisations,
    RecordSection::Consultations,
];

async fn compare(system: GpSystem) {
    let (records, connections) = connections().await;
    let supplier = directory(&connections, true);
    let gp_connect = directory(&connections, false);
    let chosen = patients(&records, system, 3);
    assert!(!chosen.is_empty());
    for patient in chosen {
        let nhs = patient.nhs_number.expect("NHS number");
        let ods = records.population().pcn().practices[patient.practice]
            .ods
            .clone();
        let a = supplier
            .record(&ctx(), nhs, Some(ods.clone()), &COMPARED)
            .await
            .expect("supplier route");
        let b = gp_connect
            .record(&ctx(), nhs, Some(ods), &COMPARED)
            .await
            .expect("GP Connect route");
        assert!(!a.is_partial() && !b.is_partial(), "{a:?}\n{b:?}");
        for (x, y) in a.sections.iter().zip(&b.sections) {
            let (x_state, x_keys) = keys(x);
            let (y_state, y_keys) = keys(y);
            let only_supplier: Vec<_> = x_keys
                .iter()
                .filter(|(k, n)| y_keys.get(*k) != Some(n))
                .collect();
            let only_gp_connect: Vec<_> = y_keys
                .iter()
                .filter(|(k, n)| x_keys.get(*k) != Some(n))
                .collect();
            assert!(
                x_state == y_state && only_supplier.is_empty() && only_gp_connect.is_empty(),
                "{:?} of a {system:?} patient differs:\n supplier {x_state} only: {only_supplier:#?}\n GP Connect {y_state} only: {only_gp_connect:#?}",
                x.section()
            );
        }
    }
}

#[tokio::test]
async fn an_emis_style_patient_reads_the_same_through_the_emis_style_api_and_gp_connect() {
    compare(GpSystem::EmisStyle).await;
}

#[tokio::test]
async fn a_tpp_style_patient_reads_the_same_through_the_tpp_style_api_and_gp_connect() {
    compare(GpSystem::TppStyle).await;
}
