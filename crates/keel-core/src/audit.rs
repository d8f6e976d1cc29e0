//! The tamper-evident audit trail: what an audit record says (`record`), how records are
//! chained and checkpoints signed as they are appended (`chain`), and how a stored log is
//! checked (`verify`); what one request did (`request`), the running trail that appends it
//! (`trail`), and reading it back as FHIR AuditEvents (`event`, `search`). Pure: the store persists entries through the
//! [`AuditLog`](crate::store::AuditLog) port and the signing key is passed in.

pub mod chain;
pub mod event;
pub mod record;
pub mod request;
pub mod search;
pub mod trail;
pub mod verify;

pub use chain::{AuditEntry, ChainHash, Checkpoint, CheckpointSigner, append};
pub use event::audit_event;
pub use record::{AuditOutcome, AuditRecord, AutomatedRecommendation, BreakGlass, Subject};
pub use request::RequestAudit;
pub use search::{AuditPage, AuditQuery, AuditQueryError, AuditSearchError, search_audit};
pub use trail::{AuditError, AuditTrail, PendingAudit};
pub use verify::{Tampering, VerifiedRange, verify};
