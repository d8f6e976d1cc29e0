//! Bulk export (FHIR Bulk Data Access, system level): a kick-off request enqueues an export
//! job in the transaction of its audit record; whichever node claims the job writes the
//! resources the requester may read as NDJSON parts; the requester polls the job and
//! downloads the parts. What the export may contain is decided when it runs, under the
//! requester's context and the policy then in force, exactly as their searches would be.
//!
//! Paging follows the store's own order (insertion order of resources), so resources created
//! while an export runs may be included; a resource deleted during the run can shift a page and
//! be missed by that export (the next one, with `_since`, has the rest). Pages are read by
//! offset, so a type's export costs time that grows with the square of its size: fine for a
//! practice or a PCN, not yet for a store of tens of millions of one type.

use super::FhirService;
use crate::audit::RequestAudit;
use crate::context::{Actor, CorrelationId, PurposeOfUse, RequestContext};
use crate::error::{FhirError, FhirResult};
use crate::jobs::{Claim, Job, JobOutput, JobState, Lease, NewJob};
use crate::policy::Function;
use keel_fhir::search::Handling;
use keel_model::OdsCode;
use serde::{Deserialize, Serialize};

/// The job kind of a bulk export.
pub const EXPORT_JOB: &str = "export";
/// Resources read per search page while exporting.
const PAGE: usize = 1000;
/// Resources per output part (NDJSON file).
const PART_RESOURCES: usize = 10_000;

/// What a kick-off asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRequest {
    /// `_type`: the resource types to export; `None` for every type the requester may read.
    pub types: Option<Vec<String>>,
    /// `_since` (ms): only resources updated at or after it.
    pub since: Option<i64>,
    /// The kick-off URL as requested, for the manifest.
    pub request_url: String,
}

/// Where an export is, for the requester polling it.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportStatus {
    InProgress { progress: Option<String> },
    Complete(ExportManifest),
    Failed { message: String },
}

/// A finished export: the manifest's content.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportManifest {
    /// When the export was asked for (ms): resources updated later may or may not be in it.
    pub transaction_time: i64,
    pub request: String,
    pub outputs: Vec<JobOutput>,
}

/// The job's payload: the requester's context (enough to decide again) and the request.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExportJob {
    requester: Requester,
    types: Vec<String>,
    since: Option<i64>,
    request: String,
    transaction_time: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum RequesterActor {
    User {
        user_id: String,
        role_code: String,
        activity_codes: Vec<String>,
    },
    System {
        client_id: String,
        scopes: Vec<String>,
    },
    LocalDevelopment,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Requester {
    actor: RequesterActor,
    organisation: Option<String>,
    purpose: PurposeOfUse,
    correlation_id: CorrelationId,
}

impl Requester {
    fn of(ctx: &RequestContext) -> Requester {
        Requester {
            actor: match &ctx.actor {
                Actor::User {
                    user_id,
                    role_code,
                    activity_codes,
                } => RequesterActor::User {
                    user_id: user_id.clone(),
                    role_code: role_code.clone(),
                    activity_codes: activity_codes.clone(),
                },
                Actor::System { client_id, scopes } => RequesterActor::System {
                    client_id: client_id.clone(),
                    scopes: scopes.clone(),
                },
                Actor::LocalDevelopment => RequesterActor::LocalDevelopment,
            },
            organisation: ctx.organisation.as_ref().map(|o| o.as_str().to_string()),
            purpose: ctx.purpose,
            correlation_id: ctx.correlation_id.clone(),
        }
    }

    fn context(&self) -> FhirResult<RequestContext> {
        let organisation = match &self.organisation {
            Some(code) => Some(OdsCode::parse(code).map_err(|e| {
                FhirError::BadRequest(format!("the export's organisation is not valid: {e}"))
            })?),
            None => None,
        };
        Ok(RequestContext {
            actor: match &self.actor {
                RequesterActor::User {
                    user_id,
                    role_code,
                    activity_codes,
                } => Actor::User {
                    user_id: user_id.clone(),
                    role_code: role_code.clone(),
                    activity_codes: activity_codes.clone(),
                },
                RequesterActor::System { client_id, scopes } => Actor::System {
                    client_id: client_id.clone(),
                    scopes: scopes.clone(),
                },
                RequesterActor::LocalDevelopment => Actor::LocalDevelopment,
            },
            organisation,
            purpose: self.purpose,
            correlation_id: self.correlation_id.clone(),
            break_glass: None,
        })
    }

    /// Is `ctx` the same actor, acting for the same organisation? Only they see the export.
    fn is(&self, ctx: &RequestContext) -> bool {
        let same_actor = match (&self.actor, &ctx.actor) {
            (RequesterActor::User { user_id: a, .. }, Actor::User { user_id: b, .. }) => a == b,
            (RequesterActor::System { client_id: a, .. }, Actor::System { client_id: b, .. }) => {
                a == b
            }
            (RequesterActor::LocalDevelopment, Actor::LocalDevelopment) => true,
            _ => false,
        };
        same_actor && self.organisation.as_deref() == ctx.organisation.as_ref().map(|o| o.as_str())
    }
}

/// The kick-off's transaction result: the job's id (nothing is written to the record).
struct Enqueued(u64);

impl super::write::Written for Enqueued {
    fn written(&self) -> Option<&crate::store::StoredResource> {
        None
    }
    fn replay_record(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "job": self.0 }))
    }
    fn replay(_: &mut dyn crate::store::StoreTx, record: &serde_json::Value) -> FhirResult<Self> {
        record["job"]
            .as_u64()
            .map(Enqueued)
            .ok_or_else(super::idempotency::unreadable_record)
    }
}

impl FhirService {
    /// Decides on the export and enqueues its job with the request's audit record; returns
    /// the job's id.
    pub fn kick_off_export(
        &self,
        ctx: &RequestContext,
        request: &ExportRequest,
        audit: &mut RequestAudit,
    ) -> FhirResult<u64> {
        audit.resource("$export".to_string());
        if ctx.break_glass.is_some() {
            return Err(FhirError::Forbidden {
                what: "break-glass is for one patient's care and does not extend to a bulk export; ask again without it".into(),
                reasons: Vec::new(),
            });
        }
        let view = self.view(ctx, audit)?;
        if let Some(decision) = view.decide_in_general(Function::Export) {
            audit.decided(&decision);
            if !decision.is_permit() {
                return Err(crate::access::forbidden(
                    "a bulk export needs a role (or SMART scope) granted the export function for this purpose",
                    &decision,
                ));
            }
        }
        let types = match &request.types {
            Some(types) => {
                for t in types {
                    self.check_type(t)?;
                    view.check_type(t)?;
                }
                types.clone()
            }
            None => self
                .defs
                .resource_types()
                .filter(|t| view.check_type(t).is_ok())
                .map(str::to_string)
                .collect(),
        };
        let job = ExportJob {
            requester: Requester::of(ctx),
            types,
            since: request.since,
            request: request.request_url.clone(),
            transaction_time: self.now(),
        };
        let payload = serde_json::to_string(&job)
            .map_err(|e| FhirError::BadRequest(format!("the export cannot be recorded: {e}")))?;
        let now = self.now();
        let Enqueued(id) = self.in_audited_transaction(ctx, audit, |tx, _| {
            Ok(Enqueued(tx.enqueue_job(&NewJob {
                kind: EXPORT_JOB.into(),
                payload,
                now,
            })?))
        })?;
        Ok(id)
    }

    /// The export's state, for its requester only (anyone else is told it does not exist).
    pub fn export_status(
        &self,
        ctx: &RequestContext,
        id: u64,
        audit: &mut RequestAudit,
    ) -> FhirResult<ExportStatus> {
        let mut reader = self.store.reader()?;
        let (job, spec) = self.own_export(ctx, &mut *reader, id, audit)?;
        Ok(match job.state {
            JobState::Queued | JobState::Running => ExportStatus::InProgress {
                progress: job.progress,
            },
            JobState::Done => ExportStatus::Complete(ExportManifest {
                transaction_time: spec.transaction_time,
                request: spec.request,
                outputs: reader.job_outputs(id)?,
            }),
            JobState::Failed => ExportStatus::Failed {
                message: job.result.unwrap_or_else(|| "the export failed".into()),
            },
            JobState::Cancelled => return Err(export_not_found(id)),
        })
    }

    /// One NDJSON part of a finished export.
    pub fn export_output(
        &self,
        ctx: &RequestContext,
        id: u64,
        part: u32,
        audit: &mut RequestAudit,
    ) -> FhirResult<String> {
        let mut reader = self.store.reader()?;
        let (job, _) = self.own_export(ctx, &mut *reader, id, audit)?;
        if job.state != JobState::Done {
            return Err(export_not_found(id));
        }
        reader
            .job_output_content(id, part)?
            .ok_or_else(|| export_not_found(id))
    }

    /// Cancels an export: a running one stops, a finished one's parts are deleted (the Bulk
    /// Data client's way of saying it has them).
    pub fn cancel_export(
        &self,
        ctx: &RequestContext,
        id: u64,
        audit: &mut RequestAudit,
    ) -> FhirResult<()> {
        {
            let mut reader = self.store.reader()?;
            self.own_export(ctx, &mut *reader, id, audit)?;
        }
        let now = self.now();
        self.in_audited_transaction(ctx, audit, |tx, _| {
            if tx.cancel_job(id, now)? {
                Ok(Enqueued(id))
            } else {
                Err(export_not_found(id))
            }
        })?;
        Ok(())
    }

    fn own_export(
        &self,
        ctx: &RequestContext,
        reader: &mut dyn crate::store::StoreRead,
        id: u64,
        audit: &mut RequestAudit,
    ) -> FhirResult<(Job, ExportJob)> {
        audit.resource(format!("$export/{id}"));
        let job = reader
            .job(id)?
            .filter(|j| j.kind == EXPORT_JOB)
            .ok_or_else(|| export_not_found(id))?;
        let spec: ExportJob = serde_json::from_str(&job.payload)
            .map_err(|_| FhirError::Conflict(format!("export {id} is not readable")))?;
        if !spec.requester.is(ctx) {
            return Err(export_not_found(id));
        }
        Ok((job, spec))
    }

    /// Claims the next export job (queued, or one whose node stopped renewing its lease) for
    /// `node` and runs it to its end. Returns the job's id, or `None` when there was none.
    pub fn run_next_export(&self, node: &str, lease_millis: i64) -> FhirResult<Option<u64>> {
        let now = self.now();
        // An idle worker only reads: no write transaction (nor the write lock) unless there is
        // a job to claim.
        if self
            .store
            .reader()?
            .claimable_job(&[EXPORT_JOB], now)?
            .is_none()
        {
            return Ok(None);
        }
        let job = {
            let mut tx = self.store.begin()?;
            let job = tx.claim_job(&Claim {
                kinds: &[EXPORT_JOB],
                owner: node,
                now,
                lease_until: now + lease_millis,
            })?;
            tx.commit()?;
            job
        };
        let Some(job) = job else {
            return Ok(None);
        };
        let lease = job
            .lease()
            .ok_or_else(|| FhirError::Conflict("a claimed job has no lease".into()))?;
        let run = ExportRun {
            service: self,
            lease,
            lease_millis,
            renewed: now,
            part: 0,
        };
        run.run(&job)?;
        Ok(Some(job.id))
    }
}

fn export_not_found(id: u64) -> FhirError {
    FhirError::NotFound {
        resource_type: "$export".into(),
        id: id.to_string(),
    }
}

/// One attempt at an export job.
struct ExportRun<'a> {
    service: &'a FhirService,
    lease: Lease,
    lease_millis: i64,
    /// When the lease was last renewed (ms).
    renewed: i64,
    /// The last part written.
    part: u32,
}

/// How an attempt ended early.
enum Stop {
    /// Another node holds the job now (this one's lease ended): leave everything to it.
    LostLease,
    Failed(FhirError),
}

impl From<FhirError> for Stop {
    fn from(e: FhirError) -> Stop {
        Stop::Failed(e)
    }
}

impl From<crate::store::StoreError> for Stop {
    fn from(e: crate::store::StoreError) -> Stop {
        Stop::Failed(e.into())
    }
}

impl ExportRun<'_> {
    fn run(mut self, job: &Job) -> FhirResult<()> {
        let outcome = serde_json::from_str::<ExportJob>(&job.payload)
            .map_err(|e| Stop::Failed(FhirError::BadRequest(format!("unreadable export job: {e}"))))
            .and_then(|spec| self.export(&spec));
        let (state, result) = match outcome {
            Ok(total) => (JobState::Done, format!("{total} resources")),
            Err(Stop::LostLease) => return Ok(()),
            // A store that is unavailable may be back for the next attempt: the lease ends and
            // another claim retries the whole export.
            Err(Stop::Failed(FhirError::Store(e))) => return Err(FhirError::Store(e)),
            Err(Stop::Failed(e)) => (JobState::Failed, e.to_string()),
        };
        let mut tx = self.service.store.begin()?;
        if tx.finish_job(&self.lease, state, &result, self.service.now())? {
            tx.commit()?;
        }
        Ok(())
    }

    /// Writes every type's resources in parts; returns how many.
    fn export(&mut self, spec: &ExportJob) -> Result<u64, Stop> {
        let ctx = spec.requester.context()?;
        let mut total = 0;
        for resource_type in &spec.types {
            let mut lines = String::new();
            let mut in_part = 0usize;
            let mut offset = 0usize;
            loop {
                let mut params = vec![
                    ("_count".to_string(), PAGE.to_string()),
                    ("_offset".to_string(), offset.to_string()),
                ];
                if let Some(since) = spec.since {
                    params.push((
                        "_lastUpdated".to_string(),
                        format!("ge{}", keel_fhir::datetime::format_instant(since)),
                    ));
                }
                let query = self
                    .service
                    .parse_search(resource_type, &params, Handling::Strict)?;
                // Each page is decided as the requester's own search would be; the export's
                // audit record is its kick-off.
                let page = self
                    .service
                    .search(&ctx, &query, &mut RequestAudit::new("export"))?;
                let found = page.matches.len();
                for resource in page.matches {
                    if let Some(body) = resource.body {
                        lines.push_str(&body);
                        lines.push('\n');
                        in_part += 1;
                    }
                }
                if in_part >= PART_RESOURCES || (found < PAGE && in_part > 0) {
                    self.write_part(resource_type, in_part, &lines, total + in_part as u64)?;
                    total += in_part as u64;
                    lines.clear();
                    in_part = 0;
                } else {
                    self.keep_lease(total + in_part as u64)?;
                }
                if found < PAGE {
                    break;
                }
                offset += PAGE;
            }
        }
        Ok(total)
    }

    fn write_part(
        &mut self,
        resource_type: &str,
        count: usize,
        lines: &str,
        so_far: u64,
    ) -> Result<(), Stop> {
        let now = self.service.now();
        let mut tx = self.service.store.begin()?;
        let progress = format!("{so_far} resources exported");
        if !tx.renew_job_lease(&self.lease, now, now + self.lease_millis, &progress)? {
            return Err(Stop::LostLease);
        }
        let output = JobOutput {
            part: self.part + 1,
            name: resource_type.to_string(),
            count: count as u64,
        };
        if !tx.add_job_output(&self.lease, &output, lines)? {
            return Err(Stop::LostLease);
        }
        tx.commit()?;
        self.part += 1;
        self.renewed = now;
        Ok(())
    }

    /// Renews the lease once a third of it has passed.
    fn keep_lease(&mut self, so_far: u64) -> Result<(), Stop> {
        let now = self.service.now();
        if now - self.renewed < self.lease_millis / 3 {
            return Ok(());
        }
        let mut tx = self.service.store.begin()?;
        let progress = format!("{so_far} resources read");
        if !tx.renew_job_lease(&self.lease, now, now + self.lease_millis, &progress)? {
            return Err(Stop::LostLease);
        }
        tx.commit()?;
        self.renewed = now;
        Ok(())
    }
}
