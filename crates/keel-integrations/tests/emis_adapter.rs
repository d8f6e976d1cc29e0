//! The EMIS-style adapter against the EMIS-style simulator over real HTTP: every section mapped
//! and compared with the generated truth, confidential items withheld, empty sections,
//! outages and hangs, and writes (including a dropped answer recognised by its request id).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use keel_core::integration::{
    BookingRequest, DocumentRequest, EntryRequest, FreeSlot, IntegrationError, PatientAtPractice,
    PracticeSystem, SectionContent, TaskRequest, WriteKey,
};
use keel_core::{CorrelationId, RequestContext};
use keel_integrations::emis::{EmisCredentials, EmisSystem};
use keel_integrations::http::Endpoint;
use keel_model::coding::systems;
use keel_model::record::{
    self as canonical, ObservationValue, RecordItem, RecordSection, Section, SectionWarning,
};
use keel_model::{ClinicalDate, CodeableConcept, Coding, Decimal, OdsCode, Quantity, SectionState};
use keel_sim::codes::Concept;
use keel_sim::emis::guid::Guid;
use keel_sim::emis::session::APPLICATION_ID;
use keel_sim::emis::{self, BASE_PATH, EmisSimulator};
use keel_sim::faults::{Action, FaultConfig, FaultHandle};
use keel_sim::model::{
    CodingStyle, ConditionStatus, GpSystem, LegacyScheme, MedicationStatus,
    ObservationValue as Value, PatientRecord, Person,
};
use keel_sim::records::PracticeRecords;
use keel_sim::{Options, Population};

const TIMEOUT: Duration = Duration::from_millis(800);

fn ctx() -> RequestContext {
    RequestContext::local_development(CorrelationId::parse("test-emis-adapter").expect("valid"))
}

/// One small PCN for every test (indexing it is the slow part).
fn records() -> Arc<PracticeRecords> {
    static RECORDS: OnceLock<Arc<PracticeRecords>> = OnceLock::new();
    RECORDS
        .get_or_init(|| {
            Arc::new(PracticeRecords::new(Population::generate(Options {
                patients: 1500,
                practices: 4,
                ..Options::default()
            })))
        })
        .clone()
}

/// The first person whose primary record is active at an EMIS-style practice, has an NHS
/// number and satisfies `wanted`.
fn emis_person(wanted: impl Fn(&PatientRecord) -> bool) -> Person {
    let records = records();
    let pop = records.population();
    pop.persons()
        .find(|p| {
            let r = p.primary();
            pop.pcn().practices[r.practice].system == GpSystem::EmisStyle
                && r.registration.is_active()
                && r.nhs_number.is_some()
                && wanted(r)
        })
        .expect("a matching person")
}

struct Harness {
    adapter: EmisSystem,
    faults: FaultHandle,
}

async fn start(record: &PatientRecord) -> Harness {
    let faults = FaultHandle::default();
    let (addr, _task) = emis::serve(
        EmisSimulator::new(records()),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        faults.clone(),
    )
    .await
    .expect("bind");
    let records = records();
    let practice = &records.population().pcn().practices[record.practice];
    let adapter = EmisSystem::new(
        OdsCode::parse(practice.ods.as_str()).expect("valid"),
        Endpoint::new(format!("http://{addr}{BASE_PATH}"), TIMEOUT),
        EmisCredentials {
            application_id: APPLICATION_ID.into(),
            user_id: practice.staff[0].id.clone(),
        },
    )
    .expect("client");
    Harness { adapter, faults }
}

async fn find(h: &Harness, record: &PatientRecord) -> PatientAtPractice {
    let nhs = record.nhs_number.expect("an NHS number");
    let (patient, _) = h
        .adapter
        .find_patient(&ctx(), nhs)
        .await
        .expect("answer")
        .expect("found");
    patient
}

async fn read(h: &Harness, patient: &PatientAtPractice, section: RecordSection) -> SectionContent {
    h.adapter
        .read_section(&ctx(), patient, section)
        .await
        .unwrap_or_else(|e| panic!("{section:?}: {e}"))
}

fn staff_name(record: &PatientRecord, index: usize) -> String {
    let records = records();
    let staff = &records.population().pcn().practices[record.practice].staff;
    staff[index.min(staff.len() - 1)].name.text()
}

/// The codings the practice recorded for `concept` in `style`: the legacy code first.
fn expected_codings(concept: &Concept, style: CodingStyle) -> Vec<Coding> {
    let mut out = Vec::new();
    if let Some((scheme, (code, term))) = style.legacy(concept) {
        let system = match scheme {
            LegacyScheme::ReadV2 => systems::READ_V2,
            LegacyScheme::Ctv3 => systems::CTV3,
        };
        out.push(Coding::new(system, code).with_display(term));
    }
    if style.has_snomed(concept) {
        out.push(Coding::new(systems::SNOMED_CT, concept.snomed).with_display(concept.display));
    }
    out
}

fn fixed(value: i64, scale: u8) -> String {
    let mut out = Vec::new();
    keel_sim::json::write_fixed(&mut out, value, scale);
    String::from_utf8(out).expect("digits")
}

fn moment(at: keel_sim::date::DateTime) -> String {
    let mut out = Vec::new();
    at.write_to(&mut out);
    String::from_utf8(out).expect("ascii")
}

fn date(d: Option<&ClinicalDate>) -> Option<&str> {
    d.map(ClinicalDate::as_str)
}

fn attr<'a, T>(item: &'a RecordItem<T>, name: &str) -> Option<&'a str> {
    item.source_attributes
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.value.as_str())
}

fn check_provenance<T>(item: &RecordItem<T>, record: &PatientRecord, author: usize) {
    let records = records();
    let practice = &records.population().pcn().practices[record.practice];
    assert_eq!(
        item.provenance.source_organisation.as_str(),
        practice.ods.as_str()
    );
    assert_eq!(
        item.provenance.source_system,
        keel_model::SourceSystem::EmisStyle
    );
    assert!(item.provenance.retrieved.is_some());
    assert_eq!(
        item.provenance.author.as_deref(),
        Some(staff_name(record, author).as_str())
    );
}

fn warned<T>(section: &Section<T>) -> bool {
    section
        .warnings
        .contains(&SectionWarning::ConfidentialItemsWithheld)
}

#[tokio::test]
async fn find_patient_maps_the_active_registrations_demographics() {
    let person = emis_person(|_| true);
    let r = person.primary();
    let h = start(r).await;
    let nhs = r.nhs_number.expect("nhs");
    let (patient, demographics) = h
        .adapter
        .find_patient(&ctx(), nhs)
        .await
        .expect("answer")
        .expect("found");
    assert_eq!(patient.source_patient_id, Guid::named(&r.id).to_string());
    assert_eq!(patient.nhs_number, Some(nhs));
    assert_eq!(demographics.nhs_number, Some(nhs));
    assert_eq!(demographics.family.as_deref(), Some(r.name.family.as_str()));
    assert_eq!(demographics.given, r.name.given);
    assert_eq!(
        date(demographics.birth_date.as_ref()),
        Some(r.birth_date.to_string().as_str())
    );
    assert_eq!(demographics.gender.as_deref(), Some(r.gender.key()));
    assert_eq!(
        demographics.postcode.as_deref(),
        Some(r.address.postcode.as_str())
    );
    assert_eq!(
        demographics.registered_practice.as_ref(),
        Some(&patient.practice)
    );

    let unknown = keel_model::NhsNumber::parse("9990000018").expect("valid");
    assert_eq!(
        h.adapter
            .find_patient(&ctx(), unknown)
            .await
            .expect("answer"),
        None
    );
}

#[tokio::test]
async fn problems_medications_and_allergies_map_to_the_generated_truth() {
    let person = emis_person(|r| {
        let c = &r.clinical;
        c.conditions.iter().any(|p| p.sensitivity.is_none())
            && c.medications
                .iter()
                .any(|m| m.repeat && !m.issues.is_empty())
            && !c.allergies.is_empty()
    });
    let r = person.primary();
    let rid = r.id.as_str();
    let h = start(r).await;
    let patient = find(&h, r).await;

    let SectionContent::Problems(problems) = read(&h, &patient, RecordSection::Problems).await
    else {
        panic!("problems");
    };
    assert_eq!(problems.state, SectionState::Recorded);
    let shared: Vec<_> = r
        .clinical
        .conditions
        .iter()
        .filter(|p| p.sensitivity.is_none())
        .collect();
    assert_eq!(problems.items.len(), shared.len());
    for (item, truth) in problems.items.iter().zip(&shared) {
        assert_eq!(item.source_id, Guid::item(rid, "c", truth.id).to_string());
        assert_eq!(
            item.content.code.codings(),
            expected_codings(truth.concept, truth.coding)
        );
        assert_eq!(
            date(item.content.onset.as_ref()),
            Some(truth.onset.to_string().as_str())
        );
        let (status, ended) = match truth.status {
            ConditionStatus::Active => (canonical::ProblemStatus::Active, None),
            ConditionStatus::Resolved(end) => (
                canonical::ProblemStatus::Inactive,
                Some(end.max(truth.onset).to_string()),
            ),
        };
        assert_eq!(item.content.status, status);
        assert_eq!(date(item.content.ended.as_ref()), ended.as_deref());
        assert_eq!(item.content.significant, Some(truth.chronic));
        assert_eq!(
            attr(item, "emis-style:EnteredDate"),
            Some(truth.recorded.to_string().as_str())
        );
        check_provenance(item, r, truth.clinician);
    }

    let SectionContent::Medications(medications) =
        read(&h, &patient, RecordSection::Medications).await
    else {
        panic!("medications");
    };
    assert_eq!(medications.items.len(), r.clinical.medications.len());
    for (item, truth) in medications.items.iter().zip(&r.clinical.medications) {
        let m = &item.content;
        assert_eq!(item.source_id, Guid::item(rid, "ms", truth.id).to_string());
        let drug = &m.medication.codings()[0];
        assert_eq!(drug.code, truth.drug.code());
        assert!(
            drug.system == systems::DMD
                || drug.system == keel_integrations::emis::map::SYNTHETIC_DMD_SYSTEM,
            "{}",
            drug.system
        );
        assert_eq!(m.dosage.as_deref(), Some(truth.dose));
        let quantity = m.quantity.as_ref().expect("quantity");
        assert_eq!(quantity.value.as_str(), truth.quantity.to_string());
        assert_eq!(quantity.unit.as_deref(), Some(truth.drug.unit));
        assert_eq!(m.course == canonical::CourseKind::Repeat, truth.repeat);
        let status = match truth.status {
            MedicationStatus::Active => canonical::MedicationStatus::Active,
            MedicationStatus::Completed => canonical::MedicationStatus::Completed,
            MedicationStatus::Stopped(_) => canonical::MedicationStatus::Stopped,
        };
        assert_eq!(m.status, status);
        assert_eq!(
            date(m.start.as_ref()),
            Some(truth.start.to_string().as_str())
        );
        let issue_dates: Vec<String> = truth.issues.iter().map(ToString::to_string).collect();
        let mapped: Vec<&str> = m.issues.iter().map(|i| i.date.as_str()).collect();
        assert_eq!(mapped, issue_dates);
        let issue_guids = item
            .source_attributes
            .iter()
            .filter(|a| a.name == "emis-style:Issue.Guid")
            .count();
        assert_eq!(issue_guids, truth.issues.len());
        if truth.repeat {
            assert_eq!(
                attr(item, "emis-style:AuthorisedIssues"),
                Some(truth.authorised_issues.to_string().as_str())
            );
        }
        check_provenance(item, r, truth.clinician);
    }

    let SectionContent::Allergies(allergies) = read(&h, &patient, RecordSection::Allergies).await
    else {
        panic!("allergies");
    };
    assert_eq!(allergies.items.len(), r.clinical.allergies.len());
    for (item, truth) in allergies.items.iter().zip(&r.clinical.allergies) {
        assert_eq!(item.source_id, Guid::item(rid, "a", truth.id).to_string());
        assert_eq!(
            item.content.substance.codings(),
            expected_codings(truth.concept, CodingStyle::Snomed)
        );
        assert_eq!(
            item.content.reaction.as_ref().map(|c| c.codings().to_vec()),
            truth
                .reaction
                .map(|c| expected_codings(c, CodingStyle::Snomed))
        );
        let active = item.content.status == canonical::AllergyStatus::Active;
        assert_eq!(active, truth.active);
        assert_eq!(
            date(item.content.recorded.as_ref()),
            Some(truth.recorded.to_string().as_str())
        );
        assert_eq!(attr(item, "emis-style:Category"), Some(truth.category));
        check_provenance(item, r, truth.clinician);
    }
}

#[tokio::test]
async fn observations_keep_values_units_and_legacy_codes_and_blood_pressure_has_two_components() {
    let person = emis_person(|r| {
        let obs = &r.clinical.observations;
        obs.iter()
            .any(|o| matches!(o.value, Value::BloodPressure { .. }))
            && obs
                .iter()
                .any(|o| matches!(o.value, Value::Quantity { unit: "%", .. }))
            && obs
                .iter()
                .any(|o| o.coding != CodingStyle::Snomed && o.coding.legacy(o.concept).is_some())
    });
    let r = person.primary();
    let h = start(r).await;
    let patient = find(&h, r).await;
    let SectionContent::Observations(events) =
        read(&h, &patient, RecordSection::Observations).await
    else {
        panic!("observations");
    };
    let shared: Vec<_> = r
        .clinical
        .observations
        .iter()
        .filter(|o| o.sensitivity.is_none())
        .collect();
    assert_eq!(events.items.len(), shared.len());
    let (mut legacy, mut percent, mut pressure) = (0, 0, 0);
    for (item, truth) in events.items.iter().zip(&shared) {
        let o = &item.content;
        assert_eq!(item.source_id, Guid::item(&r.id, "o", truth.id).to_string());
        let codings = expected_codings(truth.concept, truth.coding);
        assert_eq!(o.code.codings(), codings);
        assert!(o.code.codings().iter().all(|c| c.origin.is_source()));
        if codings[0].system != systems::SNOMED_CT {
            legacy += 1;
        }
        assert_eq!(
            date(o.effective.as_ref()),
            Some(truth.date.to_string().as_str())
        );
        match truth.value {
            Value::Quantity {
                value,
                scale,
                unit,
                comparator,
            } => {
                let Some(ObservationValue::Quantity(q)) = &o.value else {
                    panic!("a quantity: {o:?}");
                };
                assert_eq!(q.value.as_str(), fixed(i64::from(value), scale));
                assert_eq!(q.unit.as_deref(), Some(unit));
                assert_eq!(q.comparator.map(|c| c.as_code()), comparator);
                if unit == "%" {
                    percent += 1;
                }
            }
            Value::BloodPressure {
                systolic,
                diastolic,
            } => {
                pressure += 1;
                assert_eq!(o.value, None);
                let parts: Vec<(Option<&str>, String)> = o
                    .components
                    .iter()
                    .map(|c| {
                        let Some(ObservationValue::Quantity(q)) = Some(&c.value) else {
                            panic!("a quantity");
                        };
                        assert_eq!(q.unit.as_deref(), Some("mm[Hg]"));
                        (c.code.text.as_deref(), q.value.as_str().to_string())
                    })
                    .collect();
                assert_eq!(
                    parts,
                    [
                        (Some("Systolic"), systolic.to_string()),
                        (Some("Diastolic"), diastolic.to_string())
                    ]
                );
                assert!(o.components[0].code.has(systems::SNOMED_CT, "72313002"));
            }
            Value::None | Value::Text => assert_eq!(o.value, None),
        }
        if truth.laboratory {
            assert_eq!(attr(item, "emis-style:Source"), Some("Laboratory"));
        }
        check_provenance(item, r, truth.clinician);
    }
    assert!(
        legacy > 0 && percent > 0 && pressure > 0,
        "{legacy} {percent} {pressure}"
    );
}

#[tokio::test]
async fn immunisations_and_consultations_map_to_the_generated_truth() {
    let person = emis_person(|r| {
        !r.clinical.immunisations.is_empty()
            && r.clinical
                .consultations
                .iter()
                .filter(|e| !e.confidential)
                .count()
                > 1
    });
    let r = person.primary();
    let h = start(r).await;
    let patient = find(&h, r).await;

    let SectionContent::Immunisations(immunisations) =
        read(&h, &patient, RecordSection::Immunisations).await
    else {
        panic!("immunisations");
    };
    assert_eq!(immunisations.items.len(), r.clinical.immunisations.len());
    for (item, truth) in immunisations.items.iter().zip(&r.clinical.immunisations) {
        assert_eq!(item.source_id, Guid::item(&r.id, "i", truth.id).to_string());
        assert_eq!(
            item.content.vaccine.codings(),
            expected_codings(truth.procedure, CodingStyle::Snomed)
        );
        assert_eq!(
            date(item.content.date.as_ref()),
            Some(truth.date.to_string().as_str())
        );
        assert_eq!(item.content.product.as_deref(), Some(truth.product));
        check_provenance(item, r, truth.clinician);
    }

    let SectionContent::Consultations(consultations) =
        read(&h, &patient, RecordSection::Consultations).await
    else {
        panic!("consultations");
    };
    let shared: Vec<_> = r
        .clinical
        .consultations
        .iter()
        .filter(|e| !e.confidential)
        .collect();
    assert_eq!(consultations.items.len(), shared.len());
    for (item, truth) in consultations.items.iter().zip(&shared) {
        let c = &item.content;
        assert_eq!(item.source_id, Guid::item(&r.id, "e", truth.id).to_string());
        assert_eq!(date(c.start.as_ref()), Some(moment(truth.start).as_str()));
        assert_eq!(
            c.kind.as_deref(),
            Some(keel_sim::emis::request::consultation_type(truth.kind))
        );
        assert_eq!(
            c.clinician.as_deref(),
            Some(staff_name(r, truth.clinician).as_str())
        );
        assert_eq!(c.text.as_deref(), Some(truth.text.as_str()));
        assert_eq!(
            item.provenance.recorded.as_ref().map(|i| i.as_str()),
            Some(moment(truth.start).as_str())
        );
        assert_eq!(
            attr(item, "emis-style:DurationMinutes"),
            Some(truth.minutes.to_string().as_str())
        );
        check_provenance(item, r, truth.clinician);
    }
}

#[tokio::test]
async fn confidential_items_are_withheld_with_a_warning() {
    let person = emis_person(|r| {
        r.clinical
            .conditions
            .iter()
            .any(|p| p.sensitivity.is_some())
            || r.clinical.consultations.iter().any(|e| e.confidential)
    });
    let r = person.primary();
    let h = start(r).await;
    let patient = find(&h, r).await;
    let SectionContent::Problems(problems) = read(&h, &patient, RecordSection::Problems).await
    else {
        panic!("problems");
    };
    let SectionContent::Consultations(consultations) =
        read(&h, &patient, RecordSection::Consultations).await
    else {
        panic!("consultations");
    };
    let hidden_problems: Vec<String> = r
        .clinical
        .conditions
        .iter()
        .filter(|p| p.sensitivity.is_some())
        .map(|p| Guid::item(&r.id, "c", p.id).to_string())
        .collect();
    let hidden_consultations: Vec<String> = r
        .clinical
        .consultations
        .iter()
        .filter(|e| e.confidential)
        .map(|e| Guid::item(&r.id, "e", e.id).to_string())
        .collect();
    assert!(
        problems
            .items
            .iter()
            .all(|i| !hidden_problems.contains(&i.source_id))
    );
    assert!(
        consultations
            .items
            .iter()
            .all(|i| !hidden_consultations.contains(&i.source_id))
    );
    assert_eq!(warned(&problems), !hidden_problems.is_empty());
    assert_eq!(warned(&consultations), !hidden_consultations.is_empty());
    for (section, hidden) in [
        (&problems.state, &hidden_problems),
        (&consultations.state, &hidden_consultations),
    ] {
        if !hidden.is_empty() {
            assert_ne!(section, &SectionState::NothingRecorded);
        }
    }
}

#[tokio::test]
async fn an_empty_section_is_nothing_recorded() {
    let person = emis_person(|r| r.clinical.allergies.is_empty());
    let r = person.primary();
    let h = start(r).await;
    let patient = find(&h, r).await;
    for section in [RecordSection::Allergies, RecordSection::Documents] {
        let content = read(&h, &patient, section).await;
        let state = match &content {
            SectionContent::Allergies(s) => &s.state,
            SectionContent::Documents(s) => &s.state,
            other => panic!("{other:?}"),
        };
        assert_eq!(state, &SectionState::NothingRecorded, "{section:?}");
    }
}

#[tokio::test]
async fn an_outage_is_unavailable_and_a_hang_is_cut_at_the_endpoint_timeout() {
    let person = emis_person(|_| true);
    let r = person.primary();
    let h = start(r).await;
    let patient = find(&h, r).await;

    h.faults
        .set(FaultConfig {
            outage: true,
            ..FaultConfig::default()
        })
        .expect("valid");
    let answer = h
        .adapter
        .read_section(&ctx(), &patient, RecordSection::Problems)
        .await;
    assert!(
        matches!(answer, Err(IntegrationError::Unavailable { .. })),
        "{answer:?}"
    );
    let answer = h
        .adapter
        .find_patient(&ctx(), r.nhs_number.expect("nhs"))
        .await;
    assert!(
        matches!(answer, Err(IntegrationError::Unavailable { .. })),
        "{answer:?}"
    );

    h.faults
        .set(FaultConfig {
            timeout_rate: 1.0,
            hang_ms: 5_000,
            ..FaultConfig::default()
        })
        .expect("valid");
    let started = Instant::now();
    let answer = h
        .adapter
        .read_section(&ctx(), &patient, RecordSection::Problems)
        .await;
    assert!(
        matches!(answer, Err(IntegrationError::Unavailable { ref reason, .. }) if reason.contains("800 ms")),
        "{answer:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2_000),
        "{:?}",
        started.elapsed()
    );
}

fn hba1c_entry(patient: &PatientAtPractice, key: &str) -> EntryRequest {
    EntryRequest {
        key: WriteKey(key.into()),
        patient: patient.clone(),
        date: ClinicalDate::parse("2026-01-04").expect("valid"),
        code: CodeableConcept::from_coding(
            Coding::new(systems::CTV3, "XaERp").with_display("HbA1c level (DCCT aligned)"),
        ),
        value: Some(ObservationValue::Quantity(Quantity::new(
            Decimal::parse("7.1").expect("valid"),
            "%",
        ))),
        text: Some("Fasting".into()),
        author: "Dr Keel".into(),
    }
}

async fn observations(h: &Harness, patient: &PatientAtPractice) -> Section<canonical::Observation> {
    match read(h, patient, RecordSection::Observations).await {
        SectionContent::Observations(s) => s,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn writes_are_made_once_and_read_back() {
    let person = emis_person(|_| true);
    let r = person.primary();
    let h = start(r).await;
    let patient = find(&h, r).await;

    let receipt = h
        .adapter
        .add_entry(&ctx(), &hba1c_entry(&patient, "entry-1"))
        .await
        .expect("written");
    assert_eq!(
        receipt.source_id,
        Guid::named(&format!("{}-w1", r.id)).to_string()
    );
    let written = observations(&h, &patient).await;
    let item = written
        .items
        .iter()
        .find(|i| i.source_id == receipt.source_id)
        .expect("read back");
    assert!(item.content.code.has(systems::CTV3, "XaERp"));
    let Some(ObservationValue::Quantity(q)) = &item.content.value else {
        panic!("a value");
    };
    assert_eq!((q.value.as_str(), q.unit.as_deref()), ("7.1", Some("%")));
    assert_eq!(item.content.note.as_deref(), Some("Fasting"));

    let task = h
        .adapter
        .create_task(
            &ctx(),
            &TaskRequest {
                key: WriteKey("task-1".into()),
                patient: patient.clone(),
                description: "Call back about results".into(),
                urgent: true,
            },
        )
        .await
        .expect("task");
    assert_eq!(
        task.source_id,
        Guid::named(&format!("{}-w2", r.id)).to_string()
    );

    let document = h
        .adapter
        .attach_document(
            &ctx(),
            &DocumentRequest {
                key: WriteKey("doc-1".into()),
                patient: patient.clone(),
                title: "Discharge summary".into(),
                content_type: "text/plain".into(),
                content: b"Hello".to_vec(),
            },
        )
        .await
        .expect("document");
    let SectionContent::Documents(documents) = read(&h, &patient, RecordSection::Documents).await
    else {
        panic!("documents");
    };
    assert_eq!(documents.state, SectionState::Recorded);
    assert_eq!(documents.items[0].source_id, document.source_id);
    assert_eq!(documents.items[0].content.title, "Discharge summary");
    assert_eq!(documents.items[0].content.content_type, "text/plain");
    assert_eq!(attr(&documents.items[0], "emis-style:SizeBytes"), Some("5"));

    let booking = h
        .adapter
        .book_appointment(
            &ctx(),
            &BookingRequest {
                key: WriteKey("book-1".into()),
                patient: patient.clone(),
                slot: FreeSlot {
                    source_id: "slot".into(),
                    start: ClinicalDate::parse("2026-01-06T09:00:00+00:00").expect("valid"),
                    end: ClinicalDate::parse("2026-01-06T09:10:00+00:00").expect("valid"),
                    clinician: None,
                    service: None,
                },
                description: None,
            },
        )
        .await;
    assert!(
        matches!(booking, Err(IntegrationError::NotSupported { .. })),
        "{booking:?}"
    );
}

/// A seed under which, at `rate`, request 0 is dropped after commit and request 1 passes.
fn drop_then_pass_seed() -> FaultConfig {
    (0..10_000)
        .map(|seed| FaultConfig {
            seed,
            drop_response_after_commit: 0.5,
            ..FaultConfig::default()
        })
        .find(|c| {
            c.decide(0, Duration::ZERO).action == Action::DropAfterCommit
                && c.decide(1, Duration::ZERO).action == Action::Pass
        })
        .expect("such a seed")
}

#[tokio::test]
async fn a_dropped_answer_is_recovered_by_resending_the_request_id_and_written_once() {
    let person = emis_person(|_| true);
    let r = person.primary();
    let h = start(r).await;
    let patient = find(&h, r).await;
    let before = observations(&h, &patient).await.items.len();

    h.faults.set(drop_then_pass_seed()).expect("valid");
    let receipt = h
        .adapter
        .add_entry(&ctx(), &hba1c_entry(&patient, "entry-dropped"))
        .await
        .expect("the original answer, on the retry");
    h.faults.reset();
    assert_eq!(
        receipt.source_id,
        Guid::named(&format!("{}-w1", r.id)).to_string()
    );
    let after = observations(&h, &patient).await;
    assert_eq!(after.items.len(), before + 1, "written exactly once");
    assert!(after.items.iter().any(|i| i.source_id == receipt.source_id));
}

#[tokio::test]
async fn an_answer_that_stays_lost_is_outcome_unknown_and_a_refused_connection_sends_nothing() {
    let person = emis_person(|_| true);
    let r = person.primary();
    let h = start(r).await;
    let patient = find(&h, r).await;
    let before = observations(&h, &patient).await.items.len();

    h.faults
        .set(FaultConfig {
            drop_response_after_commit: 1.0,
            ..FaultConfig::default()
        })
        .expect("valid");
    let answer = h
        .adapter
        .add_entry(&ctx(), &hba1c_entry(&patient, "entry-lost"))
        .await;
    assert!(
        matches!(answer, Err(IntegrationError::OutcomeUnknown { .. })),
        "{answer:?}"
    );
    h.faults.reset();
    assert_eq!(
        observations(&h, &patient).await.items.len(),
        before + 1,
        "made once"
    );

    h.faults
        .set(FaultConfig {
            outage: true,
            ..FaultConfig::default()
        })
        .expect("valid");
    let answer = h
        .adapter
        .add_entry(&ctx(), &hba1c_entry(&patient, "entry-outage"))
        .await;
    assert!(
        matches!(answer, Err(IntegrationError::Unavailable { .. })),
        "{answer:?}"
    );
    h.faults.reset();
    assert_eq!(
        observations(&h, &patient).await.items.len(),
        before + 1,
        "nothing more"
    );
}
