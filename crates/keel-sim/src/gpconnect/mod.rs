//! A simulator of GP Connect providers (FHIR STU3, spec 1.6.x as summarised in reference
//! sheet §3), one provider per practice of the PCN, fed from [`PracticeRecords`].
//!
//! # URL layout
//!
//! Every practice is its own provider under the service root `/{ODS}/STU3/1/gpconnect`
//! ([`GpConnectSimulator::service_root`]):
//!
//! | interaction | request |
//! |---|---|
//! | Access Record Structured | `POST {root}/Patient/$gpc.getstructuredrecord` |
//! | Access Record HTML (0.7.x) | `POST {root}/Patient/$gpc.getcarerecord` |
//! | Search free slots | `GET {root}/Slot?start=ge..&end=le..&status=free&_include=Slot:schedule` |
//! | Book / read / amend or cancel an appointment | `POST {root}/Appointment`, `GET`/`PUT {root}/Appointment/{id}` |
//! | A patient's appointments | `GET {root}/Patient/{id}/Appointment?start=ge..&start=le..` |
//! | What the provider offers | `GET {root}/metadata` (CapabilityStatement; [`capabilities`]) |
//!
//! The provider ASID of practice `i` (0-based) is `918` followed by `i + 1` in nine digits
//! (`918000000001` for the first practice) ([`GpConnectSimulator::asid`]).
//!
//! # What follows the published spec (reference sheet §3)
//!
//! - Request checks on every interaction ([`checks`]): `Ssp-TraceID` (GUID), `Ssp-From`,
//!   `Ssp-To` (this provider's ASID), `Ssp-InteractionID` (the route's interaction), the
//!   unsigned JWT ([`jwt`]) and its claims, Accept/Content-Type. Every response carries
//!   `Cache-Control: no-store`; errors are GP Connect OperationOutcomes ([`error`]).
//! - `$gpc.getstructuredrecord` ([`parameters`], [`structured`]): parameters and part
//!   parameters with the documented error codes; `PATIENT_NOT_FOUND` for an unknown,
//!   deceased, deregistered or temporary patient, an unverified NHS number or an S-flag
//!   patient; a `collection` Bundle with Patient, Organization, usual GP Practitioner and
//!   PractitionerRole, the Practitioners referenced, and one List per requested area with
//!   the §3.4 codes and titles; the empty / withheld / in-transit / disabled table.
//! - `$gpc.getcarerecord` (Access Record HTML 0.7.x, sheet §3.6 and the published 0.7.x
//!   HTML layout guide) ([`care_parameters`], [`care_record`]): `patientNHSNumber`,
//!   `recordSection` (codes SUM ADM ALL CLI ENC IMM MED OBS PRB REF), optional `timePeriod`;
//!   `INVALID_PARAMETER` for an unknown code, an inverted period or a period for SUM, ALL or
//!   IMM; the same not-found rules as the structured record; a `searchset` Bundle with a
//!   Composition whose section narrative is XHTML ([`xhtml`]) laid out as the guide says
//!   (section title, GP transfer, date and exclusion banners, tables most recent first, the
//!   "No '…' data is recorded" paragraph).
//! - Appointment Management ([`appointments`]): slot search, book (201), read, amend and
//!   cancel with `If-Match`, a patient's appointments.
//!
//! # Modelled assumptions
//!
//! - "Today" for parameters and appointments is the population's as-of date; only the JWT
//!   expiry uses a clock, the real one unless set ([`GpConnectSimulator::set_now`]).
//! - `aud` must end with this provider's service root path (the simulator does not know the
//!   host it is reached at). `Ssp-To` not this provider → the proxy's 403 (`forbidden`, no
//!   Spine code); Accept or Content-Type other than FHIR JSON → the proxy's 415; a wrong verb
//!   → the proxy's 405; an unknown path → 501 `NOT_IMPLEMENTED`; an unknown ODS code → 404
//!   `ORGANISATION_NOT_FOUND`. XML is not served.
//! - A registration started within [`structured::IN_TRANSIT_DAYS`] (28) days of the as-of
//!   date is in transit. Sensitive entries (RCGP exclusion set), confidential consultations
//!   and medicines whose indication is sensitive are withheld.
//! - Clinical areas are enabled everywhere unless switched off in-process
//!   ([`GpConnectSimulator::disable_area`]); so are whole capabilities (structured, HTML,
//!   appointments: [`GpConnectSimulator::disable_capability`], `keel sim serve
//!   --gp-connect-disable ODS:capability`), answered with 403 `ACCESS DENIED` and left out of
//!   the practice's CapabilityStatement.
//! - Investigations: the model holds laboratory Observations, so each result date becomes
//!   one DiagnosticReport (no Specimen, no test group). Referrals and diary entries: the model
//!   has none, so their Lists are empty (`no-content-recorded`). Consultations are an
//!   Encounter with a consultation → topic → category List chain and a "Comment note"
//!   Observation; secondary lists and the related-problems List are not produced.
//! - Access Record HTML: both NHS number systems are accepted (0.7.x
//!   `http://fhir.nhs.net/Id/nhs-number` and 1.x `https://fhir.nhs.uk/Id/nhs-number`); the
//!   request checks are the 1.x ones above (the 0.7.x JWT differed); a time-agnostic period is
//!   422 `INVALID_PARAMETER` as the error-handling guidance says (the layout guide says 400);
//!   only whole dates. Table columns follow the published views where the model has the data
//!   (medications), otherwise they are this simulator's: see [`care_record`]. Clinical
//!   areas switched off for the structured record do not affect the HTML views. The
//!   exclusion banner uses the layout guide's wording, "Items excluded due to
//!   confidentiality and/or patient preferences" (the sheet paraphrases it).
//!
//! Not simulated: the migrate variant, patient read/search, register patient, organisation/practitioner/location reads; the metadata is one CapabilityStatement per provider, not one per capability.

pub mod appointments;
pub mod capabilities;
pub mod care_parameters;
pub mod care_record;
pub mod checks;
pub mod dates;
pub mod error;
pub mod jwt;
pub mod parameters;
pub mod structured;
pub mod xhtml;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::faults::FaultHandle;
use crate::records::PracticeRecords;
use capabilities::Capability;
use checks::{Expected, Interaction};
use error::GpcError;
use parameters::ClinicalArea;

/// One practice's provider identity.
#[derive(Debug, Clone)]
struct Provider {
    ods: String,
    asid: String,
    service_root: String,
}

#[derive(Debug)]
struct Inner {
    records: Arc<PracticeRecords>,
    providers: Vec<Provider>,
    /// Unix seconds for the JWT expiry check; `None` = the real clock.
    now: RwLock<Option<i64>>,
    disabled: RwLock<BTreeSet<(usize, ClinicalArea)>>,
    /// Capabilities a practice has not enabled.
    switched_off: RwLock<BTreeSet<(usize, Capability)>>,
    diary: Mutex<appointments::Diary>,
}

/// The GP Connect providers of every practice of the PCN.
#[derive(Debug, Clone)]
pub struct GpConnectSimulator {
    inner: Arc<Inner>,
}

impl GpConnectSimulator {
    pub fn new(records: Arc<PracticeRecords>) -> Self {
        let providers = records
            .population()
            .pcn()
            .practices
            .iter()
            .map(|p| Provider {
                ods: p.ods.as_str().to_string(),
                asid: format!("918{:09}", p.index + 1),
                service_root: format!("/{}/STU3/1/gpconnect", p.ods.as_str()),
            })
            .collect();
        GpConnectSimulator {
            inner: Arc::new(Inner {
                records,
                providers,
                now: RwLock::new(None),
                disabled: RwLock::new(BTreeSet::new()),
                switched_off: RwLock::new(BTreeSet::new()),
                diary: Mutex::new(appointments::Diary::default()),
            }),
        }
    }

    pub fn records(&self) -> &PracticeRecords {
        &self.inner.records
    }

    /// The provider ASID of `practice`.
    pub fn asid(&self, practice: usize) -> Option<&str> {
        self.inner.providers.get(practice).map(|p| p.asid.as_str())
    }

    /// The service root path of `practice` (`/{ODS}/STU3/1/gpconnect`).
    pub fn service_root(&self, practice: usize) -> Option<&str> {
        self.inner
            .providers
            .get(practice)
            .map(|p| p.service_root.as_str())
    }

    /// Sets the "now" (Unix seconds) the JWT expiry is checked against; `None` restores
    /// the real clock.
    pub fn set_now(&self, unix_seconds: Option<i64>) {
        *self.inner.now.write().unwrap_or_else(|e| e.into_inner()) = unix_seconds;
    }

    /// Switches `area` off at `practice` (answered with a NOT_IMPLEMENTED warning).
    pub fn disable_area(&self, practice: usize, area: ClinicalArea) {
        self.inner
            .disabled
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((practice, area));
    }

    /// Switches the whole `capability` off at `practice`: its interactions answer 403
    /// `ACCESS DENIED` and the practice's CapabilityStatement no longer lists it.
    pub fn disable_capability(&self, practice: usize, capability: Capability) {
        self.inner
            .switched_off
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((practice, capability));
    }

    /// The capabilities `practice` offers.
    pub fn capabilities(&self, practice: usize) -> Vec<Capability> {
        let off = self
            .inner
            .switched_off
            .read()
            .unwrap_or_else(|e| e.into_inner());
        Capability::ALL
            .into_iter()
            .filter(|c| !off.contains(&(practice, *c)))
            .collect()
    }

    /// Switches `area` back on at `practice`.
    pub fn enable_area(&self, practice: usize, area: ClinicalArea) {
        self.inner
            .disabled
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(practice, area));
    }

    fn disabled_areas(&self, practice: usize) -> BTreeSet<ClinicalArea> {
        let disabled = self
            .inner
            .disabled
            .read()
            .unwrap_or_else(|e| e.into_inner());
        disabled
            .iter()
            .filter(|(p, _)| *p == practice)
            .map(|(_, a)| *a)
            .collect()
    }

    fn now(&self) -> i64 {
        let set = *self.inner.now.read().unwrap_or_else(|e| e.into_inner());
        set.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        })
    }

    /// Finds the provider for `ods` and runs the common checks; returns the practice index
    /// and the interaction named by the request.
    fn admit(
        &self,
        ods: &str,
        headers: &HeaderMap,
        interactions: &[Interaction],
        has_body: bool,
    ) -> Result<(usize, Interaction), GpcError> {
        let practice = self
            .inner
            .providers
            .iter()
            .position(|p| p.ods == ods)
            .ok_or_else(|| {
                GpcError::organisation_not_found("no GP Connect provider at this address")
            })?;
        let provider = &self.inner.providers[practice];
        let interaction = checks::check(
            headers,
            &Expected {
                asid: &provider.asid,
                service_root: &provider.service_root,
                interactions,
                now: self.now(),
                has_body,
            },
        )?;
        if let Some(capability) = Capability::of(interaction)
            && !self.capabilities(practice).contains(&capability)
        {
            return Err(GpcError::access_denied(&format!(
                "GP Connect {} is not enabled at this practice",
                capability.key()
            )));
        }
        Ok((practice, interaction))
    }
}

/// A FHIR JSON response with `Cache-Control: no-store` and an optional `ETag` version.
pub(crate) fn fhir_response(status: StatusCode, body: Vec<u8>, version: Option<u32>) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json;charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(v) = version
        && let Ok(etag) = HeaderValue::from_str(&format!("W/\"{v}\""))
    {
        h.insert(header::ETAG, etag);
    }
    resp
}

fn answer(result: Result<Response, GpcError>) -> Response {
    result.unwrap_or_else(GpcError::into_response)
}

async fn metadata_handler(
    State(sim): State<GpConnectSimulator>,
    Path(ods): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(
        sim.admit(&ods, &headers, &[Interaction::ReadMetadata], false)
            .map(|(practice, _)| {
                let statement =
                    capabilities::capability_statement(&ods, &sim.capabilities(practice));
                fhir_response(
                    StatusCode::OK,
                    serde_json::to_vec(&statement).unwrap_or_default(),
                    None,
                )
            }),
    )
}

/// The HTTP API of every provider (see the module docs for the layout).
pub fn router(sim: GpConnectSimulator) -> Router {
    const ROOT: &str = "/{ods}/STU3/1/gpconnect";
    Router::new()
        .route(
            &format!("{ROOT}/Patient/$gpc.getstructuredrecord"),
            post(structured_handler).fallback(wrong_verb),
        )
        .route(
            &format!("{ROOT}/Patient/$gpc.getcarerecord"),
            post(care_record_handler).fallback(wrong_verb),
        )
        .route(
            &format!("{ROOT}/Slot"),
            get(appointments::search_slots).fallback(wrong_verb),
        )
        .route(
            &format!("{ROOT}/Appointment"),
            post(appointments::book).fallback(wrong_verb),
        )
        .route(
            &format!("{ROOT}/Appointment/{{id}}"),
            get(appointments::read)
                .put(appointments::update)
                .fallback(wrong_verb),
        )
        .route(
            &format!("{ROOT}/Patient/{{id}}/Appointment"),
            get(appointments::patient_appointments).fallback(wrong_verb),
        )
        .route(
            &format!("{ROOT}/metadata"),
            get(metadata_handler).fallback(wrong_verb),
        )
        .fallback(unknown_route)
        .with_state(sim)
}

/// Serves [`router`] with `faults` on `addr` in a background task; returns the bound
/// address.
///
/// # Errors
/// If the address cannot be bound.
pub async fn serve(
    sim: GpConnectSimulator,
    addr: SocketAddr,
    faults: FaultHandle,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    crate::server::serve("GP Connect", router(sim), addr, faults).await
}

async fn wrong_verb() -> Response {
    GpcError::method_not_allowed("this interaction does not use that HTTP verb").into_response()
}

async fn unknown_route() -> Response {
    GpcError::not_implemented("no such GP Connect interaction at this provider").into_response()
}

async fn structured_handler(
    State(sim): State<GpConnectSimulator>,
    Path(ods): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(structured_record(&sim, &ods, &headers, &body))
}

fn structured_record(
    sim: &GpConnectSimulator,
    ods: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, GpcError> {
    let (practice, _) = sim.admit(ods, headers, &[Interaction::GetStructuredRecord], true)?;
    let records = sim.records();
    let as_of = records.population().options().as_of;
    let (nhs, query) = parameters::parse(body, as_of)?;
    let (at, record) = structured::find_patient(records, practice, &nhs)?;
    let disabled = sim.disabled_areas(practice);
    let ctx = structured::Context {
        practice: &records.population().pcn().practices[practice],
        record: &record,
        person_index: at.person,
        as_of,
        disabled: &disabled,
    };
    let mut out = Vec::with_capacity(64 * 1024);
    structured::render(&mut out, &ctx, &query);
    tracing::debug!(
        route = "Patient/$gpc.getstructuredrecord",
        bytes = out.len(),
        "structured record served"
    );
    Ok(fhir_response(StatusCode::OK, out, None))
}

async fn care_record_handler(
    State(sim): State<GpConnectSimulator>,
    Path(ods): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(care_record(&sim, &ods, &headers, &body))
}

fn care_record(
    sim: &GpConnectSimulator,
    ods: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, GpcError> {
    let (practice, _) = sim.admit(ods, headers, &[Interaction::GetCareRecord], true)?;
    let records = sim.records();
    let query = care_parameters::parse(body)?;
    let (at, record) = structured::find_patient(records, practice, &query.nhs_number)?;
    let ctx = structured::Context {
        practice: &records.population().pcn().practices[practice],
        record: &record,
        person_index: at.person,
        as_of: records.population().options().as_of,
        disabled: &BTreeSet::new(),
    };
    let mut out = Vec::with_capacity(64 * 1024);
    care_record::render(&mut out, &ctx, &query);
    tracing::debug!(
        route = "Patient/$gpc.getcarerecord",
        section = query.section.code(),
        bytes = out.len(),
        "care record section served"
    );
    Ok(fhir_response(StatusCode::OK, out, None))
}

/// Query pairs of a request.
fn query_pairs(query: Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}
