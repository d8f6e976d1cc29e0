//! Unit tests of each check, with small hand-written resources, and a fuzz-ish
//! loop showing that validation never panics.

use super::*;
use serde_json::json;

fn issues(v: &Value) -> Vec<ValidationIssue> {
    validate(v)
}

fn errors_of(v: &Value) -> Vec<ValidationIssue> {
    validate(v)
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .collect()
}

/// Asserts exactly one error, of `kind` at `location`.
#[track_caller]
fn assert_one_error(v: &Value, kind: IssueKind, location: &str) {
    let errs = errors_of(v);
    assert_eq!(
        errs.len(),
        1,
        "expected one error at {location}, got {errs:#?}"
    );
    assert_eq!(errs[0].kind, kind, "{:#?}", errs[0]);
    assert_eq!(errs[0].location, location, "{:#?}", errs[0]);
    assert!(!errs[0].message.is_empty());
}

#[track_caller]
fn assert_valid(v: &Value) {
    let errs = errors_of(v);
    assert!(errs.is_empty(), "expected no errors, got {errs:#?}");
}

fn observation() -> Value {
    json!({
        "resourceType": "Observation",
        "id": "bp-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-03-01T10:15:00+00:00",
        "valueQuantity": {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
    })
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"lastUpdated": "2024-03-01T10:15:00.123Z", "profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"]},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Jane</div>"},
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
        "active": true,
        "name": [{"use": "official", "family": "Smith", "given": ["Jane", "Anne"], "prefix": ["Mrs"]}],
        "telecom": [{"system": "phone", "value": "01632 960587", "use": "home"}],
        "gender": "female",
        "birthDate": "1980-02-29",
        "deceasedBoolean": false,
        "address": [{"line": ["1 Trevelyan Square"], "city": "Leeds", "postalCode": "LS1 6AE"}],
        "multipleBirthInteger": 1,
        "contact": [{"relationship": [{"text": "Next of kin"}], "name": {"family": "Smith"}}],
        "generalPractitioner": [{"type": "Organization", "identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "Y12345"}}],
        "extension": [{
            "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
            "valueCodeableConcept": {"coding": [{"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategory", "code": "A"}]}
        }, {
            "url": "http://example.org/complex",
            "extension": [{"url": "part", "valueString": "x"}, {"url": "when", "valuePeriod": {"start": "2020"}}]
        }]
    })
}

#[test]
fn valid_resources_have_no_issues() {
    assert!(
        issues(&observation()).is_empty(),
        "{:#?}",
        issues(&observation())
    );
    assert!(issues(&patient()).is_empty(), "{:#?}", issues(&patient()));
}

// -- resource level ---------------------------------------------------------

#[test]
fn resource_must_be_an_object() {
    assert_one_error(&json!([1, 2]), IssueKind::Structure, "");
    assert_one_error(&json!("Patient"), IssueKind::Structure, "");
    assert_one_error(&Value::Null, IssueKind::Structure, "");
}

#[test]
fn resource_type_is_required_and_known() {
    assert_one_error(&json!({"id": "x"}), IssueKind::Required, "resourceType");
    assert_one_error(
        &json!({"resourceType": "Patientx"}),
        IssueKind::Structure,
        "resourceType",
    );
    assert_one_error(
        &json!({"resourceType": "DomainResource"}),
        IssueKind::Structure,
        "resourceType",
    );
    assert_one_error(
        &json!({"resourceType": "Quantity"}),
        IssueKind::Structure,
        "resourceType",
    );
    assert_one_error(
        &json!({"resourceType": 7}),
        IssueKind::Structure,
        "resourceType",
    );
    assert_valid(&json!({"resourceType": "Patient"}));
    assert_valid(&json!({"resourceType": "Basic", "code": {"text": "x"}}));
}

#[test]
fn resource_id_lexical_rules() {
    let mut p = patient();
    p["id"] = json!("a b");
    assert_one_error(&p, IssueKind::Value, "Patient.id");
    p["id"] = json!("x".repeat(65));
    assert_one_error(&p, IssueKind::Value, "Patient.id");
    p["id"] = json!("x".repeat(64));
    assert_valid(&p);
    p["id"] = json!("A-Za-z.0-9");
    assert_valid(&p);
    p["id"] = json!("a_b");
    assert_one_error(&p, IssueKind::Value, "Patient.id");
    p["id"] = json!(12);
    assert_one_error(&p, IssueKind::Value, "Patient.id");
}

// -- unknown elements -------------------------------------------------------

#[test]
fn unknown_elements() {
    let mut p = patient();
    p["foo"] = json!("bar");
    assert_one_error(&p, IssueKind::Structure, "Patient.foo");

    let mut p = patient();
    p["name"][0]["foo"] = json!("bar");
    assert_one_error(&p, IssueKind::Structure, "Patient.name[0].foo");

    // resourceType only at resource roots
    let mut p = patient();
    p["name"][0]["resourceType"] = json!("HumanName");
    assert_one_error(&p, IssueKind::Structure, "Patient.name[0].resourceType");

    // backbone element children by path
    let mut p = patient();
    p["contact"][0]["gender"] = json!("male");
    assert_valid(&p);
    p["contact"][0]["birthDate"] = json!("1970");
    assert_one_error(&p, IssueKind::Structure, "Patient.contact[0].birthDate");

    // DSTU2-era comments are not R4
    let mut p = patient();
    p["fhir_comments"] = json!(["hi"]);
    assert_one_error(&p, IssueKind::Structure, "Patient.fhir_comments");
}

#[test]
fn choice_elements() {
    let mut o = observation();
    o["valueFoo"] = json!(1);
    assert!(
        errors_of(&o)
            .iter()
            .any(|e| e.location == "Observation.valueFoo")
    );

    // a bare choice name is not a JSON property
    let mut o = observation();
    o.as_object_mut().map(|m| m.remove("valueQuantity"));
    o["value"] = json!("x");
    assert_one_error(&o, IssueKind::Structure, "Observation.value");

    // only one variant
    let mut o = observation();
    o["valueString"] = json!("high");
    assert_one_error(&o, IssueKind::Structure, "Observation.valueString");

    // a variant's type is checked
    let mut o = observation();
    o.as_object_mut().map(|m| m.remove("valueQuantity"));
    o["valueBoolean"] = json!("true");
    assert_one_error(&o, IssueKind::Value, "Observation.valueBoolean");
    o["valueBoolean"] = json!(true);
    assert_valid(&o);

    // typed variants that are data types
    let mut o = observation();
    o.as_object_mut().map(|m| m.remove("effectiveDateTime"));
    o["effectivePeriod"] = json!({"start": "2024-01-01", "end": "2024-01-02"});
    assert_valid(&o);
    o["effectivePeriod"]["start"] = json!("2024-01-32");
    assert_one_error(&o, IssueKind::Value, "Observation.effectivePeriod.start");
}

// -- cardinality ----------------------------------------------------------

#[test]
fn wrong_array_ness() {
    let mut p = patient();
    p["name"] = json!({"family": "Smith"});
    assert_one_error(&p, IssueKind::Structure, "Patient.name");

    let mut p = patient();
    p["gender"] = json!(["female"]);
    assert_one_error(&p, IssueKind::Structure, "Patient.gender");

    let mut p = patient();
    p["name"][0]["given"] = json!("Jane");
    assert_one_error(&p, IssueKind::Structure, "Patient.name[0].given");

    let mut p = patient();
    p["name"][0]["family"] = json!(["Smith"]);
    assert_one_error(&p, IssueKind::Structure, "Patient.name[0].family");
}

#[test]
fn missing_required_elements() {
    let o = json!({"resourceType": "Observation", "code": {"text": "x"}});
    assert_one_error(&o, IssueKind::Required, "Observation.status");

    let o = json!({"resourceType": "Observation", "status": "final"});
    assert_one_error(&o, IssueKind::Required, "Observation.code");

    // required elements in backbone elements, with array indices
    let mut p = patient();
    p["link"] =
        json!([{"other": {"reference": "Patient/2"}, "type": "seealso"}, {"type": "refer"}]);
    assert_one_error(&p, IssueKind::Required, "Patient.link[1].other");

    // required choice element
    let q = json!({
        "resourceType": "Questionnaire", "status": "active",
        "item": [{"linkId": "1", "type": "boolean", "enableWhen": [{"question": "0", "operator": "exists"}]}]
    });
    assert_one_error(
        &q,
        IssueKind::Required,
        "Questionnaire.item[0].enableWhen[0].answer[x]",
    );

    // a primitive's extension stands in for its value (data-absent-reason)
    let o = json!({
        "resourceType": "Observation",
        "_status": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]},
        "code": {"text": "x"}
    });
    assert_valid(&o);
}

#[test]
fn content_reference_elements() {
    let q = json!({
        "resourceType": "Questionnaire", "status": "draft",
        "item": [{"linkId": "1", "type": "group", "item": [
            {"linkId": "1.1", "type": "string", "item": [{"type": "display", "text": "hi"}]}
        ]}]
    });
    assert_one_error(
        &q,
        IssueKind::Required,
        "Questionnaire.item[0].item[0].item[0].linkId",
    );
    let mut q = q;
    q["item"][0]["item"][0]["item"][0]["linkId"] = json!("1.1.1");
    assert_valid(&q);
    q["item"][0]["item"][0]["bogus"] = json!(true);
    assert_one_error(
        &q,
        IssueKind::Structure,
        "Questionnaire.item[0].item[0].bogus",
    );
}

// -- JSON rules -----------------------------------------------------------

#[test]
fn empty_and_null_values() {
    let mut p = patient();
    p["maritalStatus"] = json!({});
    assert_one_error(&p, IssueKind::Structure, "Patient.maritalStatus");

    let mut p = patient();
    p["name"] = json!([]);
    assert_one_error(&p, IssueKind::Structure, "Patient.name");

    let mut p = patient();
    p["active"] = Value::Null;
    assert_one_error(&p, IssueKind::Structure, "Patient.active");

    let mut p = patient();
    p["name"][0]["family"] = json!("");
    assert_one_error(&p, IssueKind::Value, "Patient.name[0].family");

    let mut p = patient();
    p["name"] = json!([null]);
    assert_one_error(&p, IssueKind::Structure, "Patient.name[0]");
}

#[test]
fn primitive_extensions() {
    let ext = json!({"extension": [{"url": "http://example.org/x", "valueString": "y"}]});
    let mut p = patient();
    p["_birthDate"] = ext.clone();
    p["_gender"] = json!({"id": "g1"});
    assert_valid(&p);

    // _x on a complex element
    let mut p = patient();
    p["_name"] = json!([ext.clone()]);
    assert_one_error(&p, IssueKind::Structure, "Patient._name");

    // _x for an unknown element
    let mut p = patient();
    p["_nickname"] = ext.clone();
    assert_one_error(&p, IssueKind::Structure, "Patient._nickname");

    // wrong shape
    let mut p = patient();
    p["_birthDate"] = json!("x");
    assert_one_error(&p, IssueKind::Structure, "Patient._birthDate");
    p["_birthDate"] = json!({"url": "http://example.org"});
    assert_one_error(&p, IssueKind::Structure, "Patient._birthDate.url");

    // aligned arrays with nulls
    let mut p = patient();
    p["name"][0]["given"] = json!(["Jane", null]);
    p["name"][0]["_given"] = json!([null, ext.clone()]);
    assert_valid(&p);

    // null without a matching extension
    let mut p = patient();
    p["name"][0]["given"] = json!(["Jane", null]);
    assert_one_error(&p, IssueKind::Structure, "Patient.name[0].given[1]");

    // misaligned
    let mut p = patient();
    p["name"][0]["_given"] = json!([ext.clone()]);
    assert_one_error(&p, IssueKind::Structure, "Patient.name[0]._given");

    // both null at one index
    let mut p = patient();
    p["name"][0]["given"] = json!(["Jane", null]);
    p["name"][0]["_given"] = json!([ext.clone(), null]);
    let errs = errors_of(&p);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_eq!(errs[0].location, "Patient.name[0].given[1]");
    assert_eq!(errs[1].location, "Patient.name[0]._given[1]");

    // extension inside _x is validated as Extension
    let mut p = patient();
    p["_birthDate"] = json!({"extension": [{"valueString": "y"}]});
    assert_one_error(
        &p,
        IssueKind::Required,
        "Patient._birthDate.extension[0].url",
    );

    // _x of a choice variant
    let mut o = observation();
    o.as_object_mut().map(|m| m.remove("valueQuantity"));
    o["valueString"] = json!("x");
    o["_valueString"] = ext;
    assert_valid(&o);
}

// -- extensions and contained resources -------------------------------------

#[test]
fn extensions() {
    let mut p = patient();
    p["extension"] = json!([{"valueString": "x"}]);
    assert_one_error(&p, IssueKind::Required, "Patient.extension[0].url");

    let mut p = patient();
    p["extension"] = json!([{"url": "http://example.org/x", "valueString": "x", "valueCode": "y"}]);
    assert_one_error(&p, IssueKind::Structure, "Patient.extension[0].valueCode");

    let mut p = patient();
    p["modifierExtension"] = json!([{"url": "http://example.org/x", "valueDate": "2020-02-30"}]);
    assert_one_error(
        &p,
        IssueKind::Value,
        "Patient.modifierExtension[0].valueDate",
    );

    let mut p = patient();
    p["name"][0]["extension"] =
        json!([{"url": "http://example.org/x", "extension": [{"url": "a", "valueFoo": 1}]}]);
    assert_one_error(
        &p,
        IssueKind::Structure,
        "Patient.name[0].extension[0].extension[0].valueFoo",
    );

    let mut p = patient();
    p["extension"] = json!({"url": "http://example.org/x", "valueString": "x"});
    assert_one_error(&p, IssueKind::Structure, "Patient.extension");

    let mut p = patient();
    p["extension"][0]["url"] = json!("has space");
    assert_one_error(&p, IssueKind::Value, "Patient.extension[0].url");
}

#[test]
fn contained_and_nested_resources() {
    let mut p = patient();
    p["contained"] = json!([{"resourceType": "Organization", "id": "o1", "name": "GP", "foo": 1}]);
    assert_one_error(&p, IssueKind::Structure, "Patient.contained[0].foo");

    let mut p = patient();
    p["contained"] = json!([{"id": "o1", "name": "GP"}]);
    assert_one_error(&p, IssueKind::Required, "Patient.contained[0].resourceType");

    let mut p = patient();
    p["contained"] = json!([{"resourceType": "Nope"}]);
    assert_one_error(
        &p,
        IssueKind::Structure,
        "Patient.contained[0].resourceType",
    );

    let mut o = observation();
    o["status"] = json!("done");
    let bundle = json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:0b9d5a61-4f67-4b1a-9fb4-8e9b4a7d2b11", "resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {"resource": o, "request": {"method": "POST", "url": "Observation"}}
        ]
    });
    assert_one_error(
        &bundle,
        IssueKind::CodeInvalid,
        "Bundle.entry[1].resource.status",
    );

    let mut bundle = bundle;
    bundle["entry"][1]["resource"] = observation();
    assert_valid(&bundle);
    bundle["entry"][0]["request"]["method"] = json!("FETCH");
    assert_one_error(
        &bundle,
        IssueKind::CodeInvalid,
        "Bundle.entry[0].request.method",
    );
    bundle["entry"][0]["request"]["method"] = json!("POST");
    bundle["entry"][0]["fullUrl"] = json!("urn:uuid:0B9D5A61");
    assert_valid(&bundle); // fullUrl is a uri, not a uuid
}

// -- codes --------------------------------------------------------------------

#[test]
fn required_binding_codes() {
    let mut o = observation();
    o["status"] = json!("done");
    assert_one_error(&o, IssueKind::CodeInvalid, "Observation.status");
    o["status"] = json!("Final");
    assert_one_error(&o, IssueKind::CodeInvalid, "Observation.status");
    o["status"] = json!("entered-in-error");
    assert_valid(&o);

    let mut p = patient();
    p["gender"] = json!("M");
    assert_one_error(&p, IssueKind::CodeInvalid, "Patient.gender");

    // code lexical rules come first
    let mut p = patient();
    p["gender"] = json!(" male");
    assert_one_error(&p, IssueKind::Value, "Patient.gender");

    // codes in data types (Quantity.comparator, ContactPoint.system, HumanName.use)
    let mut p = patient();
    p["telecom"][0]["system"] = json!("pager-ish");
    p["name"][0]["use"] = json!("nickname");
    p["address"][0]["use"] = json!("home");
    assert_one_error(&p, IssueKind::CodeInvalid, "Patient.telecom[0].system");

    // unenumerable value sets (BCP 13 mime types) are not checked
    let mut p = patient();
    p["photo"] = json!([{"contentType": "application/x-whatever", "data": "aGVsbG8="}]);
    assert_valid(&p);
}

#[test]
fn required_binding_codeable_concepts() {
    let condition = json!({
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "subject": {"reference": "Patient/p1"}
    });
    assert!(issues(&condition).is_empty(), "{:#?}", issues(&condition));

    let mut c = condition.clone();
    c["clinicalStatus"]["coding"][0]["code"] = json!("bogus");
    let all = issues(&c);
    let errs = errors_of(&c);
    assert_eq!(errs.len(), 1, "{all:#?}");
    assert_eq!(errs[0].kind, IssueKind::CodeInvalid);
    assert_eq!(errs[0].location, "Condition.clinicalStatus.coding[0].code");

    // no coding from the value set: only a warning
    let mut c = condition;
    c["clinicalStatus"] = json!({"text": "active"});
    let all = issues(&c);
    assert!(errors_of(&c).is_empty());
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].severity, Severity::Warning);
    assert_eq!(all[0].location, "Condition.clinicalStatus");
}

// -- primitive values -------------------------------------------------------

#[test]
fn bad_dates() {
    let mut p = patient();
    for bad in [
        "1990-02-30",
        "1990-13-01",
        "1990-1-01",
        "90-01-01",
        "0000",
        "1990-01-01T10:00:00Z",
        "1990/01/01",
        "1990-02-29",
    ] {
        p["birthDate"] = json!(bad);
        assert_one_error(&p, IssueKind::Value, "Patient.birthDate");
    }
    for good in ["1990", "1990-07", "2000-02-29", "2024-02-29", "0001-01-01"] {
        p["birthDate"] = json!(good);
        assert_valid(&p);
    }

    let mut o = observation();
    for bad in [
        "2024-03-01T10:15:00",
        "2024-03-01T10:15Z",
        "2024-03-01T24:00:00Z",
        "2024-03-01T10:15:00+15:00",
        "2024-03T10:15:00Z",
        "2024-03-01T10:15:00.Z",
        "2024-03-01 10:15:00Z",
    ] {
        o["effectiveDateTime"] = json!(bad);
        assert_one_error(&o, IssueKind::Value, "Observation.effectiveDateTime");
    }
    for good in [
        "2024",
        "2024-03",
        "2024-03-01",
        "2024-03-01T10:15:00Z",
        "2024-03-01T23:59:60.123456+14:00",
        "2024-03-01T10:15:00-03:30",
    ] {
        o["effectiveDateTime"] = json!(good);
        assert_valid(&o);
    }

    let mut o = observation();
    o["issued"] = json!("2024-03-01");
    assert_one_error(&o, IssueKind::Value, "Observation.issued");
    o["issued"] = json!("2024-03-01T10:15:00.5+01:00");
    assert_valid(&o);

    let mut o = observation();
    o.as_object_mut().map(|m| m.remove("valueQuantity"));
    o["valueTime"] = json!("25:00:00");
    assert_one_error(&o, IssueKind::Value, "Observation.valueTime");
    o["valueTime"] = json!("08:30:00");
    assert_valid(&o);
}

#[test]
fn bad_primitive_in_array_location() {
    let mut p = patient();
    p["name"][0]["given"] = json!(["Jane", ""]);
    assert_one_error(&p, IssueKind::Value, "Patient.name[0].given[1]");
    p["name"][0]["given"] = json!(["Jane", 3]);
    assert_one_error(&p, IssueKind::Value, "Patient.name[0].given[1]");
}

#[test]
fn numbers_and_booleans() {
    let mut p = patient();
    p["active"] = json!("true");
    assert_one_error(&p, IssueKind::Value, "Patient.active");

    let mut p = patient();
    p.as_object_mut().map(|m| m.remove("multipleBirthInteger"));
    for bad in [
        "1.5",
        "1.0",
        "1e2",
        "2147483648",
        "-2147483649",
        "99999999999999999999999",
    ] {
        p["multipleBirthInteger"] = serde_json::from_str(bad).expect("number");
        assert_one_error(&p, IssueKind::Value, "Patient.multipleBirthInteger");
    }
    p["multipleBirthInteger"] = json!("2");
    assert_one_error(&p, IssueKind::Value, "Patient.multipleBirthInteger");
    for good in ["0", "-5", "2147483647", "-2147483648"] {
        p["multipleBirthInteger"] = serde_json::from_str(good).expect("number");
        assert_valid(&p);
    }

    // positiveInt / unsignedInt
    let base = json!({"resourceType": "Immunization", "status": "completed",
        "vaccineCode": {"text": "x"}, "patient": {"reference": "Patient/1"}, "occurrenceString": "2020",
        "protocolApplied": [{"doseNumberPositiveInt": 1}]});
    assert_valid(&base);
    let mut i = base.clone();
    i["protocolApplied"][0]["doseNumberPositiveInt"] = json!(0);
    assert_one_error(
        &i,
        IssueKind::Value,
        "Immunization.protocolApplied[0].doseNumberPositiveInt",
    );
    let mut p = patient();
    p["photo"] = json!([{"size": -1}]);
    assert_one_error(&p, IssueKind::Value, "Patient.photo[0].size");
    p["photo"] = json!([{"size": 0}]);
    assert_valid(&p);

    // decimals: any JSON number, never a string
    let mut o = observation();
    o["valueQuantity"]["value"] = serde_json::from_str("1.50e3").expect("number");
    assert_valid(&o);
    o["valueQuantity"]["value"] = json!("120");
    assert_one_error(&o, IssueKind::Value, "Observation.valueQuantity.value");
}

#[test]
fn string_like_primitives() {
    let mut p = patient();
    p["identifier"][0]["system"] = json!("https://example.org/has space");
    assert_one_error(&p, IssueKind::Value, "Patient.identifier[0].system");

    let mut p = patient();
    p["text"]["div"] = json!("just text");
    assert_one_error(&p, IssueKind::Value, "Patient.text.div");

    let mut p = patient();
    p["photo"] = json!([{"data": "abc"}]);
    assert_one_error(&p, IssueKind::Value, "Patient.photo[0].data");
    p["photo"] = json!([{"data": "ab$="}]);
    assert_one_error(&p, IssueKind::Value, "Patient.photo[0].data");
    p["photo"] = json!([{"data": "aGVs\nbG8="}]);
    assert_valid(&p);

    let mut p = patient();
    p["name"][0]["text"] = json!("x".repeat(MAX_STRING_BYTES + 1));
    assert_one_error(&p, IssueKind::TooLong, "Patient.name[0].text");

    let mut p = patient();
    p["name"][0]["text"] = json!("bell\u{7}");
    let all = issues(&p);
    assert!(errors_of(&p).is_empty());
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].severity, Severity::Warning);
    assert_eq!(all[0].location, "Patient.name[0].text");
}

#[test]
fn lexical_checkers() {
    assert!(
        is_code("final")
            && is_code("a b")
            && !is_code("a  b")
            && !is_code(" a")
            && !is_code("a\n")
            && !is_code("")
    );
    assert!(is_id("a.B-9") && !is_id("") && !is_id("a/b"));
    assert!(
        is_oid("urn:oid:1.2.840.10008")
            && !is_oid("urn:oid:3.1")
            && !is_oid("urn:oid:1")
            && !is_oid("urn:oid:1.02")
            && !is_oid("1.2.3")
    );
    assert!(is_uuid("urn:uuid:a76d9bbf-f293-4fb7-ad4c-2851cac77162"));
    assert!(!is_uuid("urn:uuid:A76D9BBF-F293-4FB7-AD4C-2851CAC77162"));
    assert!(!is_uuid("a76d9bbf-f293-4fb7-ad4c-2851cac77162"));
    assert!(is_base64("aGVsbG8=") && !is_base64("") && !is_base64("   ") && !is_base64("aGVsbG8"));
    assert!(
        is_date("2024")
            && is_date("2024-12")
            && is_date("2024-12-31")
            && !is_date("2024-12-31T00:00:00Z")
            && !is_date("1900-02-29")
    );
    assert!(
        is_date_time("2015-02-07T13:28:17.239+02:00")
            && !is_date_time("2015-02-07T13:28:17")
            && !is_date_time("2015-02-07T13:28Z")
    );
    assert!(
        is_instant("2015-02-07T13:28:17.239+02:00")
            && !is_instant("2015-02-07")
            && !is_instant("2015-02-07T13:28:17+14:01")
    );
    assert!(
        is_time("00:00:00")
            && is_time("23:59:59.999")
            && !is_time("24:00:00")
            && !is_time("12:00")
            && !is_time("12:00:00Z")
    );
    assert!(
        is_xhtml_div("<div xmlns=\"http://www.w3.org/1999/xhtml\"/>")
            && is_xhtml_div("<?xml version=\"1.0\"?>\n<div>x</div>")
            && !is_xhtml_div("<p>x</p>")
    );
    assert_eq!(parse_integer("-0"), Some(0));
    assert_eq!(parse_integer("007"), None);
    assert_eq!(parse_integer("1.0"), None);
}

#[test]
fn too_deep_nesting_is_reported_not_followed() {
    let mut ext = json!({"url": "http://example.org/leaf", "valueString": "x"});
    for _ in 0..500 {
        ext = json!({"url": "http://example.org/n", "extension": [ext]});
    }
    let mut p = patient();
    p["extension"] = json!([ext]);
    let errs = errors_of(&p);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].kind, IssueKind::TooDeep);
}

#[test]
fn issue_display() {
    let mut p = patient();
    p["gender"] = json!("M");
    let errs = errors_of(&p);
    let text = errs[0].to_string();
    assert!(
        text.starts_with("error [code-invalid] at Patient.gender:"),
        "{text}"
    );
    assert!(has_errors(&errs));
}

// -- robustness ---------------------------------------------------------------

/// xorshift64*: a tiny deterministic generator for the fuzz loop.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const KEYS: &[&str] = &[
    "resourceType",
    "id",
    "value",
    "valueQuantity",
    "valueString",
    "_value",
    "_valueString",
    "extension",
    "modifierExtension",
    "url",
    "contained",
    "coding",
    "code",
    "system",
    "given",
    "_given",
    "family",
    "status",
    "_status",
    "item",
    "linkId",
    "entry",
    "resource",
    "div",
    "text",
    "name",
    "",
    "_",
    "__x",
    "valueX",
    "reference",
    "birthDate",
    "_birthDate",
];

fn random_leaf(rng: &mut Rng) -> Value {
    let numbers = [
        "0",
        "-1",
        "1.5",
        "1e400",
        "-0",
        "2147483648",
        "123456789012345678901234567890",
    ];
    match rng.below(14) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => serde_json::from_str(numbers[rng.below(numbers.len())]).unwrap_or(Value::Null),
        3 => json!(""),
        4 => json!(" "),
        5 => json!("2020-13-45T25:61:61+99:99"),
        6 => json!([]),
        7 => json!([null]),
        8 => json!({}),
        9 => json!({"resourceType": "Patient"}),
        10 => json!({"extension": [{}]}),
        11 => json!({"url": 5, "valueFoo": [[]]}),
        12 => json!("\u{0}\u{7}é漢字"),
        _ => json!("x"),
    }
}

/// Replaces, removes or adds something at a random place of `v`.
fn mutate(v: &mut Value, rng: &mut Rng, depth: usize) {
    let descend = depth < 12 && rng.below(3) != 0;
    match v {
        Value::Object(map) if !map.is_empty() && descend => {
            let i = rng.below(map.len());
            if let Some((_, child)) = map.iter_mut().nth(i) {
                mutate(child, rng, depth + 1);
            }
        }
        Value::Array(items) if !items.is_empty() && descend => {
            let i = rng.below(items.len());
            mutate(&mut items[i], rng, depth + 1);
        }
        _ => match rng.below(6) {
            0 => *v = random_leaf(rng),
            1 => {
                if let Value::Object(map) = v {
                    let k = KEYS[rng.below(KEYS.len())];
                    map.insert(k.to_string(), random_leaf(rng));
                } else {
                    *v = random_leaf(rng);
                }
            }
            2 => {
                if let Value::Object(map) = v
                    && let Some(k) = map.keys().nth(rng.below(map.len())).cloned()
                {
                    map.remove(&k);
                }
            }
            3 => *v = Value::Array(vec![v.clone(), random_leaf(rng)]),
            4 => {
                let mut o = Map::new();
                o.insert(KEYS[rng.below(KEYS.len())].to_string(), v.clone());
                *v = Value::Object(o);
            }
            _ => {
                if let Value::Array(items) = v {
                    items.push(Value::Null);
                } else {
                    *v = json!([v.clone(), null]);
                }
            }
        },
    }
}

#[test]
fn never_panics_on_mutated_resources() {
    let seeds = [
        patient(),
        observation(),
        json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient()}, {"resource": observation()}]}),
        json!({"resourceType": "Questionnaire", "status": "draft", "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "2", "type": "string"}]}]}),
        json!({"resourceType": "Parameters", "parameter": [{"name": "x", "valueString": "y"}, {"name": "r", "resource": observation()}]}),
        json!({"resourceType": "Patient", "contained": [observation()], "name": [{"given": ["a", null], "_given": [null, {"id": "x"}]}]}),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut total_issues = 0usize;
    let iterations = 3000;
    for n in 0..iterations {
        let mut v = seeds[n % seeds.len()].clone();
        let rounds = 1 + rng.below(6);
        for _ in 0..rounds {
            mutate(&mut v, &mut rng, 0);
        }
        let found = validate(&v);
        for issue in &found {
            assert!(!issue.message.is_empty());
        }
        total_issues += found.len();
    }
    // arbitrary top-level shapes
    for _ in 0..500 {
        let mut v = random_leaf(&mut rng);
        mutate(&mut v, &mut rng, 0);
        let _ = validate(&v);
    }
    assert!(
        total_issues > iterations / 2,
        "mutations should mostly be caught"
    );
}
