//! The person index: many people, prepared once, answering "who could this be?" for one record
//! at a time (FHIR `$match`). Every blocking rule's keys are kept sorted; a query looks its own
//! keys up, scores the union of what it finds and returns the best, each with its evidence.

use crate::blocking::RULES;
use crate::corpus::{Corpus, View, Which, pattern};
use crate::link::{self, Progress, Settings};
use crate::model::{Evidence, Model};
use crate::outcome::{Decision, Outcome, Thresholds, apply_one_source_rule};
use crate::record::PersonRecord;

/// A block larger than this is not read by a query (its key says too little).
const MAX_BLOCK: usize = 2_000;

/// One candidate for a query.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Position of the person in the index.
    pub index: usize,
    /// Their record's id.
    pub id: String,
    pub evidence: Evidence,
    pub outcome: Outcome,
}

/// People indexed for matching.
pub struct PersonIndex {
    corpus: Corpus,
    model: Model,
    thresholds: Thresholds,
    /// Per rule: sorted keys and the record each belongs to.
    keys: Vec<(Vec<u64>, Vec<u32>)>,
}

impl PersonIndex {
    /// Indexes `records` and trains the model on them (deduplication's candidate pairs).
    pub fn build(
        records: impl IntoIterator<Item = PersonRecord>,
        settings: &Settings,
        progress: &dyn Progress,
    ) -> PersonIndex {
        let mut corpus = Corpus::new();
        for r in records {
            corpus.push(Which::Left, &r);
        }
        let model = link::dedupe(&corpus, settings, progress).model;
        PersonIndex::with_model(corpus, model)
    }

    /// Indexes the left side of `corpus` with an already trained model.
    pub fn with_model(corpus: Corpus, model: Model) -> PersonIndex {
        let n = corpus.len(Which::Left);
        let keys = RULES
            .iter()
            .map(|rule| {
                let mut pairs: Vec<(u64, u32)> = (0..n)
                    .filter_map(|i| (rule.key)(corpus.view(Which::Left, i)).map(|k| (k, i as u32)))
                    .collect();
                pairs.sort_unstable();
                pairs.into_iter().unzip()
            })
            .collect();
        PersonIndex {
            corpus,
            model,
            thresholds: Thresholds::default(),
            keys,
        }
    }

    pub fn with_thresholds(mut self, thresholds: Thresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn len(&self) -> usize {
        self.corpus.len(Which::Left)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// The evidence for two records compared with this index's model (term frequencies from
    /// the indexed people).
    pub fn compare(&self, a: &PersonRecord, b: &PersonRecord) -> Evidence {
        let sa = self.corpus.prepare_query(a);
        let sb = self.corpus.prepare_query(b);
        let va = View {
            rec: &sa.records[0],
            side: &sa,
        };
        let vb = View {
            rec: &sb.records[0],
            side: &sb,
        };
        self.model
            .evidence(&self.corpus.vocab, pattern(va, vb), va, vb)
    }

    /// The `n` most probable people for `query`, best first, with their evidence and outcome
    /// (two linked people of one source both go to review).
    pub fn best_candidates(&self, query: &PersonRecord, n: usize) -> Vec<Candidate> {
        let side = self.corpus.prepare_query(query);
        let q = View {
            rec: &side.records[0],
            side: &side,
        };
        let mut found: Vec<u32> = Vec::new();
        for (rule, (keys, ids)) in RULES.iter().zip(&self.keys) {
            let Some(key) = (rule.key)(q) else { continue };
            let start = keys.partition_point(|&k| k < key);
            let end = start + keys[start..].partition_point(|&k| k == key);
            if end - start <= MAX_BLOCK {
                found.extend_from_slice(&ids[start..end]);
            }
        }
        found.sort_unstable();
        found.dedup();
        let mut scored: Vec<(f64, u32, u32)> = found
            .into_iter()
            .map(|i| {
                let b = self.corpus.view(Which::Left, i as usize);
                let p = pattern(q, b);
                let w =
                    self.model.pattern_weight(p) + self.model.tf_total(&self.corpus.vocab, p, q, b);
                (w, i, p)
            })
            .collect();
        scored.sort_unstable_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        scored.truncate(n);
        let mut decisions: Vec<Decision> = scored
            .iter()
            .map(|&(w, i, _)| Decision {
                a: u32::MAX,
                b: i,
                source_a: u32::MAX,
                source_b: self.corpus.view(Which::Left, i as usize).rec.source,
                outcome: self.thresholds.outcome(crate::model::probability(w)),
            })
            .collect();
        apply_one_source_rule(&mut decisions);
        scored
            .iter()
            .zip(decisions)
            .map(|(&(_, i, p), d)| {
                let b = self.corpus.view(Which::Left, i as usize);
                Candidate {
                    index: i as usize,
                    id: self.corpus.id(Which::Left, i as usize).to_string(),
                    evidence: self.model.evidence(&self.corpus.vocab, p, q, b),
                    outcome: d.outcome,
                }
            })
            .collect()
    }
}
