//! The native export: the truth model as compact JSON Lines, one file per practice.
//!
//! Layout of `DIR/native/`:
//!
//! - `pcn.json`: format tag, options, the PCN, every practice (system, local configuration,
//!   staff), and the concept and drug tables (`key` → codes; drugs say whether their dm+d id
//!   is `verified` or `synthetic`).
//! - `{ODS}.patients.jsonl`: one line per patient record the practice holds (primary records,
//!   closed records of patients who moved to another practice, duplicates), in person order.
//!   Entries refer to concepts and drugs by key and to staff by index into the practice's
//!   `staff` array; `cs` says how an entry was coded (`sct`, `read-v2+sct`, `read-v2`,
//!   `ctv3+sct`, `ctv3`). Dates are `YYYY-MM-DD`, local times `YYYY-MM-DDThh:mm`.
//! - `{ODS}.book.jsonl`: the practice's appointment book for the ten working days after the
//!   as-of date (one slot per line, with the booked record id or null).
//! - `manifest.json`: counts, written last.
//!
//! Per record: `id`, `person`, `role` (`primary` | `previous-registration` | `duplicate`),
//! `duplicateOf`, `localNumber`, `nhsNumber`, `nhsStatus` (England code), `name`, `sex`,
//! `gender`, `birthDate`, `deathDate`, `address`, `telecom` (`[kind, value]` pairs),
//! `registration` {`type`, `start`, `end`, `endReason`}, `confidentiality` (U/R/V), `quality`
//! (deliberate defects), then the clinical arrays `conditions`, `medications` (with `issues`),
//! `observations`, `allergies`, `immunisations`, `consultations`, `appointments`, `tasks`
//! (each absent when empty).

use crate::codes::{ALL_CONCEPTS, ALL_DRUGS, CodeOrigin};
use crate::date::{Date, DateTime};
use crate::json::Json;
use crate::model::*;
use crate::population::Options;

pub const FORMAT: &str = "keel-sim-native/1";

fn local(j: &mut Json, key: &str, at: DateTime) {
    let mut s = Vec::with_capacity(16);
    at.date.write_to(&mut s);
    s.push(b'T');
    at.write_hhmm(&mut s);
    j.kstr(key, std::str::from_utf8(&s).unwrap_or(""));
}

fn hhmm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn opt_date(j: &mut Json, key: &str, d: Option<Date>) {
    match d {
        Some(d) => j.kdate(key, d),
        None => j.key(key).null(),
    };
}

fn name(j: &mut Json, key: &str, n: &HumanName) {
    j.obj(key);
    j.kopt("prefix", n.prefix).arr("given");
    for g in &n.given {
        j.str(g);
    }
    j.end_array().kstr("family", &n.family).end();
}

fn address(j: &mut Json, key: &str, a: &Address) {
    j.obj(key).arr("lines");
    for l in &a.lines {
        j.str(l);
    }
    j.end_array()
        .kstr("district", a.district)
        .kstr("city", a.city)
        .kstr("postcode", &a.postcode)
        .end();
}

/// `pcn.json`.
pub fn pcn_json(options: &Options, pcn: &Pcn) -> Vec<u8> {
    let mut out = Vec::new();
    let mut j = Json::new(&mut out);
    j.begin().kstr("format", FORMAT);
    j.obj("options")
        .ku64("seed", options.seed)
        .ku64("patients", options.patients)
        .ku64("practices", options.practices as u64)
        .kbool("demographicsOnly", options.demographics_only)
        .kdate("asOf", options.as_of)
        .end();
    j.obj("pcn")
        .kstr("ods", pcn.ods.as_str())
        .kstr("name", &pcn.name)
        .kstr("area", pcn.area.key)
        .end();
    j.arr("practices");
    for p in &pcn.practices {
        let c = &p.config;
        j.begin()
            .ku64("index", p.index as u64)
            .kstr("ods", p.ods.as_str())
            .kstr("name", &p.name)
            .kstr("system", p.system.key())
            .ku64("listSize", p.list_size)
            .ku64("firstPerson", p.first_person)
            .kstr("phone", &p.phone);
        address(&mut j, "address", &p.address);
        j.obj("config")
            .kstr("legacyScheme", c.legacy_scheme.key())
            .kstr(
                "legacyRecording",
                match c.legacy_recording {
                    LegacyRecording::Beside => "beside-snomed",
                    LegacyRecording::Instead => "instead-of-snomed",
                },
            )
            .kdate("snomedFrom", c.snomed_from)
            .kdate("hba1cDcctUntil", c.hba1c_dcct_until)
            .key("hba1cDcctLateRate")
            .fixed((c.hba1c_dcct_late_rate * 1000.0).round() as i64, 3)
            .ku64("gpSlotMinutes", u64::from(c.gp_slot_minutes))
            .ku64("nurseSlotMinutes", u64::from(c.nurse_slot_minutes))
            .kstr("dayStart", &hhmm(c.day_start))
            .kstr("dayEnd", &hhmm(c.day_end))
            .ku64("recordsFromYear", c.records_from_year as u64)
            .kopt("migratedFrom", c.migrated_from)
            .end();
        j.arr("staff");
        for s in &p.staff {
            j.begin().kstr("id", &s.id).kstr("role", s.role.key());
            name(&mut j, "name", &s.name);
            j.kstr("gender", s.gender.key()).end();
        }
        j.end_array().end();
    }
    j.end_array();
    j.arr("concepts");
    for c in ALL_CONCEPTS {
        j.begin()
            .kstr("key", c.key)
            .kstr("sct", c.snomed)
            .kstr("display", c.display);
        if let Some((code, term)) = c.read_v2 {
            j.arr("readV2").str(code).str(term).end_array();
        }
        if let Some((code, term)) = c.ctv3 {
            j.arr("ctv3").str(code).str(term).end_array();
        }
        j.kopt("loinc", c.loinc).end();
    }
    j.end_array();
    j.arr("drugs");
    for d in ALL_DRUGS {
        j.begin()
            .kstr("key", d.key)
            .kstr("dmd", d.code())
            .kstr(
                "origin",
                match d.origin() {
                    CodeOrigin::Verified => "verified",
                    CodeOrigin::Synthetic => "synthetic",
                },
            )
            .kstr("name", d.name)
            .kstr("unit", d.unit)
            .ku64("quantity", u64::from(d.quantity))
            .kstr("dose", d.dose)
            .end();
    }
    j.end_array().end().newline();
    out
}

/// One line of `{ODS}.book.jsonl` per slot.
pub fn book_lines(out: &mut Vec<u8>, book: &AppointmentBook) {
    let mut j = Json::new(out);
    for s in &book.slots {
        j.begin().kstr("id", &s.id).ku64("staff", s.staff as u64);
        local(&mut j, "start", s.start);
        j.ku64("minutes", u64::from(s.minutes));
        match &s.booked {
            Some(r) => j.kstr("booked", r),
            None => j.key("booked").null(),
        };
        j.end().newline();
    }
}

/// One line for a patient record.
pub fn record_line(out: &mut Vec<u8>, person: &Person, r: &PatientRecord) {
    let mut j = Json::new(out);
    j.begin()
        .kstr("id", &r.id)
        .ku64("person", person.index)
        .kstr("role", r.role.key());
    match &r.duplicate_of {
        Some(d) => j.kstr("duplicateOf", d),
        None => j.key("duplicateOf").null(),
    };
    j.kstr("localNumber", &r.local_number);
    match &r.nhs_number {
        Some(n) => j.kstr("nhsNumber", n.as_str()),
        None => j.key("nhsNumber").null(),
    };
    j.kstr("nhsStatus", r.nhs_status.code());
    name(&mut j, "name", &r.name);
    j.kstr(
        "sex",
        match r.sex {
            Sex::Female => "female",
            Sex::Male => "male",
        },
    )
    .kstr("gender", r.gender.key())
    .kdate("birthDate", r.birth_date);
    opt_date(&mut j, "deathDate", r.death_date);
    address(&mut j, "address", &r.address);
    j.arr("telecom");
    for t in &r.telecom {
        let kind = match t.kind {
            TelecomKind::Mobile => "mobile",
            TelecomKind::Home => "home",
            TelecomKind::Email => "email",
        };
        j.begin_array().str(kind).str(&t.value).end_array();
    }
    j.end_array();
    let reg = &r.registration;
    j.obj("registration")
        .kstr("type", reg.kind.key())
        .kdate("start", reg.start);
    opt_date(&mut j, "end", reg.end.map(|e| e.0));
    match reg.end {
        Some((_, reason)) => j.kstr("endReason", reason.key()),
        None => j.key("endReason").null(),
    };
    j.end()
        .kstr("confidentiality", r.confidentiality.code())
        .arr("quality");
    for q in &r.quality {
        j.str(q.key());
    }
    j.end_array();
    clinical(&mut j, &r.clinical);
    j.end().newline();
}

fn clinical(j: &mut Json, c: &ClinicalRecord) {
    if !c.conditions.is_empty() {
        j.arr("conditions");
        for x in &c.conditions {
            j.begin()
                .ku64("id", u64::from(x.id))
                .kstr("k", x.concept.key)
                .kstr("cs", x.coding.key())
                .kdate("onset", x.onset)
                .kdate("recorded", x.recorded);
            match x.status {
                ConditionStatus::Active => j.kstr("status", "active"),
                ConditionStatus::Resolved(d) => j.kstr("status", "resolved").kdate("resolved", d),
            };
            j.kbool("chronic", x.chronic);
            if let Some(s) = x.sensitivity {
                j.kstr("sensitive", s.key());
            }
            if let Some(e) = x.consultation {
                j.ku64("consultation", u64::from(e));
            }
            j.ku64("by", x.clinician as u64).end();
        }
        j.end_array();
    }
    if !c.medications.is_empty() {
        j.arr("medications");
        for m in &c.medications {
            j.begin()
                .ku64("id", u64::from(m.id))
                .kstr("k", m.drug.key)
                .kdate("start", m.start);
            match m.status {
                MedicationStatus::Active => j.kstr("status", "active"),
                MedicationStatus::Completed => j.kstr("status", "completed"),
                MedicationStatus::Stopped(d) => j.kstr("status", "stopped").kdate("stopped", d),
            };
            j.kbool("repeat", m.repeat);
            if m.repeat {
                j.ku64("authorised", u64::from(m.authorised_issues));
            }
            if let Some(r) = m.review_date {
                j.kdate("review", r);
            }
            j.ku64("quantity", u64::from(m.quantity));
            if let Some(i) = m.indication {
                j.ku64("indication", u64::from(i));
            }
            j.ku64("by", m.clinician as u64).arr("issues");
            for d in &m.issues {
                j.date(*d);
            }
            j.end_array().end();
        }
        j.end_array();
    }
    if !c.observations.is_empty() {
        j.arr("observations");
        for o in &c.observations {
            j.begin()
                .ku64("id", u64::from(o.id))
                .kstr("k", o.concept.key)
                .kstr("cs", o.coding.key())
                .kdate("date", o.date);
            match o.value {
                ObservationValue::BloodPressure {
                    systolic,
                    diastolic,
                } => {
                    j.arr("value")
                        .u64(u64::from(systolic))
                        .u64(u64::from(diastolic))
                        .end_array()
                        .kstr("unit", "mm[Hg]");
                }
                ObservationValue::Quantity {
                    value,
                    scale,
                    unit,
                    comparator,
                } => {
                    j.key("value").fixed(i64::from(value), scale);
                    j.kstr("unit", unit);
                    j.kopt("comparator", comparator);
                }
                ObservationValue::Text => {
                    j.kopt("text", o.text.as_deref());
                }
                ObservationValue::None => {}
            }
            if o.laboratory {
                j.kbool("lab", true);
            }
            if let Some(e) = o.consultation {
                j.ku64("consultation", u64::from(e));
            }
            j.ku64("by", o.clinician as u64).end();
        }
        j.end_array();
    }
    if !c.allergies.is_empty() {
        j.arr("allergies");
        for a in &c.allergies {
            j.begin()
                .ku64("id", u64::from(a.id))
                .kstr("k", a.concept.key)
                .kdate("recorded", a.recorded)
                .kstr("category", a.category)
                .kopt("reaction", a.reaction.map(|r| r.key))
                .kbool("active", a.active)
                .ku64("by", a.clinician as u64)
                .end();
        }
        j.end_array();
    }
    if !c.immunisations.is_empty() {
        j.arr("immunisations");
        for i in &c.immunisations {
            j.begin()
                .ku64("id", u64::from(i.id))
                .kstr("k", i.procedure.key)
                .kstr("product", i.product)
                .kdate("date", i.date)
                .ku64("by", i.clinician as u64)
                .end();
        }
        j.end_array();
    }
    if !c.consultations.is_empty() {
        j.arr("consultations");
        for e in &c.consultations {
            j.begin().ku64("id", u64::from(e.id));
            local(j, "start", e.start);
            j.ku64("minutes", u64::from(e.minutes))
                .kstr("kind", e.kind.key())
                .ku64("by", e.clinician as u64)
                .kstr("text", &e.text);
            if e.confidential {
                j.kbool("confidential", true);
            }
            if let Some(a) = e.appointment {
                j.ku64("appointment", u64::from(a));
            }
            j.end();
        }
        j.end_array();
    }
    if !c.appointments.is_empty() {
        j.arr("appointments");
        for a in &c.appointments {
            j.begin().ku64("id", u64::from(a.id));
            local(j, "start", a.start);
            j.ku64("minutes", u64::from(a.minutes))
                .kstr("status", a.status.fhir())
                .kstr("kind", a.kind.key())
                .ku64("by", a.clinician as u64)
                .kdate("booked", a.booked)
                .end();
        }
        j.end_array();
    }
    if !c.tasks.is_empty() {
        j.arr("tasks");
        for t in &c.tasks {
            j.begin().ku64("id", u64::from(t.id));
            local(j, "created", t.created);
            j.kstr("description", t.description)
                .kstr("status", t.status.fhir())
                .ku64("owner", t.owner as u64)
                .ku64("requester", t.requester as u64)
                .kbool("urgent", t.urgent)
                .end();
        }
        j.end_array();
    }
}
