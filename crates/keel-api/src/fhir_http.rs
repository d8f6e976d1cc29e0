//! The FHIR REST interactions over HTTP: a small router of its own (path segments → one
//! interaction), content negotiation, `Prefer`, `If-Match`/`If-None-Exist`, and rendering.

use crate::AppState;
use crate::auth::Principal;
use crate::capability;
use crate::outcome::error_response_parts;
use crate::render::{self, etag, http_date};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use keel_core::audit::RequestAudit;
use keel_core::fhir::{
    DeleteOutcome, HistoryRequest, IdempotencyKey, WriteOutcome, parse_etag, parse_query_string,
};
use keel_core::store::{HistoryScope, StoredResource};
use keel_core::{FhirError, RequestContext};
use keel_fhir::datetime;
use keel_fhir::search::{Handling, SearchQuery};
use keel_model::{IssueType, OperationOutcome};
use serde_json::Value;
use std::sync::Arc;

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// Everything the interaction needs from the HTTP request.
pub(crate) struct FhirRequest {
    method: Method,
    segments: Vec<String>,
    pub(crate) params: Vec<(String, String)>,
    /// The query string as sent (for echoing back a request URL).
    query: String,
    headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) base: String,
    pub(crate) ctx: RequestContext,
}

impl FhirRequest {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        header_str(&self.headers, name)
    }

    /// `?query` as sent, or nothing.
    pub(crate) fn query_suffix(&self) -> String {
        if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", self.query)
        }
    }
}

pub async fn handle(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Extension(principal): Extension<Principal>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = std::time::Instant::now();
    let route = route_shape(&method, uri.path());
    let correlation_id = state.correlation_id(&headers);
    let ctx = principal.context(correlation_id.clone());
    let request = body.map(|body| {
        let path = uri.path().trim_start_matches("/fhir").trim_matches('/');
        let segments: Vec<String> = if path.is_empty() {
            Vec::new()
        } else {
            path.split('/').map(percent_decode_segment).collect()
        };
        FhirRequest {
            method,
            segments,
            params: parse_query_string(uri.query().unwrap_or("")),
            query: uri.query().unwrap_or("").to_string(),
            base: base_url(&state, &headers),
            headers,
            body,
            ctx: ctx.clone(),
        }
    });
    let blocking_state = state.clone();
    let finishing = tokio::task::spawn_blocking(move || {
        let mut audit = RequestAudit::new("refused");
        let result = match request {
            Err(rejection) => Ok(too_large_or_bad(rejection)),
            Ok(request) => match negotiate(&request) {
                Some(refusal) => Ok(refusal),
                None => dispatch(&blocking_state, request, &mut audit),
            },
        };
        crate::audited::finish(&blocking_state, &ctx, &audit, result)
    })
    .await;
    let mut response = match finishing {
        Ok(finishing) => finishing.respond(&state).await,
        Err(e) => plain_outcome(
            500,
            IssueType::Exception,
            &format!("the request failed inside the server: {e}"),
        ),
    };
    if let Ok(v) = HeaderValue::from_str(correlation_id.as_str()) {
        response.headers_mut().insert("x-request-id", v);
    }
    // Never the path or query as sent: they can carry identifiers (NHS numbers, names).
    tracing::info!(
        target: "keel::http",
        route = %route,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        correlation_id = %correlation_id,
        "request"
    );
    response
}

/// The request's method and path with every id replaced: `GET /fhir/Patient/{id}/_history/{vid}`.
/// Only resource type names, literal keywords and operation names remain.
fn route_shape(method: &Method, path: &str) -> String {
    let rest = path.trim_start_matches("/fhir").trim_matches('/');
    let mut shape = format!("{method} /fhir");
    for (i, segment) in rest.split('/').filter(|s| !s.is_empty()).enumerate() {
        let keep = segment == "metadata"
            || segment == "_history"
            || segment == "_search"
            || segment == "_export"
            || segment.starts_with('$')
            || (i == 0 && keel_fhir::definitions::r4().is_resource_type(segment));
        shape.push('/');
        shape.push_str(if keep {
            segment
        } else if i == 1 {
            "{id}"
        } else if i == 3 {
            "{vid}"
        } else {
            "{value}"
        });
    }
    shape
}

fn percent_decode_segment(s: &str) -> String {
    parse_query_string(&format!("x={}", s.replace('+', "%2B")))
        .pop()
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// The base URL clients use to reach `/fhir`, for fullUrls and links.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(base) = &state.base_url {
        return base.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}/fhir")
}

fn too_large_or_bad(rejection: BytesRejection) -> Response {
    let status = rejection.status().as_u16();
    if status == 413 {
        plain_outcome(
            413,
            IssueType::TooLong,
            "the request body is larger than this server accepts; nothing was stored. Split the Bundle and send the parts.",
        )
    } else {
        plain_outcome(
            400,
            IssueType::Invalid,
            &format!("the request body could not be read: {rejection}"),
        )
    }
}

/// JSON only: `_format` and `Accept` asking for anything else get 406, bodies of another
/// content type get 415. Returns the refusal, if any.
fn negotiate(request: &FhirRequest) -> Option<Response> {
    let json_like = |s: &str| {
        let s = s.trim().to_ascii_lowercase();
        s.is_empty()
            || s == "json"
            || s.contains("json")
            || s.starts_with("*/*")
            || s.starts_with("application/*")
    };
    if let Some((_, format)) = request.params.iter().find(|(k, _)| k == "_format")
        && !json_like(format)
    {
        return Some(plain_outcome(
            406,
            IssueType::NotSupported,
            &format!("_format={format} is not supported; this server speaks FHIR JSON only"),
        ));
    }
    if let Some(accept) = request
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        && !accept.split(',').any(json_like)
    {
        return Some(plain_outcome(
            406,
            IssueType::NotSupported,
            &format!("Accept: {accept} cannot be served; this server speaks FHIR JSON only"),
        ));
    }
    if !request.body.is_empty()
        && let Some(ct) = request
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    {
        let ct = ct.to_ascii_lowercase();
        let ok = ct.contains("json")
            || ct.starts_with("application/x-www-form-urlencoded")
            || ct.starts_with("text/plain");
        if !ok {
            return Some(plain_outcome(
                415,
                IssueType::NotSupported,
                &format!("Content-Type {ct} is not supported; send application/fhir+json"),
            ));
        }
    }
    None
}

/// Runs the interaction the request names; notes what it did in `audit`.
fn dispatch(
    state: &AppState,
    mut req: FhirRequest,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    // Each interaction names itself in the audit record (the FHIR restful interaction codes,
    // or the operation's name); what matches none is "unsupported".
    audit.set_interaction("unsupported");
    if let Some(key) = req.header("idempotency-key") {
        if !takes_idempotency_key(&req.method, &segs) {
            return Err(FhirError::BadRequest(
                "Idempotency-Key is taken by create, update, patch, delete and the $export kick-off only; send this request without it".into(),
            ));
        }
        audit.set_idempotency_key(IdempotencyKey::new(key, fingerprint(&req))?);
    }
    let result = match (&req.method, segs.as_slice()) {
        (&Method::GET, ["metadata"]) => {
            audit.set_interaction("capabilities");
            Ok(json_response(
                200,
                &capability::capability_statement(state.fhir.definitions(), &req.base),
            ))
        }
        (&Method::GET, []) if req.params.is_empty() => {
            audit.set_interaction("search-system");
            Err(FhirError::BadRequest(
                "a search needs a resource type: GET /fhir/{type}?...".into(),
            ))
        }
        (&Method::GET, ["AuditEvent"]) => crate::audited::search(state, &req, audit),
        (&Method::GET, ["AuditEvent", id]) => crate::audited::read(state, &req, id, audit),
        (_, ["AuditEvent", ..]) => Err(FhirError::NotSupported(
            "AuditEvents are written by Keel itself, one per request; they are read with GET /fhir/AuditEvent".into(),
        )),
        (&Method::POST, []) => {
            audit.set_interaction("batch-transaction");
            post_bundle(state, &req, audit)
        }
        (&Method::GET, ["_history"]) => history(state, &req, HistoryScope::System, audit),
        (&Method::GET, ["$export"]) => crate::export_http::kick_off(state, &req, audit),
        (&Method::GET, ["_export", id]) => crate::export_http::status(state, &req, id, audit),
        (&Method::DELETE, ["_export", id]) => crate::export_http::cancel(state, &req, id, audit),
        (&Method::GET, ["_export", id, file]) => {
            crate::export_http::output(state, &req, id, file, audit)
        }
        (&Method::POST, ["Patient", "$match"]) => {
            crate::match_http::match_patients(state, &req, audit)
        }
        (&Method::GET, [rt]) => search(state, &req, rt, false, audit),
        (&Method::POST, [rt, "_search"]) => search(state, &req, rt, true, audit),
        (&Method::POST, [rt]) => create(state, &req, rt, audit),
        (&Method::PUT, [rt]) => conditional_update(state, &req, rt, audit),
        (&Method::DELETE, [rt]) => conditional_delete(state, &req, rt, audit),
        (&Method::GET, [rt, "_history"]) => {
            history(state, &req, HistoryScope::Type(rt.to_string()), audit)
        }
        (&Method::GET, ["Patient", id, "$everything"]) => everything(state, &req, id, audit),
        (&Method::GET, [rt, id]) => read(state, &req, rt, id, audit),
        (&Method::PUT, [rt, id]) => update(state, &req, rt, id, audit),
        (&Method::PATCH, [rt, id]) => patch(state, &req, rt, id, audit),
        (&Method::DELETE, [rt, id]) => delete(state, &req, rt, id, audit),
        (&Method::GET, [rt, id, "_history"]) => history(
            state,
            &req,
            HistoryScope::Instance {
                resource_type: rt.to_string(),
                id: id.to_string(),
            },
            audit,
        ),
        (&Method::GET, [rt, id, "_history", version]) => {
            vread(state, &req, rt, id, version, audit)
        }
        (method, _) => Ok(plain_outcome(
            if matches!(
                *method,
                Method::GET | Method::POST | Method::PUT | Method::PATCH | Method::DELETE
            ) {
                404
            } else {
                405
            },
            IssueType::NotSupported,
            &format!(
                "{method} /fhir/{} is not a FHIR interaction this server supports; see /fhir/metadata",
                req.segments.join("/")
            ),
        )),
    };
    req.body = Bytes::new();
    result
}

/// The interactions whose response is recorded under an idempotency key: single-resource
/// writes (plain and conditional) and the bulk export kick-off.
fn takes_idempotency_key(method: &Method, segments: &[&str]) -> bool {
    let is_type = |t: &str| t != "AuditEvent" && keel_fhir::definitions::r4().is_resource_type(t);
    match (method, segments) {
        (&Method::POST | &Method::PUT | &Method::DELETE, [rt]) => is_type(rt),
        (&Method::PUT | &Method::PATCH | &Method::DELETE, [rt, _]) => is_type(rt),
        (&Method::GET, ["$export"]) => true,
        _ => false,
    }
}

/// What makes a request the same request: method, target and body.
fn fingerprint(req: &FhirRequest) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(req.method.as_str().as_bytes());
    hash.update([0]);
    hash.update(req.segments.join("/").as_bytes());
    hash.update([0]);
    hash.update(req.query.as_bytes());
    hash.update([0]);
    hash.update(&req.body);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------- interactions

fn read(
    state: &AppState,
    req: &FhirRequest,
    rt: &str,
    id: &str,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("read");
    let found = state.fhir.read(&req.ctx, rt, id, audit)?;
    if let Some(tag) = header_str(&req.headers, header::IF_NONE_MATCH)
        && parse_etag(tag) == Some(found.version)
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    Ok(resource_response(200, &found))
}

fn vread(
    state: &AppState,
    req: &FhirRequest,
    rt: &str,
    id: &str,
    version: &str,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("vread");
    let version: u64 = version
        .parse()
        .map_err(|_| FhirError::BadRequest(format!("'{version}' is not a version number")))?;
    let found = state.fhir.vread(&req.ctx, rt, id, version, audit)?;
    Ok(resource_response(200, &found))
}

fn create(
    state: &AppState,
    req: &FhirRequest,
    rt: &str,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("create");
    let body = json_body(&req.body)?;
    let if_none_exist = header_str(&req.headers, "if-none-exist");
    let outcome = state
        .fhir
        .create(&req.ctx, rt, body, if_none_exist, audit)?;
    Ok(write_response(req, &outcome))
}

fn update(
    state: &AppState,
    req: &FhirRequest,
    rt: &str,
    id: &str,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("update");
    let body = json_body(&req.body)?;
    let outcome = state
        .fhir
        .update(&req.ctx, rt, id, body, if_match(req)?, audit)?;
    Ok(write_response(req, &outcome))
}

fn conditional_update(
    state: &AppState,
    req: &FhirRequest,
    rt: &str,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("conditional-update");
    let criteria = criteria_string(req)?;
    let body = json_body(&req.body)?;
    let outcome =
        state
            .fhir
            .conditional_update(&req.ctx, rt, &criteria, body, if_match(req)?, audit)?;
    Ok(write_response(req, &outcome))
}

fn patch(
    state: &AppState,
    req: &FhirRequest,
    rt: &str,
    id: &str,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("patch");
    let content_type = header_str(&req.headers, header::CONTENT_TYPE).unwrap_or("");
    if !content_type.contains("json-patch") {
        return Err(FhirError::NotSupported(format!(
            "PATCH takes a JSON Patch (application/json-patch+json), not '{content_type}'"
        )));
    }
    let body = json_body(&req.body)?;
    let outcome = state
        .fhir
        .patch(&req.ctx, rt, id, body, if_match(req)?, audit)?;
    Ok(write_response(req, &outcome))
}

fn delete(
    state: &AppState,
    req: &FhirRequest,
    rt: &str,
    id: &str,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("delete");
    let outcome = state.fhir.delete(&req.ctx, rt, id, audit)?;
    Ok(delete_response(outcome))
}

fn conditional_delete(
    state: &AppState,
    req: &FhirRequest,
    rt: &str,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("conditional-delete");
    let criteria = criteria_string(req)?;
    Ok(delete_response(
        state
            .fhir
            .conditional_delete(&req.ctx, rt, &criteria, audit)?,
    ))
}

fn delete_response(outcome: DeleteOutcome) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let DeleteOutcome::Deleted { version } = outcome
        && let Ok(v) = HeaderValue::from_str(&etag(version))
    {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

fn post_bundle(
    state: &AppState,
    req: &FhirRequest,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    let body = json_body(&req.body)?;
    let response = state.fhir.process_bundle_audited(&req.ctx, body, audit)?;
    Ok(json_response(
        200,
        &render::bundle_response(&req.base, &response),
    ))
}

fn search(
    state: &AppState,
    req: &FhirRequest,
    rt: &str,
    post: bool,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("search-type");
    let mut params = req.params.clone();
    if post && !req.body.is_empty() {
        let form = std::str::from_utf8(&req.body)
            .map_err(|_| FhirError::BadRequest("the _search body is not UTF-8 form data".into()))?;
        params.extend(parse_query_string(form));
    }
    let handling = prefer(&req.headers, "handling").map_or(Handling::Lenient, |h| {
        if h == "strict" {
            Handling::Strict
        } else {
            Handling::Lenient
        }
    });
    let query = state.fhir.parse_search(rt, &params, handling)?;
    let result = state.fhir.search(&req.ctx, &query, audit)?;
    let links = page_links(
        &req.base,
        rt,
        &params,
        &query,
        result.total,
        result.matches.len(),
    );
    let body = render::searchset(&req.base, &result, &links, &query.ignored);
    Ok(text_response(200, body))
}

fn history(
    state: &AppState,
    req: &FhirRequest,
    scope: HistoryScope,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction(match &scope {
        HistoryScope::System => "history-system",
        HistoryScope::Type(_) => "history-type",
        HistoryScope::Instance { .. } => "history-instance",
    });
    let mut since = None;
    let mut count = keel_fhir::search::DEFAULT_COUNT;
    let mut offset = 0;
    for (k, v) in &req.params {
        match k.as_str() {
            "_since" => {
                since = Some(
                    datetime::parse_range(v)
                        .map_err(|e| FhirError::BadRequest(format!("_since: {e}")))?
                        .start,
                )
            }
            "_count" => {
                count = v
                    .parse()
                    .map_err(|_| FhirError::BadRequest(format!("_count '{v}' is not a number")))?
            }
            "_offset" => {
                offset = v
                    .parse()
                    .map_err(|_| FhirError::BadRequest(format!("_offset '{v}' is not a number")))?
            }
            "_format" | "_pretty" => {}
            other => {
                return Err(FhirError::NotSupported(format!(
                    "history parameter '{other}' is not supported (_since, _count are)"
                )));
            }
        }
    }
    let path = match &scope {
        HistoryScope::System => "_history".to_string(),
        HistoryScope::Type(t) => format!("{t}/_history"),
        HistoryScope::Instance { resource_type, id } => format!("{resource_type}/{id}/_history"),
    };
    let page = state.fhir.history(
        &req.ctx,
        &HistoryRequest {
            scope,
            since,
            count,
            offset,
        },
        audit,
    )?;
    let links = paging(
        &req.base,
        &path,
        &req.params,
        offset,
        count,
        Some(page.total),
        page.versions.len(),
    );
    Ok(text_response(
        200,
        render::history(&req.base, &page, &links),
    ))
}

fn everything(
    state: &AppState,
    req: &FhirRequest,
    id: &str,
    audit: &mut RequestAudit,
) -> Result<Response, FhirError> {
    audit.set_interaction("$everything");
    let resources = state.fhir.everything(&req.ctx, id, audit)?;
    let result = keel_core::store::SearchResult {
        total: Some(resources.len() as u64),
        matches: resources,
        included: Vec::new(),
    };
    let links = vec![("self", format!("{}/Patient/{id}/$everything", req.base))];
    Ok(text_response(
        200,
        render::searchset(&req.base, &result, &links, &[]),
    ))
}

// ---------------------------------------------------------------- helpers

fn header_str<K: header::AsHeaderName>(headers: &HeaderMap, name: K) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn if_match(req: &FhirRequest) -> Result<Option<u64>, FhirError> {
    match header_str(&req.headers, header::IF_MATCH) {
        None => Ok(None),
        Some(tag) => parse_etag(tag).map(Some).ok_or_else(|| {
            FhirError::BadRequest(format!(
                "If-Match '{tag}' is not a version ETag like W/\"3\""
            ))
        }),
    }
}

/// The value of one `Prefer` token, e.g. `return` or `handling`.
fn prefer<'h>(headers: &'h HeaderMap, key: &str) -> Option<&'h str> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .find_map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"'))
        })
}

fn criteria_string(req: &FhirRequest) -> Result<String, FhirError> {
    let pairs: Vec<String> = req
        .params
        .iter()
        .filter(|(k, _)| !k.starts_with("_format"))
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    if pairs.is_empty() {
        return Err(FhirError::BadRequest(
            "a conditional update or delete needs search parameters".into(),
        ));
    }
    Ok(pairs.join("&"))
}

fn json_body(body: &Bytes) -> Result<Value, FhirError> {
    if body.is_empty() {
        return Err(FhirError::BadRequest("the request has no body".into()));
    }
    serde_json::from_slice(body)
        .map_err(|e| FhirError::BadRequest(format!("the body is not valid JSON: {e}")))
}

fn write_response(req: &FhirRequest, outcome: &WriteOutcome) -> Response {
    let status = if outcome.created { 201 } else { 200 };
    let location = format!(
        "{}/{}/{}/_history/{}",
        req.base, outcome.resource.resource_type, outcome.resource.id, outcome.resource.version
    );
    let mut response = match prefer(&req.headers, "return") {
        Some("minimal") => {
            let mut r = StatusCode::from_u16(status)
                .unwrap_or(StatusCode::OK)
                .into_response();
            add_version_headers(&mut r, &outcome.resource);
            r
        }
        Some("OperationOutcome") => {
            let text = if outcome.matched_existing {
                "an existing resource matched; nothing was written"
            } else {
                "the resource was stored"
            };
            let mut r = json_response(
                status,
                &OperationOutcome::new()
                    .information(IssueType::Informational, text)
                    .to_json(),
            );
            add_version_headers(&mut r, &outcome.resource);
            r
        }
        _ => resource_response(status, &outcome.resource),
    };
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v.clone());
        response.headers_mut().insert(header::CONTENT_LOCATION, v);
    }
    response
}

fn add_version_headers(response: &mut Response, resource: &StoredResource) {
    if let Ok(v) = HeaderValue::from_str(&etag(resource.version)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date(resource.last_updated)) {
        response.headers_mut().insert(header::LAST_MODIFIED, v);
    }
}

fn resource_response(status: u16, resource: &StoredResource) -> Response {
    let body = resource.body.as_deref().unwrap_or("{}").to_string();
    let mut response = text_response(status, body);
    add_version_headers(&mut response, resource);
    response
}

/// `body` (JSON text or bytes) as `application/fhir+json`.
pub(crate) fn text_response(status: u16, body: impl IntoResponse) -> Response {
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    response
}

/// A response of FHIR JSON already serialised, e.g. a rendered record.
pub fn json_bytes_response(status: u16, body: Vec<u8>) -> Response {
    text_response(status, body)
}

pub fn json_response(status: u16, body: &Value) -> Response {
    text_response(status, body.to_string())
}

pub fn plain_outcome(status: u16, code: IssueType, message: &str) -> Response {
    json_response(
        status,
        &OperationOutcome::new().error(code, message).to_json(),
    )
}

pub(crate) fn error_response(error: &FhirError) -> Response {
    let (status, outcome) = error_response_parts(error);
    if status >= 500 {
        // Store errors name no patient data; the message is for the operator.
        tracing::error!(status, error = %error, "request failed");
    }
    json_response(status, &outcome.to_json())
}

/// Percent-encodes a query component.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b':'
            | b','
            | b'$' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn page_links(
    base: &str,
    rt: &str,
    params: &[(String, String)],
    query: &SearchQuery,
    total: Option<u64>,
    returned: usize,
) -> Vec<(&'static str, String)> {
    paging(base, rt, params, query.offset, query.count, total, returned)
}

/// self/first/previous/next links: the same query with another `_offset`, so every page is
/// reachable by a stable URL.
fn paging(
    base: &str,
    path: &str,
    params: &[(String, String)],
    offset: usize,
    count: usize,
    total: Option<u64>,
    returned: usize,
) -> Vec<(&'static str, String)> {
    let others: Vec<String> = params
        .iter()
        .filter(|(k, _)| k != "_offset" && k != "_count")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let link = |offset: usize| {
        let mut parts = others.clone();
        parts.push(format!("_count={count}"));
        parts.push(format!("_offset={offset}"));
        format!("{base}/{path}?{}", parts.join("&"))
    };
    let mut links = vec![("self", link(offset))];
    if count > 0 {
        links.push(("first", link(0)));
        if offset > 0 {
            links.push(("previous", link(offset.saturating_sub(count))));
        }
        let more = match total {
            Some(total) => ((offset + returned) as u64) < total,
            None => returned == count,
        };
        if more && returned > 0 {
            links.push(("next", link(offset + count)));
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_shapes_carry_no_ids() {
        assert_eq!(
            route_shape(&Method::GET, "/fhir/Patient/9991234578"),
            "GET /fhir/Patient/{id}"
        );
        assert_eq!(
            route_shape(&Method::GET, "/fhir/Patient/abc/_history/2"),
            "GET /fhir/Patient/{id}/_history/{vid}"
        );
        assert_eq!(
            route_shape(&Method::GET, "/fhir/Patient/p1/$everything"),
            "GET /fhir/Patient/{id}/$everything"
        );
        assert_eq!(route_shape(&Method::POST, "/fhir/"), "POST /fhir");
        assert_eq!(
            route_shape(&Method::GET, "/fhir/Smith"),
            "GET /fhir/{value}",
            "only resource types are kept"
        );
    }
}
