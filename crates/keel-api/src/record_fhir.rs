//! The federated record ([`FederatedRecord`]) as a FHIR R4 `collection` Bundle, for
//! `GET /fhir/Patient/{id}/$record`: a pure function from the canonical record to JSON.
//!
//! # Shape
//!
//! - **Patient** from the practice's demographics: NHS number (`https://fhir.nhs.uk/Id/nhs-number`),
//!   the practice's own patient id ([`SOURCE_PATIENT_SYSTEM`]), name, birthDate, gender,
//!   deceasedDateTime, address postcode, generalPractitioner by ODS identifier; nothing for
//!   what is `None`. Absent when the practice could not be asked.
//! - **OperationOutcome**, only when a section is unavailable: one issue per unavailable
//!   section (severity `warning`, code `incomplete`, `details` coded with the section from
//!   [`RECORD_SECTION_SYSTEM`] and the reason as text, `diagnostics` naming both). The Bundle
//!   then carries the `meta.tag` [`RECORD_COMPLETENESS_SYSTEM`]`#partial`.
//! - **List** per section asked for, in order: status `current`, mode `snapshot`, title,
//!   `code` [`RECORD_SECTION_SYSTEM`]`#<section key>`, subject (when there is a Patient). A
//!   recorded section has one `entry.item` per item; an empty one has `emptyReason` (from
//!   [`SectionState::empty_reason`]: `nilknown`, `withheld`, `unavailable`) and a `note` with
//!   the reason. Each source warning is a [`SECTION_WARNING_URL`] extension whose `valueCode`
//!   is the warning's key; data-in-transit's date rides on `_valueCode` as a
//!   [`SECTION_WARNING_SINCE_URL`] extension (an extension cannot hold a value and
//!   sub-extensions both).
//! - **Item resources**: problem → Condition; medication course → MedicationStatement plus a
//!   MedicationRequest per issue (listed in the statement's `derivedFrom`); allergy →
//!   AllergyIntolerance; observation → Observation; immunisation → Immunization;
//!   consultation → Encounter; document → DocumentReference. The `items` module says
//!   how each is shaped.
//!
//! Every item resource (issues included) has `meta.source` `<source system>#<ODS>`, an
//! [`ITEM_PROVENANCE_URL`] extension with the provenance fields present, one
//! [`SOURCE_ATTRIBUTE_URL`] extension per source attribute (an unmapped supplier field,
//! kept with its name), and the source's id as an identifier ([`SOURCE_ITEM_SYSTEM`]).
//! Codings and quantities are exactly as canonical; a Keel translation carries a
//! [`CODING_ORIGIN_URL`] extension.
//!
//! Ids are UUIDs hashed from what names the resource (see the `ids` module): stable across reads,
//! valid FHIR ids whatever the source's ids hold. `fullUrl` and every reference are the
//! `urn:uuid:` form: the resources are not stored by Keel, so no RESTful URL would resolve.
//!
//! # Rendering
//!
//! The Bundle is written straight to JSON bytes: each resource is a `Serialize` view that
//! borrows the canonical record, serialised with `serde_json::to_writer` into a buffer sized
//! up front, with no `serde_json::Value` tree. All ids are minted before writing, in the
//! order that has always named them (Patient, OperationOutcome, then per section its List,
//! each item and that item's issues), because the Lists, written first, point at the items.
//! A long record's item resources are then written in parts of about equal weight, one per
//! core, in parallel (scoped threads), and the parts' bytes joined in order: the same bytes
//! as one part gives. [`record_bundle_then_free`], which the `$record` handler uses, frees the
//! record on the blocking pool once the bytes are ready.
//!
//! # Provenance stays on each item
//!
//! The organisation, system and retrieval time every item of a section usually shares are
//! repeated on each item's [`ITEM_PROVENANCE_URL`] extension (about 17% of a long record's
//! bytes) rather than moved to one `Provenance` resource per section. Moving them would make
//! an item's provenance whole only by searching the Bundle for the `Provenance` whose `target`
//! names it, and break the contract that every item resource carries its full provenance
//! (which consumers and the `record_fhir` tests rely on); nor does the canonical record
//! promise that a section's items share them. The size is kept; the time is cut by not
//! building a tree.
//!
//! # What is lost or approximated
//!
//! - Canonical text R4 cannot hold (empty strings; codes and URIs with stray whitespace) is
//!   omitted or normalised, the exact original kept in an [`ORIGINAL_TEXT_URL`] extension; an
//!   empty source attribute name or value has no sub-extension, and one with both empty is
//!   dropped. An empty required concept becomes a data-absent reason.
//! - A medication issue's quantity is a `SimpleQuantity`, which R4 forbids a comparator: a
//!   comparator there is dropped. Issues are `completed` orders; the source has no status.
//! - Observation status is `final` and Encounter status `finished`, class v3 `UNK` (a filed
//!   GP record entry; the canonical record carries no status or class). An immunisation with
//!   no date has `occurrenceString` "Date not recorded".
//! - Patient `birthDate` is a `date`: a birth moment keeps its date part. A gender outside R4's
//!   four codes is not a `gender` but a source-attribute extension named `gender`.
//! - A section whose state says recorded but holds no items is shown as nothing recorded; a
//!   section with items whose state says otherwise shows its items and the reason in a note
//!   (R4 lists with entries cannot have an empty reason).

mod datatypes;
mod ids;
mod items;

use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::OnceLock;

use keel_core::integration::{FederatedRecord, PatientAtPractice, SectionContent};
use keel_model::identifier::systems::NHS_NUMBER;
use keel_model::record::{Demographics, RecordSection, SectionWarning};
use keel_model::{NhsNumber, SectionState};
use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

use datatypes::{
    CodingJson, ComplexExtension, Extension, ExtensionValue, ExtensionsOnly, OdsIdentifier,
    Present, non_empty, non_empty_opt, source_attribute,
};
use ids::{Ids, ResourceId};
use items::{Entry, FixedCoding, FixedConcept, ItemIds, Reference, Subject, Text};

/// The code system of record sections; codes are [`RecordSection::key`].
pub const RECORD_SECTION_SYSTEM: &str = "https://keel.example/fhir/CodeSystem/record-section";
/// The code system of the Bundle's completeness tag (`partial`).
pub const RECORD_COMPLETENESS_SYSTEM: &str =
    "https://keel.example/fhir/CodeSystem/record-completeness";
/// A source's warning about a section (List extension, `valueCode` the warning key).
pub const SECTION_WARNING_URL: &str =
    "https://keel.example/fhir/StructureDefinition/section-warning";
/// The date since which data is in transit (on a section warning's `_valueCode`).
pub const SECTION_WARNING_SINCE_URL: &str =
    "https://keel.example/fhir/StructureDefinition/section-warning-since";
/// Where an item came from: sub-extensions `source-organisation`, `source-system`,
/// `recorded`, `retrieved`, `author`, `status`, `source-version`.
pub const ITEM_PROVENANCE_URL: &str =
    "https://keel.example/fhir/StructureDefinition/item-provenance";
/// A supplier field with no canonical home: sub-extensions `name` and `value`.
pub const SOURCE_ATTRIBUTE_URL: &str =
    "https://keel.example/fhir/StructureDefinition/source-attribute";
/// On a Coding Keel derived rather than received: `valueCode` `translated`.
pub const CODING_ORIGIN_URL: &str = "https://keel.example/fhir/StructureDefinition/coding-origin";
/// The exact canonical text of a primitive R4 could not hold verbatim.
pub const ORIGINAL_TEXT_URL: &str = "https://keel.example/fhir/StructureDefinition/original-text";
/// On a Quantity: Keel's conversion to a canonical UCUM unit.
pub const NORMALISED_QUANTITY_URL: &str =
    "https://keel.example/fhir/StructureDefinition/normalised-quantity";
/// On a Condition: whether the source holds it as a significant (major) problem.
pub const PROBLEM_SIGNIFICANT_URL: &str =
    "https://keel.example/fhir/StructureDefinition/problem-significant";
/// On a MedicationStatement: the course kind, `acute` or `repeat`.
pub const COURSE_KIND_URL: &str = "https://keel.example/fhir/StructureDefinition/course-kind";
/// On a MedicationStatement: the quantity authorised per issue of the course.
pub const COURSE_QUANTITY_URL: &str =
    "https://keel.example/fhir/StructureDefinition/course-quantity";
/// On an Immunization: the product name as recorded.
pub const VACCINE_PRODUCT_URL: &str =
    "https://keel.example/fhir/StructureDefinition/vaccine-product";
/// On an Encounter: the consultation's free text.
pub const CONSULTATION_TEXT_URL: &str =
    "https://keel.example/fhir/StructureDefinition/consultation-text";
/// The source's own id of an item.
pub const SOURCE_ITEM_SYSTEM: &str = "https://keel.example/fhir/Id/source-item";
/// The practice system's own id of the patient.
pub const SOURCE_PATIENT_SYSTEM: &str = "https://keel.example/fhir/Id/source-patient";

/// The note on a section the practice holds nothing for.
const NOTHING_RECORDED_NOTE: &str = "The practice holds nothing recorded in this section.";

/// What a 5,000-item record renders to per item, on average, with room to spare: the output
/// buffer starts this large so serialising does not reallocate.
const BYTES_PER_RESOURCE: usize = 2048;

/// Below this many resources a Bundle is rendered on the calling thread alone: a second
/// thread would cost more than it saves.
const PARALLEL_RENDER_MIN_RESOURCES: usize = 512;

/// Renders `record` as a FHIR R4 `collection` Bundle, as JSON bytes.
///
/// A long record's item resources are rendered in parts, one per core, the first on the
/// calling thread and the others on scoped threads, and the parts' bytes are joined in order:
/// the bytes are the same however the items are split.
pub fn record_bundle(record: &FederatedRecord) -> Vec<u8> {
    let bundle = Bundle::new(record);
    let resources = bundle.entries.resources();
    let threads = if resources < PARALLEL_RENDER_MIN_RESOURCES {
        1
    } else {
        render_threads()
    };
    bundle.to_json(threads, BYTES_PER_RESOURCE * (resources + 1))
}

/// Renders `record` as [`record_bundle`] does, then frees it on the blocking pool (when called
/// on a Tokio runtime): the bytes are ready before the record's many small allocations are
/// freed, which takes a long record milliseconds, so the freeing is off the request's path
/// (its CPU time is still spent, beside the next requests).
pub fn record_bundle_then_free(record: FederatedRecord) -> Vec<u8> {
    let bytes = record_bundle(&record);
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn_blocking(move || drop(record));
        }
        Err(_) => drop(record),
    }
    bytes
}

/// The cores a render may use (asked once: it reads the process's CPU limits).
fn render_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
}

struct Bundle<'a> {
    meta: Option<BundleMeta>,
    entries: Entries<'a>,
}

#[derive(Serialize)]
struct BundleMeta {
    tag: [FixedCoding<'static>; 1],
}

impl<'a> Bundle<'a> {
    /// Mints every id, in the order the renderer has always minted them (patient, outcome,
    /// then each section's List and its items), so ids are the same on every read.
    fn new(record: &'a FederatedRecord) -> Self {
        let mut ids = Ids::default();
        let patient_id = record
            .patient
            .as_ref()
            .map(|(at, _)| at.source_patient_id.as_str());
        let patient = record.patient.as_ref().map(|(at, demographics)| {
            let id = ids.mint(&["patient", record.practice.as_str(), &at.source_patient_id]);
            (id, at, demographics)
        });
        let unavailable: Vec<(RecordSection, &str)> = record
            .sections
            .iter()
            .filter_map(|content| match state(content) {
                SectionState::Unavailable { reason } | SectionState::Failed { reason } => {
                    Some((content.section(), reason.as_str()))
                }
                _ => None,
            })
            .collect();
        let outcome = (!unavailable.is_empty()).then(|| {
            let id = ids.mint(&[
                "outcome",
                record.practice.as_str(),
                patient_id.unwrap_or_default(),
            ]);
            (id, unavailable)
        });
        let sections = record
            .sections
            .iter()
            .map(|content| {
                let list = ids.mint(&[
                    "list",
                    record.practice.as_str(),
                    patient_id.unwrap_or_default(),
                    content.section().key(),
                ]);
                let items = items::mint_item_ids(content, &mut ids);
                SectionIds {
                    content,
                    list,
                    items,
                }
            })
            .collect();
        Self {
            meta: record.is_partial().then_some(BundleMeta {
                tag: [FixedCoding {
                    system: RECORD_COMPLETENESS_SYSTEM,
                    code: "partial",
                    display: Some("Partial record: some sections could not be had"),
                }],
            }),
            entries: Entries {
                patient,
                outcome,
                sections,
            },
        }
    }
}

impl Bundle<'_> {
    /// The Bundle as JSON, its items rendered in `parts` parts in parallel, in a buffer of
    /// `capacity` bytes. Members in R4's order: `resourceType`, `meta`, `type`, `entry`.
    fn to_json(&self, parts: usize, capacity: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(capacity);
        out.extend_from_slice(br#"{"resourceType":"Bundle""#);
        if let Some(meta) = &self.meta {
            out.extend_from_slice(br#","meta":"#);
            write_json(&mut out, meta);
        }
        out.extend_from_slice(br#","type":"collection""#);
        if !self.entries.is_empty() {
            out.extend_from_slice(br#","entry":"#);
            self.entries.write(&mut out, parts);
        }
        out.push(b'}');
        out
    }
}

/// Appends `value`'s JSON to `out`.
fn write_json(out: &mut Vec<u8>, value: &impl Serialize) {
    // Writing to a `Vec` cannot fail, and nothing in the Bundle can fail to serialise: every
    // map key is a string and no value's serialisation returns an error.
    serde_json::to_writer(out, value).expect("a rendered record always serialises");
}

/// A section with the ids of its List and items.
struct SectionIds<'a> {
    content: &'a SectionContent,
    list: ResourceId,
    items: Vec<ItemIds>,
}

/// The Bundle's entries: the Patient, the OperationOutcome, each section's List, then every
/// item resource, serialised straight from the record.
struct Entries<'a> {
    patient: Option<(ResourceId, &'a PatientAtPractice, &'a Demographics)>,
    outcome: Option<(ResourceId, Vec<(RecordSection, &'a str)>)>,
    sections: Vec<SectionIds<'a>>,
}

impl Entries<'_> {
    fn is_empty(&self) -> bool {
        self.patient.is_none() && self.outcome.is_none() && self.sections.is_empty()
    }

    /// How many resources the Bundle holds.
    fn resources(&self) -> usize {
        let items: usize = self
            .sections
            .iter()
            .flat_map(|s| &s.items)
            .map(ItemIds::resources)
            .sum();
        usize::from(self.patient.is_some())
            + usize::from(self.outcome.is_some())
            + self.sections.len()
            + items
    }
}

/// Some of a Bundle's item resources: for each section in turn, a range of its items.
type Part = Vec<(usize, Range<usize>)>;

impl Entries<'_> {
    /// The subject of every item resource: the Patient, or (R4 requires a subject on most
    /// item resources; items only come with a patient, but a record built otherwise still
    /// renders valid resources) a display.
    fn item_subject(&self) -> Subject<'_> {
        self.patient.as_ref().map_or(
            Subject::Display {
                display: "The patient (not found at the practice)",
            },
            |(id, _, _)| {
                Subject::Reference(Reference {
                    reference: id.as_urn(),
                })
            },
        )
    }

    /// The items split into at most `parts` runs of about equal weight, in Bundle order.
    fn split(&self, parts: usize) -> Vec<Part> {
        let total: usize = self
            .sections
            .iter()
            .flat_map(|s| &s.items)
            .map(|i| i.weight)
            .sum();
        let share = total.div_ceil(parts.max(1)).max(1);
        let mut split = Vec::with_capacity(parts);
        let mut current = Part::new();
        let mut weight = 0;
        for (at, section) in self.sections.iter().enumerate() {
            let mut start = 0;
            for (index, item) in section.items.iter().enumerate() {
                weight += item.weight;
                if weight >= share * (split.len() + 1) && split.len() + 1 < parts {
                    current.push((at, start..index + 1));
                    split.push(std::mem::take(&mut current));
                    start = index + 1;
                }
            }
            if start < section.items.len() {
                current.push((at, start..section.items.len()));
            }
        }
        split.push(current);
        split
    }

    /// Appends the entries as a JSON array to `out`: the Patient, the OperationOutcome, each
    /// section's List, then every item resource, rendered in `parts` parts in parallel.
    fn write(&self, out: &mut Vec<u8>, parts: usize) {
        let part_capacity = out.capacity() / parts.max(1);
        let mut split = self.split(parts).into_iter();
        let first = split.next().unwrap_or_default();
        let subject = self.item_subject();
        let rest: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let rendering: Vec<_> = split
                .map(|part| {
                    scope.spawn(move || {
                        let mut bytes = Vec::with_capacity(part_capacity);
                        write_json(
                            &mut bytes,
                            &Items {
                                entries: self,
                                part: &part,
                                subject,
                            },
                        );
                        bytes
                    })
                })
                .collect();
            write_json(
                out,
                &Head {
                    entries: self,
                    items: Items {
                        entries: self,
                        part: &first,
                        subject,
                    },
                },
            );
            rendering
                .into_iter()
                .map(|part| part.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        // Each part is a JSON array: its elements join the first part's array.
        for part in rest {
            let inner = 1..part.len().saturating_sub(1);
            let Some(elements) = part.get(inner).filter(|e| !e.is_empty()) else {
                continue;
            };
            out.pop();
            if out.last() != Some(&b'[') {
                out.push(b',');
            }
            out.extend_from_slice(elements);
            out.push(b']');
        }
    }
}

/// Some item resources, as a JSON array.
struct Items<'e, 'a> {
    entries: &'e Entries<'a>,
    part: &'e [(usize, Range<usize>)],
    subject: Subject<'e>,
}

impl Items<'_, '_> {
    fn serialize_into<S: SerializeSeq>(&self, seq: &mut S) -> Result<(), S::Error> {
        for (at, range) in self.part {
            let section = &self.entries.sections[*at];
            items::serialize_items(
                seq,
                section.content,
                &section.items,
                range.clone(),
                self.subject,
            )?;
        }
        Ok(())
    }
}

impl Serialize for Items<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        self.serialize_into(&mut seq)?;
        seq.end()
    }
}

/// The Patient, the OperationOutcome, each section's List, then the first part's items.
struct Head<'e, 'a> {
    entries: &'e Entries<'a>,
    items: Items<'e, 'a>,
}

impl Serialize for Head<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = self.entries;
        let mut seq = serializer.serialize_seq(None)?;
        let subject = entries.patient.as_ref().map(|(id, _, _)| Reference {
            reference: id.as_urn(),
        });
        if let Some((id, at, demographics)) = &entries.patient {
            let nhs = demographics.nhs_number.or(at.nhs_number);
            seq.serialize_element(&Entry::new(id, patient(id, nhs.as_ref(), demographics)))?;
        }
        if let Some((id, unavailable)) = &entries.outcome {
            let outcome = Outcome {
                resource_type: "OperationOutcome",
                id,
                issue: Issues(unavailable),
            };
            seq.serialize_element(&Entry::new(id, outcome))?;
        }
        for section in &entries.sections {
            let empty_reason = list_state(section).empty_reason();
            seq.serialize_element(&Entry::new(
                &section.list,
                list(
                    section,
                    subject,
                    empty_reason.as_ref().and_then(CodingJson::new),
                ),
            ))?;
        }
        self.items.serialize_into(&mut seq)?;
        seq.end()
    }
}

fn state(content: &SectionContent) -> &SectionState {
    match content {
        SectionContent::Problems(s) => &s.state,
        SectionContent::Medications(s) => &s.state,
        SectionContent::Allergies(s) => &s.state,
        SectionContent::Observations(s) => &s.state,
        SectionContent::Immunisations(s) => &s.state,
        SectionContent::Consultations(s) => &s.state,
        SectionContent::Documents(s) => &s.state,
    }
}

/// The state a section's List shows: a recorded section with no items has nothing recorded.
fn list_state<'a>(section: &SectionIds<'a>) -> &'a SectionState {
    match state(section.content) {
        SectionState::Recorded if section.items.is_empty() => &SectionState::NothingRecorded,
        state => state,
    }
}

fn warnings(content: &SectionContent) -> &[SectionWarning] {
    match content {
        SectionContent::Problems(s) => &s.warnings,
        SectionContent::Medications(s) => &s.warnings,
        SectionContent::Allergies(s) => &s.warnings,
        SectionContent::Observations(s) => &s.warnings,
        SectionContent::Immunisations(s) => &s.warnings,
        SectionContent::Consultations(s) => &s.warnings,
        SectionContent::Documents(s) => &s.warnings,
    }
}

/// The coding of `section` in [`RECORD_SECTION_SYSTEM`].
fn section_concept(section: RecordSection) -> FixedConcept<'static> {
    FixedConcept {
        coding: [FixedCoding {
            system: RECORD_SECTION_SYSTEM,
            code: section.key(),
            display: Some(section.title()),
        }],
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a> {
    resource_type: &'static str,
    id: &'a ResourceId,
    #[serde(skip_serializing_if = "Warnings::is_empty")]
    extension: Warnings<'a>,
    status: &'static str,
    mode: &'static str,
    title: &'static str,
    code: FixedConcept<'static>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<Reference<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    empty_reason: Option<EmptyReason<'a>>,
    #[serde(rename = "entry", skip_serializing_if = "ListEntries::is_empty")]
    entries: ListEntries<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<[Text<'a>; 1]>,
}

#[derive(Serialize)]
struct EmptyReason<'a> {
    coding: [CodingJson<'a>; 1],
}

/// A recorded section has one `entry.item` per item; an empty one has an `emptyReason`.
fn list<'a>(
    section: &'a SectionIds<'a>,
    subject: Option<Reference<'a>>,
    empty_reason: Option<CodingJson<'a>>,
) -> List<'a> {
    let key = section.content.section();
    let state = list_state(section);
    let note = match state {
        SectionState::Recorded => None,
        SectionState::NothingRecorded => Some(NOTHING_RECORDED_NOTE),
        SectionState::Withheld { reason }
        | SectionState::Unavailable { reason }
        | SectionState::Failed { reason } => non_empty(reason),
    };
    let has_items = !section.items.is_empty();
    List {
        resource_type: "List",
        id: &section.list,
        extension: Warnings(warnings(section.content)),
        status: "current",
        mode: "snapshot",
        title: key.title(),
        code: section_concept(key),
        subject,
        empty_reason: empty_reason
            .filter(|_| !has_items)
            .map(|coding| EmptyReason { coding: [coding] }),
        entries: ListEntries(&section.items),
        note: note.map(|text| [Text { text }]),
    }
}

/// `entry` of a List: `{"item": <reference>}` per item.
struct ListEntries<'a>(&'a [ItemIds]);

impl ListEntries<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for ListEntries<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct ListEntry<'a> {
            item: Reference<'a>,
        }
        serializer.collect_seq(self.0.iter().map(|ids| ListEntry {
            item: Reference {
                reference: ids.id.as_urn(),
            },
        }))
    }
}

/// A section's source warnings, as [`SECTION_WARNING_URL`] extensions.
struct Warnings<'a>(&'a [SectionWarning]);

impl Warnings<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Warnings<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Warning<'a> {
            url: &'static str,
            #[serde(rename = "valueCode")]
            code: &'static str,
            #[serde(rename = "_valueCode", skip_serializing_if = "Option::is_none")]
            since: Option<ExtensionsOnly<'a>>,
        }
        serializer.collect_seq(self.0.iter().map(|warning| {
            let (code, since) = match warning {
                SectionWarning::ConfidentialItemsWithheld => ("confidential-items-withheld", None),
                SectionWarning::DataAwaitingFiling => ("data-awaiting-filing", None),
                SectionWarning::DataInTransit { since } => ("data-in-transit", since.as_ref()),
            };
            Warning {
                url: SECTION_WARNING_URL,
                code,
                since: since.map(|since| ExtensionsOnly {
                    extension: [Extension {
                        url: SECTION_WARNING_SINCE_URL,
                        value: ExtensionValue::DateTime(since.as_str()),
                    }],
                }),
            }
        }))
    }
}

#[derive(Serialize)]
struct Outcome<'a> {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    id: &'a ResourceId,
    issue: Issues<'a>,
}

/// One issue per unavailable section.
struct Issues<'a>(&'a [(RecordSection, &'a str)]);

impl Serialize for Issues<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Issue<'a> {
            severity: &'static str,
            code: &'static str,
            details: Details<'a>,
            diagnostics: String,
        }
        #[derive(Serialize)]
        struct Details<'a> {
            coding: [FixedCoding<'static>; 1],
            text: &'a str,
        }
        serializer.collect_seq(self.0.iter().map(|(section, reason)| {
            let reason = non_empty(reason).unwrap_or("no reason was given");
            let [coding] = section_concept(*section).coding;
            Issue {
                severity: "warning",
                code: "incomplete",
                details: Details {
                    coding: [coding],
                    text: reason,
                },
                diagnostics: format!(
                    "The {} section ({}) could not be had: {reason}",
                    section.title(),
                    section.key()
                ),
            }
        }))
    }
}

const GENDERS: [&str; 4] = ["male", "female", "other", "unknown"];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Patient<'a> {
    resource_type: &'static str,
    id: &'a ResourceId,
    #[serde(skip_serializing_if = "Option::is_none")]
    extension: Option<[ComplexExtension<'a, 2>; 1]>,
    #[serde(skip_serializing_if = "Present::is_empty")]
    identifier: Present<PatientIdentifier<'a>, 2>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<[HumanName<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gender: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    birth_date: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deceased_date_time: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<[Address<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    general_practitioner: Option<[OrganisationReference<'a>; 1]>,
}

#[derive(Serialize)]
struct PatientIdentifier<'a> {
    system: &'static str,
    value: &'a str,
}

#[derive(Serialize)]
struct HumanName<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    family: Option<&'a str>,
    #[serde(skip_serializing_if = "Given::is_empty")]
    given: Given<'a>,
}

/// The non-empty given names.
struct Given<'a>(&'a [String]);

impl Given<'_> {
    fn is_empty(&self) -> bool {
        self.0.iter().all(String::is_empty)
    }
}

impl Serialize for Given<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().filter(|g| !g.is_empty()))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Address<'a> {
    postal_code: &'a str,
}

#[derive(Serialize)]
struct OrganisationReference<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    identifier: OdsIdentifier<'a>,
}

fn patient<'a>(
    id: &'a ResourceId,
    nhs: Option<&'a NhsNumber>,
    demographics: &'a Demographics,
) -> Patient<'a> {
    let gender = demographics.gender.as_deref();
    let name = HumanName {
        family: non_empty_opt(demographics.family.as_deref()),
        given: Given(&demographics.given),
    };
    Patient {
        resource_type: "Patient",
        id,
        extension: gender
            .filter(|g| !GENDERS.contains(g))
            .and_then(|g| source_attribute("gender", g))
            .map(|e| [e]),
        identifier: Present([
            nhs.map(|nhs| PatientIdentifier {
                system: NHS_NUMBER,
                value: nhs.as_str(),
            }),
            non_empty(&demographics.source_patient_id).map(|value| PatientIdentifier {
                system: SOURCE_PATIENT_SYSTEM,
                value,
            }),
        ]),
        name: (name.family.is_some() || !name.given.is_empty()).then_some([name]),
        gender: gender.filter(|g| GENDERS.contains(g)),
        birth_date: demographics.birth_date.as_ref().map(|d| d.date_part()),
        deceased_date_time: demographics.deceased.as_ref().map(|d| d.as_str()),
        address: non_empty_opt(demographics.postcode.as_deref())
            .map(|postal_code| [Address { postal_code }]),
        general_practitioner: demographics.registered_practice.as_ref().map(|ods| {
            [OrganisationReference {
                kind: "Organization",
                identifier: OdsIdentifier::new(ods),
            }]
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_model::record::{Problem, ProblemStatus, RecordItem, Section, SourceAttribute};
    use keel_model::{
        ClinicalDate, CodeableConcept, Coding, NhsNumber, OdsCode, Provenance, SourceSystem,
    };
    use serde_json::{Value, json};

    fn ods() -> OdsCode {
        OdsCode::parse("Y90001").expect("ods")
    }

    fn problem(source_id: &str) -> RecordItem<Problem> {
        RecordItem {
            source_id: source_id.into(),
            content: Problem {
                code: CodeableConcept::from_coding(
                    Coding::new("http://snomed.info/sct", "38341003").with_display("Hypertension"),
                ),
                status: ProblemStatus::Active,
                onset: ClinicalDate::parse("2004").ok(),
                ended: None,
                significant: Some(true),
            },
            provenance: Provenance::new(ods(), SourceSystem::EmisStyle),
            source_attributes: vec![SourceAttribute::new("emis:ProblemType", "Major")],
        }
    }

    fn with_patient(sections: Vec<SectionContent>) -> FederatedRecord {
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
                    postcode: None,
                    registered_practice: Some(ods()),
                    deceased: None,
                },
            )),
            sections,
        }
    }

    fn bundle_of(record: &FederatedRecord) -> Value {
        serde_json::from_slice(&record_bundle(record)).expect("JSON")
    }

    fn resources<'a>(bundle: &'a Value, resource_type: &str) -> Vec<&'a Value> {
        bundle["entry"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == resource_type)
            .collect()
    }

    #[test]
    fn a_recorded_section_lists_its_items_and_nothing_else() {
        let section = Section::from_items(RecordSection::Problems, vec![problem("c-1")], vec![]);
        let bundle = bundle_of(&with_patient(vec![SectionContent::Problems(section)]));
        let list = resources(&bundle, "List")[0];
        assert_eq!(list["status"], "current");
        assert_eq!(list["mode"], "snapshot");
        assert_eq!(list["title"], "Problems");
        assert_eq!(
            list["code"]["coding"][0],
            json!({"system": RECORD_SECTION_SYSTEM, "code": "problems", "display": "Problems"})
        );
        let condition = resources(&bundle, "Condition")[0];
        let reference = format!("urn:uuid:{}", condition["id"].as_str().expect("id"));
        assert_eq!(list["entry"][0]["item"]["reference"], reference.as_str());
        assert!(list.get("emptyReason").is_none() && list.get("note").is_none());
        let patient = resources(&bundle, "Patient")[0];
        assert_eq!(
            list["subject"]["reference"],
            format!("urn:uuid:{}", patient["id"].as_str().expect("id")).as_str()
        );
        assert!(resources(&bundle, "OperationOutcome").is_empty());
        assert!(bundle.get("meta").is_none());
    }

    #[test]
    fn empty_sections_say_why_with_the_r4_empty_reason() {
        let sections = vec![
            SectionContent::Problems(Section::from_items(RecordSection::Problems, vec![], vec![])),
            SectionContent::Allergies(Section::from_items(
                RecordSection::Allergies,
                vec![],
                vec![SectionWarning::ConfidentialItemsWithheld],
            )),
            SectionContent::unavailable(RecordSection::Medications, "no answer within 2000 ms"),
        ];
        let bundle = bundle_of(&with_patient(sections));
        let lists = resources(&bundle, "List");
        let reasons: Vec<&Value> = lists
            .iter()
            .map(|l| &l["emptyReason"]["coding"][0]["code"])
            .collect();
        assert_eq!(reasons, ["nilknown", "withheld", "unavailable"]);
        assert!(lists.iter().all(|l| l.get("entry").is_none()));
        assert_eq!(lists[0]["note"][0]["text"], NOTHING_RECORDED_NOTE);
        assert_eq!(
            lists[1]["note"][0]["text"],
            "Items excluded due to confidentiality and/or patient preferences."
        );
        assert_eq!(
            lists[1]["extension"][0],
            json!({"url": SECTION_WARNING_URL, "valueCode": "confidential-items-withheld"})
        );
        assert_eq!(lists[2]["note"][0]["text"], "no answer within 2000 ms");
        let outcome = resources(&bundle, "OperationOutcome");
        assert_eq!(outcome.len(), 1);
        let issues = outcome[0]["issue"].as_array().expect("issues");
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0]["severity"], "warning");
        assert_eq!(issues[0]["code"], "incomplete");
        assert_eq!(issues[0]["details"]["coding"][0]["code"], "medications");
        let diagnostics = issues[0]["diagnostics"].as_str().expect("diagnostics");
        assert!(diagnostics.contains("Medications") && diagnostics.contains("2000 ms"));
        assert_eq!(bundle["meta"]["tag"][0]["code"], "partial");
    }

    #[test]
    fn a_practice_that_could_not_be_asked_still_gives_every_list_and_the_outcome() {
        let record = FederatedRecord {
            practice: ods(),
            patient: None,
            sections: RecordSection::ALL
                .iter()
                .map(|s| SectionContent::unavailable(*s, "could not connect"))
                .collect(),
        };
        let bundle = bundle_of(&record);
        assert!(resources(&bundle, "Patient").is_empty());
        let lists = resources(&bundle, "List");
        assert_eq!(lists.len(), RecordSection::ALL.len());
        assert!(lists.iter().all(|l| l.get("subject").is_none()));
        let issues = &resources(&bundle, "OperationOutcome")[0]["issue"];
        assert_eq!(
            issues.as_array().map(Vec::len),
            Some(RecordSection::ALL.len())
        );
        assert_eq!(bundle["meta"]["tag"][0]["code"], "partial");
    }

    #[test]
    fn data_in_transit_carries_its_date() {
        let section = Section::from_items(
            RecordSection::Problems,
            vec![problem("c-1")],
            vec![SectionWarning::DataInTransit {
                since: ClinicalDate::parse("2024-11-02").ok(),
            }],
        );
        let bundle = bundle_of(&with_patient(vec![SectionContent::Problems(section)]));
        let warning = &resources(&bundle, "List")[0]["extension"][0];
        assert_eq!(warning["valueCode"], "data-in-transit");
        assert_eq!(
            warning["_valueCode"]["extension"][0],
            json!({"url": SECTION_WARNING_SINCE_URL, "valueDateTime": "2024-11-02"})
        );
    }

    #[test]
    fn the_patient_has_what_the_practice_holds_and_nothing_for_what_it_does_not() {
        let bundle = bundle_of(&with_patient(vec![]));
        let patient = resources(&bundle, "Patient")[0];
        assert_eq!(
            patient["identifier"][0],
            json!({"system": NHS_NUMBER, "value": "9990000018"})
        );
        assert_eq!(
            patient["name"][0],
            json!({"family": "Smith", "given": ["Ann"]})
        );
        assert_eq!(patient["birthDate"], "1950-02-03");
        assert_eq!(patient["gender"], "female");
        assert_eq!(
            patient["generalPractitioner"][0]["identifier"]["value"],
            "Y90001"
        );
        assert!(patient.get("address").is_none() && patient.get("deceasedDateTime").is_none());
    }

    #[test]
    fn the_bytes_are_the_same_however_the_items_are_split() {
        let items = |prefix: &str, n: usize| {
            (0..n)
                .map(|i| problem(&format!("{prefix}-{i}")))
                .collect::<Vec<_>>()
        };
        let record = with_patient(vec![
            SectionContent::Problems(Section::from_items(
                RecordSection::Problems,
                items("a", 7),
                vec![],
            )),
            SectionContent::Problems(Section::from_items(RecordSection::Problems, vec![], vec![])),
            SectionContent::unavailable(RecordSection::Medications, "no answer"),
            SectionContent::Problems(Section::from_items(
                RecordSection::Problems,
                items("b", 3),
                vec![],
            )),
        ]);
        let bundle = Bundle::new(&record);
        let whole = bundle.to_json(1, 0);
        assert!(serde_json::from_slice::<Value>(&whole).is_ok());
        for parts in 2..14 {
            let split = bundle.entries.split(parts);
            assert!(split.len() <= parts);
            assert_eq!(bundle.to_json(parts, 0), whole, "{parts} parts");
        }
        let empty = FederatedRecord {
            practice: ods(),
            patient: None,
            sections: vec![],
        };
        assert_eq!(
            Bundle::new(&empty).to_json(2, 0),
            br#"{"resourceType":"Bundle","type":"collection"}"#
        );
    }

    #[test]
    fn ids_are_the_same_on_every_read() {
        let record = with_patient(vec![SectionContent::Problems(Section::from_items(
            RecordSection::Problems,
            vec![problem("c-1"), problem("c-2")],
            vec![],
        ))]);
        assert_eq!(record_bundle(&record), record_bundle(&record));
    }
}
