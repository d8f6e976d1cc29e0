//! Linking two sets of records (or deduplicating one): blocking, estimating the model from the
//! data, and scoring every candidate pair.

use crate::blocking::{BlockingRule, RULES};
use crate::compare::FIELDS;
use crate::corpus::{Corpus, View, Which, level, pattern};
use crate::model::{Evidence, Model, probability};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Worker threads.
    pub threads: usize,
    /// A block (one key of one rule) making more pairs than this is skipped: such keys are
    /// too common to say anything, and other rules still reach their true matches.
    pub max_block_pairs: u64,
    /// Random pairs compared to estimate u.
    pub u_samples: usize,
    /// Seed of the random pairs.
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_block_pairs: 20_000,
            u_samples: 1_000_000,
            seed: 42,
        }
    }
}

/// Progress of a long run, for a progress display.
pub trait Progress: Sync {
    /// A new stage with `total` units of work.
    fn stage(&self, _name: &str, _total: u64) {}
    /// `n` more units done.
    fn advance(&self, _n: u64) {}
}

/// No progress display.
pub struct Quiet;
impl Progress for Quiet {}

/// A candidate pair and its score. `left` and `right` index the two sides (in deduplication
/// both index the one side, `left < right`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredPair {
    pub left: u32,
    pub right: u32,
    /// Packed agreement levels.
    pub pattern: u32,
    /// Match weight (log2 odds), term frequencies included.
    pub weight: f32,
}

impl ScoredPair {
    pub fn probability(&self) -> f64 {
        probability(f64::from(self.weight))
    }
}

/// What a run found.
#[derive(Debug)]
pub struct LinkResult {
    pub model: Model,
    /// Every candidate pair, scored.
    pub pairs: Vec<ScoredPair>,
    /// Blocks skipped as too large, by rule.
    pub skipped_blocks: Vec<(&'static str, u64)>,
    pub dedupe: bool,
}

impl LinkResult {
    /// The evidence of one of the pairs.
    pub fn evidence(&self, corpus: &Corpus, pair: &ScoredPair) -> Evidence {
        let (a, b) = views(corpus, self.dedupe, pair.left, pair.right);
        self.model.evidence(&corpus.vocab, pair.pattern, a, b)
    }
}

fn views(corpus: &Corpus, dedupe: bool, l: u32, r: u32) -> (View<'_>, View<'_>) {
    let right = if dedupe { Which::Left } else { Which::Right };
    (
        corpus.view(Which::Left, l as usize),
        corpus.view(right, r as usize),
    )
}

/// Links the left records to the right ones.
pub fn link(corpus: &Corpus, settings: &Settings, progress: &dyn Progress) -> LinkResult {
    run(corpus, false, settings, progress)
}

/// Finds the duplicates among the left records.
pub fn dedupe(corpus: &Corpus, settings: &Settings, progress: &dyn Progress) -> LinkResult {
    run(corpus, true, settings, progress)
}

fn run(corpus: &Corpus, dedupe: bool, settings: &Settings, progress: &dyn Progress) -> LinkResult {
    let threads = settings.threads.max(1);
    let u_counts = sample_u(corpus, dedupe, settings, progress);
    let (mut pairs, patterns, skipped) = candidates(corpus, dedupe, threads, settings, progress);
    let n_left = corpus.len(Which::Left) as f64;
    let expected = if dedupe {
        n_left * 0.1
    } else {
        n_left.min(corpus.len(Which::Right) as f64) * 0.5
    };
    progress.stage("estimating m and lambda (EM)", 1);
    let all_pairs = corpus.all_pairs(dedupe) as f64;
    let mut model = Model::train(
        &u_counts,
        settings.u_samples,
        &patterns,
        expected,
        all_pairs,
    );
    progress.advance(1);
    model.em_pairs = pairs.len() as u64;
    score(corpus, dedupe, &model, &mut pairs, threads, progress);
    LinkResult {
        model,
        pairs,
        skipped_blocks: skipped,
        dedupe,
    }
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// Level counts per field over random pairs.
fn sample_u(
    corpus: &Corpus,
    dedupe: bool,
    settings: &Settings,
    progress: &dyn Progress,
) -> Vec<Vec<u64>> {
    let nl = corpus.len(Which::Left);
    let nr = if dedupe { nl } else { corpus.len(Which::Right) };
    let threads = settings.threads.max(1);
    let samples = if nl == 0 || nr == 0 || (dedupe && nl < 2) {
        0
    } else {
        settings.u_samples
    };
    progress.stage("estimating u (random pairs)", samples as u64);
    let per_thread = samples.div_ceil(threads);
    let results: Vec<Vec<Vec<u64>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut counts: Vec<Vec<u64>> =
                        FIELDS.iter().map(|f| vec![0; f.levels().len()]).collect();
                    let mut rng =
                        SplitMix(settings.seed ^ (t as u64).wrapping_mul(0xa076_1d64_78bd_642f));
                    let n = per_thread.min(samples.saturating_sub(t * per_thread));
                    for done in 0..n {
                        let l = rng.below(nl);
                        let mut r = rng.below(nr);
                        if dedupe && r == l {
                            r = (r + 1) % nr;
                        }
                        let (a, b) = views(corpus, dedupe, l as u32, r as u32);
                        let p = pattern(a, b);
                        for f in FIELDS {
                            let lv = level(p, f);
                            if let Some(c) = counts[f.index()].get_mut(usize::from(lv)) {
                                *c += 1;
                            }
                        }
                        if done % 65_536 == 65_535 {
                            progress.advance(65_536);
                        }
                    }
                    counts
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut total: Vec<Vec<u64>> = FIELDS.iter().map(|f| vec![0; f.levels().len()]).collect();
    for part in results {
        for (t, p) in total.iter_mut().zip(part) {
            for (a, b) in t.iter_mut().zip(p) {
                *a += b;
            }
        }
    }
    total
}

/// Keys of one rule for one side, sorted.
fn keyed(corpus: &Corpus, which: Which, rule: &BlockingRule) -> Vec<(u64, u32)> {
    let n = corpus.len(which);
    let mut keys: Vec<(u64, u32)> = (0..n)
        .filter_map(|i| (rule.key)(corpus.view(which, i)).map(|k| (k, i as u32)))
        .collect();
    keys.sort_unstable();
    keys
}

/// A block: ranges of the sorted left and right keys sharing one key.
#[derive(Clone, Copy)]
struct Block {
    l: (usize, usize),
    r: (usize, usize),
    pairs: u64,
}

type Candidates = (Vec<ScoredPair>, HashMap<u32, u64>, Vec<(&'static str, u64)>);

fn candidates(
    corpus: &Corpus,
    dedupe: bool,
    threads: usize,
    settings: &Settings,
    progress: &dyn Progress,
) -> Candidates {
    let mut all: Vec<ScoredPair> = Vec::new();
    let mut patterns: HashMap<u32, u64> = HashMap::new();
    let mut skipped_by_rule = Vec::new();
    let mut skipped: Vec<HashSet<u64>> = Vec::new();
    progress.stage("blocking and comparing", RULES.len() as u64);
    for (ri, rule) in RULES.iter().enumerate() {
        let (lk, rk) = if dedupe {
            (keyed(corpus, Which::Left, rule), Vec::new())
        } else {
            std::thread::scope(|s| {
                let left = s.spawn(|| keyed(corpus, Which::Left, rule));
                let right = keyed(corpus, Which::Right, rule);
                (left.join().unwrap_or_default(), right)
            })
        };
        let rk_ref: &[(u64, u32)] = if dedupe { &lk } else { &rk };
        let mut blocks = Vec::new();
        let mut skip = HashSet::new();
        let (mut i, mut j) = (0, 0);
        while i < lk.len() && j < rk_ref.len() {
            let (ki, kj) = (lk[i].0, rk_ref[j].0);
            if ki < kj {
                i += 1;
            } else if kj < ki {
                j += 1;
            } else {
                let ie = i + lk[i..].iter().take_while(|e| e.0 == ki).count();
                let je = j + rk_ref[j..].iter().take_while(|e| e.0 == ki).count();
                let (nl, nr) = ((ie - i) as u64, (je - j) as u64);
                let pairs = if dedupe {
                    nl * nl.saturating_sub(1) / 2
                } else {
                    nl * nr
                };
                if pairs > settings.max_block_pairs {
                    skip.insert(ki);
                } else if pairs > 0 {
                    blocks.push(Block {
                        l: (i, ie),
                        r: (j, je),
                        pairs,
                    });
                }
                i = ie;
                j = je;
            }
        }
        skipped_by_rule.push((rule.name, skip.len() as u64));
        skipped.push(skip);
        // Split the blocks into one run per thread with about equal numbers of pairs.
        let total: u64 = blocks.iter().map(|b| b.pairs).sum();
        let share = total / threads as u64 + 1;
        let mut runs: Vec<&[Block]> = Vec::new();
        let mut start = 0;
        let mut acc = 0;
        for (k, b) in blocks.iter().enumerate() {
            acc += b.pairs;
            if acc >= share {
                runs.push(&blocks[start..=k]);
                start = k + 1;
                acc = 0;
            }
        }
        runs.push(&blocks[start..]);
        let earlier = &RULES[..ri];
        let earlier_skips = &skipped[..ri];
        let lk_ref = &lk;
        let parts: Vec<(Vec<ScoredPair>, HashMap<u32, u64>)> = std::thread::scope(|s| {
            let handles: Vec<_> = runs
                .into_iter()
                .map(|run| {
                    s.spawn(move || {
                        let mut out = Vec::new();
                        let mut counts: HashMap<u32, u64> = HashMap::new();
                        let mut emit = |l: u32, r: u32| {
                            let (a, b) = views(corpus, dedupe, l, r);
                            if covered(earlier, earlier_skips, a, b) {
                                return;
                            }
                            let p = pattern(a, b);
                            *counts.entry(p).or_default() += 1;
                            out.push(ScoredPair {
                                left: l,
                                right: r,
                                pattern: p,
                                weight: 0.0,
                            });
                        };
                        for block in run {
                            let ls = &lk_ref[block.l.0..block.l.1];
                            if dedupe {
                                for (x, &(_, a)) in ls.iter().enumerate() {
                                    for &(_, b) in &ls[x + 1..] {
                                        emit(a.min(b), a.max(b));
                                    }
                                }
                            } else {
                                for &(_, a) in ls {
                                    for &(_, b) in &rk_ref[block.r.0..block.r.1] {
                                        emit(a, b);
                                    }
                                }
                            }
                        }
                        (out, counts)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for (out, counts) in parts {
            all.extend(out);
            for (p, c) in counts {
                *patterns.entry(p).or_default() += c;
            }
        }
        progress.advance(1);
    }
    (all, patterns, skipped_by_rule)
}

/// Whether an earlier rule already made the pair `a`, `b`.
fn covered(earlier: &[BlockingRule], skipped: &[HashSet<u64>], a: View<'_>, b: View<'_>) -> bool {
    earlier
        .iter()
        .zip(skipped)
        .any(|(rule, skip)| match ((rule.key)(a), (rule.key)(b)) {
            (Some(ka), Some(kb)) => ka == kb && !skip.contains(&ka),
            _ => false,
        })
}

fn score(
    corpus: &Corpus,
    dedupe: bool,
    model: &Model,
    pairs: &mut [ScoredPair],
    threads: usize,
    progress: &dyn Progress,
) {
    progress.stage("scoring", pairs.len() as u64);
    let chunk = pairs.len().div_ceil(threads).max(1);
    let done = AtomicU64::new(0);
    std::thread::scope(|s| {
        for part in pairs.chunks_mut(chunk) {
            let done = &done;
            s.spawn(move || {
                let mut cache: HashMap<u32, f64> = HashMap::new();
                for pair in part.iter_mut() {
                    let base = *cache
                        .entry(pair.pattern)
                        .or_insert_with(|| model.pattern_weight(pair.pattern));
                    let (a, b) = views(corpus, dedupe, pair.left, pair.right);
                    pair.weight = (base + model.tf_total(&corpus.vocab, pair.pattern, a, b)) as f32;
                }
                done.fetch_add(part.len() as u64, Ordering::Relaxed);
                progress.advance(part.len() as u64);
            });
        }
    });
}
