//! Rendering a patient record as the API's XML: demographics, the full medical record and
//! each section, generated entries first, then what clients wrote (in write order).

use std::collections::HashMap;
use std::io;

use super::guid::{Guid, GuidText};
use super::overlay::{Written, WrittenEntry};
use super::request::{EntryKind, consultation_type};
use super::xml::XmlOut;
use crate::codes::{CodeOrigin, Concept};
use crate::date::Date;
use crate::model::*;

/// A section of the medical record, as named in the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Problems,
    Medication,
    Consultations,
    Events,
    Allergies,
    Immunisations,
    Appointments,
    Tasks,
    Documents,
}

pub const SECTIONS: [Section; 9] = [
    Section::Problems,
    Section::Medication,
    Section::Consultations,
    Section::Events,
    Section::Allergies,
    Section::Immunisations,
    Section::Appointments,
    Section::Tasks,
    Section::Documents,
];

impl Section {
    /// The URL segment.
    pub fn path(self) -> &'static str {
        match self {
            Section::Problems => "problems",
            Section::Medication => "medication",
            Section::Consultations => "consultations",
            Section::Events => "events",
            Section::Allergies => "allergies",
            Section::Immunisations => "immunisations",
            Section::Appointments => "appointments",
            Section::Tasks => "tasks",
            Section::Documents => "documents",
        }
    }

    /// The element holding the section.
    pub fn element(self) -> &'static str {
        match self {
            Section::Problems => "Problems",
            Section::Medication => "Medications",
            Section::Consultations => "Consultations",
            Section::Events => "Events",
            Section::Allergies => "Allergies",
            Section::Immunisations => "Immunisations",
            Section::Appointments => "Appointments",
            Section::Tasks => "Tasks",
            Section::Documents => "Documents",
        }
    }

    pub fn from_path(s: &str) -> Option<Section> {
        SECTIONS.into_iter().find(|x| x.path() == s)
    }
}

/// One patient record with everything rendered beside it.
pub struct RecordView<'a> {
    pub practice: &'a Practice,
    pub record: &'a PatientRecord,
    /// Future appointments booked for this record in the practice's appointment book.
    pub booked: &'a [BookSlot],
    /// The day the appointment book was made (the booked date of its appointments).
    pub booked_on: Date,
    pub written: Option<&'a Written>,
}

/// The practice's staff, GUIDs and names written once per answer.
struct Staff<'a> {
    practice: &'a Practice,
    guids: Vec<GuidText>,
    names: Vec<String>,
}

impl<'a> Staff<'a> {
    fn new(practice: &'a Practice) -> Self {
        Staff {
            practice,
            guids: practice
                .staff
                .iter()
                .map(|s| Guid::named(&s.id).text())
                .collect(),
            names: practice.staff.iter().map(|s| s.name.text()).collect(),
        }
    }

    /// `<name UserInRole="GUID"/>` for staff member `index` (clamped, as the FHIR export),
    /// a reference into [`Staff::users`].
    fn write(&self, x: &mut XmlOut, name: &str, index: usize) -> io::Result<()> {
        let Some(last) = self.guids.len().checked_sub(1) else {
            return Ok(());
        };
        x.empty(
            name,
            &[("UserInRole", self.guids[index.min(last)].as_str())],
        )
    }

    /// `<Users>` of `<User Guid UserId Name Role/>`: the practice's staff, once per answer.
    fn users(&self, x: &mut XmlOut) -> io::Result<()> {
        x.start("Users", &[])?;
        for (i, s) in self.practice.staff.iter().enumerate() {
            x.empty(
                "User",
                &[
                    ("Guid", self.guids[i].as_str()),
                    ("UserId", &s.id),
                    ("Name", &self.names[i]),
                    ("Role", s.role.display()),
                ],
            )?;
        }
        x.end("Users")
    }
}

/// `<Code Scheme Value Term/>` for `concept` as `style` recorded it: the legacy code first,
/// then SNOMED CT where recorded.
fn concept_codes(x: &mut XmlOut, concept: &Concept, style: CodingStyle) -> io::Result<()> {
    if let Some((scheme, (code, term))) = style.legacy(concept) {
        let scheme = match scheme {
            LegacyScheme::ReadV2 => "READ2",
            LegacyScheme::Ctv3 => "CTV3",
        };
        x.empty(
            "Code",
            &[("Scheme", scheme), ("Value", code), ("Term", term)],
        )?;
    }
    if style.has_snomed(concept) {
        x.empty(
            "Code",
            &[
                ("Scheme", "SNOMED"),
                ("Value", concept.snomed),
                ("Term", concept.display),
            ],
        )?;
    }
    Ok(())
}

fn sensitivity_attrs(s: Option<Sensitivity>) -> Vec<(&'static str, &'static str)> {
    match s {
        Some(s) => vec![("Confidential", "true"), ("Sensitivity", s.key())],
        None => Vec::new(),
    }
}

fn guid_element(x: &mut XmlOut, name: &str, guid: Guid) -> io::Result<()> {
    x.text(name, &[], guid.text().as_str())
}

/// Writes `<Patient>` demographics (the root of a demographics answer when `root`).
pub fn patient(
    x: &mut XmlOut,
    practice: &Practice,
    r: &PatientRecord,
    root: bool,
) -> io::Result<()> {
    let guid = Guid::named(&r.id).text();
    let mut attrs = vec![("Guid", guid.as_str())];
    if r.confidentiality != Confidentiality::Unrestricted {
        attrs.push(("Confidentiality", r.confidentiality.code()));
    }
    if root {
        x.root("Patient", &attrs)?;
    } else {
        x.start("Patient", &attrs)?;
    }
    if let Some(nhs) = &r.nhs_number {
        x.text(
            "NhsNumber",
            &[("Status", r.nhs_status.code())],
            nhs.as_str(),
        )?;
    }
    x.text("PatientNumber", &[], &r.local_number)?;
    if let Some(p) = r.name.prefix {
        x.text("Title", &[], p)?;
    }
    x.text("Forenames", &[], &r.name.given.join(" "))?;
    x.text("FamilyName", &[], &r.name.family)?;
    x.text(
        "Sex",
        &[],
        match r.sex {
            Sex::Female => "F",
            Sex::Male => "M",
        },
    )?;
    x.text("Gender", &[], r.gender.key())?;
    x.date("DateOfBirth", r.birth_date)?;
    if let Some(d) = r.death_date {
        x.date("DateOfDeath", d)?;
    }
    x.start("Address", &[])?;
    for line in &r.address.lines {
        x.text("Line", &[], line)?;
    }
    x.text("Locality", &[], r.address.district)?;
    x.text("Town", &[], r.address.city)?;
    x.text("Postcode", &[], &r.address.postcode)?;
    x.end("Address")?;
    for t in &r.telecom {
        let kind = match t.kind {
            TelecomKind::Mobile => "Mobile",
            TelecomKind::Home => "Home",
            TelecomKind::Email => "Email",
        };
        x.text("Contact", &[("Type", kind)], &t.value)?;
    }
    let reg = &r.registration;
    let kind = match reg.kind {
        RegistrationType::Regular => "Regular",
        RegistrationType::Temporary => "Temporary",
    };
    let status = if reg.is_active() {
        "Active"
    } else {
        "Deducted"
    };
    x.start(
        "Registration",
        &[
            ("Type", kind),
            ("Status", status),
            ("OdsCode", practice.ods.as_str()),
        ],
    )?;
    x.date("StartDate", reg.start)?;
    if let Some((end, reason)) = reg.end {
        x.date("EndDate", end)?;
        x.text("EndReason", &[], reason.key())?;
    }
    x.end("Registration")?;
    x.end("Patient")
}

/// Writes one section (the answer's root when `root`).
pub fn section(x: &mut XmlOut, view: &RecordView, which: Section, root: bool) -> io::Result<()> {
    let staff = Staff::new(view.practice);
    write_section(x, view, &staff, which, root)
}

/// Writes the whole `<MedicalRecord>`.
pub fn medical_record(x: &mut XmlOut, view: &RecordView) -> io::Result<()> {
    let staff = Staff::new(view.practice);
    let guid = Guid::named(&view.record.id).text();
    x.root(
        "MedicalRecord",
        &[
            ("PatientGuid", guid.as_str()),
            ("OdsCode", view.practice.ods.as_str()),
        ],
    )?;
    patient(x, view.practice, view.record, false)?;
    staff.users(x)?;
    for which in SECTIONS {
        write_section(x, view, &staff, which, false)?;
    }
    x.end("MedicalRecord")
}

/// Opens a section; as an answer's root it is followed by the [`Staff::users`] it refers to.
fn open_section(
    x: &mut XmlOut,
    view: &RecordView,
    staff: &Staff,
    which: Section,
    root: bool,
    count: usize,
    confidential: usize,
) -> io::Result<()> {
    let count = count.to_string();
    let confidential = confidential.to_string();
    let mut attrs = vec![
        ("Count", count.as_str()),
        ("ConfidentialCount", confidential.as_str()),
    ];
    let guid = Guid::named(&view.record.id).text();
    if root {
        attrs.insert(0, ("PatientGuid", guid.as_str()));
        x.root(which.element(), &attrs)?;
        staff.users(x)
    } else {
        x.start(which.element(), &attrs)
    }
}

fn written_entries<'a>(
    view: &RecordView<'a>,
    problems: bool,
) -> impl Iterator<Item = &'a WrittenEntry> {
    view.written
        .into_iter()
        .flat_map(|w| w.entries.iter())
        .filter(move |e| e.is_problem() == problems)
}

fn write_section(
    x: &mut XmlOut,
    view: &RecordView,
    staff: &Staff,
    which: Section,
    root: bool,
) -> io::Result<()> {
    let c = &view.record.clinical;
    let rid = view.record.id.as_str();
    let w = view.written;
    match which {
        Section::Problems => {
            let written: Vec<&WrittenEntry> = written_entries(view, true).collect();
            let confidential = c
                .conditions
                .iter()
                .filter(|p| p.sensitivity.is_some())
                .count();
            open_section(
                x,
                view,
                staff,
                which,
                root,
                c.conditions.len() + written.len(),
                confidential,
            )?;
            for p in &c.conditions {
                problem(x, rid, staff, p)?;
            }
            for e in written {
                written_entry(x, staff, e)?;
            }
        }
        Section::Medication => {
            open_section(x, view, staff, which, root, c.medications.len(), 0)?;
            for m in &c.medications {
                medication(x, rid, staff, m)?;
            }
        }
        Section::Consultations => {
            let written = w.map_or(0, |w| w.consultations.len());
            let confidential = c.consultations.iter().filter(|e| e.confidential).count();
            open_section(
                x,
                view,
                staff,
                which,
                root,
                c.consultations.len() + written,
                confidential,
            )?;
            let linked = consultation_links(rid, c);
            for e in &c.consultations {
                consultation(
                    x,
                    rid,
                    staff,
                    e,
                    linked.get(&e.id).map_or(&[][..], Vec::as_slice),
                )?;
            }
            for e in w.into_iter().flat_map(|w| w.consultations.iter()) {
                x.start(
                    "Consultation",
                    &[
                        ("Guid", e.guid.text().as_str()),
                        ("Type", consultation_type(e.input.kind)),
                    ],
                )?;
                x.datetime("Date", e.input.start)?;
                x.number("DurationMinutes", u64::from(e.input.minutes))?;
                staff.write(x, "Author", e.author)?;
                for (s, entries) in e.input.sections.iter().zip(&e.section_entries) {
                    x.start("Section", &[("Heading", &s.heading)])?;
                    if let Some(t) = &s.text {
                        x.text("FreeText", &[], t)?;
                    }
                    for (guid, is_problem) in entries {
                        let kind = if *is_problem { "Problem" } else { "Event" };
                        x.empty("Entry", &[("Type", kind), ("Guid", guid.text().as_str())])?;
                    }
                    x.end("Section")?;
                }
                x.end("Consultation")?;
            }
        }
        Section::Events => {
            let written: Vec<&WrittenEntry> = written_entries(view, false).collect();
            let confidential = c
                .observations
                .iter()
                .filter(|o| o.sensitivity.is_some())
                .count();
            open_section(
                x,
                view,
                staff,
                which,
                root,
                c.observations.len() + written.len(),
                confidential,
            )?;
            for o in &c.observations {
                event(x, rid, staff, o)?;
            }
            for e in written {
                written_entry(x, staff, e)?;
            }
        }
        Section::Allergies => {
            open_section(x, view, staff, which, root, c.allergies.len(), 0)?;
            for a in &c.allergies {
                allergy(x, rid, staff, a)?;
            }
        }
        Section::Immunisations => {
            open_section(x, view, staff, which, root, c.immunisations.len(), 0)?;
            for i in &c.immunisations {
                x.start(
                    "Immunisation",
                    &[("Guid", Guid::item(rid, "i", i.id).text().as_str())],
                )?;
                concept_codes(x, i.procedure, CodingStyle::Snomed)?;
                x.text("Product", &[], i.product)?;
                x.date("Date", i.date)?;
                if let Some(e) = i.consultation {
                    guid_element(x, "ConsultationGuid", Guid::item(rid, "e", e))?;
                }
                staff.write(x, "Author", i.clinician)?;
                x.end("Immunisation")?;
            }
        }
        Section::Appointments => {
            open_section(
                x,
                view,
                staff,
                which,
                root,
                c.appointments.len() + view.booked.len(),
                0,
            )?;
            for a in &c.appointments {
                appointment(x, rid, staff, a)?;
            }
            for slot in view.booked {
                let name = format!(
                    "{}-fa-{}-{}",
                    view.practice.ods,
                    slot.staff,
                    crate::population::compact_datetime(slot.start)
                );
                x.start(
                    "Appointment",
                    &[
                        ("Guid", Guid::named(&name).text().as_str()),
                        ("Status", "Booked"),
                        ("Type", "Surgery"),
                    ],
                )?;
                x.datetime("Start", slot.start)?;
                x.number("DurationMinutes", u64::from(slot.minutes))?;
                x.date("BookedDate", view.booked_on)?;
                staff.write(x, "Clinician", slot.staff)?;
                x.end("Appointment")?;
            }
        }
        Section::Tasks => {
            let written = w.map_or(0, |w| w.tasks.len());
            open_section(x, view, staff, which, root, c.tasks.len() + written, 0)?;
            for t in &c.tasks {
                let status = match t.status {
                    TaskStatus::Requested => "Requested",
                    TaskStatus::InProgress => "InProgress",
                    TaskStatus::Completed => "Completed",
                    TaskStatus::Cancelled => "Cancelled",
                };
                task(
                    x,
                    staff,
                    Guid::item(rid, "t", t.id),
                    status,
                    t.urgent,
                    t.description,
                    t.created,
                    t.requester,
                    t.owner,
                )?;
            }
            for t in w.into_iter().flat_map(|w| w.tasks.iter()) {
                task(
                    x,
                    staff,
                    t.guid,
                    "Requested",
                    t.input.urgent,
                    &t.input.description,
                    t.input.created,
                    t.requester,
                    t.owner,
                )?;
            }
        }
        Section::Documents => {
            let written = w.map_or(0, |w| w.documents.len());
            open_section(x, view, staff, which, root, written, 0)?;
            for d in w.into_iter().flat_map(|w| w.documents.iter()) {
                document(x, staff, d, false)?;
            }
        }
    }
    x.end(which.element())
}

/// `<Document>` metadata, with the base64 `Content` when `content`.
pub fn document_element(
    x: &mut XmlOut,
    practice: &Practice,
    d: &super::overlay::WrittenDocument,
) -> io::Result<()> {
    let staff = Staff::new(practice);
    document(x, &staff, d, true)
}

fn document(
    x: &mut XmlOut,
    staff: &Staff,
    d: &super::overlay::WrittenDocument,
    content: bool,
) -> io::Result<()> {
    use base64::Engine;
    let guid = d.guid.text();
    if content {
        x.root("Document", &[("Guid", guid.as_str())])?;
        staff.users(x)?;
    } else {
        x.start("Document", &[("Guid", guid.as_str())])?;
    }
    x.text("Title", &[], &d.input.title)?;
    x.date("Date", d.input.date)?;
    x.text("MimeType", &[], &d.input.mime_type)?;
    x.number("SizeBytes", d.input.content.len() as u64)?;
    staff.write(x, "Author", d.author)?;
    if content {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&d.input.content);
        x.text("Content", &[], &encoded)?;
    }
    x.end("Document")
}

#[allow(clippy::too_many_arguments)]
fn task(
    x: &mut XmlOut,
    staff: &Staff,
    guid: Guid,
    status: &str,
    urgent: bool,
    description: &str,
    created: crate::date::DateTime,
    requester: usize,
    owner: usize,
) -> io::Result<()> {
    x.start(
        "Task",
        &[
            ("Guid", guid.text().as_str()),
            ("Status", status),
            ("Priority", if urgent { "Urgent" } else { "Routine" }),
        ],
    )?;
    x.text("Description", &[], description)?;
    x.datetime("Created", created)?;
    staff.write(x, "Requester", requester)?;
    staff.write(x, "Owner", owner)?;
    x.end("Task")
}

fn problem(x: &mut XmlOut, rid: &str, staff: &Staff, p: &Condition) -> io::Result<()> {
    let guid = Guid::item(rid, "c", p.id).text();
    let mut attrs = vec![
        ("Guid", guid.as_str()),
        (
            "Status",
            match p.status {
                ConditionStatus::Active => "Active",
                ConditionStatus::Resolved(_) => "Past",
            },
        ),
        ("Significance", if p.chronic { "Major" } else { "Minor" }),
    ];
    attrs.extend(sensitivity_attrs(p.sensitivity));
    x.start("Problem", &attrs)?;
    concept_codes(x, p.concept, p.coding)?;
    x.date("Date", p.onset)?;
    if let ConditionStatus::Resolved(end) = p.status {
        x.date("EndDate", end.max(p.onset))?;
    }
    x.date("EnteredDate", p.recorded)?;
    if let Some(e) = p.consultation {
        guid_element(x, "ConsultationGuid", Guid::item(rid, "e", e))?;
    }
    staff.write(x, "Author", p.clinician)?;
    x.end("Problem")
}

fn written_entry(x: &mut XmlOut, staff: &Staff, e: &WrittenEntry) -> io::Result<()> {
    let guid = e.guid.text();
    let name = match e.input.kind {
        EntryKind::Problem { active, major, .. } => {
            x.start(
                "Problem",
                &[
                    ("Guid", guid.as_str()),
                    ("Status", if active { "Active" } else { "Past" }),
                    ("Significance", if major { "Major" } else { "Minor" }),
                ],
            )?;
            "Problem"
        }
        EntryKind::Event { .. } => {
            x.start("Event", &[("Guid", guid.as_str())])?;
            "Event"
        }
    };
    for code in &e.input.codes {
        x.empty(
            "Code",
            &[
                ("Scheme", code.scheme.as_str()),
                ("Value", &code.value),
                ("Term", &code.term),
            ],
        )?;
    }
    x.date("Date", e.input.date)?;
    match &e.input.kind {
        EntryKind::Problem { end: Some(end), .. } => x.date("EndDate", *end)?,
        EntryKind::Event { value: Some(v) } => {
            let mut attrs = vec![("Unit", v.unit.as_str())];
            if let Some(c) = v.comparator {
                attrs.push(("Comparator", c));
            }
            x.text("Value", &attrs, &v.value)?;
        }
        _ => {}
    }
    if let Some(t) = &e.input.text {
        x.text("FreeText", &[], t)?;
    }
    if let Some(c) = e.consultation {
        guid_element(x, "ConsultationGuid", c)?;
    }
    staff.write(x, "Author", e.author)?;
    x.end(name)
}

fn medication(x: &mut XmlOut, rid: &str, staff: &Staff, m: &MedicationCourse) -> io::Result<()> {
    let guid = Guid::item(rid, "ms", m.id).text();
    x.start(
        "Medication",
        &[
            ("Guid", guid.as_str()),
            (
                "PrescriptionType",
                if m.repeat { "Repeat" } else { "Acute" },
            ),
            (
                "Status",
                match m.status {
                    MedicationStatus::Active => "Active",
                    MedicationStatus::Completed => "Completed",
                    MedicationStatus::Stopped(_) => "Cancelled",
                },
            ),
        ],
    )?;
    let scheme = match m.drug.origin() {
        CodeOrigin::Verified => "DMD",
        CodeOrigin::Synthetic => "SYNTHETIC-DMD",
    };
    x.empty(
        "Drug",
        &[
            ("Scheme", scheme),
            ("Value", m.drug.code()),
            ("Term", m.drug.name),
        ],
    )?;
    x.text("Dosage", &[], m.dose)?;
    let quantity = m.quantity.to_string();
    x.text("Quantity", &[("Unit", m.drug.unit)], &quantity)?;
    x.date("StartDate", m.start)?;
    if let MedicationStatus::Stopped(end) = m.status {
        x.date("EndDate", end.max(m.start))?;
    }
    if m.repeat {
        x.number("AuthorisedIssues", u64::from(m.authorised_issues))?;
    }
    if let Some(review) = m.review_date {
        x.date("ReviewDate", review)?;
    }
    if let Some(ind) = m.indication {
        guid_element(x, "ProblemGuid", Guid::item(rid, "c", ind))?;
    }
    staff.write(x, "Author", m.clinician)?;
    let count = m.issues.len().to_string();
    x.start("Issues", &[("Count", &count)])?;
    let mut issue_name = String::with_capacity(rid.len() + 16);
    let mut date = Vec::with_capacity(10);
    for (k, day) in m.issues.iter().enumerate() {
        issue_name.clear();
        issue_name.push_str(rid);
        issue_name.push_str("-mi");
        issue_name.push_str(&m.id.to_string());
        issue_name.push('-');
        issue_name.push_str(&(k + 1).to_string());
        date.clear();
        day.write_to(&mut date);
        x.empty(
            "Issue",
            &[
                ("Guid", Guid::named(&issue_name).text().as_str()),
                ("Date", std::str::from_utf8(&date).unwrap_or_default()),
                ("Quantity", &quantity),
            ],
        )?;
    }
    x.end("Issues")?;
    x.end("Medication")
}

/// What a generated consultation links to: (element type, section heading, GUID).
type Links = HashMap<u32, Vec<(&'static str, &'static str, Guid)>>;

/// The coded entries recorded in each generated consultation, by consultation id.
fn consultation_links(rid: &str, c: &ClinicalRecord) -> Links {
    let mut links: Links = HashMap::new();
    for p in &c.conditions {
        if let Some(e) = p.consultation {
            links
                .entry(e)
                .or_default()
                .push(("Problem", "Problem", Guid::item(rid, "c", p.id)));
        }
    }
    for o in &c.observations {
        if let Some(e) = o.consultation {
            let heading = if o.laboratory {
                "Results"
            } else {
                "Examination"
            };
            links
                .entry(e)
                .or_default()
                .push(("Event", heading, Guid::item(rid, "o", o.id)));
        }
    }
    for i in &c.immunisations {
        if let Some(e) = i.consultation {
            links.entry(e).or_default().push((
                "Immunisation",
                "Immunisation",
                Guid::item(rid, "i", i.id),
            ));
        }
    }
    links
}

fn consultation(
    x: &mut XmlOut,
    rid: &str,
    staff: &Staff,
    e: &Consultation,
    links: &[(&'static str, &'static str, Guid)],
) -> io::Result<()> {
    let guid = Guid::item(rid, "e", e.id).text();
    let mut attrs = vec![("Guid", guid.as_str()), ("Type", consultation_type(e.kind))];
    if e.confidential {
        attrs.push(("Confidential", "true"));
    }
    x.start("Consultation", &attrs)?;
    x.datetime("Date", e.start)?;
    x.number("DurationMinutes", u64::from(e.minutes))?;
    staff.write(x, "Author", e.clinician)?;
    if let Some(a) = e.appointment {
        guid_element(x, "AppointmentGuid", Guid::item(rid, "p", a))?;
    }
    x.start("Section", &[("Heading", "History")])?;
    x.text("FreeText", &[], &e.text)?;
    x.end("Section")?;
    for heading in ["Problem", "Examination", "Results", "Immunisation"] {
        let mut open = false;
        for (kind, _, guid) in links.iter().filter(|(_, h, _)| *h == heading) {
            if !open {
                x.start("Section", &[("Heading", heading)])?;
                open = true;
            }
            x.empty("Entry", &[("Type", kind), ("Guid", guid.text().as_str())])?;
        }
        if open {
            x.end("Section")?;
        }
    }
    x.end("Consultation")
}

fn event(x: &mut XmlOut, rid: &str, staff: &Staff, o: &Observation) -> io::Result<()> {
    let guid = Guid::item(rid, "o", o.id).text();
    let mut attrs = vec![("Guid", guid.as_str())];
    if o.laboratory {
        attrs.push(("Source", "Laboratory"));
    }
    attrs.extend(sensitivity_attrs(o.sensitivity));
    x.start("Event", &attrs)?;
    concept_codes(x, o.concept, o.coding)?;
    x.date("Date", o.date)?;
    match o.value {
        ObservationValue::BloodPressure {
            systolic,
            diastolic,
        } => {
            x.fixed(
                "Value",
                &[("Unit", "mm[Hg]"), ("Component", "Systolic")],
                i64::from(systolic),
                0,
            )?;
            x.fixed(
                "Value",
                &[("Unit", "mm[Hg]"), ("Component", "Diastolic")],
                i64::from(diastolic),
                0,
            )?;
        }
        ObservationValue::Quantity {
            value,
            scale,
            unit,
            comparator,
        } => {
            let mut attrs = vec![("Unit", unit)];
            if let Some(c) = comparator {
                attrs.push(("Comparator", c));
            }
            x.fixed("Value", &attrs, i64::from(value), scale)?;
        }
        ObservationValue::Text | ObservationValue::None => {}
    }
    if let Some(t) = &o.text {
        x.text("FreeText", &[], t)?;
    }
    if let Some(e) = o.consultation {
        guid_element(x, "ConsultationGuid", Guid::item(rid, "e", e))?;
    }
    staff.write(x, "Author", o.clinician)?;
    x.end("Event")
}

fn allergy(x: &mut XmlOut, rid: &str, staff: &Staff, a: &Allergy) -> io::Result<()> {
    let guid = Guid::item(rid, "a", a.id).text();
    x.start(
        "Allergy",
        &[
            ("Guid", guid.as_str()),
            ("Status", if a.active { "Active" } else { "Resolved" }),
        ],
    )?;
    concept_codes(x, a.concept, CodingStyle::Snomed)?;
    x.text("Category", &[], a.category)?;
    if let Some(reaction) = a.reaction {
        x.start("Reaction", &[])?;
        concept_codes(x, reaction, CodingStyle::Snomed)?;
        x.end("Reaction")?;
    }
    x.date("EnteredDate", a.recorded)?;
    staff.write(x, "Author", a.clinician)?;
    x.end("Allergy")
}

fn appointment(x: &mut XmlOut, rid: &str, staff: &Staff, a: &Appointment) -> io::Result<()> {
    let guid = Guid::item(rid, "p", a.id).text();
    let status = match a.status {
        AppointmentStatus::Booked => "Booked",
        AppointmentStatus::Fulfilled => "Attended",
        AppointmentStatus::NoShow => "DidNotAttend",
        AppointmentStatus::Cancelled => "Cancelled",
    };
    x.start(
        "Appointment",
        &[
            ("Guid", guid.as_str()),
            ("Status", status),
            ("Type", consultation_type(a.kind)),
        ],
    )?;
    x.datetime("Start", a.start)?;
    x.number("DurationMinutes", u64::from(a.minutes))?;
    x.date("BookedDate", a.booked.min(a.start.date))?;
    staff.write(x, "Clinician", a.clinician)?;
    x.end("Appointment")
}
