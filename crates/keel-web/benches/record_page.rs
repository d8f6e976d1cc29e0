//! Keel's own time to render the record page (HTML, no I/O): a typical record (about 150
//! entries) and a 5,000-entry record. Run with `cargo bench -p keel-web --bench record_page`.
//! Targets: typical p95 < 50 ms; 5,000 entries < 200 ms.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keel_core::fhir::RecordAccess;
use keel_core::integration::{FederatedRecord, PatientAtPractice, SectionContent};
use keel_model::record::{
    Allergy, AllergyStatus, Consultation, CourseKind, Demographics, Document, Immunisation,
    Medication, MedicationIssue, MedicationStatus, Observation, ObservationComponent,
    ObservationValue, Problem, ProblemStatus, RecordItem, RecordSection, Section,
};
use keel_model::{
    ClinicalDate, CodeableConcept, Coding, Decimal, Instant, NhsNumber, OdsCode, Provenance,
    Quantity, SourceSystem,
};
use keel_web::record_page::{RecordPage, render};

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

fn snomed(code: &str, display: &str) -> CodeableConcept {
    CodeableConcept::from_coding(Coding::new("http://snomed.info/sct", code).with_display(display))
}

fn quantity(value: &str, unit: &str) -> Quantity {
    Quantity::new(Decimal::parse(value).expect("decimal"), unit)
}

fn items<T>(count: usize, make: impl Fn(usize) -> T) -> Vec<RecordItem<T>> {
    (0..count)
        .map(|n| RecordItem {
            source_id: format!("item-{n}"),
            content: make(n),
            provenance: Provenance::new(ods(), SourceSystem::EmisStyle)
                .with_recorded(Instant::parse("2024-03-12T09:30:00Z").expect("instant"))
                .with_retrieved(Instant::parse("2025-06-01T14:05:09+01:00").expect("instant")),
            source_attributes: Vec::new(),
        })
        .collect()
}

/// A record of `scale` × (30% observations, 24% consultations, 16% medications, 12% problems,
/// 8% immunisations, 6% documents, 4% allergies) entries.
fn record(total: usize) -> FederatedRecord {
    let share = |percent: usize| total * percent / 100;
    let observations = items(share(30), |n| {
        if n % 3 == 0 {
            Observation {
                code: snomed("75367002", "Blood pressure"),
                effective: Some(date(n)),
                value: None,
                components: vec![
                    ObservationComponent {
                        code: snomed("72313002", "Systolic arterial pressure"),
                        value: ObservationValue::Quantity(quantity("138", "mm[Hg]")),
                    },
                    ObservationComponent {
                        code: snomed("1091811000000102", "Diastolic arterial pressure"),
                        value: ObservationValue::Quantity(quantity("84", "mm[Hg]")),
                    },
                ],
                note: None,
            }
        } else {
            Observation {
                code: snomed("999791000000106", "HbA1c level"),
                effective: Some(date(n)),
                value: Some(ObservationValue::Quantity(quantity("48", "mmol/mol"))),
                components: Vec::new(),
                note: None,
            }
        }
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
                items(share(12), |n| Problem {
                    code: snomed("38341003", "Hypertension"),
                    status: ProblemStatus::Active,
                    onset: Some(date(n)),
                    ended: None,
                    significant: Some(true),
                }),
                vec![],
            )),
            SectionContent::Medications(Section::from_items(
                RecordSection::Medications,
                items(share(16), |n| Medication {
                    medication: snomed(
                        "39732311000001104",
                        "Salbutamol 100micrograms/dose inhaler",
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
                            quantity: None,
                        })
                        .collect(),
                }),
                vec![],
            )),
            SectionContent::Allergies(Section::from_items(
                RecordSection::Allergies,
                items(share(4), |n| Allergy {
                    substance: snomed("91936005", "Allergy to penicillin"),
                    reaction: Some(snomed("271807003", "Rash")),
                    status: AllergyStatus::Active,
                    recorded: Some(date(n)),
                }),
                vec![],
            )),
            SectionContent::Observations(Section::from_items(
                RecordSection::Observations,
                observations,
                vec![],
            )),
            SectionContent::Immunisations(Section::from_items(
                RecordSection::Immunisations,
                items(share(8), |n| Immunisation {
                    vaccine: snomed("822851000000102", "Seasonal influenza vaccination"),
                    date: Some(date(n)),
                    product: Some("Fluenz Tetra".into()),
                }),
                vec![],
            )),
            SectionContent::Consultations(Section::from_items(
                RecordSection::Consultations,
                items(share(24), |n| Consultation {
                    start: Some(date(n)),
                    kind: Some("Surgery consultation".into()),
                    clinician: Some("Dr B Jones".into()),
                    text: Some(
                        "Reviewed. Advice given. Follow up in two weeks if no better.".into(),
                    ),
                }),
                vec![],
            )),
            SectionContent::Documents(Section::from_items(
                RecordSection::Documents,
                items(share(6), |n| Document {
                    title: format!("Letter {n}"),
                    content_type: "application/pdf".into(),
                    created: Some(date(n)),
                }),
                vec![],
            )),
        ],
    }
}

fn bench(c: &mut Criterion) {
    let access = RecordAccess::everything_permitted(&RecordSection::ALL);
    for (name, entries) in [
        ("record_page_150_entries", 150),
        ("record_page_5000_entries", 5000),
    ] {
        let record = record(entries);
        let page = RecordPage {
            nhs_number: NhsNumber::parse("9990000018").expect("nhs"),
            access: &access,
            record: &record,
            practice_name: "The Demo Practice",
            now_unix: 1_748_800_000,
        };
        c.bench_function(name, |b| b.iter(|| black_box(render(black_box(&page)))));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
