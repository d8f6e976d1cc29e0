//! The federated record rendered as a FHIR R4 Bundle: every resource valid R4 (Keel's own
//! validator, as the FHIR service runs it on write), every reference resolvable inside the
//! Bundle, provenance and source attributes on every item, for a full record and for any
//! record proptest can build.

use std::collections::HashSet;

use keel_api::record_fhir::{
    CODING_ORIGIN_URL, COURSE_KIND_URL, ITEM_PROVENANCE_URL, SOURCE_ATTRIBUTE_URL, record_bundle,
};
use keel_core::integration::{FederatedRecord, PatientAtPractice, SectionContent};
use keel_fhir::validate::{Severity, validate};
use keel_model::record::{
    Allergy, AllergyStatus, Consultation, CourseKind, Demographics, Document, Immunisation,
    Medication, MedicationIssue, MedicationStatus, Observation, ObservationComponent,
    ObservationValue, Problem, ProblemStatus, RecordItem, RecordSection, Section, SectionWarning,
    SourceAttribute,
};
use keel_model::{
    ClinicalDate, CodeableConcept, Coding, Comparator, Decimal, Instant, NhsNumber, OdsCode,
    Provenance, Quantity, SourceSystem,
};
use proptest::prelude::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Checks every test applies

/// The rendered Bundle, parsed.
fn bundle_of(record: &FederatedRecord) -> Value {
    serde_json::from_slice(&record_bundle(record)).expect("the Bundle is JSON")
}

/// Item resources: everything but the Patient, the Lists and the OperationOutcome.
fn is_item(resource: &Value) -> bool {
    !matches!(
        resource["resourceType"].as_str(),
        Some("Patient" | "List" | "OperationOutcome")
    )
}

/// The Bundle and every resource in it validate with no errors; fullUrls are unique; every
/// `urn:uuid:` reference anywhere points at an entry; every item resource has provenance.
fn check_bundle(bundle: &Value) -> Result<(), String> {
    let errors: Vec<String> = validate(bundle)
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| i.to_string())
        .collect();
    if !errors.is_empty() {
        return Err(format!("Bundle: {errors:#?}"));
    }
    let entries = bundle["entry"].as_array().ok_or("no entries")?;
    let mut full_urls = HashSet::new();
    for entry in entries {
        let resource = &entry["resource"];
        let errors: Vec<String> = validate(resource)
            .into_iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| i.to_string())
            .collect();
        if !errors.is_empty() {
            return Err(format!("{resource}: {errors:#?}"));
        }
        let full_url = entry["fullUrl"].as_str().ok_or("no fullUrl")?;
        let id = resource["id"].as_str().ok_or("no id")?;
        if full_url != format!("urn:uuid:{id}") {
            return Err(format!("fullUrl {full_url} is not the id {id}"));
        }
        if !full_urls.insert(full_url.to_owned()) {
            return Err(format!("fullUrl {full_url} twice"));
        }
        if is_item(resource) {
            let has_provenance = extensions(resource, ITEM_PROVENANCE_URL).count() == 1;
            if resource["meta"]["source"].as_str().is_none() || !has_provenance {
                return Err(format!("no provenance: {resource}"));
            }
        }
    }
    let mut references = Vec::new();
    collect_references(bundle, &mut references);
    for reference in references {
        if reference.starts_with("urn:uuid:") && !full_urls.contains(&reference) {
            return Err(format!("{reference} is not in the Bundle"));
        }
    }
    for list in resources(bundle, "List") {
        for entry in list["entry"].as_array().into_iter().flatten() {
            let reference = entry["item"]["reference"].as_str().ok_or("no reference")?;
            if !full_urls.contains(reference) {
                return Err(format!("list entry {reference} is not in the Bundle"));
            }
        }
    }
    Ok(())
}

fn collect_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("reference", Value::String(reference)) => out.push(reference.clone()),
                    _ => collect_references(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

fn resources<'a>(bundle: &'a Value, resource_type: &str) -> Vec<&'a Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == resource_type)
        .collect()
}

fn extensions<'a>(resource: &'a Value, url: &'a str) -> impl Iterator<Item = &'a Value> {
    resource["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |e| e["url"] == url)
}

fn sub_extension<'a>(extension: &'a Value, url: &str) -> Option<&'a Value> {
    extension["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == url)
}

// ---------------------------------------------------------------------------------------------
// A full record

fn ods() -> OdsCode {
    OdsCode::parse("Y90001").expect("ods")
}

fn date(text: &str) -> ClinicalDate {
    ClinicalDate::parse(text).expect("date")
}

fn decimal(text: &str) -> Decimal {
    Decimal::parse(text).expect("decimal")
}

fn snomed(code: &str, display: &str) -> CodeableConcept {
    CodeableConcept::from_coding(Coding::new("http://snomed.info/sct", code).with_display(display))
}

fn provenance() -> Provenance {
    Provenance::new(ods(), SourceSystem::EmisStyle)
        .with_recorded(Instant::parse("2024-03-12T09:30:00Z").expect("instant"))
        .with_retrieved(Instant::parse("2025-06-01T14:05:09+01:00").expect("instant"))
        .with_author("Dr A Example")
        .with_status("active")
        .with_source_version("3")
}

fn item<T>(source_id: &str, content: T) -> RecordItem<T> {
    RecordItem {
        source_id: source_id.into(),
        content,
        provenance: provenance(),
        source_attributes: vec![],
    }
}

fn patient() -> (PatientAtPractice, Demographics) {
    let nhs = NhsNumber::parse("9990000018").expect("nhs");
    (
        PatientAtPractice {
            practice: ods(),
            source_patient_id: "{6A1B-guid}".into(),
            nhs_number: Some(nhs),
        },
        Demographics {
            nhs_number: Some(nhs),
            source_patient_id: "{6A1B-guid}".into(),
            family: Some("Smith".into()),
            given: vec!["Ann".into(), "Marie".into()],
            birth_date: Some(date("1950-02-03")),
            gender: Some("female".into()),
            postcode: Some("LS1 4AP".into()),
            registered_practice: Some(ods()),
            deceased: None,
        },
    )
}

fn full_record() -> FederatedRecord {
    let mut asthma = CodeableConcept::from_coding(
        Coding::new("http://read.info/readv2", "H33..").with_display("Asthma"),
    );
    asthma
        .add_translation(Coding::new("http://snomed.info/sct", "195967001").with_display("Asthma"));
    let mut problem = item(
        "problem/1 {guid}",
        Problem {
            code: asthma,
            status: ProblemStatus::Active,
            onset: Some(date("1998")),
            ended: None,
            significant: Some(true),
        },
    );
    problem.source_attributes = vec![SourceAttribute::new("emis:ProblemType", "Major")];
    let ended = item(
        "problem-2",
        Problem {
            code: snomed("38341003", "Hypertension"),
            status: ProblemStatus::Inactive,
            onset: Some(date("2001-07")),
            ended: Some(date("2010-05-04")),
            significant: None,
        },
    );
    let medication = item(
        "course-1",
        Medication {
            medication: CodeableConcept::from_coding(
                Coding::new("https://dmd.nhs.uk", "39732311000001104")
                    .with_display("Salbutamol 100micrograms/dose inhaler"),
            ),
            dosage: Some("Two puffs when required".into()),
            quantity: Some(Quantity::new(decimal("1"), "inhaler")),
            course: CourseKind::Repeat,
            status: MedicationStatus::Active,
            start: Some(date("2020-01-15")),
            end: None,
            issues: vec![
                MedicationIssue {
                    date: date("2020-01-15"),
                    quantity: Some(Quantity::new(decimal("1"), "inhaler")),
                },
                MedicationIssue {
                    date: date("2020-03-02T10:00:00Z"),
                    quantity: None,
                },
            ],
        },
    );
    let allergy = item(
        "allergy-1",
        Allergy {
            substance: snomed("91936005", "Allergy to penicillin"),
            reaction: Some(snomed("271807003", "Rash")),
            status: AllergyStatus::Active,
            recorded: Some(date("2012-06-01")),
        },
    );
    let hba1c = item(
        "obs-1",
        Observation {
            code: snomed("1049301000000100", "HbA1c level"),
            effective: Some(date("2024-02-01")),
            value: Some(ObservationValue::Quantity(
                Quantity::new(decimal("5.0"), "mmol/l")
                    .with_comparator(Comparator::LessThan)
                    .with_ucum_code("mmol/L"),
            )),
            components: vec![],
            note: Some("Fasting".into()),
        },
    );
    let blood_pressure = item(
        "obs-2",
        Observation {
            code: snomed("75367002", "Blood pressure"),
            effective: Some(date("2024-02-01T09:10:00Z")),
            value: None,
            components: vec![
                ObservationComponent {
                    code: snomed("72313002", "Systolic arterial pressure"),
                    value: ObservationValue::Quantity(
                        Quantity::new(decimal("140"), "mmHg").with_ucum_code("mm[Hg]"),
                    ),
                },
                ObservationComponent {
                    code: snomed("1091811000000102", "Diastolic arterial pressure"),
                    value: ObservationValue::Text("not recorded".into()),
                },
            ],
            note: None,
        },
    );
    let smoking = item(
        "obs-3",
        Observation {
            code: snomed("72166-2", "Tobacco smoking status"),
            effective: None,
            value: Some(ObservationValue::Concept(snomed("8517006", "Ex-smoker"))),
            components: vec![],
            note: None,
        },
    );
    let flu = item(
        "imm-1",
        Immunisation {
            vaccine: snomed("822851000000102", "Seasonal influenza vaccination"),
            date: Some(date("2023-10-12")),
            product: Some("Fluenz Tetra".into()),
        },
    );
    let undated = item(
        "imm-2",
        Immunisation {
            vaccine: CodeableConcept::from_text("Tetanus"),
            date: None,
            product: None,
        },
    );
    let consultation = item(
        "enc-1",
        Consultation {
            start: Some(date("2024-02-01T09:00:00Z")),
            kind: Some("Surgery consultation".into()),
            clinician: Some("Dr B Jones".into()),
            text: Some("Wheeze worse at night. Inhaler technique reviewed.".into()),
        },
    );
    let letter = item(
        "doc-1",
        Document {
            title: "Discharge summary".into(),
            content_type: "application/pdf".into(),
            created: Some(date("2024-01-20T16:45:00Z")),
        },
    );
    let (at, demographics) = patient();
    FederatedRecord {
        practice: ods(),
        patient: Some((at, demographics)),
        sections: vec![
            SectionContent::Problems(Section::from_items(
                RecordSection::Problems,
                vec![problem, ended],
                vec![SectionWarning::DataInTransit {
                    since: Some(date("2019")),
                }],
            )),
            SectionContent::Medications(Section::from_items(
                RecordSection::Medications,
                vec![medication],
                vec![],
            )),
            SectionContent::Allergies(Section::from_items(
                RecordSection::Allergies,
                vec![allergy],
                vec![SectionWarning::ConfidentialItemsWithheld],
            )),
            SectionContent::Observations(Section::from_items(
                RecordSection::Observations,
                vec![hba1c, blood_pressure, smoking],
                vec![SectionWarning::DataAwaitingFiling],
            )),
            SectionContent::Immunisations(Section::from_items(
                RecordSection::Immunisations,
                vec![flu, undated],
                vec![],
            )),
            SectionContent::Consultations(Section::from_items(
                RecordSection::Consultations,
                vec![consultation],
                vec![],
            )),
            SectionContent::Documents(Section::from_items(
                RecordSection::Documents,
                vec![letter],
                vec![],
            )),
        ],
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn every_resource_of_a_full_record_validates_and_every_reference_resolves() {
    let bundle = bundle_of(&full_record());
    check_bundle(&bundle).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bundle["type"], "collection");
    let count = |t| resources(&bundle, t).len();
    assert_eq!(
        [
            count("Patient"),
            count("List"),
            count("Condition"),
            count("MedicationStatement"),
            count("MedicationRequest"),
            count("AllergyIntolerance"),
            count("Observation"),
            count("Immunization"),
            count("Encounter"),
            count("DocumentReference"),
            count("OperationOutcome"),
        ],
        [1, 7, 2, 1, 2, 1, 3, 2, 1, 1, 0]
    );
}

#[test]
fn a_source_attribute_survives_with_its_source() {
    let bundle = bundle_of(&full_record());
    let condition = resources(&bundle, "Condition")[0];
    let attribute = extensions(condition, SOURCE_ATTRIBUTE_URL)
        .next()
        .expect("source attribute");
    assert_eq!(
        sub_extension(attribute, "name").map(|e| &e["valueString"]),
        Some(&json!("emis:ProblemType"))
    );
    assert_eq!(
        sub_extension(attribute, "value").map(|e| &e["valueString"]),
        Some(&json!("Major"))
    );
    assert_eq!(condition["meta"]["source"], "emis-style#Y90001");
    assert_eq!(condition["identifier"][0]["value"], "problem/1 {guid}");
}

#[test]
fn every_item_resource_carries_its_full_provenance() {
    let bundle = bundle_of(&full_record());
    let items: Vec<&Value> = bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| is_item(r))
        .collect();
    assert_eq!(items.len(), 13);
    for resource in items {
        let provenance = extensions(resource, ITEM_PROVENANCE_URL)
            .next()
            .expect("provenance");
        let value = |url| sub_extension(provenance, url).expect(url).clone();
        assert_eq!(
            value("source-organisation")["valueIdentifier"]["value"],
            "Y90001"
        );
        assert_eq!(value("source-system")["valueCode"], "emis-style");
        assert_eq!(value("recorded")["valueInstant"], "2024-03-12T09:30:00Z");
        assert_eq!(
            value("retrieved")["valueInstant"],
            "2025-06-01T14:05:09+01:00"
        );
        assert_eq!(value("author")["valueString"], "Dr A Example");
        assert_eq!(value("status")["valueString"], "active");
        assert_eq!(value("source-version")["valueString"], "3");
    }
}

#[test]
fn item_resources_keep_the_canonical_content() {
    let bundle = bundle_of(&full_record());
    let conditions = resources(&bundle, "Condition");
    assert_eq!(
        conditions[0]["clinicalStatus"]["coding"][0]["code"],
        "active"
    );
    assert_eq!(conditions[0]["onsetDateTime"], "1998");
    assert_eq!(
        conditions[0]["code"]["coding"][1]["extension"][0],
        json!({"url": CODING_ORIGIN_URL, "valueCode": "translated"})
    );
    assert_eq!(
        conditions[1]["clinicalStatus"]["coding"][0]["code"],
        "inactive"
    );
    assert_eq!(conditions[1]["abatementDateTime"], "2010-05-04");

    let statement = resources(&bundle, "MedicationStatement")[0];
    assert_eq!(statement["status"], "active");
    assert_eq!(statement["effectivePeriod"], json!({"start": "2020-01-15"}));
    assert_eq!(statement["dosage"][0]["text"], "Two puffs when required");
    assert_eq!(
        extensions(statement, COURSE_KIND_URL)
            .next()
            .map(|e| &e["valueCode"]),
        Some(&json!("repeat"))
    );
    let issues = resources(&bundle, "MedicationRequest");
    let derived: Vec<&Value> = statement["derivedFrom"]
        .as_array()
        .expect("derivedFrom")
        .iter()
        .map(|r| &r["reference"])
        .collect();
    assert_eq!(derived.len(), 2);
    for (issue, reference) in issues.iter().zip(derived) {
        assert_eq!(issue["intent"], "order");
        assert_eq!(
            reference.as_str(),
            Some(format!("urn:uuid:{}", issue["id"].as_str().expect("id")).as_str())
        );
        assert_eq!(
            issue["medicationCodeableConcept"],
            statement["medicationCodeableConcept"]
        );
    }
    assert_eq!(issues[0]["authoredOn"], "2020-01-15");
    assert_eq!(
        issues[0]["dispenseRequest"]["quantity"],
        json!({"value": 1, "unit": "inhaler"})
    );
    assert_eq!(issues[1]["authoredOn"], "2020-03-02T10:00:00Z");

    let allergy = resources(&bundle, "AllergyIntolerance")[0];
    assert_eq!(
        allergy["reaction"][0]["manifestation"][0]["coding"][0]["code"],
        "271807003"
    );
    assert_eq!(allergy["recordedDate"], "2012-06-01");

    let observations = resources(&bundle, "Observation");
    assert_eq!(
        observations[0]["valueQuantity"].to_string(),
        r#"{"value":5.0,"comparator":"<","unit":"mmol/l","system":"http://unitsofmeasure.org","code":"mmol/L"}"#
    );
    assert_eq!(observations[0]["note"][0]["text"], "Fasting");
    assert_eq!(
        observations[1]["component"][0]["valueQuantity"]["code"],
        "mm[Hg]"
    );
    assert_eq!(
        observations[1]["component"][1]["valueString"],
        "not recorded"
    );
    assert_eq!(
        observations[2]["valueCodeableConcept"]["coding"][0]["code"],
        "8517006"
    );

    let immunisations = resources(&bundle, "Immunization");
    assert_eq!(immunisations[0]["occurrenceDateTime"], "2023-10-12");
    assert_eq!(immunisations[0]["status"], "completed");
    assert!(immunisations[0].to_string().contains("Fluenz Tetra"));
    assert_eq!(immunisations[1]["vaccineCode"], json!({"text": "Tetanus"}));

    let encounter = resources(&bundle, "Encounter")[0];
    assert_eq!(encounter["period"]["start"], "2024-02-01T09:00:00Z");
    assert_eq!(encounter["type"][0]["text"], "Surgery consultation");
    assert_eq!(
        encounter["participant"][0]["individual"]["display"],
        "Dr B Jones"
    );
    assert!(
        encounter
            .to_string()
            .contains("Inhaler technique reviewed.")
    );

    let document = resources(&bundle, "DocumentReference")[0];
    assert_eq!(document["date"], "2024-01-20T16:45:00Z");
    assert_eq!(
        document["content"][0]["attachment"]["title"],
        "Discharge summary"
    );
    assert_eq!(
        document["content"][0]["attachment"]["contentType"],
        "application/pdf"
    );
}

#[test]
fn lists_point_at_their_items_in_order() {
    let bundle = bundle_of(&full_record());
    let lists = resources(&bundle, "List");
    let observations = resources(&bundle, "Observation");
    let entries: Vec<&str> = lists[3]["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["item"]["reference"].as_str())
        .collect();
    let ids: Vec<String> = observations
        .iter()
        .map(|o| format!("urn:uuid:{}", o["id"].as_str().expect("id")))
        .collect();
    assert_eq!(entries, ids);
    // Only the courses are list items; their issues hang off them.
    assert_eq!(lists[1]["entry"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_partial_record_validates_and_is_tagged() {
    let mut record = full_record();
    record.sections[1] =
        SectionContent::unavailable(RecordSection::Medications, "no answer within 2000 ms");
    record
        .sections
        .push(SectionContent::Problems(Section::from_items(
            RecordSection::Problems,
            vec![],
            vec![SectionWarning::ConfidentialItemsWithheld],
        )));
    let bundle = bundle_of(&record);
    check_bundle(&bundle).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bundle["meta"]["tag"][0]["code"], "partial");
    assert_eq!(resources(&bundle, "OperationOutcome").len(), 1);
    let unreachable = FederatedRecord {
        practice: ods(),
        patient: None,
        sections: RecordSection::ALL
            .iter()
            .map(|s| SectionContent::unavailable(*s, ""))
            .collect(),
    };
    check_bundle(&bundle_of(&unreachable)).unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------------------------
// Any canonical record

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z0-9 ]{1,12}",
        1 => "\\PC{0,8}",
        1 => Just(String::new()),
        1 => Just("  two  spaces ".to_string()),
    ]
}

fn clinical_date() -> impl Strategy<Value = ClinicalDate> {
    prop_oneof![
        Just("1998"),
        Just("2001-07"),
        Just("2024-02-29"),
        Just("2024-02-01T09:10:00Z"),
        Just("2025-06-01T14:05:09.123+01:00"),
    ]
    .prop_map(|t| ClinicalDate::parse(t).expect("date"))
}

fn coding() -> impl Strategy<Value = Coding> {
    let system = prop_oneof![
        Just("http://snomed.info/sct".to_string()),
        Just("http://read.info/readv2".to_string()),
        text(),
    ];
    (
        system,
        text(),
        proptest::option::of(text()),
        proptest::option::of(text()),
        any::<bool>(),
    )
        .prop_map(|(system, code, display, version, translated)| {
            let mut coding = Coding::new(system, code);
            coding.display = display;
            coding.version = version;
            if translated {
                coding.origin = keel_model::CodingOrigin::Translated;
            }
            coding
        })
}

fn concept() -> impl Strategy<Value = CodeableConcept> {
    (
        proptest::collection::vec(coding(), 0..3),
        proptest::option::of(text()),
    )
        .prop_map(|(codings, text)| {
            let mut concept = codings
                .into_iter()
                .fold(CodeableConcept::default(), CodeableConcept::with_coding);
            concept.text = text;
            concept
        })
}

fn quantity() -> impl Strategy<Value = Quantity> {
    let value = "-?(0|[1-9][0-9]{0,5})(\\.[0-9]{1,4})?";
    let comparator = proptest::option::of(prop_oneof![
        Just(Comparator::LessThan),
        Just(Comparator::LessOrEqual),
        Just(Comparator::GreaterOrEqual),
        Just(Comparator::GreaterThan),
    ]);
    (
        value,
        comparator,
        proptest::option::of(text()),
        proptest::option::of(text()),
        any::<bool>(),
    )
        .prop_map(|(value, comparator, unit, code, normalised)| {
            let value = Decimal::parse(&value).expect("decimal");
            let mut quantity = Quantity {
                value: value.clone(),
                comparator,
                unit,
                system: None,
                code: None,
                normalised: None,
            };
            if let Some(code) = code {
                quantity = quantity.with_ucum_code(code);
            }
            if normalised {
                quantity = quantity.with_normalised(value, "mmol/L");
            }
            quantity
        })
}

fn observation_value() -> impl Strategy<Value = ObservationValue> {
    prop_oneof![
        quantity().prop_map(ObservationValue::Quantity),
        text().prop_map(ObservationValue::Text),
        concept().prop_map(ObservationValue::Concept),
    ]
}

fn provenance_strategy() -> impl Strategy<Value = Provenance> {
    let system = prop_oneof![
        Just(SourceSystem::EmisStyle),
        Just(SourceSystem::TppStyle),
        Just(SourceSystem::GpConnect),
    ];
    let instant = proptest::option::of(
        prop_oneof![
            Just("2025-03-12T09:30:00Z"),
            Just("2025-06-01T14:05:09.5+01:00")
        ]
        .prop_map(|t| Instant::parse(t).expect("instant")),
    );
    (
        system,
        instant.clone(),
        instant,
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
    )
        .prop_map(
            |(system, recorded, retrieved, author, status, version)| Provenance {
                source_organisation: OdsCode::parse("Y90001").expect("ods"),
                source_system: system,
                recorded,
                retrieved,
                author,
                status,
                source_version: version,
            },
        )
}

fn record_item<T: std::fmt::Debug>(
    content: impl Strategy<Value = T>,
) -> impl Strategy<Value = RecordItem<T>> {
    let source_id = prop_oneof![Just("a".to_string()), Just("b".to_string()), text()];
    let attributes = proptest::collection::vec(
        (text(), text()).prop_map(|(n, v)| SourceAttribute::new(n, v)),
        0..3,
    );
    (source_id, content, provenance_strategy(), attributes).prop_map(
        |(source_id, content, provenance, source_attributes)| RecordItem {
            source_id,
            content,
            provenance,
            source_attributes,
        },
    )
}

fn warnings() -> impl Strategy<Value = Vec<SectionWarning>> {
    proptest::collection::vec(
        prop_oneof![
            Just(SectionWarning::ConfidentialItemsWithheld),
            Just(SectionWarning::DataAwaitingFiling),
            proptest::option::of(clinical_date())
                .prop_map(|since| SectionWarning::DataInTransit { since }),
        ],
        0..3,
    )
}

/// A section of `items`, or the section unavailable.
fn section<T: std::fmt::Debug + Clone + 'static>(
    key: RecordSection,
    content: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Section<T>> {
    prop_oneof![
        4 => (proptest::collection::vec(record_item(content), 0..4), warnings())
            .prop_map(move |(items, warnings)| Section::from_items(key, items, warnings)),
        1 => text().prop_map(move |reason| Section::unavailable(key, reason)),
    ]
}

fn problem() -> impl Strategy<Value = Problem> {
    (
        concept(),
        any::<bool>(),
        proptest::option::of(clinical_date()),
        proptest::option::of(clinical_date()),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(code, active, onset, ended, significant)| Problem {
            code,
            status: if active {
                ProblemStatus::Active
            } else {
                ProblemStatus::Inactive
            },
            onset,
            ended,
            significant,
        })
}

fn medication() -> impl Strategy<Value = Medication> {
    let issue = (clinical_date(), proptest::option::of(quantity()))
        .prop_map(|(date, quantity)| MedicationIssue { date, quantity });
    (
        concept(),
        proptest::option::of(text()),
        proptest::option::of(quantity()),
        any::<bool>(),
        prop_oneof![
            Just(MedicationStatus::Active),
            Just(MedicationStatus::Completed),
            Just(MedicationStatus::Stopped),
        ],
        proptest::option::of(clinical_date()),
        proptest::option::of(clinical_date()),
        proptest::collection::vec(issue, 0..3),
    )
        .prop_map(
            |(medication, dosage, quantity, acute, status, start, end, issues)| Medication {
                medication,
                dosage,
                quantity,
                course: if acute {
                    CourseKind::Acute
                } else {
                    CourseKind::Repeat
                },
                status,
                start,
                end,
                issues,
            },
        )
}

fn allergy() -> impl Strategy<Value = Allergy> {
    (
        concept(),
        proptest::option::of(concept()),
        any::<bool>(),
        proptest::option::of(clinical_date()),
    )
        .prop_map(|(substance, reaction, active, recorded)| Allergy {
            substance,
            reaction,
            status: if active {
                AllergyStatus::Active
            } else {
                AllergyStatus::Resolved
            },
            recorded,
        })
}

fn observation() -> impl Strategy<Value = Observation> {
    let component = (concept(), observation_value())
        .prop_map(|(code, value)| ObservationComponent { code, value });
    (
        concept(),
        proptest::option::of(clinical_date()),
        proptest::option::of(observation_value()),
        proptest::collection::vec(component, 0..3),
        proptest::option::of(text()),
    )
        .prop_map(|(code, effective, value, components, note)| Observation {
            code,
            effective,
            value,
            components,
            note,
        })
}

fn immunisation() -> impl Strategy<Value = Immunisation> {
    (
        concept(),
        proptest::option::of(clinical_date()),
        proptest::option::of(text()),
    )
        .prop_map(|(vaccine, date, product)| Immunisation {
            vaccine,
            date,
            product,
        })
}

fn consultation() -> impl Strategy<Value = Consultation> {
    (
        proptest::option::of(clinical_date()),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
    )
        .prop_map(|(start, kind, clinician, text)| Consultation {
            start,
            kind,
            clinician,
            text,
        })
}

fn document() -> impl Strategy<Value = Document> {
    (text(), text(), proptest::option::of(clinical_date())).prop_map(
        |(title, content_type, created)| Document {
            title,
            content_type,
            created,
        },
    )
}

fn record() -> impl Strategy<Value = FederatedRecord> {
    let sections = (
        section(RecordSection::Problems, problem()).prop_map(SectionContent::Problems),
        section(RecordSection::Medications, medication()).prop_map(SectionContent::Medications),
        section(RecordSection::Allergies, allergy()).prop_map(SectionContent::Allergies),
        section(RecordSection::Observations, observation()).prop_map(SectionContent::Observations),
        section(RecordSection::Immunisations, immunisation())
            .prop_map(SectionContent::Immunisations),
        section(RecordSection::Consultations, consultation())
            .prop_map(SectionContent::Consultations),
        section(RecordSection::Documents, document()).prop_map(SectionContent::Documents),
    );
    let gender = proptest::option::of(prop_oneof![
        Just("female".to_string()),
        Just("unknown".to_string()),
        text(),
    ]);
    (sections, any::<bool>(), gender).prop_map(|((p, m, a, o, i, c, d), asked, gender)| {
        let (at, mut demographics) = patient();
        demographics.gender = gender;
        FederatedRecord {
            practice: ods(),
            patient: asked.then_some((at, demographics)),
            sections: vec![p, m, a, o, i, c, d],
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_record_renders_a_valid_bundle_whose_lists_point_inside_it(record in record()) {
        let bundle = bundle_of(&record);
        prop_assert_eq!(check_bundle(&bundle), Ok(()));
        prop_assert_eq!(resources(&bundle, "List").len(), record.sections.len());
        prop_assert_eq!(
            resources(&bundle, "OperationOutcome").len(),
            usize::from(record.is_partial())
        );
        prop_assert_eq!(bundle_of(&record), bundle);
    }
}

#[test]
fn the_checks_catch_an_invalid_resource_and_a_dangling_reference() {
    let valid = bundle_of(&full_record());
    let mut bad_status = valid.clone();
    bad_status["entry"][8]["resource"]["status"] = json!("filed");
    assert!(check_bundle(&bad_status).is_err());
    let mut empty_date = valid.clone();
    empty_date["entry"][8]["resource"]["meta"]["source"] = json!("");
    assert!(check_bundle(&empty_date).is_err());
    let mut dangling = valid;
    dangling["entry"][8]["resource"]["subject"]["reference"] = json!("urn:uuid:nowhere");
    assert!(check_bundle(&dangling).is_err());
}
