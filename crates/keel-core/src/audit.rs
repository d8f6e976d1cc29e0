//! The tamper-evident audit trail: what an audit record says (`record`), how records are
//! chained and checkpoints signed as they are appended (`chain`), and how a stored log is
//! checked (`verify`). Pure: the store persists entries through the
//! [`AuditLog`](crate::store::AuditLog) port and the signing key is passed in.

pub mod chain;
pub mod record;
pub mod verify;

pub use chain::{AuditEntry, ChainHash, Checkpoint, CheckpointSigner, append};
pub use record::{AuditOutcome, AuditRecord, AutomatedRecommendation, BreakGlass, Subject};
pub use verify::{Tampering, VerifiedRange, verify};
