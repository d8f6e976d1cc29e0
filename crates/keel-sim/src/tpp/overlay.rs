//! What the API has written, per patient, held in memory and merged into every later read.
//!
//! Each accepted write is stored whole under one lock, after its body was fully validated, so
//! a reader sees all of a write or none of it. Nothing is deduplicated: two writes with the
//! same `ExternalReference` are two entries (this supplier offers no client request id).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::rows::{RowKind, item_row};
use super::writes::{
    CodedEntryWrite, CodedItem, ConsultationWrite, DocumentWrite, TaskWrite, When,
};
use crate::model::ConsultationKind;

/// A journal event written through the API.
#[derive(Debug, Clone)]
pub struct WrittenEvent {
    pub row: u64,
    pub when: When,
    /// Set on the event the client wrote; coded items of a written consultation carry their
    /// consultation's row instead.
    pub external_reference: Option<String>,
    pub consultation_row: Option<u64>,
    pub confidential: bool,
    pub entered_by: &'static str,
    pub detail: WrittenDetail,
}

#[derive(Debug, Clone)]
pub enum WrittenDetail {
    Consultation {
        kind: ConsultationKind,
        text: String,
    },
    CodedEntry(CodedItem),
    Document {
        title: String,
        mime_type: String,
        content: Arc<[u8]>,
    },
}

/// A task written through the API.
#[derive(Debug, Clone)]
pub struct WrittenTask {
    pub row: u64,
    pub external_reference: String,
    pub when: When,
    pub description: String,
    pub urgent: bool,
    pub entered_by: &'static str,
}

/// One patient's written items.
#[derive(Debug, Clone, Default)]
pub struct PatientWrites {
    /// Last write counter used (the `n` of [`RowKind::Written`] RowIdentifiers).
    counter: u64,
    pub events: Vec<WrittenEvent>,
    pub tasks: Vec<WrittenTask>,
}

impl PatientWrites {
    fn next_row(&mut self, patient: u64) -> u64 {
        self.counter += 1;
        item_row(patient, RowKind::Written, self.counter)
    }
}

/// Written items of every patient, by patient RowIdentifier.
#[derive(Debug, Default)]
pub struct Overlay {
    patients: Mutex<HashMap<u64, PatientWrites>>,
}

impl Overlay {
    fn with<T>(&self, patient: u64, f: impl FnOnce(&mut PatientWrites) -> T) -> T {
        let mut all = self.patients.lock().unwrap_or_else(|e| e.into_inner());
        f(all.entry(patient).or_default())
    }

    /// A copy of what was written for `patient` (empty when nothing was).
    pub fn snapshot(&self, patient: u64) -> PatientWrites {
        let all = self.patients.lock().unwrap_or_else(|e| e.into_inner());
        all.get(&patient).cloned().unwrap_or_default()
    }

    /// Stores a consultation and its coded items; returns the consultation's row and the
    /// items' rows.
    pub fn consultation(
        &self,
        patient: u64,
        write: ConsultationWrite,
        entered_by: &'static str,
    ) -> (u64, Vec<u64>) {
        self.with(patient, |p| {
            let row = p.next_row(patient);
            p.events.push(WrittenEvent {
                row,
                when: write.when,
                external_reference: Some(write.external_reference),
                consultation_row: None,
                confidential: write.confidential,
                entered_by,
                detail: WrittenDetail::Consultation {
                    kind: write.kind,
                    text: write.text,
                },
            });
            let mut item_rows = Vec::with_capacity(write.items.len());
            for item in write.items {
                let item_row = p.next_row(patient);
                item_rows.push(item_row);
                p.events.push(WrittenEvent {
                    row: item_row,
                    when: write.when,
                    external_reference: None,
                    consultation_row: Some(row),
                    confidential: write.confidential,
                    entered_by,
                    detail: WrittenDetail::CodedEntry(item),
                });
            }
            (row, item_rows)
        })
    }

    pub fn coded_entry(
        &self,
        patient: u64,
        write: CodedEntryWrite,
        entered_by: &'static str,
    ) -> u64 {
        self.with(patient, |p| {
            let row = p.next_row(patient);
            p.events.push(WrittenEvent {
                row,
                when: write.when,
                external_reference: Some(write.external_reference),
                consultation_row: None,
                confidential: write.confidential,
                entered_by,
                detail: WrittenDetail::CodedEntry(write.item),
            });
            row
        })
    }

    pub fn document(&self, patient: u64, write: DocumentWrite, entered_by: &'static str) -> u64 {
        self.with(patient, |p| {
            let row = p.next_row(patient);
            p.events.push(WrittenEvent {
                row,
                when: write.when,
                external_reference: Some(write.external_reference),
                consultation_row: None,
                confidential: false,
                entered_by,
                detail: WrittenDetail::Document {
                    title: write.title,
                    mime_type: write.mime_type,
                    content: write.content.into(),
                },
            });
            row
        })
    }

    pub fn task(&self, patient: u64, write: TaskWrite, entered_by: &'static str) -> u64 {
        self.with(patient, |p| {
            let row = p.next_row(patient);
            p.tasks.push(WrittenTask {
                row,
                external_reference: write.external_reference,
                when: write.when,
                description: write.description,
                urgent: write.urgent,
                entered_by,
            });
            row
        })
    }
}
