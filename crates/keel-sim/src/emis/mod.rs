//! A simulator of an EMIS-style supplier API: a **modelled** interface with EMIS Web's
//! character, serving the generated records of the PCN's EMIS-style practices
//! ([`crate::model::GpSystem::EmisStyle`]) in XML over HTTP with axum.
//!
//! # What is public and what is modelled
//!
//! EMIS's partner interfaces are not public: IM1 specifications come as a Pairing Integration
//! Pack after a use case is accepted (reference sheet §9). Everything here is therefore a
//! modelled assumption, shaped on public knowledge only:
//! - IM1 (§9): a paired third-party application has an application id; the Transaction API
//!   offers patient search, demographics, full record retrieval, filing coded data,
//!   consultations and documents; EMIS's answers are proprietary XML with GUID identifiers.
//! - EMIS Web's record structure as clinicians see it: problems (active/past,
//!   major/minor), medication as courses (acute or repeat) with their issues, consultations
//!   with headed sections and free text, coded "events" with values as recorded, allergies,
//!   immunisations, appointments, tasks, documents.
//! - Codes as the practice recorded them (SNOMED CT; Read v2 or CTV3 for historic entries,
//!   beside SNOMED CT or instead of it: [`crate::model::CodingStyle`]), dm+d for drugs.
//!
//! No wire detail (element names, URLs, headers, error codes) is EMIS's own.
//!
//! # URL layout
//!
//! All under [`BASE_PATH`] (`/emis-style/api/v1`); `{ods}` is an EMIS-style practice's ODS
//! code, `{patient}` a patient GUID.
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `POST /practices/{ods}/sessions` | `<Login><UserId>` (a staff id, `Y90001-S01`) | 201 `<Session>` with `SessionToken` |
//! | `GET /practices/{ods}/patients?nhsNumber=` | | 200 `<PatientMatches Count>` of `<Patient>` |
//! | `GET /practices/{ods}/patients?surname=&dateOfBirth=` | | the same; surname case-insensitive, exact |
//! | `GET …/patients/{patient}` | | 200 `<Patient>` demographics and registration |
//! | `GET …/patients/{patient}/record` | | 200 `<MedicalRecord>`: `Patient` and every section |
//! | `GET …/patients/{patient}/record/{section}` | | 200 one section: `problems`, `medication`, `consultations`, `events`, `allergies`, `immunisations`, `appointments`, `tasks`, `documents` |
//! | `GET …/patients/{patient}/documents/{document}` | | 200 `<Document>` with base64 `Content` |
//! | `POST …/patients/{patient}/consultations` | `<Consultation Type>` with `Date`, `Section Heading`s of `FreeText`, `Event`s, `Problem`s | 201 `<WriteResult>` |
//! | `POST …/patients/{patient}/codedentries` | `<Event>` or `<Problem>` | 201 `<WriteResult>` |
//! | `POST …/patients/{patient}/tasks` | `<Task Priority>` with `Description`, `Date`, optional `Owner UserId` | 201 `<WriteResult>` |
//! | `POST …/patients/{patient}/documents` | `<Document>` with `Title`, `Date`, `MimeType`, base64 `Content` | 201 `<WriteResult>` |
//!
//! Every answer is `application/xml` in the namespace [`xml::NAMESPACE`]; the request
//! bodies' grammar is in [`request`], GUIDs are explained in [`guid`].
//!
//! # Behaviour (modelled)
//!
//! - **Access** ([`session`]): every request carries `X-Emis-Application-Id` (the paired
//!   application, [`session::APPLICATION_ID`]); all but login carry `X-Emis-Session-Token`
//!   from a login by a user on the practice's staff. A session serves its own practice only.
//! - **Errors** ([`error`]): `<Error><Code/><Message/></Error>` with 400 `InvalidRequest`,
//!   401 `UnknownApplication` / `InvalidSession` / `InvalidCredentials`, 403
//!   `WrongOrganisation`, 404 `PracticeNotFound` (unknown or not EMIS-style) /
//!   `PatientNotFound` / `NotFound`, 405 `MethodNotAllowed`, 409 `RequestIdConflict`, 413
//!   `RequestTooLarge` (over [`MAX_BODY_BYTES`]).
//! - **Search** returns every record of the practice that matches: a closed registration
//!   (`Registration Status="Deducted"`) and a duplicate are matches too; the active
//!   registration comes first for an NHS number.
//! - **Extract** ([`render`]): generated entries, then written ones in write order. Items with
//!   a sensitive category and confidential consultations are **present and marked**
//!   (`Confidential="true"`, `Sensitivity="sti"` …), and each section states `Count` and
//!   `ConfidentialCount`: the consumer filters. A restricted (S-flag) patient carries
//!   `Confidentiality="R"` (or `V`). Observation values keep the unit recorded (HbA1c before
//!   the practice's IFCC switch stays in `%`). Consultation sections: `History` (the free
//!   text), then `Problem`, `Examination`, `Results`, `Immunisation` listing the entries
//!   recorded in the consultation by GUID. Appointments include the future bookings of the
//!   practice's appointment book.
//! - **Users**: each answer that names staff lists the practice's users once
//!   (`<Users><User Guid UserId Name Role/>`) and items refer to them by GUID
//!   (`<Author UserInRole="…"/>`), as EMIS extracts refer to users-in-role.
//! - **Writes** are held in memory per patient record (not in the generated population) and
//!   merged into every later read; the session's user is the author. A body is parsed and
//!   checked in full before anything is written, so a rejected write leaves nothing.
//! - **Idempotency**: a write may carry `X-Request-Id` (1–128 visible ASCII characters).
//!   A write repeating a request id already accepted, with the same path and byte-identical
//!   body, is answered with the original 201 and GUIDs and writes nothing; with another path
//!   or body it is 409. Only accepted writes hold their id; ids are remembered for the
//!   simulator's lifetime. Without the header every write is new.
//! - Deterministic: GUIDs, session tokens and written items' GUIDs derive from the generated
//!   ids and counters ([`guid`]); nothing reads the clock. Logs name route shapes only.
//!
//! Not simulated: updating or deleting entries, prescribing (issuing medication), booking,
//! registration changes, paging, the ITK/SOAP envelope and message signing of the real
//! Transaction API, and rate limits.

pub mod error;
pub mod guid;
pub mod overlay;
pub mod render;
pub mod request;
pub mod session;
pub mod xml;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use keel_model::NhsNumber;

use crate::date::Date;
use crate::faults::FaultHandle;
use crate::model::{BookSlot, GpSystem, PatientRecord};
use crate::population::Population;
use crate::records::{PracticeRecords, RecordRef};
use error::{ApiError, ErrorCode, xml_response};
use guid::Guid;
use overlay::{Overlay, Replay, WrittenConsultation, WrittenDocument, WrittenEntry, WrittenTask};
use render::{RecordView, Section};
use session::{Session, Sessions};
use xml::XmlOut;

/// The API's base path.
pub const BASE_PATH: &str = "/emis-style/api/v1";
/// The client request id header (idempotent writes).
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Largest request body accepted (a document's base64 content included).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The EMIS-style supplier API over the EMIS-style practices of a generated PCN.
#[derive(Debug, Clone)]
pub struct EmisSimulator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    records: Arc<PracticeRecords>,
    /// The same population without clinical records: cheap demographics.
    demographics: Population,
    /// ODS code → practice index, EMIS-style practices only.
    practices: HashMap<String, usize>,
    /// Patient GUID → (practice, record).
    by_guid: HashMap<Guid, (usize, RecordRef)>,
    record_ids: HashMap<RecordRef, String>,
    /// (practice, lower-case family name, birth date) → records.
    by_name: HashMap<(usize, String, Date), Vec<RecordRef>>,
    /// Future appointments from the practices' appointment books.
    booked: HashMap<RecordRef, Vec<BookSlot>>,
    /// The day the appointment books were made.
    booked_on: Date,
    sessions: Mutex<Sessions>,
    overlay: RwLock<Overlay>,
}

impl EmisSimulator {
    /// Serves every EMIS-style practice of `records`' population. Indexes their patients by
    /// GUID and by family name and birth date from demographics alone, and reads each
    /// practice's appointment book once.
    pub fn new(records: Arc<PracticeRecords>) -> EmisSimulator {
        let population = records.population();
        let demographics = Population::generate(crate::Options {
            demographics_only: true,
            ..population.options().clone()
        });
        let first_day = population.options().as_of.plus(1).next_weekday();
        let mut practices = HashMap::new();
        let mut by_guid = HashMap::new();
        let mut record_ids = HashMap::new();
        let mut by_name: HashMap<(usize, String, Date), Vec<RecordRef>> = HashMap::new();
        let mut booked: HashMap<RecordRef, Vec<BookSlot>> = HashMap::new();
        for practice in &population.pcn().practices {
            if practice.system != GpSystem::EmisStyle {
                continue;
            }
            practices.insert(practice.ods.as_str().to_string(), practice.index);
            for at in records.at_practice(practice.index) {
                let person = demographics.person(at.person);
                let record = &person.records[at.record];
                by_guid.insert(Guid::named(&record.id), (practice.index, at));
                record_ids.insert(at, record.id.clone());
                by_name
                    .entry((
                        practice.index,
                        record.name.family.to_lowercase(),
                        record.birth_date,
                    ))
                    .or_default()
                    .push(at);
            }
            for slot in population.appointment_book(practice.index).slots {
                if let Some(at) = slot
                    .booked
                    .as_deref()
                    .and_then(|id| records.by_record_id(id))
                {
                    booked.entry(at).or_default().push(slot);
                }
            }
        }
        EmisSimulator {
            inner: Arc::new(Inner {
                records,
                demographics,
                practices,
                by_guid,
                record_ids,
                by_name,
                booked,
                booked_on: first_day.plus(-1),
                sessions: Mutex::new(Sessions::default()),
                overlay: RwLock::new(Overlay::default()),
            }),
        }
    }

    /// The ODS codes of the practices served, sorted.
    pub fn practices(&self) -> Vec<String> {
        let mut codes: Vec<String> = self.inner.practices.keys().cloned().collect();
        codes.sort();
        codes
    }

    fn practice(&self, ods: &str) -> Result<usize, ApiError> {
        self.inner.practices.get(ods).copied().ok_or_else(|| {
            ApiError::new(
                ErrorCode::PracticeNotFound,
                "no EMIS-style practice with this ODS code",
            )
        })
    }

    /// Checks the application and the session for practice `ods`.
    fn authorise(&self, headers: &HeaderMap, ods: &str) -> Result<(usize, Session), ApiError> {
        session::check_application(headers)?;
        let practice = self.practice(ods)?;
        let token = session::token(headers)?;
        let sessions = self
            .inner
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let session = sessions.get(token).ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidSession, "the session token is not valid")
        })?;
        if session.practice != practice {
            return Err(ApiError::new(
                ErrorCode::WrongOrganisation,
                "the session belongs to another practice",
            ));
        }
        Ok((practice, session))
    }

    /// The record of patient `guid` at `practice`.
    fn patient(&self, practice: usize, guid: &str) -> Result<RecordRef, ApiError> {
        let guid =
            Guid::parse(guid).ok_or_else(|| ApiError::invalid("the patient GUID is not a GUID"))?;
        self.inner
            .by_guid
            .get(&guid)
            .filter(|(at_practice, _)| *at_practice == practice)
            .map(|(_, at)| *at)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::PatientNotFound,
                    "no such patient at this practice",
                )
            })
    }

    fn demographics(&self, at: RecordRef) -> PatientRecord {
        self.inner
            .demographics
            .person(at.person)
            .records
            .swap_remove(at.record)
    }

    fn record_id(&self, at: RecordRef) -> &str {
        self.inner.record_ids.get(&at).map_or("", String::as_str)
    }

    /// Renders with `render` the full record `at`, merged with what was written to it.
    fn render_record(
        &self,
        at: RecordRef,
        render: impl FnOnce(&mut XmlOut, &RecordView) -> std::io::Result<()>,
    ) -> Result<Vec<u8>, ApiError> {
        let record = self.inner.records.record(at);
        let pcn = self.inner.records.population().pcn();
        let overlay = self.inner.overlay.read().unwrap_or_else(|e| e.into_inner());
        let view = RecordView {
            practice: &pcn.practices[record.practice],
            record: &record,
            booked: self.inner.booked.get(&at).map_or(&[][..], Vec::as_slice),
            booked_on: self.inner.booked_on,
            written: overlay.written(at),
        };
        let capacity = 1024 + 400 * record.clinical.entry_count() as usize;
        let mut x = XmlOut::new(capacity).map_err(|e| ApiError::internal(&e))?;
        render(&mut x, &view).map_err(|e| ApiError::internal(&e))?;
        Ok(x.finish())
    }
}

/// The HTTP API under [`BASE_PATH`]; anything else answers 404 `NotFound` (405 for a known
/// route with another method), in the API's error shape.
pub fn router(sim: EmisSimulator) -> Router {
    let practice = format!("{BASE_PATH}/practices/{{ods}}");
    let patient = format!("{practice}/patients/{{patient}}");
    Router::new()
        .route(&format!("{practice}/sessions"), post(login))
        .route(&format!("{practice}/patients"), get(search))
        .route(&patient, get(demographics))
        .route(&format!("{patient}/record"), get(full_record))
        .route(
            &format!("{patient}/record/{{section}}"),
            get(record_section),
        )
        .route(&format!("{patient}/documents/{{document}}"), get(document))
        .route(
            &format!("{patient}/consultations"),
            post(|s, p, h, u, b| write(WriteKind::Consultation, s, p, h, u, b)),
        )
        .route(
            &format!("{patient}/codedentries"),
            post(|s, p, h, u, b| write(WriteKind::CodedEntry, s, p, h, u, b)),
        )
        .route(
            &format!("{patient}/tasks"),
            post(|s, p, h, u, b| write(WriteKind::Task, s, p, h, u, b)),
        )
        .route(
            &format!("{patient}/documents"),
            post(|s, p, h, u, b| write(WriteKind::Document, s, p, h, u, b)),
        )
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such resource") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "method not allowed on this resource",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(sim)
}

/// Serves [`router`] behind the fault layer of `faults` on `addr` (e.g. `127.0.0.1:0`);
/// returns the bound address.
///
/// # Errors
/// If the address cannot be bound.
pub async fn serve(
    sim: EmisSimulator,
    addr: SocketAddr,
    faults: FaultHandle,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    crate::server::serve("EMIS-style", router(sim), addr, faults).await
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(t)| t)
        .map_err(|e| ApiError::invalid(format!("bad path: {}", e.body_text())))
}

fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::RequestTooLarge,
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::invalid(format!("the body could not be read: {}", e.body_text()))
        }
    })
}

fn ok_xml(status: StatusCode, body: Vec<u8>) -> Response {
    xml_response(status, body)
}

/// `POST …/sessions`: opens a session for a user of the practice.
async fn login(
    State(sim): State<EmisSimulator>,
    ods: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    session::check_application(&headers)?;
    let ods = path(ods)?;
    let practice = sim.practice(&ods)?;
    let login = request::parse_login(&body(bytes)?)?;
    let staff = &sim.inner.records.population().pcn().practices[practice].staff;
    let user = staff
        .iter()
        .position(|s| s.id == login.user_id)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidCredentials,
                "no such user at this practice",
            )
        })?;
    let token = sim
        .inner
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .open(Session { practice, user });
    let mut x = XmlOut::new(256).map_err(|e| ApiError::internal(&e))?;
    let written = (|| {
        x.root("Session", &[])?;
        x.text("SessionToken", &[], token.text().as_str())?;
        x.text("OdsCode", &[], &ods)?;
        x.text("UserId", &[], &login.user_id)?;
        x.end("Session")
    })();
    written.map_err(|e| ApiError::internal(&e))?;
    tracing::debug!(route = "emis-style login", "session opened");
    Ok(ok_xml(StatusCode::CREATED, x.finish()))
}

/// `GET …/patients?nhsNumber=` or `?surname=&dateOfBirth=`.
async fn search(
    State(sim): State<EmisSimulator>,
    ods: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (practice, _) = sim.authorise(&headers, &path(ods)?)?;
    let mut nhs = None;
    let mut surname = None;
    let mut birth = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let slot = match key.as_ref() {
            "nhsNumber" => &mut nhs,
            "surname" => &mut surname,
            "dateOfBirth" => &mut birth,
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown search parameter '{other}'; use nhsNumber, or surname and dateOfBirth"
                )));
            }
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(ApiError::invalid(format!(
                "search parameter '{key}' given more than once"
            )));
        }
    }
    let found: Vec<RecordRef> = match (nhs, surname, birth) {
        (Some(n), None, None) => {
            let n = NhsNumber::parse(&n)
                .map_err(|e| ApiError::invalid(format!("nhsNumber is not valid: {e}")))?;
            sim.inner.records.by_nhs_number(practice, &n).to_vec()
        }
        (None, Some(s), Some(b)) => {
            let b = request::parse_date(&b)
                .ok_or_else(|| ApiError::invalid("dateOfBirth is not a date (YYYY-MM-DD)"))?;
            let key = (practice, s.trim().to_lowercase(), b);
            sim.inner.by_name.get(&key).cloned().unwrap_or_default()
        }
        _ => {
            return Err(ApiError::invalid(
                "search by nhsNumber alone, or by surname and dateOfBirth together",
            ));
        }
    };
    let pcn = sim.inner.records.population().pcn();
    let mut x = XmlOut::new(1024 * (1 + found.len())).map_err(|e| ApiError::internal(&e))?;
    let written = (|| {
        x.root("PatientMatches", &[("Count", &found.len().to_string())])?;
        for at in &found {
            let record = sim.demographics(*at);
            render::patient(&mut x, &pcn.practices[practice], &record, false)?;
        }
        x.end("PatientMatches")
    })();
    written.map_err(|e| ApiError::internal(&e))?;
    tracing::debug!(route = "emis-style patient search", matches = found.len());
    Ok(ok_xml(StatusCode::OK, x.finish()))
}

/// `GET …/patients/{patient}`: demographics.
async fn demographics(
    State(sim): State<EmisSimulator>,
    p: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (ods, patient) = path(p)?;
    let (practice, _) = sim.authorise(&headers, &ods)?;
    let at = sim.patient(practice, &patient)?;
    let record = sim.demographics(at);
    let pcn = sim.inner.records.population().pcn();
    let mut x = XmlOut::new(2048).map_err(|e| ApiError::internal(&e))?;
    render::patient(&mut x, &pcn.practices[practice], &record, true)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(ok_xml(StatusCode::OK, x.finish()))
}

/// `GET …/patients/{patient}/record`: the full medical record.
async fn full_record(
    State(sim): State<EmisSimulator>,
    p: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (ods, patient) = path(p)?;
    let (practice, _) = sim.authorise(&headers, &ods)?;
    let at = sim.patient(practice, &patient)?;
    let body = sim.render_record(at, render::medical_record)?;
    Ok(ok_xml(StatusCode::OK, body))
}

/// `GET …/patients/{patient}/record/{section}`.
async fn record_section(
    State(sim): State<EmisSimulator>,
    p: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (ods, patient, section) = path(p)?;
    let (practice, _) = sim.authorise(&headers, &ods)?;
    let at = sim.patient(practice, &patient)?;
    let which = Section::from_path(&section).ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("no record section '{section}'"),
        )
    })?;
    let body = sim.render_record(at, |x, view| render::section(x, view, which, true))?;
    Ok(ok_xml(StatusCode::OK, body))
}

/// `GET …/patients/{patient}/documents/{document}`: a written document with its content.
async fn document(
    State(sim): State<EmisSimulator>,
    p: Result<Path<(String, String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (ods, patient, document) = path(p)?;
    let (practice, _) = sim.authorise(&headers, &ods)?;
    let at = sim.patient(practice, &patient)?;
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such document for this patient");
    let guid = Guid::parse(&document).ok_or_else(not_found)?;
    let overlay = sim.inner.overlay.read().unwrap_or_else(|e| e.into_inner());
    let d = overlay
        .written(at)
        .and_then(|w| w.documents.iter().find(|d| d.guid == guid))
        .ok_or_else(not_found)?;
    let pcn = sim.inner.records.population().pcn();
    let mut x =
        XmlOut::new(1024 + d.input.content.len() * 2).map_err(|e| ApiError::internal(&e))?;
    render::document_element(&mut x, &pcn.practices[practice], d)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(ok_xml(StatusCode::OK, x.finish()))
}

/// The four writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteKind {
    Consultation,
    CodedEntry,
    Task,
    Document,
}

impl WriteKind {
    fn key(self) -> &'static str {
        match self {
            WriteKind::Consultation => "consultation",
            WriteKind::CodedEntry => "coded entry",
            WriteKind::Task => "task",
            WriteKind::Document => "document",
        }
    }
}

/// A write request, parsed and checked.
enum Parsed {
    Consultation(request::ConsultationInput),
    CodedEntry(request::CodedEntryInput),
    /// The task and its owner (staff index).
    Task(request::TaskInput, usize),
    Document(request::DocumentInput),
}

/// The client request id, if sent: 1 to 128 visible ASCII characters.
fn client_request_id(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(REQUEST_ID_HEADER) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .filter(|s| (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()))
        .map(|s| Some(s.to_string()))
        .ok_or_else(|| ApiError::invalid("X-Request-Id must be 1 to 128 visible ASCII characters"))
}

/// `POST` of a consultation, coded entry, task or document.
///
/// Under one lock: a known client request id replays the original answer (same body) or
/// answers 409 (different method, path or body); otherwise the body is parsed and checked in
/// full, then applied, so a rejected write leaves nothing behind.
async fn write(
    kind: WriteKind,
    State(sim): State<EmisSimulator>,
    p: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (ods, patient) = path(p)?;
    let (practice, session) = sim.authorise(&headers, &ods)?;
    let at = sim.patient(practice, &patient)?;
    let request_id = client_request_id(&headers)?;
    let bytes = body(bytes)?;
    let mut fingerprint = Vec::with_capacity(uri.path().len() + bytes.len() + 8);
    fingerprint.extend_from_slice(b"POST ");
    fingerprint.extend_from_slice(uri.path().as_bytes());
    fingerprint.push(b'\n');
    fingerprint.extend_from_slice(&bytes);

    let mut overlay = sim.inner.overlay.write().unwrap_or_else(|e| e.into_inner());
    if let Some(replay) = request_id.as_ref().and_then(|id| overlay.replays.get(id)) {
        if replay.fingerprint != fingerprint {
            return Err(ApiError::new(
                ErrorCode::RequestIdConflict,
                "this X-Request-Id was used for a different request",
            ));
        }
        tracing::debug!(route = "emis-style write", kind = kind.key(), "replayed");
        return Ok(ok_xml(replay.status, replay.body.clone()));
    }
    let staff = &sim.inner.records.population().pcn().practices[practice].staff;
    let parsed = match kind {
        WriteKind::Consultation => Parsed::Consultation(request::parse_consultation(&bytes)?),
        WriteKind::CodedEntry => Parsed::CodedEntry(request::parse_coded_entry(&bytes)?),
        WriteKind::Task => {
            let input = request::parse_task(&bytes)?;
            let owner = match &input.owner {
                None => session.user,
                Some(id) => staff.iter().position(|s| &s.id == id).ok_or_else(|| {
                    ApiError::invalid("Task: Owner UserId is not a user of this practice")
                })?,
            };
            Parsed::Task(input, owner)
        }
        WriteKind::Document => Parsed::Document(request::parse_document(&bytes)?),
    };

    let record_id = sim.record_id(at).to_string();
    let written = overlay.written.entry(at).or_default();
    let mut items: Vec<(&'static str, Guid)> = Vec::new();
    match parsed {
        Parsed::Consultation(input) => {
            let guid = written.next_guid(&record_id);
            items.push(("Consultation", guid));
            let mut section_entries = Vec::new();
            for s in &input.sections {
                let mut refs = Vec::new();
                for e in &s.entries {
                    let entry = WrittenEntry {
                        guid: written.next_guid(&record_id),
                        input: e.clone(),
                        author: session.user,
                        consultation: Some(guid),
                    };
                    let problem = entry.is_problem();
                    items.push((if problem { "Problem" } else { "Event" }, entry.guid));
                    refs.push((entry.guid, problem));
                    written.entries.push(entry);
                }
                section_entries.push(refs);
            }
            written.consultations.push(WrittenConsultation {
                guid,
                input,
                author: session.user,
                section_entries,
            });
        }
        Parsed::CodedEntry(input) => {
            let entry = WrittenEntry {
                guid: written.next_guid(&record_id),
                input,
                author: session.user,
                consultation: None,
            };
            items.push((
                if entry.is_problem() {
                    "Problem"
                } else {
                    "Event"
                },
                entry.guid,
            ));
            written.entries.push(entry);
        }
        Parsed::Task(input, owner) => {
            let guid = written.next_guid(&record_id);
            items.push(("Task", guid));
            written.tasks.push(WrittenTask {
                guid,
                input,
                owner,
                requester: session.user,
            });
        }
        Parsed::Document(input) => {
            let guid = written.next_guid(&record_id);
            items.push(("Document", guid));
            written.documents.push(WrittenDocument {
                guid,
                input,
                author: session.user,
            });
        }
    }
    let result = write_result(&record_id, &items).map_err(|e| ApiError::internal(&e))?;
    if let Some(id) = request_id {
        overlay.replays.insert(
            id,
            Replay {
                fingerprint,
                status: StatusCode::CREATED,
                body: result.clone(),
            },
        );
    }
    tracing::debug!(route = "emis-style write", kind = kind.key(), "accepted");
    Ok(ok_xml(StatusCode::CREATED, result))
}

/// `<WriteResult PatientGuid><Item Type Guid/>…</WriteResult>`: the written item first, then
/// the coded entries of a consultation.
fn write_result(record_id: &str, items: &[(&str, Guid)]) -> std::io::Result<Vec<u8>> {
    let mut x = XmlOut::new(256 + 80 * items.len())?;
    x.root(
        "WriteResult",
        &[("PatientGuid", Guid::named(record_id).text().as_str())],
    )?;
    for (kind, guid) in items {
        x.empty("Item", &[("Type", kind), ("Guid", guid.text().as_str())])?;
    }
    x.end("WriteResult")?;
    Ok(x.finish())
}
