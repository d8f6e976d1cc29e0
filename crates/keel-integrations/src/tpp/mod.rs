//! The TPP-style supplier API adapter (the simulator's `keel_sim::tpp`, modelled on an
//! IM1-paired SystmOne integration): one practice (an organisation unit) behind the
//! [`PracticeSystem`] contract. JSON over HTTP with numeric `RowIdentifier`s, a paired
//! application id and a user session on every call.
//!
//! The endpoint's base URL is the API's unit root (`.../tpp/v1/units`); the practice's ODS
//! code is its organisation unit. The session decides whether confidential entries are seen:
//! a session without the sensitive-data permission gets them withheld and counted, which maps
//! to [`SectionWarning::ConfidentialItemsWithheld`](keel_model::record::SectionWarning).
//!
//! # Operations
//!
//! | operation | call | notes |
//! |---|---|---|
//! | find patient | `GET /patients?nhsNumber=`, then `GET /patients/{row}` | only `Registered` records count; of several, the one with a verified NHS number (`01`); still several → refused |
//! | problems, allergies, observations, immunisations, consultations, documents | `GET /patients/{row}/journal?eventType=` | one event type per read, so the withheld count is the section's |
//! | medications | `GET /patients/{row}/medication` | courses with their issues |
//! | create task, add entry, attach document | `POST .../tasks`, `.../journal/coded-entries`, `.../documents` | see Writes |
//! | free slots, book, cancel | — | [`IntegrationError::NotSupported`]: this API has no appointment book |
//! | probe | — | `None`: this API cannot be asked what it offers; the profile comes from configuration |
//!
//! # Mapping ([`map`]) and confidence
//!
//! Codes are kept exactly as recorded, in the order given (legacy CTV3 or Read v2 first,
//! SNOMED CT beside), all with [`keel_model::CodingOrigin::Source`]; drugs keep their dm+d
//! code (the simulator's synthetic ids under [`map::SYNTHETIC_DMD_SYSTEM`]). Dates are kept
//! at the precision given. Every field the canonical model has no home for is kept as a
//! source attribute named `tpp-style:<Field>` (its JSON text for objects), and so is every
//! status word, beside its mapped status.
//!
//! | journal / list | canonical | status vocabulary | confidence |
//! |---|---|---|---|
//! | `Problem` | [`Problem`](keel_model::record::Problem): `OnsetDate`, `EndDate` | `Active` → active; `Significant past` → inactive, significant; `Past` → inactive, not significant (`Active` says nothing of significance: `None`) | high |
//! | `CodedEntry` | [`Observation`](keel_model::record::Observation): `Date` is the effective date; `Value.Number` + `Unit` (+ `Comparator`) a quantity; `Value.Systolic`/`Diastolic` one observation with two components; no `Value` but `Text` → a text value, else `Text` is the note | — | high; the component codes are Keel's translations (SNOMED CT 271649006 / 271650006) beside the source's words |
//! | `Allergy` | [`Allergy`](keel_model::record::Allergy): `Date` is when recorded; `Reaction.Codes` | `Active` → active; `Inactive` → resolved | high |
//! | `Immunisation` | [`Immunisation`](keel_model::record::Immunisation): `Codes` (the procedure), `Product` | — | high |
//! | `Consultation` | [`Consultation`](keel_model::record::Consultation): `Date` + `Time` (UK local, given its offset), `ConsultationType`, clinician, `Text` | — | high |
//! | `Document` | [`Document`](keel_model::record::Document): `Title`, `MimeType`, `Date` | — | high (metadata only; the content is not fetched) |
//! | medication list | [`Medication`](keel_model::record::Medication): `Drug`, `Dosage`, `Quantity` + `QuantityUnit`, `PrescriptionType`, `StartDate`, `EndDate`, `Issues` (date, quantity) | `Current` → active; `Ended` → completed; `Discontinued` → stopped | high |
//!
//! Provenance: the practice, [`SourceSystem::TppStyle`](keel_model::SourceSystem), retrieved
//! now, recorded only when the event has a `Time` (the API gives other events a date, which
//! an instant cannot hold: a problem's recording `Date` stays a source attribute), the author
//! (`ClinicianName`, else `EnteredBy`), the status word; no source version (the API has none).
//!
//! **Lost or differing**: units stay as written, with no UCUM code claimed (the API does not
//! say its units are UCUM) and no normalisation (HbA1c in `%` stays `%`); issue
//! `RowIdentifier`s; document content; `Medication` and `Issue` journal events (the medication
//! list carries the same); demographics keep the usual canonical fields only (title, local
//! patient number, NHS number status, sex, address lines, contact details and registration
//! type and dates are not carried). The API reports no record in transit and nothing awaiting
//! filing, so those warnings never appear. An event the mapping cannot read (an unknown status
//! word, a bad date) makes the section [`IntegrationError::Malformed`] — never silently shorter.
//!
//! # Writes
//!
//! The API has **no client request id**: the same body sent twice is filed twice. The
//! [`WriteKey`] is sent as the `ExternalReference`. When the answer is lost (anything
//! [`http::write_failed`] calls an unknown outcome, a cut-off or unreadable answer, an HTTP
//! 5xx other than 503), the adapter **checks** by reading with `externalReference=`: exactly
//! one found → its receipt; none → the write did not land, and it is sent once more; more than
//! one → the first is returned (and a warning logged, without identifiers); the check itself
//! failing → [`IntegrationError::OutcomeUnknown`]. A coded entry is filed with the SNOMED CT
//! code if the concept has one, else CTV3 (see [`writes`] for what is refused before sending);
//! the author is not sent — the API records its session's user as `EnteredBy`.
//!
//! Reads are never retried. Patient identifiers are never logged.

pub mod fields;
pub mod map;
pub mod uk_time;
pub mod writes;

use keel_core::RequestContext;
use keel_core::integration::{
    BookingRequest, BoxFuture, CancellationRequest, DocumentRequest, EntryRequest, FreeSlot,
    IntegrationError, Interface, Operation, PatientAtPractice, PracticeSystem, SectionContent,
    TaskRequest, WriteKey, WriteReceipt,
};
use keel_model::record::{Demographics, RecordSection};
use keel_model::{ClinicalDate, NhsNumber, OdsCode};
use serde_json::Value;

use crate::http::{self, Endpoint};
use map::Source;
use writes::Write;

/// Header carrying the paired application's id.
pub const APPLICATION_HEADER: &str = "X-TPP-Application-Id";
/// Header carrying the user's session token.
pub const SESSION_HEADER: &str = "X-TPP-Session-Token";

/// The IM1-style pairing and session the adapter calls with.
#[derive(Clone, PartialEq, Eq)]
pub struct TppCredentials {
    pub application_id: String,
    pub session_token: String,
}

impl std::fmt::Debug for TppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TppCredentials")
            .field("application_id", &self.application_id)
            .field("session_token", &"<redacted>")
            .finish()
    }
}

/// One practice's TPP-style system.
#[derive(Debug, Clone)]
pub struct TppSystem {
    practice: OdsCode,
    endpoint: Endpoint,
    http: reqwest::Client,
    credentials: TppCredentials,
}

/// What became of one write request.
enum Sent {
    Filed(WriteReceipt),
    /// The practice answered, and not with success; or nothing was sent.
    Failed(IntegrationError),
    /// It may have been filed: the answer was lost (the reason, in words).
    Lost(String),
}

impl TppSystem {
    /// # Errors
    /// If the HTTP client cannot be set up.
    pub fn new(
        practice: OdsCode,
        endpoint: Endpoint,
        credentials: TppCredentials,
    ) -> Result<TppSystem, reqwest::Error> {
        let http = http::client(&endpoint)?;
        Ok(TppSystem {
            practice,
            endpoint,
            http,
            credentials,
        })
    }

    fn url(&self, path: &str) -> String {
        self.endpoint
            .url(&format!("/{}{path}", self.practice.as_str()))
    }

    fn signed(
        &self,
        ctx: &RequestContext,
        req: reqwest::RequestBuilder,
    ) -> reqwest::RequestBuilder {
        req.header(APPLICATION_HEADER, &self.credentials.application_id)
            .header(SESSION_HEADER, &self.credentials.session_token)
            .header("Accept", "application/json")
            .header("X-Correlation-ID", ctx.correlation_id.as_str())
    }

    /// `GET` with `query`: the JSON of a 200 answer, or the error the answer means.
    async fn read(
        &self,
        ctx: &RequestContext,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, IntegrationError> {
        let body = self.read_body(ctx, path, query).await?;
        map::parse(&body).map_err(|reason| self.malformed(reason))
    }

    /// `GET` with `query`: the body of a 200 answer, or the error the answer means.
    async fn read_body(
        &self,
        ctx: &RequestContext,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<impl std::ops::Deref<Target = [u8]> + use<>, IntegrationError> {
        let response = self
            .signed(ctx, self.http.get(self.url(path)).query(query))
            .send()
            .await
            .map_err(|e| http::read_failed(&self.practice, &self.endpoint, &e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| http::read_failed(&self.practice, &self.endpoint, &e))?;
        if status != 200 {
            return Err(self.answer_error(status, &body));
        }
        Ok(body)
    }

    /// The error an answer other than success means.
    fn answer_error(&self, status: u16, body: &[u8]) -> IntegrationError {
        let (code, message) = map::error_of(body).unwrap_or_default();
        match (status, code.as_str()) {
            (404, "PatientNotFound") => IntegrationError::PatientNotFound {
                practice: self.practice.clone(),
            },
            (401, _) => IntegrationError::Refused {
                practice: self.practice.clone(),
                reason: format!("the TPP-style session was not accepted ({code}: {message})"),
            },
            (400 | 404 | 405 | 413 | 422, _) => IntegrationError::Refused {
                practice: self.practice.clone(),
                reason: format!("HTTP {status} {code}: {message}"),
            },
            _ => http::unexpected_status(&self.practice, status),
        }
    }

    fn malformed(&self, reason: String) -> IntegrationError {
        IntegrationError::Malformed {
            practice: self.practice.clone(),
            reason,
        }
    }

    fn refused(&self, reason: String) -> IntegrationError {
        IntegrationError::Refused {
            practice: self.practice.clone(),
            reason,
        }
    }

    fn not_supported(&self, operation: Operation) -> IntegrationError {
        IntegrationError::NotSupported {
            practice: self.practice.clone(),
            operation,
            reason: "the TPP-style API has no appointment book".into(),
        }
    }

    fn source(&self) -> Source {
        Source {
            practice: self.practice.clone(),
            retrieved: http::now(),
        }
    }

    /// `/patients/{row}` for a patient of this practice.
    fn patient_path(&self, patient: &PatientAtPractice) -> Result<String, IntegrationError> {
        let row = patient.source_patient_id.as_str();
        if patient.practice != self.practice {
            return Err(self.refused("the patient's record is at another practice".into()));
        }
        if row.is_empty() || !row.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.refused("the patient id is not a TPP-style RowIdentifier".into()));
        }
        Ok(format!("/patients/{row}"))
    }

    async fn find(
        &self,
        ctx: &RequestContext,
        nhs_number: NhsNumber,
    ) -> Result<Option<(PatientAtPractice, Demographics)>, IntegrationError> {
        let found = self
            .read(
                ctx,
                "/patients",
                &[("nhsNumber", nhs_number.as_str().to_string())],
            )
            .await?;
        let candidates = map::search_results(&found).map_err(|r| self.malformed(r))?;
        let mut active = Vec::new();
        for candidate in candidates.iter().filter(|c| c.registered) {
            let body = self
                .read(ctx, &format!("/patients/{}", candidate.row), &[])
                .await?;
            active.push(map::demographics(&body).map_err(|r| self.malformed(r))?);
        }
        let chosen = match active.len() {
            0 => return Ok(None),
            1 => active.pop(),
            _ => {
                let mut verified: Vec<_> = active.into_iter().filter(|(_, v)| *v).collect();
                if verified.len() == 1 {
                    verified.pop()
                } else {
                    return Err(self.refused(
                        "more than one active record at the practice holds this NHS number".into(),
                    ));
                }
            }
        };
        Ok(chosen.map(|(demographics, _)| {
            let patient = PatientAtPractice {
                practice: self.practice.clone(),
                source_patient_id: demographics.source_patient_id.clone(),
                nhs_number: demographics.nhs_number,
            };
            (patient, demographics)
        }))
    }

    async fn section(
        &self,
        ctx: &RequestContext,
        patient: &PatientAtPractice,
        section: RecordSection,
    ) -> Result<SectionContent, IntegrationError> {
        let path = self.patient_path(patient)?;
        match map::event_type(section) {
            None => {
                let body = self
                    .read_body(ctx, &format!("{path}/medication"), &[])
                    .await?;
                map::parse_medication(&body)
                    .and_then(|list| map::medication_section(&list, &self.source()))
                    .map(SectionContent::Medications)
                    .map_err(|r| self.malformed(r))
            }
            Some(event_type) => {
                let body = self
                    .read_body(
                        ctx,
                        &format!("{path}/journal"),
                        &[("eventType", event_type.to_string())],
                    )
                    .await?;
                map::parse_journal(&body)
                    .and_then(|journal| map::journal_section(&journal, section, &self.source()))
                    .map_err(|r| self.malformed(r))
            }
        }
    }

    /// Files `write` for `patient`; after a lost answer, checks by `ExternalReference` and
    /// sends once more only if the write is not there (module docs).
    async fn file(
        &self,
        ctx: &RequestContext,
        patient: &PatientAtPractice,
        key: &WriteKey,
        write: Result<Write, String>,
    ) -> Result<WriteReceipt, IntegrationError> {
        let path = self.patient_path(patient)?;
        let write = write.map_err(|reason| self.refused(reason))?;
        let reason = match self.send(ctx, &path, &write).await {
            Sent::Filed(receipt) => return Ok(receipt),
            Sent::Failed(error) => return Err(error),
            Sent::Lost(reason) => reason,
        };
        let found = match self.look_up(ctx, &path, &write, key).await {
            Ok(found) => found,
            Err(check) => {
                return Err(IntegrationError::OutcomeUnknown {
                    practice: self.practice.clone(),
                    reason: format!(
                        "the answer was lost ({reason}) and the check for the write failed ({check})"
                    ),
                });
            }
        };
        if let Some(first) = found.first() {
            if found.len() > 1 {
                tracing::warn!(
                    copies = found.len(),
                    "a TPP-style write is filed more than once under its external reference"
                );
            }
            return Ok(receipt(*first));
        }
        match self.send(ctx, &path, &write).await {
            Sent::Filed(receipt) => Ok(receipt),
            Sent::Failed(error) => Err(error),
            Sent::Lost(again) => Err(IntegrationError::OutcomeUnknown {
                practice: self.practice.clone(),
                reason: format!(
                    "the write was not found after a lost answer ({reason}); it was sent once more and that answer was lost too ({again})"
                ),
            }),
        }
    }

    async fn send(&self, ctx: &RequestContext, path: &str, write: &Write) -> Sent {
        let request = self
            .http
            .post(self.url(&format!("{path}{}", write.path)))
            .json(&write.body);
        let response = match self.signed(ctx, request).send().await {
            Ok(response) => response,
            Err(e) => {
                return match http::write_failed(&self.practice, &self.endpoint, &e) {
                    IntegrationError::OutcomeUnknown { reason, .. } => Sent::Lost(reason),
                    nothing_sent => Sent::Failed(nothing_sent),
                };
            }
        };
        let status = response.status().as_u16();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(_) => return Sent::Lost("the answer was cut off".into()),
        };
        match status {
            201 => match map::parse(&body).and_then(|b| map::created_row(&b)) {
                Ok(row) => Sent::Filed(receipt(row)),
                Err(why) => Sent::Lost(format!("the answer could not be read ({why})")),
            },
            // Refused before anything was filed (validation, session, overload, outage).
            400..=499 | 503 => Sent::Failed(self.answer_error(status, &body)),
            _ => Sent::Lost(format!("answered HTTP {status}")),
        }
    }

    /// The `RowIdentifier`s filed under the key.
    async fn look_up(
        &self,
        ctx: &RequestContext,
        path: &str,
        write: &Write,
        key: &WriteKey,
    ) -> Result<Vec<u64>, IntegrationError> {
        let (list_path, query) = write.check.query(&key.0);
        let answer = self
            .read(ctx, &format!("{path}{list_path}"), &query)
            .await?;
        map::row_identifiers(&answer, write.check.list()).map_err(|r| self.malformed(r))
    }
}

fn receipt(row: u64) -> WriteReceipt {
    WriteReceipt {
        source_id: row.to_string(),
        version: None,
    }
}

impl PracticeSystem for TppSystem {
    fn practice(&self) -> &OdsCode {
        &self.practice
    }

    fn interface(&self) -> Interface {
        Interface::TppStyle
    }

    /// The TPP-style API has no capability discovery: `None`, the profile comes from configuration.
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
        let write = writes::task(request, time::OffsetDateTime::now_utc());
        Box::pin(self.file(ctx, &request.patient, &request.key, write))
    }

    fn add_entry<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a EntryRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        let write = writes::coded_entry(request);
        Box::pin(self.file(ctx, &request.patient, &request.key, write))
    }

    fn attach_document<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a DocumentRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        let write = writes::document(request, time::OffsetDateTime::now_utc());
        Box::pin(self.file(ctx, &request.patient, &request.key, write))
    }
}
