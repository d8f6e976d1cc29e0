//! Canonical clinical types shared by every Keel crate.
//!
//! This crate is the bottom of Keel's dependency graph: plain data types and their validation,
//! with no I/O and no dependencies beyond `serde`, `serde_json` and `thiserror`.
//!
//! - Identifiers: [`NhsNumber`] (Modulus 11 checked), [`OdsCode`], [`Identifier`] with the UK
//!   identifier system URIs in [`identifier::systems`].
//! - Terminology: [`Coding`] and [`CodeableConcept`], which keep what the source sent and hold
//!   translations beside it; code system URIs in [`coding::systems`].
//! - Measurements: [`Quantity`] over a text-preserving [`Decimal`].
//! - Origin and completeness: [`Provenance`] (with [`Instant`] timestamps) and [`SectionState`],
//!   which tells "nothing recorded", "withheld" and "unavailable" apart.
//! - Dates as recorded, partial or precise: [`ClinicalDate`].
//! - The canonical patient record ([`record`]): sections of items, each with provenance,
//!   source attributes and the section's state — what every GP-system adapter maps to.
//! - Errors on the wire: the [`OperationOutcome`] builder.

pub mod clinical_date;
pub mod coding;
pub mod identifier;
pub mod instant;
pub mod nhs_number;
pub mod ods_code;
pub mod operation_outcome;
pub mod provenance;
pub mod quantity;
pub mod record;
pub mod section_state;

pub use clinical_date::{ClinicalDate, ClinicalDateError, Precision};
pub use coding::{CodeableConcept, Coding, CodingOrigin};
pub use identifier::Identifier;
pub use instant::{Instant, InstantError};
pub use nhs_number::{NhsNumber, NhsNumberError};
pub use ods_code::{OdsCode, OdsCodeError};
pub use operation_outcome::{Issue, IssueSeverity, IssueType, OperationOutcome};
pub use provenance::{Provenance, SourceSystem};
pub use quantity::{Comparator, Decimal, DecimalError, NormalisedQuantity, Quantity};
pub use section_state::{LIST_EMPTY_REASON_SYSTEM, SectionState};
