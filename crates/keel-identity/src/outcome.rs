//! Outcomes: a pair is linked, needs a person to review it, or is no match, by two thresholds
//! on its probability; and one rule on top: a record never links to two people of one source
//! (practice) without review.

use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Linked,
    NeedsReview,
    NoMatch,
}

impl Outcome {
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Linked => "linked",
            Outcome::NeedsReview => "needs-review",
            Outcome::NoMatch => "no-match",
        }
    }
}

/// Probability thresholds: at or above `link` a pair links; at or above `review` a person
/// reviews it; below, no match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub link: f64,
    pub review: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            link: 0.99,
            review: 0.5,
        }
    }
}

impl Thresholds {
    pub fn outcome(&self, probability: f64) -> Outcome {
        if probability >= self.link {
            Outcome::Linked
        } else if probability >= self.review {
            Outcome::NeedsReview
        } else {
            Outcome::NoMatch
        }
    }
}

/// One decided pair: two records (numbered in one space: a link numbers the right side after
/// the left), the source of each, and the outcome the thresholds gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub a: u32,
    pub b: u32,
    pub source_a: u32,
    pub source_b: u32,
    pub outcome: Outcome,
}

/// Applies the one-source rule: when a record is linked to two or more records of one source
/// that are not themselves all linked to each other (two people, as far as Keel knows), each
/// of those links goes to review instead. Returns how many links it sent to review.
pub fn apply_one_source_rule(decisions: &mut [Decision]) -> usize {
    let linked: HashSet<(u32, u32)> = decisions
        .iter()
        .filter(|d| d.outcome == Outcome::Linked)
        .map(|d| (d.a.min(d.b), d.a.max(d.b)))
        .collect();
    // Partners of each record by source: (record, partner source) -> [(partner, decision)].
    let mut groups: HashMap<(u32, u32), Vec<(u32, usize)>> = HashMap::new();
    for (k, d) in decisions.iter().enumerate() {
        if d.outcome == Outcome::Linked {
            groups.entry((d.a, d.source_b)).or_default().push((d.b, k));
            groups.entry((d.b, d.source_a)).or_default().push((d.a, k));
        }
    }
    let mut to_review = HashSet::new();
    for partners in groups.values() {
        if partners.len() < 2 {
            continue;
        }
        let one_person = partners.iter().enumerate().all(|(i, &(x, _))| {
            partners[i + 1..]
                .iter()
                .all(|&(y, _)| linked.contains(&(x.min(y), x.max(y))))
        });
        if !one_person {
            to_review.extend(partners.iter().map(|&(_, k)| k));
        }
    }
    for &k in &to_review {
        decisions[k].outcome = Outcome::NeedsReview;
    }
    to_review.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(a: u32, b: u32, sb: u32, outcome: Outcome) -> Decision {
        Decision {
            a,
            b,
            source_a: 0,
            source_b: sb,
            outcome,
        }
    }

    #[test]
    fn thresholds_give_three_outcomes() {
        let t = Thresholds::default();
        assert_eq!(t.outcome(0.999), Outcome::Linked);
        assert_eq!(t.outcome(0.7), Outcome::NeedsReview);
        assert_eq!(t.outcome(0.1), Outcome::NoMatch);
    }

    #[test]
    fn two_people_of_one_source_go_to_review() {
        let mut ds = vec![
            d(1, 10, 7, Outcome::Linked),
            d(1, 11, 7, Outcome::Linked),
            d(1, 12, 8, Outcome::Linked),
        ];
        assert_eq!(apply_one_source_rule(&mut ds), 2);
        assert_eq!(ds[0].outcome, Outcome::NeedsReview);
        assert_eq!(ds[1].outcome, Outcome::NeedsReview);
        assert_eq!(ds[2].outcome, Outcome::Linked);
    }

    #[test]
    fn a_linked_cluster_is_one_person() {
        let mut ds = vec![
            d(1, 10, 0, Outcome::Linked),
            d(1, 11, 0, Outcome::Linked),
            d(10, 11, 0, Outcome::Linked),
        ];
        assert_eq!(apply_one_source_rule(&mut ds), 0);
    }
}
