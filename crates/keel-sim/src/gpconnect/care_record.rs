//! `$gpc.getcarerecord`: the Access Record HTML answer (0.7.x, reference sheet §3.6) — a
//! `searchset` Bundle with the Patient, Organization and usual GP as the structured record
//! renders them, the generating Device, and a Composition holding the requested section, whose
//! XHTML narrative is the section's view built from the regenerated [`PatientRecord`].
//!
//! Each view follows the published HTML layout guide: an `<h1>` section title; the GP transfer
//! banner when the registration is in transit (and only items dated from the registration
//! on); per table an `<h2>` subsection title (multi-table views), the date banner, the
//! exclusion banner when sensitive or confidential items were left out, and the table with
//! rows most recent first — or the "No '…' data is recorded for this patient." paragraph.

use super::care_parameters::{CareRecordQuery, RecordSection, SECTION_SYSTEM};
use super::parameters::Period;
use super::structured::{
    Context, IN_TRANSIT_DAYS, is_sensitive_condition, medication_end, note_date, usual_gp,
    write_organization, write_patient, write_practitioner,
};
use super::xhtml::Xhtml;
use crate::codes;
use crate::date::{Date, DateTime};
use crate::json::{Json, write_fixed};
use crate::model::*;

const BUNDLE_PROFILE: &str = "http://fhir.nhs.net/StructureDefinition/gpconnect-searchset-bundle-1";
const COMPOSITION_PROFILE: &str =
    "http://fhir.nhs.net/StructureDefinition/gpconnect-carerecord-composition-1";
const DEVICE_ID: &str = "keel-sim-gpconnect";
/// The exclusion banner of the published layout guide.
pub const EXCLUDED_BANNER: &str =
    "Items excluded due to confidentiality and/or patient preferences";
/// The date banner when no `timePeriod` applies.
pub const ALL_RELEVANT: &str = "All relevant items";
/// Acute medication started this many days before the as-of date or later is "recent".
pub const RECENT_ACUTE_DAYS: i32 = 365;
/// Encounters in the summary view.
pub const SUMMARY_ENCOUNTERS: usize = 3;

/// One table of a view.
struct Table {
    /// The `<h2>` of a multi-table view.
    title: Option<&'static str>,
    columns: &'static [&'static str],
    rows: Vec<Row>,
    /// Items were left out as sensitive or confidential.
    excluded: bool,
}

impl Table {
    fn new(title: Option<&'static str>, columns: &'static [&'static str]) -> Self {
        Table {
            title,
            columns,
            rows: Vec::new(),
            excluded: false,
        }
    }

    fn push(&mut self, at: DateTime, cells: Vec<String>) {
        self.rows.push(Row { at, cells });
    }

    /// Most recent first; equal times keep record order.
    fn sorted(mut self) -> Self {
        self.rows.sort_by_key(|r| std::cmp::Reverse(r.at));
        self
    }
}

struct Row {
    at: DateTime,
    cells: Vec<String>,
}

/// Which items a view may show: inside the requested period and, for a record in transit,
/// dated from the registration on.
struct Window {
    period: Option<Period>,
    transferred: Option<Date>,
}

impl Window {
    fn keeps(&self, date: Date) -> bool {
        self.period.is_none_or(|p| p.contains(date)) && self.transferred.is_none_or(|t| date >= t)
    }
}

/// Renders the care record Bundle into `out`.
pub fn render(out: &mut Vec<u8>, ctx: &Context<'_>, q: &CareRecordQuery) {
    let div = narrative(ctx, q);
    let rid = ctx.record.id.as_str();
    let gp = usual_gp(ctx.practice, ctx.person_index);
    let mut j = Json::new(out);
    j.begin().kstr("resourceType", "Bundle");
    j.obj("meta")
        .arr("profile")
        .str(BUNDLE_PROFILE)
        .end_array()
        .end();
    j.kstr("type", "searchset").arr("entry");
    write_patient(&mut j, ctx, gp);
    write_organization(&mut j, ctx.practice);
    write_practitioner(&mut j, ctx.practice, gp);
    j.begin()
        .obj("resource")
        .kstr("resourceType", "Device")
        .kstr("id", DEVICE_ID)
        .obj("type")
        .kstr("text", "GP Connect provider system")
        .end()
        .kstr("manufacturer", "Keel")
        .kstr("model", "keel-sim GP Connect simulator")
        .end()
        .end();
    let section = q.section;
    j.begin()
        .obj("resource")
        .kstr("resourceType", "Composition");
    j.key("id").str2(rid, &format!("-{}", section.code()));
    j.obj("meta")
        .arr("profile")
        .str(COMPOSITION_PROFILE)
        .end_array()
        .end();
    j.kdate("date", ctx.as_of).obj("type").arr("coding");
    crate::fhir::coding(
        &mut j,
        keel_model::coding::systems::SNOMED_CT,
        "425173008",
        Some("record extract (record artifact)"),
    );
    j.end_array()
        .end()
        .kstr("title", "Patient Care Record")
        .kstr("status", "final")
        .reference("subject", "Patient", rid)
        .arr("author")
        .ref_value("Device", DEVICE_ID)
        .end_array()
        .reference("custodian", "Organization", ctx.practice.ods.as_str());
    j.arr("section")
        .begin()
        .kstr("title", section.title())
        .obj("code")
        .arr("coding");
    crate::fhir::coding(
        &mut j,
        SECTION_SYSTEM,
        section.code(),
        Some(section.title()),
    );
    j.end_array().kstr("text", section.title()).end();
    j.obj("text")
        .kstr("status", "generated")
        .kstr("div", &div)
        .end();
    j.end().end_array();
    j.end().end();
    j.end_array().end();
}

/// The section's XHTML view.
pub fn narrative(ctx: &Context<'_>, q: &CareRecordQuery) -> String {
    let registered = ctx.record.registration.start;
    let window = Window {
        period: q.period,
        transferred: (registered >= ctx.as_of.plus(-IN_TRANSIT_DAYS)).then_some(registered),
    };
    let v = Views { ctx, window };
    let tables = match q.section {
        RecordSection::Summary => vec![
            v.problems(true, "Active Problems and Issues"),
            v.recent_acute(),
            v.current_repeat(),
            v.allergies(true, "Current Allergies and Adverse Reactions"),
            v.encounters(Some(SUMMARY_ENCOUNTERS), Some("Last 3 Encounters")),
        ],
        RecordSection::Problems => vec![
            v.problems(true, "Active Problems and Issues"),
            v.problems(false, "Inactive Problems and Issues"),
        ],
        RecordSection::Allergies => vec![
            v.allergies(true, "Current Allergies and Adverse Reactions"),
            v.allergies(false, "Historical Allergies and Adverse Reactions"),
        ],
        RecordSection::Medications => {
            vec![v.recent_acute(), v.current_repeat(), v.past_medication()]
        }
        RecordSection::Encounters => vec![v.encounters(None, None)],
        RecordSection::ClinicalItems => vec![v.clinical_items()],
        RecordSection::Observations => vec![v.observations()],
        RecordSection::Immunisations => vec![v.immunisations()],
        RecordSection::AdministrativeItems => vec![v.administrative_items()],
        // The model holds no referrals.
        RecordSection::Referrals => vec![Table::new(None, &[])],
    };
    let mut h = Xhtml::new();
    h.element("h1", q.section.title());
    if let Some(start) = v.window.transferred {
        banner(
            &mut h,
            &format!(
                "Patient record transfer from previous GP Practice not yet complete; any information recorded before {} has been excluded",
                note_date(start)
            ),
        );
    }
    let dates = (q.section != RecordSection::Summary).then(|| date_banner(q.period));
    for table in &tables {
        if let Some(title) = table.title {
            h.open("div").element("h2", title);
        }
        if let Some(dates) = &dates {
            banner(&mut h, dates);
        }
        if table.excluded {
            banner(&mut h, EXCLUDED_BANNER);
        }
        if table.rows.is_empty() {
            let name = table.title.unwrap_or(q.section.title());
            banner(
                &mut h,
                &format!("No '{name}' data is recorded for this patient."),
            );
        } else {
            write_table(&mut h, table);
        }
        if table.title.is_some() {
            h.close("div");
        }
    }
    h.finish()
}

fn banner(h: &mut Xhtml, text: &str) {
    h.open("div").element("p", text).close("div");
}

fn date_banner(period: Option<Period>) -> String {
    match period.map(|p| (p.start, p.end)) {
        Some((Some(s), Some(e))) => {
            format!("For the period {} to {}", note_date(s), note_date(e))
        }
        Some((Some(s), None)) => format!("All data items from {}", note_date(s)),
        Some((None, Some(e))) => format!("All data items until {}", note_date(e)),
        _ => ALL_RELEVANT.to_string(),
    }
}

fn write_table(h: &mut Xhtml, table: &Table) {
    h.open("table").open("thead").open("tr");
    for c in table.columns {
        h.element("th", c);
    }
    h.close("tr").close("thead").open("tbody");
    for row in &table.rows {
        h.open("tr");
        for cell in &row.cells {
            h.element("td", cell);
        }
        h.close("tr");
    }
    h.close("tbody").close("table");
}

fn day(date: Date) -> DateTime {
    DateTime::new(date, 0)
}

fn date_text(date: Option<Date>) -> String {
    date.map(note_date).unwrap_or_default()
}

fn datetime_text(at: DateTime) -> String {
    let mut hhmm = Vec::with_capacity(5);
    at.write_hhmm(&mut hhmm);
    format!("{} {}", note_date(at.date), String::from_utf8_lossy(&hhmm))
}

/// The tables of the views, from one record.
struct Views<'a> {
    ctx: &'a Context<'a>,
    window: Window,
}

impl Views<'_> {
    fn clinical(&self) -> &ClinicalRecord {
        &self.ctx.record.clinical
    }

    fn staff_name(&self, staff: usize) -> String {
        self.ctx
            .practice
            .staff
            .get(staff)
            .map(|s| s.name.text())
            .unwrap_or_default()
    }

    fn problems(&self, active: bool, title: &'static str) -> Table {
        let columns: &'static [&'static str] = if active {
            &["Start Date", "Entry", "Significance"]
        } else {
            &["Start Date", "End Date", "Entry", "Significance"]
        };
        let mut t = Table::new(Some(title), columns);
        for c in &self.clinical().conditions {
            let ended = match c.status {
                ConditionStatus::Active => None,
                ConditionStatus::Resolved(d) => Some(d.max(c.onset)),
            };
            if ended.is_none() != active || !self.window.keeps(c.onset) {
                continue;
            }
            if c.sensitivity.is_some() {
                t.excluded = true;
                continue;
            }
            let significance = if c.chronic { "Major" } else { "Minor" }.to_string();
            let mut cells = vec![note_date(c.onset)];
            if !active {
                cells.push(date_text(ended));
            }
            cells.extend([c.concept.display.to_string(), significance]);
            t.push(day(c.onset), cells);
        }
        t.sorted()
    }

    fn allergies(&self, current: bool, title: &'static str) -> Table {
        let mut t = Table::new(Some(title), &["Start Date", "Details"]);
        for a in &self.clinical().allergies {
            if a.active != current || !self.window.keeps(a.recorded) {
                continue;
            }
            let details = match a.reaction {
                Some(r) => format!("{} (reaction: {})", a.concept.display, r.display),
                None => a.concept.display.to_string(),
            };
            t.push(day(a.recorded), vec![note_date(a.recorded), details]);
        }
        t.sorted()
    }

    /// Medication courses in the window, sensitive ones counted out.
    fn medication(&self, t: &mut Table, pick: impl Fn(&MedicationCourse) -> bool) -> Vec<usize> {
        let mut kept = Vec::new();
        for (i, m) in self.clinical().medications.iter().enumerate() {
            if !pick(m) || !self.window.keeps(m.start) {
                continue;
            }
            if m.indication
                .is_some_and(|c| is_sensitive_condition(self.ctx.record, c))
            {
                t.excluded = true;
                continue;
            }
            kept.push(i);
        }
        kept
    }

    fn recent_acute(&self) -> Table {
        let mut t = Table::new(
            Some("Recent Acute Medication"),
            &[
                "Start Date",
                "Type",
                "Medication Item",
                "Dosage Instruction",
                "Quantity",
                "Scheduled End Date",
            ],
        );
        let since = self.ctx.as_of.plus(-RECENT_ACUTE_DAYS);
        let meds = &self.clinical().medications;
        for i in self.medication(&mut t, |m| !m.repeat && m.start > since) {
            let m = &meds[i];
            t.push(
                day(m.start),
                vec![
                    note_date(m.start),
                    "Acute".into(),
                    m.drug.name.into(),
                    m.dose.into(),
                    quantity(m),
                    date_text(medication_end(m)),
                ],
            );
        }
        t.sorted()
    }

    fn current_repeat(&self) -> Table {
        let mut t = Table::new(
            Some("Current Repeat Medication"),
            &[
                "Start Date",
                "Type",
                "Medication Item",
                "Dosage Instruction",
                "Quantity",
                "Last Issued Date",
                "Number of Prescriptions Issued",
                "Max Issues",
                "Review Date",
            ],
        );
        let meds = &self.clinical().medications;
        let current = |m: &MedicationCourse| m.repeat && m.status == MedicationStatus::Active;
        for i in self.medication(&mut t, current) {
            let m = &meds[i];
            let issued = if m.issues.is_empty() {
                String::new()
            } else {
                m.issues.len().to_string()
            };
            t.push(
                day(m.start),
                vec![
                    note_date(m.start),
                    "Repeat".into(),
                    m.drug.name.into(),
                    m.dose.into(),
                    quantity(m),
                    date_text(m.issues.last().copied()),
                    issued,
                    m.authorised_issues.to_string(),
                    date_text(m.review_date),
                ],
            );
        }
        t.sorted()
    }

    fn past_medication(&self) -> Table {
        let mut t = Table::new(
            Some("Past Medication"),
            &[
                "Start Date",
                "Type",
                "Medication Item",
                "Dosage Instruction",
                "Quantity",
                "End Date",
                "Status",
            ],
        );
        let meds = &self.clinical().medications;
        for i in self.medication(&mut t, |m| m.status != MedicationStatus::Active) {
            let m = &meds[i];
            let status = match m.status {
                MedicationStatus::Stopped(_) => "Discontinued",
                _ => "Naturally ended",
            };
            t.push(
                day(m.start),
                vec![
                    note_date(m.start),
                    if m.repeat { "Repeat" } else { "Acute" }.into(),
                    m.drug.name.into(),
                    m.dose.into(),
                    quantity(m),
                    date_text(medication_end(m)),
                    status.into(),
                ],
            );
        }
        t.sorted()
    }

    fn encounters(&self, most_recent: Option<usize>, title: Option<&'static str>) -> Table {
        let mut t = Table::new(title, &["Date", "Title", "Clinician", "Details"]);
        for e in &self.clinical().consultations {
            if !self.window.keeps(e.start.date) {
                continue;
            }
            if e.confidential {
                t.excluded = true;
                continue;
            }
            let kind = match e.kind {
                ConsultationKind::Surgery => &codes::CONSULTATION,
                ConsultationKind::Telephone => &codes::TELEPHONE_ENCOUNTER,
                ConsultationKind::HomeVisit => &codes::HOME_VISIT,
            };
            t.push(
                e.start,
                vec![
                    datetime_text(e.start),
                    kind.display.into(),
                    self.staff_name(e.clinician),
                    e.text.clone(),
                ],
            );
        }
        let mut t = t.sorted();
        if let Some(n) = most_recent {
            t.rows.truncate(n);
        }
        t
    }

    fn clinical_items(&self) -> Table {
        let mut t = Table::new(None, &["Date", "Entry", "Details"]);
        for c in &self.clinical().conditions {
            if !self.window.keeps(c.onset) {
                continue;
            }
            if c.sensitivity.is_some() {
                t.excluded = true;
                continue;
            }
            let details = match c.status {
                ConditionStatus::Active => "Active problem".to_string(),
                ConditionStatus::Resolved(d) => format!("Resolved {}", note_date(d.max(c.onset))),
            };
            t.push(
                day(c.onset),
                vec![note_date(c.onset), c.concept.display.into(), details],
            );
        }
        for o in self
            .clinical()
            .observations
            .iter()
            .filter(|o| matches!(o.value, ObservationValue::None | ObservationValue::Text))
        {
            if !self.window.keeps(o.date) {
                continue;
            }
            if o.sensitivity.is_some() {
                t.excluded = true;
                continue;
            }
            t.push(
                day(o.date),
                vec![
                    note_date(o.date),
                    o.concept.display.into(),
                    o.text.clone().unwrap_or_default(),
                ],
            );
        }
        t.sorted()
    }

    fn observations(&self) -> Table {
        let mut t = Table::new(None, &["Date", "Entry", "Value", "Details"]);
        for o in &self.clinical().observations {
            let value = match o.value {
                ObservationValue::BloodPressure {
                    systolic,
                    diastolic,
                } => format!("{systolic}/{diastolic} mm[Hg]"),
                ObservationValue::Quantity {
                    value,
                    scale,
                    unit,
                    comparator,
                } => {
                    let mut number = Vec::new();
                    write_fixed(&mut number, i64::from(value), scale);
                    format!(
                        "{}{} {unit}",
                        comparator.unwrap_or(""),
                        String::from_utf8_lossy(&number)
                    )
                }
                ObservationValue::None | ObservationValue::Text => continue,
            };
            if !self.window.keeps(o.date) {
                continue;
            }
            if o.sensitivity.is_some() {
                t.excluded = true;
                continue;
            }
            let details = if o.laboratory {
                "Laboratory result"
            } else {
                ""
            };
            t.push(
                day(o.date),
                vec![
                    note_date(o.date),
                    o.concept.display.into(),
                    value,
                    details.into(),
                ],
            );
        }
        t.sorted()
    }

    fn immunisations(&self) -> Table {
        let mut t = Table::new(None, &["Date", "Vaccination", "Product"]);
        for i in &self.clinical().immunisations {
            if !self.window.keeps(i.date) {
                continue;
            }
            t.push(
                day(i.date),
                vec![
                    note_date(i.date),
                    i.procedure.display.into(),
                    i.product.into(),
                ],
            );
        }
        t.sorted()
    }

    fn administrative_items(&self) -> Table {
        let mut t = Table::new(None, &["Date", "Entry", "Details"]);
        let registration = &self.ctx.record.registration;
        if self.window.keeps(registration.start) {
            t.push(
                day(registration.start),
                vec![
                    note_date(registration.start),
                    "Registration".into(),
                    format!("{} registration", registration.kind.key()),
                ],
            );
        }
        for a in &self.clinical().appointments {
            if !self.window.keeps(a.start.date) {
                continue;
            }
            let status = match a.status {
                AppointmentStatus::Booked => "Booked",
                AppointmentStatus::Fulfilled => "Attended",
                AppointmentStatus::NoShow => "Did not attend",
                AppointmentStatus::Cancelled => "Cancelled",
            };
            t.push(
                a.start,
                vec![
                    datetime_text(a.start),
                    "Appointment".into(),
                    format!(
                        "{status}: {} minutes ({}) with {}",
                        a.minutes,
                        a.kind.key(),
                        self.staff_name(a.clinician)
                    ),
                ],
            );
        }
        t.sorted()
    }
}

fn quantity(m: &MedicationCourse) -> String {
    format!("{} {}", m.quantity, m.drug.unit)
}
