//! Where each practice's patient records are, for the simulators that serve them.
//!
//! A simulator does not hold the generated records: it holds this index (record id, NHS
//! number and local patient number → which person, which of their records) and regenerates
//! the person when a record is asked for. Persons are independent by index
//! ([`crate::population`]), so a regenerated record is byte-for-byte what `keel sim generate`
//! wrote, and a 40,000-patient PCN is indexed in well under a second from demographics alone.

use std::collections::HashMap;

use keel_model::NhsNumber;

use crate::model::{PatientRecord, Person};
use crate::population::{Options, Population};

/// One patient record: person `person`, record `record` of [`Person::records`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordRef {
    pub person: u64,
    pub record: usize,
}

/// The records of a population, found by identifier and regenerated on demand.
#[derive(Debug)]
pub struct PracticeRecords {
    population: Population,
    by_id: HashMap<String, RecordRef>,
    /// (practice, NHS number) → records at that practice holding the number, active first.
    by_nhs: HashMap<(usize, NhsNumber), Vec<RecordRef>>,
    by_local: HashMap<(usize, String), RecordRef>,
}

impl PracticeRecords {
    /// Indexes every record of `population` (generated with full clinical records).
    pub fn new(population: Population) -> PracticeRecords {
        let demographics = Population::generate(Options {
            demographics_only: true,
            ..population.options().clone()
        });
        let mut by_id = HashMap::new();
        let mut by_nhs: HashMap<(usize, NhsNumber), Vec<RecordRef>> = HashMap::new();
        let mut by_local = HashMap::new();
        for person in demographics.persons() {
            for (position, record) in person.records.iter().enumerate() {
                let at = RecordRef {
                    person: person.index,
                    record: position,
                };
                by_id.insert(record.id.clone(), at);
                by_local.insert((record.practice, record.local_number.clone()), at);
                if let Some(nhs) = &record.nhs_number {
                    by_nhs.entry((record.practice, *nhs)).or_default().push(at);
                }
            }
        }
        for refs in by_nhs.values_mut() {
            refs.sort_by_key(|r| {
                let person = demographics.person(r.person);
                !person.records[r.record].registration.is_active()
            });
        }
        PracticeRecords {
            population,
            by_id,
            by_nhs,
            by_local,
        }
    }

    pub fn population(&self) -> &Population {
        &self.population
    }

    /// The record with resource id `id` (as in the exports: `Y90001-0000012`).
    pub fn by_record_id(&self, id: &str) -> Option<RecordRef> {
        self.by_id.get(id).copied()
    }

    /// Records at `practice` holding `nhs`, the active registration first.
    pub fn by_nhs_number(&self, practice: usize, nhs: &NhsNumber) -> &[RecordRef] {
        self.by_nhs
            .get(&(practice, *nhs))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The record at `practice` with the practice system's own patient number `local`.
    pub fn by_local_number(&self, practice: usize, local: &str) -> Option<RecordRef> {
        self.by_local.get(&(practice, local.to_string())).copied()
    }

    /// Every record held at `practice`, in person order.
    pub fn at_practice(&self, practice: usize) -> impl Iterator<Item = RecordRef> + '_ {
        let mut refs: Vec<RecordRef> = self
            .by_local
            .iter()
            .filter(|((p, _), _)| *p == practice)
            .map(|(_, r)| *r)
            .collect();
        refs.sort_by_key(|r| (r.person, r.record));
        refs.into_iter()
    }

    /// Regenerates the person behind `at`, with full clinical records.
    pub fn person(&self, at: RecordRef) -> Person {
        self.population.person(at.person)
    }

    /// Regenerates the one record `at`.
    pub fn record(&self, at: RecordRef) -> PatientRecord {
        self.person(at).records.swap_remove(at.record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> PracticeRecords {
        PracticeRecords::new(Population::generate(Options {
            patients: 600,
            practices: 3,
            ..Options::default()
        }))
    }

    #[test]
    fn every_generated_record_is_found_by_each_identifier_and_regenerates_identically() {
        let index = records();
        for person in index.population().persons() {
            for (position, record) in person.records.iter().enumerate() {
                let at = RecordRef {
                    person: person.index,
                    record: position,
                };
                assert_eq!(index.by_record_id(&record.id), Some(at));
                assert_eq!(
                    index.by_local_number(record.practice, &record.local_number),
                    Some(at)
                );
                if let Some(nhs) = &record.nhs_number {
                    assert!(index.by_nhs_number(record.practice, nhs).contains(&at));
                }
                let again = index.record(at);
                assert_eq!(again.id, record.id);
                assert_eq!(again.clinical.entry_count(), record.clinical.entry_count());
            }
        }
    }

    #[test]
    fn the_active_registration_comes_first_for_an_nhs_number() {
        let index = records();
        for practice in 0..3 {
            for at in index.at_practice(practice) {
                let record = index.record(at);
                let Some(nhs) = &record.nhs_number else {
                    continue;
                };
                let found = index.by_nhs_number(practice, nhs);
                let first = index.record(found[0]);
                if found
                    .iter()
                    .any(|r| index.record(*r).registration.is_active())
                {
                    assert!(first.registration.is_active());
                }
            }
        }
    }

    #[test]
    fn unknown_identifiers_find_nothing() {
        let index = records();
        assert_eq!(index.by_record_id("nope"), None);
        assert_eq!(index.by_local_number(0, "nope"), None);
        let nhs = NhsNumber::parse("9990000018").expect("a valid test number");
        assert!(index.by_nhs_number(0, &nhs).is_empty());
    }
}
