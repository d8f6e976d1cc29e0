//! What clients wrote: per patient record, the accepted writes (merged into every later
//! read), and per client request id the original answer (so a retried write is recognised).

use std::collections::HashMap;

use axum::http::StatusCode;

use super::guid::Guid;
use super::request::{CodedEntryInput, ConsultationInput, DocumentInput, EntryKind, TaskInput};
use crate::records::RecordRef;

/// A coded entry written alone or inside a consultation.
#[derive(Debug, Clone)]
pub struct WrittenEntry {
    pub guid: Guid,
    pub input: CodedEntryInput,
    pub author: usize,
    pub consultation: Option<Guid>,
}

impl WrittenEntry {
    pub fn is_problem(&self) -> bool {
        matches!(self.input.kind, EntryKind::Problem { .. })
    }
}

/// A written consultation; its coded entries are in [`Written::entries`], each section
/// lists their GUIDs.
#[derive(Debug, Clone)]
pub struct WrittenConsultation {
    pub guid: Guid,
    pub input: ConsultationInput,
    pub author: usize,
    /// Per section, the GUIDs of its coded entries (problem or event), in order.
    pub section_entries: Vec<Vec<(Guid, bool)>>,
}

#[derive(Debug, Clone)]
pub struct WrittenTask {
    pub guid: Guid,
    pub input: TaskInput,
    pub owner: usize,
    pub requester: usize,
}

#[derive(Debug, Clone)]
pub struct WrittenDocument {
    pub guid: Guid,
    pub input: DocumentInput,
    pub author: usize,
}

/// Everything written to one patient record, in write order.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub consultations: Vec<WrittenConsultation>,
    pub entries: Vec<WrittenEntry>,
    pub tasks: Vec<WrittenTask>,
    pub documents: Vec<WrittenDocument>,
    /// Items written so far (names the next GUID: `{record id}-w{n}`).
    items: u32,
}

impl Written {
    /// The GUID of the next written item of record `record_id`.
    pub fn next_guid(&mut self, record_id: &str) -> Guid {
        self.items += 1;
        Guid::item(record_id, "w", self.items)
    }
}

/// The answer given to a write, kept to replay it for the same client request id.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Method, path and body of the original request.
    pub fingerprint: Vec<u8>,
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// The simulator's mutable state.
#[derive(Debug, Default)]
pub struct Overlay {
    pub written: HashMap<RecordRef, Written>,
    pub replays: HashMap<String, Replay>,
}

impl Overlay {
    pub fn written(&self, at: RecordRef) -> Option<&Written> {
        self.written.get(&at)
    }
}
