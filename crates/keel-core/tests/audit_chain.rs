//! Properties of the audit hash chain: an untouched log verifies, and any single edit,
//! deletion, insertion or swap of stored entries is found at its place.

use ed25519_dalek::SigningKey;
use keel_core::audit::{
    AuditEntry, AuditOutcome, AuditRecord, ChainHash, Checkpoint, CheckpointSigner, Subject,
    Tampering, VerifiedRange, append, verify,
};
use keel_core::store::{AuditLog, StoreResult};
use keel_core::{CorrelationId, RequestContext};
use keel_model::Instant;
use proptest::prelude::*;
use std::num::NonZeroU64;

const EVERY: u64 = 4;

/// An in-memory log: the entries and checkpoints as a store would keep them.
#[derive(Default, Clone)]
struct MemoryLog {
    entries: Vec<AuditEntry>,
    checkpoints: Vec<Checkpoint>,
}

impl AuditLog for MemoryLog {
    fn audit_head(&mut self) -> StoreResult<Option<(u64, ChainHash)>> {
        Ok(self.entries.last().map(|e| (e.sequence, e.hash)))
    }
    fn append_audit(&mut self, entry: &AuditEntry) -> StoreResult<()> {
        self.entries.push(entry.clone());
        Ok(())
    }
    fn append_audit_checkpoint(&mut self, checkpoint: &Checkpoint) -> StoreResult<()> {
        self.checkpoints.push(checkpoint.clone());
        Ok(())
    }
}

fn signer(seed: u8) -> CheckpointSigner {
    CheckpointSigner::new(
        SigningKey::from_bytes(&[seed; 32]),
        NonZeroU64::new(EVERY).expect("non-zero"),
    )
}

fn record(n: usize) -> AuditRecord {
    let ctx =
        RequestContext::local_development(CorrelationId::parse(&format!("req-{n}")).expect("id"));
    AuditRecord::new(
        &ctx,
        Instant::parse("2026-01-02T03:04:05Z").expect("instant"),
        Subject {
            interaction: "read".into(),
            patients: vec![format!("Patient/{n}")],
            resources: vec![format!("Patient/{n}")],
        },
        AuditOutcome::Permit,
    )
}

fn log_of(len: usize) -> (MemoryLog, CheckpointSigner) {
    let signer = signer(7);
    let mut log = MemoryLog::default();
    for n in 0..len {
        append(&mut log, &record(n), &signer).expect("append");
    }
    (log, signer)
}

fn check(log: &MemoryLog, signer: &CheckpointSigner) -> Result<VerifiedRange, Tampering> {
    verify(
        &log.entries,
        &log.checkpoints,
        &signer.verifying_key(),
        signer.every(),
    )
}

/// The last sequence covered by a checkpoint in a log of `len` entries.
fn signed_through(len: usize) -> u64 {
    len as u64 / EVERY * EVERY
}

/// Renumbers entries from `from` (an index) by `delta`, as `UPDATE audit SET sequence = ...`.
fn renumber(log: &mut MemoryLog, from: usize, delta: i64) {
    for e in &mut log.entries[from..] {
        e.sequence = e.sequence.checked_add_signed(delta).expect("sequence");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn an_untouched_log_verifies(len in 0usize..40) {
        let (log, signer) = log_of(len);
        let range = check(&log, &signer).expect("verifies");
        prop_assert_eq!(range.last, len as u64);
        prop_assert_eq!(range.signed_through, signed_through(len));
    }

    #[test]
    fn an_edit_is_found_at_its_entry(len in 1usize..40, at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let (mut log, signer) = log_of(len);
        let i = at.index(len);
        let sequence = i as u64 + 1;
        let record = &mut log.entries[i].record;
        let pos = byte as usize % record.len();
        record[pos] = if record[pos] == b'x' { b'y' } else { b'x' };
        let found = check(&log, &signer).expect_err("detected");
        if i + 1 < len {
            prop_assert_eq!(found, Tampering::Edited { sequence });
        } else {
            prop_assert_eq!(found, Tampering::Unlinked { sequence });
        }
    }

    #[test]
    fn a_deletion_is_found_at_its_place(len in 2usize..40, at in any::<prop::sample::Index>(), close_gap in any::<bool>()) {
        let (mut log, signer) = log_of(len);
        let i = at.index(len);
        let sequence = i as u64 + 1;
        log.entries.remove(i);
        if close_gap {
            renumber(&mut log, i, -1);
        }
        let result = check(&log, &signer);
        if i + 1 == len {
            // The last entry: seen only when a checkpoint was signed for it.
            if sequence <= signed_through(len) {
                prop_assert_eq!(result, Err(Tampering::Truncated { last: sequence - 1, checkpoint: sequence }));
            } else {
                prop_assert_eq!(result.map(|r| r.last), Ok(sequence - 1));
            }
        } else if close_gap && i + 2 == len {
            prop_assert_eq!(result.map_err(|t| t.sequence()), Err(sequence));
        } else {
            prop_assert_eq!(result, Err(Tampering::Deleted { first: sequence, last: sequence }));
        }
    }

    #[test]
    fn an_insertion_is_found_at_its_place(len in 1usize..40, at in any::<prop::sample::Index>(), valid_hash in any::<bool>()) {
        let (mut log, signer) = log_of(len);
        let i = at.index(len);
        let sequence = i as u64 + 1;
        let forged = record(1000).canonical_bytes().expect("encode");
        let previous = if i == 0 { ChainHash::GENESIS } else { log.entries[i - 1].hash };
        let hash = if valid_hash { ChainHash::link(&previous, sequence, &forged) } else { ChainHash([9; 32]) };
        renumber(&mut log, i, 1);
        log.entries.insert(i, AuditEntry { sequence, record: forged, hash });
        prop_assert_eq!(check(&log, &signer), Err(Tampering::Inserted { sequence }));
    }

    #[test]
    fn a_swap_is_found_at_the_first_entry_moved(len in 2usize..40, a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let (mut log, signer) = log_of(len);
        let (a, b) = (a.index(len), b.index(len));
        prop_assume!(a != b);
        let (a, b) = (a.min(b), a.max(b));
        let (first, second) = (log.entries[a].clone(), log.entries[b].clone());
        log.entries[a] = AuditEntry { sequence: first.sequence, ..second };
        log.entries[b] = AuditEntry { sequence: log.entries[b].sequence, ..first };
        prop_assert_eq!(
            check(&log, &signer),
            Err(Tampering::Reordered { sequence: a as u64 + 1, belongs_at: b as u64 + 1 })
        );
    }
}

#[test]
fn a_rewrite_with_recomputed_hashes_is_caught_by_the_next_checkpoint() {
    let (mut log, signer) = log_of(12);
    log.entries[5].record = record(99).canonical_bytes().expect("encode");
    let mut previous = log.entries[4].hash;
    for e in &mut log.entries[5..] {
        e.hash = ChainHash::link(&previous, e.sequence, &e.record);
        previous = e.hash;
    }
    assert_eq!(
        check(&log, &signer),
        Err(Tampering::Rewritten {
            sequence: 8,
            after: 4
        })
    );
}

#[test]
fn a_forged_or_missing_checkpoint_is_found() {
    let (log, key) = log_of(9);
    let mut forged = log.clone();
    let other_key = signer(8);
    forged.checkpoints[1] = other_key.checkpoint(8, &log.entries[7].hash).expect("due");
    assert_eq!(
        check(&forged, &key),
        Err(Tampering::ForgedCheckpoint { sequence: 8 })
    );
    let mut missing = log.clone();
    missing.checkpoints.remove(0);
    assert_eq!(
        check(&missing, &key),
        Err(Tampering::MissingCheckpoint { sequence: 4 })
    );
}
