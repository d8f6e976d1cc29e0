//! Keel's own time to render a 5,000-item federated record as a FHIR R4 Bundle of JSON bytes
//! (no I/O). Run with `cargo bench -p keel-api --bench record_render`.
//!
//! The record mixes the sections like a long GP record: 1,500 observations (a third of them
//! blood-pressure panels), 1,200 consultations, 800 medication courses with 3 issues each,
//! 600 problems, 400 immunisations, 300 documents and 200 allergies, every item with full
//! provenance and one source attribute.

use std::hint::black_box;
use std::time::{Duration, Instant as Clock};

use keel_api::record_fhir::record_bundle;
use keel_core::integration::{FederatedRecord, PatientAtPractice, SectionContent};
use keel_model::record::{
    Allergy, AllergyStatus, Consultation, CourseKind, Demographics, Document, Immunisation,
    Medication, MedicationIssue, MedicationStatus, Observation, ObservationComponent,
    ObservationValue, Problem, ProblemStatus, RecordItem, RecordSection, Section, SourceAttribute,
};
use keel_model::{
    ClinicalDate, CodeableConcept, Coding, Decimal, Instant, NhsNumber, OdsCode, Provenance,
    Quantity, SourceSystem,
};

const RUNS: usize = 60;

fn ods() -> OdsCode {
    OdsCode::parse("Y90001").expect("ods")
}

fn date(n: usize) -> ClinicalDate {
    ClinicalDate::parse(&format!(
        "{}-{:02}-{:02}",
        1990 + n % 35,
        1 + n % 12,
        1 + n % 28
    ))
    .expect("date")
}

fn snomed(code: usize, display: &str) -> CodeableConcept {
    CodeableConcept::from_coding(
        Coding::new("http://snomed.info/sct", code.to_string()).with_display(display),
    )
}

fn quantity(value: &str, unit: &str) -> Quantity {
    Quantity::new(Decimal::parse(value).expect("decimal"), unit).with_ucum_code(unit)
}

fn item<T>(section: &str, n: usize, content: T) -> RecordItem<T> {
    RecordItem {
        source_id: format!("{{{section}-{n:08}-guid}}"),
        content,
        provenance: Provenance::new(ods(), SourceSystem::EmisStyle)
            .with_recorded(Instant::parse("2024-03-12T09:30:00Z").expect("instant"))
            .with_retrieved(Instant::parse("2025-06-01T14:05:09+01:00").expect("instant"))
            .with_author("Dr A Example")
            .with_source_version("3"),
        source_attributes: vec![SourceAttribute::new("emis:ConsultationId", n.to_string())],
    }
}

fn items<T>(section: &str, count: usize, make: impl Fn(usize) -> T) -> Vec<RecordItem<T>> {
    (0..count).map(|n| item(section, n, make(n))).collect()
}

fn record() -> FederatedRecord {
    let observations = items("obs", 1500, |n| Observation {
        code: snomed(75_367_002 + n % 40, "Blood pressure"),
        effective: Some(date(n)),
        value: (n % 3 != 0).then(|| ObservationValue::Quantity(quantity("5.4", "mmol/L"))),
        components: if n % 3 == 0 {
            vec![
                ObservationComponent {
                    code: snomed(72_313_002, "Systolic arterial pressure"),
                    value: ObservationValue::Quantity(quantity("138", "mm[Hg]")),
                },
                ObservationComponent {
                    code: snomed(1_091_811_000_000_102, "Diastolic arterial pressure"),
                    value: ObservationValue::Quantity(quantity("84", "mm[Hg]")),
                },
            ]
        } else {
            vec![]
        },
        note: None,
    });
    let consultations = items("enc", 1200, |n| Consultation {
        start: Some(date(n)),
        kind: Some("Surgery consultation".into()),
        clinician: Some("Dr B Jones".into()),
        text: Some("Reviewed. Advice given. Follow up in two weeks if no better.".into()),
    });
    let medications = items("med", 800, |n| Medication {
        medication: snomed(
            39_732_311_000_001_104 + n % 50,
            "Salbutamol 100micrograms/dose",
        ),
        dosage: Some("Two puffs when required".into()),
        quantity: Some(quantity("1", "inhaler")),
        course: CourseKind::Repeat,
        status: MedicationStatus::Active,
        start: Some(date(n)),
        end: None,
        issues: (0..3)
            .map(|i| MedicationIssue {
                date: date(n + i),
                quantity: Some(quantity("1", "inhaler")),
            })
            .collect(),
    });
    let problems = items("prob", 600, |n| Problem {
        code: snomed(38_341_003 + n % 60, "Hypertension"),
        status: ProblemStatus::Active,
        onset: Some(date(n)),
        ended: None,
        significant: Some(n % 2 == 0),
    });
    let immunisations = items("imm", 400, |n| Immunisation {
        vaccine: snomed(822_851_000_000_102, "Seasonal influenza vaccination"),
        date: Some(date(n)),
        product: Some("Fluenz Tetra".into()),
    });
    let documents = items("doc", 300, |n| Document {
        title: format!("Letter {n}"),
        content_type: "application/pdf".into(),
        created: Some(date(n)),
    });
    let allergies = items("alg", 200, |n| Allergy {
        substance: snomed(91_936_005 + n, "Allergy to penicillin"),
        reaction: Some(snomed(271_807_003, "Rash")),
        status: AllergyStatus::Active,
        recorded: Some(date(n)),
    });
    let nhs = NhsNumber::parse("9990000018").expect("nhs");
    FederatedRecord {
        practice: ods(),
        patient: Some((
            PatientAtPractice {
                practice: ods(),
                source_patient_id: "p-1".into(),
                nhs_number: Some(nhs),
            },
            Demographics {
                nhs_number: Some(nhs),
                source_patient_id: "p-1".into(),
                family: Some("Smith".into()),
                given: vec!["Ann".into()],
                birth_date: ClinicalDate::parse("1950-02-03").ok(),
                gender: Some("female".into()),
                postcode: Some("LS1 4AP".into()),
                registered_practice: Some(ods()),
                deceased: None,
            },
        )),
        sections: vec![
            SectionContent::Problems(Section::from_items(
                RecordSection::Problems,
                problems,
                vec![],
            )),
            SectionContent::Medications(Section::from_items(
                RecordSection::Medications,
                medications,
                vec![],
            )),
            SectionContent::Allergies(Section::from_items(
                RecordSection::Allergies,
                allergies,
                vec![],
            )),
            SectionContent::Observations(Section::from_items(
                RecordSection::Observations,
                observations,
                vec![],
            )),
            SectionContent::Immunisations(Section::from_items(
                RecordSection::Immunisations,
                immunisations,
                vec![],
            )),
            SectionContent::Consultations(Section::from_items(
                RecordSection::Consultations,
                consultations,
                vec![],
            )),
            SectionContent::Documents(Section::from_items(
                RecordSection::Documents,
                documents,
                vec![],
            )),
        ],
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Times `run` over [`RUNS`] runs; prints p50 and p99.
fn time(label: &str, mut run: impl FnMut()) {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Clock::now();
            run();
            start.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "record_render: {label}, {RUNS} runs: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3
    );
}

fn main() {
    let record = record();
    let bytes = record_bundle(&record);
    let bundle: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    println!(
        "record_render: 5,000 items -> {} Bundle entries, {} bytes of JSON",
        bundle["entry"].as_array().map_or(0, Vec::len),
        bytes.len()
    );
    time("render to JSON bytes", || {
        black_box(record_bundle(black_box(&record)));
    });
}
