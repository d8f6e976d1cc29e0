//! Patient identity over the record store: the store's Patients as a trained, cached person
//! index ([`patient_index`]), a FHIR Patient as matcher input ([`patient_record`]) and how
//! `$match` grades what the matcher proposes ([`grading`]), and resolution against PDS — NHS
//! number confirmed, superseded numbers followed, demographic trace ([`pds_trace`]). The matcher itself is keel-identity.

pub mod evidence_json;
pub mod grading;
pub mod links;
pub mod patient_index;
pub mod patient_record;
pub mod pds_trace;

pub use grading::{Graded, MatchBasis, MatchGrade, grade_candidates, grade_pair};
pub use links::{LinkStatus, PatientLink, ProposedLink, pair_id, propose_links};
pub use patient_index::{IndexedPatients, PatientIndex};
pub use patient_record::{MatchSubject, NhsNumberClaim, query_subject, stored_subject};
