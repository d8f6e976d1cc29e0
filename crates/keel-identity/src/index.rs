//! The person index: many people, prepared once, answering "who could this be?" for one record
//! at a time (FHIR `$match`). Every blocking rule's keys are kept sorted; a query looks its own
//! keys up, scores the union of what it finds and returns the best, each with its evidence.
//!
//! The prepared people are shared ([`Arc`]) between an index and its successors. Keeping an
//! index in step with a changing store ([`PersonIndex::changed`]) costs per change, not per
//! person: people added since the shared part was prepared are held beside it with their
//! blocking keys, people removed are left out of every answer. Positions never move, so a
//! position handed out stays the same person's until the index is prepared afresh.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::blocking::RULES;
use crate::corpus::{Corpus, Side, UNSEEN, View, Which, pattern};
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

/// The people prepared in one pass.
struct Prepared {
    corpus: Corpus,
    /// Per rule: sorted keys and the record each belongs to.
    keys: Vec<(Vec<u64>, Vec<u32>)>,
}

/// A person added after the prepared part: their record (against the prepared vocabulary, as a
/// query is) and their key under each rule. Shared between an index and its successors, so that
/// copying the changes held copies pointers.
struct Added {
    side: Side,
    keys: Vec<Option<u64>>,
}

/// People indexed for matching.
#[derive(Clone)]
pub struct PersonIndex {
    prepared: Arc<Prepared>,
    model: Model,
    thresholds: Thresholds,
    /// Positions from the prepared part's length on.
    added: Vec<Arc<Added>>,
    removed: HashSet<u32>,
    /// Values first seen in added people (names, postcodes, practices), with ids after the
    /// prepared vocabulary's, so that they block and agree as the prepared ones do. They get no
    /// term-frequency adjustment.
    added_values: HashMap<Arc<str>, u32>,
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
            prepared: Arc::new(Prepared { corpus, keys }),
            model,
            thresholds: Thresholds::default(),
            added: Vec::new(),
            removed: HashSet::new(),
            added_values: HashMap::new(),
        }
    }

    /// This index with the people at `removed` positions left out and `added` people put at
    /// the next positions ([`PersonIndex::positions`] on), in order. The prepared people are
    /// shared, not copied; the cost is in the changes held ([`PersonIndex::changes`]), so a
    /// caller prepares the index afresh once they grow large.
    ///
    /// # Panics
    /// When a removed position is not one of this index's.
    pub fn changed(
        &self,
        removed: impl IntoIterator<Item = usize>,
        added: &[PersonRecord],
    ) -> PersonIndex {
        let mut next = self.clone();
        for position in removed {
            assert!(position < self.positions(), "no person at {position}");
            next.removed.insert(position as u32);
        }
        let first_free = self.prepared.corpus.vocab.next_id();
        for record in added {
            let values = &mut next.added_values;
            let side = self.prepared.corpus.prepare_with(record, |text| {
                let id = first_free + values.len() as u32;
                *values.entry(text.into()).or_insert(id)
            });
            let keys = RULES.iter().map(|rule| (rule.key)(single(&side))).collect();
            next.added.push(Arc::new(Added { side, keys }));
        }
        next
    }

    pub fn with_thresholds(mut self, thresholds: Thresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// How many people the index holds.
    pub fn len(&self) -> usize {
        self.positions() - self.removed.len()
    }

    /// Positions handed out so far (removed people's included): the next person added is put
    /// at this position.
    pub fn positions(&self) -> usize {
        self.prepared.corpus.len(Which::Left) + self.added.len()
    }

    /// People added and removed since the index was prepared.
    pub fn changes(&self) -> usize {
        self.added.len() + self.removed.len()
    }

    /// Whether the person at `position` has been removed.
    pub fn is_removed(&self, position: usize) -> bool {
        self.removed.contains(&(position as u32))
    }

    /// The record id of the person at `position`.
    pub fn id(&self, position: usize) -> &str {
        let v = self.view(position);
        v.side.text(v.rec.id)
    }

    /// `record` prepared as a query: against the prepared vocabulary and the added values.
    fn prepare(&self, record: &PersonRecord) -> Side {
        self.prepared.corpus.prepare_with(record, |text| {
            self.added_values.get(text).copied().unwrap_or(UNSEEN)
        })
    }

    fn view(&self, position: usize) -> View<'_> {
        let prepared = self.prepared.corpus.len(Which::Left);
        match position.checked_sub(prepared) {
            None => self.prepared.corpus.view(Which::Left, position),
            Some(j) => single(&self.added[j].side),
        }
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
        let corpus = &self.prepared.corpus;
        let sa = self.prepare(a);
        let sb = self.prepare(b);
        let (va, vb) = (single(&sa), single(&sb));
        self.model.evidence(&corpus.vocab, pattern(va, vb), va, vb)
    }

    /// The `n` most probable people for `query`, best first, with their evidence and outcome
    /// (two linked people of one source both go to review).
    pub fn best_candidates(&self, query: &PersonRecord, n: usize) -> Vec<Candidate> {
        let vocab = &self.prepared.corpus.vocab;
        let side = self.prepare(query);
        let q = single(&side);
        let first_added = self.prepared.corpus.len(Which::Left) as u32;
        let mut found: Vec<u32> = Vec::new();
        for (r, (rule, (keys, ids))) in RULES.iter().zip(&self.prepared.keys).enumerate() {
            let Some(key) = (rule.key)(q) else { continue };
            let start = keys.partition_point(|&k| k < key);
            let end = start + keys[start..].partition_point(|&k| k == key);
            let added: Vec<u32> = (first_added..)
                .zip(&self.added)
                .filter(|(_, a)| a.keys[r] == Some(key))
                .map(|(i, _)| i)
                .collect();
            if end - start + added.len() <= MAX_BLOCK {
                found.extend_from_slice(&ids[start..end]);
                found.extend(added);
            }
        }
        found.sort_unstable();
        found.dedup();
        found.retain(|i| !self.removed.contains(i));
        let mut scored: Vec<(f64, u32, u32)> = found
            .into_iter()
            .map(|i| {
                let b = self.view(i as usize);
                let p = pattern(q, b);
                let w = self.model.pattern_weight(p) + self.model.tf_total(vocab, p, q, b);
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
                source_b: self.view(i as usize).rec.source,
                outcome: self.thresholds.outcome(crate::model::probability(w)),
            })
            .collect();
        apply_one_source_rule(&mut decisions);
        scored
            .iter()
            .zip(decisions)
            .map(|(&(_, i, p), d)| {
                let b = self.view(i as usize);
                Candidate {
                    index: i as usize,
                    id: b.side.text(b.rec.id).to_string(),
                    evidence: self.model.evidence(vocab, p, q, b),
                    outcome: d.outcome,
                }
            })
            .collect()
    }
}

/// The view of a side holding one record (a query, or a person added to an index).
fn single(side: &Side) -> View<'_> {
    View {
        rec: &side.records[0],
        side,
    }
}
