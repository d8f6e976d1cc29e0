//! The one table that maps every core error to an HTTP status and an OperationOutcome that
//! says what happened and what is safe to do next.

use keel_core::FhirError;
use keel_core::audit::AuditOutcome;
use keel_core::store::StoreError;
use keel_fhir::search::SearchError;
use keel_fhir::validate::{IssueKind, Severity};
use keel_model::{IssueSeverity, IssueType, OperationOutcome};

/// Status code and OperationOutcome for an error.
pub fn error_response_parts(error: &FhirError) -> (u16, OperationOutcome) {
    let status = status_of(error);
    (status, outcome_of(error, None))
}

pub fn status_of(error: &FhirError) -> u16 {
    match error {
        FhirError::NotFound { .. }
        | FhirError::Concealed { .. }
        | FhirError::VersionNotFound { .. }
        | FhirError::UnknownResourceType(_) => 404,
        FhirError::Gone { .. } => 410,
        FhirError::BadRequest(_)
        | FhirError::Search(_)
        | FhirError::NotSupported(_)
        | FhirError::ConditionNotMatched { .. } => 400,
        FhirError::Invalid(_) | FhirError::IdempotencyKeyReused => 422,
        FhirError::VersionConflict { .. } | FhirError::MultipleMatches { .. } => 412,
        FhirError::Conflict(_) => 409,
        FhirError::Forbidden { .. } | FhirError::Withheld { .. } => 403,
        FhirError::InEntry { source, .. } => status_of(source),
        FhirError::Store(StoreError::Unavailable(_)) | FhirError::AuditUnavailable(_) => 503,
        FhirError::Store(StoreError::Conflict(_)) => 409,
        FhirError::Store(StoreError::Integrity(_)) => 500,
        FhirError::Store(StoreError::Unsupported(_)) => 400,
    }
}

/// The audit outcome of a request that failed with `error`: refusals by access control
/// (including those shown as "not known") are denials, everything else an error.
pub fn audit_outcome(error: &FhirError) -> AuditOutcome {
    match error {
        FhirError::Forbidden { what, reasons } => AuditOutcome::Deny {
            reason: if reasons.is_empty() {
                what.clone()
            } else {
                let codes: Vec<&str> = reasons.iter().map(|(code, _)| code.as_str()).collect();
                format!("{what} ({})", codes.join(", "))
            },
        },
        FhirError::Withheld { .. } => AuditOutcome::Deny {
            reason: "withheld: a sensitive entry the role and purpose do not show".into(),
        },
        FhirError::Concealed { .. } => AuditOutcome::Deny {
            reason:
                "concealed: a restricted patient without a relationship (answered as not known)"
                    .into(),
        },
        FhirError::InEntry { source, .. } => audit_outcome(source),
        other => AuditOutcome::Error {
            message: format!("{} ({})", other, status_of(other)),
        },
    }
}

/// What the caller can safely do next, for each kind of failure.
fn advice(error: &FhirError) -> &'static str {
    match error {
        FhirError::NotFound { .. }
        | FhirError::Concealed { .. }
        | FhirError::VersionNotFound { .. } => {
            "Nothing was changed. Check the id; it may belong to another server."
        }
        FhirError::AuditUnavailable(_) => {
            "Nothing was returned or changed, because the audit trail could not record the request. It is safe to send it again; tell the operator if it persists."
        }
        FhirError::UnknownResourceType(_) => {
            "Nothing was changed. Use an R4 resource type; the server's CapabilityStatement at /fhir/metadata lists them."
        }
        FhirError::Gone { .. } => {
            "The resource was deleted; its earlier versions remain readable through _history."
        }
        FhirError::BadRequest(_) | FhirError::Search(_) | FhirError::ConditionNotMatched { .. } => {
            "Nothing was changed. Correct the request and send it again."
        }
        FhirError::NotSupported(_) => {
            "Nothing was changed. This server does not support that; see /fhir/metadata."
        }
        FhirError::Invalid(_) => {
            "Nothing was stored. Correct the listed elements and send the resource again."
        }
        FhirError::VersionConflict { .. } => {
            "Nothing was changed. Read the current version, reapply your change and send it with the new If-Match."
        }
        FhirError::MultipleMatches { .. } => {
            "Nothing was changed. Make the condition specific enough to match one resource."
        }
        FhirError::Conflict(_) | FhirError::Store(StoreError::Conflict(_)) => {
            "Nothing was changed. It is safe to send the same request again."
        }
        FhirError::IdempotencyKeyReused => {
            "Nothing was changed. Send a new request with a new key; repeat a request only with its own key."
        }
        FhirError::InEntry { .. } => {
            "A transaction is all or nothing: nothing in it was stored. Correct the entry and send the Bundle again."
        }
        FhirError::Store(StoreError::Unavailable(_)) => {
            "The record store is unavailable. Reads are safe to retry; for writes, read first to check whether it happened."
        }
        FhirError::Store(StoreError::Integrity(_)) => {
            "Do not retry. Tell the operator: the store reported an integrity error."
        }
        FhirError::Store(StoreError::Unsupported(_)) => "Nothing was changed. Simplify the query.",
        FhirError::Forbidden { .. } => {
            "Nothing was read or changed. Sending the same request again will be refused again; ask for the role, organisation or purpose it needs."
        }
        FhirError::Withheld { .. } => {
            "The entry exists and is withheld. It is shown at the patient's registered practice to roles that may see sensitive entries, for direct care."
        }
    }
}

/// The OperationOutcome of an error; `entry` prefixes expressions for Bundle entries.
pub fn outcome_of(error: &FhirError, entry: Option<usize>) -> OperationOutcome {
    let prefix = entry.map(|i| format!("Bundle.entry[{i}].resource."));
    let mut outcome = OperationOutcome::new();
    match error {
        FhirError::InEntry { index, source } => return outcome_of_entry(source, *index),
        FhirError::Invalid(issues) => {
            for issue in issues {
                let severity = match issue.severity {
                    Severity::Error => IssueSeverity::Error,
                    Severity::Warning => IssueSeverity::Warning,
                };
                let mut next =
                    outcome.issue(severity, issue_type_of(issue.kind), issue.message.clone());
                if !issue.location.is_empty() {
                    let location = match &prefix {
                        Some(p) => format!("{p}{}", issue.location),
                        None => issue.location.clone(),
                    };
                    next = next.at(location);
                }
                outcome = next;
            }
            return outcome.information(IssueType::Informational, advice(error));
        }
        _ => {}
    }
    let code = match error {
        FhirError::NotFound { .. }
        | FhirError::Concealed { .. }
        | FhirError::VersionNotFound { .. } => IssueType::NotFound,
        FhirError::AuditUnavailable(_) => IssueType::Transient,
        FhirError::UnknownResourceType(_) | FhirError::NotSupported(_) => IssueType::NotSupported,
        FhirError::Gone { .. } => IssueType::Deleted,
        FhirError::Search(SearchError::Unknown(_)) => IssueType::NotSupported,
        FhirError::BadRequest(_) | FhirError::Search(_) => IssueType::Invalid,
        FhirError::ConditionNotMatched { .. } => IssueType::NotFound,
        FhirError::VersionConflict { .. }
        | FhirError::Conflict(_)
        | FhirError::IdempotencyKeyReused => IssueType::Conflict,
        FhirError::MultipleMatches { .. } => IssueType::MultipleMatches,
        FhirError::Store(StoreError::Unavailable(_)) => IssueType::Transient,
        FhirError::Store(StoreError::Conflict(_)) => IssueType::Conflict,
        FhirError::Store(StoreError::Integrity(_)) => IssueType::Exception,
        FhirError::Store(StoreError::Unsupported(_)) => IssueType::TooCostly,
        FhirError::Invalid(_) | FhirError::InEntry { .. } => IssueType::Processing,
        FhirError::Forbidden { .. } => IssueType::Forbidden,
        FhirError::Withheld { .. } => IssueType::Suppressed,
    };
    if let FhirError::Forbidden { reasons, .. } = error {
        for (code, words) in reasons {
            outcome = outcome.error(IssueType::Forbidden, format!("{words} ({code})"));
        }
    }
    let mut next = outcome
        .error(code, error.to_string())
        .with_details(advice(error));
    if let Some(i) = entry {
        next = next.at(format!("Bundle.entry[{i}]"));
    }
    next
}

fn outcome_of_entry(source: &FhirError, index: usize) -> OperationOutcome {
    let inner = outcome_of(source, Some(index));
    let mut outcome = OperationOutcome::new();
    for issue in inner.issues() {
        let mut next = outcome.issue(
            issue.severity,
            issue.code,
            format!("Bundle entry {index}: {}", issue.diagnostics),
        );
        for e in &issue.expression {
            next = next.at(e.clone());
        }
        if let Some(text) = &issue.details_text {
            next = next.with_details(text.clone());
        }
        outcome = next;
    }
    outcome
}

fn issue_type_of(kind: IssueKind) -> IssueType {
    match kind {
        IssueKind::Structure => IssueType::Structure,
        IssueKind::Required => IssueType::Required,
        IssueKind::Value => IssueType::Value,
        IssueKind::CodeInvalid => IssueType::CodeInvalid,
        IssueKind::TooLong => IssueType::TooLong,
        IssueKind::TooDeep => IssueType::TooCostly,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_status_and_advice() {
        let errors = vec![
            FhirError::NotFound {
                resource_type: "Patient".into(),
                id: "x".into(),
            },
            FhirError::Gone {
                resource_type: "Patient".into(),
                id: "x".into(),
                version: 2,
            },
            FhirError::BadRequest("bad".into()),
            FhirError::Invalid(vec![]),
            FhirError::VersionConflict {
                resource_type: "Patient".into(),
                id: "x".into(),
                expected: 1,
                current: 2,
            },
            FhirError::MultipleMatches {
                condition: "identifier=a".into(),
            },
            FhirError::Store(StoreError::Unavailable("down".into())),
            FhirError::BadRequest("inner".into()).in_entry(3),
            FhirError::AuditUnavailable("audit log unavailable".into()),
        ];
        let statuses: Vec<u16> = errors.iter().map(status_of).collect();
        assert_eq!(statuses, vec![404, 410, 400, 422, 412, 412, 503, 400, 503]);
        for e in &errors {
            let json = outcome_of(e, None).to_json();
            assert_eq!(json["resourceType"], "OperationOutcome");
            assert!(
                !json["issue"].as_array().map(Vec::is_empty).unwrap_or(true),
                "{e:?}"
            );
        }
        let entry = outcome_of(&errors[7], None).to_json();
        assert_eq!(entry["issue"][0]["expression"][0], "Bundle.entry[3]");
    }

    #[test]
    fn a_concealed_resource_reads_exactly_as_an_unknown_one() {
        let unknown = FhirError::NotFound {
            resource_type: "Patient".into(),
            id: "p1".into(),
        };
        let concealed = FhirError::Concealed {
            resource_type: "Patient".into(),
            id: "p1".into(),
        };
        assert_eq!(status_of(&unknown), status_of(&concealed));
        assert_eq!(
            outcome_of(&unknown, None).to_json(),
            outcome_of(&concealed, None).to_json()
        );
        assert!(matches!(
            audit_outcome(&concealed),
            AuditOutcome::Deny { .. }
        ));
        assert!(matches!(
            audit_outcome(&unknown),
            AuditOutcome::Error { .. }
        ));
    }
}
