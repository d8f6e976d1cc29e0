//! Numeric `RowIdentifier`s, derived from the generated ids so the same population always
//! serves the same numbers, and so a number leads back to what it names without a table.
//!
//! - Patient: `person × 10 + record + 1`, where `record` is the position of the record in
//!   [`crate::model::Person::records`] (0 the primary record, then previous registrations and
//!   duplicates). Never 0.
//! - Item of a patient: `patient × 10^7 + kind × 10^6 + n`, where `kind` is [`RowKind`]'s digit
//!   and `n` is the generated entry's id (the record's entry counter), for a medication issue
//!   its 1-based ordinal across the record's issues in course order, and for a written item
//!   the patient's write counter (1, 2, ...). The largest PCN the generator makes keeps every
//!   RowIdentifier below 2^53, so JSON clients that read numbers as doubles read them exactly.

use crate::records::RecordRef;

/// Items per patient (the patient's share of the item RowIdentifier space).
const PER_PATIENT: u64 = 10_000_000;
/// Items per kind.
const PER_KIND: u64 = 1_000_000;
/// Records per person the patient RowIdentifier leaves room for.
const RECORDS_PER_PERSON: u64 = 10;

/// What an item RowIdentifier names: its digit in the RowIdentifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Consultation = 0,
    Problem = 1,
    CodedEntry = 2,
    Medication = 3,
    Issue = 4,
    Allergy = 5,
    Immunisation = 6,
    Appointment = 7,
    Task = 8,
    /// Anything written through the API (consultation, coded entry, task, document).
    Written = 9,
}

/// The RowIdentifier of the patient record `at`.
pub fn patient_row(at: RecordRef) -> u64 {
    at.person * RECORDS_PER_PERSON + at.record as u64 + 1
}

/// The record a patient RowIdentifier names, if it is well formed.
pub fn record_of(patient: u64) -> Option<RecordRef> {
    let n = patient.checked_sub(1)?;
    Some(RecordRef {
        person: n / RECORDS_PER_PERSON,
        record: usize::try_from(n % RECORDS_PER_PERSON).ok()?,
    })
}

/// The RowIdentifier of item `n` of `kind` in patient `patient`'s record.
pub fn item_row(patient: u64, kind: RowKind, n: u64) -> u64 {
    patient * PER_PATIENT + kind as u64 * PER_KIND + n % PER_KIND
}

/// The patient an item RowIdentifier belongs to.
pub fn patient_of_item(item: u64) -> u64 {
    item / PER_PATIENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_rows_round_trip_and_items_lead_back_to_their_patient() {
        for person in [0u64, 1, 17, 39_999, 900_000] {
            for record in 0..3 {
                let at = RecordRef { person, record };
                let row = patient_row(at);
                assert_ne!(row, 0);
                assert_eq!(record_of(row), Some(at));
                let item = item_row(row, RowKind::Issue, 4_321);
                assert_eq!(patient_of_item(item), row);
                assert!(item < 1 << 53);
            }
        }
        assert_eq!(record_of(0), None);
        assert_eq!(item_row(11, RowKind::Task, 5), 110_000_000 + 8_000_005);
    }
}
