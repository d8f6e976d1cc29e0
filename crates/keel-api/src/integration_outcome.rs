//! The table that maps integration failures (practice directory, federated record, adapters)
//! to an HTTP status and an OperationOutcome saying what happened and what is safe to do next.
//! The FHIR store's errors have their own table in [`crate::outcome`].

use keel_core::integration::IntegrationError;
use keel_integrations::directory::{DirectoryError, RecordError};
use keel_model::{IssueType, OperationOutcome};

/// Status and OperationOutcome for an adapter failure.
pub fn integration_error(error: &IntegrationError) -> (u16, OperationOutcome) {
    let (status, code, advice) = match error {
        IntegrationError::NotSupported { .. } => (
            422,
            IssueType::NotSupported,
            "Nothing was sent to the practice. The practice's capability profile (GET /api/practices/{ods}/capabilities) says what it supports.",
        ),
        IntegrationError::Unavailable { .. } => (
            503,
            IssueType::Transient,
            "Nothing was changed. Reads are safe to repeat later.",
        ),
        IntegrationError::PatientNotFound { .. } => (
            404,
            IssueType::NotFound,
            "Nothing was changed. Check the NHS number and the patient's registered practice.",
        ),
        IntegrationError::Refused { .. } => (
            422,
            IssueType::BusinessRule,
            "The practice refused it; sending the same request again will be refused again.",
        ),
        IntegrationError::OutcomeUnknown { .. } => (
            504,
            IssueType::Timeout,
            "The write may or may not have been made. Do NOT send it again: check the practice's record first.",
        ),
        IntegrationError::Malformed { .. } => (
            502,
            IssueType::Exception,
            "The practice's system answered with something Keel cannot read. Tell the operator; reads may be repeated later.",
        ),
    };
    (
        status,
        OperationOutcome::new()
            .error(code, error.to_string())
            .with_details(advice),
    )
}

/// Status and OperationOutcome for a federated record that could not be assembled.
pub fn record_error(error: &RecordError) -> (u16, OperationOutcome) {
    let (status, code, advice) = match error {
        RecordError::Integration(e) => return integration_error(e),
        RecordError::RegisteredPracticeUnknown(_) => (
            422,
            IssueType::BusinessRule,
            "Nothing was read. Name the registered practice with ?practice=ODS, or check the NHS number with PDS.",
        ),
        RecordError::PracticeNotConnected(_) => (
            422,
            IssueType::NotSupported,
            "Nothing was read. The practice must be added to Keel's practice directory first (PUT /api/practices/{ods}).",
        ),
    };
    (
        status,
        OperationOutcome::new()
            .error(code, error.to_string())
            .with_details(advice),
    )
}

/// Status and OperationOutcome for a practice directory change that failed.
pub fn directory_error(error: &DirectoryError) -> (u16, OperationOutcome) {
    let (status, code, advice) = match error {
        DirectoryError::Invalid(_) => (
            422,
            IssueType::Invalid,
            "Nothing was changed. Correct the connection and send it again.",
        ),
        DirectoryError::VersionConflict { .. } => (
            412,
            IssueType::Conflict,
            "Nothing was changed. Read the current version, reapply your change and send it with If-Match of the new version.",
        ),
        DirectoryError::UnknownPractice(_) => (
            404,
            IssueType::NotFound,
            "Nothing was changed. GET /api/practices lists the practices Keel knows.",
        ),
        DirectoryError::Storage(_) => (
            503,
            IssueType::Transient,
            "Nothing was changed. Tell the operator: the connections file could not be written.",
        ),
    };
    (
        status,
        OperationOutcome::new()
            .error(code, error.to_string())
            .with_details(advice),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::integration::Operation;
    use keel_model::OdsCode;

    fn ods() -> OdsCode {
        OdsCode::parse("Y90001").expect("valid")
    }

    #[test]
    fn every_integration_error_has_a_status_and_advice() {
        let errors = [
            IntegrationError::NotSupported {
                practice: ods(),
                operation: Operation::BookAppointment,
                reason: "gp-connect is disabled at this practice".into(),
            },
            IntegrationError::Unavailable {
                practice: ods(),
                reason: "could not connect".into(),
            },
            IntegrationError::PatientNotFound { practice: ods() },
            IntegrationError::Refused {
                practice: ods(),
                reason: "slot taken".into(),
            },
            IntegrationError::OutcomeUnknown {
                practice: ods(),
                reason: "no answer".into(),
            },
            IntegrationError::Malformed {
                practice: ods(),
                reason: "bad XML".into(),
            },
        ];
        for error in errors {
            let (status, outcome) = integration_error(&error);
            assert!((400..600).contains(&status));
            let json = outcome.to_json();
            assert!(
                json["issue"][0]["details"]["text"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            );
        }
    }

    #[test]
    fn an_unsupported_operation_names_the_capability() {
        let (status, outcome) = integration_error(&IntegrationError::NotSupported {
            practice: ods(),
            operation: Operation::BookAppointment,
            reason: "gp-connect is disabled at this practice".into(),
        });
        assert_eq!(status, 422);
        let text = outcome.to_json()["issue"][0]["diagnostics"].to_string();
        assert!(text.contains("book-appointment"), "{text}");
    }

    #[test]
    fn an_unknown_write_outcome_says_not_to_repeat() {
        let (status, outcome) = integration_error(&IntegrationError::OutcomeUnknown {
            practice: ods(),
            reason: "no answer".into(),
        });
        assert_eq!(status, 504);
        assert!(
            outcome
                .to_json()
                .to_string()
                .contains("Do NOT send it again")
        );
    }
}
