//! The EMIS-style supplier API adapter: one practice's EMIS-style system behind the
//! capability contract ([`PracticeSystem`]).
//!
//! The API is a modelled IM1-style interface (see `keel_sim::emis` for its URL layout and
//! shapes): XML over HTTP, GUID identifiers, a paired application id on every request and a
//! session token from a practice user's login. This module is the HTTP client; [`map`] is
//! the pure mapping of answers, [`write`] the pure building of write bodies, [`xml`] the XML
//! both ways.
//!
//! # Operations
//!
//! | operation | how |
//! |---|---|
//! | find patient | `GET …/patients?nhsNumber=`; the match with an active registration (a deducted or duplicate record is not "the patient at this practice") |
//! | read a section | `GET …/patients/{guid}/record/{section}`, mapped by [`map::map_section`] |
//! | create task, add entry, attach document | `POST …/tasks`, `…/codedentries` (an `Event`), `…/documents`, with the [`WriteKey`] as `X-Request-Id` |
//! | free slots, book, cancel | [`IntegrationError::NotSupported`]: the API has no appointment booking |
//! | probe | `None`: the API cannot be asked what it offers; the profile comes from configuration |
//!
//! **Session**: logged in once per adapter and cached; a request answered `InvalidSession`
//! logs in again once and is sent again (nothing was done under an invalid session).
//!
//! **Failures**: a transport failure of a read is [`IntegrationError::Unavailable`] (reads
//! are not retried); `PatientNotFound` is [`IntegrationError::PatientNotFound`]; other
//! `<Error>` answers are [`IntegrationError::Refused`] with the supplier's code and message;
//! 429 and 5xx (an outage) are `Unavailable`; an answer that cannot be mapped is
//! [`IntegrationError::Malformed`].
//!
//! **Writes**: the supplier recognises a repeated `X-Request-Id` with a byte-identical body
//! and answers it with the original result, writing nothing. So after a lost answer (sent,
//! no answer: [`crate::http::write_failed`] says `OutcomeUnknown`) the adapter sends the same
//! bytes again, up to [`WRITE_RETRIES`] times [`WRITE_RETRY_PAUSE`] apart, and returns the
//! original GUID; if the practice stays unreachable the outcome stays
//! [`IntegrationError::OutcomeUnknown`]. A write that could not connect at all sent nothing
//! and is `Unavailable`. The author of a write is the session's user (the API records the
//! logged-in user; the request's `author` is not carried — a loss).
//!
//! # Mapping (EMIS-style XML → canonical)
//!
//! Every item: `source_id` = its `Guid`; provenance = this practice, `emis-style`, retrieved
//! now, author = the name of the `<Author UserInRole>` user (the GUID when the answer does not
//! list the user), status = the item's `Status` as sent where it has one, recorded = the
//! consultation's date-time for consultations (the API gives no entry time for other items:
//! their `EnteredDate` day is kept as `emis-style:EnteredDate`); no source version (the API
//! versions nothing). Codes: every `<Code>` as sent, legacy first. Anything else an item
//! carries → `emis-style:<Field>` source attributes (the table lists the known ones).
//!
//! | section (`/record/…`) | canonical | kept as `emis-style:` attributes | confidence and losses |
//! |---|---|---|---|
//! | Problems (`problems`) | `Problem`: codes; `Status` Active/Past → active/inactive; `Significance` Major/Minor → significant; `Date` → onset; `EndDate` → ended | `EnteredDate`, `ConsultationGuid`, `FreeText` (written problems) | exact |
//! | Medications (`medication`) | `Medication`: `Drug` (DMD → dm+d; the simulator's `SYNTHETIC-DMD` → its synthetic system) with the term as text; `Dosage`; `Quantity` + `Unit`; `PrescriptionType` Acute/Repeat; `Status` Active/Completed/Cancelled → active/completed/stopped; `StartDate`, `EndDate`; each `Issue` → date and quantity (course unit) | `AuthorisedIssues`, `ReviewDate`, `ProblemGuid`, `Issue.Guid` (one per issue, in order) | exact; the quantity unit is the supplier's text (`tablet`), not UCUM |
//! | Observations (`events`) | `Observation`: codes; `Date` → effective; one `Value` → a quantity with value, unit and comparator exactly as recorded (`7.1` `%` stays `%`); `Value`s with `Component="Systolic"/"Diastolic"` → one observation with two components (see below); `FreeText` → note | `Source` (`Laboratory`), `ConsultationGuid` | exact values; the unit is kept as text only, not claimed as UCUM; a free-text-only event's text is a note, not a text value (the API does not tell a comment from a text result) |
//! | Allergies (`allergies`) | `Allergy`: codes → substance; `Reaction` codes; `Status` Active/Resolved; `EnteredDate` → recorded | `Category` | exact |
//! | Immunisations (`immunisations`) | `Immunisation`: codes → vaccine; `Date`; `Product` | `ConsultationGuid` | exact |
//! | Consultations (`consultations`) | `Consultation`: `Date` (a moment with offset) → start; `Type` (Surgery, Telephone, HomeVisit) → kind as sent; author → clinician; the free text of the sections → text (a lone section's text as is; several as `Heading: text` lines) | `DurationMinutes`, `AppointmentGuid`, `Section.Entry` (`Heading/Type/GUID` of each linked entry) | headings of a single-section consultation are dropped from the text; links to entries are kept as attributes only |
//! | Documents (`documents`) | `Document`: `Title`, `MimeType` → content type, `Date` → created | `SizeBytes` | metadata only; the content is fetched separately by GUID (not in the contract) |
//!
//! **Blood pressure**: the API sends one event with two `Value`s named by `Component`. It maps
//! to one observation without a value and with two components, each coded by its name as text
//! with Keel's SNOMED CT coding beside it (`72313002` systolic, `1091811000000102` diastolic)
//! marked [`keel_model::CodingOrigin::Translated`] — the API sends no component codes, so
//! unlike the GP Connect route there are no legacy component codes.
//!
//! **Confidential items** (`Confidential="true"`, with a `Sensitivity`) are present in the
//! answer for the consumer to filter: the adapter drops them and adds
//! [`keel_model::record::SectionWarning::ConfidentialItemsWithheld`] (also when the section's
//! `ConfidentialCount` says so); a section left empty is `Withheld`. A section without items
//! is `NothingRecorded`. The section's `Count` is checked against the items received; a
//! mismatch is `Malformed` (a cut-off answer never passes as a complete one).
//!
//! **Differences from the other routes**: no `CodeableConcept.text` on coded items (EMIS sends
//! a term per code only) and no LOINC codings; units are not UCUM-coded; appointments and tasks
//! of the extract are not canonical sections and are not read. The API has no data-in-transit
//! or awaiting-filing markers, so those warnings never arise here.
//!
//! **Demographics** (from the search match): NHS number, `FamilyName`, `Forenames` (split on
//! spaces), `DateOfBirth`, `Gender` (else `Sex`), `Address/Postcode`, the registration's
//! `OdsCode` when active, `DateOfDeath`. Not carried: title, address lines, contacts, local
//! patient number, NHS number status, registration dates and the record's confidentiality.
//!
//! Nothing here logs a patient identifier: logs name the operation and the status only.

pub mod map;
pub mod write;
pub mod xml;

use std::time::Duration;

use keel_core::RequestContext;
use keel_core::integration::{
    BookingRequest, BoxFuture, CancellationRequest, DocumentRequest, EntryRequest, FreeSlot,
    IntegrationError, Interface, Operation, PatientAtPractice, PracticeSystem, SectionContent,
    TaskRequest, WriteKey, WriteReceipt,
};
use keel_model::record::{Demographics, RecordSection};
use keel_model::{ClinicalDate, NhsNumber, OdsCode};
use reqwest::RequestBuilder;
use tokio::sync::Mutex;

use crate::http::{self, Endpoint};
use map::{MapError, ReadContext};
use xml::XmlWriter;

/// The paired application's id header (IM1 pairing).
pub const APPLICATION_HEADER: &str = "X-Emis-Application-Id";
/// The session token header.
pub const SESSION_HEADER: &str = "X-Emis-Session-Token";
/// The client request id header, which the supplier recognises on a repeated write.
pub const REQUEST_ID_HEADER: &str = "X-Request-Id";
/// How many times a write whose answer was lost is sent again with its request id.
pub const WRITE_RETRIES: u32 = 2;
/// The pause before each such retry.
pub const WRITE_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// What the API needs to let Keel in: the application id the IM1 pairing issued and the
/// practice user Keel acts as (a staff user id such as `Y90001-S01`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmisCredentials {
    pub application_id: String,
    pub user_id: String,
}

/// One practice's EMIS-style system.
#[derive(Debug)]
pub struct EmisSystem {
    practice: OdsCode,
    endpoint: Endpoint,
    credentials: EmisCredentials,
    http: reqwest::Client,
    /// The session token, once logged in; the lock makes concurrent first calls log in once.
    session: Mutex<Option<String>>,
}

/// An answer: status and body.
type Answer = (u16, Vec<u8>);

impl EmisSystem {
    /// An adapter for practice `practice` at `endpoint` (the API's base URL, e.g.
    /// `http://host/emis-style/api/v1`).
    ///
    /// # Errors
    /// If the HTTP client cannot be set up.
    pub fn new(
        practice: OdsCode,
        endpoint: Endpoint,
        credentials: EmisCredentials,
    ) -> Result<EmisSystem, reqwest::Error> {
        let http = http::client(&endpoint)?;
        Ok(EmisSystem {
            practice,
            endpoint,
            credentials,
            http,
            session: Mutex::new(None),
        })
    }

    fn practice_url(&self, rest: &str) -> String {
        self.endpoint
            .url(&format!("/practices/{}{rest}", self.practice.as_str()))
    }

    /// `…/patients/{guid}{rest}` for a patient of this practice.
    fn patient_url(
        &self,
        patient: &PatientAtPractice,
        rest: &str,
    ) -> Result<String, IntegrationError> {
        let guid = patient.source_patient_id.as_str();
        let is_guid = !guid.is_empty()
            && guid.len() <= 38
            && guid
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b'-' | b'{' | b'}'));
        if patient.practice != self.practice || !is_guid {
            return Err(self.refused("the patient is not a record of this EMIS-style practice"));
        }
        Ok(self.practice_url(&format!("/patients/{guid}{rest}")))
    }

    fn refused(&self, reason: impl Into<String>) -> IntegrationError {
        IntegrationError::Refused {
            practice: self.practice.clone(),
            reason: reason.into(),
        }
    }

    fn malformed(&self, e: MapError) -> IntegrationError {
        IntegrationError::Malformed {
            practice: self.practice.clone(),
            reason: e.0,
        }
    }

    fn not_supported(&self, operation: Operation) -> IntegrationError {
        IntegrationError::NotSupported {
            practice: self.practice.clone(),
            operation,
            reason: "the EMIS-style API offers no appointment booking".into(),
        }
    }

    /// An answer that is not success: the supplier's refusal, or the source failing.
    fn refusal(&self, status: u16, body: &[u8]) -> IntegrationError {
        match map::map_error(body) {
            Some((code, _)) if status == 404 && code == "PatientNotFound" => {
                IntegrationError::PatientNotFound {
                    practice: self.practice.clone(),
                }
            }
            Some((code, message)) if (400..500).contains(&status) && status != 429 => {
                self.refused(format!("{code}: {message}"))
            }
            _ => http::unexpected_status(&self.practice, status),
        }
    }

    fn with_headers(&self, ctx: &RequestContext, builder: RequestBuilder) -> RequestBuilder {
        builder
            .header(APPLICATION_HEADER, &self.credentials.application_id)
            .header("X-Correlation-ID", ctx.correlation_id.as_str())
            .header("Accept", "application/xml")
    }

    /// Logs in as the configured user. A login changes nothing, so a transport failure is
    /// `Unavailable`.
    async fn login(&self, ctx: &RequestContext) -> Result<String, IntegrationError> {
        let mut body = XmlWriter::root("Login", &[]);
        body.text("UserId", &[], &self.credentials.user_id);
        let request = self
            .with_headers(ctx, self.http.post(self.practice_url("/sessions")))
            .body(body.finish("Login"));
        let (status, bytes) = exchange(request)
            .await
            .map_err(|e| http::read_failed(&self.practice, &self.endpoint, &e))?;
        tracing::debug!(operation = "emis-style login", status);
        match status {
            200 | 201 => map::map_session(&bytes).map_err(|e| self.malformed(e)),
            _ => Err(self.refusal(status, &bytes)),
        }
    }

    /// The cached session token, logging in first if there is none.
    async fn session_token(&self, ctx: &RequestContext) -> Result<String, IntegrationError> {
        let mut session = self.session.lock().await;
        if let Some(token) = session.as_ref() {
            return Ok(token.clone());
        }
        let token = self.login(ctx).await?;
        *session = Some(token.clone());
        Ok(token)
    }

    /// Forgets `stale` (unless another call already replaced it).
    async fn forget_session(&self, stale: &str) {
        let mut session = self.session.lock().await;
        if session.as_deref() == Some(stale) {
            *session = None;
        }
    }

    /// Sends the request `build` makes under the session; answered `InvalidSession`, logs in
    /// again once and sends it again. The outer error is a failed login; the inner one the
    /// request's transport failure, for the caller to classify as a read or a write.
    async fn send(
        &self,
        ctx: &RequestContext,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Result<Answer, reqwest::Error>, IntegrationError> {
        let token = self.session_token(ctx).await?;
        let answer = exchange(
            self.with_headers(ctx, build())
                .header(SESSION_HEADER, &token),
        )
        .await;
        let invalid_session = matches!(&answer, Ok((401, body))
            if map::map_error(body).is_some_and(|(code, _)| code == "InvalidSession"));
        if !invalid_session {
            return Ok(answer);
        }
        tracing::debug!(
            operation = "emis-style session",
            "session no longer valid; logging in again"
        );
        self.forget_session(&token).await;
        let token = self.session_token(ctx).await?;
        Ok(exchange(
            self.with_headers(ctx, build())
                .header(SESSION_HEADER, &token),
        )
        .await)
    }

    /// A read: one request, a transport failure is `Unavailable`, a 200 body is returned.
    async fn read(
        &self,
        ctx: &RequestContext,
        operation: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Vec<u8>, IntegrationError> {
        let (status, body) = self
            .send(ctx, build)
            .await?
            .map_err(|e| http::read_failed(&self.practice, &self.endpoint, &e))?;
        tracing::debug!(operation, status);
        match status {
            200 => Ok(body),
            _ => Err(self.refusal(status, &body)),
        }
    }

    /// A write of `body` to `url` under `key` (see the module docs for the retry rule).
    async fn write(
        &self,
        ctx: &RequestContext,
        operation: Operation,
        url: String,
        key: &WriteKey,
        body: String,
    ) -> Result<WriteReceipt, IntegrationError> {
        let usable_key =
            (1..=128).contains(&key.0.len()) && key.0.bytes().all(|b| b.is_ascii_graphic());
        if !usable_key {
            return Err(self.refused(
                "the write key must be 1 to 128 visible ASCII characters to serve as the request id",
            ));
        }
        let mut lost: Option<String> = None;
        for attempt in 0..=WRITE_RETRIES {
            if attempt > 0 {
                tokio::time::sleep(WRITE_RETRY_PAUSE).await;
            }
            let build = || {
                self.http
                    .post(&url)
                    .header(REQUEST_ID_HEADER, &key.0)
                    .header("Content-Type", "application/xml")
                    .body(body.clone())
            };
            let answer = match self.send(ctx, build).await {
                Ok(answer) => answer,
                Err(e) if lost.is_none() => return Err(e),
                Err(_) => continue,
            };
            match answer {
                Ok((status @ (200 | 201), bytes)) => {
                    tracing::debug!(operation = operation.key(), status, attempt);
                    return map::map_write_result(&bytes).map_err(|e| self.malformed(e));
                }
                Ok((status, _)) if lost.is_some() && (status == 429 || status >= 500) => {
                    tracing::debug!(operation = operation.key(), status, attempt);
                }
                Ok((status, bytes)) => {
                    tracing::debug!(operation = operation.key(), status, attempt);
                    return Err(self.refusal(status, &bytes));
                }
                Err(e) => match http::write_failed(&self.practice, &self.endpoint, &e) {
                    IntegrationError::OutcomeUnknown { reason, .. } => {
                        tracing::debug!(operation = operation.key(), attempt, "answer lost");
                        lost = Some(reason);
                    }
                    nothing_sent if lost.is_none() => return Err(nothing_sent),
                    _ => {}
                },
            }
        }
        Err(IntegrationError::OutcomeUnknown {
            practice: self.practice.clone(),
            reason: format!(
                "{}; sent again {WRITE_RETRIES} times with the same request id without an answer",
                lost.unwrap_or_default()
            ),
        })
    }

    async fn find(
        &self,
        ctx: &RequestContext,
        nhs_number: NhsNumber,
    ) -> Result<Option<(PatientAtPractice, Demographics)>, IntegrationError> {
        let url = self.practice_url("/patients");
        let body = self
            .read(ctx, "emis-style find patient", || {
                self.http
                    .get(&url)
                    .query(&[("nhsNumber", nhs_number.as_str())])
            })
            .await?;
        let matches = map::map_patient_matches(&body).map_err(|e| self.malformed(e))?;
        Ok(matches
            .into_iter()
            .find(|m| m.active && m.patient.nhs_number == Some(nhs_number))
            .map(|m| (m.patient, m.demographics)))
    }

    async fn section(
        &self,
        ctx: &RequestContext,
        patient: &PatientAtPractice,
        section: RecordSection,
    ) -> Result<SectionContent, IntegrationError> {
        let url = self.patient_url(patient, &format!("/record/{}", map::section_path(section)))?;
        let body = self
            .read(ctx, "emis-style read section", || self.http.get(&url))
            .await?;
        let retrieved = http::now();
        let read = ReadContext {
            practice: &self.practice,
            retrieved: &retrieved,
        };
        map::map_section(&body, section, &read).map_err(|e| self.malformed(e))
    }
}

async fn exchange(request: RequestBuilder) -> Result<Answer, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = response.bytes().await?;
    Ok((status, body.to_vec()))
}

/// Now in UTC: `YYYY-MM-DDThh:mm` and `YYYY-MM-DD`, as the API's write bodies take them.
fn now_for_writes() -> (String, String) {
    let now = time::OffsetDateTime::now_utc();
    let date = format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    let moment = format!("{date}T{:02}:{:02}", now.hour(), now.minute());
    (moment, date)
}

impl PracticeSystem for EmisSystem {
    fn practice(&self) -> &OdsCode {
        &self.practice
    }

    fn interface(&self) -> Interface {
        Interface::EmisStyle
    }

    /// The EMIS-style API has no capability discovery: `None`, the profile comes from configuration.
    fn probe<'a>(
        &'a self,
        _ctx: &'a RequestContext,
    ) -> BoxFuture<'a, Result<Option<Vec<Operation>>, IntegrationError>> {
        Box::pin(async { Ok(None) })
    }

    fn find_patient<'a>(
        &'a self,
        ctx: &'a RequestContext,
        nhs_number: NhsNumber,
    ) -> BoxFuture<'a, Result<Option<(PatientAtPractice, Demographics)>, IntegrationError>> {
        Box::pin(self.find(ctx, nhs_number))
    }

    fn read_section<'a>(
        &'a self,
        ctx: &'a RequestContext,
        patient: &'a PatientAtPractice,
        section: RecordSection,
    ) -> BoxFuture<'a, Result<SectionContent, IntegrationError>> {
        Box::pin(self.section(ctx, patient, section))
    }

    fn search_free_slots<'a>(
        &'a self,
        _ctx: &'a RequestContext,
        _from: &'a ClinicalDate,
        _to: &'a ClinicalDate,
    ) -> BoxFuture<'a, Result<Vec<FreeSlot>, IntegrationError>> {
        Box::pin(async move { Err(self.not_supported(Operation::SearchFreeSlots)) })
    }

    fn book_appointment<'a>(
        &'a self,
        _ctx: &'a RequestContext,
        _request: &'a BookingRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        Box::pin(async move { Err(self.not_supported(Operation::BookAppointment)) })
    }

    fn cancel_appointment<'a>(
        &'a self,
        _ctx: &'a RequestContext,
        _request: &'a CancellationRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        Box::pin(async move { Err(self.not_supported(Operation::CancelAppointment)) })
    }

    fn create_task<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a TaskRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        Box::pin(async move {
            let url = self.patient_url(&request.patient, "/tasks")?;
            let (created, _) = now_for_writes();
            let body = write::task_body(request, &created);
            self.write(ctx, Operation::CreateTask, url, &request.key, body)
                .await
        })
    }

    fn add_entry<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a EntryRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        Box::pin(async move {
            let url = self.patient_url(&request.patient, "/codedentries")?;
            let body = write::entry_body(request).map_err(|e| self.refused(e.0))?;
            self.write(ctx, Operation::AddEntry, url, &request.key, body)
                .await
        })
    }

    fn attach_document<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a DocumentRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        Box::pin(async move {
            let url = self.patient_url(&request.patient, "/documents")?;
            let (_, today) = now_for_writes();
            let body = write::document_body(request, &today);
            self.write(ctx, Operation::AttachDocument, url, &request.key, body)
                .await
        })
    }
}
