//! Keel's core: the request context, the record-store port and the FHIR interactions with
//! their rules. No I/O: storage, clocks and id generation are injected.

pub mod access;
pub mod audit;
pub mod clock;
pub mod context;
pub mod error;
pub mod fhir;
pub mod identity;
pub mod integration;
pub mod jobs;
pub mod policy;
pub mod store;

pub use context::{Actor, CorrelationId, PurposeOfUse, RequestContext};
pub use error::{FhirError, FhirResult};
