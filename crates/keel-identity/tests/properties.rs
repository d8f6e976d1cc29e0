//! Properties of matching: it is symmetric; identical records always link; a record never
//! links to two people of one practice without review; an index kept in step with changes
//! finds what an index prepared afresh finds.

use keel_identity::{Corpus, Outcome, PersonIndex, PersonRecord, Quiet, Settings, Which, csv};
use keel_sim::linkage::LinkageOptions;
use proptest::prelude::*;
use std::sync::OnceLock;

/// A model trained (without labels) on 3,000 synthetic people.
fn trained() -> &'static PersonIndex {
    static INDEX: OnceLock<PersonIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let options = LinkageOptions {
            seed: 11,
            people: 3_000,
            overlap: 0.9,
        };
        let mut text = String::from(keel_sim::linkage::HEADER);
        text.push('\n');
        for i in 0..options.people {
            text.push_str(&options.left_row(i));
            text.push('\n');
            text.push_str(&options.right_row(i).0);
            text.push('\n');
        }
        let rows = csv::parse(&text).expect("generated CSV parses");
        let records = rows[1..].iter().map(|r| {
            PersonRecord::new(&r[0])
                .with_given(&r[1])
                .with_family(&r[2])
                .with_sex(&r[3])
                .with_birth_date(&r[4])
                .with_postcode(&r[5])
                .with_address(&format!("{} {}", r[6], r[7]))
                .with_nhs_number(&r[8])
        });
        let settings = Settings {
            u_samples: 200_000,
            ..Settings::default()
        };
        PersonIndex::build(records, &settings, &Quiet)
    })
}

/// Records with every field present; names and places from small alphabets so that pairs
/// often partly agree.
fn record() -> impl Strategy<Value = PersonRecord> {
    (
        "[a-e]{3,8}",
        "[a-e]{3,9}",
        1930u16..2020,
        1u8..=12,
        1u8..=28,
        prop::bool::ANY,
        "(LS|M|B)[1-9] [0-9][A-Z]{2}",
        "[1-9][0-9]? [a-e]{4,8} road",
        prop::option::of("999[0-9]{7}"),
    )
        .prop_map(|(g, f, y, m, d, female, pc, addr, nhs)| {
            let r = PersonRecord::new("q")
                .with_given(&g)
                .with_family(&f)
                .with_birth_parts(Some(y), Some(m), Some(d))
                .with_sex(if female { "F" } else { "M" })
                .with_postcode(&pc)
                .with_address(&addr);
            match nhs {
                Some(n) => r.with_nhs_number(&n),
                None => r,
            }
        })
}

/// A small index of `records` with the trained model.
fn index_of(records: &[PersonRecord]) -> PersonIndex {
    let mut corpus = Corpus::new();
    for r in records {
        corpus.push(Which::Left, r);
    }
    PersonIndex::with_model(corpus, trained().model().clone())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn matching_is_symmetric(a in record(), b in record()) {
        let index = trained();
        let ab = index.compare(&a, &b);
        let ba = index.compare(&b, &a);
        prop_assert_eq!(&ab.fields, &ba.fields);
        prop_assert_eq!(ab.match_weight, ba.match_weight);
        prop_assert_eq!(ab.probability, ba.probability);
    }

    #[test]
    fn identical_records_always_link(r in record(), others in prop::collection::vec(record(), 0..5)) {
        let mut stored = r.clone().with_source("P1");
        stored.id = "stored".into();
        let mut all = vec![stored];
        for (k, mut o) in others.into_iter().enumerate() {
            o.id = format!("other{k}");
            // Other people of another practice.
            all.push(o.with_source("P2"));
        }
        let index = index_of(&all);
        let evidence = trained().compare(&r, &r);
        prop_assert!(evidence.probability >= index.thresholds().link, "{:?}", evidence);
        let found = index.best_candidates(&r, 10);
        let hit = found.iter().find(|c| c.id == "stored");
        prop_assert!(hit.is_some(), "identical record not among the candidates");
        prop_assert_eq!(hit.map(|c| c.outcome), Some(Outcome::Linked));
    }

    #[test]
    fn never_two_people_of_one_practice_without_review(r in record(), same_practice in prop::bool::ANY) {
        // Two records (two people as far as Keel knows) that both match the query.
        let mut first = r.clone().with_source("P1");
        first.id = "first".into();
        let mut second = r.clone().with_source(if same_practice { "P1" } else { "P2" });
        second.id = "second".into();
        let index = index_of(&[first, second]);
        let found = index.best_candidates(&r, 10);
        prop_assert_eq!(found.len(), 2);
        for c in &found {
            if same_practice {
                prop_assert_eq!(c.outcome, Outcome::NeedsReview, "{} linked", c.id);
            } else {
                prop_assert_eq!(c.outcome, Outcome::Linked);
            }
        }
    }

    #[test]
    fn an_index_kept_in_step_finds_what_a_fresh_one_finds(
        before in prop::collection::vec(record(), 1..12),
        added in prop::collection::vec(record(), 0..8),
        removed_mask in prop::collection::vec(prop::bool::ANY, 12),
        query in record(),
        query_is_added in prop::option::of(0usize..8),
    ) {
        let named = |records: Vec<PersonRecord>, prefix: &str| -> Vec<PersonRecord> {
            records.into_iter().enumerate().map(|(k, mut r)| {
                r.id = format!("{prefix}{k}");
                r.with_source(if k % 2 == 0 { "P1" } else { "P3" })
            }).collect()
        };
        let before = named(before, "b");
        let added = named(added, "a");
        let removed: Vec<usize> = (0..before.len()).filter(|&i| removed_mask[i]).collect();
        let kept_in_step = index_of(&before).changed(removed.iter().copied(), &added);
        let fresh_records: Vec<PersonRecord> = before
            .iter()
            .enumerate()
            .filter(|(i, _)| !removed_mask[*i])
            .map(|(_, r)| r.clone())
            .chain(added.iter().cloned())
            .collect();
        let fresh = index_of(&fresh_records);
        prop_assert_eq!(kept_in_step.len(), fresh.len());
        // A query that is one of the added people, or anyone.
        let query = match query_is_added {
            Some(k) if k < added.len() => added[k].clone(),
            _ => query,
        };
        let levels = |index: &PersonIndex| {
            let mut found: Vec<(String, Vec<u8>)> = index
                .best_candidates(&query, 100)
                .into_iter()
                .map(|c| (c.id, c.evidence.fields.iter().map(|f| f.level).collect()))
                .collect();
            found.sort();
            found
        };
        prop_assert_eq!(levels(&kept_in_step), levels(&fresh));
        for c in kept_in_step.best_candidates(&query, 100) {
            prop_assert!(!kept_in_step.is_removed(c.index));
            prop_assert_eq!(kept_in_step.id(c.index), c.id.as_str());
        }
    }
}
