//! One FHIR R4 resource (two or more for a medication course) per canonical record item, as
//! serialisable views that borrow the item.

use std::ops::Range;

use keel_core::integration::SectionContent;
use keel_model::record::{
    Allergy, AllergyStatus, Consultation, CourseKind, Document, Immunisation, Medication,
    MedicationStatus, Observation, ObservationComponent, ObservationValue, Problem, ProblemStatus,
    RecordItem, SourceAttribute,
};
use keel_model::{Precision, Provenance};
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

use super::datatypes::{
    ConceptJson, Extension, ExtensionValue, ExtensionsOnly, MetaSource, Present, Primitive,
    QuantityJson, RequiredConcept, data_absent, non_empty, non_empty_opt, provenance_extension,
    source_attribute_of,
};
use super::ids::{Ids, Prefix, ResourceId, Urn};
use super::{
    CONSULTATION_TEXT_URL, COURSE_KIND_URL, COURSE_QUANTITY_URL, PROBLEM_SIGNIFICANT_URL,
    SOURCE_ITEM_SYSTEM, VACCINE_PRODUCT_URL,
};

/// The ids of one item's resources: the item's own and, for a medication course, one per
/// issue.
pub(super) struct ItemIds {
    pub(super) id: ResourceId,
    issues: Vec<ResourceId>,
    /// Roughly how much rendering the item takes: its resources and its source attributes
    /// (each an extension), for splitting a Bundle's items into even parts.
    pub(super) weight: usize,
}

impl ItemIds {
    /// How many resources the item renders to.
    pub(super) fn resources(&self) -> usize {
        1 + self.issues.len()
    }
}

/// Mints the ids of a section's item resources, in the order the renderer has always minted
/// them (each item, then its issues), so that ids are the same on every read.
pub(super) fn mint_item_ids(content: &SectionContent, ids: &mut Ids) -> Vec<ItemIds> {
    fn mint<T>(
        items: &[RecordItem<T>],
        section: &str,
        ids: &mut Ids,
        issues: impl Fn(&T) -> usize,
    ) -> Vec<ItemIds> {
        let prefix = Prefix::of(&["item", section]);
        items
            .iter()
            .map(|item| {
                let id = ids.mint_after(prefix, &[&item.source_id]);
                let issues: Vec<ResourceId> = (0..issues(&item.content))
                    .map(|n| ids.mint(&["medication-issue", &item.source_id, &n.to_string()]))
                    .collect();
                // A resource's own elements weigh about as much as four source attributes.
                let weight = 4 * (1 + issues.len()) + item.source_attributes.len();
                ItemIds { id, issues, weight }
            })
            .collect()
    }
    let section = content.section().key();
    match content {
        SectionContent::Problems(s) => mint(&s.items, section, ids, |_| 0),
        SectionContent::Medications(s) => mint(&s.items, section, ids, |m| m.issues.len()),
        SectionContent::Allergies(s) => mint(&s.items, section, ids, |_| 0),
        SectionContent::Observations(s) => mint(&s.items, section, ids, |_| 0),
        SectionContent::Immunisations(s) => mint(&s.items, section, ids, |_| 0),
        SectionContent::Consultations(s) => mint(&s.items, section, ids, |_| 0),
        SectionContent::Documents(s) => mint(&s.items, section, ids, |_| 0),
    }
}

/// A Bundle entry: `fullUrl` and the resource.
#[derive(Serialize)]
pub(super) struct Entry<'a, R> {
    #[serde(rename = "fullUrl")]
    full_url: Urn<'a>,
    resource: R,
}

impl<'a, R> Entry<'a, R> {
    pub(super) fn new(id: &'a ResourceId, resource: R) -> Self {
        Self {
            full_url: id.as_urn(),
            resource,
        }
    }
}

/// A reference: `{"reference": "urn:uuid:…"}`.
#[derive(Serialize, Clone, Copy)]
pub(super) struct Reference<'a> {
    pub(super) reference: Urn<'a>,
}

/// The patient an item is about: a reference to the Patient, or (with no Patient in the
/// Bundle) a display, as R4 requires a subject on most item resources.
#[derive(Serialize, Clone, Copy)]
#[serde(untagged)]
pub(super) enum Subject<'a> {
    Reference(Reference<'a>),
    Display { display: &'static str },
}

/// Serialises the item resources of a section's items `range` as Bundle entries, issues
/// before their course.
pub(super) fn serialize_items<S: SerializeSeq>(
    entries: &mut S,
    content: &SectionContent,
    ids: &[ItemIds],
    range: Range<usize>,
    subject: Subject<'_>,
) -> Result<(), S::Error> {
    fn each<'a, T, S: SerializeSeq, R: Serialize>(
        entries: &mut S,
        items: &'a [RecordItem<T>],
        ids: &'a [ItemIds],
        subject: Subject<'a>,
        render: fn(&'a RecordItem<T>, &'a ResourceId, Subject<'a>) -> R,
    ) -> Result<(), S::Error> {
        for (item, ids) in items.iter().zip(ids) {
            entries.serialize_element(&Entry::new(&ids.id, render(item, &ids.id, subject)))?;
        }
        Ok(())
    }
    let ids = &ids[range.clone()];
    match content {
        SectionContent::Problems(s) => each(entries, &s.items[range], ids, subject, condition),
        SectionContent::Medications(s) => {
            for (item, ids) in s.items[range].iter().zip(ids) {
                medication(entries, item, ids, subject)?;
            }
            Ok(())
        }
        SectionContent::Allergies(s) => each(entries, &s.items[range], ids, subject, allergy),
        SectionContent::Observations(s) => {
            each(entries, &s.items[range], ids, subject, observation)
        }
        SectionContent::Immunisations(s) => {
            each(entries, &s.items[range], ids, subject, immunisation)
        }
        SectionContent::Consultations(s) => each(entries, &s.items[range], ids, subject, encounter),
        SectionContent::Documents(s) => each(entries, &s.items[range], ids, subject, document),
    }
}

/// The elements every item resource starts with: type, id, `meta.source`, the provenance and
/// source-attribute extensions (then up to `N` resource-specific ones), and the source's
/// identifier of the item.
#[derive(Serialize)]
struct ItemBase<'a, const N: usize> {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    id: &'a ResourceId,
    meta: MetaSource<'a>,
    extension: ItemExtensions<'a, N>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identifier: Option<[SourceIdentifier<'a>; 1]>,
}

impl<'a, const N: usize> ItemBase<'a, N> {
    fn new<T>(
        resource_type: &'static str,
        id: &'a ResourceId,
        item: &'a RecordItem<T>,
        extra: [Option<ItemExtension<'a>>; N],
    ) -> Self {
        Self {
            resource_type,
            id,
            meta: MetaSource(&item.provenance),
            extension: ItemExtensions {
                provenance: &item.provenance,
                attributes: &item.source_attributes,
                extra: Present(extra),
            },
            identifier: non_empty(&item.source_id).map(|value| {
                [SourceIdentifier {
                    system: SOURCE_ITEM_SYSTEM,
                    value,
                }]
            }),
        }
    }
}

/// A resource-specific extension on an item resource: primitive- or Quantity-valued.
#[expect(
    clippy::large_enum_variant,
    reason = "a short-lived view on the stack; boxing the quantity would allocate per item"
)]
#[derive(Serialize)]
#[serde(untagged)]
enum ItemExtension<'a> {
    Value(Extension<'a>),
    Quantity {
        url: &'static str,
        #[serde(rename = "valueQuantity")]
        value: QuantityJson<'a>,
    },
}

/// The provenance extension, one per source attribute, then the resource's own.
struct ItemExtensions<'a, const N: usize> {
    provenance: &'a Provenance,
    attributes: &'a [SourceAttribute],
    extra: Present<ItemExtension<'a>, N>,
}

impl<const N: usize> Serialize for ItemExtensions<'_, N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_seq(None)?;
        out.serialize_element(&provenance_extension(self.provenance))?;
        for attribute in self.attributes.iter().filter_map(source_attribute_of) {
            out.serialize_element(&attribute)?;
        }
        for extension in self.extra.0.iter().flatten() {
            out.serialize_element(extension)?;
        }
        out.end()
    }
}

#[derive(Serialize)]
struct SourceIdentifier<'a> {
    system: &'static str,
    value: &'a str,
}

/// A coding with a fixed system: `{"system", "code", "display"?}`.
#[derive(Serialize)]
pub(super) struct FixedCoding<'a> {
    pub(super) system: &'static str,
    pub(super) code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) display: Option<&'a str>,
}

/// A CodeableConcept of one [`FixedCoding`].
#[derive(Serialize)]
pub(super) struct FixedConcept<'a> {
    pub(super) coding: [FixedCoding<'a>; 1],
}

impl<'a> FixedConcept<'a> {
    fn new(system: &'static str, code: &'a str) -> Self {
        Self {
            coding: [FixedCoding {
                system,
                code,
                display: None,
            }],
        }
    }
}

/// `{"text": …}`: an Annotation, a Dosage or a CodeableConcept of text only.
#[derive(Serialize)]
pub(super) struct Text<'a> {
    pub(super) text: &'a str,
}

/// Condition (problem-list-item). Significance has no R4 element: a
/// [`PROBLEM_SIGNIFICANT_URL`] extension.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Condition<'a> {
    #[serde(flatten)]
    base: ItemBase<'a, 1>,
    clinical_status: FixedConcept<'a>,
    category: [FixedConcept<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<ConceptJson<'a>>,
    subject: Subject<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    onset_date_time: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    abatement_date_time: Option<&'a str>,
}

fn condition<'a>(
    item: &'a RecordItem<Problem>,
    id: &'a ResourceId,
    subject: Subject<'a>,
) -> Condition<'a> {
    let problem = &item.content;
    let significance = problem.significant.map(|significant| {
        ItemExtension::Value(Extension {
            url: PROBLEM_SIGNIFICANT_URL,
            value: ExtensionValue::Boolean(significant),
        })
    });
    let status = match problem.status {
        ProblemStatus::Active => "active",
        ProblemStatus::Inactive => "inactive",
    };
    Condition {
        base: ItemBase::new("Condition", id, item, [significance]),
        clinical_status: FixedConcept::new(
            "http://terminology.hl7.org/CodeSystem/condition-clinical",
            status,
        ),
        category: [FixedConcept {
            coding: [FixedCoding {
                system: "http://terminology.hl7.org/CodeSystem/condition-category",
                code: "problem-list-item",
                display: Some("Problem List Item"),
            }],
        }],
        code: ConceptJson::new(&problem.code),
        subject,
        onset_date_time: problem.onset.as_ref().map(|d| d.as_str()),
        abatement_date_time: problem.ended.as_ref().map(|d| d.as_str()),
    }
}

/// A MedicationRequest for one issue of a course: intent `order`, status `completed`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MedicationRequest<'a, 'b> {
    #[serde(flatten)]
    base: ItemBase<'a, 0>,
    status: &'static str,
    intent: &'static str,
    medication_codeable_concept: &'b RequiredConcept<'a>,
    subject: Subject<'a>,
    authored_on: &'a str,
    course_of_therapy_type: FixedConcept<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dispense_request: Option<DispenseRequest<'a>>,
}

#[derive(Serialize)]
struct DispenseRequest<'a> {
    quantity: QuantityJson<'a>,
}

/// MedicationStatement for the course.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MedicationStatement<'a, 'b> {
    #[serde(flatten)]
    base: ItemBase<'a, 2>,
    #[serde(skip_serializing_if = "References::is_empty")]
    derived_from: References<'a>,
    status: &'static str,
    medication_codeable_concept: &'b RequiredConcept<'a>,
    subject: Subject<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    effective_period: Option<Period<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dosage: Option<[Text<'a>; 1]>,
}

/// References to each of `ids`, as an array.
#[derive(Clone, Copy)]
pub(super) struct References<'a>(pub(super) &'a [ResourceId]);

impl References<'_> {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for References<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|id| Reference {
            reference: id.as_urn(),
        }))
    }
}

#[derive(Serialize)]
struct Period<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<&'a str>,
}

/// MedicationStatement for the course, and a MedicationRequest (intent `order`, status
/// `completed`) per issue, serialised before it. The statement lists its issues in
/// `derivedFrom` (R4: "links the MedicationStatement to the underlying MedicationRequest");
/// each issue carries the course's kind as `courseOfTherapyType` (acute → `acute`, repeat →
/// `continuous`). The course's kind and quantity have no MedicationStatement element:
/// [`COURSE_KIND_URL`] and [`COURSE_QUANTITY_URL`] extensions.
fn medication<S: SerializeSeq>(
    entries: &mut S,
    item: &RecordItem<Medication>,
    ids: &ItemIds,
    subject: Subject<'_>,
) -> Result<(), S::Error> {
    let course = &item.content;
    let medication = RequiredConcept::new(&course.medication);
    let (kind, therapy) = match course.course {
        CourseKind::Acute => ("acute", "acute"),
        CourseKind::Repeat => ("repeat", "continuous"),
    };
    for (issue, issue_id) in course.issues.iter().zip(&ids.issues) {
        let request = MedicationRequest {
            base: ItemBase {
                resource_type: "MedicationRequest",
                id: issue_id,
                meta: MetaSource(&item.provenance),
                extension: ItemExtensions {
                    provenance: &item.provenance,
                    attributes: &[],
                    extra: Present([]),
                },
                identifier: None,
            },
            status: "completed",
            intent: "order",
            medication_codeable_concept: &medication,
            subject,
            authored_on: issue.date.as_str(),
            course_of_therapy_type: FixedConcept::new(
                "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
                therapy,
            ),
            dispense_request: issue.quantity.as_ref().map(|q| DispenseRequest {
                quantity: QuantityJson::simple(q),
            }),
        };
        entries.serialize_element(&Entry::new(issue_id, request))?;
    }
    let course_kind = ItemExtension::Value(Extension {
        url: COURSE_KIND_URL,
        value: ExtensionValue::Code(kind),
    });
    let course_quantity = course.quantity.as_ref().map(|q| ItemExtension::Quantity {
        url: COURSE_QUANTITY_URL,
        value: QuantityJson::new(q),
    });
    let status = match course.status {
        MedicationStatus::Active => "active",
        MedicationStatus::Completed => "completed",
        MedicationStatus::Stopped => "stopped",
    };
    let period = Period {
        start: course.start.as_ref().map(|d| d.as_str()),
        end: course.end.as_ref().map(|d| d.as_str()),
    };
    let statement = MedicationStatement {
        base: ItemBase::new(
            "MedicationStatement",
            &ids.id,
            item,
            [Some(course_kind), course_quantity],
        ),
        derived_from: References(&ids.issues),
        status,
        medication_codeable_concept: &medication,
        subject,
        effective_period: (period.start.is_some() || period.end.is_some()).then_some(period),
        dosage: non_empty_opt(course.dosage.as_deref()).map(|text| [Text { text }]),
    };
    entries.serialize_element(&Entry::new(&ids.id, statement))
}

/// AllergyIntolerance; the reaction, when recorded, is its one manifestation.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AllergyIntolerance<'a> {
    #[serde(flatten)]
    base: ItemBase<'a, 0>,
    clinical_status: FixedConcept<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<ConceptJson<'a>>,
    patient: Subject<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded_date: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reaction: Option<[Reaction<'a>; 1]>,
}

#[derive(Serialize)]
struct Reaction<'a> {
    manifestation: [RequiredConcept<'a>; 1],
}

fn allergy<'a>(
    item: &'a RecordItem<Allergy>,
    id: &'a ResourceId,
    subject: Subject<'a>,
) -> AllergyIntolerance<'a> {
    let allergy = &item.content;
    let status = match allergy.status {
        AllergyStatus::Active => "active",
        AllergyStatus::Resolved => "resolved",
    };
    AllergyIntolerance {
        base: ItemBase::new("AllergyIntolerance", id, item, []),
        clinical_status: FixedConcept::new(
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            status,
        ),
        code: ConceptJson::new(&allergy.substance),
        patient: subject,
        recorded_date: allergy.recorded.as_ref().map(|d| d.as_str()),
        reaction: allergy.reaction.as_ref().map(|r| {
            [Reaction {
                manifestation: [RequiredConcept::new(r)],
            }]
        }),
    }
}

/// Observation, status `final` (a filed GP record entry; the canonical record has no status).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ObservationJson<'a> {
    #[serde(flatten)]
    base: ItemBase<'a, 0>,
    status: &'static str,
    code: RequiredConcept<'a>,
    subject: Subject<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    effective_date_time: Option<&'a str>,
    #[serde(flatten)]
    value: Option<ValueX<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<[Text<'a>; 1]>,
    #[serde(skip_serializing_if = "Components::is_empty")]
    component: Components<'a>,
}

/// `value[x]`: Quantity, string or CodeableConcept, as recorded.
#[expect(
    clippy::large_enum_variant,
    reason = "a short-lived view on the stack; boxing the quantity would allocate per item"
)]
#[derive(Serialize)]
enum ValueX<'a> {
    #[serde(rename = "valueQuantity")]
    Quantity(QuantityJson<'a>),
    #[serde(rename = "valueString")]
    String(&'a str),
    #[serde(rename = "valueCodeableConcept")]
    Concept(ConceptJson<'a>),
}

impl<'a> ValueX<'a> {
    /// `None` for empty text or an empty concept.
    fn new(value: &'a ObservationValue) -> Option<Self> {
        match value {
            ObservationValue::Quantity(q) => Some(Self::Quantity(QuantityJson::new(q))),
            ObservationValue::Text(text) => non_empty(text).map(Self::String),
            ObservationValue::Concept(c) => ConceptJson::new(c).map(Self::Concept),
        }
    }
}

struct Components<'a>(&'a [ObservationComponent]);

impl Components<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Components<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Component<'a> {
            code: RequiredConcept<'a>,
            #[serde(flatten)]
            value: Option<ValueX<'a>>,
        }
        serializer.collect_seq(self.0.iter().map(|c| Component {
            code: RequiredConcept::new(&c.code),
            value: ValueX::new(&c.value),
        }))
    }
}

fn observation<'a>(
    item: &'a RecordItem<Observation>,
    id: &'a ResourceId,
    subject: Subject<'a>,
) -> ObservationJson<'a> {
    let observation = &item.content;
    ObservationJson {
        base: ItemBase::new("Observation", id, item, []),
        status: "final",
        code: RequiredConcept::new(&observation.code),
        subject,
        effective_date_time: observation.effective.as_ref().map(|d| d.as_str()),
        value: observation.value.as_ref().and_then(ValueX::new),
        note: non_empty_opt(observation.note.as_deref()).map(|text| [Text { text }]),
        component: Components(&observation.components),
    }
}

/// Immunization, status `completed`. With no date, `occurrenceString` says so (R4 requires an
/// occurrence). The product name has no element beside the vaccine code: a
/// [`VACCINE_PRODUCT_URL`] extension.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Immunization<'a> {
    #[serde(flatten)]
    base: ItemBase<'a, 1>,
    status: &'static str,
    vaccine_code: RequiredConcept<'a>,
    patient: Subject<'a>,
    #[serde(flatten)]
    occurrence: Occurrence<'a>,
}

#[derive(Serialize)]
enum Occurrence<'a> {
    #[serde(rename = "occurrenceDateTime")]
    DateTime(&'a str),
    #[serde(rename = "occurrenceString")]
    String(&'static str),
}

fn immunisation<'a>(
    item: &'a RecordItem<Immunisation>,
    id: &'a ResourceId,
    subject: Subject<'a>,
) -> Immunization<'a> {
    let immunisation = &item.content;
    let product = non_empty_opt(immunisation.product.as_deref()).map(|product| {
        ItemExtension::Value(Extension {
            url: VACCINE_PRODUCT_URL,
            value: ExtensionValue::String(product),
        })
    });
    Immunization {
        base: ItemBase::new("Immunization", id, item, [product]),
        status: "completed",
        vaccine_code: RequiredConcept::new(&immunisation.vaccine),
        patient: subject,
        occurrence: match &immunisation.date {
            Some(date) => Occurrence::DateTime(date.as_str()),
            None => Occurrence::String("Date not recorded"),
        },
    }
}

/// Encounter, status `finished`, class `UNK` (v3 NullFlavor: the source's kind is free text,
/// kept as `type.text`, and is not guessed into an R4 class). The consultation's free text
/// has no Encounter element: a [`CONSULTATION_TEXT_URL`] extension.
#[derive(Serialize)]
struct Encounter<'a> {
    #[serde(flatten)]
    base: ItemBase<'a, 1>,
    status: &'static str,
    class: FixedCoding<'a>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<[Text<'a>; 1]>,
    subject: Subject<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    participant: Option<[Participant<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<Period<'a>>,
}

#[derive(Serialize)]
struct Participant<'a> {
    individual: Display<'a>,
}

#[derive(Serialize)]
struct Display<'a> {
    display: &'a str,
}

fn encounter<'a>(
    item: &'a RecordItem<Consultation>,
    id: &'a ResourceId,
    subject: Subject<'a>,
) -> Encounter<'a> {
    let consultation = &item.content;
    let text = non_empty_opt(consultation.text.as_deref()).map(|text| {
        ItemExtension::Value(Extension {
            url: CONSULTATION_TEXT_URL,
            value: ExtensionValue::String(text),
        })
    });
    Encounter {
        base: ItemBase::new("Encounter", id, item, [text]),
        status: "finished",
        class: FixedCoding {
            system: "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
            code: "UNK",
            display: Some("unknown"),
        },
        kind: non_empty_opt(consultation.kind.as_deref()).map(|text| [Text { text }]),
        subject,
        participant: non_empty_opt(consultation.clinician.as_deref()).map(|display| {
            [Participant {
                individual: Display { display },
            }]
        }),
        period: consultation.start.as_ref().map(|start| Period {
            start: Some(start.as_str()),
            end: None,
        }),
    }
}

/// DocumentReference, status `current`. The creation date goes in `attachment.creation`
/// (a dateTime, partial allowed) and, when it is a full moment, in `date` (an instant).
#[derive(Serialize)]
struct DocumentReference<'a> {
    #[serde(flatten)]
    base: ItemBase<'a, 0>,
    status: &'static str,
    subject: Subject<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<&'a str>,
    content: [Content<'a>; 1],
}

#[derive(Serialize)]
struct Content<'a> {
    attachment: AttachmentOrAbsent<'a>,
}

/// The attachment, or a data-absent reason when nothing of it is known.
#[derive(Serialize)]
#[serde(untagged)]
enum AttachmentOrAbsent<'a> {
    Attachment(Attachment<'a>),
    Absent(ExtensionsOnly<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Attachment<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "_contentType", skip_serializing_if = "Option::is_none")]
    content_type_original: Option<ExtensionsOnly<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    creation: Option<&'a str>,
}

fn document<'a>(
    item: &'a RecordItem<Document>,
    id: &'a ResourceId,
    subject: Subject<'a>,
) -> DocumentReference<'a> {
    let document = &item.content;
    let content_type = Primitive::code(&document.content_type);
    let attachment = Attachment {
        content_type: content_type.value,
        content_type_original: content_type.original,
        title: non_empty(&document.title),
        creation: document.created.as_ref().map(|d| d.as_str()),
    };
    let empty = attachment.content_type.is_none()
        && attachment.content_type_original.is_none()
        && attachment.title.is_none()
        && attachment.creation.is_none();
    DocumentReference {
        base: ItemBase::new("DocumentReference", id, item, []),
        status: "current",
        subject,
        date: document
            .created
            .as_ref()
            .filter(|d| d.precision() == Precision::Moment)
            .map(|d| d.as_str()),
        content: [Content {
            attachment: if empty {
                AttachmentOrAbsent::Absent(data_absent())
            } else {
                AttachmentOrAbsent::Attachment(attachment)
            },
        }],
    }
}
