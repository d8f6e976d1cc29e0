//! `$gpc.getstructuredrecord`: finding the patient and rendering the structured record
//! Bundle (reference sheet §3.3–3.4) from a regenerated [`PatientRecord`], streamed with
//! [`Json`] so a 5,000-entry record renders in a few milliseconds.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use keel_model::NhsNumber;
use keel_model::coding::systems as cs;

use super::error::GpcError;
use super::parameters::{ClinicalArea, ProblemStatus, StructuredQuery};
use crate::codes::{self, Concept};
use crate::date::Date;
use crate::fhir::{address_json, coding, concept_cc, drug_cc, name_json, simple_cc};
use crate::json::Json;
use crate::model::*;
use crate::records::{PracticeRecords, RecordRef};

/// A registration this many days before the population's as-of date or later is still "in
/// transit" (GP2GP transfer not yet integrated): every List carries `data-in-transit`.
pub const IN_TRANSIT_DAYS: i32 = 28;

const BUNDLE_PROFILE: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-StructuredRecord-Bundle-1";
const LIST_PROFILE: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-GPC-List-1";
const PROFILE_BASE: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/";
const CLINICAL_SETTING_EXT: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-ClinicalSetting-1";
const LIST_WARNING_EXT: &str =
    "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-ListWarningCode-1";
const EMPTY_REASON_SYSTEM: &str =
    "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-ListEmptyReasonCode-1";
const NHS_VERIFICATION_EXT: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1";
const NHS_VERIFICATION_SYSTEM: &str =
    "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1";
const PROBLEM_SIGNIFICANCE_EXT: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-ProblemSignificance-1";
const PRESCRIPTION_TYPE_EXT: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-PrescriptionType-1";
const PRESCRIPTION_TYPE_SYSTEM: &str =
    "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-PrescriptionType-1";
const LAST_ISSUE_EXT: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-MedicationStatementLastIssueDate-1";
const SPINE_WARNING_SYSTEM: &str = super::error::SPINE_ERROR_SYSTEM;
const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";

const CONFIDENTIAL_NOTE: &str = "Items excluded due to confidentiality and/or patient preferences.";
const EMPTY_NOTE: &str = "Information not available";

/// `List.code` and `List.title` of a clinical area's primary List (§3.4).
fn list_heading(area: ClinicalArea) -> (&'static str, &'static str) {
    match area {
        ClinicalArea::Allergies => ("886921000000105", "Allergies and adverse reactions"),
        ClinicalArea::Medication => ("933361000000108", "Medications and medical devices"),
        ClinicalArea::Consultations => ("1149501000000101", "List of consultations"),
        ClinicalArea::Problems => ("717711000000103", "Problems"),
        ClinicalArea::Immunisations => ("1102181000000102", "Immunisations"),
        ClinicalArea::Uncategorised => ("826501000000100", "Miscellaneous record"),
        ClinicalArea::Investigations => ("887191000000108", "Investigations and results"),
        ClinicalArea::Referrals => ("792931000000107", "Outbound referral"),
        ClinicalArea::DiaryEntries => ("714311000000108", "Patient recall administration"),
    }
}

/// The display of a reference to an item of a disabled area.
fn disabled_display(area: ClinicalArea) -> &'static str {
    match area {
        ClinicalArea::Problems => "Problems items have been disabled",
        ClinicalArea::Immunisations => "Immunisations items have been disabled",
        ClinicalArea::Uncategorised => "Uncategorised data items have been disabled",
        ClinicalArea::Investigations => "Investigations items have been disabled",
        ClinicalArea::Medication => "Medication items have been disabled",
        ClinicalArea::Allergies => "Allergies items have been disabled",
        ClinicalArea::Consultations => "Consultations items have been disabled",
        ClinicalArea::Referrals => "Referrals items have been disabled",
        ClinicalArea::DiaryEntries => "Diary entries items have been disabled",
    }
}

/// The record behind `nhs` at `practice`, if GP Connect may return it: active regular
/// registration, alive, NHS number verified (01), not restricted (S-flag).
pub fn find_patient(
    records: &PracticeRecords,
    practice: usize,
    nhs: &NhsNumber,
) -> Result<(RecordRef, PatientRecord), GpcError> {
    let not_found = GpcError::patient_not_found;
    let at = *records
        .by_nhs_number(practice, nhs)
        .first()
        .ok_or_else(|| not_found("no record with that NHS number at this practice"))?;
    let record = records.record(at);
    available(&record)?;
    Ok((at, record))
}

/// Whether GP Connect may return `record` (see [`find_patient`]).
pub fn available(record: &PatientRecord) -> Result<(), GpcError> {
    let not_found = GpcError::patient_not_found;
    if !record.registration.is_active() || record.death_date.is_some() {
        return Err(not_found("the patient is not registered at this practice"));
    }
    if record.registration.kind != RegistrationType::Regular {
        return Err(not_found("the patient is not a regular (GMS) registration"));
    }
    if record.nhs_status != NhsNumberStatus::Verified {
        return Err(not_found("the NHS number is not verified at this practice"));
    }
    if record.confidentiality != Confidentiality::Unrestricted {
        return Err(not_found("the patient's record is not available"));
    }
    Ok(())
}

/// What rendering needs beside the query.
pub struct Context<'a> {
    pub practice: &'a Practice,
    pub record: &'a PatientRecord,
    pub person_index: u64,
    pub as_of: Date,
    pub disabled: &'a BTreeSet<ClinicalArea>,
}

/// Items rendered so far (so cross-references from consultations are emitted once).
#[derive(Default)]
struct Emitted {
    conditions: BTreeSet<u32>,
    observations: BTreeSet<u32>,
    immunisations: BTreeSet<u32>,
    staff: BTreeSet<usize>,
}

/// A List's entries and flags, written after its resources.
#[derive(Default)]
struct ListItems {
    references: Vec<String>,
    displays: Vec<&'static str>,
    withheld: bool,
}

/// Renders the structured record Bundle into `out`.
pub fn render(out: &mut Vec<u8>, ctx: &Context<'_>, q: &StructuredQuery) {
    let rid = ctx.record.id.as_str();
    let usual_gp = usual_gp(ctx.practice, ctx.person_index);
    let mut emitted = Emitted::default();
    emitted.staff.insert(usual_gp);
    let in_transit = (ctx.record.registration.start >= ctx.as_of.plus(-IN_TRANSIT_DAYS))
        .then_some(ctx.record.registration.start);
    let mut j = Json::new(out);
    j.begin().kstr("resourceType", "Bundle");
    profile(&mut j, BUNDLE_PROFILE);
    j.kstr("type", "collection").arr("entry");
    write_patient(&mut j, ctx, usual_gp);
    write_organization(&mut j, ctx.practice);
    write_practitioner_role(&mut j, ctx.practice, usual_gp);
    let lists = Lists {
        rid,
        as_of: ctx.as_of,
        in_transit,
    };
    let disabled: Vec<ClinicalArea> = q
        .areas
        .iter()
        .copied()
        .filter(|a| ctx.disabled.contains(a))
        .collect();
    for &area in &q.areas {
        if ctx.disabled.contains(&area) {
            continue;
        }
        let items = match area {
            ClinicalArea::Allergies => allergies(&mut j, ctx, q, &lists, &mut emitted),
            ClinicalArea::Medication => medications(&mut j, ctx, q, &mut emitted),
            ClinicalArea::Problems => problems(&mut j, ctx, q, &mut emitted),
            ClinicalArea::Immunisations => immunisations(&mut j, ctx, &mut emitted),
            ClinicalArea::Uncategorised => uncategorised(&mut j, ctx, q, &mut emitted),
            ClinicalArea::Investigations => investigations(&mut j, ctx, q, &mut emitted),
            ClinicalArea::Consultations => consultations(&mut j, ctx, q, &lists, &mut emitted),
            ClinicalArea::Referrals | ClinicalArea::DiaryEntries => ListItems::default(),
        };
        let (code, title) = list_heading(area);
        lists.write(&mut j, code, title, &items, None);
    }
    for &staff in &emitted.staff {
        if staff != usual_gp {
            write_practitioner(&mut j, ctx.practice, staff);
        }
    }
    if !disabled.is_empty() {
        write_disabled_outcome(&mut j, &disabled);
    }
    j.end_array().end();
}

/// The patient's usual GP: one of the practice's GPs, by person index.
pub(super) fn usual_gp(practice: &Practice, person: u64) -> usize {
    let gps: Vec<usize> = practice.clinicians(StaffRole::Gp).map(|(i, _)| i).collect();
    if gps.is_empty() {
        0
    } else {
        gps[(person % gps.len() as u64) as usize]
    }
}

fn profile(j: &mut Json, url: &str) {
    j.obj("meta").arr("profile").str(url).end_array().end();
}

fn gpc_profile(j: &mut Json, name: &str) {
    j.obj("meta")
        .arr("profile")
        .str2(PROFILE_BASE, name)
        .end_array()
        .end();
}

fn entry_begin<'j, 'o>(j: &'j mut Json<'o>) -> &'j mut Json<'o> {
    j.begin().obj("resource")
}

fn entry_end(j: &mut Json) {
    j.end().end();
}

fn staff_id(practice: &Practice, staff: usize) -> &str {
    &practice.staff[staff.min(practice.staff.len().saturating_sub(1))].id
}

fn clinician_ref(j: &mut Json, key: &str, ctx: &Context<'_>, staff: usize, emitted: &mut Emitted) {
    let staff = staff.min(ctx.practice.staff.len().saturating_sub(1));
    emitted.staff.insert(staff);
    j.reference(key, "Practitioner", staff_id(ctx.practice, staff));
}

/// `dd-Mmm-yyyy`, as the in-transit note writes dates.
pub(super) fn note_date(d: Date) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, day) = d.civil();
    format!(
        "{day:02}-{}-{y:04}",
        MONTHS[(m as usize).saturating_sub(1).min(11)]
    )
}

struct Lists<'a> {
    rid: &'a str,
    as_of: Date,
    in_transit: Option<Date>,
}

impl Lists<'_> {
    /// A List: primary lists have no id; nested (consultation) lists pass theirs.
    fn write(
        &self,
        j: &mut Json,
        code: &str,
        title: &str,
        items: &ListItems,
        id: Option<(&str, &str)>,
    ) {
        self.write_with(j, code, title, items, id, None::<fn(&mut Json)>);
    }

    fn write_with(
        &self,
        j: &mut Json,
        code: &str,
        title: &str,
        items: &ListItems,
        id: Option<(&str, &str)>,
        contained: Option<impl FnOnce(&mut Json)>,
    ) {
        entry_begin(j).kstr("resourceType", "List");
        if let Some((base, suffix)) = id {
            j.key("id").str2(base, suffix);
        }
        profile(j, LIST_PROFILE);
        if let Some(write_contained) = contained {
            j.arr("contained");
            write_contained(j);
            j.end_array();
        }
        j.arr("extension").begin().kstr("url", CLINICAL_SETTING_EXT);
        j.obj("valueCodeableConcept").arr("coding");
        coding(
            j,
            cs::SNOMED_CT,
            "1060971000000108",
            Some("General practice service"),
        );
        j.end_array().end().end();
        if items.withheld {
            j.begin()
                .kstr("url", LIST_WARNING_EXT)
                .kstr("valueCode", "confidential-items")
                .end();
        }
        if self.in_transit.is_some() {
            j.begin()
                .kstr("url", LIST_WARNING_EXT)
                .kstr("valueCode", "data-in-transit")
                .end();
        }
        j.end_array();
        j.kstr("status", "current")
            .kstr("mode", "snapshot")
            .kstr("title", title);
        j.obj("code").arr("coding");
        coding(j, cs::SNOMED_CT, code, Some(title));
        j.end_array().end();
        j.reference("subject", "Patient", self.rid)
            .kdate("date", self.as_of);
        let empty = items.references.is_empty() && items.displays.is_empty();
        let mut notes: Vec<String> = Vec::new();
        if items.withheld {
            notes.push(CONFIDENTIAL_NOTE.into());
        }
        if let Some(start) = self.in_transit {
            notes.push(format!(
                "Patient record transfer from previous GP practice not yet complete; information recorded before {} may be missing.",
                note_date(start)
            ));
        }
        if empty {
            notes.push(EMPTY_NOTE.into());
        }
        if !notes.is_empty() {
            j.arr("note");
            for n in &notes {
                j.begin().kstr("text", n).end();
            }
            j.end_array();
        }
        if empty {
            j.obj("emptyReason").arr("coding");
            coding(
                j,
                EMPTY_REASON_SYSTEM,
                "no-content-recorded",
                Some("No Content Recorded"),
            );
            j.end_array().end();
        } else {
            j.arr("entry");
            for r in &items.references {
                j.begin().obj("item").kstr("reference", r).end().end();
            }
            for d in &items.displays {
                j.begin().obj("item").kstr("display", d).end().end();
            }
            j.end_array();
        }
        entry_end(j);
    }
}

pub(super) fn write_patient(j: &mut Json, ctx: &Context<'_>, usual_gp: usize) {
    let r = ctx.record;
    entry_begin(j)
        .kstr("resourceType", "Patient")
        .kstr("id", &r.id);
    gpc_profile(j, "CareConnect-GPC-Patient-1");
    j.arr("identifier");
    if let Some(nhs) = &r.nhs_number {
        j.begin()
            .arr("extension")
            .begin()
            .kstr("url", NHS_VERIFICATION_EXT);
        simple_cc(
            j,
            "valueCodeableConcept",
            NHS_VERIFICATION_SYSTEM,
            r.nhs_status.code(),
            Some(r.nhs_status.display()),
        );
        j.end().end_array();
        j.kstr("system", "https://fhir.nhs.uk/Id/nhs-number")
            .kstr("value", nhs.as_str())
            .end();
    }
    j.end_array().kbool("active", true).arr("name");
    name_json(j, &r.name, "official");
    j.end_array();
    if !r.telecom.is_empty() {
        j.arr("telecom");
        for t in &r.telecom {
            let (system, use_) = match t.kind {
                TelecomKind::Mobile => ("phone", "mobile"),
                TelecomKind::Home => ("phone", "home"),
                TelecomKind::Email => ("email", "home"),
            };
            j.begin()
                .kstr("system", system)
                .kstr("value", &t.value)
                .kstr("use", use_)
                .end();
        }
        j.end_array();
    }
    j.kstr("gender", r.gender.key())
        .kdate("birthDate", r.birth_date)
        .arr("address");
    address_json(j, &r.address, "home");
    j.end_array()
        .arr("generalPractitioner")
        .ref_value("Practitioner", staff_id(ctx.practice, usual_gp))
        .end_array()
        .reference(
            "managingOrganization",
            "Organization",
            ctx.practice.ods.as_str(),
        );
    entry_end(j);
}

pub(super) fn write_organization(j: &mut Json, p: &Practice) {
    entry_begin(j)
        .kstr("resourceType", "Organization")
        .kstr("id", p.ods.as_str());
    gpc_profile(j, "CareConnect-GPC-Organization-1");
    j.arr("identifier")
        .begin()
        .kstr("system", ODS_SYSTEM)
        .kstr("value", p.ods.as_str())
        .end()
        .end_array();
    j.kstr("name", &p.name)
        .arr("telecom")
        .begin()
        .kstr("system", "phone")
        .kstr("value", &p.phone)
        .kstr("use", "work")
        .end()
        .end_array()
        .arr("address");
    address_json(j, &p.address, "work");
    j.end_array();
    entry_end(j);
}

pub(super) fn write_practitioner(j: &mut Json, p: &Practice, staff: usize) {
    let s = &p.staff[staff.min(p.staff.len().saturating_sub(1))];
    entry_begin(j)
        .kstr("resourceType", "Practitioner")
        .kstr("id", &s.id);
    gpc_profile(j, "CareConnect-GPC-Practitioner-1");
    j.arr("name");
    name_json(j, &s.name, "official");
    j.end_array().kstr("gender", s.gender.key());
    entry_end(j);
}

fn write_practitioner_role(j: &mut Json, p: &Practice, staff: usize) {
    write_practitioner(j, p, staff);
    let s = &p.staff[staff.min(p.staff.len().saturating_sub(1))];
    entry_begin(j)
        .kstr("resourceType", "PractitionerRole")
        .key("id")
        .str2(&s.id, "-role");
    gpc_profile(j, "CareConnect-GPC-PractitionerRole-1");
    j.reference("practitioner", "Practitioner", &s.id)
        .reference("organization", "Organization", p.ods.as_str())
        .arr("code")
        .begin()
        .kstr("text", s.role.display())
        .end()
        .end_array();
    entry_end(j);
}

fn write_allergy(j: &mut Json, ctx: &Context<'_>, a: &Allergy, emitted: &mut Emitted) {
    j.kstr("resourceType", "AllergyIntolerance").key("id").idn(
        &ctx.record.id,
        "a",
        u64::from(a.id),
    );
    gpc_profile(j, "CareConnect-GPC-AllergyIntolerance-1");
    j.kstr(
        "clinicalStatus",
        if a.active { "active" } else { "resolved" },
    )
    .kstr("verificationStatus", "unconfirmed")
    .arr("category")
    .str(a.category)
    .end_array();
    concept_cc(j, "code", a.concept, CodingStyle::Snomed);
    j.reference("patient", "Patient", &ctx.record.id)
        .kdate("assertedDate", a.recorded);
    clinician_ref(j, "recorder", ctx, a.clinician, emitted);
    if let Some(reaction) = a.reaction {
        j.arr("reaction").begin().arr("manifestation");
        j.begin();
        crate::fhir::codings(j, reaction, CodingStyle::Snomed);
        j.kstr("text", reaction.display)
            .end()
            .end_array()
            .end()
            .end_array();
    }
}

fn allergies(
    j: &mut Json,
    ctx: &Context<'_>,
    q: &StructuredQuery,
    lists: &Lists<'_>,
    emitted: &mut Emitted,
) -> ListItems {
    let mut items = ListItems::default();
    let rid = &ctx.record.id;
    for a in ctx.record.clinical.allergies.iter().filter(|a| a.active) {
        entry_begin(j);
        write_allergy(j, ctx, a, emitted);
        entry_end(j);
        items
            .references
            .push(format!("AllergyIntolerance/{rid}-a{}", a.id));
    }
    if q.include_resolved_allergies {
        let ended: Vec<&Allergy> = ctx
            .record
            .clinical
            .allergies
            .iter()
            .filter(|a| !a.active)
            .collect();
        let ended_items = ListItems {
            references: ended.iter().map(|a| format!("#{rid}-a{}", a.id)).collect(),
            ..ListItems::default()
        };
        let contained = (!ended.is_empty()).then_some(|c: &mut Json| {
            for a in &ended {
                c.begin();
                write_allergy(c, ctx, a, emitted);
                c.end();
            }
        });
        lists.write_with(
            j,
            "1103671000000101",
            "Ended allergies",
            &ended_items,
            None,
            contained,
        );
    }
    items
}

pub(super) fn medication_end(m: &MedicationCourse) -> Option<Date> {
    match m.status {
        MedicationStatus::Active => None,
        MedicationStatus::Completed => Some(m.start.plus(7)),
        MedicationStatus::Stopped(d) => Some(d.max(m.start)),
    }
}

pub(super) fn is_sensitive_condition(record: &PatientRecord, id: u32) -> bool {
    record
        .clinical
        .conditions
        .iter()
        .any(|c| c.id == id && c.sensitivity.is_some())
}

fn medications(
    j: &mut Json,
    ctx: &Context<'_>,
    q: &StructuredQuery,
    emitted: &mut Emitted,
) -> ListItems {
    let mut items = ListItems::default();
    let rid = ctx.record.id.as_str();
    for m in &ctx.record.clinical.medications {
        if let Some(from) = q.medication_from
            && medication_end(m).is_some_and(|end| end < from)
        {
            continue;
        }
        if m.indication
            .is_some_and(|c| is_sensitive_condition(ctx.record, c))
        {
            items.withheld = true;
            continue;
        }
        let id = u64::from(m.id);
        let (status, request_status) = match m.status {
            MedicationStatus::Active => ("active", "active"),
            MedicationStatus::Completed => ("completed", "completed"),
            MedicationStatus::Stopped(_) => ("stopped", "stopped"),
        };
        // Medication (dm+d).
        entry_begin(j)
            .kstr("resourceType", "Medication")
            .key("id")
            .idn(rid, "md", id);
        gpc_profile(j, "CareConnect-GPC-Medication-1");
        drug_cc(j, "code", m.drug);
        entry_end(j);
        // MedicationStatement.
        entry_begin(j)
            .kstr("resourceType", "MedicationStatement")
            .key("id")
            .idn(rid, "ms", id);
        gpc_profile(j, "CareConnect-GPC-MedicationStatement-1");
        if let Some(last) = m.issues.last() {
            j.arr("extension")
                .begin()
                .kstr("url", LAST_ISSUE_EXT)
                .kdate("valueDateTime", *last)
                .end()
                .end_array();
        }
        j.arr("basedOn")
            .ref_value_n("MedicationRequest", rid, "mp", id)
            .end_array();
        j.kstr("status", status)
            .reference_n("medicationReference", "Medication", rid, "md", id);
        j.obj("effectivePeriod").kdate("start", m.start);
        if let Some(end) = medication_end(m) {
            j.kdate("end", end);
        }
        j.end()
            .kdate("dateAsserted", m.start)
            .reference("subject", "Patient", rid)
            .kstr("taken", "unk");
        j.arr("dosage")
            .begin()
            .kstr("text", m.dose)
            .end()
            .end_array();
        entry_end(j);
        // The authorisation (plan).
        entry_begin(j)
            .kstr("resourceType", "MedicationRequest")
            .key("id")
            .idn(rid, "mp", id);
        gpc_profile(j, "CareConnect-GPC-MedicationRequest-1");
        j.arr("extension")
            .begin()
            .kstr("url", PRESCRIPTION_TYPE_EXT);
        let (kind, kind_display) = if m.repeat {
            ("repeat", "Repeat")
        } else {
            ("acute", "Acute")
        };
        simple_cc(
            j,
            "valueCodeableConcept",
            PRESCRIPTION_TYPE_SYSTEM,
            kind,
            Some(kind_display),
        );
        j.end().end_array();
        j.kstr("status", request_status)
            .kstr("intent", "plan")
            .reference_n("medicationReference", "Medication", rid, "md", id)
            .reference("subject", "Patient", rid)
            .kdate("authoredOn", m.start);
        clinician_ref(j, "recorder", ctx, m.clinician, emitted);
        crate::fhir::course_instructions(j, m);
        entry_end(j);
        // The issues (orders).
        if q.include_prescription_issues {
            for (k, date) in m.issues.iter().enumerate() {
                entry_begin(j)
                    .kstr("resourceType", "MedicationRequest")
                    .key("id");
                j.str(&format!("{rid}-mi{id}-{}", k + 1));
                gpc_profile(j, "CareConnect-GPC-MedicationRequest-1");
                j.arr("basedOn")
                    .ref_value_n("MedicationRequest", rid, "mp", id)
                    .end_array();
                j.kstr("status", "completed")
                    .kstr("intent", "order")
                    .reference_n("medicationReference", "Medication", rid, "md", id)
                    .reference("subject", "Patient", rid)
                    .kdate("authoredOn", *date);
                clinician_ref(j, "recorder", ctx, m.clinician, emitted);
                j.obj("dispenseRequest")
                    .obj("quantity")
                    .key("value")
                    .u64(u64::from(m.quantity))
                    .kstr("unit", m.drug.unit)
                    .end()
                    .end();
                entry_end(j);
            }
        }
        items
            .references
            .push(format!("MedicationStatement/{rid}-ms{id}"));
    }
    items
}

fn write_condition(j: &mut Json, ctx: &Context<'_>, c: &Condition, emitted: &mut Emitted) {
    entry_begin(j)
        .kstr("resourceType", "Condition")
        .key("id")
        .idn(&ctx.record.id, "c", u64::from(c.id));
    gpc_profile(j, "CareConnect-GPC-ProblemHeader-Condition-1");
    j.arr("extension")
        .begin()
        .kstr("url", PROBLEM_SIGNIFICANCE_EXT)
        .kstr("valueCode", if c.chronic { "major" } else { "minor" })
        .end()
        .end_array();
    let active = matches!(c.status, ConditionStatus::Active);
    j.kstr("clinicalStatus", if active { "active" } else { "inactive" });
    j.arr("category").begin().arr("coding");
    coding(
        j,
        "http://hl7.org/fhir/condition-category",
        "problem-list-item",
        Some("Problem List Item"),
    );
    j.end_array().end().end_array();
    concept_cc(j, "code", c.concept, c.coding);
    j.reference("subject", "Patient", &ctx.record.id)
        .kdate("onsetDateTime", c.onset);
    if let ConditionStatus::Resolved(d) = c.status {
        j.kdate("abatementDateTime", d.max(c.onset));
    }
    j.kdate("assertedDate", c.recorded);
    clinician_ref(j, "asserter", ctx, c.clinician, emitted);
    entry_end(j);
    emitted.conditions.insert(c.id);
}

fn problems(
    j: &mut Json,
    ctx: &Context<'_>,
    q: &StructuredQuery,
    emitted: &mut Emitted,
) -> ListItems {
    let mut items = ListItems::default();
    for c in &ctx.record.clinical.conditions {
        let active = matches!(c.status, ConditionStatus::Active);
        match q.problem_status {
            Some(ProblemStatus::Active) if !active => continue,
            Some(ProblemStatus::Inactive) if active => continue,
            _ => {}
        }
        if c.sensitivity.is_some() {
            items.withheld = true;
            continue;
        }
        write_condition(j, ctx, c, emitted);
        items
            .references
            .push(format!("Condition/{}-c{}", ctx.record.id, c.id));
    }
    items
}

fn write_immunisation(j: &mut Json, ctx: &Context<'_>, i: &Immunisation, emitted: &mut Emitted) {
    entry_begin(j)
        .kstr("resourceType", "Immunization")
        .key("id")
        .idn(&ctx.record.id, "i", u64::from(i.id));
    gpc_profile(j, "CareConnect-GPC-Immunization-1");
    j.kstr("status", "completed")
        .kbool("notGiven", false)
        .obj("vaccineCode");
    crate::fhir::codings(j, i.procedure, CodingStyle::Snomed);
    j.kstr("text", i.product).end();
    j.reference("patient", "Patient", &ctx.record.id)
        .kdate("date", i.date)
        .kbool("primarySource", true);
    j.arr("practitioner").begin();
    clinician_ref(j, "actor", ctx, i.clinician, emitted);
    j.end().end_array();
    entry_end(j);
    emitted.immunisations.insert(i.id);
}

fn immunisations(j: &mut Json, ctx: &Context<'_>, emitted: &mut Emitted) -> ListItems {
    let mut items = ListItems::default();
    for i in &ctx.record.clinical.immunisations {
        write_immunisation(j, ctx, i, emitted);
        items
            .references
            .push(format!("Immunization/{}-i{}", ctx.record.id, i.id));
    }
    items
}

fn quantity(j: &mut Json, value: i32, scale: u8, unit: &str, comparator: Option<&str>) {
    j.obj("valueQuantity")
        .key("value")
        .fixed(i64::from(value), scale);
    if let Some(c) = comparator {
        j.kstr("comparator", c);
    }
    j.kstr("unit", unit)
        .kstr("system", cs::UCUM)
        .kstr("code", unit)
        .end();
}

/// One Observation (a blood pressure as its triple); `suffix` tells the BP parts apart.
fn write_observation(j: &mut Json, ctx: &Context<'_>, o: &Observation, emitted: &mut Emitted) {
    let rid = ctx.record.id.as_str();
    let id = u64::from(o.id);
    let head = |j: &mut Json, suffix: &str, concept: &Concept, emitted: &mut Emitted| {
        entry_begin(j).kstr("resourceType", "Observation").key("id");
        j.str(&format!("{rid}-o{id}{suffix}"));
        gpc_profile(j, "CareConnect-GPC-Observation-1");
        j.kstr("status", "final");
        if o.laboratory {
            j.arr("category").begin().arr("coding");
            coding(
                j,
                "http://hl7.org/fhir/observation-category",
                "laboratory",
                Some("Laboratory"),
            );
            j.end_array().end().end_array();
        }
        concept_cc(j, "code", concept, o.coding);
        j.reference("subject", "Patient", rid)
            .kdate("effectiveDateTime", o.date);
        j.arr("performer").begin();
        let staff = o.clinician.min(ctx.practice.staff.len().saturating_sub(1));
        emitted.staff.insert(staff);
        j.kstr(
            "reference",
            &format!("Practitioner/{}", staff_id(ctx.practice, staff)),
        )
        .end()
        .end_array();
    };
    match o.value {
        ObservationValue::BloodPressure {
            systolic,
            diastolic,
        } => {
            head(j, "", o.concept, emitted);
            j.arr("related");
            for part in ["-sys", "-dia"] {
                j.begin()
                    .kstr("type", "has-member")
                    .obj("target")
                    .kstr("reference", &format!("Observation/{rid}-o{id}{part}"))
                    .end()
                    .end();
            }
            j.end_array();
            entry_end(j);
            for (part, concept, v) in [
                ("-sys", &codes::SYSTOLIC, systolic),
                ("-dia", &codes::DIASTOLIC, diastolic),
            ] {
                head(j, part, concept, emitted);
                quantity(j, i32::from(v), 0, "mm[Hg]", None);
                entry_end(j);
            }
        }
        ObservationValue::Quantity {
            value,
            scale,
            unit,
            comparator,
        } => {
            head(j, "", o.concept, emitted);
            quantity(j, value, scale, unit, comparator);
            entry_end(j);
        }
        ObservationValue::Text => {
            head(j, "", o.concept, emitted);
            j.kstr("valueString", o.text.as_deref().unwrap_or(""));
            entry_end(j);
        }
        ObservationValue::None => {
            head(j, "", o.concept, emitted);
            entry_end(j);
        }
    }
    emitted.observations.insert(o.id);
}

fn uncategorised(
    j: &mut Json,
    ctx: &Context<'_>,
    q: &StructuredQuery,
    emitted: &mut Emitted,
) -> ListItems {
    let mut items = ListItems::default();
    for o in ctx
        .record
        .clinical
        .observations
        .iter()
        .filter(|o| !o.laboratory)
    {
        if q.uncategorised_period.is_some_and(|p| !p.contains(o.date)) {
            continue;
        }
        if o.sensitivity.is_some() {
            items.withheld = true;
            continue;
        }
        write_observation(j, ctx, o, emitted);
        items
            .references
            .push(format!("Observation/{}-o{}", ctx.record.id, o.id));
    }
    items
}

/// Laboratory results, one DiagnosticReport per result date.
fn investigations(
    j: &mut Json,
    ctx: &Context<'_>,
    q: &StructuredQuery,
    emitted: &mut Emitted,
) -> ListItems {
    let mut items = ListItems::default();
    let rid = ctx.record.id.as_str();
    let mut by_date: BTreeMap<Date, Vec<&Observation>> = BTreeMap::new();
    for o in ctx
        .record
        .clinical
        .observations
        .iter()
        .filter(|o| o.laboratory)
    {
        if q.investigation_period.is_some_and(|p| !p.contains(o.date)) {
            continue;
        }
        if o.sensitivity.is_some() {
            items.withheld = true;
            continue;
        }
        by_date.entry(o.date).or_default().push(o);
    }
    for (date, results) in by_date {
        for o in &results {
            write_observation(j, ctx, o, emitted);
        }
        let report_id = format!("{rid}-dr{}", date.to_string().replace('-', ""));
        entry_begin(j)
            .kstr("resourceType", "DiagnosticReport")
            .kstr("id", &report_id);
        gpc_profile(j, "CareConnect-GPC-DiagnosticReport-1");
        j.kstr("status", "final").obj("code").arr("coding");
        coding(j, cs::SNOMED_CT, "15220000", Some("Laboratory test"));
        j.end_array().end().reference("subject", "Patient", rid);
        j.key("issued").str(&format!("{date}T00:00:00+00:00"));
        j.arr("result");
        for o in &results {
            j.begin()
                .kstr("reference", &format!("Observation/{rid}-o{}", o.id))
                .end();
        }
        j.end_array();
        entry_end(j);
        items
            .references
            .push(format!("DiagnosticReport/{report_id}"));
    }
    items
}

/// Items recorded in one consultation.
#[derive(Default)]
struct Linked<'r> {
    conditions: Vec<&'r Condition>,
    observations: Vec<&'r Observation>,
    immunisations: Vec<&'r Immunisation>,
}

fn consultations(
    j: &mut Json,
    ctx: &Context<'_>,
    q: &StructuredQuery,
    lists: &Lists<'_>,
    emitted: &mut Emitted,
) -> ListItems {
    let mut items = ListItems::default();
    let rid = ctx.record.id.as_str();
    let clinical = &ctx.record.clinical;
    let mut chosen: Vec<&Consultation> = Vec::new();
    for e in &clinical.consultations {
        if q.consultation_period
            .is_some_and(|p| !p.contains(e.start.date))
        {
            continue;
        }
        if e.confidential {
            items.withheld = true;
            continue;
        }
        chosen.push(e);
    }
    chosen.sort_by(|a, b| b.start.cmp(&a.start).then(a.id.cmp(&b.id)));
    if let Some(n) = q.most_recent_consultations {
        chosen.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    }
    let mut linked: HashMap<u32, Linked<'_>> = HashMap::new();
    for c in &clinical.conditions {
        if let Some(e) = c.consultation {
            linked.entry(e).or_default().conditions.push(c);
        }
    }
    for o in &clinical.observations {
        if let Some(e) = o.consultation {
            linked.entry(e).or_default().observations.push(o);
        }
    }
    for i in &clinical.immunisations {
        if let Some(e) = i.consultation {
            linked.entry(e).or_default().immunisations.push(i);
        }
    }
    let disabled = |area| ctx.disabled.contains(&area);
    for e in chosen {
        let id = u64::from(e.id);
        write_encounter(j, ctx, e, emitted);
        let mut category = ListItems::default();
        category.references.push(format!("Observation/{rid}-n{id}"));
        if let Some(l) = linked.get(&e.id) {
            for c in &l.conditions {
                if c.sensitivity.is_some() {
                    category.withheld = true;
                } else if disabled(ClinicalArea::Problems) {
                    category
                        .displays
                        .push(disabled_display(ClinicalArea::Problems));
                } else {
                    if !emitted.conditions.contains(&c.id) {
                        write_condition(j, ctx, c, emitted);
                    }
                    category
                        .references
                        .push(format!("Condition/{rid}-c{}", c.id));
                }
            }
            for o in &l.observations {
                let area = if o.laboratory {
                    ClinicalArea::Investigations
                } else {
                    ClinicalArea::Uncategorised
                };
                if o.sensitivity.is_some() {
                    category.withheld = true;
                } else if disabled(area) {
                    category.displays.push(disabled_display(area));
                } else {
                    if !emitted.observations.contains(&o.id) {
                        write_observation(j, ctx, o, emitted);
                    }
                    category
                        .references
                        .push(format!("Observation/{rid}-o{}", o.id));
                }
            }
            for i in &l.immunisations {
                if disabled(ClinicalArea::Immunisations) {
                    category
                        .displays
                        .push(disabled_display(ClinicalArea::Immunisations));
                } else {
                    if !emitted.immunisations.contains(&i.id) {
                        write_immunisation(j, ctx, i, emitted);
                    }
                    category
                        .references
                        .push(format!("Immunization/{rid}-i{}", i.id));
                }
            }
        }
        let base = format!("{rid}-e{id}");
        lists.write(
            j,
            "24781000000107",
            "Category (EHR)",
            &category,
            Some((&base, "-category")),
        );
        let topic = ListItems {
            references: vec![format!("List/{base}-category")],
            ..ListItems::default()
        };
        lists.write(
            j,
            "25851000000105",
            "Topic (EHR)",
            &topic,
            Some((&base, "-topic")),
        );
        let consultation = ListItems {
            references: vec![format!("List/{base}-topic")],
            ..ListItems::default()
        };
        lists.write(
            j,
            "325851000000107",
            "Consultation",
            &consultation,
            Some((&base, "-consultation")),
        );
        items.references.push(format!("Encounter/{base}"));
    }
    items
}

fn write_encounter(j: &mut Json, ctx: &Context<'_>, e: &Consultation, emitted: &mut Emitted) {
    let rid = ctx.record.id.as_str();
    let id = u64::from(e.id);
    let type_concept = match e.kind {
        ConsultationKind::Surgery => &codes::CONSULTATION,
        ConsultationKind::Telephone => &codes::TELEPHONE_ENCOUNTER,
        ConsultationKind::HomeVisit => &codes::HOME_VISIT,
    };
    entry_begin(j)
        .kstr("resourceType", "Encounter")
        .key("id")
        .idn(rid, "e", id);
    gpc_profile(j, "CareConnect-GPC-Encounter-1");
    j.kstr("status", "finished").arr("type").begin();
    crate::fhir::codings(j, type_concept, CodingStyle::Snomed);
    j.kstr("text", type_concept.display).end().end_array();
    j.reference("subject", "Patient", rid)
        .arr("participant")
        .begin();
    clinician_ref(j, "individual", ctx, e.clinician, emitted);
    j.end().end_array();
    j.obj("period")
        .key("start")
        .datetime(e.start)
        .key("end")
        .datetime(e.start.plus_minutes(e.minutes))
        .end();
    j.reference("serviceProvider", "Organization", ctx.practice.ods.as_str());
    entry_end(j);
    // The consultation's free text: a "Comment note" Observation.
    entry_begin(j)
        .kstr("resourceType", "Observation")
        .key("id")
        .idn(rid, "n", id);
    gpc_profile(j, "CareConnect-GPC-Observation-1");
    j.kstr("status", "final");
    concept_cc(j, "code", &codes::COMMENT_NOTE, CodingStyle::Snomed);
    j.reference("subject", "Patient", rid)
        .reference_n("context", "Encounter", rid, "e", id)
        .key("effectiveDateTime")
        .datetime(e.start)
        .kstr("comment", &e.text);
    entry_end(j);
}

fn write_disabled_outcome(j: &mut Json, disabled: &[ClinicalArea]) {
    entry_begin(j).kstr("resourceType", "OperationOutcome");
    profile(
        j,
        "https://fhir.nhs.uk/STU3/StructureDefinition/GPConnect-OperationOutcome-1",
    );
    j.arr("issue");
    for area in disabled {
        j.begin()
            .kstr("severity", "warning")
            .kstr("code", "not-supported")
            .obj("details")
            .arr("coding");
        coding(
            j,
            SPINE_WARNING_SYSTEM,
            "NOT_IMPLEMENTED",
            Some("Not implemented"),
        );
        j.end_array()
            .kstr("text", &format!("{} has been disabled", area.parameter()))
            .end()
            .kstr("diagnostics", area.parameter())
            .end();
    }
    j.end_array();
    entry_end(j);
}
