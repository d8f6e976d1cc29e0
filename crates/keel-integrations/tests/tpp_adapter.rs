//! The TPP-style adapter against the TPP-style simulator over real HTTP: every section mapped
//! and compared with the generated truth, confidential entries withheld, empty sections,
//! patient lookup, writes (with lost answers checked by `ExternalReference`), and failures
//! classified within the endpoint timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_core::integration::{
    BookingRequest, DocumentRequest, EntryRequest, FreeSlot, IntegrationError, PatientAtPractice,
    PracticeSystem, SectionContent, TaskRequest, WriteKey,
};
use keel_core::{CorrelationId, RequestContext};
use keel_integrations::http::Endpoint;
use keel_integrations::tpp::map::SYNTHETIC_DMD_SYSTEM;
use keel_integrations::tpp::{TppCredentials, TppSystem};
use keel_model::coding::systems;
use keel_model::record::{
    AllergyStatus, CourseKind, MedicationStatus, ObservationValue, ProblemStatus, RecordItem,
    RecordSection, Section,
};
use keel_model::{
    ClinicalDate, CodeableConcept, Coding, Comparator, Decimal, NhsNumber, OdsCode, Quantity,
    SectionState, SourceSystem,
};
use keel_sim::codes::{CodeOrigin, Concept};
use keel_sim::faults::{Action, FaultConfig, FaultHandle, Latency};
use keel_sim::model::{self, CodingStyle, GpSystem, LegacyScheme, PatientRecord, RecordRole};
use keel_sim::records::PracticeRecords;
use keel_sim::tpp::rows::{RowKind, item_row, patient_row};
use keel_sim::tpp::{self, TppSimulator, session};
use keel_sim::{Options, Population};

const TIMEOUT: Duration = Duration::from_millis(800);

fn ctx() -> RequestContext {
    RequestContext::local_development(CorrelationId::parse("test-tpp-adapter").expect("valid"))
}

struct Fixture {
    records: Arc<PracticeRecords>,
    practice: usize,
    ods: OdsCode,
}

fn fixture() -> Fixture {
    let records = Arc::new(PracticeRecords::new(Population::generate(Options {
        patients: 2_500,
        practices: 4,
        ..Options::default()
    })));
    let pcn = records.population().pcn();
    let practice = pcn
        .practices
        .iter()
        .find(|p| p.system == GpSystem::TppStyle)
        .expect("a TPP-style practice");
    Fixture {
        practice: practice.index,
        ods: practice.ods.clone(),
        records,
    }
}

impl Fixture {
    /// The first active primary record with an NHS number at the practice satisfying `wanted`.
    fn patient(
        &self,
        wanted: impl Fn(&PatientRecord) -> bool,
    ) -> (PatientAtPractice, PatientRecord) {
        self.records
            .at_practice(self.practice)
            .find_map(|at| {
                let r = self.records.record(at);
                let usable = r.role == RecordRole::Primary
                    && r.registration.is_active()
                    && r.nhs_number.is_some();
                (usable && wanted(&r)).then(|| {
                    let patient = PatientAtPractice {
                        practice: self.ods.clone(),
                        source_patient_id: patient_row(at).to_string(),
                        nhs_number: r.nhs_number,
                    };
                    (patient, r)
                })
            })
            .expect("a matching patient")
    }

    /// The simulator and an adapter for `session`, and the fault handle.
    async fn start(&self, session: &str) -> (TppSystem, FaultHandle) {
        let faults = FaultHandle::default();
        let sim = TppSimulator::new(self.records.clone());
        let (addr, _task) = tpp::serve(sim, SocketAddr::from(([127, 0, 0, 1], 0)), faults.clone())
            .await
            .expect("bind");
        let endpoint = Endpoint::new(format!("http://{addr}{}", tpp::BASE_PATH), TIMEOUT);
        let credentials = TppCredentials {
            application_id: session::APPLICATION_ID.into(),
            session_token: session.into(),
        };
        let system = TppSystem::new(self.ods.clone(), endpoint, credentials).expect("client");
        (system, faults)
    }
}

fn row_of(patient: &PatientAtPractice) -> u64 {
    patient.source_patient_id.parse().expect("numeric")
}

async fn read(
    system: &TppSystem,
    patient: &PatientAtPractice,
    section: RecordSection,
) -> SectionContent {
    system
        .read_section(&ctx(), patient, section)
        .await
        .unwrap_or_else(|e| panic!("{section:?}: {e}"))
}

/// The item with `source_id` `row`.
fn by_row<T>(section: &Section<T>, row: u64) -> &RecordItem<T> {
    let id = row.to_string();
    section
        .items
        .iter()
        .find(|i| i.source_id == id)
        .unwrap_or_else(|| panic!("item {id}"))
}

/// The codings the journal gives for `concept` recorded in `style`: legacy first, SNOMED CT
/// beside.
fn expected_codings(concept: &Concept, style: CodingStyle) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some((scheme, (code, _))) = style.legacy(concept) {
        let system = match scheme {
            LegacyScheme::Ctv3 => systems::CTV3,
            LegacyScheme::ReadV2 => systems::READ_V2,
        };
        out.push((system.to_string(), code.to_string()));
    }
    if style.has_snomed(concept) {
        out.push((systems::SNOMED_CT.to_string(), concept.snomed.to_string()));
    }
    out
}

fn codings(concept: &CodeableConcept) -> Vec<(String, String)> {
    assert!(concept.codings().iter().all(|c| c.origin.is_source()));
    concept
        .codings()
        .iter()
        .map(|c| (c.system.clone(), c.code.clone()))
        .collect()
}

fn day(date: keel_sim::date::Date) -> Option<String> {
    Some(date.to_string())
}

fn text(date: &Option<ClinicalDate>) -> Option<String> {
    date.as_ref().map(|d| d.as_str().to_string())
}

fn fixed(value: i64, scale: u8) -> String {
    let mut out = Vec::new();
    keel_sim::json::write_fixed(&mut out, value, scale);
    String::from_utf8(out).expect("ascii")
}

fn rich(r: &PatientRecord) -> bool {
    let c = &r.clinical;
    c.conditions.iter().any(|x| {
        x.coding == CodingStyle::LegacyBeside(LegacyScheme::Ctv3) && x.concept.ctv3.is_some()
    }) && c.medications.iter().any(|m| !m.issues.is_empty())
        && c.observations
            .iter()
            .any(|o| matches!(o.value, model::ObservationValue::BloodPressure { .. }))
        && !c.allergies.is_empty()
        && !c.immunisations.is_empty()
        && !c.consultations.is_empty()
}

#[tokio::test]
async fn every_section_maps_to_the_generated_truth() {
    let f = fixture();
    let (system, _) = f.start(session::SENSITIVE_SESSION).await;
    let (patient, r) = f.patient(rich);
    let row = row_of(&patient);
    let c = &r.clinical;

    let SectionContent::Problems(problems) = read(&system, &patient, RecordSection::Problems).await
    else {
        panic!("problems");
    };
    assert_eq!(problems.state, SectionState::Recorded);
    assert_eq!(problems.items.len(), c.conditions.len());
    for x in &c.conditions {
        let item = by_row(&problems, item_row(row, RowKind::Problem, u64::from(x.id)));
        assert_eq!(
            codings(&item.content.code),
            expected_codings(x.concept, x.coding)
        );
        let (status, word) = match x.status {
            model::ConditionStatus::Active => (ProblemStatus::Active, "Active"),
            model::ConditionStatus::Resolved(_) if x.chronic => {
                (ProblemStatus::Inactive, "Significant past")
            }
            model::ConditionStatus::Resolved(_) => (ProblemStatus::Inactive, "Past"),
        };
        assert_eq!(item.content.status, status);
        assert_eq!(item.provenance.status.as_deref(), Some(word));
        assert!(
            item.source_attributes
                .iter()
                .any(|a| a.name == "tpp-style:ProblemStatus" && a.value == word)
        );
        assert_eq!(text(&item.content.onset), day(x.onset));
        let ended = match x.status {
            model::ConditionStatus::Resolved(d) => day(d),
            model::ConditionStatus::Active => None,
        };
        assert_eq!(text(&item.content.ended), ended);
        assert_eq!(item.provenance.source_organisation, f.ods);
        assert_eq!(item.provenance.source_system, SourceSystem::TppStyle);
        assert!(item.provenance.retrieved.is_some());
        assert!(item.provenance.author.is_some());
        assert!(
            item.source_attributes
                .iter()
                .any(|a| a.name == "tpp-style:Date" && Some(&a.value) == day(x.recorded).as_ref())
        );
    }
    // The legacy CTV3 code is first, SNOMED CT beside it.
    let legacy = c
        .conditions
        .iter()
        .find(|x| {
            x.coding == CodingStyle::LegacyBeside(LegacyScheme::Ctv3) && x.concept.ctv3.is_some()
        })
        .expect("a CTV3 problem");
    let item = by_row(
        &problems,
        item_row(row, RowKind::Problem, u64::from(legacy.id)),
    );
    let first = &item.content.code.codings()[0];
    let (ctv3, term) = legacy.concept.ctv3.expect("ctv3");
    assert_eq!(
        (first.system.as_str(), first.code.as_str()),
        (systems::CTV3, ctv3)
    );
    assert_eq!(first.display.as_deref(), Some(term));

    let SectionContent::Medications(meds) =
        read(&system, &patient, RecordSection::Medications).await
    else {
        panic!("medications");
    };
    assert_eq!(meds.items.len(), c.medications.len());
    for m in &c.medications {
        let item = by_row(&meds, item_row(row, RowKind::Medication, u64::from(m.id)));
        let system_of = match m.drug.origin() {
            CodeOrigin::Verified => systems::DMD,
            CodeOrigin::Synthetic => SYNTHETIC_DMD_SYSTEM,
        };
        assert!(item.content.medication.has(system_of, m.drug.code()));
        let status = match m.status {
            model::MedicationStatus::Active => MedicationStatus::Active,
            model::MedicationStatus::Completed => MedicationStatus::Completed,
            model::MedicationStatus::Stopped(_) => MedicationStatus::Stopped,
        };
        assert_eq!(item.content.status, status);
        let course = if m.repeat {
            CourseKind::Repeat
        } else {
            CourseKind::Acute
        };
        assert_eq!(item.content.course, course);
        assert_eq!(text(&item.content.start), day(m.start));
        assert_eq!(item.content.dosage.as_deref(), Some(m.dose));
        let quantity = item.content.quantity.as_ref().expect("quantity");
        assert_eq!(quantity.value.as_str(), m.quantity.to_string());
        assert_eq!(quantity.unit.as_deref(), Some(m.drug.unit));
        let issued: Vec<String> = item
            .content
            .issues
            .iter()
            .map(|i| i.date.as_str().to_string())
            .collect();
        let expected: Vec<String> = m.issues.iter().map(|d| d.to_string()).collect();
        assert_eq!(issued, expected);
        if let model::MedicationStatus::Stopped(d) = m.status {
            assert_eq!(text(&item.content.end), day(d));
            assert!(
                item.source_attributes
                    .iter()
                    .any(|a| a.name == "tpp-style:DiscontinuationReason")
            );
        }
    }

    let SectionContent::Allergies(allergies) =
        read(&system, &patient, RecordSection::Allergies).await
    else {
        panic!("allergies");
    };
    assert_eq!(allergies.items.len(), c.allergies.len());
    for a in &c.allergies {
        let item = by_row(&allergies, item_row(row, RowKind::Allergy, u64::from(a.id)));
        assert_eq!(
            codings(&item.content.substance),
            expected_codings(a.concept, CodingStyle::Snomed)
        );
        let status = if a.active {
            AllergyStatus::Active
        } else {
            AllergyStatus::Resolved
        };
        assert_eq!(item.content.status, status);
        assert_eq!(text(&item.content.recorded), day(a.recorded));
        assert_eq!(
            item.content.reaction.as_ref().map(codings),
            a.reaction.map(|x| expected_codings(x, CodingStyle::Snomed))
        );
        assert!(
            item.source_attributes
                .iter()
                .any(|x| x.name == "tpp-style:Category" && x.value == a.category)
        );
    }

    let SectionContent::Observations(observations) =
        read(&system, &patient, RecordSection::Observations).await
    else {
        panic!("observations");
    };
    assert_eq!(observations.items.len(), c.observations.len());
    for o in &c.observations {
        let item = by_row(
            &observations,
            item_row(row, RowKind::CodedEntry, u64::from(o.id)),
        );
        assert_eq!(
            codings(&item.content.code),
            expected_codings(o.concept, o.coding)
        );
        assert_eq!(text(&item.content.effective), day(o.date));
        match o.value {
            model::ObservationValue::BloodPressure {
                systolic,
                diastolic,
            } => {
                assert_eq!(item.content.value, None);
                let values: Vec<String> = item
                    .content
                    .components
                    .iter()
                    .map(|c| match &c.value {
                        ObservationValue::Quantity(q) => {
                            assert_eq!(q.unit.as_deref(), Some("mmHg"));
                            q.value.as_str().to_string()
                        }
                        other => panic!("{other:?}"),
                    })
                    .collect();
                assert_eq!(values, [systolic.to_string(), diastolic.to_string()]);
                assert!(
                    item.content.components[0]
                        .code
                        .has(systems::SNOMED_CT, "271649006")
                );
            }
            model::ObservationValue::Quantity {
                value,
                scale,
                unit,
                comparator,
            } => {
                let Some(ObservationValue::Quantity(q)) = &item.content.value else {
                    panic!("a quantity for {}", o.concept.key);
                };
                assert_eq!(q.value.as_str(), fixed(i64::from(value), scale));
                assert_eq!(q.unit.as_deref(), Some(unit));
                assert_eq!(q.comparator.map(|c| c.as_code()), comparator);
                assert_eq!(item.content.note, o.text);
            }
            model::ObservationValue::None | model::ObservationValue::Text => {
                assert_eq!(
                    item.content.value,
                    o.text.clone().map(ObservationValue::Text)
                );
            }
        }
        let source = if o.laboratory {
            "Laboratory"
        } else {
            "Practice"
        };
        assert!(
            item.source_attributes
                .iter()
                .any(|a| a.name == "tpp-style:Source" && a.value == source)
        );
    }

    let SectionContent::Immunisations(immunisations) =
        read(&system, &patient, RecordSection::Immunisations).await
    else {
        panic!("immunisations");
    };
    assert_eq!(immunisations.items.len(), c.immunisations.len());
    for x in &c.immunisations {
        let item = by_row(
            &immunisations,
            item_row(row, RowKind::Immunisation, u64::from(x.id)),
        );
        assert_eq!(
            codings(&item.content.vaccine),
            expected_codings(x.procedure, CodingStyle::Snomed)
        );
        assert_eq!(text(&item.content.date), day(x.date));
        assert_eq!(item.content.product.as_deref(), Some(x.product));
    }

    let SectionContent::Consultations(consultations) =
        read(&system, &patient, RecordSection::Consultations).await
    else {
        panic!("consultations");
    };
    assert_eq!(consultations.items.len(), c.consultations.len());
    for x in &c.consultations {
        let item = by_row(
            &consultations,
            item_row(row, RowKind::Consultation, u64::from(x.id)),
        );
        assert_eq!(item.content.text.as_deref(), Some(x.text.as_str()));
        let kind = match x.kind {
            model::ConsultationKind::Surgery => "Surgery",
            model::ConsultationKind::Telephone => "Telephone",
            model::ConsultationKind::HomeVisit => "HomeVisit",
        };
        assert_eq!(item.content.kind.as_deref(), Some(kind));
        let start = item.content.start.as_ref().expect("start");
        assert_eq!(start.date_part(), x.start.date.to_string());
        assert_eq!(start.precision(), keel_model::Precision::Moment);
        assert_eq!(
            item.provenance.recorded.as_ref().map(|i| i.as_str()),
            Some(start.as_str())
        );
    }

    // Nothing generated is a document: nothing recorded, not unavailable.
    let SectionContent::Documents(documents) =
        read(&system, &patient, RecordSection::Documents).await
    else {
        panic!("documents");
    };
    assert_eq!(documents.state, SectionState::NothingRecorded);
}

#[tokio::test]
async fn legacy_hba1c_in_percent_keeps_its_unit() {
    let f = fixture();
    let (system, _) = f.start(session::STANDARD_SESSION).await;
    let (patient, r) = f.patient(|r| {
        r.clinical.observations.iter().any(|o| {
            o.sensitivity.is_none()
                && matches!(o.value, model::ObservationValue::Quantity { unit: "%", .. })
        })
    });
    let o = r
        .clinical
        .observations
        .iter()
        .find(|o| {
            o.sensitivity.is_none()
                && matches!(o.value, model::ObservationValue::Quantity { unit: "%", .. })
        })
        .expect("a % result");
    let SectionContent::Observations(section) =
        read(&system, &patient, RecordSection::Observations).await
    else {
        panic!("observations");
    };
    let item = by_row(
        &section,
        item_row(row_of(&patient), RowKind::CodedEntry, u64::from(o.id)),
    );
    let Some(ObservationValue::Quantity(q)) = &item.content.value else {
        panic!("quantity");
    };
    assert_eq!(q.unit.as_deref(), Some("%"));
    assert_eq!(q.normalised, None, "no conversion to mmol/mol");
    assert_eq!(
        codings(&item.content.code),
        expected_codings(o.concept, o.coding)
    );
}

#[tokio::test]
async fn confidential_entries_are_withheld_with_a_warning_and_empty_sections_say_nothing_recorded()
{
    let f = fixture();
    let (standard, _) = f.start(session::STANDARD_SESSION).await;
    let (patient, r) = f.patient(|r| {
        r.clinical
            .conditions
            .iter()
            .any(|c| c.sensitivity.is_some())
            && r.clinical.allergies.is_empty()
    });
    let visible = r
        .clinical
        .conditions
        .iter()
        .filter(|c| c.sensitivity.is_none())
        .count();
    let SectionContent::Problems(problems) =
        read(&standard, &patient, RecordSection::Problems).await
    else {
        panic!("problems");
    };
    assert_eq!(problems.items.len(), visible);
    assert!(
        problems
            .warnings
            .contains(&keel_model::record::SectionWarning::ConfidentialItemsWithheld)
    );
    let expected = if visible == 0 { "withheld" } else { "recorded" };
    assert_eq!(
        serde_json::to_value(&problems.state).expect("state")["state"],
        expected
    );

    let SectionContent::Allergies(allergies) =
        read(&standard, &patient, RecordSection::Allergies).await
    else {
        panic!("allergies");
    };
    assert_eq!(allergies.state, SectionState::NothingRecorded);
    assert!(allergies.warnings.is_empty());

    // A session with the sensitive-data permission sees them, marked.
    let (sensitive, _) = f.start(session::SENSITIVE_SESSION).await;
    let SectionContent::Problems(all) = read(&sensitive, &patient, RecordSection::Problems).await
    else {
        panic!("problems");
    };
    assert_eq!(all.items.len(), r.clinical.conditions.len());
    assert!(all.warnings.is_empty());
    assert!(all.items.iter().any(|i| {
        i.source_attributes
            .iter()
            .any(|a| a.name == "tpp-style:Confidential")
    }));
}

#[tokio::test]
async fn find_patient_maps_demographics_and_an_unknown_number_is_none() {
    let f = fixture();
    let (system, _) = f.start(session::STANDARD_SESSION).await;
    let (patient, r) = f.patient(|_| true);
    let nhs = r.nhs_number.expect("nhs");
    let (found, demographics) = system
        .find_patient(&ctx(), nhs)
        .await
        .expect("answer")
        .expect("found");
    assert_eq!(found, patient);
    assert_eq!(demographics.nhs_number, Some(nhs));
    assert_eq!(demographics.family.as_deref(), Some(r.name.family.as_str()));
    assert_eq!(demographics.given, r.name.given);
    assert_eq!(text(&demographics.birth_date), day(r.birth_date));
    assert_eq!(demographics.gender.as_deref(), Some(r.gender.key()));
    assert_eq!(
        demographics.postcode.as_deref(),
        Some(r.address.postcode.as_str())
    );
    assert_eq!(demographics.registered_practice, Some(f.ods.clone()));

    let nobody = NhsNumber::parse("9000000009").expect("valid");
    assert_eq!(
        system.find_patient(&ctx(), nobody).await.expect("answer"),
        None
    );

    let elsewhere = PatientAtPractice {
        source_patient_id: "999999999".into(),
        ..patient
    };
    assert_eq!(
        system
            .read_section(&ctx(), &elsewhere, RecordSection::Problems)
            .await,
        Err(IntegrationError::PatientNotFound {
            practice: f.ods.clone()
        })
    );
}

#[tokio::test]
async fn an_outage_is_unavailable_and_a_hang_ends_within_the_timeout() {
    let f = fixture();
    let (system, faults) = f.start(session::STANDARD_SESSION).await;
    let (patient, _) = f.patient(|_| true);
    faults
        .set(FaultConfig {
            outage: true,
            ..FaultConfig::default()
        })
        .expect("valid");
    assert!(matches!(
        system
            .read_section(&ctx(), &patient, RecordSection::Problems)
            .await,
        Err(IntegrationError::Unavailable { .. })
    ));
    faults
        .set(FaultConfig {
            timeout_rate: 1.0,
            hang_ms: 5_000,
            ..FaultConfig::default()
        })
        .expect("valid");
    let started = Instant::now();
    let answer = system
        .read_section(&ctx(), &patient, RecordSection::Medications)
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

fn entry(patient: &PatientAtPractice, key: &str) -> EntryRequest {
    EntryRequest {
        key: WriteKey(key.into()),
        patient: patient.clone(),
        date: ClinicalDate::parse("2026-01-05").expect("valid"),
        code: CodeableConcept::from_coding(Coding::new(systems::SNOMED_CT, "1000731000000107")),
        value: Some(ObservationValue::Quantity(Quantity::new(
            Decimal::parse("48").expect("valid"),
            "mmol/mol",
        ))),
        text: None,
        author: "Dr Example".into(),
    }
}

/// The observations filed under `key`.
async fn filed(system: &TppSystem, patient: &PatientAtPractice, key: &str) -> Vec<String> {
    let SectionContent::Observations(section) =
        read(system, patient, RecordSection::Observations).await
    else {
        panic!("observations");
    };
    section
        .items
        .iter()
        .filter(|i| {
            i.source_attributes
                .iter()
                .any(|a| a.name == "tpp-style:ExternalReference" && a.value == key)
        })
        .map(|i| i.source_id.clone())
        .collect()
}

#[tokio::test]
async fn writes_are_filed_and_read_back_and_bookings_are_not_supported() {
    let f = fixture();
    let (system, _) = f.start(session::STANDARD_SESSION).await;
    let (patient, _) = f.patient(|_| true);

    let receipt = system
        .add_entry(&ctx(), &entry(&patient, "entry-1"))
        .await
        .expect("filed");
    assert_eq!(
        filed(&system, &patient, "entry-1").await,
        [receipt.source_id]
    );

    let document = DocumentRequest {
        key: WriteKey("doc-1".into()),
        patient: patient.clone(),
        title: "Discharge letter".into(),
        content_type: "application/pdf".into(),
        content: b"%PDF-1.4\n".to_vec(),
    };
    let receipt = system
        .attach_document(&ctx(), &document)
        .await
        .expect("filed");
    let SectionContent::Documents(documents) =
        read(&system, &patient, RecordSection::Documents).await
    else {
        panic!("documents");
    };
    let item = by_row(&documents, receipt.source_id.parse().expect("row"));
    assert_eq!(item.content.title, "Discharge letter");
    assert_eq!(item.content.content_type, "application/pdf");
    assert_eq!(item.provenance.author.as_deref(), Some("Standard User"));

    let task = TaskRequest {
        key: WriteKey("task-1".into()),
        patient: patient.clone(),
        description: "Book annual review".into(),
        urgent: true,
    };
    assert!(system.create_task(&ctx(), &task).await.is_ok());

    let read2 = EntryRequest {
        code: CodeableConcept::from_coding(Coding::new(systems::READ_V2, "G20..")),
        ..entry(&patient, "entry-read2")
    };
    assert!(matches!(
        system.add_entry(&ctx(), &read2).await,
        Err(IntegrationError::Refused { .. })
    ));
    let booking = BookingRequest {
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
    };
    assert!(matches!(
        system.book_appointment(&ctx(), &booking).await,
        Err(IntegrationError::NotSupported { .. })
    ));
}

/// A fault config whose first requests (after it is set) meet `actions`, found by seed.
fn scripted(actions: &[Action], base: FaultConfig) -> FaultConfig {
    (0..100_000u64)
        .map(|seed| FaultConfig {
            seed,
            ..base.clone()
        })
        .find(|config| {
            actions
                .iter()
                .enumerate()
                .all(|(seq, a)| config.decide(seq as u64, Duration::ZERO).action == *a)
        })
        .expect("a seed giving the script")
}

#[tokio::test]
async fn a_lost_answer_is_checked_and_the_write_is_filed_exactly_once() {
    let f = fixture();
    let (system, faults) = f.start(session::STANDARD_SESSION).await;
    let (patient, _) = f.patient(|_| true);

    // The write is filed and its answer lost; the check finds it: no second copy.
    let config = scripted(
        &[Action::DropAfterCommit, Action::Pass, Action::Pass],
        FaultConfig {
            drop_response_after_commit: 0.5,
            ..FaultConfig::default()
        },
    );
    faults.set(config).expect("valid");
    let receipt = system
        .add_entry(&ctx(), &entry(&patient, "lost-1"))
        .await
        .expect("found by the check");
    faults.reset();
    assert_eq!(
        filed(&system, &patient, "lost-1").await,
        [receipt.source_id]
    );

    // The request never reached the service (the connection dropped first); the check finds
    // nothing, so it is sent once more: exactly one copy.
    let config = scripted(
        &[Action::Timeout, Action::Pass, Action::Pass],
        FaultConfig {
            timeout_rate: 0.5,
            hang_ms: 50,
            ..FaultConfig::default()
        },
    );
    faults.set(config).expect("valid");
    let receipt = system
        .add_entry(&ctx(), &entry(&patient, "lost-2"))
        .await
        .expect("sent again");
    faults.reset();
    assert_eq!(
        filed(&system, &patient, "lost-2").await,
        [receipt.source_id]
    );
}

#[tokio::test]
async fn an_outage_during_the_check_gives_outcome_unknown() {
    let f = fixture();
    let (system, faults) = f.start(session::STANDARD_SESSION).await;
    let (patient, _) = f.patient(|_| true);
    // Every answer is lost after its work is done, each request takes 200 ms, and the
    // practice goes down 100 ms after the write arrives: the check meets the outage.
    let from = u64::try_from(faults.elapsed().as_millis()).expect("ms") + 100;
    faults
        .set(FaultConfig {
            drop_response_after_commit: 1.0,
            latency: Latency::Fixed { ms: 200 },
            outage_windows: vec![(from, from + 60_000)],
            ..FaultConfig::default()
        })
        .expect("valid");
    let answer = system.add_entry(&ctx(), &entry(&patient, "lost-3")).await;
    assert!(
        matches!(answer, Err(IntegrationError::OutcomeUnknown { ref reason, .. }) if reason.contains("check")),
        "{answer:?}"
    );
    faults.reset();
    assert_eq!(
        filed(&system, &patient, "lost-3").await.len(),
        1,
        "it had landed: unknown was the honest answer, and nothing was sent again"
    );
}

#[tokio::test]
async fn a_comparator_the_api_cannot_file_is_refused_before_sending() {
    let f = fixture();
    let (system, faults) = f.start(session::STANDARD_SESSION).await;
    let (patient, _) = f.patient(|_| true);
    faults
        .set(FaultConfig {
            outage: true,
            ..FaultConfig::default()
        })
        .expect("valid");
    let with_comparator = EntryRequest {
        value: Some(ObservationValue::Quantity(
            Quantity::new(Decimal::parse("5").expect("valid"), "mmol/mol")
                .with_comparator(Comparator::LessThan),
        )),
        ..entry(&patient, "cmp-1")
    };
    // Refused (not unavailable): nothing was sent to the practice that is down.
    assert!(matches!(
        system.add_entry(&ctx(), &with_comparator).await,
        Err(IntegrationError::Refused { .. })
    ));
}
