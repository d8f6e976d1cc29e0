//! GP Connect (FHIR STU3, spec 1.6.x; reference sheet §3) for one practice, behind the
//! capability contract: Access Record Structured for the patient and each record section,
//! Appointment Management for slots, booking and cancelling.
//!
//! Every request carries the Spine Secure Proxy headers (a fresh `Ssp-TraceID`, Keel's ASID in
//! `Ssp-From`, the practice's provider ASID in `Ssp-To`, the interaction's id) and a fresh
//! unsigned audit JWT built from the [`RequestContext`] ([`request`]). Reads are asked once:
//! a failure is [`IntegrationError::Unavailable`] and the caller may ask again.
//!
//! # Reads
//!
//! - `find_patient`: `$gpc.getstructuredrecord` with the NHS number only (the simulator offers
//!   no patient read); `PATIENT_NOT_FOUND` (unknown, deceased, not regular, unverified NHS
//!   number, S-flag) → `None`.
//! - `read_section`: one `$gpc.getstructuredrecord` per section with that section's areas:
//!   problems `includeProblems`; medications `includeMedication` with issues; allergies
//!   `includeAllergies` with `includeResolvedAllergies=true` (the "Ended allergies" List's
//!   contained items → `Resolved`); observations `includeUncategorisedData` **and**
//!   `includeInvestigations` in the same call (the simulator serves laboratory results only as
//!   DiagnosticReports; each result becomes one Observation naming its report); immunisations;
//!   consultations. Documents: [`IntegrationError::NotSupported`] (no Documents capability).
//! - States ([`map`]): entries → Recorded; `emptyReason` and no entries → NothingRecorded;
//!   `confidential-items` → [`keel_model::record::SectionWarning::ConfidentialItemsWithheld`] (Withheld when no
//!   entries remain); `data-in-transit` → `DataInTransit` with the date of the List note;
//!   `data-awaiting-filing` → `DataAwaitingFiling`. An area the practice switched off (the
//!   Bundle's `NOT_IMPLEMENTED` warning) → [`IntegrationError::NotSupported`] for the whole
//!   section: it is a configuration of the practice, asking again will not help, and a section
//!   with one of its two areas missing would look complete when it is not.
//!
//! # Mapping and its losses
//!
//! Codes are kept exactly as sent (Read v2 / CTV3 beside SNOMED CT, all `CodingOrigin::Source`;
//! dm+d, or the simulator's synthetic dm+d system, for medicines); units as sent (HbA1c in `%`
//! stays `%`); dates as sent (partial stays partial). Every field the mapping does not carry is
//! kept as a `SourceAttribute` named `gpconnect:<Resource>.<field>` (unknown extensions as
//! `gpconnect:<Resource>.extension` with the extension's JSON). `meta.profile` is dropped.
//!
//! | canonical | from | lost or reduced | confidence |
//! |---|---|---|---|
//! | Problem | Condition (`clinicalStatus` active/recurrence → Active, else Inactive; significance extension major/minor → `significant`) | `assertedDate`, notes → attributes; `category` dropped (always problem-list-item) | high |
//! | Medication | MedicationStatement + Medication + MedicationRequest plan (prescription type → course; plan quantity) + `intent=order` requests → issues | issue-level recorder/status dropped; review date (`validityPeriod`), repeats allowed, last-issue extension → attributes; `status` intended/on-hold → Active, entered-in-error → Stopped (source status in provenance) | high |
//! | Allergy | AllergyIntolerance (active List + contained "Ended allergies") | only the first manifestation is the reaction (a richer `reaction` kept as attribute); verification status, category → attributes | high |
//! | Observation | uncategorised Observations (BP panel's `has-member` systolic/diastolic → two components) and DiagnosticReport results | report id/code/status/issued repeated as attributes on each result; Specimen not read; `effectivePeriod` → attribute | high |
//! | Immunisation | Immunization (`vaccineCode.text` → product) | `notGiven`, `primarySource` → attributes (not-given items are not asked for) | high |
//! | Consultation | Encounter (type text → kind, participant → clinician, period start) + its "Comment note" Observations → text | the consultation's topic/category Lists and linked items (they are in their own sections); period end, type codes → attributes | medium: other text-bearing entries of a consultation are not joined into `text` |
//! | Demographics | Patient (official/usual name, home postcode, managing Organization's ODS code) | telecom, other names/addresses, usual GP | high |
//!
//! Bundles are read with [`stu3`]: each resource one level deep, each member's JSON text kept
//! as sent and borrowed from the answer, and only the members a mapping uses deserialised into
//! small typed shapes (a 5,000-entry record is several megabytes of JSON; a full tree of it
//! took ~4× as long). Each section's answer is kept as received (no copy) and mapped on a
//! Tokio task of its own, so the sections of one record, asked for together, are mapped in
//! parallel on a multi-thread runtime (at most one mapping per worker at a time); the
//! observations section, the largest, maps its Observations in two halves, the second on a
//! scoped thread.
//!
//! Provenance: the practice's ODS code, `gp-connect`, retrieved = now, the author where the
//! Bundle names a practitioner (by name), the source status, `meta.versionId` where sent.
//! `recorded` is set only from a full instant (an Encounter's start): GP Connect's asserted
//! dates are dates, kept as attributes rather than widened into instants.
//!
//! # Appointments
//!
//! Slot search is one `GET Slot` (at most 14 days, whole days; the provider refuses a longer
//! window → `Refused`). Booking sends the slot's exact start and end, as the search gave them
//! in the [`FreeSlot`] the request carries; a slot without full times (not from a search) is
//! refused before anything is sent. GP Connect has no idempotency key, so Keel writes its key into
//! the appointment's comment ([`appointments`]). After a lost answer (or a `409
//! DUPLICATE_REJECTED`, as a retry of a landed booking gets) the adapter reads the patient's
//! appointments for that day: its own booking found → the receipt; not found → Unavailable
//! (nothing was made; a 409 without our booking → Refused, the slot is taken); the check
//! itself failing → OutcomeUnknown. Cancelling reads the appointment, then `PUT`s it with only
//! the status and reason changed under `If-Match`; a lost answer is checked the same way.
//!
//! # Probe
//!
//! `probe` reads the provider's CapabilityStatement (`GET {root}/metadata`, interaction
//! `…:rest:read:metadata-1`, token scope `organization/*.read`, nothing about a patient) and
//! maps it with [`metadata`]: Access Record Structured → find patient and the six section
//! reads; Slot search → free slots; Appointment create → book, update → cancel. A refusal
//! (4xx, or 501 from a provider without the interaction) is `Refused`; 429/5xx or no answer
//! `Unavailable`; a body that is not a CapabilityStatement `Malformed`.
//!
//! Tasks, entries and documents: [`IntegrationError::NotSupported`] (GP Connect Update Record
//! and Send Document are asynchronous MESH flows, not offered here). Patient identifiers never
//! reach the log: only interactions and statuses are logged.

pub mod appointments;
pub mod bundle;
pub mod map;
pub mod metadata;
pub mod request;
pub mod stu3;

use bytes::Bytes;
use keel_core::RequestContext;
use keel_core::integration::{
    BookingRequest, BoxFuture, CancellationRequest, DocumentRequest, EntryRequest, FreeSlot,
    IntegrationError, Interface, Operation, PatientAtPractice, PracticeConnection, PracticeSystem,
    SectionContent, TaskRequest, WriteReceipt, read_operation,
};
use keel_model::record::{Demographics, RecordSection};
use keel_model::{ClinicalDate, NhsNumber, OdsCode};
use reqwest::Method;
use serde_json::Value;

use crate::http::{self, Endpoint};
use map::{MapError, Source};
use request::{Consumer, Interaction};

/// The key of the provider ASID in a practice connection's local configuration.
pub const PROVIDER_ASID_KEY: &str = "gp-connect.provider-asid";

/// The provider ASID of `connection`'s practice, from its local configuration
/// ([`PROVIDER_ASID_KEY`]).
pub fn provider_asid(connection: &PracticeConnection) -> Option<&str> {
    connection
        .local_configuration
        .get(PROVIDER_ASID_KEY)
        .map(String::as_str)
}

/// One practice's GP Connect provider.
#[derive(Debug)]
pub struct GpConnectSystem {
    practice: OdsCode,
    endpoint: Endpoint,
    http: reqwest::Client,
    consumer: Consumer,
    provider_asid: String,
}

/// An answer: its status, ETag and body (as received: a structured record is megabytes).
struct Answer {
    status: u16,
    etag: Option<String>,
    body: Bytes,
}

impl Answer {
    /// The body as JSON (`Null` when empty or not JSON), for the small appointment answers.
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The Spine code of an error answer, or `""`.
    fn spine_code(&self) -> String {
        bundle::spine_code(&self.body)
    }
}

impl GpConnectSystem {
    /// The provider of `practice` at `endpoint` (its service root URL, which is also the
    /// token's audience), reached as `consumer`, with the practice's `provider_asid`.
    ///
    /// # Errors
    /// If the HTTP client cannot be set up.
    pub fn new(
        practice: OdsCode,
        endpoint: Endpoint,
        consumer: Consumer,
        provider_asid: impl Into<String>,
    ) -> Result<GpConnectSystem, reqwest::Error> {
        let http = http::client(&endpoint)?;
        Ok(GpConnectSystem {
            practice,
            endpoint,
            http,
            consumer,
            provider_asid: provider_asid.into(),
        })
    }

    /// A request with the SSP headers and a fresh token.
    fn request(
        &self,
        ctx: &RequestContext,
        interaction: Interaction,
        method: Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, IntegrationError> {
        let claims = request::claims(
            ctx,
            &self.consumer,
            &self.endpoint.base_url,
            interaction,
            request::unix_now(),
        )
        .map_err(|_| IntegrationError::Refused {
            practice: self.practice.clone(),
            reason: "GP Connect may be used for direct care only".into(),
        })?;
        Ok(self
            .http
            .request(method, self.endpoint.url(path))
            .header("Ssp-TraceID", http::request_id())
            .header("Ssp-From", &self.consumer.asid)
            .header("Ssp-To", &self.provider_asid)
            .header("Ssp-InteractionID", interaction.id())
            .header(
                "Authorization",
                format!("Bearer {}", request::unsigned_jwt(&claims)),
            )
            .header("Accept", "application/fhir+json")
            .header("X-Correlation-ID", ctx.correlation_id.as_str()))
    }

    /// Sends `request`; transport failures are classified by `failed`.
    async fn send(
        &self,
        interaction: Interaction,
        request: reqwest::RequestBuilder,
        failed: fn(&OdsCode, &Endpoint, &reqwest::Error) -> IntegrationError,
    ) -> Result<Answer, IntegrationError> {
        let response = request
            .send()
            .await
            .map_err(|e| failed(&self.practice, &self.endpoint, &e))?;
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response
            .bytes()
            .await
            .map_err(|e| failed(&self.practice, &self.endpoint, &e))?;
        tracing::debug!(
            interaction = interaction.id(),
            status,
            "GP Connect answered"
        );
        Ok(Answer { status, etag, body })
    }

    fn with_body(request: reqwest::RequestBuilder, body: &Value) -> reqwest::RequestBuilder {
        request
            .header("Content-Type", "application/fhir+json")
            .body(body.to_string())
    }

    /// `$gpc.getstructuredrecord` for `nhs_number` with `section`'s areas.
    async fn structured(
        &self,
        ctx: &RequestContext,
        nhs_number: &NhsNumber,
        section: Option<RecordSection>,
    ) -> Result<Answer, IntegrationError> {
        let operation = section.map_or(Operation::FindPatient, read_operation);
        let parameters =
            map::parameters(nhs_number, section).map_err(|e| self.map_failed(operation, e))?;
        let request = self.request(
            ctx,
            Interaction::GetStructuredRecord,
            Method::POST,
            "/Patient/$gpc.getstructuredrecord",
        )?;
        self.send(
            Interaction::GetStructuredRecord,
            Self::with_body(request, &parameters),
            http::read_failed,
        )
        .await
    }

    fn map_failed(&self, operation: Operation, error: MapError) -> IntegrationError {
        match error {
            MapError::AreaDisabled(parameter) => IntegrationError::NotSupported {
                practice: self.practice.clone(),
                operation,
                reason: format!("GP Connect {parameter} is switched off at this practice"),
            },
            MapError::NotOffered(section) => IntegrationError::NotSupported {
                practice: self.practice.clone(),
                operation,
                reason: format!("GP Connect has no structured {} area", section.key()),
            },
            MapError::Malformed(reason) => self.malformed(reason),
        }
    }

    fn malformed(&self, reason: impl Into<String>) -> IntegrationError {
        IntegrationError::Malformed {
            practice: self.practice.clone(),
            reason: reason.into(),
        }
    }

    fn refused(&self, reason: impl Into<String>) -> IntegrationError {
        IntegrationError::Refused {
            practice: self.practice.clone(),
            reason: reason.into(),
        }
    }

    fn not_supported(&self, operation: Operation, reason: &str) -> IntegrationError {
        IntegrationError::NotSupported {
            practice: self.practice.clone(),
            operation,
            reason: reason.into(),
        }
    }

    /// An error answer as what is safe to do next.
    fn failure(&self, operation: Operation, answer: &Answer) -> IntegrationError {
        let code = answer.spine_code();
        match (answer.status, code.as_str()) {
            (404, "PATIENT_NOT_FOUND") => IntegrationError::PatientNotFound {
                practice: self.practice.clone(),
            },
            (404, "ORGANISATION_NOT_FOUND") | (501, _) | (403, "ACCESS DENIED") => self
                .not_supported(
                    operation,
                    &format!("the GP Connect provider answered {code}"),
                ),
            (400 | 403 | 404 | 409 | 422, _) => {
                let code = if code.is_empty() {
                    "no Spine code"
                } else {
                    code.as_str()
                };
                self.refused(format!("HTTP {} ({code})", answer.status))
            }
            (status, _) => http::unexpected_status(&self.practice, status),
        }
    }

    fn source_nhs_number(
        &self,
        patient: &PatientAtPractice,
    ) -> Result<NhsNumber, IntegrationError> {
        patient.nhs_number.ok_or_else(|| {
            self.refused("GP Connect finds a record by NHS number; the patient has none")
        })
    }

    async fn read(
        &self,
        ctx: &RequestContext,
        patient: &PatientAtPractice,
        section: RecordSection,
    ) -> Result<SectionContent, IntegrationError> {
        let operation = read_operation(section);
        if section == RecordSection::Documents {
            return Err(self.not_supported(
                operation,
                "GP Connect Access Documents is not offered at this practice",
            ));
        }
        let nhs_number = self.source_nhs_number(patient)?;
        let answer = self.structured(ctx, &nhs_number, Some(section)).await?;
        if answer.status != 200 {
            return Err(self.failure(operation, &answer));
        }
        let retrieved = http::now();
        let practice = self.practice.clone();
        // Mapped on a task of its own, so that on a multi-thread runtime the sections of one
        // record (asked for together) are parsed and mapped in parallel rather than one after
        // another on the record's task; at most one mapping per runtime worker runs at once.
        let mapped = tokio::spawn(async move {
            let source = Source {
                practice: &practice,
                retrieved: &retrieved,
            };
            map::map_section(&answer.body, section, &source)
        })
        .await;
        match mapped {
            Ok(mapped) => mapped.map_err(|e| self.map_failed(operation, e)),
            Err(failed) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
            Err(_) => Err(IntegrationError::Unavailable {
                practice: self.practice.clone(),
                reason: "the runtime shut down while the answer was being read".into(),
            }),
        }
    }

    async fn find(
        &self,
        ctx: &RequestContext,
        nhs_number: NhsNumber,
    ) -> Result<Option<(PatientAtPractice, Demographics)>, IntegrationError> {
        let answer = self.structured(ctx, &nhs_number, None).await?;
        match answer.status {
            200 => {
                let demographics = map::map_patient(&answer.body)
                    .map_err(|e| self.map_failed(Operation::FindPatient, e))?;
                let patient = PatientAtPractice {
                    practice: self.practice.clone(),
                    source_patient_id: demographics.source_patient_id.clone(),
                    nhs_number: demographics.nhs_number.or(Some(nhs_number)),
                };
                Ok(Some((patient, demographics)))
            }
            404 if answer.spine_code() == "PATIENT_NOT_FOUND" => Ok(None),
            _ => Err(self.failure(Operation::FindPatient, &answer)),
        }
    }

    async fn slots(
        &self,
        ctx: &RequestContext,
        from: &ClinicalDate,
        to: &ClinicalDate,
    ) -> Result<Vec<FreeSlot>, IntegrationError> {
        let whole_day = |d: &ClinicalDate| d.precision() == keel_model::Precision::Day;
        if !whole_day(from) || !whole_day(to) {
            return Err(self.refused("GP Connect searches slots by whole days (YYYY-MM-DD)"));
        }
        let query = [
            ("start", format!("ge{from}")),
            ("end", format!("le{to}")),
            ("status", "free".to_string()),
            ("_include", "Slot:schedule".to_string()),
            (
                "_include:recurse",
                "Schedule:actor:Practitioner".to_string(),
            ),
        ];
        let request = self
            .request(ctx, Interaction::SearchSlots, Method::GET, "/Slot")?
            .query(&query);
        let answer = self
            .send(Interaction::SearchSlots, request, http::read_failed)
            .await?;
        if answer.status != 200 {
            return Err(self.failure(Operation::SearchFreeSlots, &answer));
        }
        appointments::map_slots(&answer.json()).map_err(|e| self.malformed(e))
    }

    async fn book(
        &self,
        ctx: &RequestContext,
        request: &BookingRequest,
    ) -> Result<WriteReceipt, IntegrationError> {
        let exact = |d: &ClinicalDate| d.precision() == keel_model::Precision::Moment;
        if !exact(&request.slot.start) || !exact(&request.slot.end) {
            return Err(self.refused(
                "GP Connect books a slot by its exact start and end; search for free slots first",
            ));
        }
        let organisation = ctx
            .organisation
            .as_ref()
            .unwrap_or(&self.consumer.organisation);
        let body = appointments::booking(request, organisation);
        let post = self.request(
            ctx,
            Interaction::CreateAppointment,
            Method::POST,
            "/Appointment",
        )?;
        let answer = match self
            .send(
                Interaction::CreateAppointment,
                Self::with_body(post, &body),
                http::write_failed,
            )
            .await
        {
            Ok(answer) => answer,
            Err(IntegrationError::OutcomeUnknown { reason, .. }) => {
                return match self.check_booking(ctx, request).await {
                    Ok(Some(receipt)) => Ok(receipt),
                    Ok(None) => Err(IntegrationError::Unavailable {
                        practice: self.practice.clone(),
                        reason: format!("{reason}; the booking was checked and not made"),
                    }),
                    Err(check) => Err(self.unknown(&reason, &check)),
                };
            }
            Err(other) => return Err(other),
        };
        match (answer.status, answer.spine_code().as_str()) {
            (201, _) => appointments::receipt(&answer.json(), answer.etag.as_deref())
                .map_err(|e| self.malformed(e)),
            (409, "DUPLICATE_REJECTED") => match self.check_booking(ctx, request).await {
                Ok(Some(receipt)) => Ok(receipt),
                Ok(None) => Err(self.refused("the slot is no longer free")),
                Err(check) => Err(self.unknown("the slot is taken", &check)),
            },
            _ => Err(self.failure(Operation::BookAppointment, &answer)),
        }
    }

    fn unknown(&self, what: &str, check: &IntegrationError) -> IntegrationError {
        IntegrationError::OutcomeUnknown {
            practice: self.practice.clone(),
            reason: format!("{what}, and the check could not be made ({check})"),
        }
    }

    /// Keel's booking of the slot among the patient's appointments of its day.
    async fn check_booking(
        &self,
        ctx: &RequestContext,
        request: &BookingRequest,
    ) -> Result<Option<WriteReceipt>, IntegrationError> {
        let day = request.slot.start.date_part();
        let path = format!("/Patient/{}/Appointment", request.patient.source_patient_id);
        let search = self
            .request(ctx, Interaction::PatientAppointments, Method::GET, &path)?
            .query(&[("start", format!("ge{day}")), ("start", format!("le{day}"))]);
        let answer = self
            .send(Interaction::PatientAppointments, search, http::read_failed)
            .await?;
        if answer.status != 200 {
            return Err(self.failure(Operation::BookAppointment, &answer));
        }
        Ok(appointments::find_booking(
            &answer.json(),
            &request.slot.source_id,
            &request.key,
        ))
    }

    /// The appointment `id` as the practice holds it now.
    async fn read_appointment(
        &self,
        ctx: &RequestContext,
        id: &str,
    ) -> Result<Answer, IntegrationError> {
        let get = self.request(
            ctx,
            Interaction::ReadAppointment,
            Method::GET,
            &format!("/Appointment/{id}"),
        )?;
        let answer = self
            .send(Interaction::ReadAppointment, get, http::read_failed)
            .await?;
        if answer.status == 200 {
            Ok(answer)
        } else {
            Err(self.failure(Operation::CancelAppointment, &answer))
        }
    }

    async fn cancel(
        &self,
        ctx: &RequestContext,
        request: &CancellationRequest,
    ) -> Result<WriteReceipt, IntegrationError> {
        let id = &request.appointment.source_id;
        let current = self.read_appointment(ctx, id).await?;
        let receipt = |answer: &Answer| {
            appointments::receipt(&answer.json(), answer.etag.as_deref())
                .map_err(|e| self.malformed(e))
        };
        match appointments::cancelled_reason(&current.json()) {
            Some(reason) if reason == request.reason => return receipt(&current),
            Some(_) => return Err(self.refused("the appointment is already cancelled")),
            None => {}
        }
        let version = match &request.appointment.version {
            Some(version) => version.clone(),
            None => receipt(&current)?.version.unwrap_or_else(|| "1".into()),
        };
        let body = appointments::cancellation(&current.json(), &request.reason);
        let put = self
            .request(
                ctx,
                Interaction::CancelAppointment,
                Method::PUT,
                &format!("/Appointment/{id}"),
            )?
            .header("If-Match", format!("W/\"{version}\""));
        let answer = match self
            .send(
                Interaction::CancelAppointment,
                Self::with_body(put, &body),
                http::write_failed,
            )
            .await
        {
            Ok(answer) => answer,
            Err(IntegrationError::OutcomeUnknown { reason, .. }) => {
                return match self.read_appointment(ctx, id).await {
                    Ok(now)
                        if appointments::cancelled_reason(&now.json()) == Some(&request.reason) =>
                    {
                        receipt(&now)
                    }
                    Ok(_) => Err(IntegrationError::Unavailable {
                        practice: self.practice.clone(),
                        reason: format!(
                            "{reason}; the appointment was checked and is not cancelled"
                        ),
                    }),
                    Err(check) => Err(self.unknown(&reason, &check)),
                };
            }
            Err(other) => return Err(other),
        };
        match answer.status {
            200 => receipt(&answer),
            _ => Err(self.failure(Operation::CancelAppointment, &answer)),
        }
    }

    /// What the provider says it offers: its CapabilityStatement, mapped by [`metadata`].
    async fn capabilities(
        &self,
        ctx: &RequestContext,
    ) -> Result<Option<Vec<Operation>>, IntegrationError> {
        let request = self.request(ctx, Interaction::ReadMetadata, Method::GET, "/metadata")?;
        let answer = self
            .send(Interaction::ReadMetadata, request, http::read_failed)
            .await?;
        match answer.status {
            200 => metadata::offered_operations(&answer.body)
                .map(Some)
                .map_err(|e| self.malformed(e)),
            400..=499 | 501 => {
                let code = answer.spine_code();
                let code = if code.is_empty() {
                    "no Spine code"
                } else {
                    code.as_str()
                };
                Err(self.refused(format!(
                    "the CapabilityStatement was refused: HTTP {} ({code})",
                    answer.status
                )))
            }
            status => Err(http::unexpected_status(&self.practice, status)),
        }
    }

    fn unsupported_write<'a>(
        &'a self,
        operation: Operation,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        Box::pin(async move {
            Err(self.not_supported(
                operation,
                "GP Connect Update Record and Send Document are asynchronous MESH flows, not offered here",
            ))
        })
    }
}

impl PracticeSystem for GpConnectSystem {
    fn practice(&self) -> &OdsCode {
        &self.practice
    }

    fn interface(&self) -> Interface {
        Interface::GpConnect
    }

    fn probe<'a>(
        &'a self,
        ctx: &'a RequestContext,
    ) -> BoxFuture<'a, Result<Option<Vec<Operation>>, IntegrationError>> {
        Box::pin(async move { self.capabilities(ctx).await })
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
        Box::pin(self.read(ctx, patient, section))
    }

    fn search_free_slots<'a>(
        &'a self,
        ctx: &'a RequestContext,
        from: &'a ClinicalDate,
        to: &'a ClinicalDate,
    ) -> BoxFuture<'a, Result<Vec<FreeSlot>, IntegrationError>> {
        Box::pin(self.slots(ctx, from, to))
    }

    fn book_appointment<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a BookingRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        Box::pin(self.book(ctx, request))
    }

    fn cancel_appointment<'a>(
        &'a self,
        ctx: &'a RequestContext,
        request: &'a CancellationRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        Box::pin(self.cancel(ctx, request))
    }

    fn create_task<'a>(
        &'a self,
        _ctx: &'a RequestContext,
        _request: &'a TaskRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        self.unsupported_write(Operation::CreateTask)
    }

    fn add_entry<'a>(
        &'a self,
        _ctx: &'a RequestContext,
        _request: &'a EntryRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        self.unsupported_write(Operation::AddEntry)
    }

    fn attach_document<'a>(
        &'a self,
        _ctx: &'a RequestContext,
        _request: &'a DocumentRequest,
    ) -> BoxFuture<'a, Result<WriteReceipt, IntegrationError>> {
        self.unsupported_write(Operation::AttachDocument)
    }
}
