//! Every NHS number the generator produces is a valid (Modulus 11) number in the 999 test
//! range, and no two persons share one.

use keel_model::NhsNumber;
use keel_sim::population::{NHS_NUMBER_CAPACITY, Options, Population};
use proptest::prelude::*;

fn population(seed: u64, patients: u64) -> Population {
    Population::generate(Options {
        seed,
        patients,
        practices: 4,
        demographics_only: true,
        ..Options::default()
    })
}

fn assert_valid(number: &NhsNumber) {
    let text = number.as_str();
    let reparsed = NhsNumber::parse(text).expect("the digits parse as a valid NHS number");
    assert_eq!(&reparsed, number);
    assert!(
        text.starts_with("999"),
        "{text} is outside the 999 test range"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn allocated_numbers_are_valid_test_range_numbers(seed in any::<u64>(), index in 0..NHS_NUMBER_CAPACITY) {
        let pop = population(seed, 10);
        let number = pop.nhs_number(index).expect("within capacity");
        assert_valid(&number);
    }

    #[test]
    fn every_record_of_every_person_carries_a_valid_number_or_none(seed in any::<u64>()) {
        let pop = population(seed, 400);
        let mut seen = std::collections::HashSet::new();
        for person in pop.persons() {
            if let Some(n) = &person.nhs_number {
                assert_valid(n);
                prop_assert!(seen.insert(*n), "two persons share {}", n.as_str());
            }
            for record in &person.records {
                if let Some(n) = &record.nhs_number {
                    assert_valid(n);
                    prop_assert_eq!(Some(*n), person.nhs_number, "a record carries another person's number");
                }
            }
        }
    }
}

#[test]
fn numbers_beyond_the_test_range_capacity_are_not_invented() {
    let pop = population(3, 10);
    assert!(pop.nhs_number(NHS_NUMBER_CAPACITY - 1).is_some());
    assert!(pop.nhs_number(NHS_NUMBER_CAPACITY).is_none());
}
