//! The audit trail read back as FHIR AuditEvents, for the information-governance role only.

use super::FhirService;
use crate::audit::{AuditPage, AuditQuery, AuditRecord, RequestAudit, search_audit};
use crate::context::RequestContext;
use crate::error::{FhirError, FhirResult};
use crate::policy::Function;

impl FhirService {
    /// `GET /fhir/AuditEvent?...`: matching records the actor may see, newest first.
    pub fn search_audit(
        &self,
        ctx: &RequestContext,
        params: &[(String, String)],
        audit: &mut RequestAudit,
    ) -> FhirResult<AuditPage> {
        audit.resource("AuditEvent".into());
        let query = AuditQuery::parse(params).map_err(|e| FhirError::BadRequest(e.to_string()))?;
        let mut reader = self.store.reader()?;
        let view = self.audit_reader(ctx, audit)?;
        search_audit(&mut *reader, &query, |record| {
            view.sees_audit_of(record.organisation.as_ref())
        })
        .map_err(|e| match e {
            crate::audit::AuditSearchError::Store(e) => FhirError::Store(e),
            other => FhirError::Store(crate::store::StoreError::Integrity(other.to_string())),
        })
    }

    /// `GET /fhir/AuditEvent/{sequence}`.
    pub fn read_audit(
        &self,
        ctx: &RequestContext,
        id: &str,
        audit: &mut RequestAudit,
    ) -> FhirResult<(u64, AuditRecord)> {
        audit.resource(format!("AuditEvent/{id}"));
        let not_found = || FhirError::NotFound {
            resource_type: "AuditEvent".into(),
            id: id.into(),
        };
        let sequence: u64 = id.parse().map_err(|_| not_found())?;
        let mut reader = self.store.reader()?;
        let view = self.audit_reader(ctx, audit)?;
        let entry = reader
            .audit_entries(sequence, 1)?
            .into_iter()
            .find(|e| e.sequence == sequence)
            .ok_or_else(not_found)?;
        let record: AuditRecord = serde_json::from_slice(&entry.record).map_err(|e| {
            FhirError::Store(crate::store::StoreError::Integrity(format!(
                "audit entry {sequence} does not decode: {e}"
            )))
        })?;
        if !view.sees_audit_of(record.organisation.as_ref()) {
            return Err(not_found());
        }
        Ok((sequence, record))
    }

    /// The view of an actor allowed to read the audit trail, or the refusal saying why not.
    fn audit_reader(
        &self,
        ctx: &RequestContext,
        audit: &mut RequestAudit,
    ) -> FhirResult<crate::access::AccessView> {
        let view = self.view(ctx, audit)?;
        if let Some(decision) = view.decide_in_general(Function::ReadAudit) {
            audit.decided(&decision);
            if !decision.is_permit() {
                return Err(crate::access::forbidden(
                    "reading the audit trail needs an information-governance role (R0001 or R5105) acting for operations",
                    &decision,
                ));
            }
        }
        Ok(view)
    }
}
