//! The Fellegi–Sunter model: for every field and level, m (the chance of that level when the
//! two records are the same person) and u (when they are not); a pair's match weight is the
//! prior log-odds plus, per field, log2(m/u) of its level. u is estimated by comparing random
//! pairs; m and the prior (λ, the share of candidate pairs that match) by expectation
//! maximisation over the blocked candidate pairs. No labels, no hand-set weights.

use crate::compare::{FIELDS, Field, NULL_LEVEL};
use crate::corpus::{View, Vocab, is_null, level};
use std::collections::HashMap;

/// The smallest probability a level is given (m or u), so that a level never seen while
/// training still has a finite weight.
const FLOOR: f64 = 1e-6;

/// The trained parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Prior probability that two records drawn at random are a match: the share of matches
    /// EM found among the candidate pairs, times the candidates, over all possible pairs.
    pub lambda: f64,
    /// The share of matches EM found among the candidate pairs.
    pub lambda_candidates: f64,
    /// m probabilities by field (in [`FIELDS`] order) and level.
    pub m: Vec<Vec<f64>>,
    /// u probabilities by field and level.
    pub u: Vec<Vec<f64>>,
    /// Random pairs compared to estimate u.
    pub u_samples: usize,
    /// Candidate pairs EM ran over, and its iterations.
    pub em_pairs: u64,
    pub em_iterations: usize,
    /// log2(m/u) by field and level (derived).
    weights: Vec<Vec<f64>>,
}

/// What one field contributed to a match.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldEvidence {
    pub field: Field,
    /// Agreement level (index into `field.levels()`), or [`NULL_LEVEL`].
    pub level: u8,
    /// Its name, e.g. `jaro-winkler >= 0.92`, or `null`.
    pub level_name: &'static str,
    /// log2 of the Bayes factor m/u of the level (0 for null), after any term-frequency
    /// adjustment.
    pub weight: f64,
    /// The term-frequency adjustment included in `weight` (log2), for exact matches on
    /// given name, family name and postcode.
    pub tf_adjustment: f64,
}

/// Why a pair scored what it did.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// Per field, in [`FIELDS`] order.
    pub fields: Vec<FieldEvidence>,
    /// log2 of the prior odds λ/(1-λ).
    pub prior_weight: f64,
    /// Prior plus every field's weight.
    pub match_weight: f64,
    /// 2^w / (1 + 2^w).
    pub probability: f64,
}

impl Evidence {
    pub fn field(&self, field: Field) -> &FieldEvidence {
        &self.fields[field.index()]
    }
}

/// Probability from a match weight (log2 odds).
pub fn probability(weight: f64) -> f64 {
    let odds = weight.exp2();
    if odds.is_infinite() {
        1.0
    } else {
        odds / (1.0 + odds)
    }
}

impl Model {
    fn new(lambda: f64, m: Vec<Vec<f64>>, u: Vec<Vec<f64>>) -> Self {
        let mut model = Model {
            lambda,
            lambda_candidates: lambda,
            m,
            u,
            u_samples: 0,
            em_pairs: 0,
            em_iterations: 0,
            weights: Vec::new(),
        };
        model.derive();
        model
    }

    /// The weights from m and u, made monotone: a stronger agreement level never weighs less
    /// than a weaker one of the same field. Estimated freely, a near agreement can outweigh an
    /// exact one (random pairs almost never agree nearly, so its u is tiny), which would rank a
    /// record with a typing error above an identical one.
    fn derive(&mut self) {
        self.weights = FIELDS
            .iter()
            .map(|f| {
                let i = f.index();
                let mut weights: Vec<f64> = (0..f.levels().len())
                    .map(|l| (self.m[i][l].max(FLOOR) / self.u[i][l].max(FLOOR)).log2())
                    .collect();
                for l in 1..weights.len() {
                    weights[l] = weights[l].max(weights[l - 1]);
                }
                weights
            })
            .collect();
    }

    pub fn prior_weight(&self) -> f64 {
        let l = self.lambda.clamp(1e-12, 1.0 - 1e-12);
        (l / (1.0 - l)).log2()
    }

    /// log2(m/u) of `level` of `field` without term frequencies (0 for null).
    pub fn weight(&self, field: Field, level: u8) -> f64 {
        if level == NULL_LEVEL {
            0.0
        } else {
            self.weights[field.index()][usize::from(level)]
        }
    }

    /// Total match weight of a packed pattern, without term frequencies.
    pub(crate) fn pattern_weight(&self, pattern: u32) -> f64 {
        self.prior_weight()
            + FIELDS
                .iter()
                .map(|&f| self.weight(f, level(pattern, f)))
                .sum::<f64>()
    }

    /// The term-frequency adjustment (log2) of an exact match on `field` with value `id`:
    /// the field's average u for an exact match over how common this value is — but never so
    /// negative that an exact match on a common value weighs less than the level below exact.
    pub(crate) fn tf_adjustment(&self, vocab: &Vocab, field: Field, id: u32) -> f64 {
        let Some(freq) = vocab.frequency(field, id) else {
            return 0.0;
        };
        let exact = field.exact_level();
        let u_exact = self.u[field.index()][usize::from(exact)].max(FLOOR);
        let floor = self.weight(field, exact - 1) - self.weight(field, exact);
        (u_exact / freq.max(FLOOR)).log2().max(floor)
    }

    /// The sum of the term-frequency adjustments for a pair with `pattern`.
    pub(crate) fn tf_total(&self, vocab: &Vocab, pattern: u32, a: View<'_>, b: View<'_>) -> f64 {
        let mut total = 0.0;
        for (field, ia, ib) in [
            (Field::Given, a.rec.given_id, b.rec.given_id),
            (Field::Family, a.rec.family_id, b.rec.family_id),
            (Field::Postcode, a.rec.postcode_id, b.rec.postcode_id),
        ] {
            if level(pattern, field) == field.exact_level() {
                // The indexed side (b) always has a known id; either does in a link.
                let id = if ib != crate::corpus::UNSEEN { ib } else { ia };
                total += self.tf_adjustment(vocab, field, id);
            }
        }
        total
    }

    /// The evidence of a pair with `pattern`.
    pub(crate) fn evidence(
        &self,
        vocab: &Vocab,
        pattern: u32,
        a: View<'_>,
        b: View<'_>,
    ) -> Evidence {
        let mut fields = Vec::with_capacity(FIELDS.len());
        let mut total = self.prior_weight();
        for &field in &FIELDS {
            let lv = level(pattern, field);
            let mut tf = 0.0;
            if field.term_frequency() && lv == field.exact_level() {
                let (ia, ib) = match field {
                    Field::Given => (a.rec.given_id, b.rec.given_id),
                    Field::Family => (a.rec.family_id, b.rec.family_id),
                    _ => (a.rec.postcode_id, b.rec.postcode_id),
                };
                let id = if ib != crate::corpus::UNSEEN { ib } else { ia };
                tf = self.tf_adjustment(vocab, field, id);
            }
            let weight = self.weight(field, lv) + tf;
            total += weight;
            fields.push(FieldEvidence {
                field,
                level: lv,
                level_name: field.level_name(lv),
                weight,
                tf_adjustment: tf,
            });
        }
        Evidence {
            fields,
            prior_weight: self.prior_weight(),
            match_weight: total,
            probability: probability(total),
        }
    }

    /// Estimates the model: `u_counts` are level counts over `u_samples` random pairs by field;
    /// `patterns` the counts of each agreement pattern among the candidate pairs.
    pub(crate) fn train(
        u_counts: &[Vec<u64>],
        u_samples: usize,
        patterns: &HashMap<u32, u64>,
        expected_matches: f64,
        all_pairs: f64,
    ) -> Model {
        // u: the share of each level among the non-null random comparisons.
        let u: Vec<Vec<f64>> = FIELDS
            .iter()
            .map(|f| {
                let counts = &u_counts[f.index()];
                let total: u64 = counts.iter().sum();
                counts
                    .iter()
                    .map(|&c| {
                        if total == 0 {
                            1.0 / counts.len() as f64
                        } else {
                            // Half a count for levels never seen among random pairs.
                            (c as f64).max(0.5) / total as f64
                        }
                    })
                    .collect()
            })
            .collect();
        // m starts strongly on the stronger levels.
        let m: Vec<Vec<f64>> = FIELDS
            .iter()
            .map(|f| {
                let n = f.levels().len();
                let raw: Vec<f64> = (0..n).map(|l| 4f64.powi(l as i32)).collect();
                let sum: f64 = raw.iter().sum();
                raw.iter().map(|r| r / sum).collect()
            })
            .collect();
        let candidates: u64 = patterns.values().sum();
        let lambda = if candidates == 0 {
            0.5
        } else {
            (expected_matches / candidates as f64).clamp(1e-6, 0.5)
        };
        let mut model = Model::new(lambda, m, u);
        model.u_samples = u_samples;
        model.em_pairs = candidates;
        if candidates == 0 {
            return model;
        }
        // In pattern order: floating-point sums in a fixed order give the same model every run
        // (a hash map's order differs between runs, and so would the last bits).
        let mut list: Vec<(u32, f64)> = patterns.iter().map(|(&p, &c)| (p, c as f64)).collect();
        list.sort_unstable_by_key(|&(p, _)| p);
        // EM over the candidate pairs estimates m, λ and the non-matches' own agreement
        // rates among the candidates (which agree on some blocking key, so more often than
        // random pairs do); only m and λ are kept: scoring uses u from random pairs.
        let mut u_cand = model.u.clone();
        let weight_with = |model: &Model, u: &[Vec<f64>], pattern: u32| -> f64 {
            let l = model.lambda.clamp(1e-12, 1.0 - 1e-12);
            let mut w = (l / (1.0 - l)).log2();
            for &f in &FIELDS {
                let lv = level(pattern, f);
                if lv != NULL_LEVEL {
                    let i = f.index();
                    let lv = usize::from(lv);
                    w += (model.m[i][lv].max(FLOOR) / u[i][lv].max(FLOOR)).log2();
                }
            }
            w
        };
        for iteration in 1..=200 {
            let mut m_acc: Vec<Vec<f64>> =
                FIELDS.iter().map(|f| vec![0.0; f.levels().len()]).collect();
            let mut u_acc = m_acc.clone();
            let mut matches = 0.0;
            let total = candidates as f64;
            for &(pattern, count) in &list {
                // E step: probability the pattern is a match under the current parameters
                // (among candidate pairs).
                let p = probability(weight_with(&model, &u_cand, pattern));
                let w = p * count;
                let wu = (1.0 - p) * count;
                matches += w;
                for &f in &FIELDS {
                    if !is_null(pattern, f) {
                        let lv = usize::from(level(pattern, f));
                        m_acc[f.index()][lv] += w;
                        u_acc[f.index()][lv] += wu;
                    }
                }
            }
            // M step.
            let mut change: f64 = 0.0;
            for &f in &FIELDS {
                let i = f.index();
                let sum: f64 = m_acc[i].iter().sum();
                if sum > 0.0 {
                    for (l, acc) in m_acc[i].iter().enumerate() {
                        let new = (acc / sum).max(FLOOR);
                        change = change.max((new - model.m[i][l]).abs());
                        model.m[i][l] = new;
                    }
                }
                let sum_u: f64 = u_acc[i].iter().sum();
                if sum_u > 0.0 {
                    for (l, acc) in u_acc[i].iter().enumerate() {
                        u_cand[i][l] = (acc / sum_u).max(FLOOR);
                    }
                }
            }
            let new_lambda = (matches / total).clamp(1e-9, 1.0 - 1e-9);
            change = change.max((new_lambda - model.lambda).abs());
            model.lambda = new_lambda;
            model.em_iterations = iteration;
            if change < 1e-6 {
                break;
            }
        }
        model.derive();
        // The candidate pairs hold (nearly) every match, so the matches EM counted among them
        // over every possible pair is the prior that the u probabilities (from random pairs)
        // go with.
        model.lambda_candidates = model.lambda;
        model.lambda = (model.lambda * candidates as f64 / all_pairs.max(candidates as f64))
            .clamp(1e-15, 1.0 - 1e-9);
        model
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::pack;

    #[test]
    fn probability_of_weights() {
        assert!((probability(0.0) - 0.5).abs() < 1e-12);
        assert!(probability(40.0) > 0.999_999);
        assert_eq!(probability(5000.0), 1.0);
        assert!(probability(-40.0) < 1e-9);
    }

    #[test]
    fn a_stronger_level_never_weighs_less_than_a_weaker_one() {
        // Near agreement rarer among random pairs than exact agreement: freely estimated, it
        // would outweigh it.
        let mut m: Vec<Vec<f64>> = FIELDS
            .iter()
            .map(|f| vec![1.0 / f.levels().len() as f64; f.levels().len()])
            .collect();
        let mut u = m.clone();
        let given = Field::Given.index();
        m[given] = vec![0.05, 0.05, 0.05, 0.05, 0.3, 0.5];
        u[given] = vec![0.9, 0.05, 0.03, 0.019, 0.0001, 0.0009];
        let model = Model::new(0.01, m, u);
        let weights: Vec<f64> = (0..6).map(|l| model.weight(Field::Given, l)).collect();
        assert!(weights.windows(2).all(|w| w[0] <= w[1]), "{weights:?}");
        assert!((weights[4] - (0.3f64 / 0.0001).log2()).abs() < 1e-9);
        assert_eq!(weights[5], weights[4]);
    }

    #[test]
    fn em_separates_two_clear_classes() {
        // 1,000 matches agreeing on everything, 100,000 non-matches disagreeing.
        let all = |l: fn(Field) -> u8| {
            let mut levels = [0u8; 7];
            for f in FIELDS {
                levels[f.index()] = l(f);
            }
            pack(&levels)
        };
        let agree = all(|f| f.exact_level());
        let disagree = all(|_| 0);
        let patterns = HashMap::from([(agree, 1_000u64), (disagree, 100_000u64)]);
        let u_counts: Vec<Vec<u64>> = FIELDS
            .iter()
            .map(|f| {
                let mut c = vec![0u64; f.levels().len()];
                c[0] = 999_000;
                c[usize::from(f.exact_level())] = 1_000;
                c
            })
            .collect();
        let model = Model::train(&u_counts, 1_000_000, &patterns, 500.0, 101_000.0);
        assert!(
            (model.lambda - 1_000.0 / 101_000.0).abs() < 1e-3,
            "{}",
            model.lambda
        );
        assert!(model.m[Field::Family.index()][5] > 0.99);
        assert!(probability(model.pattern_weight(agree)) > 0.999);
        assert!(probability(model.pattern_weight(disagree)) < 0.001);
    }
}
