//! FHIR R4 `OperationOutcome`: Keel's single currency for errors, warnings and information.
//!
//! ```
//! use keel_model::{IssueType, OperationOutcome};
//!
//! let outcome = OperationOutcome::new()
//!     .error(IssueType::Required, "Patient.name is required")
//!     .at("Patient.name")
//!     .warning(IssueType::BusinessRule, "birthDate is in the future")
//!     .at("Patient.birthDate")
//!     .with_details("Check the date of birth");
//! assert!(outcome.has_errors());
//! assert_eq!(outcome.to_json()["resourceType"], "OperationOutcome");
//! ```

use serde_json::{Map, Value, json};

/// How serious an issue is (`issue-severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IssueSeverity {
    /// The issue caused the action to fail and no further checking could be performed.
    Fatal,
    /// The issue is sufficiently important to cause the action to fail.
    Error,
    /// The issue is not important enough to cause the action to fail but may cause it to be
    /// performed wrongly or differently from what was intended.
    Warning,
    /// The issue has no relation to the degree of success of the action.
    Information,
}

impl IssueSeverity {
    /// The FHIR code, e.g. `error`.
    pub fn as_code(&self) -> &'static str {
        match self {
            Self::Fatal => "fatal",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Information => "information",
        }
    }
}

/// What kind of issue it is: every code of the R4 `issue-type` code system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueType {
    /// `invalid`: content invalid against the specification or a profile.
    Invalid,
    /// `structure`: a structural issue in the content (e.g. unparseable JSON).
    Structure,
    /// `required`: a required element is missing.
    Required,
    /// `value`: an element or header value is invalid.
    Value,
    /// `invariant`: a content validation rule failed.
    Invariant,
    /// `security`: an authentication/authorisation/permissions issue.
    Security,
    /// `login`: the client needs to initiate an authentication process.
    Login,
    /// `unknown`: the user or system was not able to be authenticated.
    Unknown,
    /// `expired`: the user session expired.
    Expired,
    /// `forbidden`: the user does not have the rights to perform this action.
    Forbidden,
    /// `suppressed`: some information was not or might not have been returned due to business
    /// rules, consent or privacy rules, or access permission constraints.
    Suppressed,
    /// `processing`: processing issues, not expected to be resolved by the client.
    Processing,
    /// `not-supported`: the interaction, operation, resource or profile is not supported.
    NotSupported,
    /// `duplicate`: an attempt was made to create a duplicate record.
    Duplicate,
    /// `multiple-matches`: multiple matching records were found when one was expected.
    MultipleMatches,
    /// `not-found`: the reference provided was not found.
    NotFound,
    /// `deleted`: the reference pointed to content that has been deleted.
    Deleted,
    /// `too-long`: provided content is too long.
    TooLong,
    /// `code-invalid`: the code or system could not be understood or is not valid in the context.
    CodeInvalid,
    /// `extension`: an extension was not recognised or is not supported.
    Extension,
    /// `too-costly`: the operation was stopped to protect server resources.
    TooCostly,
    /// `business-rule`: the content/operation failed to pass a business rule.
    BusinessRule,
    /// `conflict`: content could not be accepted because of an edit conflict.
    Conflict,
    /// `transient`: transient processing issues; the client may try again later.
    Transient,
    /// `lock-error`: a resource or record lock failed.
    LockError,
    /// `no-store`: persistent store unavailable.
    NoStore,
    /// `exception`: an unexpected internal error.
    Exception,
    /// `timeout`: an internal timeout occurred.
    Timeout,
    /// `incomplete`: not all data sources returned results; the response is incomplete.
    Incomplete,
    /// `throttled`: the system is not prepared to handle this request due to load.
    Throttled,
    /// `informational`: a message unrelated to the processing success of the request.
    Informational,
}

impl IssueType {
    /// The FHIR code, e.g. `not-found`.
    pub fn as_code(&self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Structure => "structure",
            Self::Required => "required",
            Self::Value => "value",
            Self::Invariant => "invariant",
            Self::Security => "security",
            Self::Login => "login",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Forbidden => "forbidden",
            Self::Suppressed => "suppressed",
            Self::Processing => "processing",
            Self::NotSupported => "not-supported",
            Self::Duplicate => "duplicate",
            Self::MultipleMatches => "multiple-matches",
            Self::NotFound => "not-found",
            Self::Deleted => "deleted",
            Self::TooLong => "too-long",
            Self::CodeInvalid => "code-invalid",
            Self::Extension => "extension",
            Self::TooCostly => "too-costly",
            Self::BusinessRule => "business-rule",
            Self::Conflict => "conflict",
            Self::Transient => "transient",
            Self::LockError => "lock-error",
            Self::NoStore => "no-store",
            Self::Exception => "exception",
            Self::Timeout => "timeout",
            Self::Incomplete => "incomplete",
            Self::Throttled => "throttled",
            Self::Informational => "informational",
        }
    }
}

/// One issue in an [`OperationOutcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// How serious the issue is.
    pub severity: IssueSeverity,
    /// What kind of issue it is.
    pub code: IssueType,
    /// Technical detail for developers (`issue.diagnostics`).
    pub diagnostics: String,
    /// Human-readable explanation (`issue.details.text`).
    pub details_text: Option<String>,
    /// FHIRPath expressions of the elements concerned (`issue.expression`).
    pub expression: Vec<String>,
    /// Legacy locations, e.g. `http.Authorization` for a header (`issue.location`).
    pub location: Vec<String>,
}

impl Issue {
    /// Renders the issue as an R4 `OperationOutcome.issue` element.
    fn to_json(&self) -> Value {
        let mut issue = Map::new();
        issue.insert("severity".into(), self.severity.as_code().into());
        issue.insert("code".into(), self.code.as_code().into());
        if let Some(text) = &self.details_text {
            issue.insert("details".into(), json!({ "text": text }));
        }
        if !self.diagnostics.is_empty() {
            issue.insert("diagnostics".into(), self.diagnostics.clone().into());
        }
        if !self.location.is_empty() {
            issue.insert("location".into(), self.location.clone().into());
        }
        if !self.expression.is_empty() {
            issue.insert("expression".into(), self.expression.clone().into());
        }
        Value::Object(issue)
    }
}

/// A builder for an R4 `OperationOutcome` resource.
///
/// Issue methods ([`error`](Self::error), [`warning`](Self::warning), ...) append an issue;
/// [`at`](Self::at), [`at_location`](Self::at_location) and [`with_details`](Self::with_details)
/// refine the most recently appended one and do nothing before the first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use = "an OperationOutcome does nothing until rendered or returned"]
pub struct OperationOutcome {
    issues: Vec<Issue>,
}

impl OperationOutcome {
    /// An outcome with no issues yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an issue of any severity.
    pub fn issue(
        mut self,
        severity: IssueSeverity,
        code: IssueType,
        diagnostics: impl Into<String>,
    ) -> Self {
        self.issues.push(Issue {
            severity,
            code,
            diagnostics: diagnostics.into(),
            details_text: None,
            expression: Vec::new(),
            location: Vec::new(),
        });
        self
    }

    /// Appends a `fatal` issue.
    pub fn fatal(self, code: IssueType, diagnostics: impl Into<String>) -> Self {
        self.issue(IssueSeverity::Fatal, code, diagnostics)
    }

    /// Appends an `error` issue.
    pub fn error(self, code: IssueType, diagnostics: impl Into<String>) -> Self {
        self.issue(IssueSeverity::Error, code, diagnostics)
    }

    /// Appends a `warning` issue.
    pub fn warning(self, code: IssueType, diagnostics: impl Into<String>) -> Self {
        self.issue(IssueSeverity::Warning, code, diagnostics)
    }

    /// Appends an `information` issue.
    pub fn information(self, code: IssueType, diagnostics: impl Into<String>) -> Self {
        self.issue(IssueSeverity::Information, code, diagnostics)
    }

    /// Adds a FHIRPath expression (e.g. `Patient.name[0]`) to the last issue.
    pub fn at(mut self, expression: impl Into<String>) -> Self {
        if let Some(issue) = self.issues.last_mut() {
            issue.expression.push(expression.into());
        }
        self
    }

    /// Adds a legacy location (e.g. `http.Authorization`) to the last issue.
    pub fn at_location(mut self, location: impl Into<String>) -> Self {
        if let Some(issue) = self.issues.last_mut() {
            issue.location.push(location.into());
        }
        self
    }

    /// Sets the human-readable `details.text` of the last issue.
    pub fn with_details(mut self, text: impl Into<String>) -> Self {
        if let Some(issue) = self.issues.last_mut() {
            issue.details_text = Some(text.into());
        }
        self
    }

    /// The issues in the order they were added.
    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }

    /// True when any issue is `fatal` or `error`, i.e. the action failed.
    pub fn has_errors(&self) -> bool {
        self.issues
            .iter()
            .any(|i| matches!(i.severity, IssueSeverity::Fatal | IssueSeverity::Error))
    }

    /// Renders the R4 resource.
    ///
    /// R4 requires at least one issue, so an outcome with none renders the conventional
    /// success issue (`information` / `informational`, diagnostics "All OK").
    pub fn to_json(&self) -> Value {
        let issues: Vec<Value> = if self.issues.is_empty() {
            vec![json!({
                "severity": "information",
                "code": "informational",
                "diagnostics": "All OK"
            })]
        } else {
            self.issues.iter().map(Issue::to_json).collect()
        };
        json!({ "resourceType": "OperationOutcome", "issue": issues })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_r4_outcome_with_expression_and_details() {
        let outcome = OperationOutcome::new()
            .error(IssueType::Invalid, "name must have a family or given part")
            .at("Patient.name[0]")
            .with_details("The patient's name is incomplete");
        assert_eq!(
            outcome.to_json(),
            json!({
                "resourceType": "OperationOutcome",
                "issue": [{
                    "severity": "error",
                    "code": "invalid",
                    "details": {"text": "The patient's name is incomplete"},
                    "diagnostics": "name must have a family or given part",
                    "expression": ["Patient.name[0]"]
                }]
            })
        );
    }

    #[test]
    fn refinements_apply_to_the_last_issue_only() {
        let outcome = OperationOutcome::new()
            .warning(
                IssueType::NotSupported,
                "includeImmunisations has been disabled",
            )
            .error(IssueType::Security, "missing bearer token")
            .at_location("http.Authorization")
            .at("Bundle.entry[0]");
        let [first, second] = outcome.issues() else {
            panic!("expected two issues");
        };
        assert!(first.location.is_empty() && first.expression.is_empty());
        assert_eq!(second.location, ["http.Authorization"]);
        assert_eq!(second.expression, ["Bundle.entry[0]"]);
    }

    #[test]
    fn refinements_before_any_issue_are_ignored() {
        let outcome = OperationOutcome::new().at("Patient").with_details("x");
        assert!(outcome.issues().is_empty());
    }

    #[test]
    fn has_errors_only_for_fatal_or_error() {
        let benign = OperationOutcome::new()
            .warning(IssueType::Incomplete, "one practice did not answer")
            .information(IssueType::Informational, "served from cache");
        assert!(!benign.has_errors());
        assert!(
            benign
                .clone()
                .error(IssueType::Conflict, "version mismatch")
                .has_errors()
        );
        assert!(benign.fatal(IssueType::Exception, "boom").has_errors());
    }

    #[test]
    fn empty_outcome_renders_all_ok() {
        assert_eq!(
            OperationOutcome::new().to_json()["issue"],
            json!([{"severity": "information", "code": "informational", "diagnostics": "All OK"}])
        );
    }

    #[test]
    fn codes_are_unique_r4_issue_types() {
        use IssueType::*;
        let all = [
            Invalid,
            Structure,
            Required,
            Value,
            Invariant,
            Security,
            Login,
            Unknown,
            Expired,
            Forbidden,
            Suppressed,
            Processing,
            NotSupported,
            Duplicate,
            MultipleMatches,
            NotFound,
            Deleted,
            TooLong,
            CodeInvalid,
            Extension,
            TooCostly,
            BusinessRule,
            Conflict,
            Transient,
            LockError,
            NoStore,
            Exception,
            Timeout,
            Incomplete,
            Throttled,
            Informational,
        ];
        let codes: std::collections::BTreeSet<_> = all.iter().map(IssueType::as_code).collect();
        assert_eq!(codes.len(), 31);
        assert!(codes.contains("multiple-matches") && codes.contains("lock-error"));
        let severities: Vec<_> = [
            IssueSeverity::Fatal,
            IssueSeverity::Error,
            IssueSeverity::Warning,
            IssueSeverity::Information,
        ]
        .iter()
        .map(IssueSeverity::as_code)
        .collect();
        assert_eq!(severities, ["fatal", "error", "warning", "information"]);
    }
}
