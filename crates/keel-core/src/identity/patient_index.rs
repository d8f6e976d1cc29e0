//! The store's Patients as a trained person index, cached and kept in step with the store.
//!
//! Built on first use: every current Patient is read (in write order), turned into a matcher
//! record, and the Fellegi–Sunter model is trained on them by EM (keel-identity's
//! deduplication: u from random pairs, m and λ from the blocked candidate pairs). Each later
//! use asks the store for its version head (one indexed lookup); when Patients changed since,
//! only the changed versions are read, and the index is rebuilt over the new set with the same
//! model — or retrained when the number of Patients has moved by more than
//! [`RETRAIN_SHARE`] since the model was trained.

use crate::error::{FhirError, FhirResult};
use crate::identity::patient_record::{MatchSubject, stored_subject};
use crate::store::StoreRead;
use keel_identity::{Corpus, Field, Model, PersonIndex, Quiet, Settings, Which};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The model is retrained when the number of Patients differs from the number it was trained
/// on by more than this share.
pub const RETRAIN_SHARE: f64 = 0.1;

/// Versions read from the store per call while following it.
const PAGE: usize = 10_000;

/// The trained index over the store's Patients as of one store version.
pub struct IndexedPatients {
    pub index: PersonIndex,
    /// The people in index order (sorted by Patient id).
    pub subjects: Vec<MatchSubject>,
    /// Index positions by NHS number.
    by_nhs_number: HashMap<String, Vec<u32>>,
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

    /// Positions of the people recorded with this NHS number.
    pub fn with_nhs_number(&self, number: &str) -> &[u32] {
        self.by_nhs_number.get(number).map_or(&[], Vec::as_slice)
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
        if changed {
            cached.current = Arc::new(
                if needs_training(cached.subjects.len(), cached.current.trained_on) {
                    self.train(&cached.subjects)
                } else {
                    indexed(
                        &cached.subjects,
                        cached.current.index.model().clone(),
                        cached.current.trained_on,
                    )
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
            subjects: subjects.values().cloned().collect(),
            by_nhs_number: by_nhs_number(subjects),
            trained_on: subjects.len(),
        }
    }
}

fn needs_training(patients: usize, trained_on: usize) -> bool {
    let moved = patients.abs_diff(trained_on) as f64;
    trained_on == 0 || moved > RETRAIN_SHARE * trained_on as f64
}

/// Applies the Patient versions in `(after, head]` to `subjects`; whether any changed.
fn follow(
    reader: &mut dyn StoreRead,
    after: u64,
    head: u64,
    subjects: &mut BTreeMap<String, MatchSubject>,
) -> FhirResult<bool> {
    let mut from = after;
    let mut changed = false;
    loop {
        let page = reader.versions_between("Patient", from, head, PAGE)?;
        for version in &page {
            changed = true;
            let r = &version.resource;
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
        subjects: subjects.values().cloned().collect(),
        by_nhs_number: by_nhs_number(subjects),
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
