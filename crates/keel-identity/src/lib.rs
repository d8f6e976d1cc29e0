//! Patient identity for Keel: an explainable probabilistic matcher (Fellegi–Sunter) whose m and
//! u probabilities come from the data itself — u from random pairs, m and the prior by
//! expectation maximisation over the blocked candidate pairs — with comparators written here
//! (Jaro–Winkler, Damerau–Levenshtein, Soundex, date of birth with day/month transposition,
//! sex, postcode sector and district, address, NHS number), term-frequency adjustment for
//! common names and postcodes, blocking rules, evidence for every pair, three outcomes, and a
//! person index for one-record queries.
//!
//! Pure: no I/O, no async runtime, no database. Threads only through `std::thread::scope`.

pub mod blocking;
pub mod compare;
pub mod corpus;
pub mod csv;
pub mod index;
pub mod link;
pub mod model;
pub mod outcome;
pub mod record;

pub use compare::{FIELDS, Field, NULL_LEVEL};
pub use corpus::{Corpus, Which};
pub use index::{Candidate, PersonIndex};
pub use link::{LinkResult, Progress, Quiet, ScoredPair, Settings, dedupe, link};
pub use model::{Evidence, FieldEvidence, Model};
pub use outcome::{Decision, Outcome, Thresholds, apply_one_source_rule};
pub use record::{PersonRecord, Sex};
