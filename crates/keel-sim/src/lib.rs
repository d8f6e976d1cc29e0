//! The simulated PCN: a deterministic synthetic population of English GP practices and their
//! patients, for testing Keel and the simulators of GP Connect, EMIS-style and TPP-style
//! interfaces and PDS, which render this same population in their own shapes.
//!
//! # Design
//!
//! - [`population::Population::generate`] builds the PCN (practices with ODS-style codes,
//!   their system, local configuration and staff) and then yields persons one at a time.
//!   Each person comes from their own random stream derived from (seed, purpose, person
//!   index) ([`rng`]), so persons are independent: generation streams in bounded memory and
//!   parallelises without changing a byte of output.
//! - The model ([`model`]) is supplier-neutral truth: a [`model::Person`] (the human, with the
//!   real NHS number) holds one or more [`model::PatientRecord`]s as practices' systems hold
//!   them, including closed records at a previous practice and duplicates with deliberate
//!   defects ([`model::QualityIssue`]), each with its clinical record.
//! - Codes ([`codes`]) are real SNOMED CT ids, with Read v2 / CTV3 equivalents only where
//!   known; medicines are dm+d, real where verified and otherwise marked synthetic.
//! - Exports: [`native`] (compact JSON Lines per practice) and [`fhir`] (FHIR R4 NDJSON per
//!   resource type, loadable by `keel import`), written by [`output::write`].
//!
//! Nothing depends on wall-clock time, hash-map order or floating-point library functions:
//! the same options give byte-identical output on every run and thread count.

pub mod clinical;
pub mod codes;
pub mod connections;
pub mod date;
pub mod emis;
pub mod faults;
pub mod fhir;
pub mod gpconnect;
pub mod json;
pub mod linkage;
pub mod model;
pub mod names;
pub mod native;
pub mod output;
pub mod pds;
pub mod places;
pub mod population;
pub mod records;
pub mod rng;
pub mod server;
pub mod tpp;

pub use population::{Options, Population, PopulationItem};
