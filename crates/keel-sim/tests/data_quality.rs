//! A small generated population (2,000 persons) contains every data-quality case the simulated
//! PCN promises, realistic prevalence, and only valid test-range NHS numbers.

use std::collections::HashMap;

use keel_model::NhsNumber;
use keel_sim::codes;
use keel_sim::model::*;
use keel_sim::population::{Options, Population};

fn population() -> (Population, Vec<Person>) {
    let pop = Population::generate(Options {
        seed: 2024,
        patients: 2_000,
        practices: 5,
        ..Options::default()
    });
    let persons = pop.persons().collect();
    (pop, persons)
}

fn records(persons: &[Person]) -> impl Iterator<Item = &PatientRecord> {
    persons.iter().flat_map(|p| p.records.iter())
}

#[test]
fn every_data_quality_case_is_present() {
    let (pop, persons) = population();
    let count = |f: &dyn Fn(&PatientRecord) -> bool| records(&persons).filter(|r| f(r)).count();

    let duplicates = count(&|r| r.role == RecordRole::Duplicate);
    let with_issue = |issue: QualityIssue| {
        count(&|r: &PatientRecord| r.role == RecordRole::Duplicate && r.quality.contains(&issue))
    };
    let transposed = with_issue(QualityIssue::TransposedLetters);
    let swapped = with_issue(QualityIssue::DayMonthSwapped);
    let dup_without_number = with_issue(QualityIssue::MissingNhsNumber);
    let cross_practice_duplicates = persons
        .iter()
        .filter(|p| {
            p.records
                .iter()
                .any(|r| r.role == RecordRole::Duplicate && r.practice != p.home_practice)
        })
        .count();
    let same_practice_duplicates = persons
        .iter()
        .filter(|p| {
            p.records
                .iter()
                .any(|r| r.role == RecordRole::Duplicate && r.practice == p.home_practice)
        })
        .count();
    let no_number = count(&|r| r.role == RecordRole::Primary && r.nhs_number.is_none());
    let unverified = count(&|r| {
        r.nhs_number.is_some()
            && r.nhs_status != NhsNumberStatus::Verified
            && r.nhs_status != NhsNumberStatus::Postponed
    });
    let temporary = count(&|r| {
        r.role == RecordRole::Primary && r.registration.kind == RegistrationType::Temporary
    });
    let deceased = count(&|r| {
        r.death_date.is_some() && matches!(r.registration.end, Some((_, RegistrationEnd::Died)))
    });
    let deregistered = count(&|r| {
        matches!(
            r.registration.end,
            Some((
                _,
                RegistrationEnd::LeftArea | RegistrationEnd::Embarkation | RegistrationEnd::Removed
            ))
        )
    });
    let moved = persons
        .iter()
        .filter(|p| {
            p.records.iter().any(|r| {
                r.role == RecordRole::PreviousRegistration
                    && r.practice != p.home_practice
                    && matches!(
                        r.registration.end,
                        Some((_, RegistrationEnd::TransferredWithinPcn))
                    )
            })
        })
        .count();
    let restricted = count(&|r| r.confidentiality == Confidentiality::Restricted);
    let sensitive = records(&persons)
        .flat_map(|r| &r.clinical.conditions)
        .filter(|c| c.sensitivity.is_some())
        .count();
    let confidential_consultations = records(&persons)
        .flat_map(|r| &r.clinical.consultations)
        .filter(|c| c.confidential)
        .count();
    let observations = || records(&persons).flat_map(|r| &r.clinical.observations);
    let conditions = || records(&persons).flat_map(|r| &r.clinical.conditions);
    let legacy_beside = observations()
        .map(|o| o.coding)
        .chain(conditions().map(|c| c.coding))
        .filter(|s| matches!(s, CodingStyle::LegacyBeside(_)))
        .count();
    let legacy_only = observations()
        .map(|o| o.coding)
        .chain(conditions().map(|c| c.coding))
        .filter(|s| matches!(s, CodingStyle::LegacyOnly(_)))
        .count();
    let dcct = observations()
        .filter(|o| {
            std::ptr::eq(o.concept, &codes::HBA1C_DCCT)
                && matches!(o.value, ObservationValue::Quantity { unit: "%", .. })
        })
        .count();
    let ifcc = observations()
        .filter(|o| {
            std::ptr::eq(o.concept, &codes::HBA1C_IFCC)
                && matches!(
                    o.value,
                    ObservationValue::Quantity {
                        unit: "mmol/mol",
                        ..
                    }
                )
        })
        .count();
    let egfr_capped = observations()
        .filter(|o| {
            matches!(
                o.value,
                ObservationValue::Quantity {
                    comparator: Some(">"),
                    ..
                }
            )
        })
        .count();

    let report = format!(
        "duplicates {duplicates} (transposed {transposed}, day/month swapped {swapped}, \
         no NHS number {dup_without_number}; same practice {same_practice_duplicates}, other practice {cross_practice_duplicates}); \
         primary records without NHS number {no_number}; unverified {unverified}; temporary {temporary}; \
         deceased {deceased}; deregistered {deregistered}; moved within PCN {moved}; restricted {restricted}; \
         sensitive conditions {sensitive}; confidential consultations {confidential_consultations}; \
         legacy codes beside SNOMED {legacy_beside}; legacy only {legacy_only}; HbA1c % {dcct}, mmol/mol {ifcc}; \
         eGFR >90 {egfr_capped}"
    );
    println!("{report}");
    for (what, n) in [
        ("duplicates", duplicates),
        ("duplicates with transposed letters", transposed),
        ("duplicates with day and month swapped", swapped),
        ("duplicates without the NHS number", dup_without_number),
        ("duplicates at the same practice", same_practice_duplicates),
        ("duplicates at another practice", cross_practice_duplicates),
        ("records without an NHS number", no_number),
        ("unverified NHS numbers", unverified),
        ("temporary residents", temporary),
        ("deceased", deceased),
        ("deregistered", deregistered),
        ("moved practice within the PCN", moved),
        ("restricted (S-flag)", restricted),
        ("sensitive entries", sensitive),
        ("confidential consultations", confidential_consultations),
        ("legacy codes beside SNOMED CT", legacy_beside),
        ("legacy codes instead of SNOMED CT", legacy_only),
        ("HbA1c in legacy % (DCCT)", dcct),
        ("HbA1c in mmol/mol (IFCC)", ifcc),
        ("eGFR reported as >90", egfr_capped),
    ] {
        assert!(n > 0, "no {what} in the population: {report}");
    }

    // Each practice's legacy codes are in the scheme its configuration names.
    for r in records(&persons) {
        let scheme = pop.pcn().practices[r.practice].config.legacy_scheme;
        for style in r
            .clinical
            .observations
            .iter()
            .map(|o| o.coding)
            .chain(r.clinical.conditions.iter().map(|c| c.coding))
        {
            if let CodingStyle::LegacyBeside(s) | CodingStyle::LegacyOnly(s) = style {
                assert_eq!(s, scheme, "{}", r.id);
            }
        }
    }
}

#[test]
fn nhs_numbers_are_valid_test_range_numbers_and_unique_per_person() {
    let (_, persons) = population();
    let mut owner: HashMap<NhsNumber, u64> = HashMap::new();
    for person in &persons {
        for record in &person.records {
            if let Some(n) = &record.nhs_number {
                assert!(NhsNumber::parse(n.as_str()).is_ok());
                assert!(n.as_str().starts_with("999"), "{}", n.as_str());
                let first = *owner.entry(*n).or_insert(person.index);
                assert_eq!(first, person.index, "two persons share {}", n.as_str());
            }
        }
    }
    assert!(owner.len() > 1_900, "{} numbers", owner.len());
}

#[test]
fn practices_and_demographics_look_english() {
    let (pop, persons) = population();
    let practices = &pop.pcn().practices;
    assert_eq!(practices.len(), 5);
    for p in practices {
        let ods = p.ods.as_str();
        assert!(
            ods.len() == 6 && ods.starts_with("Y9") && ods[1..].bytes().all(|b| b.is_ascii_digit()),
            "{ods}"
        );
    }
    let emis = practices
        .iter()
        .filter(|p| p.system == GpSystem::EmisStyle)
        .count();
    assert_eq!(emis, 3, "3 of 5 practices EMIS-style");
    let list_sizes: Vec<u64> = practices.iter().map(|p| p.list_size).collect();
    assert_eq!(list_sizes.iter().sum::<u64>(), 2_000);
    assert!(
        list_sizes.iter().min() != list_sizes.iter().max(),
        "{list_sizes:?}"
    );

    let families: Vec<&str> = persons.iter().map(|p| p.name.family.as_str()).collect();
    let given: Vec<&str> = persons
        .iter()
        .flat_map(|p| p.name.given.iter().map(String::as_str))
        .collect();
    assert!(
        families.iter().any(|f| f.contains('-')),
        "no hyphenated surname"
    );
    assert!(families.iter().any(|f| f.contains('\'')), "no apostrophe");
    assert!(
        families.iter().chain(given.iter()).any(|n| !n.is_ascii()),
        "no name outside ASCII"
    );
    for person in &persons {
        let r = person.primary();
        let (outward, inward) = r
            .address
            .postcode
            .split_once(' ')
            .expect("postcode has a space");
        assert!(
            pop.pcn().area.outward.contains(&outward),
            "{}",
            r.address.postcode
        );
        assert_eq!(inward.len(), 3);
        for t in &r.telecom {
            if t.kind == TelecomKind::Mobile {
                assert!(t.value.starts_with("07700 900"), "{}", t.value);
            }
            if t.kind == TelecomKind::Email {
                assert!(t.value.ends_with("@example.com"), "{}", t.value);
            }
        }
        if let Some(d) = person.death_date {
            assert!(d >= person.birth_date);
        }
    }
    // Age pyramid: roughly a fifth under 18 and a fifth 65 or over.
    let as_of = pop.options().as_of;
    let alive: Vec<&Person> = persons.iter().filter(|p| p.death_date.is_none()).collect();
    let share = |f: &dyn Fn(i32) -> bool| {
        alive
            .iter()
            .filter(|p| f(as_of.years_since(p.birth_date)))
            .count() as f64
            / alive.len() as f64
    };
    let children = share(&|a| a < 18);
    let older = share(&|a| a >= 65);
    assert!((0.15..0.27).contains(&children), "under 18: {children}");
    assert!((0.13..0.25).contains(&older), "65 and over: {older}");
}

#[test]
fn prevalence_and_record_sizes_are_realistic() {
    let (pop, persons) = population();
    let as_of = pop.options().as_of;
    let primaries: Vec<&PatientRecord> = persons.iter().map(Person::primary).collect();
    let n = primaries.len() as f64;
    let prevalence = |keys: &[&str]| {
        primaries
            .iter()
            .filter(|r| {
                r.clinical.conditions.iter().any(|c| {
                    c.chronic
                        && c.status == ConditionStatus::Active
                        && keys.contains(&c.concept.key)
                })
            })
            .count() as f64
            / n
    };
    let checks = [
        ("hypertension", prevalence(&["htn"]), 0.11, 0.21),
        ("diabetes", prevalence(&["t2dm", "t1dm"]), 0.045, 0.10),
        ("asthma", prevalence(&["asthma"]), 0.035, 0.09),
        ("COPD", prevalence(&["copd"]), 0.008, 0.035),
        ("CKD", prevalence(&["ckd3", "ckd4"]), 0.02, 0.065),
        ("depression", prevalence(&["depression"]), 0.08, 0.16),
    ];
    for (what, p, lo, hi) in checks {
        assert!(
            (lo..hi).contains(&p),
            "{what} prevalence {p:.3} outside {lo}..{hi}"
        );
    }
    // Frailty is coded only for people aged 65 or over.
    for (person, r) in persons.iter().map(|p| (p, p.primary())) {
        for c in &r.clinical.conditions {
            if c.concept.key.starts_with("frail-") {
                assert!(c.recorded.years_since(person.birth_date) >= 65, "{}", r.id);
            }
        }
        // Nothing clinical after death or after the as-of date.
        let last = person.death_date.unwrap_or(as_of).max(r.registration.start);
        for o in &r.clinical.observations {
            assert!(
                o.date <= last,
                "{} observation after the end of the record",
                r.id
            );
        }
        for c in &r.clinical.consultations {
            assert!(
                c.start.date <= last,
                "{} consultation after the end of the record",
                r.id
            );
        }
    }
    let mut sizes: Vec<u64> = primaries.iter().map(|r| r.clinical.entry_count()).collect();
    sizes.sort_unstable();
    let mean = sizes.iter().sum::<u64>() as f64 / n;
    let median = sizes[sizes.len() / 2];
    let p99 = sizes[sizes.len() * 99 / 100];
    println!(
        "entries per record: mean {mean:.0}, median {median}, p99 {p99}, max {}",
        sizes[sizes.len() - 1]
    );
    assert!((100.0..1000.0).contains(&mean), "mean {mean}");
    assert!((30..600).contains(&median), "median {median}");
    assert!(p99 > 2_000, "p99 {p99}: the tail is not heavy");
    assert!(sizes[0] < 10, "smallest record {}", sizes[0]);
}
