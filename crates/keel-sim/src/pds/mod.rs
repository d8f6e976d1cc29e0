//! A simulator of the Personal Demographics Service (PDS) FHIR R4 API (reference sheet §4),
//! serving PDS-shaped UK Core `Patient` resources over HTTP with axum, in-process for tests.
//!
//! # What it does
//!
//! - [`PdsSimulator::new`] holds Patient resources keyed by NHS number (`Patient.id`, or the
//!   `https://fhir.nhs.uk/Id/nhs-number` identifier when `id` is absent; resources with
//!   neither are skipped). A missing `meta.versionId` is set to `"1"`.
//! - [`from_population`] renders every generated person who has an NHS number as PDS holds
//!   them (see its docs).
//! - [`router`] serves `GET {base}/Patient/{nhsNumber}` and `GET {base}/Patient` where
//!   `{base}` is both [`BASE_PATH`] (`/personal-demographics/FHIR/R4`, as the real API) and
//!   the empty prefix (plain `/Patient`, for convenience).
//!
//! # Behaviour from the reference sheet (§4)
//!
//! - Retrieve: 400 `INVALID_RESOURCE_ID` for a number failing the Modulus 11 check
//!   ([`keel_model::NhsNumber::parse`]); 404 `RESOURCE_NOT_FOUND` when unknown; 404
//!   `INVALIDATED_RESOURCE` for a record labelled `REDACTED`; `ETag: W/"<versionId>"`.
//! - Superseded (merged) numbers ([`PdsSimulator::supersede`]): a retrieve of the old number
//!   returns the surviving record, whose `id` differs from the number requested. Search only
//!   ever returns surviving records.
//! - Redaction by `meta.security` (`v3-Confidentiality`): `R` removes `address`, `telecom`,
//!   `generalPractitioner` (and on search `contact`); `V` also removes `name` and `birthDate`.
//!   Searches using `address-postalcode` or `general-practitioner` return no `R`/`V` patients.
//! - Search: parameters, prefixes, wildcards and combinations as the sheet's table; results
//!   in a `searchset` Bundle with `search.score`, best first; more matches than
//!   `_max-results` (1–50, default 50) → **200** with an OperationOutcome `TOO_MANY_MATCHES`;
//!   no match → an empty searchset; `address-postcode` → 400 `INVALID_SEARCH_DATA`.
//!   Search returns a reduced Patient: no place of birth, pharmacies, communication or contact
//!   preferences, and only `home` addresses.
//! - `X-Request-ID` is mandatory and must be a UUID; it and `X-Correlation-ID` are echoed.
//!
//! # Assumptions (not stated by the sheet)
//!
//! - A missing `X-Request-ID` → 400 `MISSING_VALUE`, a malformed one → 400 `INVALID_VALUE`.
//!   No authentication is checked.
//! - Matching and scoring: see [`search`]. `V` keeps `gender`, `deceasedDateTime` and
//!   extensions other than the reduced-search ones; `R`/`V` redaction on retrieve also removes
//!   `contact` (the sheet names it for search only; removing it on retrieve errs safe).
//! - No Bundle `timestamp` is written (the simulator never reads the wall clock).
//! - `fullUrl`s use the production base `https://api.service.nhs.uk/personal-demographics/FHIR/R4`.
//!
//! - Update: `PATCH /Patient/{nhsNumber}` with `If-Match` ([`update`]); a repeated
//!   `X-Request-ID` (the sheet: "reuse on retry") with the same request is answered with the
//!   first result and not applied twice; with a different request → 400 `INVALID_VALUE`. The
//!   last 10,000 successful updates are remembered. A superseded number → 404
//!   `RESOURCE_NOT_FOUND` (update the surviving record); a Content-Type other than
//!   `application/json-patch+json` → 400 `INVALID_UPDATE`.
//!
//! Not yet simulated: POST, RelatedPerson, Coverage, `_history` (accepted,
//! no history is held), rate limiting, application-restricted mode.

pub mod redact;
pub mod search;
pub mod update;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use keel_model::NhsNumber;
use serde_json::{Value, json};

use crate::model::{Confidentiality, TelecomKind};
use crate::population::Population;

/// The API's base path on the real service.
pub const BASE_PATH: &str = "/personal-demographics/FHIR/R4";
/// The base used in `fullUrl`s.
pub const FULL_URL_BASE: &str = "https://api.service.nhs.uk/personal-demographics/FHIR/R4";

pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";
pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
pub const CONFIDENTIALITY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
pub const ERROR_SYSTEM: &str = "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode";
const VERIFICATION_EXT: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";
const VERIFICATION_SYSTEM: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatus";
pub(crate) const DEATH_EXT: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-DeathNotificationStatus";
const DEATH_SYSTEM: &str = "https://fhir.hl7.org.uk/CodeSystem/UKCore-DeathNotificationStatus";

#[derive(Debug, Default)]
struct Store {
    patients: BTreeMap<String, Value>,
    /// Superseded NHS number → surviving NHS number.
    superseded: BTreeMap<String, String>,
    /// Successful updates by `X-Request-ID`, so a retry is answered, not applied twice.
    updates: HashMap<String, AppliedUpdate>,
    /// Request ids in the order they were applied (the oldest are forgotten first).
    update_order: VecDeque<String>,
}

/// How many successful updates are remembered for retries.
const REMEMBERED_UPDATES: usize = 10_000;

#[derive(Debug)]
struct AppliedUpdate {
    nhs_number: String,
    if_match: Option<String>,
    body: Vec<u8>,
    result: Value,
}

/// The simulator's state, shared by the router's handlers.
#[derive(Debug, Clone, Default)]
pub struct PdsSimulator {
    store: Arc<RwLock<Store>>,
}

impl PdsSimulator {
    /// Holds `patients`, keyed by NHS number (see the module docs).
    pub fn new(patients: Vec<Value>) -> Self {
        let mut store = Store::default();
        for mut p in patients {
            let Some(key) = nhs_number_of(&p) else {
                continue;
            };
            if let Some(obj) = p.as_object_mut() {
                obj.entry("id")
                    .or_insert_with(|| Value::String(key.clone()));
                let meta = obj.entry("meta").or_insert_with(|| json!({}));
                if let Some(meta) = meta.as_object_mut() {
                    meta.entry("versionId").or_insert_with(|| json!("1"));
                }
            }
            store.patients.insert(key, p);
        }
        PdsSimulator {
            store: Arc::new(RwLock::new(store)),
        }
    }

    /// Marks `old` as superseded by (merged into) `surviving`; the old record, if held, is
    /// dropped.
    pub fn supersede(&self, old: &str, surviving: &str) {
        let mut s = self.store.write().unwrap_or_else(|e| e.into_inner());
        s.patients.remove(old);
        s.superseded.insert(old.to_string(), surviving.to_string());
    }

    /// The stored (unredacted) Patient for `nhs_number`, if any.
    pub fn stored(&self, nhs_number: &str) -> Option<Value> {
        let s = self.store.read().unwrap_or_else(|e| e.into_inner());
        s.patients.get(nhs_number).cloned()
    }

    pub fn len(&self) -> usize {
        self.store
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .patients
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn with_patients<T>(&self, f: impl FnOnce(&BTreeMap<String, Value>) -> T) -> T {
        let s = self.store.read().unwrap_or_else(|e| e.into_inner());
        f(&s.patients)
    }

    /// Applies a PATCH ([`update::apply`]) to the record of `nhs_number` and returns the new
    /// stored record. A repeated `request_id` with the same request returns the first result
    /// without applying it again; with a different request it is refused.
    ///
    /// # Errors
    /// The PDS error for an unknown, superseded or invalidated record, a reused request id, or
    /// what [`update::apply`] refuses.
    pub fn update(
        &self,
        nhs_number: &str,
        request_id: &str,
        if_match: Option<&str>,
        body: &[u8],
    ) -> Result<Value, ApiError> {
        let mut s = self.store.write().unwrap_or_else(|e| e.into_inner());
        if let Some(done) = s.updates.get(request_id) {
            let same = done.nhs_number == nhs_number
                && done.if_match.as_deref() == if_match
                && done.body == body;
            return if same {
                Ok(done.result.clone())
            } else {
                Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "value",
                    "INVALID_VALUE",
                    "Provided value is invalid",
                    Some("Invalid value - X-Request-ID was already used for a different request"),
                ))
            };
        }
        check_nhs_number(nhs_number)?;
        if s.superseded.contains_key(nhs_number) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "RESOURCE_NOT_FOUND",
                "Resource not found",
                Some(
                    "This NHS number has been superseded: retrieve it to find the surviving record, and update that",
                ),
            ));
        }
        let Some(stored) = s.patients.get(nhs_number) else {
            return Err(not_found());
        };
        if confidentiality_of(stored) == "REDACTED" {
            return Err(invalidated());
        }
        let updated = update::apply(stored, if_match, body)?;
        s.patients.insert(nhs_number.to_string(), updated.clone());
        if s.update_order.len() == REMEMBERED_UPDATES
            && let Some(oldest) = s.update_order.pop_front()
        {
            s.updates.remove(&oldest);
        }
        s.update_order.push_back(request_id.to_string());
        s.updates.insert(
            request_id.to_string(),
            AppliedUpdate {
                nhs_number: nhs_number.to_string(),
                if_match: if_match.map(str::to_string),
                body: body.to_vec(),
                result: updated.clone(),
            },
        );
        Ok(updated)
    }

    fn resolve(&self, nhs_number: &str) -> Option<Value> {
        let s = self.store.read().unwrap_or_else(|e| e.into_inner());
        let mut key = nhs_number;
        // Follow chains of merges (bounded, in case of a cycle).
        for _ in 0..8 {
            match s.superseded.get(key) {
                Some(next) => key = next,
                None => break,
            }
        }
        s.patients.get(key).cloned()
    }
}

/// The NHS number of a Patient: its `id`, or else its NHS number identifier.
pub fn nhs_number_of(patient: &Value) -> Option<String> {
    if let Some(id) = patient.get("id").and_then(Value::as_str) {
        return Some(id.to_string());
    }
    patient
        .get("identifier")?
        .as_array()?
        .iter()
        .find(|i| i.get("system").and_then(Value::as_str) == Some(NHS_NUMBER_SYSTEM))?
        .get("value")?
        .as_str()
        .map(str::to_string)
}

/// The confidentiality code in `meta.security` (`U` when absent).
pub fn confidentiality_of(patient: &Value) -> String {
    patient
        .pointer("/meta/security")
        .and_then(Value::as_array)
        .and_then(|labels| {
            labels
                .iter()
                .find(|l| l.get("system").and_then(Value::as_str) == Some(CONFIDENTIALITY_SYSTEM))
        })
        .and_then(|l| l.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("U")
        .to_string()
}

/// Renders the population as PDS holds it: one Patient per person with an NHS number.
///
/// PDS is the national truth, so the name, gender, birth and death dates are the person's
/// (not the primary record's, which may carry deliberate data-quality defects); address,
/// telecom, registered practice and confidentiality come from the primary record. The NHS
/// number is always "01 Number present and verified". `generalPractitioner` is the ODS
/// code of the primary record's practice while that registration is active. Deceased persons
/// get `deceasedDateTime` (midnight UTC of the death date) and a formal (`2`)
/// DeathNotificationStatus. Every Patient is at version 1.
///
/// This generates every person, clinical records included unless the population's options
/// say `demographics_only`; use a small population.
pub fn from_population(pop: &Population) -> Vec<Value> {
    let pcn = pop.pcn();
    let mut out = Vec::new();
    for person in pop.persons() {
        let Some(nhs) = person.nhs_number.as_ref() else {
            continue;
        };
        let r = person.primary();
        let (code, display) = match r.confidentiality {
            Confidentiality::Unrestricted => ("U", "unrestricted"),
            Confidentiality::Restricted => ("R", "restricted"),
            Confidentiality::VeryRestricted => ("V", "very restricted"),
        };
        let mut name = json!({
            "id": "1",
            "use": "usual",
            "family": person.name.family,
            "given": person.name.given,
        });
        if let Some(prefix) = person.name.prefix {
            name["prefix"] = json!([prefix]);
        }
        let mut lines = r.address.lines.clone();
        lines.push(r.address.district.to_string());
        lines.push(r.address.city.to_string());
        lines.retain(|l| !l.is_empty());
        let telecom: Vec<Value> = r
            .telecom
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let (system, use_) = match t.kind {
                    TelecomKind::Mobile => ("phone", "mobile"),
                    TelecomKind::Home => ("phone", "home"),
                    TelecomKind::Email => ("email", "home"),
                };
                json!({"id": format!("{}", i + 1), "system": system, "use": use_, "value": t.value})
            })
            .collect();
        let mut p = json!({
            "resourceType": "Patient",
            "id": nhs.as_str(),
            "meta": {
                "versionId": "1",
                "security": [{"system": CONFIDENTIALITY_SYSTEM, "code": code, "display": display}],
            },
            "identifier": [{
                "system": NHS_NUMBER_SYSTEM,
                "value": nhs.as_str(),
                "extension": [{
                    "url": VERIFICATION_EXT,
                    "valueCodeableConcept": {"coding": [{
                        "system": VERIFICATION_SYSTEM,
                        "version": "1.0.0",
                        "code": "01",
                        "display": "Number present and verified",
                    }]},
                }],
            }],
            "name": [name],
            "gender": person.gender.key(),
            "birthDate": person.birth_date.to_string(),
            "address": [{
                "id": "1",
                "use": "home",
                "line": lines,
                "postalCode": r.address.postcode,
            }],
        });
        if !telecom.is_empty() {
            p["telecom"] = Value::Array(telecom);
        }
        if r.registration.is_active() {
            let ods = pcn.practices[r.practice].ods.as_str();
            p["generalPractitioner"] = json!([{
                "id": "1",
                "type": "Organization",
                "identifier": {
                    "system": ODS_SYSTEM,
                    "value": ods,
                    "period": {"start": r.registration.start.to_string()},
                },
            }]);
        }
        if let Some(death) = person.death_date {
            let at = format!("{death}T00:00:00+00:00");
            p["deceasedDateTime"] = json!(at);
            p["extension"] = json!([{
                "url": DEATH_EXT,
                "extension": [
                    {"url": "deathNotificationStatus", "valueCodeableConcept": {"coding": [{
                        "system": DEATH_SYSTEM,
                        "version": "1.0.0",
                        "code": "2",
                        "display": "Formal - death notice received from Registrar of Deaths",
                    }]}},
                    {"url": "systemEffectiveDate", "valueDateTime": at},
                ],
            }]);
        }
        out.push(p);
    }
    out
}

/// The HTTP API, under both [`BASE_PATH`] and the bare `/Patient`.
pub fn router(sim: PdsSimulator) -> Router {
    let api = Router::new()
        .route("/Patient", get(search_handler))
        .route(
            "/Patient/{nhs_number}",
            get(retrieve_handler).patch(update_handler),
        )
        .with_state(sim);
    Router::new().nest(BASE_PATH, api.clone()).merge(api)
}

/// Serves [`router`] on `addr` (e.g. `127.0.0.1:0`) in a background task; returns the bound
/// address. Faults start off and can be set through `/_admin/faults`.
///
/// # Errors
/// If the address cannot be bound.
pub async fn serve(
    sim: PdsSimulator,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_with_faults(sim, addr, crate::faults::FaultHandle::default()).await
}

/// As [`serve`], injecting the faults of `faults` ([`crate::server::with_faults`]).
///
/// # Errors
/// If the address cannot be bound.
pub async fn serve_with_faults(
    sim: PdsSimulator,
    addr: SocketAddr,
    faults: crate::faults::FaultHandle,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    crate::server::serve("PDS", router(sim), addr, faults).await
}

/// A Spine OperationOutcome.
pub fn operation_outcome(
    severity: &str,
    code: &str,
    spine_code: &str,
    display: &str,
    diagnostics: Option<&str>,
) -> Value {
    let mut issue = json!({
        "severity": severity,
        "code": code,
        "details": {"coding": [{
            "system": ERROR_SYSTEM,
            "version": "1",
            "code": spine_code,
            "display": display,
        }]},
    });
    if let Some(d) = diagnostics {
        issue["diagnostics"] = json!(d);
    }
    json!({"resourceType": "OperationOutcome", "issue": [issue]})
}

/// An error answer: the HTTP status and the Spine OperationOutcome.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &str,
        spine_code: &str,
        display: &str,
        diagnostics: Option<&str>,
    ) -> Self {
        ApiError {
            status,
            body: operation_outcome("error", code, spine_code, display, diagnostics),
        }
    }

    pub(crate) fn invalid_search(diagnostics: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "value",
            "INVALID_SEARCH_DATA",
            "Search data is invalid",
            Some(diagnostics),
        )
    }
}

fn fhir_response(
    status: StatusCode,
    body: &Value,
    echo: &[(&'static str, HeaderValue)],
) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (status, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json"),
    );
    for (name, value) in echo {
        h.insert(*name, value.clone());
    }
    resp
}

/// Checks `X-Request-ID` and collects the headers to echo.
fn request_headers(headers: &HeaderMap) -> (Vec<(&'static str, HeaderValue)>, Option<ApiError>) {
    let mut echo = Vec::new();
    if let Some(v) = headers.get("x-correlation-id") {
        echo.push(("x-correlation-id", v.clone()));
    }
    let err = match headers.get("x-request-id") {
        None => Some(ApiError::new(
            StatusCode::BAD_REQUEST,
            "required",
            "MISSING_VALUE",
            "Required value is missing",
            Some(
                "Invalid request with error - X-Request-ID header must be supplied to access this resource",
            ),
        )),
        Some(v) => {
            echo.push(("x-request-id", v.clone()));
            if v.to_str().is_ok_and(is_uuid) {
                None
            } else {
                Some(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "value",
                    "INVALID_VALUE",
                    "Provided value is invalid",
                    Some("Invalid value - X-Request-ID header must be a UUID"),
                ))
            }
        }
    };
    (echo, err)
}

pub(crate) fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

async fn retrieve_handler(
    State(sim): State<PdsSimulator>,
    Path(nhs_number): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (echo, err) = request_headers(&headers);
    if let Some(e) = err {
        return fhir_response(e.status, &e.body, &echo);
    }
    match retrieve(&sim, &nhs_number) {
        Ok(patient) => patient_response(patient, &echo),
        Err(e) => fhir_response(e.status, &e.body, &echo),
    }
}

fn retrieve(sim: &PdsSimulator, nhs_number: &str) -> Result<Value, ApiError> {
    check_nhs_number(nhs_number)?;
    let Some(patient) = sim.resolve(nhs_number) else {
        return Err(not_found());
    };
    if confidentiality_of(&patient) == "REDACTED" {
        return Err(invalidated());
    }
    Ok(redact::for_retrieve(patient))
}

fn check_nhs_number(nhs_number: &str) -> Result<(), ApiError> {
    let valid = nhs_number.len() == 10
        && nhs_number.bytes().all(|b| b.is_ascii_digit())
        && NhsNumber::parse(nhs_number).is_ok();
    if valid {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "value",
            "INVALID_RESOURCE_ID",
            "Resource Id is invalid",
            None,
        ))
    }
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "RESOURCE_NOT_FOUND",
        "Resource not found",
        None,
    )
}

fn invalidated() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "processing",
        "INVALIDATED_RESOURCE",
        "Resource that has been marked as invalid was requested - invalid resources cannot be retrieved",
        None,
    )
}

async fn update_handler(
    State(sim): State<PdsSimulator>,
    Path(nhs_number): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (echo, err) = request_headers(&headers);
    if let Some(e) = err {
        return fhir_response(e.status, &e.body, &echo);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/json-patch+json") {
        let e = ApiError::new(
            StatusCode::BAD_REQUEST,
            "structure",
            "INVALID_UPDATE",
            "Update is invalid",
            Some("Invalid update with error - Content-Type must be application/json-patch+json"),
        );
        return fhir_response(e.status, &e.body, &echo);
    }
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    match sim.update(&nhs_number, request_id, if_match, &body) {
        Ok(updated) => patient_response(redact::for_retrieve(updated), &echo),
        Err(e) => fhir_response(e.status, &e.body, &echo),
    }
}

/// A Patient with its `ETag`.
fn patient_response(patient: Value, echo: &[(&'static str, HeaderValue)]) -> Response {
    let version = update::version_of(&patient);
    let mut resp = fhir_response(StatusCode::OK, &patient, echo);
    if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{version}\"")) {
        resp.headers_mut().insert(header::ETAG, etag);
    }
    resp
}

async fn search_handler(
    State(sim): State<PdsSimulator>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (echo, err) = request_headers(&headers);
    if let Some(e) = err {
        return fhir_response(e.status, &e.body, &echo);
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    match search::Query::parse(&pairs) {
        Err(e) => fhir_response(e.status, &e.body, &echo),
        Ok(q) => {
            let body = sim.with_patients(|patients| search::run(&q, patients.values()));
            fhir_response(StatusCode::OK, &body, &echo)
        }
    }
}
