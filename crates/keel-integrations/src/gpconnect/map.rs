//! The pure mapping of a GP Connect structured record (STU3) into the canonical record: one
//! Bundle in, one [`SectionContent`] (or the practice's [`Demographics`]) out. No I/O; see the
//! module docs of [`super`] for what is carried and what is lost.

use std::collections::HashMap;

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
use serde_json::{Value, json};

use super::json::Node;

use super::bundle::StructuredBundle;

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
    let body = Node::parse(body).map_err(|_| malformed("the answer is not JSON"))?;
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
                for reference in entry_references(ended) {
                    let allergy = contained(ended, reference).ok_or_else(|| {
                        malformed("an ended allergy is not contained in its List")
                    })?;
                    items.push(mapper.allergy(allergy, AllergyStatus::Resolved)?);
                }
            }
            SectionContent::Allergies(Section::from_items(section, items, warnings))
        }
        RecordSection::Observations => {
            let mut items = mapper.items(lists[0], |m, r| m.observation(r, &[]))?;
            for reference in entry_references(lists[1]) {
                let report = bundle
                    .resolve(reference)
                    .ok_or_else(|| malformed("a List entry is not in the Bundle"))?;
                items.extend(mapper.report_results(report)?);
            }
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
    lists: impl Iterator<Item = &'b Node<'b>>,
) -> Result<Vec<SectionWarning>, MapError> {
    let mut warnings = Vec::new();
    for list in lists {
        for extension in array(&list["extension"]) {
            if !extension["url"].is(LIST_WARNING_EXT) {
                continue;
            }
            let warning = match extension["valueCode"].as_str() {
                Some("confidential-items") => SectionWarning::ConfidentialItemsWithheld,
                Some("data-in-transit") => SectionWarning::DataInTransit {
                    since: array(&list["note"])
                        .filter_map(|n| n["text"].as_str())
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

fn array<'n>(value: &'n Node<'n>) -> std::slice::Iter<'n, Node<'n>> {
    value.items().iter()
}

/// The item references of a List's entries (display-only entries name no item).
fn entry_references<'n>(list: &'n Node<'n>) -> impl Iterator<Item = &'n str> {
    array(&list["entry"]).filter_map(|e| e["item"]["reference"].as_str())
}

/// A resource contained in `list`, referenced as `#id`.
fn contained<'b>(list: &'b Node<'b>, reference: &str) -> Option<&'b Node<'b>> {
    let id = reference.strip_prefix('#')?;
    array(&list["contained"]).find(|r| r["id"].is(id))
}

fn reference_of<'n>(value: &'n Node<'n>) -> Option<&'n str> {
    value["reference"].as_str()
}

/// A CodeableConcept exactly as sent; codings without a system or code are not codings.
fn concept(value: &Node<'_>) -> Option<CodeableConcept> {
    let mut concept = CodeableConcept::default();
    for coding in array(&value["coding"]) {
        let (Some(system), Some(code)) = (coding["system"].as_str(), coding["code"].as_str())
        else {
            continue;
        };
        let mut c = Coding::new(system, code);
        if let Some(display) = coding["display"].as_str() {
            c = c.with_display(display);
        }
        if let Some(version) = coding["version"].as_str() {
            c = c.with_version(version);
        }
        concept = concept.with_coding(c);
    }
    if let Some(text) = value["text"].as_str() {
        concept = concept.with_text(text);
    }
    (!concept.codings().is_empty() || concept.text.is_some()).then_some(concept)
}

fn date(value: &Node<'_>, field: &str) -> Result<Option<ClinicalDate>, MapError> {
    match value.as_str() {
        None if value.is_null() => Ok(None),
        Some(text) => ClinicalDate::parse(text)
            .map(Some)
            .map_err(|_| malformed(format!("{field} is not a date"))),
        None => Err(malformed(format!("{field} is not a date"))),
    }
}

fn quantity(value: &Node<'_>, field: &str) -> Result<Option<Quantity>, MapError> {
    if value.is_null() {
        return Ok(None);
    }
    let bad = || malformed(format!("{field} is not a quantity"));
    let number = value["value"].as_number().ok_or_else(bad)?;
    let decimal = Decimal::parse(number).map_err(|_| bad())?;
    let comparator = match value["comparator"].as_str() {
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
        unit: value["unit"].as_str().map(str::to_string),
        system: value["system"].as_str().map(str::to_string),
        code: value["code"].as_str().map(str::to_string),
        normalised: None,
    }))
}

/// Every field of `resource` the mapping did not use, as `gpconnect:<Type>.<field>`.
fn leftovers(resource: &Node<'_>, kind: &str, used: &[&str], out: &mut Vec<SourceAttribute>) {
    let Some(fields) = Some(resource.members()).filter(|m| !m.is_empty()) else {
        return;
    };
    for (field, value) in fields {
        if COMMON_FIELDS.contains(&field.as_ref()) || used.contains(&field.as_ref()) {
            continue;
        }
        out.push(SourceAttribute::new(
            format!("gpconnect:{kind}.{field}"),
            value.text(),
        ));
    }
    if let Some(meta) = Some(resource["meta"].members()).filter(|m| !m.is_empty()) {
        for (field, value) in meta {
            if field != "profile" && field != "versionId" {
                out.push(SourceAttribute::new(
                    format!("gpconnect:{kind}.meta.{field}"),
                    value.text(),
                ));
            }
        }
    }
    for extension in array(&resource["extension"]) {
        if !MAPPED_EXTENSIONS.contains(&extension["url"].as_str().unwrap_or("")) {
            out.push(SourceAttribute::new(
                format!("gpconnect:{kind}.extension"),
                extension.text(),
            ));
        }
    }
}

/// Extensions whose content the mapping carries.
const MAPPED_EXTENSIONS: [&str; 2] = [PROBLEM_SIGNIFICANCE_EXT, PRESCRIPTION_TYPE_EXT];

fn extension<'v>(resource: &'v Node<'v>, url: &str) -> Option<&'v Node<'v>> {
    array(&resource["extension"]).find(|e| e["url"].is(url))
}

/// A practitioner's name as the source holds it: prefix, given names, family name.
fn name_text(name: &Node<'_>) -> Option<String> {
    if let Some(text) = name["text"].as_str() {
        return Some(text.to_string());
    }
    let parts: Vec<&str> = array(&name["prefix"])
        .chain(array(&name["given"]))
        .filter_map(Node::as_str)
        .chain(name["family"].as_str())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Maps the resources of one Bundle.
struct Mapper<'m, 'b> {
    bundle: &'m StructuredBundle<'b>,
    source: &'m Source<'m>,
}

impl<'b> Mapper<'_, 'b> {
    /// Maps every item a List references with `map`.
    fn items<T>(
        &self,
        list: &'b Node<'b>,
        map: impl Fn(&Self, &'b Node<'b>) -> Result<RecordItem<T>, MapError>,
    ) -> Result<Vec<RecordItem<T>>, MapError> {
        let references = entry_references(list);
        let mut items = Vec::with_capacity(references.size_hint().0);
        for reference in references {
            let resource = self
                .bundle
                .resolve(reference)
                .ok_or_else(|| malformed("a List entry is not in the Bundle"))?;
            items.push(map(self, resource)?);
        }
        Ok(items)
    }

    /// Who a reference names: the practitioner's name when the Bundle holds them, else the
    /// reference's display or the reference itself.
    fn person(&self, reference: &Node<'_>) -> Option<String> {
        let target = reference_of(reference)?;
        self.bundle
            .resolve(target)
            .and_then(|p| array(&p["name"]).find_map(name_text))
            .or_else(|| reference["display"].as_str().map(str::to_string))
            .or_else(|| Some(target.to_string()))
    }

    fn provenance(
        &self,
        resource: &Node<'_>,
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
        if let Some(version) = resource["meta"]["versionId"].as_str() {
            provenance = provenance.with_source_version(version);
        }
        provenance
    }

    fn problem(&self, r: &'b Node<'b>) -> Result<RecordItem<Problem>, MapError> {
        expect(r, "Condition")?;
        let clinical_status = r["clinicalStatus"]
            .as_str()
            .ok_or_else(|| malformed("a Condition has no clinicalStatus"))?;
        let status = match clinical_status {
            "active" | "recurrence" => ProblemStatus::Active,
            _ => ProblemStatus::Inactive,
        };
        let significant = extension(r, PROBLEM_SIGNIFICANCE_EXT)
            .and_then(|e| e["valueCode"].as_str())
            .and_then(|code| match code {
                "major" => Some(true),
                "minor" => Some(false),
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
                code: concept(&r["code"]).ok_or_else(|| malformed("a Condition has no code"))?,
                status,
                onset: date(&r["onsetDateTime"], "Condition.onsetDateTime")?,
                ended: date(&r["abatementDateTime"], "Condition.abatementDateTime")?,
                significant,
            },
            provenance: self.provenance(r, Some(clinical_status), self.person(&r["asserter"])),
            source_attributes: attributes,
        })
    }

    /// The issues (`intent=order` MedicationRequests) by the plan they are based on.
    fn issues_by_plan(&self) -> HashMap<&'b str, Vec<&'b Node<'b>>> {
        let mut issues: HashMap<&str, Vec<&Node<'_>>> = HashMap::new();
        for request in self.bundle.resources_of("MedicationRequest") {
            if !request["intent"].is("order") {
                continue;
            }
            for plan in array(&request["basedOn"]).filter_map(reference_of) {
                issues.entry(plan).or_default().push(request);
            }
        }
        for list in issues.values_mut() {
            list.sort_by(|a, b| {
                (a["authoredOn"].as_str(), a["id"].as_str())
                    .cmp(&(b["authoredOn"].as_str(), b["id"].as_str()))
            });
        }
        issues
    }

    fn medication(
        &self,
        statement: &'b Node<'b>,
        issues: &HashMap<&str, Vec<&Node<'_>>>,
    ) -> Result<RecordItem<Medication>, MapError> {
        expect(statement, "MedicationStatement")?;
        let mut attributes = Vec::new();
        let medicine = match reference_of(&statement["medicationReference"]) {
            Some(reference) => {
                let medication = self.bundle.resolve(reference).ok_or_else(|| {
                    malformed("a MedicationStatement's Medication is not in the Bundle")
                })?;
                leftovers(medication, "Medication", &["code"], &mut attributes);
                concept(&medication["code"])
            }
            None => concept(&statement["medicationCodeableConcept"]),
        }
        .ok_or_else(|| malformed("a MedicationStatement names no medicine"))?;
        let status_text = statement["status"]
            .as_str()
            .ok_or_else(|| malformed("a MedicationStatement has no status"))?;
        let status = match status_text {
            "completed" => MedicationStatus::Completed,
            "stopped" | "entered-in-error" => MedicationStatus::Stopped,
            _ => MedicationStatus::Active,
        };
        let dosage: Vec<&str> = array(&statement["dosage"])
            .filter_map(|d| d["text"].as_str())
            .collect();
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
        let plan_reference = array(&statement["basedOn"]).find_map(reference_of);
        let plan = plan_reference
            .and_then(|p| self.bundle.resolve(p))
            .ok_or_else(|| {
                malformed("a MedicationStatement's authorisation is not in the Bundle")
            })?;
        let course = match extension(plan, PRESCRIPTION_TYPE_EXT)
            .and_then(|e| e["valueCodeableConcept"]["coding"][0]["code"].as_str())
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
        let dispense = &plan["dispenseRequest"];
        if let Some(fields) = Some(dispense.members()).filter(|m| !m.is_empty()) {
            for (field, value) in fields.iter().filter(|(f, _)| *f != "quantity") {
                attributes.push(SourceAttribute::new(
                    format!("gpconnect:MedicationRequest.dispenseRequest.{field}"),
                    value.text(),
                ));
            }
        }
        let mut mapped_issues = Vec::new();
        for issue in plan_reference
            .and_then(|p| issues.get(p))
            .into_iter()
            .flatten()
        {
            mapped_issues.push(MedicationIssue {
                date: date(&issue["authoredOn"], "MedicationRequest.authoredOn")?
                    .ok_or_else(|| malformed("an issue has no date"))?,
                quantity: quantity(&issue["dispenseRequest"]["quantity"], "an issue's quantity")?,
            });
        }
        Ok(RecordItem {
            source_id: id(statement)?,
            content: Medication {
                medication: medicine,
                dosage: (!dosage.is_empty()).then(|| dosage.join("; ")),
                quantity: quantity(&dispense["quantity"], "an authorisation's quantity")?,
                course,
                status,
                start: date(
                    &statement["effectivePeriod"]["start"],
                    "MedicationStatement.effectivePeriod.start",
                )?,
                end: date(
                    &statement["effectivePeriod"]["end"],
                    "MedicationStatement.effectivePeriod.end",
                )?,
                issues: mapped_issues,
            },
            provenance: self.provenance(
                statement,
                Some(status_text),
                self.person(&plan["recorder"]),
            ),
            source_attributes: attributes,
        })
    }

    /// An allergy; `listed_as` is the status its List implies when the resource has none.
    fn allergy(
        &self,
        r: &Node<'_>,
        listed_as: AllergyStatus,
    ) -> Result<RecordItem<Allergy>, MapError> {
        expect(r, "AllergyIntolerance")?;
        let clinical_status = r["clinicalStatus"].as_str();
        let status = match clinical_status {
            Some("active") => AllergyStatus::Active,
            Some(_) => AllergyStatus::Resolved,
            None => listed_as,
        };
        let reactions = r["reaction"].items();
        let manifestations = reactions
            .first()
            .map_or(&[][..], |re| re["manifestation"].items());
        let mut attributes = Vec::new();
        let mut used = vec!["code", "clinicalStatus", "assertedDate", "recorder"];
        let simple_reaction =
            reactions.len() == 1 && manifestations.len() == 1 && reactions[0].members().len() == 1;
        if simple_reaction || reactions.is_empty() {
            used.push("reaction");
        }
        leftovers(r, "AllergyIntolerance", &used, &mut attributes);
        Ok(RecordItem {
            source_id: id(r)?,
            content: Allergy {
                substance: concept(&r["code"])
                    .ok_or_else(|| malformed("an AllergyIntolerance has no code"))?,
                reaction: manifestations.first().and_then(concept),
                status,
                recorded: date(&r["assertedDate"], "AllergyIntolerance.assertedDate")?,
            },
            provenance: self.provenance(r, clinical_status, self.person(&r["recorder"])),
            source_attributes: attributes,
        })
    }

    fn immunisation(&self, r: &'b Node<'b>) -> Result<RecordItem<Immunisation>, MapError> {
        expect(r, "Immunization")?;
        let author = array(&r["practitioner"]).find_map(|p| self.person(&p["actor"]));
        let mut attributes = Vec::new();
        leftovers(
            r,
            "Immunization",
            &["vaccineCode", "date", "status", "practitioner"],
            &mut attributes,
        );
        Ok(RecordItem {
            source_id: id(r)?,
            content: Immunisation {
                vaccine: concept(&r["vaccineCode"])
                    .ok_or_else(|| malformed("an Immunization has no vaccine code"))?,
                date: date(&r["date"], "Immunization.date")?,
                product: r["vaccineCode"]["text"].as_str().map(str::to_string),
            },
            provenance: self.provenance(r, r["status"].as_str(), author),
            source_attributes: attributes,
        })
    }

    /// An Observation; `report` adds the attributes of the DiagnosticReport it is a result of.
    fn observation(
        &self,
        r: &'b Node<'b>,
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
        let members: Vec<&Node<'_>> = array(&r["related"])
            .filter(|rel| rel["type"].is("has-member"))
            .filter_map(|rel| reference_of(&rel["target"]))
            .filter_map(|target| self.bundle.resolve(target))
            .collect();
        let members_mapped = !members.is_empty();
        for member in members {
            let code =
                concept(&member["code"]).ok_or_else(|| malformed("a panel member has no code"))?;
            if let Some(value) = observation_value(member)? {
                components.push(ObservationComponent { code, value });
            }
        }
        if members_mapped && array(&r["related"]).all(|rel| rel["type"].is("has-member")) {
            used.push("related");
        }
        for component in array(&r["component"]) {
            let code =
                concept(&component["code"]).ok_or_else(|| malformed("a component has no code"))?;
            if let Some(value) = observation_value(component)? {
                components.push(ObservationComponent { code, value });
            }
        }
        let categories: Vec<&str> = array(&r["category"])
            .flat_map(|c| array(&c["coding"]))
            .filter_map(|c| c["code"].as_str())
            .collect();
        if !categories.is_empty() {
            attributes.push(SourceAttribute::new(
                "gpconnect:Observation.category",
                categories.join(","),
            ));
        }
        leftovers(r, "Observation", &used, &mut attributes);
        let author = array(&r["performer"]).find_map(|p| self.person(p));
        Ok(RecordItem {
            source_id: id(r)?,
            content: Observation {
                code: concept(&r["code"]).ok_or_else(|| malformed("an Observation has no code"))?,
                effective: date(&r["effectiveDateTime"], "Observation.effectiveDateTime")?,
                value: observation_value(r)?,
                components,
                note: r["comment"].as_str().map(str::to_string),
            },
            provenance: self.provenance(r, r["status"].as_str(), author),
            source_attributes: attributes,
        })
    }

    /// The results of one DiagnosticReport, each an Observation naming its report.
    fn report_results(
        &self,
        report: &'b Node<'b>,
    ) -> Result<Vec<RecordItem<Observation>>, MapError> {
        expect(report, "DiagnosticReport")?;
        let mut attributes = vec![SourceAttribute::new(
            "gpconnect:DiagnosticReport.id",
            id(report)?,
        )];
        leftovers(report, "DiagnosticReport", &["result"], &mut attributes);
        let mut items = Vec::new();
        for target in array(&report["result"]).filter_map(reference_of) {
            let result = self
                .bundle
                .resolve(target)
                .ok_or_else(|| malformed("a DiagnosticReport result is not in the Bundle"))?;
            items.push(self.observation(result, &attributes)?);
        }
        Ok(items)
    }

    /// The consultations' free text: "Comment note" Observations by their Encounter.
    fn notes_by_encounter(&self) -> HashMap<&'b str, Vec<&'b str>> {
        let mut notes: HashMap<&str, Vec<&str>> = HashMap::new();
        for o in self.bundle.resources_of("Observation") {
            let is_note = array(&o["code"]["coding"]).any(|c| c["code"].is(COMMENT_NOTE));
            if let (true, Some(encounter), Some(text)) =
                (is_note, reference_of(&o["context"]), o["comment"].as_str())
            {
                notes.entry(encounter).or_default().push(text);
            }
        }
        notes
    }

    fn consultation(
        &self,
        r: &'b Node<'b>,
        notes: &HashMap<&str, Vec<&str>>,
    ) -> Result<RecordItem<Consultation>, MapError> {
        expect(r, "Encounter")?;
        let source_id = id(r)?;
        let start = date(&r["period"]["start"], "Encounter.period.start")?;
        let kind = array(&r["type"]).find_map(|t| {
            t["text"]
                .as_str()
                .or_else(|| t["coding"][0]["display"].as_str())
        });
        let clinician = array(&r["participant"]).find_map(|p| self.person(&p["individual"]));
        let mut attributes = Vec::new();
        for coding in array(&r["type"]).flat_map(|t| array(&t["coding"])) {
            attributes.push(SourceAttribute::new(
                "gpconnect:Encounter.type",
                format!("{}|{}", coding["system"].text(), coding["code"].text()),
            ));
        }
        if let Some(end) = r["period"]["end"].as_str() {
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
        let mut provenance = self.provenance(r, r["status"].as_str(), clinician.clone());
        if let Some(recorded) = start.as_ref().and_then(|s| Instant::parse(s.as_str()).ok()) {
            provenance = provenance.with_recorded(recorded);
        }
        Ok(RecordItem {
            source_id,
            content: Consultation {
                start,
                kind: kind.map(str::to_string),
                clinician,
                text,
            },
            provenance,
            source_attributes: attributes,
        })
    }
}

fn expect(resource: &Node<'_>, kind: &str) -> Result<(), MapError> {
    if resource["resourceType"].is(kind) {
        Ok(())
    } else {
        Err(malformed(format!("expected a {kind}")))
    }
}

fn id(resource: &Node<'_>) -> Result<String, MapError> {
    resource["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| malformed("a resource has no id"))
}

/// `value[x]` of an Observation or component: a quantity, text or concept.
fn observation_value(r: &Node<'_>) -> Result<Option<ObservationValue>, MapError> {
    if let Some(q) = quantity(&r["valueQuantity"], "Observation.valueQuantity")? {
        return Ok(Some(ObservationValue::Quantity(q)));
    }
    if let Some(text) = r["valueString"].as_str() {
        return Ok(Some(ObservationValue::Text(text.to_string())));
    }
    Ok(concept(&r["valueCodeableConcept"]).map(ObservationValue::Concept))
}

/// Maps the Patient of a structured record Bundle to the practice's demographics.
///
/// # Errors
/// A description of what is missing or malformed.
pub fn map_patient(body: &[u8]) -> Result<Demographics, MapError> {
    let body = Node::parse(body).map_err(|_| malformed("the answer is not JSON"))?;
    let bundle = StructuredBundle::index(&body).map_err(MapError::Malformed)?;
    let patient = bundle
        .patient()
        .ok_or_else(|| malformed("the Bundle holds no Patient"))?;
    let nhs_number = array(&patient["identifier"])
        .find(|i| i["system"].is(NHS_NUMBER_SYSTEM))
        .and_then(|i| i["value"].as_str())
        .map(|n| {
            NhsNumber::parse(n).map_err(|_| malformed("the Patient's NHS number is not valid"))
        })
        .transpose()?;
    let names = patient["name"].items();
    let name = names
        .iter()
        .find(|n| n["use"].is("official") || n["use"].is("usual"))
        .or_else(|| names.first());
    let addresses = patient["address"].items();
    let postcode = addresses
        .iter()
        .find(|a| a["use"].is("home"))
        .or_else(|| addresses.first())
        .and_then(|a| a["postalCode"].as_str())
        .map(str::to_string);
    let registered_practice = reference_of(&patient["managingOrganization"])
        .and_then(|r| bundle.resolve(r))
        .and_then(|o| array(&o["identifier"]).find(|i| i["system"].is(ODS_SYSTEM)))
        .and_then(|i| i["value"].as_str())
        .and_then(|ods| OdsCode::parse(ods).ok());
    Ok(Demographics {
        nhs_number,
        source_patient_id: id(patient)?,
        family: name.and_then(|n| n["family"].as_str()).map(str::to_string),
        given: name
            .into_iter()
            .flat_map(|n| array(&n["given"]))
            .filter_map(Node::as_str)
            .map(str::to_string)
            .collect(),
        birth_date: date(&patient["birthDate"], "Patient.birthDate")?,
        gender: patient["gender"].as_str().map(str::to_string),
        postcode,
        registered_practice,
        deceased: date(&patient["deceasedDateTime"], "Patient.deceasedDateTime")?,
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
