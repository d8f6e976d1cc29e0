//! The store's Patients as a trained person index, cached and kept in step with the store.
//!
//! Built on first use: every current Patient is read (in write order), turned into a matcher
//! record, and the Fellegi–Sunter model is trained on them by EM (keel-identity's
//! deduplication: u from random pairs, m and λ from the blocked candidate pairs). Each later
//! use asks the store for its version head (one indexed lookup); when Patients changed since,
//! only the changed versions are read and applied to the index as changes (the people prepared
//! so far are shared, not rebuilt: a write costs per change, not per Patient). The index is
//! prepared afresh with the same model once the changes held exceed [`fresh_after`], and
//! retrained when the number of Patients has moved by more than [`RETRAIN_SHARE`] since the
//! model was trained.

use crate::error::{FhirError, FhirResult};
use crate::identity::patient_record::{MatchSubject, stored_subject};
use crate::store::StoreRead;
use keel_identity::{Corpus, Field, Model, PersonIndex, PersonRecord, Quiet, Settings, Which};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The model is retrained when the number of Patients differs from the number it was trained
/// on by more than this share.
pub const RETRAIN_SHARE: f64 = 0.1;

/// Versions read from the store per call while following it.
const PAGE: usize = 10_000;

/// The fewest changes held before the index is prepared afresh.
const FRESH_AFTER_AT_LEAST: usize = 1_000;

/// How many changes (Patients added, changed or removed) an index of `people` holds before it
/// is prepared afresh: 1% of them, at least [`FRESH_AFTER_AT_LEAST`]. A query scans the
/// changes' blocking keys, so this bounds what changes add to a `$match`.
pub fn fresh_after(people: usize) -> usize {
    (people / 100).max(FRESH_AFTER_AT_LEAST)
}

/// The trained index over the store's Patients as of one store version.
pub struct IndexedPatients {
    pub index: PersonIndex,
    /// The people prepared with the index, in index order (sorted by Patient id); shared with
    /// the indexes kept in step from this one.
    prepared: Arc<[MatchSubject]>,
    /// Index positions of `prepared` by NHS number.
    prepared_by_nhs_number: Arc<HashMap<String, Vec<u32>>>,
    /// People added since, at the positions after `prepared`'s (shared with the indexes kept
    /// in step from this one).
    added: Vec<Arc<MatchSubject>>,
    /// How many Patients the model was trained on.
    pub trained_on: usize,
}

impl IndexedPatients {
    /// Whether the trained model can be relied on to weigh demographics: an exact agreement on
    /// given name, family name and date of birth must each be evidence *for* a match. EM over a
    /// store with (nearly) no records of one person twice has nothing to learn from and can
    /// settle on anything; then only NHS numbers decide.
    pub fn demographics_usable(&self) -> bool {
        let model = self.index.model();
        [Field::Given, Field::Family, Field::BirthDate]
            .iter()
            .all(|&f| model.weight(f, f.exact_level()) > 0.0)
    }

    /// The person at an index position.
    pub fn subject(&self, position: usize) -> &MatchSubject {
        match position.checked_sub(self.prepared.len()) {
            None => &self.prepared[position],
            Some(j) => self.added[j].as_ref(),
        }
    }

    /// The people the index holds, with their positions.
    pub fn subjects(&self) -> impl Iterator<Item = (usize, &MatchSubject)> {
        self.prepared
            .iter()
            .chain(self.added.iter().map(Arc::as_ref))
            .enumerate()
            .filter(|(i, _)| !self.index.is_removed(*i))
    }

    /// How many people the index holds.
    pub fn people(&self) -> usize {
        self.index.len()
    }

    /// Positions of the people recorded with this NHS number.
    pub fn with_nhs_number(&self, number: &str) -> Vec<u32> {
        let prepared = self
            .prepared_by_nhs_number
            .get(number)
            .into_iter()
            .flatten();
        let added = (self.prepared.len() as u32..)
            .zip(&self.added)
            .filter(|(_, s)| s.nhs.as_ref().is_some_and(|n| n.number == number))
            .map(|(i, _)| i);
        prepared
            .copied()
            .chain(added)
            .filter(|&i| !self.index.is_removed(i as usize))
            .collect()
    }

    /// This index with the Patients `ids` changed: each one's earlier position removed, and
    /// those still current (in `all`) added.
    fn changed(&self, ids: &BTreeSet<String>, all: &BTreeMap<String, MatchSubject>) -> Self {
        let mut removed = Vec::new();
        let mut added = Vec::new();
        for id in ids {
            if let Ok(i) = self
                .prepared
                .binary_search_by(|s| s.record.id.as_str().cmp(id))
            {
                removed.push(i);
            }
            removed.extend(
                (self.prepared.len()..)
                    .zip(&self.added)
                    .filter(|(_, s)| s.record.id == *id)
                    .map(|(i, _)| i),
            );
            added.extend(all.get(id).cloned().map(Arc::new));
        }
        let records: Vec<PersonRecord> = added.iter().map(|s| s.record.clone()).collect();
        IndexedPatients {
            index: self.index.changed(removed, &records),
            prepared: self.prepared.clone(),
            prepared_by_nhs_number: self.prepared_by_nhs_number.clone(),
            added: self.added.iter().cloned().chain(added).collect(),
            trained_on: self.trained_on,
        }
    }
}

/// The cache.
pub struct PatientIndex {
    settings: Settings,
    state: Mutex<Option<Cached>>,
}

struct Cached {
    /// The store's version head `current` reflects.
    head: u64,
    current: Arc<IndexedPatients>,
    /// Every current Patient by id (what the index is built from).
    subjects: BTreeMap<String, MatchSubject>,
}

impl Default for PatientIndex {
    fn default() -> Self {
        PatientIndex::new(Settings::default())
    }
}

impl PatientIndex {
    pub fn new(settings: Settings) -> PatientIndex {
        PatientIndex {
            settings,
            state: Mutex::new(None),
        }
    }

    /// The index as of the store's current version head, brought up to date first if the
    /// store's Patients changed.
    pub fn current(&self, reader: &mut dyn StoreRead) -> FhirResult<Arc<IndexedPatients>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let head = reader.version_head()?;
        let Some(cached) = state.as_mut() else {
            let mut subjects = BTreeMap::new();
            follow(reader, 0, head, &mut subjects)?;
            let current = Arc::new(self.train(&subjects));
            *state = Some(Cached {
                head,
                current: current.clone(),
                subjects,
            });
            return Ok(current);
        };
        if cached.head == head {
            return Ok(cached.current.clone());
        }
        let changed = follow(reader, cached.head, head, &mut cached.subjects)?;
        cached.head = head;
        if !changed.is_empty() {
            let current = &cached.current;
            cached.current = Arc::new(
                if needs_training(cached.subjects.len(), current.trained_on) {
                    self.train(&cached.subjects)
                } else if current.index.changes() + changed.len()
                    > fresh_after(cached.subjects.len())
                {
                    indexed(
                        &cached.subjects,
                        current.index.model().clone(),
                        current.trained_on,
                    )
                } else {
                    current.changed(&changed, &cached.subjects)
                },
            );
        }
        Ok(cached.current.clone())
    }

    /// Trains the model on `subjects` and indexes them.
    fn train(&self, subjects: &BTreeMap<String, MatchSubject>) -> IndexedPatients {
        let index = PersonIndex::build(
            subjects.values().map(|s| s.record.clone()),
            &self.settings,
            &Quiet,
        );
        IndexedPatients {
            index,
            prepared: subjects.values().cloned().collect(),
            prepared_by_nhs_number: Arc::new(by_nhs_number(subjects)),
            added: Vec::new(),
            trained_on: subjects.len(),
        }
    }
}

fn needs_training(patients: usize, trained_on: usize) -> bool {
    let moved = patients.abs_diff(trained_on) as f64;
    trained_on == 0 || moved > RETRAIN_SHARE * trained_on as f64
}

/// Applies the Patient versions in `(after, head]` to `subjects`; the ids of the Patients
/// that changed.
fn follow(
    reader: &mut dyn StoreRead,
    after: u64,
    head: u64,
    subjects: &mut BTreeMap<String, MatchSubject>,
) -> FhirResult<BTreeSet<String>> {
    let mut from = after;
    let mut changed = BTreeSet::new();
    loop {
        let page = reader.versions_between("Patient", from, head, PAGE)?;
        for version in &page {
            let r = &version.resource;
            changed.insert(r.id.clone());
            match &r.body {
                None => {
                    subjects.remove(&r.id);
                }
                Some(body) => {
                    let subject = stored_subject(&r.id, body).map_err(|e| {
                        FhirError::Store(crate::store::StoreError::Integrity(format!(
                            "a stored Patient cannot be read for matching: {e}"
                        )))
                    })?;
                    subjects.insert(r.id.clone(), subject);
                }
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE => from = last.sequence,
            _ => return Ok(changed),
        }
    }
}

/// The index over `subjects` with an already trained model.
fn indexed(
    subjects: &BTreeMap<String, MatchSubject>,
    model: Model,
    trained_on: usize,
) -> IndexedPatients {
    let mut corpus = Corpus::new();
    for s in subjects.values() {
        corpus.push(Which::Left, &s.record);
    }
    IndexedPatients {
        index: PersonIndex::with_model(corpus, model),
        prepared: subjects.values().cloned().collect(),
        prepared_by_nhs_number: Arc::new(by_nhs_number(subjects)),
        added: Vec::new(),
        trained_on,
    }
}

fn by_nhs_number(subjects: &BTreeMap<String, MatchSubject>) -> HashMap<String, Vec<u32>> {
    let mut map: HashMap<String, Vec<u32>> = HashMap::new();
    for (i, s) in subjects.values().enumerate() {
        if let Some(nhs) = &s.nhs {
            map.entry(nhs.number.clone()).or_default().push(i as u32);
        }
    }
    map
}
