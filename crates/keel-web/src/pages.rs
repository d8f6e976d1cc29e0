//! The page handlers: each finds the signed-in session (else back to sign-in), builds the
//! request's context from it, calls the core services, renders, and leaves one audit record.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use keel_core::audit::{AuditOutcome, RequestAudit};
use keel_core::fhir::Access;
use keel_core::identity::pds_trace::PdsTraceQuery;
use keel_core::policy::{BreakGlass, Function};
use keel_core::{FhirError, RequestContext};
use keel_integrations::pds::{Retrieval, SearchOutcome};
use keel_model::record::{Demographics, RecordSection};
use keel_model::{NhsNumber, OdsCode};

use crate::html::{Text, query_value};
use crate::layout::{self, Nav, error_summary};
use crate::record_page::{self, RecordPage, spaced};
use crate::session::{COOKIE, DEMO_USERS, DemoUser, Session, StatedBreakGlass};
use crate::{WebState, audited, html, w};

const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// An organisation outside the PCN that users may sign in for (an urgent care centre nearby):
/// from there a clinician has no legitimate relationship with the PCN's patients, so the demo
/// can show a refusal and break-glass.
pub const OUT_OF_AREA: (&str, &str) = (
    "Y99990",
    "Riverside urgent treatment centre (outside the PCN)",
);

/// Break-glass durations offered, in minutes (the policy's limit decides).
const BREAK_GLASS_MINUTES: [u32; 5] = [15, 30, 60, 120, 240];

fn form(body: &Bytes) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.trim())
}

fn to_sign_in() -> Response {
    Redirect::to("/ui/").into_response()
}

fn now_millis() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

// ---------------------------------------------------------------------------------------------
// Sign-in

pub async fn sign_in_page(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    if state.session(&headers).is_some() {
        return Redirect::to("/ui/search").into_response();
    }
    html(
        StatusCode::OK,
        layout::page("Sign in", None, Nav::SignIn, &sign_in_form(&state, &[])),
    )
}

fn sign_in_form(state: &WebState, errors: &[(&str, &str)]) -> String {
    let mut out = String::new();
    error_summary(&mut out, errors);
    out.push_str(
        "<h1>Sign in to the demonstration</h1>\
         <p>Choose who you are and the organisation you work for. This is a development sign-in \
         for synthetic data: there is no smartcard and no password.</p>\
         <form method=\"post\" action=\"/ui/sign-in\" novalidate>\
         <div class=\"nhsuk-form-group\"><fieldset class=\"nhsuk-fieldset\" aria-describedby=\"user-hint\">\
         <legend class=\"nhsuk-fieldset__legend nhsuk-fieldset__legend--m\">Your role</legend>\
         <span class=\"nhsuk-hint\" id=\"user-hint\">Each demonstration user has a national RBAC access role.</span>",
    );
    for (i, u) in DEMO_USERS.iter().enumerate() {
        let checked = if i == 0 { " checked" } else { "" };
        w!(
            out,
            "<div class=\"nhsuk-radios__item\"><input class=\"nhsuk-radios__input\" id=\"user-{k}\" name=\"user\" type=\"radio\" value=\"{k}\"{checked}>\
             <label class=\"nhsuk-label\" for=\"user-{k}\">{} — {} <span class=\"nhsuk-u-secondary-text-color\">({} {})</span></label></div>",
            Text(u.job),
            Text(u.name),
            Text(u.role_code),
            Text(u.role_name),
            k = u.key
        );
    }
    out.push_str(
        "</fieldset></div><div class=\"nhsuk-form-group\"><label class=\"nhsuk-label\" for=\"organisation\">Organisation</label>\
         <select class=\"nhsuk-select\" id=\"organisation\" name=\"organisation\">",
    );
    let mut organisations = state.organisations();
    organisations.push((OUT_OF_AREA.0.to_string(), OUT_OF_AREA.1.to_string()));
    for (ods, name) in &organisations {
        w!(
            out,
            "<option value=\"{}\">{} ({})</option>",
            Text(ods),
            Text(name),
            Text(ods)
        );
    }
    out.push_str(
        "</select></div><button class=\"nhsuk-button\" type=\"submit\">Sign in</button></form>",
    );
    out
}

pub async fn sign_in(State(state): State<Arc<WebState>>, body: Bytes) -> Response {
    let fields = form(&body);
    let user = DemoUser::by_key(field(&fields, "user"));
    let ods = field(&fields, "organisation");
    let mut organisations = state.organisations();
    organisations.push((OUT_OF_AREA.0.to_string(), OUT_OF_AREA.1.to_string()));
    let organisation = organisations.into_iter().find(|(code, _)| code == ods);
    let (Some(user), Some((code, name))) = (user, organisation) else {
        let page = sign_in_form(
            &state,
            &[(
                "user-gp",
                "Choose a role and an organisation from the lists",
            )],
        );
        return html(
            StatusCode::BAD_REQUEST,
            layout::page("Sign in", None, Nav::SignIn, &page),
        );
    };
    let Ok(organisation) = OdsCode::parse(&code) else {
        return to_sign_in();
    };
    let id = state.sessions.start(Session {
        user,
        organisation,
        organisation_name: name,
        break_glass: None,
    });
    let target = if user.reads_audit() {
        "/ui/audit"
    } else {
        "/ui/search"
    };
    let mut response = Redirect::to(target).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict"
    )) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

pub async fn sign_out(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    if let Some((id, _)) = state.session(&headers) {
        state.sessions.end(&id);
    }
    let mut response = Redirect::to("/ui/").into_response();
    if let Ok(cookie) = HeaderValue::from_str(&format!("{COOKIE}=; Path=/ui; Max-Age=0")) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Patient search

/// How sure a search result is, with its words and tag colour.
pub fn certainty(score: f64) -> (&'static str, &'static str) {
    if score >= 1.0 {
        ("Exact match", "green")
    } else if score >= 0.9 {
        ("Close match: check the details before opening", "orange")
    } else {
        (
            "Uncertain match: confirm the patient's identity before opening",
            "red",
        )
    }
}

fn search_form(out: &mut String, q: &[(String, String)]) {
    let v = |name: &str| Text(field(q, name)).to_string();
    w!(
        out,
        "<h1>Find a patient</h1>\
         <form method=\"get\" action=\"/ui/search\" novalidate><div class=\"nhsuk-card\"><h2>By NHS number</h2>\
         <div class=\"nhsuk-form-group\"><label class=\"nhsuk-label\" for=\"nhs\">NHS number</label>\
         <span class=\"nhsuk-hint\" id=\"nhs-hint\">10 digits, for example 999 000 0018</span>\
         <input class=\"nhsuk-input nhsuk-input--width-10\" id=\"nhs\" name=\"nhs\" type=\"text\" inputmode=\"numeric\" aria-describedby=\"nhs-hint\" value=\"{}\"></div>\
         <button class=\"nhsuk-button\" type=\"submit\">Search</button></div></form>\
         <form method=\"get\" action=\"/ui/search\" novalidate><div class=\"nhsuk-card\"><h2>By name and date of birth</h2>\
         <div class=\"nhsuk-form-group\"><label class=\"nhsuk-label\" for=\"family\">Last name</label>\
         <input class=\"nhsuk-input nhsuk-input--width-20\" id=\"family\" name=\"family\" type=\"text\" autocomplete=\"off\" value=\"{}\"></div>\
         <div class=\"nhsuk-form-group\"><label class=\"nhsuk-label\" for=\"given\">First name</label>\
         <span class=\"nhsuk-hint\" id=\"given-hint\">Both names are needed, unless you give the gender and postcode</span>\
         <input class=\"nhsuk-input nhsuk-input--width-20\" id=\"given\" name=\"given\" type=\"text\" autocomplete=\"off\" aria-describedby=\"given-hint\" value=\"{}\"></div>\
         <div class=\"nhsuk-form-group\"><label class=\"nhsuk-label\" for=\"birthdate\">Date of birth</label>\
         <span class=\"nhsuk-hint\" id=\"birthdate-hint\">As YYYY-MM-DD, for example 1961-07-23</span>\
         <input class=\"nhsuk-input nhsuk-input--width-10\" id=\"birthdate\" name=\"birthdate\" type=\"text\" aria-describedby=\"birthdate-hint\" value=\"{}\"></div>\
         <div class=\"nhsuk-form-group\"><label class=\"nhsuk-label\" for=\"gender\">Gender (optional)</label>\
         <select class=\"nhsuk-select\" id=\"gender\" name=\"gender\">",
        v("nhs"),
        v("family"),
        v("given"),
        v("birthdate"),
    );
    let chosen = field(q, "gender");
    for (value, words) in GENDERS {
        let selected = if value == chosen { " selected" } else { "" };
        w!(out, "<option value=\"{value}\"{selected}>{words}</option>");
    }
    w!(
        out,
        "</select></div>\
         <div class=\"nhsuk-form-group\"><label class=\"nhsuk-label\" for=\"postcode\">Postcode (optional)</label>\
         <input class=\"nhsuk-input nhsuk-input--width-10\" id=\"postcode\" name=\"postcode\" type=\"text\" autocomplete=\"off\" value=\"{}\"></div>\
         <button class=\"nhsuk-button\" type=\"submit\">Search</button></div></form>",
        v("postcode")
    );
}

/// The genders a PDS search takes (its `gender` parameter), with their words; the empty value
/// leaves it out.
const GENDERS: [(&str, &str); 5] = [
    ("", "Not given"),
    ("female", "Female"),
    ("male", "Male"),
    ("other", "Other"),
    ("unknown", "Unknown"),
];

/// What is wrong with a search by demographics, field by field. PDS needs the date of birth
/// and either both names, or one name with the gender and postcode.
fn demographic_search_errors(q: &[(String, String)]) -> Vec<(&'static str, &'static str)> {
    let mut errors = Vec::new();
    let family = field(q, "family");
    let given = field(q, "given");
    let narrowed = !field(q, "gender").is_empty() && !field(q, "postcode").is_empty();
    if family.is_empty() && given.is_empty() {
        errors.push(("family", "Enter the patient's last name"));
    } else if (family.is_empty() || given.is_empty()) && !narrowed {
        errors.push((
            if family.is_empty() { "family" } else { "given" },
            "Enter both names, or one name with the gender and postcode",
        ));
    }
    if !valid_date(field(q, "birthdate")) {
        errors.push(("birthdate", "Enter the date of birth as YYYY-MM-DD"));
    }
    if !GENDERS
        .iter()
        .any(|(value, _)| *value == field(q, "gender"))
    {
        errors.push(("gender", "Choose the gender from the list"));
    }
    errors
}

fn result_row(out: &mut String, d: &Demographics, score: f64, note: &str) {
    let Some(nhs) = d.nhs_number else { return };
    let (words, colour) = certainty(score);
    let name = record_page::display_name(d);
    let link = if score >= 1.0 {
        "Open record"
    } else {
        "Check details and open record"
    };
    w!(
        out,
        "<tr data-testid=\"search-result\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td><strong class=\"nhsuk-tag nhsuk-tag--{colour}\">{}</strong> <span class=\"nhsuk-body-s\">(score {:.2}){}</span></td>\
         <td><a href=\"/ui/patient/{}\">{link}<span class=\"nhsuk-u-visually-hidden\"> for {}</span></a></td></tr>",
        Text(&name),
        Text(&spaced(&nhs)),
        Text(d.birth_date.as_ref().map_or("", |b| b.as_str())),
        Text(d.postcode.as_deref().unwrap_or("")),
        Text(words),
        score,
        Text(note),
        query_value(nhs.as_str()),
        Text(&name)
    );
}

pub async fn search(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some((_, session)) = state.session(&headers) else {
        return to_sign_in();
    };
    let q: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let ctx = session.context(state.correlation_id(), None);
    let audit = RequestAudit::new("ui patient search");
    let (access, mut audit) =
        decide_function(&state, &ctx, Function::ReadDemographics, audit).await;
    let mut body = String::new();
    let outcome = match access {
        Err(e) => {
            failure(&mut body, "Find a patient", &e.to_string());
            AuditOutcome::Error {
                message: e.to_string(),
            }
        }
        Ok(Access::Refused { reasons }) => {
            let refused = Access::Refused { reasons };
            w!(
                body,
                "<h1>Find a patient</h1><div class=\"keel-state keel-state--not-permitted\" data-state=\"not-permitted\">\
                 <span class=\"keel-state__label\">Patient search is not available to your role</span>{}</div>",
                Text(&refused.explanation())
            );
            AuditOutcome::Deny {
                reason: "patient search: read-demographics not granted".into(),
            }
        }
        Ok(Access::Permitted) => {
            let mut errors: Vec<(&str, &str)> = Vec::new();
            let nhs_text: String = field(&q, "nhs")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let mut results = String::new();
            let mut outcome = AuditOutcome::Permit;
            if !nhs_text.is_empty() {
                match NhsNumber::parse(&nhs_text) {
                    Err(_) => errors.push((
                        "nhs",
                        "Enter a valid NHS number: 10 digits with a correct check digit",
                    )),
                    Ok(nhs) => {
                        audit.patient_by_identifier(NHS_NUMBER_SYSTEM, nhs.as_str());
                        outcome = search_by_nhs(&state, &ctx, nhs, &mut results).await;
                    }
                }
            } else if ["family", "given", "birthdate", "postcode"]
                .iter()
                .any(|name| !field(&q, name).is_empty())
            {
                errors = demographic_search_errors(&q);
                if errors.is_empty() {
                    outcome =
                        search_by_demographics(&state, &ctx, &q, &mut results, &mut audit).await;
                }
            }
            error_summary(&mut body, &errors);
            search_form(&mut body, &q);
            body.push_str(&results);
            outcome
        }
    };
    let page = layout::page("Find a patient", Some(&session), Nav::Search, &body);
    let status = if matches!(outcome, AuditOutcome::Deny { .. }) {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    audited(&state, ctx, audit, outcome, &session, html(status, page)).await
}

fn valid_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn results_table(out: &mut String, caption: &str) {
    w!(
        out,
        "<table class=\"nhsuk-table\" data-testid=\"search-results\"><caption>{}</caption><thead><tr>\
         <th scope=\"col\">Name</th><th scope=\"col\">NHS number</th><th scope=\"col\">Date of birth</th>\
         <th scope=\"col\">Postcode</th><th scope=\"col\">Match certainty</th><th scope=\"col\">Record</th></tr></thead><tbody>",
        Text(caption)
    );
}

async fn search_by_nhs(
    state: &WebState,
    ctx: &RequestContext,
    nhs: NhsNumber,
    out: &mut String,
) -> AuditOutcome {
    let Some(pds) = &state.pds else {
        failure(
            out,
            "Search",
            "PDS is not configured, so patients cannot be traced.",
        );
        return AuditOutcome::Error {
            message: "PDS not configured".into(),
        };
    };
    match pds.retrieve(ctx, nhs).await {
        Ok(Retrieval::Found(record)) => {
            results_table(out, "1 patient found in PDS by NHS number");
            result_row(out, &record.demographics, 1.0, "");
            out.push_str("</tbody></table>");
            AuditOutcome::Permit
        }
        Ok(Retrieval::Superseded { record }) => {
            results_table(out, "The NHS number searched for was merged into this one");
            result_row(
                out,
                &record.demographics,
                1.0,
                ": the number was superseded",
            );
            out.push_str("</tbody></table>");
            AuditOutcome::Permit
        }
        Ok(Retrieval::NotFound) | Ok(Retrieval::Invalidated) => {
            out.push_str("<h2>No patient found</h2><p>PDS holds no current patient with this NHS number. Check the number, or search by name and date of birth.</p>");
            AuditOutcome::Permit
        }
        Err(e) => {
            failure(out, "Search", &format!("PDS could not be asked: {e}"));
            AuditOutcome::Error {
                message: "PDS retrieve failed".into(),
            }
        }
    }
}

async fn search_by_demographics(
    state: &WebState,
    ctx: &RequestContext,
    q: &[(String, String)],
    out: &mut String,
    audit: &mut RequestAudit,
) -> AuditOutcome {
    let Some(pds) = &state.pds else {
        failure(
            out,
            "Search",
            "PDS is not configured, so patients cannot be traced.",
        );
        return AuditOutcome::Error {
            message: "PDS not configured".into(),
        };
    };
    let given = field(q, "given");
    let postcode = field(q, "postcode");
    let search = PdsTraceQuery {
        family: field(q, "family").to_string(),
        given: (!given.is_empty()).then(|| given.to_string()),
        birth_date: field(q, "birthdate").to_string(),
        gender: Some(field(q, "gender"))
            .filter(|g| !g.is_empty())
            .map(str::to_string),
        postcode: (!postcode.is_empty()).then(|| postcode.to_string()),
        fuzzy: true,
        max_results: 10,
    };
    match pds.search(ctx, &search).await {
        Ok(SearchOutcome::Matches(matches)) if matches.is_empty() => {
            out.push_str("<h2>No patient found</h2><p>Nobody in PDS matches these details. Check the spelling and the date of birth.</p>");
            AuditOutcome::Permit
        }
        Ok(SearchOutcome::Matches(matches)) => {
            let caption = format!(
                "{} possible {} in PDS, best first. Nothing is opened for you: choose the right patient.",
                matches.len(),
                if matches.len() == 1 {
                    "match"
                } else {
                    "matches"
                }
            );
            results_table(out, &caption);
            for m in &matches {
                if let Some(nhs) = m.record.demographics.nhs_number {
                    audit.patient_by_identifier(NHS_NUMBER_SYSTEM, nhs.as_str());
                }
                result_row(out, &m.record.demographics, m.score, "");
            }
            out.push_str("</tbody></table>");
            AuditOutcome::Permit
        }
        Ok(SearchOutcome::TooManyMatches) => {
            out.push_str("<h2>Too many matches</h2><p>More patients match than can be shown. Add the first name or the postcode.</p>");
            AuditOutcome::Permit
        }
        Err(e) => {
            failure(out, "Search", &format!("PDS could not be asked: {e}"));
            AuditOutcome::Error {
                message: "PDS search failed".into(),
            }
        }
    }
}

fn failure(out: &mut String, heading: &str, message: &str) {
    w!(
        out,
        "<h2>{}</h2><div class=\"keel-state keel-state--failed\" data-state=\"failed\"><span class=\"keel-state__label\">Failed</span>{}</div>",
        Text(heading),
        Text(message)
    );
}

async fn decide_function(
    state: &Arc<WebState>,
    ctx: &RequestContext,
    function: Function,
    mut audit: RequestAudit,
) -> (Result<Access, FhirError>, RequestAudit) {
    let fhir = state.fhir.clone();
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || {
        let access = fhir.decide_function(&ctx, function, &mut audit);
        (access, audit)
    })
    .await
    .unwrap_or_else(|e| {
        (
            Err(FhirError::BadRequest(format!("the decision failed: {e}"))),
            RequestAudit::new("ui"),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// The record

pub async fn record(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(nhs): Path<String>,
) -> Response {
    let Some((_, session)) = state.session(&headers) else {
        return to_sign_in();
    };
    let Ok(nhs) = NhsNumber::parse(&nhs) else {
        let body = "<h1>Not a valid NHS number</h1><p>The address does not hold a valid NHS number. <a href=\"/ui/search\">Find the patient</a> instead.</p>";
        return html(
            StatusCode::BAD_REQUEST,
            layout::page("Not found", Some(&session), Nav::Search, body),
        );
    };
    let ctx = session.context(state.correlation_id(), Some(nhs));
    let mut audit = RequestAudit::new("ui patient record");
    audit.patient_by_identifier(NHS_NUMBER_SYSTEM, nhs.as_str());
    let (body, outcome, status, audit) = record_body(&state, &ctx, nhs, audit).await;
    let page = layout::page("Patient record", Some(&session), Nav::Search, &body);
    audited(&state, ctx, audit, outcome, &session, html(status, page)).await
}

async fn record_body(
    state: &Arc<WebState>,
    ctx: &RequestContext,
    nhs: NhsNumber,
    audit: RequestAudit,
) -> (String, AuditOutcome, StatusCode, RequestAudit) {
    let mut body = String::new();
    let practice = match state.directory.registered_practice(ctx, nhs, None).await {
        Ok(ods) => ods,
        Err(e) => {
            w!(body, "<h1>Patient record</h1>");
            failure(
                &mut body,
                "The registered practice could not be found",
                &e.to_string(),
            );
            return (
                body,
                AuditOutcome::Error {
                    message: "registered practice unknown".into(),
                },
                StatusCode::BAD_GATEWAY,
                audit,
            );
        }
    };
    let fhir = state.fhir.clone();
    let decide_ctx = ctx.clone();
    let decide_practice = practice.clone();
    let mut audit = audit;
    let decided = tokio::task::spawn_blocking(move || {
        let access = fhir.decide_record(
            &decide_ctx,
            Some(&decide_practice),
            &RecordSection::ALL,
            &mut audit,
        );
        (access, audit)
    })
    .await;
    let (access, audit) = match decided {
        Ok(done) => done,
        Err(e) => {
            failure(
                &mut body,
                "Patient record",
                &format!("the access decision failed: {e}"),
            );
            return (
                body,
                AuditOutcome::Error {
                    message: "decision failed".into(),
                },
                StatusCode::INTERNAL_SERVER_ERROR,
                RequestAudit::new("ui patient record"),
            );
        }
    };
    let access = match access {
        Ok(access) => access,
        Err(FhirError::Forbidden { what, reasons }) => {
            w!(
                body,
                "<h1>Patient record</h1><div class=\"keel-state keel-state--not-permitted\" data-state=\"not-permitted\"><span class=\"keel-state__label\">Break-glass refused</span>{}: ",
                Text(&what)
            );
            let words: Vec<&str> = reasons.iter().map(|(_, w)| w.as_str()).collect();
            w!(body, "{}.</div>", Text(&words.join("; ")));
            break_glass_form(&mut body, nhs, &[]);
            let reason = format!(
                "{what} ({})",
                reasons
                    .iter()
                    .map(|(c, _)| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return (
                body,
                AuditOutcome::Deny { reason },
                StatusCode::FORBIDDEN,
                audit,
            );
        }
        Err(e) => {
            failure(&mut body, "Patient record", &e.to_string());
            return (
                body,
                AuditOutcome::Error {
                    message: e.to_string(),
                },
                StatusCode::INTERNAL_SERVER_ERROR,
                audit,
            );
        }
    };
    if !access.demographics.is_permitted() {
        w!(
            body,
            "<h1>You cannot see this patient's record</h1><div class=\"keel-state keel-state--not-permitted\" data-state=\"not-permitted\">\
             <span class=\"keel-state__label\">Not shown to you</span>{}</div>",
            Text(&access.demographics.explanation())
        );
        if access.break_glass_available {
            break_glass_form(&mut body, nhs, &[]);
        }
        let reason = format!(
            "patient record refused: {}",
            access.demographics.explanation()
        );
        return (
            body,
            AuditOutcome::Deny { reason },
            StatusCode::FORBIDDEN,
            audit,
        );
    }
    let permitted = access.permitted_sections();
    let record = match state
        .directory
        .record_at(ctx, &practice, nhs, &permitted)
        .await
    {
        Ok(record) => access.apply(record),
        Err(e) => {
            w!(body, "<h1>Patient record</h1>");
            failure(&mut body, "The record could not be read", &e.to_string());
            return (
                body,
                AuditOutcome::Error {
                    message: "record not read".into(),
                },
                StatusCode::BAD_GATEWAY,
                audit,
            );
        }
    };
    let practice_name = state
        .directory
        .practice(&practice)
        .map(|p| p.connection.name.clone())
        .unwrap_or_default();
    body = record_page::render(&RecordPage {
        nhs_number: nhs,
        access: &access,
        record: &record,
        practice_name: &practice_name,
        now_unix: now_millis() / 1000,
    });
    (body, AuditOutcome::Permit, StatusCode::OK, audit)
}

fn break_glass_form(out: &mut String, nhs: NhsNumber, errors: &[(&str, &str)]) {
    let reason_error = errors.iter().find(|(f, _)| *f == "reason");
    w!(
        out,
        "<form method=\"post\" action=\"/ui/patient/{}/break-glass\" novalidate><div class=\"nhsuk-card\">\
         <h2>Emergency access (break-glass)</h2><p>Use this only when the patient needs care now and \
         you have no other way to see their record. Your access will be flagged, recorded with your \
         reason, and the privacy officer alerted.</p><div class=\"nhsuk-form-group{}\">\
         <label class=\"nhsuk-label\" for=\"reason\">Why do you need access?</label>",
        nhs.as_str(),
        if reason_error.is_some() {
            " nhsuk-form-group--error"
        } else {
            ""
        }
    );
    if let Some((_, message)) = reason_error {
        w!(
            out,
            "<span class=\"nhsuk-error-message\" id=\"reason-error\"><span class=\"nhsuk-u-visually-hidden\">Error:</span> {}</span>",
            Text(message)
        );
    }
    out.push_str(
        "<textarea class=\"nhsuk-textarea\" id=\"reason\" name=\"reason\" rows=\"3\"></textarea></div>\
         <div class=\"nhsuk-form-group\"><label class=\"nhsuk-label\" for=\"minutes\">For how long?</label>\
         <select class=\"nhsuk-select\" id=\"minutes\" name=\"minutes\">",
    );
    for m in BREAK_GLASS_MINUTES {
        let selected = if m == 60 { " selected" } else { "" };
        w!(
            out,
            "<option value=\"{m}\"{selected}>{}</option>",
            minutes_words(m)
        );
    }
    out.push_str("</select></div><button class=\"nhsuk-button nhsuk-button--warning\" type=\"submit\">Get emergency access</button></div></form>");
}

fn minutes_words(m: u32) -> String {
    if m < 60 {
        format!("{m} minutes")
    } else if m == 60 {
        "1 hour".into()
    } else {
        format!("{} hours", m / 60)
    }
}

pub async fn break_glass(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    Path(nhs): Path<String>,
    body: Bytes,
) -> Response {
    let Some((id, session)) = state.session(&headers) else {
        return to_sign_in();
    };
    let Ok(nhs) = NhsNumber::parse(&nhs) else {
        return Redirect::to("/ui/search").into_response();
    };
    let fields = form(&body);
    let reason = field(&fields, "reason");
    let minutes: u32 = field(&fields, "minutes").parse().unwrap_or(0);
    let mut errors = Vec::new();
    if reason.is_empty() {
        errors.push((
            "reason",
            "Enter why you need emergency access to this record",
        ));
    }
    if !BREAK_GLASS_MINUTES.contains(&minutes) {
        errors.push(("minutes", "Choose how long you need access for"));
    }
    if !errors.is_empty() {
        let mut page = String::new();
        error_summary(&mut page, &errors);
        w!(page, "<h1>Emergency access to {}</h1>", Text(&spaced(&nhs)));
        break_glass_form(&mut page, nhs, &errors);
        return html(
            StatusCode::BAD_REQUEST,
            layout::page("Emergency access", Some(&session), Nav::Search, &page),
        );
    }
    state.sessions.state_break_glass(
        &id,
        StatedBreakGlass {
            patient: nhs,
            break_glass: BreakGlass {
                reason: reason.to_string(),
                expires_at_millis: now_millis() + i64::from(minutes) * 60_000,
            },
        },
    );
    Redirect::to(&format!("/ui/patient/{}", nhs.as_str())).into_response()
}

// ---------------------------------------------------------------------------------------------
// Practices

pub async fn practices(State(state): State<Arc<WebState>>, headers: HeaderMap) -> Response {
    let Some((_, session)) = state.session(&headers) else {
        return to_sign_in();
    };
    let ctx = session.context(state.correlation_id(), None);
    let mut audit = RequestAudit::new("ui practices");
    audit.resource("practice-directory".into());
    let mut body = String::from(
        "<h1>Practices</h1><p>The practices of the PCN Keel reads records from: each one's clinical \
         system, how its connections are doing, and what Keel can do there (its capability profile).</p>\
         <table class=\"nhsuk-table\" data-testid=\"practices\"><caption>Practice connections</caption><thead><tr>\
         <th scope=\"col\">Practice</th><th scope=\"col\">System</th><th scope=\"col\">Interfaces and health</th>\
         <th scope=\"col\">Capability profile</th></tr></thead><tbody>",
    );
    let health = state.directory.connection_health();
    for version in state.directory.current() {
        let c = &version.connection;
        let system = match c.system {
            keel_core::integration::ClinicalSystem::EmisStyle => "EMIS-style",
            keel_core::integration::ClinicalSystem::TppStyle => "TPP-style",
        };
        w!(
            body,
            "<tr data-practice=\"{}\"><td>{} ({})</td><td>{system}</td><td><ul class=\"nhsuk-body-s\">",
            Text(c.ods.as_str()),
            Text(&c.name),
            Text(c.ods.as_str())
        );
        for h in health.iter().filter(|h| h.practice == c.ods) {
            let (words, colour) = match h.circuit {
                keel_integrations::circuit::CircuitState::Closed => ("no recent failures", "green"),
                keel_integrations::circuit::CircuitState::Open => {
                    ("down: calls fail at once until a trial call", "red")
                }
                keel_integrations::circuit::CircuitState::HalfOpen => {
                    ("recovering: a trial call is allowed", "orange")
                }
            };
            w!(
                body,
                "<li>{} <strong class=\"nhsuk-tag nhsuk-tag--{colour}\">{words}</strong></li>",
                Text(h.interface.key())
            );
        }
        body.push_str("</ul></td><td>");
        if let Some(practice) = state.directory.practice(&c.ods) {
            let profile = practice.capability_profile();
            let supported = profile
                .operations
                .iter()
                .filter(|o| matches!(o.support, keel_core::integration::Support::Supported { .. }))
                .count();
            w!(
                body,
                "<details><summary>{supported} of {} operations supported</summary><ul class=\"nhsuk-body-s\">",
                profile.operations.len()
            );
            for route in &profile.operations {
                match &route.support {
                    keel_core::integration::Support::Supported { interface, .. } => {
                        w!(
                            body,
                            "<li>{}: via {}</li>",
                            Text(route.operation.key()),
                            Text(interface.key())
                        );
                    }
                    keel_core::integration::Support::NotSupported { reason } => {
                        w!(
                            body,
                            "<li>{}: <strong>not supported</strong> ({})</li>",
                            Text(route.operation.key()),
                            Text(reason)
                        );
                    }
                }
            }
            body.push_str("</ul></details>");
        }
        body.push_str("</td></tr>");
    }
    body.push_str("</tbody></table>");
    let page = layout::page("Practices", Some(&session), Nav::Practices, &body);
    audited(
        &state,
        ctx,
        audit,
        AuditOutcome::Permit,
        &session,
        html(StatusCode::OK, page),
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Audit

pub async fn audit(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some((_, session)) = state.session(&headers) else {
        return to_sign_in();
    };
    let q: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .filter(|(k, v)| {
            !v.is_empty() && ["agent", "break-glass", "outcome", "_offset"].contains(&k.as_str())
        })
        .collect();
    let mut params = q.clone();
    params.push(("_count".into(), "50".into()));
    let ctx = session.context(state.correlation_id(), None);
    let fhir = state.fhir.clone();
    let search_ctx = ctx.clone();
    let found = tokio::task::spawn_blocking(move || {
        let mut audit = RequestAudit::new("ui audit search");
        let page = fhir.search_audit(&search_ctx, &params, &mut audit);
        (page, audit)
    })
    .await;
    let Ok((page, audit)) = found else {
        return to_sign_in();
    };
    let mut body = String::from("<h1>Audit trail</h1>");
    let (outcome, status) = match page {
        Err(FhirError::Forbidden { reasons, .. }) => {
            let words: Vec<&str> = reasons.iter().map(|(_, w)| w.as_str()).collect();
            w!(
                body,
                "<div class=\"keel-state keel-state--not-permitted\" data-state=\"not-permitted\"><span class=\"keel-state__label\">The audit trail is not available to your role</span>Only the information-governance role reads it{}{}.</div>",
                if words.is_empty() { "" } else { ": " },
                Text(&words.join("; "))
            );
            (
                AuditOutcome::Deny {
                    reason: "audit read refused".into(),
                },
                StatusCode::FORBIDDEN,
            )
        }
        Err(e) => {
            failure(
                &mut body,
                "The audit trail could not be read",
                &e.to_string(),
            );
            (
                AuditOutcome::Error {
                    message: e.to_string(),
                },
                StatusCode::BAD_REQUEST,
            )
        }
        Ok(page) => {
            let only_bg = field(&q, "break-glass") == "true";
            w!(
                body,
                "<form method=\"get\" action=\"/ui/audit\" novalidate><div class=\"nhsuk-form-group\"><label class=\"nhsuk-label\" for=\"agent\">User id (optional)</label>\
                 <input class=\"nhsuk-input nhsuk-input--width-10\" id=\"agent\" name=\"agent\" type=\"text\" value=\"{}\"></div>\
                 <div class=\"nhsuk-form-group\"><label class=\"nhsuk-label\" for=\"break-glass\">Which accesses</label>\
                 <select class=\"nhsuk-select\" id=\"break-glass\" name=\"break-glass\"><option value=\"\">All</option>\
                 <option value=\"true\"{}>Break-glass only</option></select></div>\
                 <button class=\"nhsuk-button nhsuk-button--secondary\" type=\"submit\">Filter</button></form>\
                 <table class=\"nhsuk-table\" data-testid=\"audit\"><caption>{} records, newest first (showing {})</caption><thead><tr>\
                 <th scope=\"col\">When</th><th scope=\"col\">Who</th><th scope=\"col\">Organisation</th><th scope=\"col\">Why</th>\
                 <th scope=\"col\">What</th><th scope=\"col\">Patients</th><th scope=\"col\">Outcome</th></tr></thead><tbody>",
                Text(field(&q, "agent")),
                if only_bg { " selected" } else { "" },
                page.total,
                page.entries.len()
            );
            for (_, record) in &page.entries {
                let who = match &record.actor {
                    keel_core::Actor::User {
                        user_id, role_code, ..
                    } => format!("{user_id} ({role_code})"),
                    keel_core::Actor::System { client_id, .. } => format!("system {client_id}"),
                    keel_core::Actor::LocalDevelopment => "local development".into(),
                };
                let why = match &record.break_glass {
                    Some(bg) => {
                        format!("{} — BREAK-GLASS: {}", record.purpose.as_code(), bg.reason)
                    }
                    None => record.purpose.as_code().to_string(),
                };
                let patients: Vec<String> = record
                    .subject
                    .patients
                    .iter()
                    .map(|p| p.rsplit('|').next().unwrap_or(p).to_string())
                    .collect();
                let outcome = match &record.outcome {
                    AuditOutcome::Permit => "permitted".to_string(),
                    AuditOutcome::Deny { reason } => format!("refused: {reason}"),
                    AuditOutcome::Error { message } => format!("failed: {message}"),
                };
                let flagged = if record.break_glass.as_ref().is_some_and(|b| b.used) {
                    " data-break-glass=\"true\""
                } else {
                    ""
                };
                w!(
                    body,
                    "<tr{flagged}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    Text(record.when.as_str()),
                    Text(&who),
                    Text(record.organisation.as_ref().map_or("", |o| o.as_str())),
                    Text(&why),
                    Text(&record.subject.interaction),
                    Text(&patients.join(", ")),
                    Text(&outcome)
                );
            }
            body.push_str("</tbody></table>");
            (AuditOutcome::Permit, StatusCode::OK)
        }
    };
    let page = layout::page("Audit trail", Some(&session), Nav::Audit, &body);
    audited(&state, ctx, audit, outcome, &session, html(status, page)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_demographic_search_asks_for_what_pds_needs_field_by_field() {
        let both_names = query(&[
            ("family", "Smith"),
            ("given", "Ann"),
            ("birthdate", "1961-07-23"),
        ]);
        assert!(demographic_search_errors(&both_names).is_empty());
        let one_name_narrowed = query(&[
            ("family", "Smith"),
            ("birthdate", "1961-07-23"),
            ("gender", "female"),
            ("postcode", "LS1 4AP"),
        ]);
        assert!(demographic_search_errors(&one_name_narrowed).is_empty());

        let one_name = query(&[("family", "Smith"), ("birthdate", "1961-07-23")]);
        assert_eq!(
            demographic_search_errors(&one_name),
            [(
                "given",
                "Enter both names, or one name with the gender and postcode"
            )]
        );
        let nothing_right = query(&[("birthdate", "23/07/1961"), ("gender", "dog")]);
        let fields: Vec<&str> = demographic_search_errors(&nothing_right)
            .iter()
            .map(|(f, _)| *f)
            .collect();
        assert_eq!(fields, ["family", "birthdate", "gender"]);
    }
}
