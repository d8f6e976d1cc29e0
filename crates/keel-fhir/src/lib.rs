//! FHIR R4 knowledge without I/O.

pub mod datetime;
pub mod definitions;
pub mod derived_params;
pub mod fhirpath;
pub mod index;
pub mod search;
pub mod validate;
