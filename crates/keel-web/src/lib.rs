//! The clinician web UI: server-rendered HTML pages, usable without JavaScript, following the
//! NHS design system's conventions. Pages call Keel's core services with a [`RequestContext`]
//! built from the signed-in user — the same access policy and the same audit trail as the API:
//! every page request by a signed-in user leaves exactly one audit record, written before the
//! page leaves (if it cannot be written, the page is a 503 and shows nothing).
//!
//! Routes (all under `/ui`): `/` sign-in, `/search`, `/patient/{nhs}` (the record),
//! `/patient/{nhs}/break-glass`, `/practices`, `/audit` (information governance), `/assets/`.

pub mod charts;
pub mod html;
pub mod layout;
mod pages;
pub mod record_page;
pub mod session;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use keel_api::audited::alert_break_glass;
use keel_api::metrics_http::HttpMetrics;
use keel_core::audit::{AuditOutcome, RequestAudit};
use keel_core::fhir::FhirService;
use keel_core::{CorrelationId, RequestContext};
use keel_integrations::directory::Directory;
use keel_integrations::pds::PdsClient;

use crate::layout::Nav;
use crate::session::{Session, Sessions};

/// What the pages work with.
pub struct WebState {
    pub fhir: Arc<FhirService>,
    pub directory: Arc<Directory>,
    /// PDS, for patient search (the national demographics).
    pub pds: Option<PdsClient>,
    pub sessions: Sessions,
    /// Shared with the API, so `/metrics` counts the UI's break-glass accesses too.
    metrics: HttpMetrics,
    instance: String,
    counter: AtomicU64,
}

impl WebState {
    pub fn new(
        fhir: Arc<FhirService>,
        directory: Arc<Directory>,
        pds: Option<PdsClient>,
        metrics: HttpMetrics,
        instance: String,
    ) -> WebState {
        WebState {
            fhir,
            directory,
            pds,
            sessions: Sessions::default(),
            metrics,
            instance,
            counter: AtomicU64::new(0),
        }
    }

    /// A new correlation id for a page request.
    fn correlation_id(&self) -> CorrelationId {
        let id = format!(
            "{}-ui-{}",
            self.instance,
            self.counter.fetch_add(1, Ordering::Relaxed)
        );
        CorrelationId::parse(&id)
            .unwrap_or_else(|| CorrelationId::parse("keel-ui").expect("a constant id is valid"))
    }

    /// The signed-in session of a request, if any.
    fn session(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
        let id = session::session_id(cookies)?;
        self.sessions.get(id).map(|s| (id.to_string(), s))
    }

    /// The practices in the directory: ODS code and name.
    fn organisations(&self) -> Vec<(String, String)> {
        self.directory
            .current()
            .into_iter()
            .map(|v| (v.connection.ods.as_str().to_string(), v.connection.name))
            .collect()
    }
}

/// The UI's routes, to merge into Keel's router.
pub fn router(state: Arc<WebState>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(pages::sign_in_page))
        .route("/ui/assets/keel.css", get(stylesheet))
        .route("/ui/sign-in", post(pages::sign_in))
        .route("/ui/sign-out", post(pages::sign_out))
        .route("/ui/search", get(pages::search))
        .route("/ui/patient/{nhs}", get(pages::record))
        .route("/ui/patient/{nhs}/break-glass", post(pages::break_glass))
        .route("/ui/practices", get(pages::practices))
        .route("/ui/audit", get(pages::audit))
        .with_state(state)
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../assets/keel.css"),
    )
        .into_response()
}

/// A page with its status.
fn html(status: StatusCode, page: String) -> Response {
    let mut response = (status, Html(page)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("valid"));
    response
}

/// Records the request's one audit record, then lets the page go; if the record cannot be
/// written the page is not shown (503). A permitted break-glass access raises an alert.
async fn audited(
    state: &Arc<WebState>,
    ctx: RequestContext,
    audit: RequestAudit,
    outcome: AuditOutcome,
    session: &Session,
    page: Response,
) -> Response {
    let fhir = state.fhir.clone();
    let permitted = outcome == AuditOutcome::Permit;
    let alert_ctx = ctx.clone();
    let recorded =
        tokio::task::spawn_blocking(move || (fhir.record_audit(&ctx, &audit, outcome), audit))
            .await;
    match recorded {
        Ok((Ok(sequence), audit)) => {
            if permitted && audit.break_glass_used() {
                alert_break_glass(&state.metrics, &alert_ctx, sequence);
            }
            page
        }
        Ok((Err(error), _)) => {
            tracing::error!(error = %error, "the audit record of a page could not be written");
            audit_failed(session)
        }
        Err(_) => audit_failed(session),
    }
}

fn audit_failed(session: &Session) -> Response {
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        layout::page(
            "Service unavailable",
            Some(session),
            Nav::Search,
            "<h1>Sorry, this page cannot be shown now</h1><p>The audit trail could not record this \
             request, so nothing is shown. Try again in a few minutes.</p>",
        ),
    )
}
