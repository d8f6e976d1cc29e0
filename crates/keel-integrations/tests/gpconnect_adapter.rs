//! The GP Connect adapter against the GP Connect simulator over real HTTP: every section of a
//! generated patient against the generated truth, section states and warnings, failures, and
//! appointments with lost answers checked.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_core::integration::{
    BookingRequest, CancellationRequest, ClinicalSystem, IntegrationError, Interface,
    InterfaceConnection, PatientAtPractice, PracticeConnection, PracticeSystem, SectionContent,
    TaskRequest, WriteKey,
};
use keel_core::{CorrelationId, RequestContext};
use keel_integrations::gpconnect::request::Consumer;
use keel_integrations::gpconnect::{GpConnectSystem, PROVIDER_ASID_KEY, provider_asid};
use keel_integrations::http::Endpoint;
use keel_model::coding::systems;
use keel_model::record::{
    AllergyStatus, CourseKind, MedicationStatus, ObservationValue, ProblemStatus, RecordSection,
    SectionWarning,
};
use keel_model::{ClinicalDate, NhsNumber, OdsCode, SectionState, SourceSystem};
use keel_sim::codes::Concept;
use keel_sim::faults::{Action, FaultConfig, FaultHandle};
use keel_sim::gpconnect::parameters::ClinicalArea;
use keel_sim::gpconnect::structured::IN_TRANSIT_DAYS;
use keel_sim::gpconnect::{self, GpConnectSimulator, dates::format_datetime};
use keel_sim::model::{
    CodingStyle, ConditionStatus, Confidentiality, LegacyScheme, NhsNumberStatus,
    ObservationValue as TrueValue, PatientRecord, RegistrationType,
};
use keel_sim::records::PracticeRecords;
use keel_sim::{Options, Population};

struct Fixture {
    sim: GpConnectSimulator,
    faults: FaultHandle,
    system: GpConnectSystem,
    ods: OdsCode,
}

fn ctx() -> RequestContext {
    RequestContext::local_development(CorrelationId::parse("test-gpconnect").expect("valid"))
}

async fn start() -> Fixture {
    let records = Arc::new(PracticeRecords::new(Population::generate(Options {
        patients: 3000,
        practices: 2,
        ..Options::default()
    })));
    let sim = GpConnectSimulator::new(records);
    let faults = FaultHandle::default();
    let (addr, _task) = gpconnect::serve(
        sim.clone(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        faults.clone(),
    )
    .await
    .expect("bind");
    let ods = sim.records().population().pcn().practices[0].ods.clone();
    let base_url = format!("http://{addr}{}", sim.service_root(0).expect("practice 0"));
    let connection = PracticeConnection {
        ods: ods.clone(),
        name: "Practice 0".into(),
        system: ClinicalSystem::EmisStyle,
        interfaces: vec![InterfaceConnection {
            interface: Interface::GpConnect,
            base_url: base_url.clone(),
            enabled: true,
            version: Some("1.6.2".into()),
            timeout_ms: 800,
            disabled_operations: vec![],
        }],
        local_configuration: BTreeMap::from([(
            PROVIDER_ASID_KEY.to_string(),
            sim.asid(0).expect("asid").to_string(),
        )]),
    };
    let consumer = Consumer {
        asid: "200000000359".into(),
        endpoint: "https://keel.example/".into(),
        organisation: OdsCode::parse("A11111").expect("valid"),
        product: "Keel".into(),
        version: "0.1.0".into(),
    };
    let system = GpConnectSystem::new(
        ods.clone(),
        Endpoint::new(base_url, Duration::from_millis(800)),
        consumer,
        provider_asid(&connection).expect("configured"),
    )
    .expect("client");
    Fixture {
        sim,
        faults,
        system,
        ods,
    }
}

fn servable(r: &PatientRecord) -> bool {
    r.registration.is_active()
        && r.death_date.is_none()
        && r.registration.kind == RegistrationType::Regular
        && r.nhs_status == NhsNumberStatus::Verified
        && r.confidentiality == Confidentiality::Unrestricted
}

impl Fixture {
    /// The first record at practice 0 that GP Connect serves and `pick` accepts.
    fn find(&self, pick: impl Fn(&PatientRecord) -> bool) -> PatientRecord {
        let records = self.sim.records();
        records
            .at_practice(0)
            .map(|at| records.record(at))
            .find(|r| {
                r.nhs_number.is_some_and(|n| {
                    records.by_nhs_number(0, &n)[0] == records.by_record_id(&r.id).expect("id")
                }) && servable(r)
                    && pick(r)
            })
            .expect("a matching record in the population")
    }

    fn in_transit(&self, r: &PatientRecord) -> bool {
        let as_of = self.sim.records().population().options().as_of;
        r.registration.start >= as_of.plus(-IN_TRANSIT_DAYS)
    }

    fn staff_name(&self, staff: usize) -> String {
        let practice = &self.sim.records().population().pcn().practices[0];
        practice.staff[staff.min(practice.staff.len() - 1)]
            .name
            .text()
    }

    async fn patient(&self, r: &PatientRecord) -> PatientAtPractice {
        let nhs = r.nhs_number.expect("nhs");
        let (patient, _) = self
            .system
            .find_patient(&ctx(), nhs)
            .await
            .expect("answer")
            .expect("found");
        patient
    }

    async fn section(&self, r: &PatientRecord, section: RecordSection) -> SectionContent {
        let patient = self.patient(r).await;
        self.system
            .read_section(&ctx(), &patient, section)
            .await
            .expect("section")
    }
}

/// (system, code) of the codings the simulator writes for `concept` in `style`.
fn expected_codings(concept: &Concept, style: CodingStyle) -> Vec<(String, String)> {
    let mut codings = Vec::new();
    if let Some((scheme, (code, _))) = style.legacy(concept) {
        let system = match scheme {
            LegacyScheme::ReadV2 => systems::READ_V2,
            LegacyScheme::Ctv3 => systems::CTV3,
        };
        codings.push((system.to_string(), code.to_string()));
    }
    if style.has_snomed(concept) {
        codings.push((systems::SNOMED_CT.to_string(), concept.snomed.to_string()));
    }
    if let Some(loinc) = concept.loinc {
        codings.push((systems::LOINC.to_string(), loinc.to_string()));
    }
    codings
}

fn codings_of(concept: &keel_model::CodeableConcept) -> Vec<(String, String)> {
    assert!(concept.codings().iter().all(|c| c.origin.is_source()));
    concept
        .codings()
        .iter()
        .map(|c| (c.system.clone(), c.code.clone()))
        .collect()
}

fn decimal(value: i32, scale: u8) -> String {
    let mut out = Vec::new();
    keel_sim::json::write_fixed(&mut out, i64::from(value), scale);
    String::from_utf8(out).expect("ascii")
}

fn date_text(date: &Option<ClinicalDate>) -> Option<&str> {
    date.as_ref().map(ClinicalDate::as_str)
}

#[tokio::test]
async fn find_patient_maps_demographics_and_an_unservable_patient_is_none() {
    let f = start().await;
    let r = f.find(|_| true);
    let (patient, demographics) = f
        .system
        .find_patient(&ctx(), r.nhs_number.expect("nhs"))
        .await
        .expect("answer")
        .expect("found");
    assert_eq!(patient.source_patient_id, r.id);
    assert_eq!(patient.practice, f.ods);
    assert_eq!(demographics.nhs_number, r.nhs_number);
    assert_eq!(demographics.family.as_deref(), Some(r.name.family.as_str()));
    assert_eq!(demographics.given, r.name.given);
    assert_eq!(
        date_text(&demographics.birth_date),
        Some(r.birth_date.to_string().as_str())
    );
    assert_eq!(
        demographics.postcode.as_deref(),
        Some(r.address.postcode.as_str())
    );
    assert_eq!(demographics.registered_practice.as_ref(), Some(&f.ods));

    let records = f.sim.records();
    let restricted = records
        .at_practice(0)
        .map(|at| records.record(at))
        .find(|r| {
            r.confidentiality != Confidentiality::Unrestricted
                && r.registration.is_active()
                && r.nhs_number.is_some()
        })
        .expect("an S-flag patient");
    let answer = f
        .system
        .find_patient(&ctx(), restricted.nhs_number.expect("nhs"))
        .await;
    assert_eq!(answer, Ok(None));
    let unknown = NhsNumber::parse("9990000018").expect("valid");
    assert_eq!(f.system.find_patient(&ctx(), unknown).await, Ok(None));
}

#[tokio::test]
async fn every_section_maps_to_the_generated_truth() {
    let f = start().await;
    let r = f.find(|r| {
        let c = &r.clinical;
        !f.in_transit(r)
            && c.conditions
                .iter()
                .any(|c| !matches!(c.coding, CodingStyle::Snomed))
            && c.medications.iter().any(|m| m.issues.len() > 1)
            && !c.allergies.is_empty()
            && c.observations
                .iter()
                .any(|o| matches!(o.value, TrueValue::BloodPressure { .. }))
            && c.observations.iter().any(|o| o.laboratory)
            && !c.immunisations.is_empty()
            && !c.consultations.is_empty()
    });
    let rid = &r.id;
    let clinical = &r.clinical;

    let SectionContent::Problems(problems) = f.section(&r, RecordSection::Problems).await else {
        panic!("problems");
    };
    let shown: Vec<_> = clinical
        .conditions
        .iter()
        .filter(|c| c.sensitivity.is_none())
        .collect();
    assert_eq!(problems.items.len(), shown.len());
    for c in shown {
        let item = problems
            .items
            .iter()
            .find(|i| i.source_id == format!("{rid}-c{}", c.id))
            .expect("the condition");
        let p = &item.content;
        assert_eq!(codings_of(&p.code), expected_codings(c.concept, c.coding));
        assert_eq!(date_text(&p.onset), Some(c.onset.to_string().as_str()));
        match c.status {
            ConditionStatus::Active => {
                assert_eq!((p.status, &p.ended), (ProblemStatus::Active, &None))
            }
            ConditionStatus::Resolved(d) => {
                assert_eq!(p.status, ProblemStatus::Inactive);
                assert_eq!(
                    date_text(&p.ended),
                    Some(d.max(c.onset).to_string().as_str())
                );
            }
        }
        assert_eq!(p.significant, Some(c.chronic));
        assert_eq!(item.provenance.source_organisation, f.ods);
        assert_eq!(item.provenance.source_system, SourceSystem::GpConnect);
        assert!(item.provenance.retrieved.is_some());
        assert_eq!(item.provenance.author, Some(f.staff_name(c.clinician)));
        assert!(
            item.source_attributes
                .iter()
                .any(|a| a.name == "gpconnect:Condition.assertedDate"
                    && a.value == c.recorded.to_string())
        );
    }

    let SectionContent::Medications(meds) = f.section(&r, RecordSection::Medications).await else {
        panic!("medications");
    };
    let sensitive = |id: u32| {
        clinical
            .conditions
            .iter()
            .any(|c| c.id == id && c.sensitivity.is_some())
    };
    let shown: Vec<_> = clinical
        .medications
        .iter()
        .filter(|m| !m.indication.is_some_and(sensitive))
        .collect();
    assert_eq!(meds.items.len(), shown.len());
    for m in shown {
        let item = meds
            .items
            .iter()
            .find(|i| i.source_id == format!("{rid}-ms{}", m.id))
            .expect("the course");
        let med = &item.content;
        assert_eq!(med.medication.codings()[0].code, m.drug.code());
        assert_eq!(
            med.course,
            if m.repeat {
                CourseKind::Repeat
            } else {
                CourseKind::Acute
            }
        );
        let status = match m.status {
            keel_sim::model::MedicationStatus::Active => MedicationStatus::Active,
            keel_sim::model::MedicationStatus::Completed => MedicationStatus::Completed,
            keel_sim::model::MedicationStatus::Stopped(_) => MedicationStatus::Stopped,
        };
        assert_eq!(med.status, status);
        assert_eq!(date_text(&med.start), Some(m.start.to_string().as_str()));
        assert_eq!(med.dosage.as_deref(), Some(m.dose));
        let quantity = med.quantity.as_ref().expect("quantity");
        assert_eq!(
            (quantity.value.as_str(), quantity.unit.as_deref()),
            (m.quantity.to_string().as_str(), Some(m.drug.unit))
        );
        let issued: Vec<&str> = med.issues.iter().map(|i| i.date.as_str()).collect();
        let truth: Vec<String> = m.issues.iter().map(ToString::to_string).collect();
        assert_eq!(issued, truth);
    }

    let SectionContent::Allergies(allergies) = f.section(&r, RecordSection::Allergies).await else {
        panic!("allergies");
    };
    assert_eq!(allergies.items.len(), clinical.allergies.len());
    for a in &clinical.allergies {
        let item = allergies
            .items
            .iter()
            .find(|i| i.source_id == format!("{rid}-a{}", a.id))
            .expect("the allergy");
        let expected = if a.active {
            AllergyStatus::Active
        } else {
            AllergyStatus::Resolved
        };
        assert_eq!(item.content.status, expected);
        assert_eq!(
            codings_of(&item.content.substance),
            expected_codings(a.concept, CodingStyle::Snomed)
        );
        assert_eq!(
            date_text(&item.content.recorded),
            Some(a.recorded.to_string().as_str())
        );
        assert_eq!(item.content.reaction.is_some(), a.reaction.is_some());
    }

    let SectionContent::Observations(observations) =
        f.section(&r, RecordSection::Observations).await
    else {
        panic!("observations");
    };
    let shown: Vec<_> = clinical
        .observations
        .iter()
        .filter(|o| o.sensitivity.is_none())
        .collect();
    assert_eq!(observations.items.len(), shown.len());
    for o in shown {
        let item = observations
            .items
            .iter()
            .find(|i| i.source_id == format!("{rid}-o{}", o.id))
            .expect("the observation");
        let obs = &item.content;
        assert_eq!(codings_of(&obs.code), expected_codings(o.concept, o.coding));
        assert_eq!(date_text(&obs.effective), Some(o.date.to_string().as_str()));
        match o.value {
            TrueValue::BloodPressure {
                systolic,
                diastolic,
            } => {
                assert_eq!(obs.value, None);
                let values: Vec<String> = obs
                    .components
                    .iter()
                    .map(|c| match &c.value {
                        ObservationValue::Quantity(q) => {
                            format!("{} {}", q.value, q.unit.as_deref().unwrap_or(""))
                        }
                        other => panic!("{other:?}"),
                    })
                    .collect();
                assert_eq!(
                    values,
                    [format!("{systolic} mm[Hg]"), format!("{diastolic} mm[Hg]")]
                );
            }
            TrueValue::Quantity {
                value,
                scale,
                unit,
                comparator,
            } => {
                let Some(ObservationValue::Quantity(q)) = &obs.value else {
                    panic!("a quantity");
                };
                assert_eq!(q.value.as_str(), decimal(value, scale));
                assert_eq!(q.unit.as_deref(), Some(unit));
                assert_eq!(q.comparator.map(|c| c.as_code()), comparator);
            }
            TrueValue::Text => assert_eq!(
                obs.value,
                Some(ObservationValue::Text(o.text.clone().unwrap_or_default()))
            ),
            TrueValue::None => assert_eq!(obs.value, None),
        }
        let in_report = item
            .source_attributes
            .iter()
            .any(|a| a.name == "gpconnect:DiagnosticReport.id");
        assert_eq!(in_report, o.laboratory);
    }

    let SectionContent::Immunisations(immunisations) =
        f.section(&r, RecordSection::Immunisations).await
    else {
        panic!("immunisations");
    };
    assert_eq!(immunisations.items.len(), clinical.immunisations.len());
    for i in &clinical.immunisations {
        let item = immunisations
            .items
            .iter()
            .find(|it| it.source_id == format!("{rid}-i{}", i.id))
            .expect("the immunisation");
        assert_eq!(item.content.product.as_deref(), Some(i.product));
        assert_eq!(
            date_text(&item.content.date),
            Some(i.date.to_string().as_str())
        );
        assert!(
            item.content
                .vaccine
                .has(systems::SNOMED_CT, i.procedure.snomed)
        );
    }

    let SectionContent::Consultations(consultations) =
        f.section(&r, RecordSection::Consultations).await
    else {
        panic!("consultations");
    };
    let shown: Vec<_> = clinical
        .consultations
        .iter()
        .filter(|e| !e.confidential)
        .collect();
    assert_eq!(consultations.items.len(), shown.len());
    for e in shown {
        let item = consultations
            .items
            .iter()
            .find(|i| i.source_id == format!("{rid}-e{}", e.id))
            .expect("the consultation");
        let c = &item.content;
        assert_eq!(c.text.as_deref(), Some(e.text.as_str()));
        assert_eq!(c.clinician, Some(f.staff_name(e.clinician)));
        let start = format_datetime(e.start);
        assert_eq!(date_text(&c.start), Some(start.as_str()));
        assert_eq!(
            item.provenance.recorded.as_ref().map(|i| i.as_str()),
            Some(start.as_str())
        );
    }
}

#[tokio::test]
async fn legacy_codes_and_dcct_hba1c_units_are_kept() {
    let f = start().await;
    let r = f.find(|r| {
        r.clinical.observations.iter().any(|o| {
            o.sensitivity.is_none() && matches!(o.value, TrueValue::Quantity { unit: "%", .. })
        }) && r
            .clinical
            .conditions
            .iter()
            .any(|c| c.sensitivity.is_none() && !matches!(c.coding, CodingStyle::Snomed))
    });
    let SectionContent::Observations(observations) =
        f.section(&r, RecordSection::Observations).await
    else {
        panic!("observations");
    };
    let percent = observations
        .items
        .iter()
        .filter_map(|i| match &i.content.value {
            Some(ObservationValue::Quantity(q)) if q.unit.as_deref() == Some("%") => Some(q),
            _ => None,
        })
        .next()
        .expect("an HbA1c in %");
    assert_eq!(percent.code.as_deref(), Some("%"));
    assert!(percent.normalised.is_none());
    let SectionContent::Problems(problems) = f.section(&r, RecordSection::Problems).await else {
        panic!("problems");
    };
    let legacy = r
        .clinical
        .conditions
        .iter()
        .find(|c| c.sensitivity.is_none() && !matches!(c.coding, CodingStyle::Snomed))
        .expect("a legacy-coded condition");
    let item = problems
        .items
        .iter()
        .find(|i| i.source_id == format!("{}-c{}", r.id, legacy.id))
        .expect("mapped");
    let first = &item.content.code.codings()[0];
    assert!(first.system == systems::READ_V2 || first.system == systems::CTV3);
    assert!(first.origin.is_source() && first.display.is_some());
    assert_eq!(
        codings_of(&item.content.code),
        expected_codings(legacy.concept, legacy.coding)
    );
}

#[tokio::test]
async fn confidential_items_are_withheld_and_an_empty_section_is_nothing_recorded() {
    let f = start().await;
    let sensitive = f.find(|r| {
        r.clinical
            .conditions
            .iter()
            .any(|c| c.sensitivity.is_some())
    });
    let SectionContent::Problems(problems) = f.section(&sensitive, RecordSection::Problems).await
    else {
        panic!("problems");
    };
    assert!(
        problems
            .warnings
            .contains(&SectionWarning::ConfidentialItemsWithheld)
    );
    let withheld = sensitive
        .clinical
        .conditions
        .iter()
        .filter(|c| c.sensitivity.is_some())
        .count();
    assert_eq!(
        problems.items.len(),
        sensitive.clinical.conditions.len() - withheld
    );

    let no_allergies = f.find(|r| r.clinical.allergies.is_empty() && !f.in_transit(r));
    let SectionContent::Allergies(allergies) =
        f.section(&no_allergies, RecordSection::Allergies).await
    else {
        panic!("allergies");
    };
    assert_eq!(allergies.state, SectionState::NothingRecorded);
    assert!(allergies.warnings.is_empty());
}

#[tokio::test]
async fn a_recent_registration_warns_that_data_is_in_transit() {
    let f = start().await;
    let r = f.find(|r| f.in_transit(r));
    let content = f.section(&r, RecordSection::Immunisations).await;
    let SectionContent::Immunisations(section) = content else {
        panic!("immunisations");
    };
    let since = ClinicalDate::parse(&r.registration.start.to_string()).expect("date");
    assert!(
        section
            .warnings
            .contains(&SectionWarning::DataInTransit { since: Some(since) })
    );
}

#[tokio::test]
async fn a_switched_off_area_and_documents_are_not_supported() {
    let f = start().await;
    let r = f.find(|_| true);
    let patient = f.patient(&r).await;
    f.sim.disable_area(0, ClinicalArea::Investigations);
    let answer = f
        .system
        .read_section(&ctx(), &patient, RecordSection::Observations)
        .await;
    assert!(
        matches!(&answer, Err(IntegrationError::NotSupported { reason, .. }) if reason.contains("includeInvestigations")),
        "{answer:?}"
    );
    f.sim.enable_area(0, ClinicalArea::Investigations);
    assert!(
        f.system
            .read_section(&ctx(), &patient, RecordSection::Observations)
            .await
            .is_ok()
    );
    assert!(matches!(
        f.system
            .read_section(&ctx(), &patient, RecordSection::Documents)
            .await,
        Err(IntegrationError::NotSupported { .. })
    ));
    let task = TaskRequest {
        key: WriteKey("t".into()),
        patient,
        description: "Call back".into(),
        urgent: false,
    };
    assert!(matches!(
        f.system.create_task(&ctx(), &task).await,
        Err(IntegrationError::NotSupported { .. })
    ));
}

#[tokio::test]
async fn an_outage_or_a_hang_is_unavailable_within_the_timeout() {
    let f = start().await;
    let r = f.find(|_| true);
    let patient = f.patient(&r).await;
    f.faults
        .set(FaultConfig {
            outage: true,
            ..FaultConfig::default()
        })
        .expect("valid");
    assert!(matches!(
        f.system
            .read_section(&ctx(), &patient, RecordSection::Problems)
            .await,
        Err(IntegrationError::Unavailable { .. })
    ));
    f.faults
        .set(FaultConfig {
            timeout_rate: 1.0,
            hang_ms: 5_000,
            ..FaultConfig::default()
        })
        .expect("valid");
    let started = Instant::now();
    let answer = f
        .system
        .read_section(&ctx(), &patient, RecordSection::Problems)
        .await;
    assert!(
        matches!(&answer, Err(IntegrationError::Unavailable { reason, .. }) if reason.contains("800 ms")),
        "{answer:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2_000),
        "{:?}",
        started.elapsed()
    );
}

/// A seed under which the requests after a config change meet `actions` in order (drop-after-
/// commit at rate one half).
fn seed_for(actions: &[Action]) -> FaultConfig {
    (0..10_000)
        .map(|seed| FaultConfig {
            seed,
            drop_response_after_commit: 0.5,
            ..FaultConfig::default()
        })
        .find(|config| {
            actions
                .iter()
                .enumerate()
                .all(|(n, a)| config.decide(n as u64, Duration::ZERO).action == *a)
        })
        .expect("a seed")
}

#[tokio::test]
async fn slots_are_booked_and_cancelled_and_lost_answers_are_checked() {
    let f = start().await;
    let r = f.find(|_| true);
    let patient = f.patient(&r).await;
    let first_day = f.sim.records().population().appointment_book(0).first_day;
    let from = ClinicalDate::parse(&first_day.to_string()).expect("date");
    let to = ClinicalDate::parse(&first_day.plus(6).to_string()).expect("date");
    let slots = f
        .system
        .search_free_slots(&ctx(), &from, &to)
        .await
        .expect("slots");
    assert!(slots.len() >= 3, "{}", slots.len());
    assert!(slots.iter().all(|s| s.clinician.is_some()));
    let booking = |slot: usize, key: &str| BookingRequest {
        key: WriteKey(key.into()),
        patient: patient.clone(),
        slot: slots[slot].clone(),
        description: Some("Asthma review".into()),
    };

    // A slot without its exact times (not as a search gave it) is refused before sending.
    let mut vague = booking(0, "k-vague");
    vague.slot.start = from.clone();
    assert!(matches!(
        f.system.book_appointment(&ctx(), &vague).await,
        Err(IntegrationError::Refused { .. })
    ));

    // Booked; the same booking asked again (a retry) is recognised, not refused.
    let receipt = f
        .system
        .book_appointment(&ctx(), &booking(0, "k-0"))
        .await
        .expect("booked");
    assert_eq!(receipt.version.as_deref(), Some("1"));
    let again = f
        .system
        .book_appointment(&ctx(), &booking(0, "k-0"))
        .await
        .expect("recognised");
    assert_eq!(again, receipt);
    // Someone else's booking of the taken slot is refused.
    assert!(matches!(
        f.system
            .book_appointment(&ctx(), &booking(0, "k-other"))
            .await,
        Err(IntegrationError::Refused { .. })
    ));

    // The answer is lost after the booking was made: the check finds it.
    f.faults
        .set(seed_for(&[Action::DropAfterCommit, Action::Pass]))
        .expect("valid");
    let lost = f
        .system
        .book_appointment(&ctx(), &booking(1, "k-1"))
        .await
        .expect("checked");
    assert_ne!(lost.source_id, receipt.source_id);
    // The answer is lost and the check cannot be made either: the outcome is unknown.
    f.faults
        .set(FaultConfig {
            drop_response_after_commit: 1.0,
            ..FaultConfig::default()
        })
        .expect("valid");
    assert!(matches!(
        f.system.book_appointment(&ctx(), &booking(2, "k-2")).await,
        Err(IntegrationError::OutcomeUnknown { .. })
    ));
    // A practice in outage: nothing was made.
    f.faults
        .set(FaultConfig {
            outage: true,
            ..FaultConfig::default()
        })
        .expect("valid");
    assert!(matches!(
        f.system.book_appointment(&ctx(), &booking(2, "k-2b")).await,
        Err(IntegrationError::Unavailable { .. })
    ));
    f.faults.reset();

    // Cancel with If-Match; a lost answer is checked; a retry is recognised.
    let cancel = CancellationRequest {
        key: WriteKey("c-0".into()),
        appointment: receipt.clone(),
        reason: "Patient request".into(),
    };
    f.faults
        .set(seed_for(&[
            Action::Pass,
            Action::DropAfterCommit,
            Action::Pass,
        ]))
        .expect("valid");
    let cancelled = f
        .system
        .cancel_appointment(&ctx(), &cancel)
        .await
        .expect("checked");
    assert_eq!(cancelled.source_id, receipt.source_id);
    assert_eq!(cancelled.version.as_deref(), Some("2"));
    f.faults.reset();
    assert_eq!(
        f.system.cancel_appointment(&ctx(), &cancel).await,
        Ok(cancelled)
    );
    // The freed slot can be booked again.
    let rebooked = f
        .system
        .book_appointment(&ctx(), &booking(0, "k-3"))
        .await
        .expect("booked");
    assert_ne!(rebooked.source_id, receipt.source_id);
    // A stale version is refused.
    let stale = CancellationRequest {
        key: WriteKey("c-1".into()),
        appointment: keel_core::integration::WriteReceipt {
            source_id: lost.source_id.clone(),
            version: Some("7".into()),
        },
        reason: "Clinic cancelled".into(),
    };
    assert!(matches!(
        f.system.cancel_appointment(&ctx(), &stale).await,
        Err(IntegrationError::Refused { .. })
    ));
}
