//! A TPP-style supplier API: a **modelled** transactional interface over the practices whose
//! system is [`GpSystem::TppStyle`], in the spirit of an IM1-paired SystmOne integration.
//!
//! # What it is based on
//!
//! TPP's partner interfaces are not public (reference sheet §9: IM1 specifications come only
//! in a Pairing Integration Pack). Nothing here follows a published wire format. What is taken
//! from public knowledge:
//! - IM1 pairing (§9): a paired application id and a user session on every call; the
//!   Transaction suite's scope — patient search, demographics, record retrieval, filing coded
//!   data and consultations, documents.
//! - SystmOne's record is a **journal** of dated events, and its clinical coding heritage is
//!   **CTV3** (Read v3), with SNOMED CT since 2018: codes are listed legacy first, SNOMED CT
//!   beside where the practice recorded both ([`CodingStyle`]); a practice migrated from
//!   another system may hold Read v2 instead.
//! - Medicines are coded in dm+d; sensitive data (reference sheet §7) is held but withheld
//!   from users without the permission to see it.
//!
//! Everything else — paths, field names, status words, error codes — is this simulator's own
//! choice, documented below so clients can be written against it. It is deliberately unlike
//! FHIR and unlike the EMIS-style simulator (which is XML with GUIDs).
//!
//! # URL layout
//!
//! All under `/tpp/v1/units/{unit}`, where `{unit}` is the organisation unit: the practice's
//! ODS code. A unit that does not exist or is not a TPP-style practice → 404 `UnitNotFound`.
//!
//! | method and path (after the unit) | what |
//! |---|---|
//! | `GET /patients?nhsNumber=` or `?surname=&dateOfBirth=` | search; `{"Patients":[...]}` |
//! | `GET /patients/{patient}` | demographics and registration |
//! | `GET /patients/{patient}/journal?from=&to=&eventType=&externalReference=` | the journal |
//! | `GET /patients/{patient}/medication` | courses with their issues |
//! | `GET /patients/{patient}/appointments` | appointments |
//! | `GET /patients/{patient}/tasks?externalReference=` | tasks |
//! | `GET /patients/{patient}/documents/{document}` | a written document with its content |
//! | `POST /patients/{patient}/journal/consultations` | file a consultation with coded items |
//! | `POST /patients/{patient}/journal/coded-entries` | file one coded entry |
//! | `POST /patients/{patient}/tasks` | create a task |
//! | `POST /patients/{patient}/documents` | attach a document (base64) |
//!
//! `{patient}` and `{document}` are numeric `RowIdentifier`s ([`rows`] says how they derive
//! from the generated ids). Search matches NHS numbers exactly and surnames ignoring case,
//! with the date of birth exact; every record held at the unit is searchable, including
//! deregistered ones and duplicates (as a practice system holds them).
//!
//! # Session (modelled on IM1)
//!
//! Every request carries `X-TPP-Application-Id` (the paired application,
//! [`session::APPLICATION_ID`]) and `X-TPP-Session-Token`; missing or wrong → 401
//! `AuthenticationFailed`. Two sessions exist: [`session::STANDARD_SESSION`], whose user lacks
//! the "sensitive data" permission, and [`session::SENSITIVE_SESSION`], whose user has it. A
//! session is valid at every unit.
//!
//! # The journal
//!
//! Events oldest first (date, then time when known, then RowIdentifier), each with
//! `RowIdentifier`, `EventType`, `Date`, optional `Time` (local `hh:mm`), `Confidential`, and
//! its details. Event types: `Consultation` (type, duration, free text), `Problem`,
//! `CodedEntry` (observations and results, with `Value`), `Medication` (a course started),
//! `Issue` (one issue of a course), `Allergy`, `Immunisation`, `Document`. Coded events carry
//! `Codes`: `[{"Scheme":"CTV3"|"Read2"|"SNOMED","Code","Term"}]`, legacy first. Drugs carry
//! `{"Scheme":"dm+d","Code","Name"}`; the generator's synthetic dm+d ids say
//! `"dm+d (synthetic)"`. Allergies and immunisations are coded in SNOMED CT only, as the
//! model holds them.
//!
//! Filters (all optional, combined): `from`/`to` inclusive dates `YYYY-MM-DD`; `eventType`
//! comma-separated or repeated; `externalReference` exact (only written events carry one).
//!
//! **Confidential entries**: problems and coded entries in a sensitive category (§7) and
//! consultations the practice marked confidential are `"Confidential": true`. For a session
//! without the sensitive-data permission they are left out and counted in
//! `WithheldConfidentialEvents`; with it they are listed.
//!
//! # Status vocabulary (from the model)
//!
//! | thing | statuses | mapping |
//! |---|---|---|
//! | problem `ProblemStatus` | `Active`, `Past`, `Significant past` | active → `Active`; resolved long-term problem → `Significant past`; resolved episode → `Past` |
//! | medication `Status` | `Current`, `Ended`, `Discontinued` | active → `Current`; completed → `Ended` (end: last issue); stopped → `Discontinued` with `DiscontinuationReason` (the model records none: always [`render::DISCONTINUATION_REASON`]) |
//! | appointment `Status` | `Booked`, `Attended`, `DNA`, `Cancelled` | booked, fulfilled, no-show, cancelled |
//! | task `Status` | `Outstanding`, `In progress`, `Completed`, `Cancelled` | requested, in progress, completed, cancelled; written tasks start `Outstanding` |
//! | allergy `AllergyStatus` | `Active`, `Inactive` | |
//! | registration `Status` | `Registered`, `Deregistered`, `Deceased` | |
//!
//! # Writes and idempotency
//!
//! Bodies are JSON objects (fields in [`writes`]); each carries a mandatory client-chosen
//! `ExternalReference` (1–100 characters) and a `Date` (`YYYY-MM-DD` or local
//! `YYYY-MM-DDThh:mm`: the simulator reads no clock). Coded items give `Scheme` (`CTV3` or
//! `SNOMED`) and `Code` from the simulator's dictionary ([`crate::codes`]); a CTV3 code is
//! filed with its SNOMED CT map beside it. An accepted write answers 201 with its
//! `RowIdentifier`s and is in every later read of that patient (an in-memory overlay).
//!
//! **This supplier does not support a client request id.** Writes are not deduplicated: the
//! same body sent twice is filed twice. A client that lost a response checks instead —
//! `GET .../journal?externalReference=X` or `GET .../tasks?externalReference=X` — and retries
//! only if nothing carries its reference.
//!
//! # Errors
//!
//! One shape, `{"Error":{"Code","Message"}}` ([`error`]):
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `InvalidRequest` | unknown or malformed query parameter, non-numeric RowIdentifier |
//! | 400 | `MalformedRequest` | body not JSON, or not an object |
//! | 401 | `AuthenticationFailed` | application id or session token missing or wrong |
//! | 404 | `UnitNotFound`, `PatientNotFound`, `ItemNotFound`, `NoSuchEndpoint` | |
//! | 405 | `MethodNotAllowed` | |
//! | 413 | `RequestTooLarge` | body over 8 MiB, document over 5 MiB |
//! | 422 | `MissingField`, `InvalidValue`, `UnknownField`, `UnknownCodeScheme`, `UnknownCode` | body validation; nothing is filed |
//!
//! Faults: served through [`crate::server::serve`], so every fault of [`crate::faults`]
//! applies; set `error_body` to an [`error::error_body`] to keep injected errors in this shape.

pub mod error;
pub mod overlay;
pub mod query;
pub mod render;
pub mod rows;
pub mod session;
pub mod writes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

use crate::date::Date;
use crate::faults::FaultHandle;
use crate::json::Json;
use crate::model::{GpSystem, PatientRecord};
use crate::population::{Options, Population};
use crate::records::{PracticeRecords, RecordRef};
use error::TppError;
use overlay::{Overlay, WrittenDetail};
use query::{JournalFilter, PatientSearch};
use render::PatientContext;
use session::Session;

/// The API's base path; the unit follows.
pub const BASE_PATH: &str = "/tpp/v1/units";
/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The simulator's state, shared by the router's handlers.
#[derive(Debug, Clone)]
pub struct TppSimulator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    records: Arc<PracticeRecords>,
    /// ODS code → practice index, TPP-style practices only.
    units: HashMap<String, usize>,
    /// Patient RowIdentifier → practice index, for every record at a TPP-style practice.
    practice_of: HashMap<u64, usize>,
    /// (practice, lower-cased surname, date of birth) → patient RowIdentifiers.
    by_demographics: HashMap<(usize, String, Date), Vec<u64>>,
    /// The same population without clinical records, for search results.
    demographics: Population,
    overlay: Overlay,
}

impl TppSimulator {
    /// Serves the TPP-style practices of `records`. Indexes their records' RowIdentifiers
    /// and surname + date of birth from demographics alone (no clinical record is generated).
    pub fn new(records: Arc<PracticeRecords>) -> TppSimulator {
        let pcn = records.population().pcn();
        let units: HashMap<String, usize> = pcn
            .practices
            .iter()
            .filter(|p| p.system == GpSystem::TppStyle)
            .map(|p| (p.ods.as_str().to_string(), p.index))
            .collect();
        let demographics = Population::generate(Options {
            demographics_only: true,
            ..records.population().options().clone()
        });
        let mut practice_of = HashMap::new();
        let mut by_demographics: HashMap<(usize, String, Date), Vec<u64>> = HashMap::new();
        for person in demographics.persons() {
            for (position, record) in person.records.iter().enumerate() {
                if pcn.practices[record.practice].system != GpSystem::TppStyle {
                    continue;
                }
                let row = rows::patient_row(RecordRef {
                    person: person.index,
                    record: position,
                });
                practice_of.insert(row, record.practice);
                by_demographics
                    .entry((
                        record.practice,
                        record.name.family.to_lowercase(),
                        record.birth_date,
                    ))
                    .or_default()
                    .push(row);
            }
        }
        TppSimulator {
            inner: Arc::new(Inner {
                records,
                units,
                practice_of,
                by_demographics,
                demographics,
                overlay: Overlay::default(),
            }),
        }
    }

    fn unit(&self, unit: &str) -> Result<usize, TppError> {
        self.inner
            .units
            .get(unit)
            .copied()
            .ok_or_else(|| TppError::unit_not_found(unit))
    }

    /// The patient `row` (as in the path) at `practice`: its RowIdentifier and record.
    fn patient(&self, practice: usize, row: &str) -> Result<(u64, RecordRef), TppError> {
        let row: u64 = row.parse().map_err(|_| {
            TppError::invalid_request("A patient RowIdentifier is a positive whole number")
        })?;
        match (self.inner.practice_of.get(&row), rows::record_of(row)) {
            (Some(&p), Some(at)) if p == practice => Ok((row, at)),
            _ => Err(TppError::patient_not_found()),
        }
    }

    /// Regenerates the record behind `at` (byte-for-byte what the exports hold).
    fn record(&self, at: RecordRef) -> PatientRecord {
        self.inner.records.record(at)
    }

    fn search(&self, practice: usize, search: &PatientSearch) -> Vec<(u64, PatientRecord)> {
        let records = &self.inner.records;
        let rows: Vec<u64> = match search {
            PatientSearch::NhsNumber(nhs) => records
                .by_nhs_number(practice, nhs)
                .iter()
                .map(|at| rows::patient_row(*at))
                .collect(),
            PatientSearch::Demographics { surname, birth } => self
                .inner
                .by_demographics
                .get(&(practice, surname.clone(), *birth))
                .cloned()
                .unwrap_or_default(),
        };
        rows.into_iter()
            .filter_map(|row| {
                let at = rows::record_of(row)?;
                let mut person = self.inner.demographics.person(at.person);
                (at.record < person.records.len())
                    .then(|| (row, person.records.swap_remove(at.record)))
            })
            .collect()
    }
}

/// The HTTP API under [`BASE_PATH`]; anything else answers in the API's error shape.
pub fn router(sim: TppSimulator) -> Router {
    let patient = "/{unit}/patients/{patient}";
    let api = Router::new()
        .route("/{unit}/patients", get(search_handler))
        .route(patient, get(demographics_handler))
        .route(&format!("{patient}/journal"), get(journal_handler))
        .route(
            &format!("{patient}/journal/consultations"),
            post(consultation_handler),
        )
        .route(
            &format!("{patient}/journal/coded-entries"),
            post(coded_entry_handler),
        )
        .route(&format!("{patient}/medication"), get(medication_handler))
        .route(
            &format!("{patient}/appointments"),
            get(appointments_handler),
        )
        .route(
            &format!("{patient}/tasks"),
            get(tasks_handler).post(task_handler),
        )
        .route(&format!("{patient}/documents"), post(document_handler))
        .route(
            &format!("{patient}/documents/{{document}}"),
            get(document_read_handler),
        )
        .method_not_allowed_fallback(|| async { TppError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(sim);
    Router::new()
        .nest(BASE_PATH, api)
        .fallback(|| async { TppError::no_route() })
}

/// Serves [`router`] on `addr` (e.g. `127.0.0.1:0`) with `faults` in a background task;
/// returns the bound address.
///
/// # Errors
/// If the address cannot be bound.
pub async fn serve(
    sim: TppSimulator,
    addr: SocketAddr,
    faults: FaultHandle,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    crate::server::serve("TPP-style", router(sim), addr, faults).await
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn answer(result: Result<(StatusCode, Vec<u8>), TppError>) -> Response {
    match result {
        Ok((status, body)) => json_response(status, body),
        Err(e) => e.into_response(),
    }
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, TppError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            TppError::too_large(format!(
                "A request body may be at most {MAX_BODY_BYTES} bytes"
            ))
        } else {
            TppError::malformed_body("The request body could not be read")
        }
    })
}

/// Authenticates, then finds the unit and the patient.
fn open(
    sim: &TppSimulator,
    headers: &HeaderMap,
    unit: &str,
    patient: &str,
) -> Result<(Session, usize, u64, RecordRef), TppError> {
    let session = session::authenticate(headers)?;
    let practice = sim.unit(unit)?;
    let (row, at) = sim.patient(practice, patient)?;
    Ok((session, practice, row, at))
}

fn ok(body: Vec<u8>) -> Result<(StatusCode, Vec<u8>), TppError> {
    Ok((StatusCode::OK, body))
}

async fn search_handler(
    State(sim): State<TppSimulator>,
    Path(unit): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    answer((|| {
        session::authenticate(&headers)?;
        let practice = sim.unit(&unit)?;
        let search = PatientSearch::parse(query.as_deref())?;
        let found = sim.search(practice, &search);
        let mut out = Vec::new();
        let mut j = Json::new(&mut out);
        j.begin().arr("Patients");
        for (row, record) in &found {
            render::patient_summary(&mut j, record, *row);
        }
        j.end_array().end();
        ok(out)
    })())
}

type PatientPath = Path<(String, String)>;

async fn demographics_handler(
    State(sim): State<TppSimulator>,
    Path((unit, patient)): PatientPath,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    answer((|| {
        let (_, practice, row, at) = open(&sim, &headers, &unit, &patient)?;
        query::no_parameters(query.as_deref())?;
        let record = sim.record(at);
        let mut out = Vec::new();
        render::demographics(&mut out, &sim.context(practice, &record, row));
        ok(out)
    })())
}

impl TppSimulator {
    fn context<'a>(
        &'a self,
        practice: usize,
        record: &'a PatientRecord,
        row: u64,
    ) -> PatientContext<'a> {
        PatientContext {
            practice: &self.inner.records.population().pcn().practices[practice],
            record,
            row,
        }
    }
}

async fn journal_handler(
    State(sim): State<TppSimulator>,
    Path((unit, patient)): PatientPath,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    answer((|| {
        let (session, practice, row, at) = open(&sim, &headers, &unit, &patient)?;
        let filter = JournalFilter::parse(query.as_deref())?;
        let record = sim.record(at);
        let writes = sim.inner.overlay.snapshot(row);
        let mut out = Vec::with_capacity(1 << 16);
        render::journal(
            &mut out,
            &sim.context(practice, &record, row),
            &writes,
            &filter,
            session.sees_confidential,
        );
        ok(out)
    })())
}

async fn medication_handler(
    State(sim): State<TppSimulator>,
    Path((unit, patient)): PatientPath,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    answer((|| {
        let (_, practice, row, at) = open(&sim, &headers, &unit, &patient)?;
        query::no_parameters(query.as_deref())?;
        let record = sim.record(at);
        let mut out = Vec::new();
        render::medication(&mut out, &sim.context(practice, &record, row));
        ok(out)
    })())
}

async fn appointments_handler(
    State(sim): State<TppSimulator>,
    Path((unit, patient)): PatientPath,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    answer((|| {
        let (_, practice, row, at) = open(&sim, &headers, &unit, &patient)?;
        query::no_parameters(query.as_deref())?;
        let record = sim.record(at);
        let mut out = Vec::new();
        render::appointments(&mut out, &sim.context(practice, &record, row));
        ok(out)
    })())
}

async fn tasks_handler(
    State(sim): State<TppSimulator>,
    Path((unit, patient)): PatientPath,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    answer((|| {
        let (_, practice, row, at) = open(&sim, &headers, &unit, &patient)?;
        let reference = query::task_filter(query.as_deref())?;
        let record = sim.record(at);
        let writes = sim.inner.overlay.snapshot(row);
        let mut out = Vec::new();
        render::tasks(
            &mut out,
            &sim.context(practice, &record, row),
            &writes,
            reference.as_deref(),
        );
        ok(out)
    })())
}

async fn document_read_handler(
    State(sim): State<TppSimulator>,
    Path((unit, patient, document)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    answer((|| {
        let (_, _, row, _) = open(&sim, &headers, &unit, &patient)?;
        let document: u64 = document
            .parse()
            .map_err(|_| TppError::invalid_request("A document RowIdentifier is a whole number"))?;
        let writes = sim.inner.overlay.snapshot(row);
        let found = writes.events.iter().find_map(|e| match &e.detail {
            WrittenDetail::Document {
                title,
                mime_type,
                content,
            } if e.row == document => Some((e, title, mime_type, content)),
            _ => None,
        });
        let Some((event, title, mime_type, content)) = found else {
            return Err(TppError::item_not_found("document"));
        };
        let body = json!({
            "DocumentRowIdentifier": event.row,
            "PatientRowIdentifier": row,
            "Date": event.when.date.to_string(),
            "Title": title,
            "MimeType": mime_type,
            "SizeBytes": content.len(),
            "Content": base64::engine::general_purpose::STANDARD.encode(content),
            "ExternalReference": event.external_reference,
            "EnteredBy": event.entered_by,
        });
        ok(serde_json::to_vec(&body).unwrap_or_default())
    })())
}

fn created(body: Value) -> Result<(StatusCode, Vec<u8>), TppError> {
    Ok((
        StatusCode::CREATED,
        serde_json::to_vec(&body).unwrap_or_default(),
    ))
}

async fn consultation_handler(
    State(sim): State<TppSimulator>,
    Path((unit, patient)): PatientPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer((|| {
        let (session, _, row, _) = open(&sim, &headers, &unit, &patient)?;
        let write = writes::consultation(&body_bytes(body)?)?;
        let reference = write.external_reference.clone();
        let (consultation, items) = sim.inner.overlay.consultation(row, write, session.user);
        tracing::debug!(
            route = "POST /tpp/v1/units/{unit}/patients/{patient}/journal/consultations",
            "filed"
        );
        created(json!({
            "RowIdentifier": consultation,
            "CodedItemRowIdentifiers": items,
            "ExternalReference": reference,
        }))
    })())
}

async fn coded_entry_handler(
    State(sim): State<TppSimulator>,
    Path((unit, patient)): PatientPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer((|| {
        let (session, _, row, _) = open(&sim, &headers, &unit, &patient)?;
        let write = writes::coded_entry(&body_bytes(body)?)?;
        let reference = write.external_reference.clone();
        let item = sim.inner.overlay.coded_entry(row, write, session.user);
        tracing::debug!(
            route = "POST /tpp/v1/units/{unit}/patients/{patient}/journal/coded-entries",
            "filed"
        );
        created(json!({"RowIdentifier": item, "ExternalReference": reference}))
    })())
}

async fn task_handler(
    State(sim): State<TppSimulator>,
    Path((unit, patient)): PatientPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer((|| {
        let (session, _, row, _) = open(&sim, &headers, &unit, &patient)?;
        let write = writes::task(&body_bytes(body)?)?;
        let reference = write.external_reference.clone();
        let task = sim.inner.overlay.task(row, write, session.user);
        tracing::debug!(
            route = "POST /tpp/v1/units/{unit}/patients/{patient}/tasks",
            "filed"
        );
        created(json!({"RowIdentifier": task, "ExternalReference": reference}))
    })())
}

async fn document_handler(
    State(sim): State<TppSimulator>,
    Path((unit, patient)): PatientPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer((|| {
        let (session, _, row, _) = open(&sim, &headers, &unit, &patient)?;
        let write = writes::document(&body_bytes(body)?)?;
        let reference = write.external_reference.clone();
        let document = sim.inner.overlay.document(row, write, session.user);
        tracing::debug!(
            route = "POST /tpp/v1/units/{unit}/patients/{patient}/documents",
            "filed"
        );
        created(json!({"RowIdentifier": document, "ExternalReference": reference}))
    })())
}
