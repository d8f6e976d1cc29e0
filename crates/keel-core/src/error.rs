//! The core's error type. The HTTP edge maps each variant, once, to a status code and an
//! OperationOutcome (keel-api's `outcome` module).

use crate::store::StoreError;
use keel_fhir::search::SearchError;
use keel_fhir::validate::ValidationIssue;

#[derive(Debug, Clone, thiserror::Error)]
pub enum FhirError {
    #[error("{resource_type}/{id} is not known")]
    NotFound { resource_type: String, id: String },
    /// Access control refused a resource whose existence the policy conceals: shown to the
    /// requester exactly as [`FhirError::NotFound`], audited as a denial.
    #[error("{resource_type}/{id} is not known")]
    Concealed { resource_type: String, id: String },
    /// The request's audit record could not be written, so nothing was returned or changed.
    #[error("{0}")]
    AuditUnavailable(String),
    #[error("version {version} of {resource_type}/{id} is not known")]
    VersionNotFound {
        resource_type: String,
        id: String,
        version: u64,
    },
    #[error("{resource_type}/{id} was deleted")]
    Gone {
        resource_type: String,
        id: String,
        version: u64,
    },
    #[error("'{0}' is not a FHIR R4 resource type")]
    UnknownResourceType(String),
    /// The body is not parseable JSON, or not the expected shape (e.g. not a Bundle).
    #[error("{0}")]
    BadRequest(String),
    /// The resource breaks the R4 structure rules; nothing was stored.
    #[error("the resource is not valid FHIR R4 ({} problem(s))", .0.len())]
    Invalid(Vec<ValidationIssue>),
    #[error(transparent)]
    Search(#[from] SearchError),
    /// `If-Match` named another version than the current one.
    #[error("{resource_type}/{id} is at version {current}, not {expected}")]
    VersionConflict {
        resource_type: String,
        id: String,
        expected: u64,
        current: u64,
    },
    /// A conditional operation matched more than one resource.
    #[error("the condition '{condition}' matches more than one resource")]
    MultipleMatches { condition: String },
    /// A conditional reference in a transaction matched no resource.
    #[error("the conditional reference '{condition}' matches no resource")]
    ConditionNotMatched { condition: String },
    #[error("{0}")]
    Conflict(String),
    /// An idempotency key already used for a different request.
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    #[error("{0}")]
    NotSupported(String),
    /// A transaction or batch entry failed; `index` is the entry's position in the Bundle.
    #[error("Bundle entry {index}: {source}")]
    InEntry {
        index: usize,
        source: Box<FhirError>,
    },
    /// Access control refused: what was refused and the reasons (code, words) the actor may
    /// see. Nothing was read or changed.
    #[error("{what}")]
    Forbidden {
        what: String,
        reasons: Vec<(String, String)>,
    },
    /// A sensitive entry the actor's role and purpose do not show: withheld, not hidden.
    #[error(
        "{resource_type}/{id} is withheld: it is a sensitive entry your role and purpose do not show"
    )]
    Withheld { resource_type: String, id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FhirError {
    pub fn in_entry(self, index: usize) -> FhirError {
        match self {
            already @ FhirError::InEntry { .. } => already,
            other => FhirError::InEntry {
                index,
                source: Box::new(other),
            },
        }
    }
}

pub type FhirResult<T> = Result<T, FhirError>;
