//! FHIR R4 rendering of the population: one NDJSON line per resource, grouped by resource
//! type, with UK Core identifier systems and extensions.
//!
//! Ids (all unique across the population, all references resolve across the files):
//!
//! | resource | id |
//! |---|---|
//! | Organization (PCN, practice) | the ODS code (`U91234`, `Y91234`) |
//! | Practitioner | `{ODS}-S{nn}` |
//! | Location | `{ODS}-site` |
//! | Schedule / Slot | `{ODS}-sched-{staff}` / `{ODS}-slot-{staff}-{yyyymmdd}-{hhmm}` |
//! | Appointment (booked, from the appointment book) | `{ODS}-fa-{staff}-{yyyymmdd}-{hhmm}` |
//! | Patient | the record id: `{ODS}-{person:07}`, with `-m` (previous registration) or `-d` (duplicate) |
//! | EpisodeOfCare (the registration) | `{patient}-reg` |
//! | Condition | `{patient}-c{n}` |
//! | MedicationStatement / MedicationRequest plan / issue | `{patient}-ms{n}` / `{patient}-mp{n}` / `{patient}-mi{n}-{k}` |
//! | Observation / comment note of a consultation | `{patient}-o{n}` / `{patient}-n{n}` |
//! | AllergyIntolerance, Immunization, Encounter, Appointment, Task | `{patient}-a{n}`, `-i{n}`, `-e{n}`, `-p{n}`, `-t{n}` |
//!
//! Security labels: identities (Patient, Organization, Practitioner, Location) carry
//! `v3-ActReason#HTEST` ("test health data") so nobody mistakes them for real people and
//! places; restricted (S-flag) patients carry `v3-Confidentiality#R` (or `V`), and sensitive
//! entries and confidential consultations carry `v3-Confidentiality#R` (reference sheet §7).

use keel_model::coding::systems as cs;
use keel_model::identifier::systems as ids;

use crate::codes::{self, CodeOrigin, Concept, Drug};
use crate::date::DateTime;
use crate::json::{Json, push_u64};
use crate::model::*;

/// The resource types written, in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceType {
    Organization,
    Practitioner,
    Location,
    Schedule,
    Slot,
    Patient,
    EpisodeOfCare,
    Condition,
    MedicationStatement,
    MedicationRequest,
    Observation,
    AllergyIntolerance,
    Immunization,
    Encounter,
    Appointment,
    Task,
}

pub const RESOURCE_TYPES: [ResourceType; 16] = [
    ResourceType::Organization,
    ResourceType::Practitioner,
    ResourceType::Location,
    ResourceType::Schedule,
    ResourceType::Slot,
    ResourceType::Patient,
    ResourceType::EpisodeOfCare,
    ResourceType::Condition,
    ResourceType::MedicationStatement,
    ResourceType::MedicationRequest,
    ResourceType::Observation,
    ResourceType::AllergyIntolerance,
    ResourceType::Immunization,
    ResourceType::Encounter,
    ResourceType::Appointment,
    ResourceType::Task,
];

impl ResourceType {
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Organization => "Organization",
            ResourceType::Practitioner => "Practitioner",
            ResourceType::Location => "Location",
            ResourceType::Schedule => "Schedule",
            ResourceType::Slot => "Slot",
            ResourceType::Patient => "Patient",
            ResourceType::EpisodeOfCare => "EpisodeOfCare",
            ResourceType::Condition => "Condition",
            ResourceType::MedicationStatement => "MedicationStatement",
            ResourceType::MedicationRequest => "MedicationRequest",
            ResourceType::Observation => "Observation",
            ResourceType::AllergyIntolerance => "AllergyIntolerance",
            ResourceType::Immunization => "Immunization",
            ResourceType::Encounter => "Encounter",
            ResourceType::Appointment => "Appointment",
            ResourceType::Task => "Task",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// NDJSON being built, one buffer per resource type.
#[derive(Default)]
pub struct FhirBuffers {
    pub bufs: [Vec<u8>; 16],
    pub counts: [u64; 16],
}

impl FhirBuffers {
    /// Starts a resource of type `rt` with id written by `id`; returns the writer positioned
    /// after `"id"`. Call [`finish`] when done.
    fn start(&mut self, rt: ResourceType) -> Json<'_> {
        self.counts[rt.index()] += 1;
        let mut j = Json::new(&mut self.bufs[rt.index()]);
        j.begin().kstr("resourceType", rt.name());
        j
    }
}

fn finish(mut j: Json<'_>) {
    j.end().newline();
}

const HTEST: (&str, &str, &str) = (
    "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    "HTEST",
    "test health data",
);
const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
const NHS_VERIFICATION_EXT: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";
const NHS_VERIFICATION_CS: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland";
const DEATH_NOTIFICATION_EXT: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-DeathNotificationStatus";
const DEATH_NOTIFICATION_CS: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-DeathNotificationStatus";
const VACCINATION_PROCEDURE_EXT: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-VaccinationProcedure";
const LAST_ISSUE_EXT: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-MedicationStatementLastIssueDate";
/// GP Connect's registration type code system (R regular, T temporary).
const REGISTRATION_TYPE_CS: &str = "https://fhir.nhs.uk/CareConnect-RegistrationType-1";
/// Synthetic dm+d codes go under this system, never under dm+d's own (see `codes`).
pub const SYNTHETIC_DMD_SYSTEM: &str = "https://keel.invalid/sim/CodeSystem/synthetic-dmd";
/// Keel-simulator extensions carrying practice configuration.
const SIM_EXT: &str = "https://keel.invalid/sim/StructureDefinition/";
const LOCAL_NUMBER_SYSTEM: &str = "https://keel.invalid/sim/Id/patient-number/";
const STAFF_SYSTEM: &str = "https://keel.invalid/sim/Id/staff";

pub(crate) fn coding(j: &mut Json, system: &str, code: &str, display: Option<&str>) {
    j.begin().kstr("system", system).kstr("code", code);
    if let Some(d) = display {
        j.kstr("display", d);
    }
    j.end();
}

fn security(j: &mut Json, labels: &[(&str, &str, &str)]) {
    if labels.is_empty() {
        return;
    }
    j.obj("meta").arr("security");
    for (system, code, display) in labels {
        coding(j, system, code, Some(display));
    }
    j.end_array().end();
}

fn confidentiality_label(c: Confidentiality) -> Option<(&'static str, &'static str, &'static str)> {
    match c {
        Confidentiality::Unrestricted => None,
        Confidentiality::Restricted => Some((CONFIDENTIALITY, "R", "restricted")),
        Confidentiality::VeryRestricted => Some((CONFIDENTIALITY, "V", "very restricted")),
    }
}

/// `"key":{"coding":[...],"text":...}` for a concept coded in `style`.
pub(crate) fn concept_cc(j: &mut Json, key: &str, concept: &Concept, style: CodingStyle) {
    j.obj(key);
    codings(j, concept, style);
    j.kstr("text", concept.display).end();
}

pub(crate) fn codings(j: &mut Json, concept: &Concept, style: CodingStyle) {
    j.arr("coding");
    if let Some((scheme, (code, term))) = style.legacy(concept) {
        let system = match scheme {
            LegacyScheme::ReadV2 => cs::READ_V2,
            LegacyScheme::Ctv3 => cs::CTV3,
        };
        coding(j, system, code, Some(term));
    }
    if style.has_snomed(concept) {
        coding(j, cs::SNOMED_CT, concept.snomed, Some(concept.display));
    }
    if let Some(loinc) = concept.loinc {
        coding(j, cs::LOINC, loinc, None);
    }
    j.end_array();
}

/// A prescribing course's `dosageInstruction` and `dispenseRequest` (validity from the start to
/// the review date, repeats allowed, quantity), the same in R4 and GP Connect's STU3.
pub(crate) fn course_instructions(j: &mut Json, m: &MedicationCourse) {
    j.arr("dosageInstruction")
        .begin()
        .kstr("text", m.dose)
        .end()
        .end_array();
    j.obj("dispenseRequest")
        .obj("validityPeriod")
        .kdate("start", m.start);
    if let Some(review) = m.review_date {
        j.kdate("end", review.max(m.start));
    }
    j.end();
    if m.repeat {
        j.ku64(
            "numberOfRepeatsAllowed",
            u64::from(m.authorised_issues.saturating_sub(1)),
        );
    }
    j.obj("quantity")
        .key("value")
        .u64(u64::from(m.quantity))
        .kstr("unit", m.drug.unit)
        .end()
        .end();
}

pub(crate) fn simple_cc(j: &mut Json, key: &str, system: &str, code: &str, display: Option<&str>) {
    j.obj(key).arr("coding");
    coding(j, system, code, display);
    j.end_array().end();
}

pub(crate) fn drug_cc(j: &mut Json, key: &str, drug: &Drug) {
    let system = match drug.origin() {
        CodeOrigin::Verified => cs::DMD,
        CodeOrigin::Synthetic => SYNTHETIC_DMD_SYSTEM,
    };
    j.obj(key).arr("coding");
    coding(j, system, drug.code(), Some(drug.name));
    j.end_array().kstr("text", drug.name).end();
}

pub(crate) fn name_json(j: &mut Json, name: &HumanName, use_: &str) {
    j.begin()
        .kstr("use", use_)
        .kstr("family", &name.family)
        .arr("given");
    for g in &name.given {
        j.str(g);
    }
    j.end_array();
    if let Some(p) = name.prefix {
        j.arr("prefix").str(p).end_array();
    }
    j.end();
}

pub(crate) fn address_json(j: &mut Json, a: &Address, use_: &str) {
    j.begin().kstr("use", use_).arr("line");
    for l in &a.lines {
        j.str(l);
    }
    j.str(a.district).end_array();
    j.kstr("city", a.city)
        .kstr("postalCode", &a.postcode)
        .kstr("country", "GB")
        .end();
}

fn staff_ref(j: &mut Json, key: &str, practice: &Practice, staff: usize) {
    let id = &practice.staff[staff.min(practice.staff.len() - 1)].id;
    j.reference(key, "Practitioner", id);
}

/// `YYYY-MM-DDThh:mm:00±zz:zz` plus `minutes`.
fn end_of(at: DateTime, minutes: u16) -> DateTime {
    at.plus_minutes(minutes)
}

/// The PCN and practice-level resources: Organizations, Practitioners, Locations, Schedules,
/// Slots and the booked future Appointments.
pub fn write_pcn(out: &mut FhirBuffers, pcn: &Pcn, books: &[AppointmentBook]) {
    {
        let mut j = out.start(ResourceType::Organization);
        j.kstr("id", pcn.ods.as_str());
        security(&mut j, &[HTEST]);
        j.arr("identifier")
            .begin()
            .kstr("system", ids::ODS_ORGANISATION_CODE)
            .kstr("value", pcn.ods.as_str())
            .end()
            .end_array()
            .kbool("active", true)
            .arr("type")
            .begin()
            .kstr("text", "PRIMARY CARE NETWORK (ODS role RO272)")
            .end()
            .end_array()
            .kstr("name", &pcn.name)
            .arr("alias")
            .str("Synthetic test data generated by keel-sim")
            .end_array();
        finish(j);
    }
    for p in &pcn.practices {
        {
            let mut j = out.start(ResourceType::Organization);
            j.kstr("id", p.ods.as_str());
            security(&mut j, &[HTEST]);
            j.arr("extension");
            j.begin()
                .kstr("url", &format!("{SIM_EXT}gp-system"))
                .kstr("valueCode", p.system.key())
                .end();
            j.begin()
                .kstr("url", &format!("{SIM_EXT}legacy-coding-scheme"))
                .kstr("valueCode", p.config.legacy_scheme.key())
                .end();
            j.end_array();
            j.arr("identifier")
                .begin()
                .kstr("system", ids::ODS_ORGANISATION_CODE)
                .kstr("value", p.ods.as_str())
                .end()
                .end_array()
                .kbool("active", true)
                .arr("type")
                .begin()
                .kstr("text", "GP PRACTICE (ODS role RO76)")
                .end()
                .end_array()
                .kstr("name", &p.name)
                .arr("alias")
                .str("Synthetic test data generated by keel-sim")
                .end_array()
                .arr("telecom")
                .begin()
                .kstr("system", "phone")
                .kstr("value", &p.phone)
                .kstr("use", "work")
                .end()
                .end_array()
                .arr("address");
            address_json(&mut j, &p.address, "work");
            j.end_array()
                .reference("partOf", "Organization", pcn.ods.as_str());
            finish(j);
        }
        let site = format!("{}-site", p.ods);
        {
            let mut j = out.start(ResourceType::Location);
            j.kstr("id", &site);
            security(&mut j, &[HTEST]);
            j.kstr("status", "active")
                .kstr("name", &p.name)
                .kstr("mode", "instance")
                .key("address");
            address_json(&mut j, &p.address, "work");
            j.reference("managingOrganization", "Organization", p.ods.as_str());
            finish(j);
        }
        for s in &p.staff {
            let mut j = out.start(ResourceType::Practitioner);
            j.kstr("id", &s.id);
            security(&mut j, &[HTEST]);
            j.arr("identifier")
                .begin()
                .kstr("system", STAFF_SYSTEM)
                .kstr("value", &s.id)
                .end()
                .end_array()
                .kbool("active", true)
                .arr("name");
            name_json(&mut j, &s.name, "official");
            j.end_array()
                .kstr("gender", s.gender.key())
                .arr("qualification")
                .begin()
                .obj("code")
                .kstr("text", s.role.display())
                .end()
                .end()
                .end_array();
            finish(j);
        }
    }
    for book in books {
        let p = &pcn.practices[book.practice];
        let site = format!("{}-site", p.ods);
        let last_day = book
            .slots
            .iter()
            .map(|s| s.start.date)
            .max()
            .unwrap_or(book.first_day);
        let mut scheduled: Vec<usize> = book.slots.iter().map(|s| s.staff).collect();
        scheduled.sort_unstable();
        scheduled.dedup();
        for &staff in &scheduled {
            let mut j = out.start(ResourceType::Schedule);
            j.key("id").idn(p.ods.as_str(), "sched-", staff as u64);
            j.kbool("active", true).arr("actor");
            j.ref_value("Practitioner", &p.staff[staff].id)
                .ref_value("Location", &site)
                .end_array()
                .obj("planningHorizon")
                .kdate("start", book.first_day)
                .kdate("end", last_day)
                .end();
            finish(j);
        }
        for slot in &book.slots {
            let stamp = crate::population::compact_datetime(slot.start);
            {
                let mut j = out.start(ResourceType::Slot);
                j.kstr("id", &slot.id);
                j.key("schedule").ref_value_n(
                    "Schedule",
                    p.ods.as_str(),
                    "sched-",
                    slot.staff as u64,
                );
                j.kstr(
                    "status",
                    if slot.booked.is_some() {
                        "busy"
                    } else {
                        "free"
                    },
                )
                .key("start")
                .datetime(slot.start)
                .key("end")
                .datetime(end_of(slot.start, slot.minutes));
                finish(j);
            }
            if let Some(patient) = &slot.booked {
                let mut j = out.start(ResourceType::Appointment);
                j.kstr("id", &format!("{}-fa-{}-{}", p.ods, slot.staff, stamp));
                j.kstr("status", "booked")
                    .kstr("description", booking_description(p.staff[slot.staff].role))
                    .key("start")
                    .datetime(slot.start)
                    .key("end")
                    .datetime(end_of(slot.start, slot.minutes))
                    .ku64("minutesDuration", u64::from(slot.minutes))
                    .arr("slot")
                    .ref_value("Slot", &slot.id)
                    .end_array()
                    .key("created")
                    .date(book.first_day.plus(-1))
                    .arr("participant");
                j.begin()
                    .reference("actor", "Patient", patient)
                    .kstr("status", "accepted")
                    .end();
                j.begin();
                staff_ref(&mut j, "actor", p, slot.staff);
                j.kstr("status", "accepted").end();
                j.begin()
                    .reference("actor", "Location", &site)
                    .kstr("status", "accepted")
                    .end();
                j.end_array();
                finish(j);
            }
        }
    }
}

fn booking_description(role: StaffRole) -> &'static str {
    match role {
        StaffRole::Gp => "GP appointment",
        StaffRole::PracticeNurse => "Practice nurse appointment",
        StaffRole::HealthcareAssistant => "Healthcare assistant appointment",
        StaffRole::Pharmacist => "Clinical pharmacist appointment",
        StaffRole::Administrator => "Administrative appointment",
    }
}

/// Writes every resource of one patient record.
pub fn write_record(out: &mut FhirBuffers, pcn: &Pcn, record: &PatientRecord) {
    let p = &pcn.practices[record.practice];
    write_patient(out, p, record);
    let rid = record.id.as_str();
    write_registration(out, p, record);
    let c = &record.clinical;
    for cond in &c.conditions {
        write_condition(out, p, rid, cond);
    }
    for m in &c.medications {
        write_medication(out, p, rid, m);
    }
    for o in &c.observations {
        write_observation(out, p, rid, o);
    }
    for a in &c.allergies {
        write_allergy(out, p, rid, a);
    }
    for i in &c.immunisations {
        write_immunisation(out, p, rid, i);
    }
    for e in &c.consultations {
        write_encounter(out, p, rid, e);
    }
    for a in &c.appointments {
        write_appointment(out, p, rid, a);
    }
    for t in &c.tasks {
        write_task(out, p, rid, t);
    }
}

fn write_patient(out: &mut FhirBuffers, p: &Practice, r: &PatientRecord) {
    let mut j = out.start(ResourceType::Patient);
    j.kstr("id", &r.id);
    let mut labels = vec![HTEST];
    labels.extend(confidentiality_label(r.confidentiality));
    security(&mut j, &labels);
    if let Some(death) = r.death_date {
        j.arr("extension")
            .begin()
            .kstr("url", DEATH_NOTIFICATION_EXT)
            .arr("extension")
            .begin()
            .kstr("url", "deathNotificationStatus");
        simple_cc(
            &mut j,
            "valueCodeableConcept",
            DEATH_NOTIFICATION_CS,
            "2",
            None,
        );
        j.end()
            .begin()
            .kstr("url", "systemEffectiveDate")
            .key("valueDateTime")
            .date(death.plus(3))
            .end()
            .end_array()
            .end()
            .end_array();
    }
    j.arr("identifier");
    if let Some(nhs) = &r.nhs_number {
        j.begin()
            .arr("extension")
            .begin()
            .kstr("url", NHS_VERIFICATION_EXT);
        simple_cc(
            &mut j,
            "valueCodeableConcept",
            NHS_VERIFICATION_CS,
            r.nhs_status.code(),
            Some(r.nhs_status.display()),
        );
        j.end()
            .end_array()
            .kstr("system", ids::NHS_NUMBER)
            .kstr("value", nhs.as_str())
            .end();
    }
    j.begin()
        .key("system")
        .str2(LOCAL_NUMBER_SYSTEM, p.ods.as_str())
        .kstr("value", &r.local_number)
        .end()
        .end_array();
    j.kbool(
        "active",
        r.registration.is_active() && r.death_date.is_none(),
    );
    j.arr("name");
    name_json(&mut j, &r.name, "official");
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
        .kdate("birthDate", r.birth_date);
    if let Some(d) = r.death_date {
        j.kdate("deceasedDateTime", d);
    }
    j.arr("address");
    address_json(&mut j, &r.address, "home");
    j.end_array();
    j.arr("generalPractitioner")
        .ref_value("Organization", p.ods.as_str())
        .end_array()
        .reference("managingOrganization", "Organization", p.ods.as_str());
    finish(j);
}

fn write_registration(out: &mut FhirBuffers, p: &Practice, r: &PatientRecord) {
    let reg = &r.registration;
    let mut j = out.start(ResourceType::EpisodeOfCare);
    j.key("id").str2(&r.id, "-reg");
    j.kstr(
        "status",
        if reg.is_active() {
            "active"
        } else {
            "finished"
        },
    )
    .arr("type")
    .begin()
    .arr("coding");
    let (code, display) = match reg.kind {
        RegistrationType::Regular => ("R", "Regular"),
        RegistrationType::Temporary => ("T", "Temporary"),
    };
    coding(&mut j, REGISTRATION_TYPE_CS, code, Some(display));
    j.end_array().end().end_array();
    j.reference("patient", "Patient", &r.id)
        .reference("managingOrganization", "Organization", p.ods.as_str())
        .obj("period")
        .kdate("start", reg.start);
    if let Some((end, _)) = reg.end {
        j.kdate("end", end);
    }
    j.end();
    finish(j);
}

fn write_condition(out: &mut FhirBuffers, p: &Practice, rid: &str, c: &Condition) {
    let mut j = out.start(ResourceType::Condition);
    j.key("id").idn(rid, "c", u64::from(c.id));
    if c.sensitivity.is_some() {
        security(&mut j, &[(CONFIDENTIALITY, "R", "restricted")]);
    }
    let status = match c.status {
        ConditionStatus::Active => "active",
        ConditionStatus::Resolved(_) => "resolved",
    };
    simple_cc(
        &mut j,
        "clinicalStatus",
        "http://terminology.hl7.org/CodeSystem/condition-clinical",
        status,
        None,
    );
    simple_cc(
        &mut j,
        "verificationStatus",
        "http://terminology.hl7.org/CodeSystem/condition-ver-status",
        "confirmed",
        None,
    );
    j.arr("category").begin().arr("coding");
    coding(
        &mut j,
        "http://terminology.hl7.org/CodeSystem/condition-category",
        if c.chronic {
            "problem-list-item"
        } else {
            "encounter-diagnosis"
        },
        None,
    );
    j.end_array().end().end_array();
    concept_cc(&mut j, "code", c.concept, c.coding);
    j.reference("subject", "Patient", rid);
    if let Some(e) = c.consultation {
        j.reference_n("encounter", "Encounter", rid, "e", u64::from(e));
    }
    j.kdate("onsetDateTime", c.onset);
    if let ConditionStatus::Resolved(d) = c.status {
        j.kdate("abatementDateTime", d.max(c.onset));
    }
    j.kdate("recordedDate", c.recorded);
    staff_ref(&mut j, "asserter", p, c.clinician);
    finish(j);
}

fn write_medication(out: &mut FhirBuffers, p: &Practice, rid: &str, m: &MedicationCourse) {
    let id = u64::from(m.id);
    let (statement_status, request_status) = match m.status {
        MedicationStatus::Active => ("active", "active"),
        MedicationStatus::Completed => ("completed", "completed"),
        MedicationStatus::Stopped(_) => ("stopped", "stopped"),
    };
    {
        let mut j = out.start(ResourceType::MedicationStatement);
        j.key("id").idn(rid, "ms", id);
        if let Some(last) = m.issues.last() {
            j.arr("extension")
                .begin()
                .kstr("url", LAST_ISSUE_EXT)
                .key("valueDateTime")
                .date(*last)
                .end()
                .end_array();
        }
        j.arr("basedOn")
            .ref_value_n("MedicationRequest", rid, "mp", id)
            .end_array();
        j.kstr("status", statement_status);
        drug_cc(&mut j, "medicationCodeableConcept", m.drug);
        j.reference("subject", "Patient", rid)
            .obj("effectivePeriod")
            .kdate("start", m.start);
        match m.status {
            MedicationStatus::Stopped(d) => {
                j.kdate("end", d.max(m.start));
            }
            MedicationStatus::Completed => {
                j.kdate("end", m.start.plus(7));
            }
            MedicationStatus::Active => {}
        }
        j.end().kdate("dateAsserted", m.start);
        if let Some(ind) = m.indication {
            j.arr("reasonReference")
                .ref_value_n("Condition", rid, "c", u64::from(ind))
                .end_array();
        }
        j.arr("dosage")
            .begin()
            .kstr("text", m.dose)
            .end()
            .end_array();
        finish(j);
    }
    {
        let mut j = out.start(ResourceType::MedicationRequest);
        j.key("id").idn(rid, "mp", id);
        j.kstr("status", request_status).kstr("intent", "plan");
        drug_cc(&mut j, "medicationCodeableConcept", m.drug);
        j.reference("subject", "Patient", rid)
            .kdate("authoredOn", m.start);
        staff_ref(&mut j, "requester", p, m.clinician);
        if let Some(ind) = m.indication {
            j.arr("reasonReference")
                .ref_value_n("Condition", rid, "c", u64::from(ind))
                .end_array();
        }
        simple_cc(
            &mut j,
            "courseOfTherapyType",
            "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy",
            if m.repeat { "continuous" } else { "acute" },
            None,
        );
        course_instructions(&mut j, m);
        finish(j);
    }
    for (k, date) in m.issues.iter().enumerate() {
        let mut j = out.start(ResourceType::MedicationRequest);
        j.key("id");
        // `{rid}-mi{id}-{k}`
        let mut issue_id = Vec::with_capacity(rid.len() + 16);
        issue_id.extend_from_slice(rid.as_bytes());
        issue_id.extend_from_slice(b"-mi");
        push_u64(&mut issue_id, id);
        issue_id.push(b'-');
        push_u64(&mut issue_id, k as u64 + 1);
        let issue_id = String::from_utf8(issue_id).unwrap_or_default();
        j.str(&issue_id);
        j.arr("basedOn")
            .ref_value_n("MedicationRequest", rid, "mp", id)
            .end_array();
        j.kstr("status", "completed").kstr("intent", "order");
        drug_cc(&mut j, "medicationCodeableConcept", m.drug);
        j.reference("subject", "Patient", rid)
            .kdate("authoredOn", *date);
        staff_ref(&mut j, "requester", p, m.clinician);
        j.obj("dispenseRequest")
            .obj("quantity")
            .key("value")
            .u64(u64::from(m.quantity))
            .kstr("unit", m.drug.unit)
            .end()
            .end();
        finish(j);
    }
}

fn quantity_json(
    j: &mut Json,
    key: &str,
    value: i32,
    scale: u8,
    unit: &str,
    comparator: Option<&str>,
) {
    j.obj(key).key("value").fixed(i64::from(value), scale);
    if let Some(c) = comparator {
        j.kstr("comparator", c);
    }
    j.kstr("unit", unit)
        .kstr("system", cs::UCUM)
        .kstr("code", unit)
        .end();
}

fn category(j: &mut Json, code: &str) {
    j.arr("category").begin().arr("coding");
    coding(
        j,
        "http://terminology.hl7.org/CodeSystem/observation-category",
        code,
        None,
    );
    j.end_array().end().end_array();
}

fn write_observation(out: &mut FhirBuffers, p: &Practice, rid: &str, o: &Observation) {
    let mut j = out.start(ResourceType::Observation);
    j.key("id").idn(rid, "o", u64::from(o.id));
    if o.sensitivity.is_some() {
        security(&mut j, &[(CONFIDENTIALITY, "R", "restricted")]);
    }
    j.kstr("status", "final");
    let cat = if o.laboratory {
        Some("laboratory")
    } else {
        match o.concept.key {
            "bp" | "bmi" | "weight" | "height" => Some("vital-signs"),
            "smoker" | "ex-smoker" | "never-smoked" => Some("social-history"),
            _ => None,
        }
    };
    if let Some(c) = cat {
        category(&mut j, c);
    }
    concept_cc(&mut j, "code", o.concept, o.coding);
    j.reference("subject", "Patient", rid);
    if let Some(e) = o.consultation {
        j.reference_n("encounter", "Encounter", rid, "e", u64::from(e));
    }
    j.kdate("effectiveDateTime", o.date);
    j.arr("performer");
    j.ref_value(
        "Practitioner",
        &p.staff[o.clinician.min(p.staff.len() - 1)].id,
    );
    j.end_array();
    match o.value {
        ObservationValue::BloodPressure {
            systolic,
            diastolic,
        } => {
            j.arr("component");
            for (concept, v) in [(&codes::SYSTOLIC, systolic), (&codes::DIASTOLIC, diastolic)] {
                j.begin();
                concept_cc(&mut j, "code", concept, o.coding);
                quantity_json(&mut j, "valueQuantity", i32::from(v), 0, "mm[Hg]", None);
                j.end();
            }
            j.end_array();
        }
        ObservationValue::Quantity {
            value,
            scale,
            unit,
            comparator,
        } => {
            quantity_json(&mut j, "valueQuantity", value, scale, unit, comparator);
        }
        ObservationValue::Text => {
            j.kstr("valueString", o.text.as_deref().unwrap_or(""));
        }
        ObservationValue::None => {}
    }
    finish(j);
}

fn write_allergy(out: &mut FhirBuffers, p: &Practice, rid: &str, a: &Allergy) {
    let mut j = out.start(ResourceType::AllergyIntolerance);
    j.key("id").idn(rid, "a", u64::from(a.id));
    simple_cc(
        &mut j,
        "clinicalStatus",
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
        if a.active { "active" } else { "resolved" },
        None,
    );
    simple_cc(
        &mut j,
        "verificationStatus",
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
        "confirmed",
        None,
    );
    j.kstr("type", "allergy")
        .arr("category")
        .str(a.category)
        .end_array();
    concept_cc(&mut j, "code", a.concept, CodingStyle::Snomed);
    j.reference("patient", "Patient", rid)
        .kdate("recordedDate", a.recorded);
    staff_ref(&mut j, "recorder", p, a.clinician);
    if let Some(reaction) = a.reaction {
        j.arr("reaction").begin().arr("manifestation").begin();
        codings(&mut j, reaction, CodingStyle::Snomed);
        j.kstr("text", reaction.display)
            .end()
            .end_array()
            .end()
            .end_array();
    }
    finish(j);
}

fn write_immunisation(out: &mut FhirBuffers, p: &Practice, rid: &str, i: &Immunisation) {
    let mut j = out.start(ResourceType::Immunization);
    j.key("id").idn(rid, "i", u64::from(i.id));
    j.arr("extension")
        .begin()
        .kstr("url", VACCINATION_PROCEDURE_EXT);
    concept_cc(
        &mut j,
        "valueCodeableConcept",
        i.procedure,
        CodingStyle::Snomed,
    );
    j.end().end_array();
    j.kstr("status", "completed")
        .obj("vaccineCode")
        .kstr("text", i.product)
        .end()
        .reference("patient", "Patient", rid)
        .kdate("occurrenceDateTime", i.date)
        .kbool("primarySource", true)
        .arr("performer")
        .begin();
    staff_ref(&mut j, "actor", p, i.clinician);
    j.end().end_array();
    finish(j);
}

fn write_encounter(out: &mut FhirBuffers, p: &Practice, rid: &str, e: &Consultation) {
    let id = u64::from(e.id);
    {
        let mut j = out.start(ResourceType::Encounter);
        j.key("id").idn(rid, "e", id);
        if e.confidential {
            security(&mut j, &[(CONFIDENTIALITY, "R", "restricted")]);
        }
        let (class, class_display, type_concept) = match e.kind {
            ConsultationKind::Surgery => ("AMB", "ambulatory", &codes::CONSULTATION),
            ConsultationKind::Telephone => ("VR", "virtual", &codes::TELEPHONE_ENCOUNTER),
            ConsultationKind::HomeVisit => ("HH", "home health", &codes::HOME_VISIT),
        };
        j.kstr("status", "finished").key("class");
        coding(
            &mut j,
            "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            class,
            Some(class_display),
        );
        j.arr("type").begin();
        codings(&mut j, type_concept, CodingStyle::Snomed);
        j.kstr("text", type_concept.display).end().end_array();
        j.reference("subject", "Patient", rid)
            .arr("participant")
            .begin();
        staff_ref(&mut j, "individual", p, e.clinician);
        j.end().end_array();
        if let Some(a) = e.appointment {
            j.arr("appointment")
                .ref_value_n("Appointment", rid, "p", u64::from(a))
                .end_array();
        }
        j.obj("period")
            .key("start")
            .datetime(e.start)
            .key("end")
            .datetime(end_of(e.start, e.minutes))
            .end()
            .reference("serviceProvider", "Organization", p.ods.as_str());
        finish(j);
    }
    // The consultation's free text, as GP Connect carries it: a "Comment note" Observation.
    let mut j = out.start(ResourceType::Observation);
    j.key("id").idn(rid, "n", id);
    if e.confidential {
        security(&mut j, &[(CONFIDENTIALITY, "R", "restricted")]);
    }
    j.kstr("status", "final");
    concept_cc(&mut j, "code", &codes::COMMENT_NOTE, CodingStyle::Snomed);
    j.reference("subject", "Patient", rid)
        .reference_n("encounter", "Encounter", rid, "e", id)
        .key("effectiveDateTime")
        .datetime(e.start)
        .arr("performer");
    j.ref_value(
        "Practitioner",
        &p.staff[e.clinician.min(p.staff.len() - 1)].id,
    );
    j.end_array().kstr("valueString", &e.text);
    finish(j);
}

fn write_appointment(out: &mut FhirBuffers, p: &Practice, rid: &str, a: &Appointment) {
    let mut j = out.start(ResourceType::Appointment);
    j.key("id").idn(rid, "p", u64::from(a.id));
    let description = match a.kind {
        ConsultationKind::Telephone => "Telephone appointment",
        ConsultationKind::HomeVisit => "Home visit",
        ConsultationKind::Surgery => {
            booking_description(p.staff[a.clinician.min(p.staff.len() - 1)].role)
        }
    };
    j.kstr("status", a.status.fhir())
        .kstr("description", description)
        .key("start")
        .datetime(a.start)
        .key("end")
        .datetime(end_of(a.start, a.minutes))
        .ku64("minutesDuration", u64::from(a.minutes))
        .kdate("created", a.booked.min(a.start.date))
        .arr("participant");
    j.begin()
        .reference("actor", "Patient", rid)
        .kstr("status", "accepted")
        .end();
    j.begin();
    staff_ref(&mut j, "actor", p, a.clinician);
    j.kstr("status", "accepted").end().end_array();
    finish(j);
}

fn write_task(out: &mut FhirBuffers, p: &Practice, rid: &str, t: &Task) {
    let mut j = out.start(ResourceType::Task);
    j.key("id").idn(rid, "t", u64::from(t.id));
    j.kstr("status", t.status.fhir())
        .kstr("intent", "order")
        .kstr("priority", if t.urgent { "urgent" } else { "routine" })
        .kstr("description", t.description)
        .reference("for", "Patient", rid)
        .key("authoredOn")
        .datetime(t.created);
    staff_ref(&mut j, "requester", p, t.requester);
    staff_ref(&mut j, "owner", p, t.owner);
    finish(j);
}
