//! The pure mapping of the EMIS-style API's XML answers into the canonical record — no I/O,
//! no clock (the retrieval time is passed in), no panics on any input.
//!
//! Rules kept throughout (see the table in the [module docs](super) for each section):
//! - every `<Code Scheme Value Term>` becomes a [`Coding`] exactly as sent, in the order sent
//!   (the legacy Read v2 / CTV3 code first where the practice recorded one, SNOMED CT beside
//!   it), all [`keel_model::CodingOrigin::Source`];
//! - values keep their text and unit exactly (`7.1` `%` stays `7.1` `%`);
//! - dates keep their precision (`2004`, `2004-06`, `2004-06-12`, or a moment with offset);
//! - every field of an item that has no canonical home is kept as a [`SourceAttribute`]
//!   named `emis-style:<Element>` (`emis-style:<Element>.<Attribute>` for attributes of a
//!   child, `emis-style:<Attribute>` for the item's own attributes) — including fields this
//!   mapping does not know, so nothing the supplier sends is silently dropped;
//! - items marked `Confidential="true"` are **not passed on**: they are dropped and the
//!   section carries [`SectionWarning::ConfidentialItemsWithheld`] (state
//!   [`keel_model::SectionState::Withheld`] when none are left).

use std::collections::HashMap;

use keel_core::integration::{PatientAtPractice, SectionContent, WriteReceipt};
use keel_model::coding::systems;
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

use super::xml::{self, Element};

/// The prefix of every source attribute this adapter keeps.
pub const ATTRIBUTE_PREFIX: &str = "emis-style:";

/// The code system of the simulator's synthetic dm+d ids (drug scheme `SYNTHETIC-DMD`): the
/// one the GP Connect route gives them, so both routes compare equal. A live EMIS-style
/// system never sends this scheme.
pub const SYNTHETIC_DMD_SYSTEM: &str = "https://keel.invalid/sim/CodeSystem/synthetic-dmd";

/// The SNOMED CT concepts Keel gives the blood pressure components the API sends by name
/// only (`Component="Systolic"`), marked as Keel's ([`keel_model::CodingOrigin::Translated`]).
const SYSTOLIC: (&str, &str) = ("72313002", "Systolic arterial pressure");
const DIASTOLIC: (&str, &str) = ("1091811000000102", "Diastolic arterial pressure");

/// An answer the mapping cannot read: not XML, not the document expected, or an item missing
/// a field without which it cannot be represented truthfully.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapError(pub String);

impl std::fmt::Display for MapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MapError {}

impl From<xml::XmlError> for MapError {
    fn from(e: xml::XmlError) -> Self {
        MapError(e.0)
    }
}

fn err<T>(text: impl Into<String>) -> Result<T, MapError> {
    Err(MapError(text.into()))
}

/// Where and when an answer was obtained: the practice that holds it and the retrieval time.
#[derive(Debug, Clone, Copy)]
pub struct ReadContext<'a> {
    pub practice: &'a OdsCode,
    pub retrieved: &'a Instant,
}

/// The URL segment of `section` (`…/record/{segment}`).
pub fn section_path(section: RecordSection) -> &'static str {
    match section {
        RecordSection::Problems => "problems",
        RecordSection::Medications => "medication",
        RecordSection::Allergies => "allergies",
        RecordSection::Observations => "events",
        RecordSection::Immunisations => "immunisations",
        RecordSection::Consultations => "consultations",
        RecordSection::Documents => "documents",
    }
}

/// The element holding `section`, and the element of each of its items.
fn section_elements(section: RecordSection) -> (&'static str, &'static str) {
    match section {
        RecordSection::Problems => ("Problems", "Problem"),
        RecordSection::Medications => ("Medications", "Medication"),
        RecordSection::Allergies => ("Allergies", "Allergy"),
        RecordSection::Observations => ("Events", "Event"),
        RecordSection::Immunisations => ("Immunisations", "Immunisation"),
        RecordSection::Consultations => ("Consultations", "Consultation"),
        RecordSection::Documents => ("Documents", "Document"),
    }
}

/// The practice's users an answer lists once (`<Users><User Guid Name/>`), by GUID.
struct Users<'e>(HashMap<String, &'e str>);

impl<'e> Users<'e> {
    fn of(root: &'e Element<'e>) -> Users<'e> {
        let users = root
            .children_named("Users")
            .flat_map(|u| u.children_named("User"))
            .filter_map(|u| Some((u.attr("Guid")?.to_ascii_uppercase(), u.attr("Name")?)))
            .collect();
        Users(users)
    }

    /// The name of the user `<Author UserInRole="GUID"/>` refers to; the GUID itself when the
    /// answer does not list that user.
    fn name(&self, reference: Option<&Element>) -> Option<String> {
        let guid = reference?.attr("UserInRole")?.trim();
        let name = self
            .0
            .get(guid)
            .or_else(|| self.0.get(&guid.to_ascii_uppercase()));
        Some(name.map_or(guid, |name| *name).to_string())
    }
}

/// One element being mapped: which of its attributes and children were used, so that
/// everything else becomes a source attribute.
struct Fields<'e> {
    element: &'e Element<'e>,
    /// Put before the names of leftovers: `Issue.` for the issues inside a medication.
    prefix: &'static str,
    used_attrs: Vec<bool>,
    used_children: Vec<bool>,
    kept: Vec<SourceAttribute>,
}

impl<'e> Fields<'e> {
    fn new(element: &'e Element<'e>) -> Fields<'e> {
        Fields::nested(element, "")
    }

    /// An element inside an item, whose leftovers are named `prefix` + field.
    fn nested(element: &'e Element<'e>, prefix: &'static str) -> Fields<'e> {
        Fields {
            element,
            prefix,
            used_attrs: vec![false; element.attrs.len()],
            used_children: vec![false; element.children.len()],
            kept: Vec::new(),
        }
    }

    fn what(&self) -> &'e str {
        &self.element.name
    }

    fn attr(&mut self, key: &str) -> Option<&'e str> {
        let at = self.element.attrs.iter().position(|(k, _)| k == key)?;
        self.used_attrs[at] = true;
        Some(self.element.attrs[at].1.as_ref())
    }

    fn required_attr(&mut self, key: &str) -> Result<&'e str, MapError> {
        match self.attr(key) {
            Some(v) => Ok(v),
            None => err(format!("a {} has no {key}", self.what())),
        }
    }

    fn child(&mut self, name: &str) -> Option<&'e Element<'e>> {
        let at = self.element.children.iter().position(|c| c.name == name)?;
        self.used_children[at] = true;
        Some(&self.element.children[at])
    }

    fn all(&mut self, name: &str) -> Vec<&'e Element<'e>> {
        let mut found = Vec::new();
        for (at, c) in self.element.children.iter().enumerate() {
            if c.name == name {
                self.used_children[at] = true;
                found.push(c);
            }
        }
        found
    }

    /// The trimmed text of child `name`, if present and not blank.
    fn text(&mut self, name: &str) -> Option<&'e str> {
        self.child(name)
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    fn required_text(&mut self, name: &str) -> Result<&'e str, MapError> {
        match self.text(name) {
            Some(t) => Ok(t),
            None => err(format!("a {} has no {name}", self.what())),
        }
    }

    fn date(&mut self, name: &str) -> Result<Option<ClinicalDate>, MapError> {
        self.text(name)
            .map(|t| clinical_date(t, self.what(), name))
            .transpose()
    }

    /// Keeps a value this mapping read but could not place.
    fn keep(&mut self, field: &str, value: &str) {
        self.kept.push(attribute(self.prefix, field, value));
    }

    /// The unused attributes and children, and what was kept, as source attributes.
    fn leftovers(self) -> Vec<SourceAttribute> {
        let mut out = self.kept;
        for ((k, v), used) in self.element.attrs.iter().zip(&self.used_attrs) {
            if !used {
                out.push(attribute(self.prefix, k, v));
            }
        }
        for (c, used) in self.element.children.iter().zip(&self.used_children) {
            if !used {
                flatten(self.prefix, c, &mut out);
            }
        }
        out
    }
}

/// `emis-style:{prefix}{field}` = `value`.
fn attribute(prefix: &str, field: &str, value: &str) -> SourceAttribute {
    let mut name = String::with_capacity(ATTRIBUTE_PREFIX.len() + prefix.len() + field.len());
    name.push_str(ATTRIBUTE_PREFIX);
    name.push_str(prefix);
    name.push_str(field);
    SourceAttribute {
        name,
        value: value.to_string(),
    }
}

/// `<Name A="x">text<Child/></Name>` → `Name.A` = x, `Name` = text, then the children as
/// `Name.Child…`.
fn flatten(prefix: &str, e: &Element, out: &mut Vec<SourceAttribute>) {
    let path = format!("{prefix}{}", e.name);
    for (k, v) in &e.attrs {
        out.push(attribute(&path, &format!(".{k}"), v));
    }
    if !e.text.trim().is_empty() {
        out.push(attribute("", &path, &e.text));
    }
    let child_prefix = format!("{path}.");
    for c in &e.children {
        flatten(&child_prefix, c, out);
    }
}

fn clinical_date(text: &str, what: &str, field: &str) -> Result<ClinicalDate, MapError> {
    ClinicalDate::parse(text)
        .map_err(|_| MapError(format!("a {what}'s {field} '{text}' is not a date")))
}

/// The code system of an API scheme name.
fn system_of(scheme: &str) -> String {
    match scheme {
        "SNOMED" => systems::SNOMED_CT.to_string(),
        "READ2" => systems::READ_V2.to_string(),
        "CTV3" => systems::CTV3.to_string(),
        "DMD" => systems::DMD.to_string(),
        "SYNTHETIC-DMD" => SYNTHETIC_DMD_SYSTEM.to_string(),
        other => format!("{ATTRIBUTE_PREFIX}scheme:{other}"),
    }
}

/// One `<Code Scheme Value Term/>` (or `<Drug …/>`) as a coding.
fn coding(e: &Element) -> Result<Coding, MapError> {
    let (Some(scheme), Some(value)) = (e.attr("Scheme"), e.attr("Value")) else {
        return err(format!("a {} has no Scheme or no Value", e.name));
    };
    let coding = Coding::new(system_of(scheme.trim()), value.trim());
    Ok(match e.attr("Term") {
        Some(term) => coding.with_display(term),
        None => coding,
    })
}

/// The concept of an item's `<Code>` children; at least one is required.
fn concept(f: &mut Fields) -> Result<CodeableConcept, MapError> {
    let codes = f.all("Code");
    if codes.is_empty() {
        return err(format!("a {} has no Code", f.what()));
    }
    codes
        .into_iter()
        .try_fold(CodeableConcept::default(), |c, e| {
            Ok(c.with_coding(coding(e)?))
        })
}

fn decimal(text: &str, what: &str) -> Result<Decimal, MapError> {
    Decimal::parse(text).map_err(|_| MapError(format!("a {what} '{text}' is not a number")))
}

/// `<Value Unit Comparator>text</Value>`: a quantity as recorded, or the text when it is
/// not a number.
fn value(e: &Element) -> Result<ObservationValue, MapError> {
    let text = e.text.trim();
    let Ok(number) = Decimal::parse(text) else {
        return Ok(ObservationValue::Text(e.text.to_string()));
    };
    let comparator = match e.attr("Comparator") {
        None => None,
        Some("<") => Some(Comparator::LessThan),
        Some("<=") => Some(Comparator::LessOrEqual),
        Some(">=") => Some(Comparator::GreaterOrEqual),
        Some(">") => Some(Comparator::GreaterThan),
        Some(other) => return err(format!("a Value's Comparator '{other}' is not known")),
    };
    Ok(ObservationValue::Quantity(Quantity {
        value: number,
        comparator,
        unit: e.attr("Unit").map(str::to_string),
        system: None,
        code: None,
        normalised: None,
    }))
}

/// The code of a panel component the API names (`Systolic`, `Diastolic`): its name as text,
/// with Keel's SNOMED CT coding beside it where Keel knows the name.
fn component_code(name: &str) -> CodeableConcept {
    let mut code = CodeableConcept::from_text(name);
    let known = match name {
        "Systolic" => Some(SYSTOLIC),
        "Diastolic" => Some(DIASTOLIC),
        _ => None,
    };
    if let Some((id, display)) = known {
        code.add_translation(Coding::new(systems::SNOMED_CT, id).with_display(display));
    }
    code
}

/// Provenance for an item of `ctx`'s practice.
fn provenance(
    ctx: &ReadContext,
    author: Option<String>,
    status: Option<&str>,
    recorded: Option<Instant>,
) -> Provenance {
    let mut p = Provenance::new(ctx.practice.clone(), SourceSystem::EmisStyle)
        .with_retrieved(ctx.retrieved.clone());
    p.author = author;
    p.status = status.map(str::to_string);
    p.recorded = recorded;
    p
}

/// Maps one item element into its content and provenance.
type ItemMapper<T> = fn(&mut Fields, &Users, &ReadContext) -> Result<(T, Provenance), MapError>;

fn problem(
    f: &mut Fields,
    users: &Users,
    ctx: &ReadContext,
) -> Result<(Problem, Provenance), MapError> {
    let status_text = f.required_attr("Status")?;
    let status = match status_text {
        "Active" => ProblemStatus::Active,
        "Past" => ProblemStatus::Inactive,
        other => return err(format!("a Problem's Status '{other}' is not known")),
    };
    let significant = match f.attr("Significance") {
        None => None,
        Some("Major") => Some(true),
        Some("Minor") => Some(false),
        Some(other) => {
            f.keep("Significance", other);
            None
        }
    };
    let content = Problem {
        code: concept(f)?,
        status,
        onset: f.date("Date")?,
        ended: f.date("EndDate")?,
        significant,
    };
    let author = users.name(f.child("Author"));
    Ok((content, provenance(ctx, author, Some(status_text), None)))
}

fn medication(
    f: &mut Fields,
    users: &Users,
    ctx: &ReadContext,
) -> Result<(Medication, Provenance), MapError> {
    let course = match f.required_attr("PrescriptionType")? {
        "Repeat" => CourseKind::Repeat,
        "Acute" => CourseKind::Acute,
        other => {
            return err(format!(
                "a Medication's PrescriptionType '{other}' is not known"
            ));
        }
    };
    let status_text = f.required_attr("Status")?;
    let status = match status_text {
        "Active" => MedicationStatus::Active,
        "Completed" => MedicationStatus::Completed,
        "Cancelled" | "Stopped" | "Discontinued" => MedicationStatus::Stopped,
        other => return err(format!("a Medication's Status '{other}' is not known")),
    };
    let Some(drug) = f.child("Drug") else {
        return err("a Medication has no Drug");
    };
    let mut medication = CodeableConcept::from_coding(coding(drug)?);
    if let Some(name) = drug.attr("Term") {
        medication = medication.with_text(name);
    }
    let quantity_element = f.child("Quantity");
    let unit = quantity_element.and_then(|q| q.attr("Unit"));
    let quantity_of = |text: &str| -> Result<Quantity, MapError> {
        Ok(Quantity {
            value: decimal(text.trim(), "Medication Quantity")?,
            comparator: None,
            unit: unit.map(str::to_string),
            system: None,
            code: None,
            normalised: None,
        })
    };
    let quantity = quantity_element.map(|q| quantity_of(&q.text)).transpose()?;
    let mut issues = Vec::new();
    for list in f.all("Issues") {
        let mut list_fields = Fields::nested(list, "Issues.");
        list_fields.attr("Count");
        for issue in list_fields.all("Issue") {
            let mut i = Fields::nested(issue, "Issue.");
            let Some(date) = i.attr("Date") else {
                return err("a medication Issue has no Date");
            };
            issues.push(MedicationIssue {
                date: clinical_date(date.trim(), "medication Issue", "Date")?,
                quantity: i.attr("Quantity").map(quantity_of).transpose()?,
            });
            f.kept.extend(i.leftovers());
        }
        f.kept.extend(list_fields.leftovers());
    }
    let content = Medication {
        medication,
        dosage: f.text("Dosage").map(str::to_string),
        quantity,
        course,
        status,
        start: f.date("StartDate")?,
        end: f.date("EndDate")?,
        issues,
    };
    let author = users.name(f.child("Author"));
    Ok((content, provenance(ctx, author, Some(status_text), None)))
}

fn event(
    f: &mut Fields,
    users: &Users,
    ctx: &ReadContext,
) -> Result<(Observation, Provenance), MapError> {
    let code = concept(f)?;
    let effective = f.date("Date")?;
    let mut single = None;
    let mut components = Vec::new();
    for v in f.all("Value") {
        match v.attr("Component") {
            Some(name) => components.push(ObservationComponent {
                code: component_code(name),
                value: value(v)?,
            }),
            None if single.is_none() => single = Some(value(v)?),
            None => return err("an Event has more than one Value without a Component"),
        }
    }
    let content = Observation {
        code,
        effective,
        value: single,
        components,
        note: f.child("FreeText").map(|t| t.text.to_string()),
    };
    let author = users.name(f.child("Author"));
    Ok((content, provenance(ctx, author, None, None)))
}

fn allergy(
    f: &mut Fields,
    users: &Users,
    ctx: &ReadContext,
) -> Result<(Allergy, Provenance), MapError> {
    let status_text = f.required_attr("Status")?;
    let status = match status_text {
        "Active" => AllergyStatus::Active,
        "Resolved" | "Inactive" => AllergyStatus::Resolved,
        other => return err(format!("an Allergy's Status '{other}' is not known")),
    };
    let substance = concept(f)?;
    let reaction = match f.child("Reaction") {
        Some(r) => Some(concept(&mut Fields::new(r))?),
        None => None,
    };
    let content = Allergy {
        substance,
        reaction,
        status,
        recorded: f.date("EnteredDate")?,
    };
    let author = users.name(f.child("Author"));
    Ok((content, provenance(ctx, author, Some(status_text), None)))
}

fn immunisation(
    f: &mut Fields,
    users: &Users,
    ctx: &ReadContext,
) -> Result<(Immunisation, Provenance), MapError> {
    let content = Immunisation {
        vaccine: concept(f)?,
        date: f.date("Date")?,
        product: f.text("Product").map(str::to_string),
    };
    let author = users.name(f.child("Author"));
    Ok((content, provenance(ctx, author, None, None)))
}

fn consultation(
    f: &mut Fields,
    users: &Users,
    ctx: &ReadContext,
) -> Result<(Consultation, Provenance), MapError> {
    let start = f.date("Date")?;
    let kind = f.attr("Type").map(str::to_string);
    let clinician = users.name(f.child("Author"));
    let mut texts: Vec<(&str, &str)> = Vec::new();
    for section in f.all("Section") {
        let heading = section.attr("Heading").unwrap_or("");
        if let Some(text) = section.child("FreeText") {
            texts.push((heading, text.text.as_ref()));
        }
        for entry in section.children_named("Entry") {
            let kind = entry.attr("Type").unwrap_or("");
            let guid = entry.attr("Guid").unwrap_or("");
            f.keep("Section.Entry", &format!("{heading}/{kind}/{guid}"));
        }
    }
    let text = match texts.as_slice() {
        [] => None,
        [(_, only)] => Some((*only).to_string()),
        many => Some(
            many.iter()
                .map(|(heading, text)| format!("{heading}: {text}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    };
    let recorded = start.as_ref().and_then(|d| Instant::parse(d.as_str()).ok());
    let content = Consultation {
        start,
        kind,
        clinician: clinician.clone(),
        text,
    };
    Ok((content, provenance(ctx, clinician, None, recorded)))
}

fn document(
    f: &mut Fields,
    users: &Users,
    ctx: &ReadContext,
) -> Result<(Document, Provenance), MapError> {
    let content = Document {
        title: f.required_text("Title")?.to_string(),
        content_type: f.required_text("MimeType")?.to_string(),
        created: f.date("Date")?,
    };
    let author = users.name(f.child("Author"));
    Ok((content, provenance(ctx, author, None, None)))
}

fn is_confidential(item: &Element) -> bool {
    item.attr("Confidential")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The items of a section element, confidential ones withheld, checked against its `Count`.
fn section_of<T>(
    root: &Element,
    section: RecordSection,
    users: &Users,
    ctx: &ReadContext,
    map: ItemMapper<T>,
) -> Result<Section<T>, MapError> {
    let (_, item_name) = section_elements(section);
    let mut items = Vec::new();
    let mut seen = 0usize;
    let mut withheld = 0usize;
    for element in root.children_named(item_name) {
        seen += 1;
        if is_confidential(element) {
            withheld += 1;
            continue;
        }
        let mut f = Fields::new(element);
        let source_id = f.required_attr("Guid")?.trim().to_string();
        let (content, provenance) = map(&mut f, users, ctx)?;
        items.push(RecordItem {
            source_id,
            content,
            provenance,
            source_attributes: f.leftovers(),
        });
    }
    let count = |key: &str| -> Result<Option<usize>, MapError> {
        root.attr(key)
            .map(|c| {
                c.trim()
                    .parse::<usize>()
                    .map_err(|_| MapError(format!("{} {key} '{c}' is not a number", root.name)))
            })
            .transpose()
    };
    if let Some(count) = count("Count")?
        && count != seen
    {
        return err(format!(
            "{} says it holds {count} items but holds {seen}",
            root.name
        ));
    }
    let mut warnings = Vec::new();
    if withheld > 0 || count("ConfidentialCount")?.is_some_and(|n| n > 0) {
        warnings.push(SectionWarning::ConfidentialItemsWithheld);
    }
    Ok(Section::from_items(section, items, warnings))
}

fn section_content(
    root: &Element,
    section: RecordSection,
    users: &Users,
    ctx: &ReadContext,
) -> Result<SectionContent, MapError> {
    let (element, _) = section_elements(section);
    if root.name != element {
        return err(format!("expected {element}, got {}", root.name));
    }
    Ok(match section {
        RecordSection::Problems => {
            SectionContent::Problems(section_of(root, section, users, ctx, problem)?)
        }
        RecordSection::Medications => {
            SectionContent::Medications(section_of(root, section, users, ctx, medication)?)
        }
        RecordSection::Allergies => {
            SectionContent::Allergies(section_of(root, section, users, ctx, allergy)?)
        }
        RecordSection::Observations => {
            SectionContent::Observations(section_of(root, section, users, ctx, event)?)
        }
        RecordSection::Immunisations => {
            SectionContent::Immunisations(section_of(root, section, users, ctx, immunisation)?)
        }
        RecordSection::Consultations => {
            SectionContent::Consultations(section_of(root, section, users, ctx, consultation)?)
        }
        RecordSection::Documents => {
            SectionContent::Documents(section_of(root, section, users, ctx, document)?)
        }
    })
}

/// Maps the answer to `GET …/record/{section}` (see [`section_path`]).
///
/// # Errors
/// [`MapError`] when the body is not the section's XML or an item cannot be represented.
pub fn map_section(
    body: &[u8],
    section: RecordSection,
    ctx: &ReadContext,
) -> Result<SectionContent, MapError> {
    let root = xml::parse(body)?;
    section_content(&root, section, &Users::of(&root), ctx)
}

/// A whole `<MedicalRecord>`: the patient and every canonical section, in
/// [`RecordSection::ALL`] order.
#[derive(Debug, Clone, PartialEq)]
pub struct MedicalRecord {
    pub patient: PatientMatch,
    pub sections: Vec<SectionContent>,
}

/// Maps the answer to `GET …/record` (the full extract). Appointments and tasks are not
/// canonical sections and are not mapped.
///
/// # Errors
/// [`MapError`] as for [`map_section`], or when a section is missing.
pub fn map_medical_record(body: &[u8], ctx: &ReadContext) -> Result<MedicalRecord, MapError> {
    let root = xml::parse(body)?;
    if root.name != "MedicalRecord" {
        return err(format!("expected MedicalRecord, got {}", root.name));
    }
    let Some(patient) = root.child("Patient") else {
        return err("the MedicalRecord has no Patient");
    };
    let users = Users::of(&root);
    let mut sections = Vec::with_capacity(RecordSection::ALL.len());
    for section in RecordSection::ALL {
        let (element, _) = section_elements(section);
        let Some(e) = root.child(element) else {
            return err(format!("the MedicalRecord has no {element}"));
        };
        sections.push(section_content(e, section, &users, ctx)?);
    }
    Ok(MedicalRecord {
        patient: patient_of(patient)?,
        sections,
    })
}

/// One patient record found at the practice.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientMatch {
    pub patient: PatientAtPractice,
    pub demographics: Demographics,
    /// The registration is active (`Registration Status="Active"`), not deducted.
    pub active: bool,
}

fn patient_of(e: &Element) -> Result<PatientMatch, MapError> {
    let mut f = Fields::new(e);
    let guid = f.required_attr("Guid")?.trim().to_string();
    let nhs_number = f.text("NhsNumber").and_then(|n| NhsNumber::parse(n).ok());
    let registration = f.child("Registration");
    let active = registration.and_then(|r| r.attr("Status")) == Some("Active");
    let registered_practice = registration
        .filter(|_| active)
        .and_then(|r| r.attr("OdsCode"))
        .and_then(|ods| OdsCode::parse(ods).ok());
    let practice = registration
        .and_then(|r| r.attr("OdsCode"))
        .and_then(|ods| OdsCode::parse(ods).ok());
    let gender = match (f.text("Gender"), f.text("Sex")) {
        (Some(g @ ("male" | "female" | "other" | "unknown")), _) => Some(g.to_string()),
        (_, Some("F")) => Some("female".to_string()),
        (_, Some("M")) => Some("male".to_string()),
        _ => None,
    };
    let demographics = Demographics {
        nhs_number,
        source_patient_id: guid.clone(),
        family: f.text("FamilyName").map(str::to_string),
        given: f
            .text("Forenames")
            .map(|g| g.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        birth_date: f.date("DateOfBirth")?,
        gender,
        postcode: f
            .child("Address")
            .and_then(|a| a.child("Postcode"))
            .map(|p| p.text.trim().to_string())
            .filter(|p| !p.is_empty()),
        registered_practice,
        deceased: f.date("DateOfDeath")?,
    };
    let Some(practice) = practice else {
        return err("a Patient has no Registration OdsCode");
    };
    Ok(PatientMatch {
        patient: PatientAtPractice {
            practice,
            source_patient_id: guid,
            nhs_number,
        },
        demographics,
        active,
    })
}

/// Maps the answer to a patient search (`<PatientMatches>`), in the order sent.
///
/// # Errors
/// [`MapError`] when the body is not a `PatientMatches` document or a match cannot be read.
pub fn map_patient_matches(body: &[u8]) -> Result<Vec<PatientMatch>, MapError> {
    let root = xml::parse(body)?;
    if root.name != "PatientMatches" {
        return err(format!("expected PatientMatches, got {}", root.name));
    }
    root.children_named("Patient").map(patient_of).collect()
}

/// The GUID of what a write made: the first `<Item Guid>` of a `<WriteResult>`.
///
/// # Errors
/// [`MapError`] when the body is not a `WriteResult` with an item.
pub fn map_write_result(body: &[u8]) -> Result<WriteReceipt, MapError> {
    let root = xml::parse(body)?;
    if root.name != "WriteResult" {
        return err(format!("expected WriteResult, got {}", root.name));
    }
    match root.child("Item").and_then(|i| i.attr("Guid")) {
        Some(guid) => Ok(WriteReceipt {
            source_id: guid.trim().to_string(),
            version: None,
        }),
        None => err("the WriteResult names no item"),
    }
}

/// The session token of a login answer (`<Session><SessionToken>`).
///
/// # Errors
/// [`MapError`] when the body is not a `Session` with a token.
pub fn map_session(body: &[u8]) -> Result<String, MapError> {
    let root = xml::parse(body)?;
    match root.child("SessionToken").map(|t| t.text.trim()) {
        Some(token) if root.name == "Session" && !token.is_empty() => Ok(token.to_string()),
        _ => err("the login answer holds no SessionToken"),
    }
}

/// The `<Error><Code/><Message/></Error>` of an error answer, if it is one.
pub fn map_error(body: &[u8]) -> Option<(String, String)> {
    let root = xml::parse(body).ok()?;
    if root.name != "Error" {
        return None;
    }
    let code = root.child("Code")?.text.trim().to_string();
    let message = root
        .child("Message")
        .map(|m| m.text.trim().to_string())
        .unwrap_or_default();
    Some((code, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_model::SectionState;
    use proptest::prelude::*;

    fn ods() -> OdsCode {
        OdsCode::parse("Y90001").expect("valid")
    }

    fn at() -> Instant {
        Instant::parse("2026-01-05T10:00:00Z").expect("valid")
    }

    fn problems(body: &str) -> Result<Section<Problem>, MapError> {
        let (practice, retrieved) = (ods(), at());
        let ctx = ReadContext {
            practice: &practice,
            retrieved: &retrieved,
        };
        match map_section(body.as_bytes(), RecordSection::Problems, &ctx)? {
            SectionContent::Problems(s) => Ok(s),
            other => panic!("{other:?}"),
        }
    }

    const USERS: &str = r#"<Users><User Guid="AAAAAAAA-0000-0000-0000-000000000001" UserId="Y90001-S01" Name="Dr Ann Lee" Role="GP"/></Users>"#;

    #[test]
    fn a_partial_date_legacy_code_and_unknown_fields_survive() {
        let body = format!(
            r#"<Problems xmlns="{ns}" Count="1" ConfidentialCount="0">{USERS}
            <Problem Guid="G1" Status="Past" Significance="Major" Episode="First">
              <Code Scheme="READ2" Value="H33.." Term="Asthma"/><Code Scheme="SNOMED" Value="195967001" Term="Asthma"/>
              <Date>2004</Date><EndDate>2010-06</EndDate><EnteredDate>2004-03-01</EnteredDate>
              <Qualifier Kind="Laterality">Left</Qualifier>
              <Author UserInRole="aaaaaaaa-0000-0000-0000-000000000001"/>
            </Problem></Problems>"#,
            ns = xml::NAMESPACE
        );
        let section = problems(&body).expect("maps");
        assert_eq!(section.state, SectionState::Recorded);
        let item = &section.items[0];
        let codings = item.content.code.codings();
        assert_eq!(codings[0].system, systems::READ_V2);
        assert_eq!(codings[0].code, "H33..");
        assert!(codings.iter().all(|c| c.origin.is_source()));
        assert_eq!(
            item.content.onset.as_ref().map(|d| d.as_str()),
            Some("2004")
        );
        assert_eq!(
            item.content.ended.as_ref().map(|d| d.as_str()),
            Some("2010-06")
        );
        assert_eq!(item.content.status, ProblemStatus::Inactive);
        assert_eq!(item.provenance.author.as_deref(), Some("Dr Ann Lee"));
        assert_eq!(item.provenance.status.as_deref(), Some("Past"));
        let kept: Vec<(&str, &str)> = item
            .source_attributes
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            kept,
            [
                ("emis-style:Episode", "First"),
                ("emis-style:EnteredDate", "2004-03-01"),
                ("emis-style:Qualifier.Kind", "Laterality"),
                ("emis-style:Qualifier", "Left"),
            ]
        );
    }

    #[test]
    fn confidential_items_are_dropped_and_the_section_says_so() {
        let confidential = r#"<Problem Guid="G2" Status="Active" Confidential="true" Sensitivity="sti"><Code Scheme="SNOMED" Value="1" Term="x"/></Problem>"#;
        let shared = r#"<Problem Guid="G1" Status="Active"><Code Scheme="SNOMED" Value="2" Term="y"/><Author UserInRole="UNLISTED"/></Problem>"#;
        let some = problems(&format!(
            r#"<Problems Count="2" ConfidentialCount="1">{shared}{confidential}</Problems>"#
        ))
        .expect("maps");
        assert_eq!(some.state, SectionState::Recorded);
        assert_eq!(some.items.len(), 1);
        assert_eq!(some.items[0].provenance.author.as_deref(), Some("UNLISTED"));
        assert_eq!(some.warnings, [SectionWarning::ConfidentialItemsWithheld]);

        let all = problems(&format!(
            r#"<Problems Count="1" ConfidentialCount="1">{confidential}</Problems>"#
        ))
        .expect("maps");
        assert!(
            matches!(all.state, SectionState::Withheld { .. }),
            "{:?}",
            all.state
        );
        assert_eq!(all.warnings, [SectionWarning::ConfidentialItemsWithheld]);

        let none = problems(r#"<Problems Count="0" ConfidentialCount="0"/>"#).expect("maps");
        assert_eq!(none.state, SectionState::NothingRecorded);
        assert!(none.warnings.is_empty());
    }

    #[test]
    fn a_cut_off_or_wrong_answer_is_an_error_not_a_short_section() {
        let one = r#"<Problem Guid="G1" Status="Active"><Code Scheme="SNOMED" Value="2" Term="y"/></Problem>"#;
        for body in [
            format!(r#"<Problems Count="2">{one}</Problems>"#),
            format!(r#"<Events Count="1">{one}</Events>"#),
            r#"<Problems Count="1"><Problem Guid="G1" Status="Active"/></Problems>"#.into(),
            r#"<Problems Count="1"><Problem Guid="G1" Status="Maybe"><Code Scheme="SNOMED" Value="2"/></Problem></Problems>"#.into(),
            r#"<Problems Count="1"><Problem Guid="G1" Status="Active"><Code Scheme="SNOMED" Value="2"/><Date>1 May</Date></Problem></Problems>"#.into(),
            format!(r#"<Problems Count="1">{one}"#),
        ] {
            assert!(problems(&body).is_err(), "{body}");
        }
    }

    #[test]
    fn session_write_result_and_error_answers_are_read() {
        assert_eq!(
            map_session(b"<Session><SessionToken>T1</SessionToken></Session>"),
            Ok("T1".into())
        );
        assert!(map_session(b"<Session/>").is_err());
        let receipt = map_write_result(
            br#"<WriteResult PatientGuid="P"><Item Type="Event" Guid="W1"/><Item Type="Event" Guid="W2"/></WriteResult>"#,
        )
        .expect("maps");
        assert_eq!(receipt.source_id, "W1");
        assert!(map_write_result(b"<WriteResult/>").is_err());
        assert_eq!(
            map_error(b"<Error><Code>InvalidSession</Code><Message>no</Message></Error>"),
            Some(("InvalidSession".into(), "no".into()))
        );
        assert_eq!(map_error(br#"{"resourceType":"OperationOutcome"}"#), None);
    }

    /// Element names the API uses, so generated documents reach deep into the mapping.
    const NAMES: [&str; 24] = [
        "Problems",
        "Problem",
        "Medications",
        "Medication",
        "Events",
        "Event",
        "Allergies",
        "Allergy",
        "Immunisations",
        "Immunisation",
        "Consultations",
        "Consultation",
        "Documents",
        "Document",
        "Code",
        "Value",
        "Date",
        "Drug",
        "Issues",
        "Issue",
        "Section",
        "Users",
        "User",
        "Patient",
    ];
    const ATTRS: [&str; 12] = [
        "Guid",
        "Status",
        "Count",
        "ConfidentialCount",
        "Confidential",
        "Scheme",
        "Value",
        "Component",
        "Comparator",
        "Unit",
        "PrescriptionType",
        "Date",
    ];

    fn document() -> impl Strategy<Value = String> {
        let leaf = (
            0..NAMES.len(),
            prop::collection::vec((0..ATTRS.len(), "[A-Za-z0-9<>=.% -]{0,6}"), 0..4),
            "[A-Za-z0-9.:+ -]{0,12}",
        )
            .prop_map(|(n, attrs, text)| {
                let attrs: String = attrs
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            " {}=\"{}\"",
                            ATTRS[*k],
                            quick_xml::escape::escape(v.as_str())
                        )
                    })
                    .collect();
                format!(
                    "<{0}{attrs}>{1}</{0}>",
                    NAMES[n],
                    quick_xml::escape::escape(text.as_str())
                )
            });
        leaf.prop_recursive(4, 64, 6, |inner| {
            (0..NAMES.len(), prop::collection::vec(inner, 0..6)).prop_map(|(n, children)| {
                format!(
                    "<{0} Count=\"{1}\">{2}</{0}>",
                    NAMES[n],
                    children.len(),
                    children.concat()
                )
            })
        })
    }

    fn map_everything(body: &[u8]) {
        let (practice, retrieved) = (ods(), at());
        let ctx = ReadContext {
            practice: &practice,
            retrieved: &retrieved,
        };
        for section in RecordSection::ALL {
            let _ = map_section(body, section, &ctx);
        }
        let _ = map_medical_record(body, &ctx);
        let _ = map_patient_matches(body);
        let _ = map_write_result(body);
        let _ = map_session(body);
        let _ = map_error(body);
    }

    proptest! {
        #[test]
        fn mapping_arbitrary_bytes_never_panics(body in prop::collection::vec(any::<u8>(), 0..300)) {
            map_everything(&body);
        }

        #[test]
        fn mapping_arbitrary_api_shaped_xml_never_panics(body in document()) {
            map_everything(body.as_bytes());
        }
    }
}
