//! The record in the API's JSON: demographics, the journal, medication, appointments and
//! tasks, generated entries and written ones merged. Written with the crate's streaming
//! [`Json`] writer, so a 5,000-event journal is one pass into one buffer.
//!
//! Status vocabulary and its mapping from the model are in the module docs of [`crate::tpp`].

use super::overlay::{PatientWrites, WrittenDetail, WrittenEvent};
use super::query::{EventType, JournalFilter};
use super::rows::{RowKind, item_row};
use super::writes::{CodedItem, When};
use crate::codes::{CodeOrigin, Concept, Drug};
use crate::date::{Date, DateTime};
use crate::json::Json;
use crate::model::*;

/// What the journal of one patient is rendered from.
pub struct PatientContext<'a> {
    pub practice: &'a Practice,
    pub record: &'a PatientRecord,
    pub row: u64,
}

impl PatientContext<'_> {
    fn item(&self, kind: RowKind, n: u32) -> u64 {
        item_row(self.row, kind, u64::from(n))
    }
}

/// A staff member's RowIdentifier: `practice index × 1000 + staff index + 1`.
pub fn staff_row(practice: &Practice, staff: usize) -> u64 {
    practice.index as u64 * 1000 + staff as u64 + 1
}

fn hhmm(minute: u16) -> String {
    let mut out = Vec::with_capacity(5);
    DateTime::new(Date(0), minute).write_hhmm(&mut out);
    String::from_utf8(out).unwrap_or_default()
}

fn scheme_name(scheme: LegacyScheme) -> &'static str {
    match scheme {
        LegacyScheme::Ctv3 => "CTV3",
        LegacyScheme::ReadV2 => "Read2",
    }
}

/// `"Codes":[...]`: the legacy (CTV3 or Read v2) code first, SNOMED CT beside it when the
/// practice recorded both.
fn codes(j: &mut Json, concept: &Concept, style: CodingStyle) {
    j.arr("Codes");
    if let Some((scheme, (code, term))) = style.legacy(concept) {
        j.begin()
            .kstr("Scheme", scheme_name(scheme))
            .kstr("Code", code)
            .kstr("Term", term)
            .end();
    }
    if style.has_snomed(concept) {
        j.begin()
            .kstr("Scheme", "SNOMED")
            .kstr("Code", concept.snomed)
            .kstr("Term", concept.display)
            .end();
    }
    j.end_array();
}

fn drug(j: &mut Json, d: &Drug) {
    let scheme = match d.origin() {
        CodeOrigin::Verified => "dm+d",
        CodeOrigin::Synthetic => "dm+d (synthetic)",
    };
    j.obj("Drug")
        .kstr("Scheme", scheme)
        .kstr("Code", d.code())
        .kstr("Name", d.name)
        .end();
}

fn clinician(j: &mut Json, practice: &Practice, staff: usize, names: &[String]) {
    let at = staff.min(practice.staff.len().saturating_sub(1));
    j.ku64("ClinicianStaffRowIdentifier", staff_row(practice, at));
    if let Some(name) = names.get(at) {
        j.kstr("ClinicianName", name);
    }
}

fn staff_names(practice: &Practice) -> Vec<String> {
    practice.staff.iter().map(|s| s.name.text()).collect()
}

fn gender_name(g: Gender) -> &'static str {
    match g {
        Gender::Female => "Female",
        Gender::Male => "Male",
        Gender::Other => "Other",
        Gender::Unknown => "Unknown",
    }
}

fn registration_status(r: &PatientRecord) -> &'static str {
    match r.registration.end {
        None => "Registered",
        Some((_, RegistrationEnd::Died)) => "Deceased",
        Some(_) => "Deregistered",
    }
}

/// One patient in a search result list.
pub fn patient_summary(j: &mut Json, record: &PatientRecord, row: u64) {
    j.begin().ku64("PatientRowIdentifier", row);
    j.kopt("NhsNumber", record.nhs_number.as_ref().map(|n| n.as_str()));
    j.kstr("Surname", &record.name.family).arr("Forenames");
    for g in &record.name.given {
        j.str(g);
    }
    j.end_array()
        .kdate("DateOfBirth", record.birth_date)
        .kstr("Gender", gender_name(record.gender))
        .kstr("RegistrationStatus", registration_status(record))
        .end();
}

/// `GET .../patients/{row}`.
pub fn demographics(out: &mut Vec<u8>, ctx: &PatientContext) {
    let r = ctx.record;
    let mut j = Json::new(out);
    j.begin()
        .ku64("PatientRowIdentifier", ctx.row)
        .kstr("OrganisationUnit", ctx.practice.ods.as_str())
        .kstr("LocalPatientNumber", &r.local_number)
        .kopt("NhsNumber", r.nhs_number.as_ref().map(|n| n.as_str()))
        .kstr("NhsNumberStatus", r.nhs_status.code())
        .kopt("Title", r.name.prefix)
        .arr("Forenames");
    for g in &r.name.given {
        j.str(g);
    }
    j.end_array()
        .kstr("Surname", &r.name.family)
        .kdate("DateOfBirth", r.birth_date);
    if let Some(d) = r.death_date {
        j.kdate("DateOfDeath", d);
    }
    j.kstr("Gender", gender_name(r.gender))
        .kstr(
            "Sex",
            match r.sex {
                Sex::Female => "Female",
                Sex::Male => "Male",
            },
        )
        .obj("Address")
        .arr("Lines");
    for l in &r.address.lines {
        j.str(l);
    }
    j.end_array()
        .kstr("Locality", r.address.district)
        .kstr("Town", r.address.city)
        .kstr("Postcode", &r.address.postcode)
        .end()
        .arr("ContactDetails");
    for t in &r.telecom {
        let kind = match t.kind {
            TelecomKind::Mobile => "Mobile",
            TelecomKind::Home => "Home telephone",
            TelecomKind::Email => "Email",
        };
        j.begin().kstr("Type", kind).kstr("Value", &t.value).end();
    }
    j.end_array()
        .obj("Registration")
        .kstr(
            "Type",
            match r.registration.kind {
                RegistrationType::Regular => "Regular",
                RegistrationType::Temporary => "Temporary",
            },
        )
        .kstr("Status", registration_status(r))
        .kdate("StartDate", r.registration.start);
    if let Some((end, why)) = r.registration.end {
        j.kdate("EndDate", end).kstr("EndReason", end_reason(why));
    }
    j.end().end();
}

fn end_reason(why: RegistrationEnd) -> &'static str {
    match why {
        RegistrationEnd::Died => "Death",
        RegistrationEnd::LeftArea => "Left area",
        RegistrationEnd::TransferredWithinPcn => "Registered elsewhere",
        RegistrationEnd::Embarkation => "Embarkation",
        RegistrationEnd::TemporaryEnded => "Temporary registration ended",
        RegistrationEnd::Removed => "Removed from list",
    }
}

/// Problem status: `Active`; a resolved long-term problem is `Significant past`, a resolved
/// episode `Past`.
fn problem_status(c: &Condition) -> &'static str {
    match c.status {
        ConditionStatus::Active => "Active",
        ConditionStatus::Resolved(_) if c.chronic => "Significant past",
        ConditionStatus::Resolved(_) => "Past",
    }
}

/// Medication status and end: `Current`; `Ended` (a course finished as planned: the last
/// issue, or the start when never issued); `Discontinued` on the stop date.
fn medication_status(m: &MedicationCourse) -> (&'static str, Option<Date>) {
    match m.status {
        MedicationStatus::Active => ("Current", None),
        MedicationStatus::Completed => ("Ended", Some(m.issues.last().copied().unwrap_or(m.start))),
        MedicationStatus::Stopped(d) => ("Discontinued", Some(d)),
    }
}

/// The model records no reason for stopping; every discontinuation carries this one.
pub const DISCONTINUATION_REASON: &str = "Stopped by clinician";

fn consultation_type(k: ConsultationKind) -> &'static str {
    match k {
        ConsultationKind::Surgery => "Surgery",
        ConsultationKind::Telephone => "Telephone",
        ConsultationKind::HomeVisit => "HomeVisit",
    }
}

/// One journal event before rendering: what it is, and the sort key.
#[derive(Clone, Copy)]
enum Source<'a> {
    Consultation(&'a Consultation),
    Problem(&'a Condition),
    CodedEntry(&'a Observation),
    Medication(&'a MedicationCourse),
    Issue {
        course: &'a MedicationCourse,
        ordinal: u32,
    },
    Allergy(&'a Allergy),
    Immunisation(&'a Immunisation),
    Written(&'a WrittenEvent),
}

struct Event<'a> {
    date: Date,
    minute: Option<u16>,
    row: u64,
    confidential: bool,
    source: Source<'a>,
}

/// The events that pass the filter, and the count of confidential ones withheld.
struct Collector<'a, 'f> {
    filter: &'f JournalFilter,
    sees_confidential: bool,
    withheld: u64,
    events: Vec<Event<'a>>,
}

impl<'a> Collector<'a, '_> {
    fn add(
        &mut self,
        t: EventType,
        (date, minute): (Date, Option<u16>),
        row: u64,
        confidential: bool,
        reference: Option<&str>,
        source: Source<'a>,
    ) {
        let f = self.filter;
        if !(f.wants_type(t) && f.wants_date(date) && f.wants_reference(reference)) {
            return;
        }
        if confidential && !self.sees_confidential {
            self.withheld += 1;
            return;
        }
        self.events.push(Event {
            date,
            minute,
            row,
            confidential,
            source,
        });
    }
}

fn written_type(e: &WrittenEvent) -> EventType {
    match e.detail {
        WrittenDetail::Consultation { .. } => EventType::Consultation,
        WrittenDetail::CodedEntry(_) => EventType::CodedEntry,
        WrittenDetail::Document { .. } => EventType::Document,
    }
}

/// `GET .../journal`: events oldest first (by date, time when known, then RowIdentifier).
/// Confidential events are left out, and counted in `WithheldConfidentialEvents`, unless
/// `sees_confidential`.
pub fn journal(
    out: &mut Vec<u8>,
    ctx: &PatientContext,
    writes: &PatientWrites,
    filter: &JournalFilter,
    sees_confidential: bool,
) {
    let c = &ctx.record.clinical;
    let mut events = Collector {
        filter,
        sees_confidential,
        withheld: 0,
        events: Vec::with_capacity(c.entry_count() as usize + writes.events.len()),
    };
    for x in &c.consultations {
        let row = ctx.item(RowKind::Consultation, x.id);
        let at = (x.start.date, Some(x.start.minute));
        events.add(
            EventType::Consultation,
            at,
            row,
            x.confidential,
            None,
            Source::Consultation(x),
        );
    }
    for x in &c.conditions {
        let row = ctx.item(RowKind::Problem, x.id);
        let confidential = x.sensitivity.is_some();
        events.add(
            EventType::Problem,
            (x.recorded, None),
            row,
            confidential,
            None,
            Source::Problem(x),
        );
    }
    for x in &c.observations {
        let row = ctx.item(RowKind::CodedEntry, x.id);
        let confidential = x.sensitivity.is_some();
        events.add(
            EventType::CodedEntry,
            (x.date, None),
            row,
            confidential,
            None,
            Source::CodedEntry(x),
        );
    }
    let mut ordinal = 0u32;
    for x in &c.medications {
        let row = ctx.item(RowKind::Medication, x.id);
        events.add(
            EventType::Medication,
            (x.start, None),
            row,
            false,
            None,
            Source::Medication(x),
        );
        for &date in &x.issues {
            ordinal += 1;
            let row = ctx.item(RowKind::Issue, ordinal);
            let source = Source::Issue { course: x, ordinal };
            events.add(EventType::Issue, (date, None), row, false, None, source);
        }
    }
    for x in &c.allergies {
        let row = ctx.item(RowKind::Allergy, x.id);
        events.add(
            EventType::Allergy,
            (x.recorded, None),
            row,
            false,
            None,
            Source::Allergy(x),
        );
    }
    for x in &c.immunisations {
        let row = ctx.item(RowKind::Immunisation, x.id);
        events.add(
            EventType::Immunisation,
            (x.date, None),
            row,
            false,
            None,
            Source::Immunisation(x),
        );
    }
    for x in &writes.events {
        let at = (x.when.date, x.when.minute);
        let reference = x.external_reference.as_deref();
        events.add(
            written_type(x),
            at,
            x.row,
            x.confidential,
            reference,
            Source::Written(x),
        );
    }
    let Collector {
        withheld,
        mut events,
        ..
    } = events;
    events.sort_unstable_by_key(|e| (e.date, e.minute.unwrap_or(0), e.row));

    let names = staff_names(ctx.practice);
    let mut j = Json::new(out);
    j.begin()
        .ku64("PatientRowIdentifier", ctx.row)
        .ku64("EventCount", events.len() as u64)
        .ku64("WithheldConfidentialEvents", withheld)
        .arr("Events");
    for e in &events {
        event(&mut j, ctx, &names, e);
    }
    j.end_array().end();
}

fn event(j: &mut Json, ctx: &PatientContext, names: &[String], e: &Event) {
    let p = ctx.practice;
    j.begin().ku64("RowIdentifier", e.row);
    let kind = match e.source {
        Source::Consultation(_) => EventType::Consultation,
        Source::Problem(_) => EventType::Problem,
        Source::CodedEntry(_) => EventType::CodedEntry,
        Source::Medication(_) => EventType::Medication,
        Source::Issue { .. } => EventType::Issue,
        Source::Allergy(_) => EventType::Allergy,
        Source::Immunisation(_) => EventType::Immunisation,
        Source::Written(w) => written_type(w),
    };
    j.kstr("EventType", kind.name()).kdate("Date", e.date);
    if let Some(m) = e.minute {
        j.kstr("Time", &hhmm(m));
    }
    j.kbool("Confidential", e.confidential);
    match e.source {
        Source::Consultation(x) => {
            clinician(j, p, x.clinician, names);
            j.kstr("ConsultationType", consultation_type(x.kind))
                .ku64("DurationMinutes", u64::from(x.minutes));
            if let Some(a) = x.appointment {
                j.ku64(
                    "AppointmentRowIdentifier",
                    ctx.item(RowKind::Appointment, a),
                );
            }
            j.kstr("Text", &x.text);
        }
        Source::Problem(x) => {
            clinician(j, p, x.clinician, names);
            consultation_link(j, ctx, x.consultation);
            codes(j, x.concept, x.coding);
            j.kstr("ProblemStatus", problem_status(x))
                .kdate("OnsetDate", x.onset);
            if let ConditionStatus::Resolved(end) = x.status {
                j.kdate("EndDate", end);
            }
        }
        Source::CodedEntry(x) => {
            clinician(j, p, x.clinician, names);
            consultation_link(j, ctx, x.consultation);
            codes(j, x.concept, x.coding);
            observation_value(j, x);
            j.kstr(
                "Source",
                if x.laboratory {
                    "Laboratory"
                } else {
                    "Practice"
                },
            );
        }
        Source::Medication(x) => {
            clinician(j, p, x.clinician, names);
            drug(j, x.drug);
            let (status, _) = medication_status(x);
            j.kstr(
                "PrescriptionType",
                if x.repeat { "Repeat" } else { "Acute" },
            )
            .kstr("MedicationStatus", status);
        }
        Source::Issue {
            course, ordinal, ..
        } => {
            clinician(j, p, course.clinician, names);
            drug(j, course.drug);
            j.ku64(
                "MedicationRowIdentifier",
                ctx.item(RowKind::Medication, course.id),
            )
            .ku64("Quantity", u64::from(course.quantity))
            .kstr("QuantityUnit", course.drug.unit)
            .ku64("IssueNumber", u64::from(ordinal));
        }
        Source::Allergy(x) => {
            clinician(j, p, x.clinician, names);
            codes(j, x.concept, CodingStyle::Snomed);
            j.kstr(
                "AllergyStatus",
                if x.active { "Active" } else { "Inactive" },
            )
            .kstr("Category", x.category);
            if let Some(r) = x.reaction {
                j.key("Reaction").begin();
                codes(j, r, CodingStyle::Snomed);
                j.end();
            }
        }
        Source::Immunisation(x) => {
            clinician(j, p, x.clinician, names);
            consultation_link(j, ctx, x.consultation);
            codes(j, x.procedure, CodingStyle::Snomed);
            j.kstr("Product", x.product);
        }
        Source::Written(w) => written(j, w),
    }
    j.end();
}

fn consultation_link(j: &mut Json, ctx: &PatientContext, consultation: Option<u32>) {
    if let Some(c) = consultation {
        j.ku64(
            "ConsultationRowIdentifier",
            ctx.item(RowKind::Consultation, c),
        );
    }
}

fn observation_value(j: &mut Json, x: &Observation) {
    match x.value {
        ObservationValue::BloodPressure {
            systolic,
            diastolic,
        } => {
            j.obj("Value")
                .ku64("Systolic", u64::from(systolic))
                .ku64("Diastolic", u64::from(diastolic))
                .kstr("Unit", "mmHg")
                .end();
        }
        ObservationValue::Quantity {
            value,
            scale,
            unit,
            comparator,
        } => {
            j.obj("Value").key("Number").fixed(i64::from(value), scale);
            j.kstr("Unit", unit).kopt("Comparator", comparator).end();
        }
        ObservationValue::None | ObservationValue::Text => {}
    }
    j.kopt("Text", x.text.as_deref());
}

fn written_item(j: &mut Json, item: &CodedItem) {
    codes(j, item.concept, item.coding);
    if let Some(q) = &item.value {
        j.obj("Value").key("Number").fixed(q.value, q.scale);
        j.kstr("Unit", &q.unit).end();
    }
    j.kopt("Text", item.text.as_deref());
}

fn written(j: &mut Json, w: &WrittenEvent) {
    j.kstr("EnteredBy", w.entered_by);
    if let Some(c) = w.consultation_row {
        j.ku64("ConsultationRowIdentifier", c);
    }
    match &w.detail {
        WrittenDetail::Consultation { kind, text } => {
            j.kstr("ConsultationType", consultation_type(*kind))
                .kstr("Text", text);
        }
        WrittenDetail::CodedEntry(item) => written_item(j, item),
        WrittenDetail::Document {
            title,
            mime_type,
            content,
        } => {
            j.ku64("DocumentRowIdentifier", w.row)
                .kstr("Title", title)
                .kstr("MimeType", mime_type)
                .ku64("SizeBytes", content.len() as u64);
        }
    }
    j.kopt("ExternalReference", w.external_reference.as_deref());
}

/// `GET .../medication`: every course with its issues, in start order.
pub fn medication(out: &mut Vec<u8>, ctx: &PatientContext) {
    let names = staff_names(ctx.practice);
    let mut j = Json::new(out);
    j.begin()
        .ku64("PatientRowIdentifier", ctx.row)
        .arr("Medication");
    let mut ordinal = 0u32;
    for m in &ctx.record.clinical.medications {
        let (status, end) = medication_status(m);
        j.begin()
            .ku64("RowIdentifier", ctx.item(RowKind::Medication, m.id));
        drug(&mut j, m.drug);
        clinician(&mut j, ctx.practice, m.clinician, &names);
        j.kstr("Dosage", m.dose)
            .ku64("Quantity", u64::from(m.quantity))
            .kstr("QuantityUnit", m.drug.unit)
            .kstr(
                "PrescriptionType",
                if m.repeat { "Repeat" } else { "Acute" },
            )
            .kstr("Status", status)
            .kdate("StartDate", m.start);
        if let Some(end) = end {
            j.kdate("EndDate", end);
        }
        if matches!(m.status, MedicationStatus::Stopped(_)) {
            j.kstr("DiscontinuationReason", DISCONTINUATION_REASON);
        }
        if m.repeat {
            j.ku64("AuthorisedIssues", u64::from(m.authorised_issues));
        }
        if let Some(r) = m.review_date {
            j.kdate("ReviewDate", r);
        }
        j.arr("Issues");
        for &date in &m.issues {
            ordinal += 1;
            j.begin()
                .ku64("RowIdentifier", ctx.item(RowKind::Issue, ordinal))
                .kdate("Date", date)
                .ku64("Quantity", u64::from(m.quantity))
                .end();
        }
        j.end_array().end();
    }
    j.end_array().end();
}

fn appointment_status(s: AppointmentStatus) -> &'static str {
    match s {
        AppointmentStatus::Booked => "Booked",
        AppointmentStatus::Fulfilled => "Attended",
        AppointmentStatus::NoShow => "DNA",
        AppointmentStatus::Cancelled => "Cancelled",
    }
}

fn local(at: DateTime) -> String {
    format!("{}T{}", at.date, hhmm(at.minute))
}

/// `GET .../appointments`, in start order.
pub fn appointments(out: &mut Vec<u8>, ctx: &PatientContext) {
    let names = staff_names(ctx.practice);
    let mut j = Json::new(out);
    j.begin()
        .ku64("PatientRowIdentifier", ctx.row)
        .arr("Appointments");
    for a in &ctx.record.clinical.appointments {
        j.begin()
            .ku64("RowIdentifier", ctx.item(RowKind::Appointment, a.id))
            .kstr("Start", &local(a.start))
            .ku64("DurationMinutes", u64::from(a.minutes))
            .kstr("AppointmentType", consultation_type(a.kind))
            .kstr("Status", appointment_status(a.status))
            .kdate("BookedDate", a.booked);
        clinician(&mut j, ctx.practice, a.clinician, &names);
        j.end();
    }
    j.end_array().end();
}

fn task_status(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Requested => "Outstanding",
        TaskStatus::InProgress => "In progress",
        TaskStatus::Completed => "Completed",
        TaskStatus::Cancelled => "Cancelled",
    }
}

fn when_text(w: When) -> String {
    match w.minute {
        Some(m) => format!("{}T{}", w.date, hhmm(m)),
        None => w.date.to_string(),
    }
}

/// `GET .../tasks`: generated tasks, then written ones, each in creation order; with
/// `reference`, only written tasks carrying it.
pub fn tasks(
    out: &mut Vec<u8>,
    ctx: &PatientContext,
    writes: &PatientWrites,
    reference: Option<&str>,
) {
    let p = ctx.practice;
    let names = staff_names(p);
    let mut j = Json::new(out);
    j.begin().ku64("PatientRowIdentifier", ctx.row).arr("Tasks");
    if reference.is_none() {
        for t in &ctx.record.clinical.tasks {
            let requester = t.requester.min(p.staff.len().saturating_sub(1));
            j.begin()
                .ku64("RowIdentifier", ctx.item(RowKind::Task, t.id))
                .kstr("Created", &local(t.created))
                .kstr("Description", t.description)
                .kstr("Status", task_status(t.status))
                .kbool("Urgent", t.urgent)
                .ku64(
                    "AssignedToStaffRowIdentifier",
                    staff_row(p, t.owner.min(p.staff.len().saturating_sub(1))),
                )
                .ku64("RequestedByStaffRowIdentifier", staff_row(p, requester));
            if let Some(name) = names.get(requester) {
                j.kstr("RequestedBy", name);
            }
            j.end();
        }
    }
    for t in writes
        .tasks
        .iter()
        .filter(|t| reference.is_none_or(|r| r == t.external_reference))
    {
        j.begin()
            .ku64("RowIdentifier", t.row)
            .kstr("Created", &when_text(t.when))
            .kstr("Description", &t.description)
            .kstr("Status", "Outstanding")
            .kbool("Urgent", t.urgent)
            .kstr("RequestedBy", t.entered_by)
            .kstr("ExternalReference", &t.external_reference)
            .end();
    }
    j.end_array().end();
}
