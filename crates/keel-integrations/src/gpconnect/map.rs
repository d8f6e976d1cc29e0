//! The pure mapping of a GP Connect structured record (STU3) into the canonical record: one
//! Bundle in, one [`SectionContent`] (or the practice's [`Demographics`]) out. No I/O; see the
//! module docs of [`super`] for what is carried and what is lost.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use keel_core::integration::SectionContent;
use keel_model::record::{
    Allergy, AllergyStatus, Consultation, CourseKind, Demographics, Immunisation, Medication,
    MedicationIssue, MedicationStatus, Observation, ObservationComponent, ObservationValue,
    Problem, ProblemStatus, RecordItem, RecordSection, Section, SectionWarning, SourceAttribute,
};
use keel_model::{
    ClinicalDate, CodeableConcept, Coding, Comparator, Decimal, Instant, NhsNumber, OdsCode,
    Provenance, Quantity, SourceSystem,
};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::bundle::{Bundle, StructuredBundle};
use super::stu3::{
    self, Address, Extension, HumanName, Identifier, ListEntry, Many, Obj, Object, Participant,
    Performer, Period, Reference, Related, Text, Texted, attribute_text,
};

const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const LIST_WARNING_EXT: &str =
    "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-ListWarningCode-1";
const PROBLEM_SIGNIFICANCE_EXT: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-ProblemSignificance-1";
const PRESCRIPTION_TYPE_EXT: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-PrescriptionType-1";
const COMMENT_NOTE: &str = "37331000000100";
const ENDED_ALLERGIES_LIST: &str = "1103671000000101";
/// Fields every resource has that need no attribute (the type, id, subject and extensions are
/// handled by each mapper; `meta` gives the version).
const COMMON_FIELDS: [&str; 6] = [
    "resourceType",
    "id",
    "meta",
    "subject",
    "patient",
    "extension",
];

/// Where the answer came from, for every item's provenance.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub practice: &'a OdsCode,
    pub retrieved: &'a Instant,
}

/// Why a Bundle could not be mapped to the section asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapError {
    /// The practice has switched this clinical area off (the parameter named).
    AreaDisabled(&'static str),
    /// GP Connect has no clinical area for the section.
    NotOffered(RecordSection),
    /// The Bundle is not what GP Connect promises.
    Malformed(String),
}

fn malformed(reason: impl Into<String>) -> MapError {
    MapError::Malformed(reason.into())
}

/// A clinical area of `$gpc.getstructuredrecord`: its parameter and its primary List's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Area {
    parameter: &'static str,
    list_code: &'static str,
    title: &'static str,
}

const PROBLEMS: Area = Area {
    parameter: "includeProblems",
    list_code: "717711000000103",
    title: "Problems",
};
const MEDICATION: Area = Area {
    parameter: "includeMedication",
    list_code: "933361000000108",
    title: "Medications and medical devices",
};
const ALLERGIES: Area = Area {
    parameter: "includeAllergies",
    list_code: "886921000000105",
    title: "Allergies and adverse reactions",
};
const UNCATEGORISED: Area = Area {
    parameter: "includeUncategorisedData",
    list_code: "826501000000100",
    title: "Miscellaneous record",
};
const INVESTIGATIONS: Area = Area {
    parameter: "includeInvestigations",
    list_code: "887191000000108",
    title: "Investigations and results",
};
const IMMUNISATIONS: Area = Area {
    parameter: "includeImmunisations",
    list_code: "1102181000000102",
    title: "Immunisations",
};
const CONSULTATIONS: Area = Area {
    parameter: "includeConsultations",
    list_code: "1149501000000101",
    title: "List of consultations",
};

/// The clinical areas that make up `section`; `None` for documents (not a structured area).
fn areas(section: RecordSection) -> Option<&'static [Area]> {
    match section {
        RecordSection::Problems => Some(&[PROBLEMS]),
        RecordSection::Medications => Some(&[MEDICATION]),
        RecordSection::Allergies => Some(&[ALLERGIES]),
        RecordSection::Observations => Some(&[UNCATEGORISED, INVESTIGATIONS]),
        RecordSection::Immunisations => Some(&[IMMUNISATIONS]),
        RecordSection::Consultations => Some(&[CONSULTATIONS]),
        RecordSection::Documents => None,
    }
}

/// The `Parameters` body asking for `nhs_number`'s record, with `section`'s clinical areas
/// (none: the patient and their practice only).
///
/// # Errors
/// [`MapError::NotOffered`] for a section GP Connect has no area for.
pub fn parameters(
    nhs_number: &NhsNumber,
    section: Option<RecordSection>,
) -> Result<Value, MapError> {
    let mut parameter = vec![json!({
        "name": "patientNHSNumber",
        "valueIdentifier": {"system": NHS_NUMBER_SYSTEM, "value": nhs_number.as_str()},
    })];
    if let Some(section) = section {
        for area in areas(section).ok_or(MapError::NotOffered(section))? {
            parameter.push(match area.parameter {
                "includeAllergies" => json!({"name": area.parameter, "part": [
                    {"name": "includeResolvedAllergies", "valueBoolean": true}]}),
                "includeMedication" => json!({"name": area.parameter, "part": [
                    {"name": "includePrescriptionIssues", "valueBoolean": true}]}),
                _ => json!({"name": area.parameter}),
            });
        }
    }
    Ok(json!({"resourceType": "Parameters", "parameter": parameter}))
}

/// Maps a structured record Bundle answered for `section`.
///
/// # Errors
/// [`MapError::AreaDisabled`] when the practice switched one of the section's areas off (the
/// section would be incomplete); [`MapError::Malformed`] when the Bundle breaks GP Connect's
/// rules (no List for an area asked for, an item without its code, an unreadable date, ...).
pub fn map_section(
    body: &[u8],
    section: RecordSection,
    source: &Source<'_>,
) -> Result<SectionContent, MapError> {
    let areas = areas(section).ok_or(MapError::NotOffered(section))?;
    let body = Bundle::read(body).map_err(malformed)?;
    let bundle = StructuredBundle::index(&body).map_err(MapError::Malformed)?;
    if let Some(area) = areas.iter().find(|a| bundle.is_disabled(a.parameter)) {
        return Err(MapError::AreaDisabled(area.parameter));
    }
    let mut lists = Vec::with_capacity(areas.len() + 1);
    for area in areas {
        let list = bundle
            .list(area.list_code)
            .ok_or_else(|| malformed(format!("no \"{}\" List was returned", area.title)))?;
        lists.push(list);
    }
    let ended_allergies = if section == RecordSection::Allergies {
        bundle.list(ENDED_ALLERGIES_LIST)
    } else {
        None
    };
    let warnings = section_warnings(lists.iter().copied().chain(ended_allergies))?;
    let mapper = Mapper {
        bundle: &bundle,
        source,
        names: RefCell::default(),
    };
    Ok(match section {
        RecordSection::Problems => SectionContent::Problems(Section::from_items(
            section,
            mapper.items(lists[0], Mapper::problem)?,
            warnings,
        )),
        RecordSection::Medications => {
            let issues = mapper.issues_by_plan();
            let items = mapper.items(lists[0], |m, r| m.medication(r, &issues))?;
            SectionContent::Medications(Section::from_items(section, items, warnings))
        }
        RecordSection::Allergies => {
            let mut items = mapper.items(lists[0], |m, r| m.allergy(r, AllergyStatus::Active))?;
            if let Some(ended) = ended_allergies {
                let contained: Many<Obj<Object<'_>>> = ended.get("contained");
                for reference in entry_references(ended) {
                    let allergy = reference
                        .strip_prefix('#')
                        .and_then(|id| contained.objects().find(|r| r.is("id", id)))
                        .ok_or_else(|| {
                            malformed("an ended allergy is not contained in its List")
                        })?;
                    items.push(mapper.allergy(allergy, AllergyStatus::Resolved)?);
                }
            }
            SectionContent::Allergies(Section::from_items(section, items, warnings))
        }
        RecordSection::Observations => {
            let results = mapper.observations(lists[0], lists[1])?;
            let items = map_in_parallel(&results, |part| {
                let mapper = Mapper {
                    bundle: &bundle,
                    source,
                    names: RefCell::default(),
                };
                part.iter()
                    .map(|(observation, report)| mapper.observation(observation, report))
                    .collect()
            })?;
            SectionContent::Observations(Section::from_items(section, items, warnings))
        }
        RecordSection::Immunisations => SectionContent::Immunisations(Section::from_items(
            section,
            mapper.items(lists[0], Mapper::immunisation)?,
            warnings,
        )),
        RecordSection::Consultations => {
            let notes = mapper.notes_by_encounter();
            let items = mapper.items(lists[0], |m, r| m.consultation(r, &notes))?;
            SectionContent::Consultations(Section::from_items(section, items, warnings))
        }
        RecordSection::Documents => return Err(MapError::NotOffered(section)),
    })
}

/// The warnings of a section's Lists, each once.
fn section_warnings<'b>(
    lists: impl Iterator<Item = &'b Object<'b>>,
) -> Result<Vec<SectionWarning>, MapError> {
    let mut warnings = Vec::new();
    for list in lists {
        let extensions: Many<Obj<Extension<'_>>> = list.get("extension");
        for extension in extensions.0.iter().map(|e| e.0.as_ref()) {
            let Some(extension) = extension.filter(|e| e.url.is(LIST_WARNING_EXT)) else {
                continue;
            };
            let warning = match extension.value_code.as_str() {
                Some("confidential-items") => SectionWarning::ConfidentialItemsWithheld,
                Some("data-in-transit") => SectionWarning::DataInTransit {
                    since: list
                        .get::<Many<Obj<Texted<'_>>>>("note")
                        .objects()
                        .filter_map(|n| n.text.as_str())
                        .find_map(in_transit_since),
                },
                Some("data-awaiting-filing") => SectionWarning::DataAwaitingFiling,
                _ => return Err(malformed("a List carries an unknown warning code")),
            };
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
    }
    Ok(warnings)
}

/// The date in "... information recorded before dd-Mmm-yyyy may be missing."
fn in_transit_since(note: &str) -> Option<ClinicalDate> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let rest = note.split("recorded before ").nth(1)?;
    let date = rest.get(..11)?;
    let (day, rest) = date.split_once('-')?;
    let (month, year) = rest.split_once('-')?;
    let month = MONTHS.iter().position(|m| *m == month)? + 1;
    ClinicalDate::parse(&format!("{year}-{month:02}-{day}")).ok()
}

/// The item references of a List's entries (display-only entries name no item).
fn entry_references<'b>(list: &Object<'b>) -> Vec<Cow<'b, str>> {
    list.get::<Many<Obj<ListEntry<'b>>>>("entry")
        .0
        .into_iter()
        .filter_map(|e| e.0?.item.0?.reference.into_cow())
        .collect()
}

/// The reference member `name` holds, if it is one.
fn reference<'b>(resource: &Object<'b>, name: &str) -> Option<Reference<'b>> {
    resource.get::<Obj<Reference<'b>>>(name).0
}

/// Member `name` as a CodeableConcept exactly as sent.
fn concept_at(resource: &Object<'_>, name: &str) -> Option<CodeableConcept> {
    concept(
        resource
            .get::<Obj<stu3::CodeableConcept<'_>>>(name)
            .0
            .as_ref()?,
    )
}

/// A CodeableConcept exactly as sent; codings without a system or code are not codings.
fn concept(value: &stu3::CodeableConcept<'_>) -> Option<CodeableConcept> {
    let mut concept = CodeableConcept::default();
    for coding in value.coding.objects() {
        let (Some(system), Some(code)) = (coding.system.as_str(), coding.code.as_str()) else {
            continue;
        };
        let mut c = Coding::new(system, code);
        if let Some(display) = coding.display.as_str() {
            c = c.with_display(display);
        }
        if let Some(version) = coding.version.as_str() {
            c = c.with_version(version);
        }
        concept = concept.with_coding(c);
    }
    if let Some(text) = value.text.as_str() {
        concept = concept.with_text(text);
    }
    (!concept.codings().is_empty() || concept.text.is_some()).then_some(concept)
}

fn date(value: &Text<'_>, field: &str) -> Result<Option<ClinicalDate>, MapError> {
    match value {
        Text::Absent => Ok(None),
        Text::Str(text) => ClinicalDate::parse(text)
            .map(Some)
            .map_err(|_| malformed(format!("{field} is not a date"))),
        Text::Other => Err(malformed(format!("{field} is not a date"))),
    }
}

/// Member `name` as a date.
fn date_at(
    resource: &Object<'_>,
    name: &str,
    field: &str,
) -> Result<Option<ClinicalDate>, MapError> {
    date(&resource.text(name), field)
}

/// A Quantity member (`value` its JSON text); absent or `null` is no quantity.
fn quantity(value: Option<&RawValue>, field: &str) -> Result<Option<Quantity>, MapError> {
    let Some(value) = value.filter(|v| v.get() != "null") else {
        return Ok(None);
    };
    let bad = || malformed(format!("{field} is not a quantity"));
    let quantity = serde_json::from_str::<Obj<stu3::Quantity<'_>>>(value.get())
        .ok()
        .and_then(|q| q.0)
        .ok_or_else(bad)?;
    let number = quantity
        .value
        .map(RawValue::get)
        .filter(|n| n.starts_with(|c: char| c == '-' || c.is_ascii_digit()))
        .ok_or_else(bad)?;
    let decimal = Decimal::parse(number).map_err(|_| bad())?;
    let comparator = match quantity.comparator.as_str() {
        None => None,
        Some("<") => Some(Comparator::LessThan),
        Some("<=") => Some(Comparator::LessOrEqual),
        Some(">=") => Some(Comparator::GreaterOrEqual),
        Some(">") => Some(Comparator::GreaterThan),
        Some(_) => return Err(bad()),
    };
    Ok(Some(Quantity {
        value: decimal,
        comparator,
        unit: quantity.unit.as_str().map(str::to_string),
        system: quantity.system.as_str().map(str::to_string),
        code: quantity.code.as_str().map(str::to_string),
        normalised: None,
    }))
}

/// Every field of `resource` the mapping did not use, as `gpconnect:<Type>.<field>`.
fn leftovers(resource: &Object<'_>, kind: &str, used: &[&str], out: &mut Vec<SourceAttribute>) {
    for (field, value) in resource.members() {
        if COMMON_FIELDS.contains(&field.as_ref()) || used.contains(&field.as_ref()) {
            continue;
        }
        out.push(SourceAttribute::new(
            format!("gpconnect:{kind}.{field}"),
            attribute_text(value),
        ));
    }
    for (field, value) in resource.object("meta").members() {
        if field != "profile" && field != "versionId" {
            out.push(SourceAttribute::new(
                format!("gpconnect:{kind}.meta.{field}"),
                attribute_text(value),
            ));
        }
    }
    for extension in resource.get::<Many<&RawValue>>("extension").iter() {
        let url = serde_json::from_str::<Obj<Extension<'_>>>(extension.get())
            .ok()
            .and_then(|e| e.0)
            .and_then(|e| e.url.into_cow());
        if !MAPPED_EXTENSIONS.contains(&url.as_deref().unwrap_or("")) {
            out.push(SourceAttribute::new(
                format!("gpconnect:{kind}.extension"),
                attribute_text(extension),
            ));
        }
    }
}

/// Extensions whose content the mapping carries.
const MAPPED_EXTENSIONS: [&str; 2] = [PROBLEM_SIGNIFICANCE_EXT, PRESCRIPTION_TYPE_EXT];

/// The extension `url` of `resource`, if it has one.
fn extension<'b>(resource: &Object<'b>, url: &str) -> Option<Extension<'b>> {
    resource
        .get::<Many<Obj<Extension<'b>>>>("extension")
        .0
        .into_iter()
        .filter_map(|e| e.0)
        .find(|e| e.url.is(url))
}

/// A practitioner's name as the source holds it: prefix, given names, family name.
fn name_text(name: &HumanName<'_>) -> Option<String> {
    if let Some(text) = name.text.as_str() {
        return Some(text.to_string());
    }
    let parts: Vec<&str> = name
        .prefix
        .iter()
        .chain(name.given.iter())
        .filter_map(Text::as_str)
        .chain(name.family.as_str())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// An Observation to map, with the attributes of the DiagnosticReport it is a result of.
type ObservationToMap<'b> = (&'b Object<'b>, Arc<[SourceAttribute]>);

/// An issue (`intent=order` MedicationRequest) with the fields it is sorted and mapped by.
struct Issue<'b> {
    authored: Text<'b>,
    id: Text<'b>,
    request: &'b Object<'b>,
}

/// Maps the resources of one Bundle.
struct Mapper<'m, 'b> {
    bundle: &'m StructuredBundle<'b>,
    source: &'m Source<'m>,
    /// The names of the practitioners already looked up, by the resource's address.
    names: RefCell<HashMap<*const Object<'b>, Option<String>>>,
}

impl<'b> Mapper<'_, 'b> {
    /// Maps every item a List references with `map`.
    fn items<T>(
        &self,
        list: &'b Object<'b>,
        map: impl Fn(&Self, &'b Object<'b>) -> Result<RecordItem<T>, MapError>,
    ) -> Result<Vec<RecordItem<T>>, MapError> {
        let references = entry_references(list);
        let mut items = Vec::with_capacity(references.len());
        for reference in references {
            let resource = self
                .bundle
                .resolve(&reference)
                .ok_or_else(|| malformed("a List entry is not in the Bundle"))?;
            items.push(map(self, resource)?);
        }
        Ok(items)
    }

    /// Who a reference names: the practitioner's name when the Bundle holds them, else the
    /// reference's display or the reference itself.
    fn person(&self, reference: Option<&Reference<'_>>) -> Option<String> {
        let reference = reference?;
        let target = reference.reference.as_str()?;
        self.practitioner_name(target)
            .or_else(|| reference.display.as_str().map(str::to_string))
            .or_else(|| Some(target.to_string()))
    }

    /// The name of the resource `target` refers to, if the Bundle holds it and it has one.
    fn practitioner_name(&self, target: &str) -> Option<String> {
        let resource = self.bundle.resolve(target)?;
        let mut names = self.names.borrow_mut();
        names
            .entry(std::ptr::from_ref(resource))
            .or_insert_with(|| {
                resource
                    .get::<Many<Obj<HumanName<'_>>>>("name")
                    .objects()
                    .find_map(name_text)
            })
            .clone()
    }

    /// Who the reference member `name` of `resource` names.
    fn person_at(&self, resource: &Object<'_>, name: &str) -> Option<String> {
        self.person(reference(resource, name).as_ref())
    }

    fn provenance(
        &self,
        resource: &Object<'_>,
        status: Option<&str>,
        author: Option<String>,
    ) -> Provenance {
        let mut provenance = Provenance::new(self.source.practice.clone(), SourceSystem::GpConnect)
            .with_retrieved(self.source.retrieved.clone());
        if let Some(status) = status {
            provenance = provenance.with_status(status);
        }
        if let Some(author) = author {
            provenance = provenance.with_author(author);
        }
        if let Some(version) = resource.object("meta").text("versionId").as_str() {
            provenance = provenance.with_source_version(version);
        }
        provenance
    }

    fn problem(&self, r: &'b Object<'b>) -> Result<RecordItem<Problem>, MapError> {
        expect(r, "Condition")?;
        let clinical_status = r.text("clinicalStatus");
        let clinical_status = clinical_status
            .as_str()
            .ok_or_else(|| malformed("a Condition has no clinicalStatus"))?;
        let status = match clinical_status {
            "active" | "recurrence" => ProblemStatus::Active,
            _ => ProblemStatus::Inactive,
        };
        let significant =
            extension(r, PROBLEM_SIGNIFICANCE_EXT).and_then(|e| match e.value_code.as_str() {
                Some("major") => Some(true),
                Some("minor") => Some(false),
                _ => None,
            });
        let mut attributes = Vec::new();
        leftovers(
            r,
            "Condition",
            &[
                "code",
                "clinicalStatus",
                "onsetDateTime",
                "abatementDateTime",
                "asserter",
                "category",
            ],
            &mut attributes,
        );
        Ok(RecordItem {
            source_id: id(r)?,
            content: Problem {
                code: concept_at(r, "code").ok_or_else(|| malformed("a Condition has no code"))?,
                status,
                onset: date_at(r, "onsetDateTime", "Condition.onsetDateTime")?,
                ended: date_at(r, "abatementDateTime", "Condition.abatementDateTime")?,
                significant,
            },
            provenance: self.provenance(r, Some(clinical_status), self.person_at(r, "asserter")),
            source_attributes: attributes,
        })
    }

    /// The issues (`intent=order` MedicationRequests) by the plan they are based on, oldest
    /// first.
    fn issues_by_plan(&self) -> HashMap<Cow<'b, str>, Vec<Issue<'b>>> {
        let mut issues: HashMap<Cow<'b, str>, Vec<Issue<'b>>> = HashMap::new();
        for request in self.bundle.resources_of("MedicationRequest") {
            if !request.is("intent", "order") {
                continue;
            }
            let plans: Many<Obj<Reference<'b>>> = request.get("basedOn");
            for plan in plans
                .0
                .into_iter()
                .filter_map(|p| p.0?.reference.into_cow())
            {
                issues.entry(plan).or_default().push(Issue {
                    authored: request.text("authoredOn"),
                    id: request.text("id"),
                    request,
                });
            }
        }
        for list in issues.values_mut() {
            list.sort_by(|a, b| {
                (a.authored.as_str(), a.id.as_str()).cmp(&(b.authored.as_str(), b.id.as_str()))
            });
        }
        issues
    }

    fn medication(
        &self,
        statement: &'b Object<'b>,
        issues: &HashMap<Cow<'b, str>, Vec<Issue<'b>>>,
    ) -> Result<RecordItem<Medication>, MapError> {
        expect(statement, "MedicationStatement")?;
        let mut attributes = Vec::new();
        let medicine = match reference(statement, "medicationReference")
            .and_then(|r| r.reference.into_cow())
        {
            Some(reference) => {
                let medication = self.bundle.resolve(&reference).ok_or_else(|| {
                    malformed("a MedicationStatement's Medication is not in the Bundle")
                })?;
                leftovers(medication, "Medication", &["code"], &mut attributes);
                concept_at(medication, "code")
            }
            None => concept_at(statement, "medicationCodeableConcept"),
        }
        .ok_or_else(|| malformed("a MedicationStatement names no medicine"))?;
        let status_text = statement.text("status");
        let status_text = status_text
            .as_str()
            .ok_or_else(|| malformed("a MedicationStatement has no status"))?;
        let status = match status_text {
            "completed" => MedicationStatus::Completed,
            "stopped" | "entered-in-error" => MedicationStatus::Stopped,
            _ => MedicationStatus::Active,
        };
        let dosages: Many<Obj<Texted<'_>>> = statement.get("dosage");
        let dosage: Vec<&str> = dosages.objects().filter_map(|d| d.text.as_str()).collect();
        leftovers(
            statement,
            "MedicationStatement",
            &[
                "medicationReference",
                "medicationCodeableConcept",
                "status",
                "effectivePeriod",
                "dosage",
                "basedOn",
            ],
            &mut attributes,
        );
        let plan_reference = statement
            .get::<Many<Obj<Reference<'b>>>>("basedOn")
            .0
            .into_iter()
            .find_map(|p| p.0?.reference.into_cow());
        let plan = plan_reference
            .as_deref()
            .and_then(|p| self.bundle.resolve(p))
            .ok_or_else(|| {
                malformed("a MedicationStatement's authorisation is not in the Bundle")
            })?;
        let course = match extension(plan, PRESCRIPTION_TYPE_EXT)
            .and_then(|e| e.value_codeable_concept.0)
            .and_then(|c| {
                c.coding
                    .first()
                    .and_then(|c| c.code.as_str().map(str::to_string))
            })
            .as_deref()
        {
            Some("acute" | "delayed-prescribing") => CourseKind::Acute,
            Some(_) => CourseKind::Repeat,
            None => return Err(malformed("an authorisation has no prescription type")),
        };
        leftovers(
            plan,
            "MedicationRequest",
            &[
                "intent",
                "medicationReference",
                "recorder",
                "dosageInstruction",
                "dispenseRequest",
                "basedOn",
            ],
            &mut attributes,
        );
        let dispense = plan.object("dispenseRequest");
        for (field, value) in dispense.members().iter().filter(|(f, _)| f != "quantity") {
            attributes.push(SourceAttribute::new(
                format!("gpconnect:MedicationRequest.dispenseRequest.{field}"),
                attribute_text(value),
            ));
        }
        let mut mapped_issues = Vec::new();
        for issue in plan_reference
            .as_deref()
            .and_then(|p| issues.get(p))
            .into_iter()
            .flatten()
        {
            mapped_issues.push(MedicationIssue {
                date: date(&issue.authored, "MedicationRequest.authoredOn")?
                    .ok_or_else(|| malformed("an issue has no date"))?,
                quantity: quantity(
                    issue.request.object("dispenseRequest").raw("quantity"),
                    "an issue's quantity",
                )?,
            });
        }
        let period = statement
            .get::<Obj<Period<'_>>>("effectivePeriod")
            .0
            .unwrap_or_default();
        Ok(RecordItem {
            source_id: id(statement)?,
            content: Medication {
                medication: medicine,
                dosage: (!dosage.is_empty()).then(|| dosage.join("; ")),
                quantity: quantity(dispense.raw("quantity"), "an authorisation's quantity")?,
                course,
                status,
                start: date(&period.start, "MedicationStatement.effectivePeriod.start")?,
                end: date(&period.end, "MedicationStatement.effectivePeriod.end")?,
                issues: mapped_issues,
            },
            provenance: self.provenance(
                statement,
                Some(status_text),
                self.person_at(plan, "recorder"),
            ),
            source_attributes: attributes,
        })
    }

    /// An allergy; `listed_as` is the status its List implies when the resource has none.
    fn allergy(
        &self,
        r: &Object<'_>,
        listed_as: AllergyStatus,
    ) -> Result<RecordItem<Allergy>, MapError> {
        expect(r, "AllergyIntolerance")?;
        let clinical_status = r.text("clinicalStatus");
        let clinical_status = clinical_status.as_str();
        let status = match clinical_status {
            Some("active") => AllergyStatus::Active,
            Some(_) => AllergyStatus::Resolved,
            None => listed_as,
        };
        let reactions: Many<Obj<Object<'_>>> = r.get("reaction");
        let first_reaction = reactions.first();
        let manifestations: Many<Obj<stu3::CodeableConcept<'_>>> = first_reaction
            .map(|re| re.get("manifestation"))
            .unwrap_or_default();
        let mut attributes = Vec::new();
        let mut used = vec!["code", "clinicalStatus", "assertedDate", "recorder"];
        let simple_reaction = reactions.0.len() == 1
            && manifestations.0.len() == 1
            && first_reaction.is_some_and(|re| re.members().len() == 1);
        if simple_reaction || reactions.0.is_empty() {
            used.push("reaction");
        }
        leftovers(r, "AllergyIntolerance", &used, &mut attributes);
        Ok(RecordItem {
            source_id: id(r)?,
            content: Allergy {
                substance: concept_at(r, "code")
                    .ok_or_else(|| malformed("an AllergyIntolerance has no code"))?,
                reaction: manifestations.first().and_then(concept),
                status,
                recorded: date_at(r, "assertedDate", "AllergyIntolerance.assertedDate")?,
            },
            provenance: self.provenance(r, clinical_status, self.person_at(r, "recorder")),
            source_attributes: attributes,
        })
    }

    fn immunisation(&self, r: &'b Object<'b>) -> Result<RecordItem<Immunisation>, MapError> {
        expect(r, "Immunization")?;
        let author = r
            .get::<Many<Obj<Performer<'_>>>>("practitioner")
            .objects()
            .find_map(|p| self.person(p.actor.0.as_ref()));
        let mut attributes = Vec::new();
        leftovers(
            r,
            "Immunization",
            &["vaccineCode", "date", "status", "practitioner"],
            &mut attributes,
        );
        let vaccine_code = r
            .get::<Obj<stu3::CodeableConcept<'_>>>("vaccineCode")
            .0
            .unwrap_or_default();
        Ok(RecordItem {
            source_id: id(r)?,
            content: Immunisation {
                vaccine: concept(&vaccine_code)
                    .ok_or_else(|| malformed("an Immunization has no vaccine code"))?,
                date: date_at(r, "date", "Immunization.date")?,
                product: vaccine_code.text.as_str().map(str::to_string),
            },
            provenance: self.provenance(r, r.text("status").as_str(), author),
            source_attributes: attributes,
        })
    }

    /// An Observation; `report` adds the attributes of the DiagnosticReport it is a result of.
    fn observation(
        &self,
        r: &'b Object<'b>,
        report: &[SourceAttribute],
    ) -> Result<RecordItem<Observation>, MapError> {
        expect(r, "Observation")?;
        let mut attributes = report.to_vec();
        let mut components = Vec::new();
        let mut used = vec![
            "code",
            "effectiveDateTime",
            "valueQuantity",
            "valueString",
            "valueCodeableConcept",
            "comment",
            "performer",
            "status",
            "category",
            "component",
        ];
        let related: Many<Obj<Related<'_>>> = r.get("related");
        let members: Vec<&Object<'_>> = related
            .objects()
            .filter(|rel| rel.kind.is("has-member"))
            .filter_map(|rel| rel.target.0.as_ref()?.reference.as_str())
            .filter_map(|target| self.bundle.resolve(target))
            .collect();
        let members_mapped = !members.is_empty();
        for member in members {
            let code = concept_at(member, "code")
                .ok_or_else(|| malformed("a panel member has no code"))?;
            if let Some(value) = observation_value(member)? {
                components.push(ObservationComponent { code, value });
            }
        }
        if members_mapped
            && related
                .iter()
                .all(|rel| rel.0.as_ref().is_some_and(|rel| rel.kind.is("has-member")))
        {
            used.push("related");
        }
        let parts: Many<Obj<Object<'_>>> = r.get("component");
        for component in parts.iter() {
            let component = component.0.as_ref();
            let code = component
                .and_then(|c| concept_at(c, "code"))
                .ok_or_else(|| malformed("a component has no code"))?;
            if let Some(value) = component.map(observation_value).transpose()?.flatten() {
                components.push(ObservationComponent { code, value });
            }
        }
        let categories: Vec<String> = r
            .get::<Many<Obj<stu3::CodeableConcept<'_>>>>("category")
            .objects()
            .flat_map(|c| c.coding.objects())
            .filter_map(|c| c.code.as_str().map(str::to_string))
            .collect();
        if !categories.is_empty() {
            attributes.push(SourceAttribute::new(
                "gpconnect:Observation.category",
                categories.join(","),
            ));
        }
        leftovers(r, "Observation", &used, &mut attributes);
        let author = r
            .get::<Many<Obj<Reference<'_>>>>("performer")
            .objects()
            .find_map(|p| self.person(Some(p)));
        Ok(RecordItem {
            source_id: id(r)?,
            content: Observation {
                code: concept_at(r, "code")
                    .ok_or_else(|| malformed("an Observation has no code"))?,
                effective: date_at(r, "effectiveDateTime", "Observation.effectiveDateTime")?,
                value: observation_value(r)?,
                components,
                note: r.text("comment").into_cow().map(Cow::into_owned),
            },
            provenance: self.provenance(r, r.text("status").as_str(), author),
            source_attributes: attributes,
        })
    }

    /// The Observations of the observations section, in order, each with the attributes of
    /// the DiagnosticReport it is a result of (none for the uncategorised ones): those the
    /// `uncategorised` List names, then each result of each report the `investigations` List
    /// names.
    fn observations(
        &self,
        uncategorised: &'b Object<'b>,
        investigations: &'b Object<'b>,
    ) -> Result<Vec<ObservationToMap<'b>>, MapError> {
        let resolve = |reference: &str, missing: &'static str| {
            self.bundle
                .resolve(reference)
                .ok_or_else(|| malformed(missing))
        };
        let none: Arc<[SourceAttribute]> = Arc::new([]);
        let mut observations = Vec::new();
        for reference in entry_references(uncategorised) {
            let observation = resolve(&reference, "a List entry is not in the Bundle")?;
            observations.push((observation, none.clone()));
        }
        for reference in entry_references(investigations) {
            let report = resolve(&reference, "a List entry is not in the Bundle")?;
            expect(report, "DiagnosticReport")?;
            let mut attributes = vec![SourceAttribute::new(
                "gpconnect:DiagnosticReport.id",
                id(report)?,
            )];
            leftovers(report, "DiagnosticReport", &["result"], &mut attributes);
            let attributes: Arc<[SourceAttribute]> = attributes.into();
            let results: Many<Obj<Reference<'_>>> = report.get("result");
            for target in results.objects().filter_map(|r| r.reference.as_str()) {
                let result = resolve(target, "a DiagnosticReport result is not in the Bundle")?;
                observations.push((result, attributes.clone()));
            }
        }
        Ok(observations)
    }

    /// The consultations' free text: "Comment note" Observations by their Encounter.
    fn notes_by_encounter(&self) -> HashMap<Cow<'b, str>, Vec<Cow<'b, str>>> {
        let mut notes: HashMap<Cow<'b, str>, Vec<Cow<'b, str>>> = HashMap::new();
        for o in self.bundle.resources_of("Observation") {
            // Most Observations are not notes: a code whose JSON text holds neither the note's
            // code nor an escape (which could spell it) is not read.
            let may_be_note = o
                .raw("code")
                .is_some_and(|c| c.get().contains(COMMENT_NOTE) || c.get().contains('\\'));
            let is_note = may_be_note
                && o.get::<Obj<stu3::CodeableConcept<'_>>>("code")
                    .0
                    .is_some_and(|c| c.has_code(COMMENT_NOTE));
            if !is_note {
                continue;
            }
            if let (Some(encounter), Some(text)) = (
                reference(o, "context").and_then(|c| c.reference.into_cow()),
                o.text("comment").into_cow(),
            ) {
                notes.entry(encounter).or_default().push(text);
            }
        }
        notes
    }

    fn consultation(
        &self,
        r: &'b Object<'b>,
        notes: &HashMap<Cow<'b, str>, Vec<Cow<'b, str>>>,
    ) -> Result<RecordItem<Consultation>, MapError> {
        expect(r, "Encounter")?;
        let source_id = id(r)?;
        let period = r.get::<Obj<Period<'_>>>("period").0.unwrap_or_default();
        let start = date(&period.start, "Encounter.period.start")?;
        let types: Many<Obj<Object<'_>>> = r.get("type");
        let kind = types.objects().find_map(|t| {
            t.text("text").into_cow().or_else(|| {
                t.get::<Many<Obj<stu3::Coding<'_>>>>("coding")
                    .first()
                    .and_then(|c| c.display.clone().into_cow())
            })
        });
        let clinician = r
            .get::<Many<Obj<Participant<'_>>>>("participant")
            .objects()
            .find_map(|p| self.person(p.individual.0.as_ref()));
        let mut attributes = Vec::new();
        for coding in types.iter().flat_map(|t| match &t.0 {
            Some(t) => t.get::<Many<Obj<Object<'_>>>>("coding").0,
            None => Vec::new(),
        }) {
            let member = |name: &str| {
                coding
                    .0
                    .as_ref()
                    .and_then(|c| c.raw(name))
                    .map_or_else(|| "null".to_string(), attribute_text)
            };
            attributes.push(SourceAttribute::new(
                "gpconnect:Encounter.type",
                format!("{}|{}", member("system"), member("code")),
            ));
        }
        if let Some(end) = period.end.as_str() {
            attributes.push(SourceAttribute::new("gpconnect:Encounter.period.end", end));
        }
        leftovers(
            r,
            "Encounter",
            &["period", "type", "participant", "status"],
            &mut attributes,
        );
        let text = notes
            .get(format!("Encounter/{source_id}").as_str())
            .map(|t| t.join("\n\n"));
        let mut provenance = self.provenance(r, r.text("status").as_str(), clinician.clone());
        if let Some(recorded) = start.as_ref().and_then(|s| Instant::parse(s.as_str()).ok()) {
            provenance = provenance.with_recorded(recorded);
        }
        Ok(RecordItem {
            source_id,
            content: Consultation {
                start,
                kind: kind.map(Cow::into_owned),
                clinician,
                text,
            },
            provenance,
            source_attributes: attributes,
        })
    }
}

/// Fewer items than this are mapped on the calling thread alone.
const PARALLEL_MAP_MIN_ITEMS: usize = 256;

/// `map` of `items` in two halves, the second on a scoped thread of its own, the results in
/// order (and the first error in order); below [`PARALLEL_MAP_MIN_ITEMS`], on this thread.
fn map_in_parallel<I: Sync, T: Send>(
    items: &[I],
    map: impl Fn(&[I]) -> Result<Vec<T>, MapError> + Sync,
) -> Result<Vec<T>, MapError> {
    if items.len() < PARALLEL_MAP_MIN_ITEMS {
        return map(items);
    }
    let (first, second) = items.split_at(items.len() / 2);
    let (first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(|| map(second));
        let first = map(first);
        (
            first,
            second
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e)),
        )
    });
    let mut mapped = first?;
    mapped.extend(second?);
    Ok(mapped)
}

fn expect(resource: &Object<'_>, kind: &str) -> Result<(), MapError> {
    if resource.is("resourceType", kind) {
        Ok(())
    } else {
        Err(malformed(format!("expected a {kind}")))
    }
}

fn id(resource: &Object<'_>) -> Result<String, MapError> {
    resource
        .text("id")
        .into_cow()
        .map(Cow::into_owned)
        .ok_or_else(|| malformed("a resource has no id"))
}

/// `value[x]` of an Observation or component: a quantity, text or concept.
fn observation_value(r: &Object<'_>) -> Result<Option<ObservationValue>, MapError> {
    if let Some(q) = quantity(r.raw("valueQuantity"), "Observation.valueQuantity")? {
        return Ok(Some(ObservationValue::Quantity(q)));
    }
    if let Some(text) = r.text("valueString").into_cow() {
        return Ok(Some(ObservationValue::Text(text.into_owned())));
    }
    Ok(concept_at(r, "valueCodeableConcept").map(ObservationValue::Concept))
}

/// Maps the Patient of a structured record Bundle to the practice's demographics.
///
/// # Errors
/// A description of what is missing or malformed.
pub fn map_patient(body: &[u8]) -> Result<Demographics, MapError> {
    let body = Bundle::read(body).map_err(malformed)?;
    let bundle = StructuredBundle::index(&body).map_err(MapError::Malformed)?;
    let patient = bundle
        .patient()
        .ok_or_else(|| malformed("the Bundle holds no Patient"))?;
    let nhs_number = patient
        .get::<Many<Obj<Identifier<'_>>>>("identifier")
        .objects()
        .find(|i| i.system.is(NHS_NUMBER_SYSTEM))
        .and_then(|i| i.value.as_str().map(str::to_string))
        .map(|n| {
            NhsNumber::parse(&n).map_err(|_| malformed("the Patient's NHS number is not valid"))
        })
        .transpose()?;
    let names: Many<Obj<HumanName<'_>>> = patient.get("name");
    let name = names
        .0
        .iter()
        .find(|n| {
            n.0.as_ref()
                .is_some_and(|n| n.purpose.is("official") || n.purpose.is("usual"))
        })
        .or_else(|| names.0.first())
        .and_then(|n| n.0.as_ref());
    let addresses: Many<Obj<Address<'_>>> = patient.get("address");
    let postcode = addresses
        .0
        .iter()
        .find(|a| a.0.as_ref().is_some_and(|a| a.purpose.is("home")))
        .or_else(|| addresses.0.first())
        .and_then(|a| a.0.as_ref())
        .and_then(|a| a.postal_code.as_str())
        .map(str::to_string);
    let registered_practice = reference(patient, "managingOrganization")
        .and_then(|r| bundle.resolve(r.reference.as_str()?))
        .and_then(|o| {
            o.get::<Many<Obj<Identifier<'_>>>>("identifier")
                .objects()
                .find(|i| i.system.is(ODS_SYSTEM))
                .and_then(|i| OdsCode::parse(i.value.as_str()?).ok())
        });
    Ok(Demographics {
        nhs_number,
        source_patient_id: id(patient)?,
        family: name.and_then(|n| n.family.as_str()).map(str::to_string),
        given: name
            .into_iter()
            .flat_map(|n| n.given.iter())
            .filter_map(Text::as_str)
            .map(str::to_string)
            .collect(),
        birth_date: date_at(patient, "birthDate", "Patient.birthDate")?,
        gender: patient.text("gender").as_str().map(str::to_string),
        postcode,
        registered_practice,
        deceased: date_at(patient, "deceasedDateTime", "Patient.deceasedDateTime")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn source() -> (OdsCode, Instant) {
        (
            OdsCode::parse("Y90001").expect("valid"),
            Instant::parse("2026-01-05T10:00:00Z").expect("valid"),
        )
    }

    fn list(code: &str, extra: Value) -> Value {
        let mut list = json!({"resourceType": "List", "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}]}, "status": "current"});
        if let (Some(l), Some(e)) = (list.as_object_mut(), extra.as_object()) {
            l.extend(e.clone());
        }
        list
    }

    fn bytes(value: &Value) -> Vec<u8> {
        value.to_string().into_bytes()
    }

    fn bundle(resources: Vec<Value>) -> Value {
        json!({"resourceType": "Bundle", "type": "collection",
            "entry": resources.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
    }

    #[test]
    fn an_empty_list_is_nothing_recorded_and_a_withheld_one_is_withheld() {
        let (ods, now) = source();
        let src = Source {
            practice: &ods,
            retrieved: &now,
        };
        let empty = bundle(vec![list(
            PROBLEMS.list_code,
            json!({"emptyReason": {"coding": [{"code": "no-content-recorded"}]}}),
        )]);
        let SectionContent::Problems(s) =
            map_section(&bytes(&empty), RecordSection::Problems, &src).expect("maps")
        else {
            panic!("problems");
        };
        assert_eq!(s.state, keel_model::SectionState::NothingRecorded);
        let withheld = bundle(vec![list(
            PROBLEMS.list_code,
            json!({"extension": [{"url": LIST_WARNING_EXT, "valueCode": "confidential-items"}]}),
        )]);
        let SectionContent::Problems(s) =
            map_section(&bytes(&withheld), RecordSection::Problems, &src).expect("maps")
        else {
            panic!("problems");
        };
        assert!(matches!(s.state, keel_model::SectionState::Withheld { .. }));
        assert_eq!(s.warnings, [SectionWarning::ConfidentialItemsWithheld]);
    }

    #[test]
    fn a_condition_keeps_legacy_codes_partial_dates_and_unmapped_fields() {
        let (ods, now) = source();
        let src = Source {
            practice: &ods,
            retrieved: &now,
        };
        let condition = json!({"resourceType": "Condition", "id": "p-c1", "meta": {"versionId": "2"},
            "extension": [{"url": PROBLEM_SIGNIFICANCE_EXT, "valueCode": "major"}],
            "clinicalStatus": "active", "onsetDateTime": "1998",
            "code": {"coding": [{"system": "http://read.info/readv2", "code": "C10..", "display": "Diabetes mellitus"},
                                {"system": "http://snomed.info/sct", "code": "73211009"}], "text": "Diabetes"},
            "assertedDate": "1998-03-02", "note": [{"text": "x"}]});
        let b = bundle(vec![
            condition,
            list(
                PROBLEMS.list_code,
                json!({"entry": [{"item": {"reference": "Condition/p-c1"}}]}),
            ),
        ]);
        let SectionContent::Problems(s) =
            map_section(&bytes(&b), RecordSection::Problems, &src).expect("maps")
        else {
            panic!("problems");
        };
        let item = &s.items[0];
        assert_eq!(item.content.code.codings()[0].code, "C10..");
        assert!(item.content.code.codings()[0].origin.is_source());
        assert_eq!(
            item.content.onset.as_ref().map(ClinicalDate::as_str),
            Some("1998")
        );
        assert_eq!(item.content.significant, Some(true));
        assert_eq!(item.provenance.source_version.as_deref(), Some("2"));
        let names: Vec<&str> = item
            .source_attributes
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "gpconnect:Condition.assertedDate",
                "gpconnect:Condition.note"
            ]
        );
    }

    #[test]
    fn a_disabled_area_and_a_missing_list_are_told_apart() {
        let (ods, now) = source();
        let src = Source {
            practice: &ods,
            retrieved: &now,
        };
        let disabled = bundle(vec![
            json!({"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "not-supported",
            "details": {"coding": [{"system": "https://fhir.nhs.uk/STU3/CodeSystem/Spine-ErrorOrWarningCode-1", "code": "NOT_IMPLEMENTED"}]},
            "diagnostics": "includeInvestigations"}]}),
        ]);
        assert_eq!(
            map_section(&bytes(&disabled), RecordSection::Observations, &src),
            Err(MapError::AreaDisabled("includeInvestigations"))
        );
        assert!(matches!(
            map_section(&bytes(&bundle(vec![])), RecordSection::Immunisations, &src),
            Err(MapError::Malformed(_))
        ));
    }

    #[test]
    fn the_in_transit_note_gives_the_date() {
        let note = "Patient record transfer from previous GP practice not yet complete; information recorded before 07-Dec-2025 may be missing.";
        assert_eq!(
            in_transit_since(note).map(|d| d.as_str().to_string()),
            Some("2025-12-07".into())
        );
        assert_eq!(in_transit_since("recorded before 99-Foo-2025"), None);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            prop_oneof![
                Just("List".to_string()),
                Just("Condition".to_string()),
                Just("Observation".to_string()),
                Just("MedicationStatement".to_string()),
                Just("Encounter".to_string()),
                Just("Condition/x".to_string()),
                Just("#x".to_string()),
                Just("x".to_string()),
                Just("717711000000103".to_string()),
                Just("2020-01".to_string()),
                "\\PC{0,8}",
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("resourceType".to_string()),
                        Just("id".to_string()),
                        Just("entry".to_string()),
                        Just("resource".to_string()),
                        Just("item".to_string()),
                        Just("reference".to_string()),
                        Just("code".to_string()),
                        Just("coding".to_string()),
                        Just("related".to_string()),
                        Just("target".to_string()),
                        Just("valueQuantity".to_string()),
                        Just("value".to_string()),
                        Just("basedOn".to_string()),
                        Just("extension".to_string()),
                        "[a-z]{1,6}",
                    ],
                    inner,
                    0..5,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn mapping_any_json_never_panics(value in json_value()) {
            let (ods, now) = source();
            let src = Source { practice: &ods, retrieved: &now };
            let wrapped = json!({"resourceType": "Bundle", "entry": [{"resource": value.clone()}]});
            for section in RecordSection::ALL {
                let _ = map_section(&bytes(&value), section, &src);
                let _ = map_section(&bytes(&wrapped), section, &src);
            }
            let _ = map_patient(&bytes(&value));
            let _ = map_patient(&bytes(&wrapped));
        }

        #[test]
        fn mapping_any_bytes_as_json_never_panics(text in "\\PC{0,200}") {
            let (ods, now) = source();
            let src = Source { practice: &ods, retrieved: &now };
            let _ = map_section(text.as_bytes(), RecordSection::Observations, &src);
            let _ = map_patient(text.as_bytes());
        }
    }
}
