//! One FHIR R4 resource (two or more for a medication course) per canonical record item.

use keel_model::record::{
    Allergy, AllergyStatus, Consultation, CourseKind, Document, Immunisation, Medication,
    MedicationStatus, Observation, ObservationValue, Problem, ProblemStatus, RecordItem,
};
use keel_model::{Precision, Provenance};
use serde_json::{Value, json};

use super::datatypes::{
    Obj, concept, data_absent, meta_source, object, provenance_extension, quantity,
    required_concept, source_attribute,
};
use super::ids::{Ids, urn};
use super::{
    CONSULTATION_TEXT_URL, COURSE_KIND_URL, COURSE_QUANTITY_URL, PROBLEM_SIGNIFICANT_URL,
    SOURCE_ITEM_SYSTEM, VACCINE_PRODUCT_URL,
};

/// One resource ready for the Bundle.
#[derive(Debug)]
pub(super) struct Rendered {
    pub(super) id: String,
    pub(super) resource: Value,
}

/// What every item resource of a record shares: the subject and the Bundle's ids.
pub(super) struct ItemContext<'a> {
    /// The reference to the patient.
    pub(super) subject: &'a Value,
    pub(super) ids: &'a mut Ids,
    /// The section key, part of every item id.
    pub(super) section: &'static str,
}

impl ItemContext<'_> {
    fn item_id(&mut self, source_id: &str) -> String {
        self.ids.mint(&["item", self.section, source_id])
    }
}

/// Renders a section's items into `out`; returns the reference to each item's resource.
pub(super) fn render_items<T>(
    items: &[RecordItem<T>],
    ctx: &mut ItemContext<'_>,
    render: fn(&RecordItem<T>, &str, &mut ItemContext<'_>, &mut Vec<Rendered>),
    out: &mut Vec<Rendered>,
) -> Vec<String> {
    items
        .iter()
        .map(|item| {
            let id = ctx.item_id(&item.source_id);
            let reference = urn(&id);
            render(item, &id, ctx, out);
            reference
        })
        .collect()
}

/// The elements every item resource starts with: type, id, `meta.source`, the provenance and
/// source-attribute extensions (then `extra` ones), and the source's identifier of the item.
fn item_base<T>(resource_type: &str, id: &str, item: &RecordItem<T>, extra: Vec<Value>) -> Obj {
    let mut out = base(resource_type, id, &item.provenance);
    let mut extensions = vec![provenance_extension(&item.provenance)];
    extensions.extend(item.source_attributes.iter().filter_map(source_attribute));
    extensions.extend(extra);
    out.set("extension", Value::Array(extensions));
    if !item.source_id.is_empty() {
        out.set(
            "identifier",
            json!([{"system": SOURCE_ITEM_SYSTEM, "value": item.source_id}]),
        );
    }
    out
}

fn base(resource_type: &str, id: &str, provenance: &Provenance) -> Obj {
    let mut out = Obj::with_capacity(16);
    out.set("resourceType", Value::from(resource_type))
        .set("id", Value::from(id))
        .set("meta", meta_source(provenance));
    out
}

fn push(out: &mut Vec<Rendered>, id: &str, resource: Obj) {
    out.push(Rendered {
        id: id.to_owned(),
        resource: resource.build(),
    });
}

/// Condition (problem-list-item). Significance has no R4 element: a
/// [`PROBLEM_SIGNIFICANT_URL`] extension.
pub(super) fn problem(
    item: &RecordItem<Problem>,
    id: &str,
    ctx: &mut ItemContext<'_>,
    out: &mut Vec<Rendered>,
) {
    let problem = &item.content;
    let significance = problem
        .significant
        .map(|significant| json!({"url": PROBLEM_SIGNIFICANT_URL, "valueBoolean": significant}));
    let mut resource = item_base("Condition", id, item, significance.into_iter().collect());
    let status = match problem.status {
        ProblemStatus::Active => "active",
        ProblemStatus::Inactive => "inactive",
    };
    resource
        .set(
            "clinicalStatus",
            json!({"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": status
            }]}),
        )
        .set(
            "category",
            json!([{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                "code": "problem-list-item",
                "display": "Problem List Item"
            }]}]),
        )
        .set_some("code", concept(&problem.code))
        .set("subject", ctx.subject.clone())
        .date_time("onsetDateTime", problem.onset.as_ref())
        .date_time("abatementDateTime", problem.ended.as_ref());
    push(out, id, resource);
}

/// MedicationStatement for the course, and a MedicationRequest (intent `order`, status
/// `completed`) per issue. The statement lists its issues in `derivedFrom` (R4: "links the
/// MedicationStatement to the underlying MedicationRequest"); each issue carries the course's
/// kind as `courseOfTherapyType` (acute → `acute`, repeat → `continuous`). The course's kind and
/// quantity have no MedicationStatement element: [`COURSE_KIND_URL`] and
/// [`COURSE_QUANTITY_URL`] extensions.
pub(super) fn medication(
    item: &RecordItem<Medication>,
    id: &str,
    ctx: &mut ItemContext<'_>,
    out: &mut Vec<Rendered>,
) {
    let course = &item.content;
    let medication = required_concept(&course.medication);
    let (kind, therapy) = match course.course {
        CourseKind::Acute => ("acute", "acute"),
        CourseKind::Repeat => ("repeat", "continuous"),
    };
    let mut issue_references = Vec::with_capacity(course.issues.len());
    for (n, issue) in course.issues.iter().enumerate() {
        let issue_id = ctx
            .ids
            .mint(&["medication-issue", &item.source_id, &n.to_string()]);
        issue_references.push(json!({"reference": urn(&issue_id)}));
        let mut request = base("MedicationRequest", &issue_id, &item.provenance);
        request
            .set(
                "extension",
                Value::Array(vec![provenance_extension(&item.provenance)]),
            )
            .set("status", Value::from("completed"))
            .set("intent", Value::from("order"))
            .set("medicationCodeableConcept", medication.clone())
            .set("subject", ctx.subject.clone())
            .date_time("authoredOn", Some(&issue.date))
            .set(
                "courseOfTherapyType",
                json!({"coding": [{
                    "system":
                        "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
                    "code": therapy
                }]}),
            )
            .set_some(
                "dispenseRequest",
                issue
                    .quantity
                    .as_ref()
                    .map(|q| object([("quantity", quantity(q, true))])),
            );
        push(out, &issue_id, request);
    }
    let mut course_extensions = vec![json!({"url": COURSE_KIND_URL, "valueCode": kind})];
    course_extensions.extend(course.quantity.as_ref().map(|q| {
        object([
            ("url", Value::from(COURSE_QUANTITY_URL)),
            ("valueQuantity", quantity(q, false)),
        ])
    }));
    let mut statement = item_base("MedicationStatement", id, item, course_extensions);
    let status = match course.status {
        MedicationStatus::Active => "active",
        MedicationStatus::Completed => "completed",
        MedicationStatus::Stopped => "stopped",
    };
    let mut period = Obj::new();
    period
        .date_time("start", course.start.as_ref())
        .date_time("end", course.end.as_ref());
    statement
        .set_array("derivedFrom", issue_references)
        .set("status", Value::from(status))
        .set("medicationCodeableConcept", medication)
        .set("subject", ctx.subject.clone())
        .set_some(
            "effectivePeriod",
            (!period.is_empty()).then(|| period.build()),
        );
    if let Some(text) = course.dosage.as_deref().filter(|t| !t.is_empty()) {
        statement.set("dosage", json!([{"text": text}]));
    }
    push(out, id, statement);
}

/// AllergyIntolerance; the reaction, when recorded, is its one manifestation.
pub(super) fn allergy(
    item: &RecordItem<Allergy>,
    id: &str,
    ctx: &mut ItemContext<'_>,
    out: &mut Vec<Rendered>,
) {
    let allergy = &item.content;
    let status = match allergy.status {
        AllergyStatus::Active => "active",
        AllergyStatus::Resolved => "resolved",
    };
    let mut resource = item_base("AllergyIntolerance", id, item, vec![]);
    resource
        .set(
            "clinicalStatus",
            json!({"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "code": status
            }]}),
        )
        .set_some("code", concept(&allergy.substance))
        .set("patient", ctx.subject.clone())
        .date_time("recordedDate", allergy.recorded.as_ref())
        .set_some(
            "reaction",
            allergy.reaction.as_ref().map(|r| {
                Value::Array(vec![object([(
                    "manifestation",
                    Value::Array(vec![required_concept(r)]),
                )])])
            }),
        );
    push(out, id, resource);
}

/// Observation, status `final` (a filed GP record entry; the canonical record has no status).
pub(super) fn observation(
    item: &RecordItem<Observation>,
    id: &str,
    ctx: &mut ItemContext<'_>,
    out: &mut Vec<Rendered>,
) {
    let observation = &item.content;
    let mut resource = item_base("Observation", id, item, vec![]);
    resource
        .set("status", Value::from("final"))
        .set("code", required_concept(&observation.code))
        .set("subject", ctx.subject.clone())
        .date_time("effectiveDateTime", observation.effective.as_ref());
    if let Some(value) = &observation.value {
        observation_value(&mut resource, value);
    }
    if let Some(note) = observation.note.as_deref().filter(|n| !n.is_empty()) {
        resource.set("note", json!([{"text": note}]));
    }
    let components = observation
        .components
        .iter()
        .map(|c| {
            let mut component = Obj::new();
            component.set("code", required_concept(&c.code));
            observation_value(&mut component, &c.value);
            component.build()
        })
        .collect();
    resource.set_array("component", components);
    push(out, id, resource);
}

/// `value[x]`: Quantity, string or CodeableConcept, as recorded.
fn observation_value(out: &mut Obj, value: &ObservationValue) {
    match value {
        ObservationValue::Quantity(q) => {
            out.set("valueQuantity", quantity(q, false));
        }
        ObservationValue::Text(text) => {
            out.string("valueString", text);
        }
        ObservationValue::Concept(c) => {
            out.set_some("valueCodeableConcept", concept(c));
        }
    }
}

/// Immunization, status `completed`. With no date, `occurrenceString` says so (R4 requires an
/// occurrence). The product name has no element beside the vaccine code: a
/// [`VACCINE_PRODUCT_URL`] extension.
pub(super) fn immunisation(
    item: &RecordItem<Immunisation>,
    id: &str,
    ctx: &mut ItemContext<'_>,
    out: &mut Vec<Rendered>,
) {
    let immunisation = &item.content;
    let product = immunisation
        .product
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(|product| json!({"url": VACCINE_PRODUCT_URL, "valueString": product}));
    let mut resource = item_base("Immunization", id, item, product.into_iter().collect());
    resource
        .set("status", Value::from("completed"))
        .set("vaccineCode", required_concept(&immunisation.vaccine))
        .set("patient", ctx.subject.clone());
    match &immunisation.date {
        Some(date) => resource.date_time("occurrenceDateTime", Some(date)),
        None => resource.set("occurrenceString", Value::from("Date not recorded")),
    };
    push(out, id, resource);
}

/// Encounter, status `finished`, class `UNK` (v3 NullFlavor: the source's kind is free text,
/// kept as `type.text`, and is not guessed into an R4 class). The consultation's free text
/// has no Encounter element: a [`CONSULTATION_TEXT_URL`] extension.
pub(super) fn consultation(
    item: &RecordItem<Consultation>,
    id: &str,
    ctx: &mut ItemContext<'_>,
    out: &mut Vec<Rendered>,
) {
    let consultation = &item.content;
    let text = consultation
        .text
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(|text| json!({"url": CONSULTATION_TEXT_URL, "valueString": text}));
    let mut resource = item_base("Encounter", id, item, text.into_iter().collect());
    resource
        .set("status", Value::from("finished"))
        .set(
            "class",
            json!({
                "system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
                "code": "UNK",
                "display": "unknown"
            }),
        )
        .set_some(
            "type",
            consultation
                .kind
                .as_deref()
                .filter(|k| !k.is_empty())
                .map(|kind| json!([{"text": kind}])),
        )
        .set("subject", ctx.subject.clone())
        .set_some(
            "participant",
            consultation
                .clinician
                .as_deref()
                .filter(|c| !c.is_empty())
                .map(|who| json!([{"individual": {"display": who}}])),
        )
        .set_some(
            "period",
            consultation
                .start
                .as_ref()
                .map(|start| json!({"start": start.as_str()})),
        );
    push(out, id, resource);
}

/// DocumentReference, status `current`. The creation date goes in `attachment.creation`
/// (a dateTime, partial allowed) and, when it is a full moment, in `date` (an instant).
pub(super) fn document(
    item: &RecordItem<Document>,
    id: &str,
    ctx: &mut ItemContext<'_>,
    out: &mut Vec<Rendered>,
) {
    let document = &item.content;
    let mut attachment = Obj::new();
    attachment
        .code("contentType", &document.content_type)
        .string("title", &document.title)
        .date_time("creation", document.created.as_ref());
    let mut resource = item_base("DocumentReference", id, item, vec![]);
    resource
        .set("status", Value::from("current"))
        .set("subject", ctx.subject.clone())
        .set_some(
            "date",
            document
                .created
                .as_ref()
                .filter(|d| d.precision() == Precision::Moment)
                .map(|d| Value::from(d.as_str())),
        );
    let attachment = if attachment.is_empty() {
        data_absent()
    } else {
        attachment.build()
    };
    resource.set(
        "content",
        Value::Array(vec![object([("attachment", attachment)])]),
    );
    push(out, id, resource);
}
