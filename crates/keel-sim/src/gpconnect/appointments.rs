//! Appointment Management (reference sheet §3.7) over the population's appointment books
//! ([`crate::population::Population::appointment_book`]), with the bookings made through the
//! simulator held in memory and visible in later reads and slot searches.
//!
//! - Slot search: `start=ge<date|dateTime>` and `end=le<date|dateTime>` once each, a window
//!   of at most 14 days, `status=free` and `_include=Slot:schedule` mandatory, the three
//!   `_include:recurse` values (Practitioner, Location, Location's managing Organization);
//!   `searchFilter` and other parameters are ignored. Errors: 422 `INVALID_PARAMETER`.
//! - Book: 201 with the Appointment (`meta.versionId` 1, `ETag`); the body must be a
//!   `booked` Appointment with a contained booking Organization, its slots adjacent, of one
//!   Schedule, and its start/end those of the slots (422 `INVALID_RESOURCE`); an unknown slot
//!   → 422 `REFERENCE_NOT_FOUND`; a slot no longer free → 409 `DUPLICATE_REJECTED`; an
//!   unknown, deceased, deregistered or S-flag patient → 404 `PATIENT_NOT_FOUND`.
//!   GP Connect has no idempotency key: a retried booking of the same slot answers 409.
//! - Read: 404 `NO_RECORD_FOUND` for an id this simulator did not create.
//! - Amend / cancel (`PUT`, told apart by `Ssp-InteractionID`): `If-Match: W/"<version>"`
//!   when given must be current (409, modelled Spine code `CONFLICT`); amend may change only
//!   `comment` and `description`, cancel only `status` to `cancelled` with the cancellation
//!   reason extension (422 `INVALID_RESOURCE` otherwise, and for a cancelled appointment).
//!   A cancelled appointment frees its slots.
//! - A patient's appointments: `start=ge<date>&start=le<date>` (422 `INVALID_PARAMETER` when
//!   missing, malformed or inverted); the bookings made here, cancelled ones included.
//!
//! Appointment ids are `{ODS}-gpc-{n}`, `n` counting bookings from 1 across the PCN.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::checks::Interaction;
use super::dates::{format_datetime, parse_date, parse_datetime};
use super::error::GpcError;
use super::{GpConnectSimulator, answer, fhir_response, query_pairs};
use crate::date::{Date, DateTime};
use crate::model::{AppointmentBook, BookSlot};

const BOOKING_ORG_EXT: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1";
const CANCELLATION_EXT: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1";
const PROFILE_BASE: &str = "https://fhir.nhs.uk/STU3/StructureDefinition/";
const MAX_WINDOW_DAYS: i32 = 14;

/// Bookings made through the simulator.
#[derive(Debug, Default)]
pub struct Diary {
    books: HashMap<usize, AppointmentBook>,
    /// Slot id → the appointment holding it.
    taken: HashMap<String, String>,
    appointments: BTreeMap<String, Booking>,
    next: u64,
}

#[derive(Debug, Clone)]
struct Booking {
    practice: usize,
    patient: String,
    slots: Vec<String>,
    staff: usize,
    start: DateTime,
    end: DateTime,
    cancelled: Option<String>,
    description: Option<String>,
    comment: Option<String>,
    contained: Value,
    created: Date,
    version: u32,
}

impl Diary {
    fn book(&mut self, sim: &GpConnectSimulator, practice: usize) -> &AppointmentBook {
        self.books
            .entry(practice)
            .or_insert_with(|| sim.records().population().appointment_book(practice))
    }
}

fn diary(sim: &GpConnectSimulator) -> std::sync::MutexGuard<'_, Diary> {
    sim.inner.diary.lock().unwrap_or_else(|e| e.into_inner())
}

fn ods(sim: &GpConnectSimulator, practice: usize) -> &str {
    &sim.inner.providers[practice].ods
}

fn staff_id(sim: &GpConnectSimulator, practice: usize, staff: usize) -> String {
    sim.records().population().pcn().practices[practice].staff[staff]
        .id
        .clone()
}

fn bundle(entries: Vec<Value>) -> Vec<u8> {
    let body = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "entry": entries.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>(),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

// ---- slot search ----

struct SlotSearch {
    from: DateTime,
    to: DateTime,
    practitioner: bool,
    location: bool,
    organization: bool,
}

fn bound(value: &str, end_of_day: bool) -> Option<DateTime> {
    if let Some(d) = parse_date(value) {
        return Some(DateTime::new(d, if end_of_day { 23 * 60 + 59 } else { 0 }));
    }
    parse_datetime(value)
}

fn parse_slot_search(pairs: &[(String, String)]) -> Result<SlotSearch, GpcError> {
    let bad = GpcError::invalid_parameter;
    let single = |name: &str, prefix: &str| -> Result<&str, GpcError> {
        let mut values = pairs.iter().filter(|(k, _)| k == name);
        match (values.next(), values.next()) {
            (Some((_, v)), None) => v
                .strip_prefix(prefix)
                .ok_or_else(|| bad(&format!("{name} must have the '{prefix}' prefix"))),
            (None, _) => Err(bad(&format!("{name} is required"))),
            _ => Err(bad(&format!("{name} may be given once"))),
        }
    };
    let from = bound(single("start", "ge")?, false)
        .ok_or_else(|| bad("start is not a date or dateTime"))?;
    let to =
        bound(single("end", "le")?, true).ok_or_else(|| bad("end is not a date or dateTime"))?;
    if to < from {
        return Err(bad("end is before start"));
    }
    if to.date.since(from.date) > MAX_WINDOW_DAYS {
        return Err(bad("the search window may not exceed 14 days"));
    }
    if single("status", "")? != "free" {
        return Err(bad("status must be 'free'"));
    }
    let includes: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "_include")
        .map(|(_, v)| v.as_str())
        .collect();
    if includes != ["Slot:schedule"] {
        return Err(bad(
            "_include=Slot:schedule is required (and the only _include)",
        ));
    }
    let mut search = SlotSearch {
        from,
        to,
        practitioner: false,
        location: false,
        organization: false,
    };
    for (_, v) in pairs.iter().filter(|(k, _)| k == "_include:recurse") {
        match v.as_str() {
            "Schedule:actor:Practitioner" => search.practitioner = true,
            "Schedule:actor:Location" => search.location = true,
            "Location:managingOrganization" => search.organization = true,
            _ => return Err(bad("unknown _include:recurse value")),
        }
    }
    Ok(search)
}

fn slot_json(ods: &str, slot: &BookSlot) -> Value {
    json!({
        "resourceType": "Slot",
        "id": slot.id,
        "meta": {"profile": [format!("{PROFILE_BASE}GPConnect-Slot-1")]},
        "schedule": {"reference": format!("Schedule/{ods}-sched-{}", slot.staff)},
        "status": "free",
        "start": format_datetime(slot.start),
        "end": format_datetime(slot.start.plus_minutes(slot.minutes)),
    })
}

pub(super) async fn search_slots(
    State(sim): State<GpConnectSimulator>,
    Path(ods_code): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    answer(slots(&sim, &ods_code, &headers, query))
}

fn slots(
    sim: &GpConnectSimulator,
    ods_code: &str,
    headers: &HeaderMap,
    query: Option<String>,
) -> Result<Response, GpcError> {
    let (practice, _) = sim.admit(ods_code, headers, &[Interaction::SearchSlots], false)?;
    let search = parse_slot_search(&query_pairs(query))?;
    let ods = ods(sim, practice).to_string();
    let mut diary = diary(sim);
    let taken: HashSet<String> = diary.taken.keys().cloned().collect();
    let book = diary.book(sim, practice);
    let mut entries = Vec::new();
    let mut schedules = std::collections::BTreeSet::new();
    for slot in &book.slots {
        if slot.booked.is_some()
            || taken.contains(&slot.id)
            || slot.start < search.from
            || slot.start > search.to
        {
            continue;
        }
        schedules.insert(slot.staff);
        entries.push(slot_json(&ods, slot));
    }
    let practice_model = &sim.records().population().pcn().practices[practice];
    for staff in &schedules {
        entries.push(json!({
            "resourceType": "Schedule",
            "id": format!("{ods}-sched-{staff}"),
            "meta": {"profile": [format!("{PROFILE_BASE}GPConnect-Schedule-1")]},
            "actor": [
                {"reference": format!("Practitioner/{}", practice_model.staff[*staff].id)},
                {"reference": format!("Location/{ods}-site")},
            ],
        }));
        if search.practitioner {
            let s = &practice_model.staff[*staff];
            entries.push(json!({
                "resourceType": "Practitioner",
                "id": s.id,
                "meta": {"profile": [format!("{PROFILE_BASE}GPConnect-Practitioner-1")]},
                "name": [{"family": s.name.family, "given": s.name.given, "prefix": s.name.prefix.map(|p| vec![p]).unwrap_or_default()}],
                "gender": s.gender.key(),
            }));
        }
    }
    if !schedules.is_empty() && search.location {
        entries.push(json!({
            "resourceType": "Location",
            "id": format!("{ods}-site"),
            "name": practice_model.name,
            "managingOrganization": {"reference": format!("Organization/{ods}")},
        }));
    }
    if !schedules.is_empty() && search.organization {
        entries.push(json!({
            "resourceType": "Organization",
            "id": ods,
            "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": ods}],
            "name": practice_model.name,
        }));
    }
    Ok(fhir_response(StatusCode::OK, bundle(entries), None))
}

// ---- book, read, amend, cancel ----

fn appointment_json(sim: &GpConnectSimulator, id: &str, b: &Booking) -> Value {
    let ods = ods(sim, b.practice);
    let mut a = json!({
        "resourceType": "Appointment",
        "id": id,
        "meta": {"versionId": b.version.to_string(), "profile": [format!("{PROFILE_BASE}GPConnect-Appointment-1")]},
        "contained": b.contained,
        "extension": [{"url": BOOKING_ORG_EXT, "valueReference": {"reference": contained_org_ref(&b.contained)}}],
        "status": if b.cancelled.is_some() { "cancelled" } else { "booked" },
        "start": format_datetime(b.start),
        "end": format_datetime(b.end),
        "slot": b.slots.iter().map(|s| json!({"reference": format!("Slot/{s}")})).collect::<Vec<_>>(),
        "created": b.created.to_string(),
        "participant": [
            {"actor": {"reference": format!("Patient/{}", b.patient)}, "status": "accepted"},
            {"actor": {"reference": format!("Practitioner/{}", staff_id(sim, b.practice, b.staff))}, "status": "accepted"},
            {"actor": {"reference": format!("Location/{ods}-site")}, "status": "accepted"},
        ],
    });
    if let Some(d) = &b.description {
        a["description"] = json!(d);
    }
    if let Some(c) = &b.comment {
        a["comment"] = json!(c);
    }
    if let (Some(reason), Some(ext)) = (&b.cancelled, a["extension"].as_array_mut()) {
        ext.push(json!({"url": CANCELLATION_EXT, "valueString": reason}));
    }
    a
}

fn contained_org_ref(contained: &Value) -> String {
    let id = contained
        .as_array()
        .and_then(|c| {
            c.iter()
                .find(|r| r.get("resourceType").and_then(Value::as_str) == Some("Organization"))
        })
        .and_then(|o| o.get("id"))
        .and_then(Value::as_str)
        .unwrap_or("");
    format!("#{id}")
}

/// What a request's Appointment says, parsed.
struct Requested {
    status: String,
    patient: String,
    slots: Vec<String>,
    start: DateTime,
    end: DateTime,
    description: Option<String>,
    comment: Option<String>,
    contained: Value,
    cancellation_reason: Option<String>,
    id: Option<String>,
}

fn parse_appointment(body: &[u8]) -> Result<Requested, GpcError> {
    let bad = GpcError::invalid_resource;
    let v: Value =
        serde_json::from_slice(body).map_err(|_| bad("the body is not a JSON Appointment"))?;
    if v.get("resourceType").and_then(Value::as_str) != Some("Appointment") {
        return Err(bad("the body must be an Appointment"));
    }
    let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let status = text("status").ok_or_else(|| bad("Appointment.status is required"))?;
    let start = text("start")
        .and_then(|s| parse_datetime(&s))
        .ok_or_else(|| bad("Appointment.start must be a dateTime with offset"))?;
    let end = text("end")
        .and_then(|s| parse_datetime(&s))
        .ok_or_else(|| bad("Appointment.end must be a dateTime with offset"))?;
    let slots: Vec<String> = v
        .get("slot")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("reference").and_then(Value::as_str))
        .filter_map(|r| r.strip_prefix("Slot/"))
        .map(str::to_string)
        .collect();
    if slots.is_empty() {
        return Err(bad("Appointment.slot must reference at least one Slot"));
    }
    let patients: Vec<String> = v
        .get("participant")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.pointer("/actor/reference").and_then(Value::as_str))
        .filter_map(|r| r.strip_prefix("Patient/"))
        .map(str::to_string)
        .collect();
    let [patient] = patients.as_slice() else {
        return Err(bad("Appointment.participant must name exactly one Patient"));
    };
    let contained = v.get("contained").cloned().unwrap_or(Value::Null);
    let has_org = contained.as_array().is_some_and(|c| {
        c.iter()
            .any(|r| r.get("resourceType").and_then(Value::as_str) == Some("Organization"))
    });
    if !has_org {
        return Err(bad("the booking Organization must be contained"));
    }
    let cancellation_reason = v
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(CANCELLATION_EXT))
        .and_then(|e| e.get("valueString"))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Requested {
        status,
        patient: patient.clone(),
        slots,
        start,
        end,
        description: text("description"),
        comment: text("comment"),
        contained,
        cancellation_reason,
        id: text("id"),
    })
}

pub(super) async fn book(
    State(sim): State<GpConnectSimulator>,
    Path(ods_code): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(create(&sim, &ods_code, &headers, &body))
}

fn create(
    sim: &GpConnectSimulator,
    ods_code: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, GpcError> {
    let (practice, _) = sim.admit(ods_code, headers, &[Interaction::CreateAppointment], true)?;
    let req = parse_appointment(body)?;
    if req.status != "booked" {
        return Err(GpcError::invalid_resource(
            "a new Appointment must have status 'booked'",
        ));
    }
    patient_at(sim, practice, &req.patient)?;
    let as_of = sim.records().population().options().as_of;
    let mut diary = diary(sim);
    let book = diary.book(sim, practice);
    let mut chosen: Vec<BookSlot> = Vec::new();
    for id in &req.slots {
        let slot = book
            .slots
            .iter()
            .find(|s| &s.id == id)
            .ok_or_else(|| GpcError::reference_not_found("a referenced Slot does not exist"))?;
        chosen.push(slot.clone());
    }
    chosen.sort_by_key(|s| s.start);
    let first = &chosen[0];
    let adjacent = chosen
        .windows(2)
        .all(|w| w[0].staff == w[1].staff && w[0].start.plus_minutes(w[0].minutes) == w[1].start);
    let last = &chosen[chosen.len() - 1];
    let end = last.start.plus_minutes(last.minutes);
    if !adjacent || req.start != first.start || req.end != end {
        return Err(GpcError::invalid_resource(
            "the slots must be adjacent, of one Schedule, and the appointment must span them",
        ));
    }
    if chosen
        .iter()
        .any(|s| s.booked.is_some() || diary.taken.contains_key(&s.id))
    {
        return Err(GpcError::duplicate_rejected(
            "a requested slot is no longer free",
        ));
    }
    diary.next += 1;
    let id = format!("{}-gpc-{}", ods(sim, practice), diary.next);
    let booking = Booking {
        practice,
        patient: req.patient,
        slots: chosen.iter().map(|s| s.id.clone()).collect(),
        staff: first.staff,
        start: req.start,
        end: req.end,
        cancelled: None,
        description: req.description,
        comment: req.comment,
        contained: req.contained,
        created: as_of,
        version: 1,
    };
    for s in &booking.slots {
        diary.taken.insert(s.clone(), id.clone());
    }
    let body = appointment_json(sim, &id, &booking);
    diary.appointments.insert(id, booking);
    tracing::debug!(route = "Appointment", "appointment booked");
    Ok(fhir_response(
        StatusCode::CREATED,
        serde_json::to_vec(&body).unwrap_or_default(),
        Some(1),
    ))
}

/// The patient `record_id` at `practice`, if appointments may be booked for them.
fn patient_at(sim: &GpConnectSimulator, practice: usize, record_id: &str) -> Result<(), GpcError> {
    let records = sim.records();
    let at = records
        .by_record_id(record_id)
        .ok_or_else(|| GpcError::patient_not_found("no such patient at this practice"))?;
    let record = records.record(at);
    if record.practice != practice {
        return Err(GpcError::patient_not_found(
            "no such patient at this practice",
        ));
    }
    super::structured::available(&record)
}

pub(super) async fn read(
    State(sim): State<GpConnectSimulator>,
    Path((ods_code, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    answer(read_appointment(&sim, &ods_code, &id, &headers))
}

fn read_appointment(
    sim: &GpConnectSimulator,
    ods_code: &str,
    id: &str,
    headers: &HeaderMap,
) -> Result<Response, GpcError> {
    let (practice, _) = sim.admit(ods_code, headers, &[Interaction::ReadAppointment], false)?;
    let diary = diary(sim);
    let b = diary
        .appointments
        .get(id)
        .filter(|b| b.practice == practice)
        .ok_or_else(|| GpcError::no_record_found("no appointment with that id"))?;
    let body = appointment_json(sim, id, b);
    Ok(fhir_response(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
        Some(b.version),
    ))
}

pub(super) async fn update(
    State(sim): State<GpConnectSimulator>,
    Path((ods_code, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(amend_or_cancel(&sim, &ods_code, &id, &headers, &body))
}

fn amend_or_cancel(
    sim: &GpConnectSimulator,
    ods_code: &str,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, GpcError> {
    let (practice, interaction) = sim.admit(
        ods_code,
        headers,
        &[
            Interaction::AmendAppointment,
            Interaction::CancelAppointment,
        ],
        true,
    )?;
    let req = parse_appointment(body)?;
    let mut diary = diary(sim);
    let stored = diary
        .appointments
        .get(id)
        .filter(|b| b.practice == practice)
        .cloned()
        .ok_or_else(|| GpcError::no_record_found("no appointment with that id"))?;
    if let Some(if_match) = headers.get(header::IF_MATCH) {
        let current = format!("W/\"{}\"", stored.version);
        if if_match.to_str().ok().map(str::trim) != Some(current.as_str()) {
            return Err(GpcError::version_conflict(
                "If-Match is not the current version",
            ));
        }
    }
    if stored.cancelled.is_some() {
        return Err(GpcError::invalid_resource("the appointment is cancelled"));
    }
    if req.id.as_deref().is_some_and(|rid| rid != id) {
        return Err(GpcError::invalid_resource(
            "Appointment.id does not match the URL",
        ));
    }
    let unchanged = req.patient == stored.patient
        && req.slots == stored.slots
        && req.start == stored.start
        && req.end == stored.end;
    let mut next = stored.clone();
    match interaction {
        Interaction::CancelAppointment => {
            let reason = req
                .cancellation_reason
                .filter(|_| req.status == "cancelled")
                .ok_or_else(|| {
                    GpcError::invalid_resource(
                        "a cancellation needs status 'cancelled' and a cancellation reason",
                    )
                })?;
            if !unchanged || req.description != stored.description || req.comment != stored.comment
            {
                return Err(GpcError::invalid_resource(
                    "a cancellation may change only the status",
                ));
            }
            next.cancelled = Some(reason);
            for s in &next.slots {
                diary.taken.remove(s);
            }
        }
        _ => {
            if req.status != "booked" || !unchanged || req.cancellation_reason.is_some() {
                return Err(GpcError::invalid_resource(
                    "an amendment may change only comment and description",
                ));
            }
            next.description = req.description;
            next.comment = req.comment;
        }
    }
    next.version += 1;
    let body = appointment_json(sim, id, &next);
    let version = next.version;
    diary.appointments.insert(id.to_string(), next);
    Ok(fhir_response(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
        Some(version),
    ))
}

// ---- a patient's appointments ----

pub(super) async fn patient_appointments(
    State(sim): State<GpConnectSimulator>,
    Path((ods_code, patient)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    answer(patient_search(&sim, &ods_code, &patient, &headers, query))
}

fn patient_search(
    sim: &GpConnectSimulator,
    ods_code: &str,
    patient: &str,
    headers: &HeaderMap,
    query: Option<String>,
) -> Result<Response, GpcError> {
    let (practice, _) = sim.admit(
        ods_code,
        headers,
        &[Interaction::PatientAppointments],
        false,
    )?;
    let pairs = query_pairs(query);
    let bad = GpcError::invalid_parameter;
    let mut from = None;
    let mut to = None;
    for (_, v) in pairs.iter().filter(|(k, _)| k == "start") {
        if let Some(d) = v.strip_prefix("ge") {
            from = Some(parse_date(d).ok_or_else(|| bad("start=ge must be a date"))?);
        } else if let Some(d) = v.strip_prefix("le") {
            to = Some(parse_date(d).ok_or_else(|| bad("start=le must be a date"))?);
        } else {
            return Err(bad("start must have the 'ge' or 'le' prefix"));
        }
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Err(bad("start=ge<date> and start=le<date> are required"));
    };
    if to < from {
        return Err(bad("the search range ends before it starts"));
    }
    patient_at(sim, practice, patient)?;
    let diary = diary(sim);
    let entries = diary
        .appointments
        .iter()
        .filter(|(_, b)| {
            b.practice == practice
                && b.patient == patient
                && b.start.date >= from
                && b.start.date <= to
        })
        .map(|(id, b)| appointment_json(sim, id, b))
        .collect();
    Ok(fhir_response(StatusCode::OK, bundle(entries), None))
}
