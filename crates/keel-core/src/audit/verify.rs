//! Checking a stored audit log: the chain links, the checkpoint signatures, and that no
//! checkpoint is missing. The first tampering found (in sequence order) is reported with its
//! position and, where the stored hashes allow telling, its kind.
//!
//! What the log can and cannot show: the chain shows any edit, deletion, insertion or
//! reordering relative to the stored hashes; an attacker who also recomputes the hashes is
//! caught by the next signed checkpoint. Entries after the last checkpoint (fewer than
//! `every`) are protected by the chain only: removing or rewriting that tail, hashes included,
//! cannot be seen until the next checkpoint is signed. [`VerifiedRange::signed_through`]
//! says where that tail begins.

use super::chain::{AuditEntry, ChainHash, Checkpoint};
use ed25519_dalek::{Signature, VerifyingKey};
use std::collections::BTreeMap;
use std::num::NonZeroU64;

/// What a successful verification covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedRange {
    /// The last sequence number (0 for an empty log); entries run from 1.
    pub last: u64,
    /// Entries up to here are covered by a valid signed checkpoint (0: none yet).
    pub signed_through: u64,
    pub checkpoints: usize,
}

/// How the log was tampered with, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Tampering {
    #[error("entry {sequence} was edited: its content does not match its hash")]
    Edited { sequence: u64 },
    #[error("entries {first} to {last} were deleted")]
    Deleted { first: u64, last: u64 },
    #[error("an entry was inserted at {sequence}")]
    Inserted { sequence: u64 },
    #[error("entries were reordered: the entry at {sequence} belongs at {belongs_at}")]
    Reordered { sequence: u64, belongs_at: u64 },
    #[error(
        "entry {sequence} does not follow the entry before it: it was altered or forged, or the entry before it was rewritten"
    )]
    Unlinked { sequence: u64 },
    #[error("entry {found} is out of sequence where {sequence} was expected")]
    OutOfSequence { sequence: u64, found: u64 },
    #[error("checkpoint {sequence} has an invalid signature: it is forged or altered")]
    ForgedCheckpoint { sequence: u64 },
    #[error("checkpoint {sequence} is missing")]
    MissingCheckpoint { sequence: u64 },
    #[error(
        "checkpoint {sequence} does not match the log: entries after {after} and up to {sequence} were rewritten with recomputed hashes"
    )]
    Rewritten { sequence: u64, after: u64 },
    #[error(
        "the log ends at {last} but checkpoint {checkpoint} was signed: entries after {last} were deleted"
    )]
    Truncated { last: u64, checkpoint: u64 },
}

impl Tampering {
    /// The sequence number where the tampering was found.
    pub fn sequence(&self) -> u64 {
        match *self {
            Tampering::Edited { sequence }
            | Tampering::Inserted { sequence }
            | Tampering::Reordered { sequence, .. }
            | Tampering::Unlinked { sequence }
            | Tampering::OutOfSequence { sequence, .. }
            | Tampering::ForgedCheckpoint { sequence }
            | Tampering::MissingCheckpoint { sequence }
            | Tampering::Rewritten { sequence, .. } => sequence,
            Tampering::Deleted { first, .. } => first,
            Tampering::Truncated { last, .. } => last + 1,
        }
    }
}

/// Verifies `entries` (in stored order) and `checkpoints` against the public key, expecting a
/// checkpoint at every multiple of `every`.
pub fn verify(
    entries: &[AuditEntry],
    checkpoints: &[Checkpoint],
    key: &VerifyingKey,
    every: NonZeroU64,
) -> Result<VerifiedRange, Tampering> {
    let by_sequence: BTreeMap<u64, &Checkpoint> =
        checkpoints.iter().map(|c| (c.sequence, c)).collect();
    let mut previous = ChainHash::GENESIS;
    let mut signed_through = 0;
    for (index, entry) in entries.iter().enumerate() {
        let expected = index as u64 + 1;
        if entry.sequence > expected {
            return Err(Tampering::Deleted {
                first: expected,
                last: entry.sequence - 1,
            });
        }
        if entry.sequence < expected {
            return Err(Tampering::OutOfSequence {
                sequence: expected,
                found: entry.sequence,
            });
        }
        if ChainHash::link(&previous, expected, &entry.record) != entry.hash {
            return Err(classify_break(entries, index));
        }
        match by_sequence.get(&expected) {
            Some(checkpoint) => {
                check_signature(checkpoint, key)?;
                if checkpoint.hash != entry.hash {
                    // An entry inserted here with a valid hash breaks the next link: name that.
                    if entries.get(index + 1).is_some_and(|n| {
                        n.sequence == expected + 1
                            && ChainHash::link(&entry.hash, n.sequence, &n.record) != n.hash
                    }) {
                        return Err(classify_break(entries, index + 1));
                    }
                    return Err(Tampering::Rewritten {
                        sequence: expected,
                        after: signed_through,
                    });
                }
                signed_through = expected;
            }
            None if expected.is_multiple_of(every.get()) => {
                return Err(Tampering::MissingCheckpoint { sequence: expected });
            }
            None => {}
        }
        previous = entry.hash;
    }
    let last = entries.len() as u64;
    if let Some((&sequence, checkpoint)) = by_sequence.range(last + 1..).next() {
        check_signature(checkpoint, key)?;
        return Err(Tampering::Truncated {
            last,
            checkpoint: sequence,
        });
    }
    Ok(VerifiedRange {
        last,
        signed_through,
        checkpoints: checkpoints.len(),
    })
}

fn check_signature(checkpoint: &Checkpoint, key: &VerifyingKey) -> Result<(), Tampering> {
    let message = Checkpoint::message(checkpoint.sequence, &checkpoint.hash);
    key.verify_strict(&message, &Signature::from_bytes(&checkpoint.signature))
        .map_err(|_| Tampering::ForgedCheckpoint {
            sequence: checkpoint.sequence,
        })
}

/// Names the break at `entries[index]` (whose sequence is its position) by finding where its
/// content and hash, or its neighbours', would link.
fn classify_break(entries: &[AuditEntry], index: usize) -> Tampering {
    let entry = &entries[index];
    let sequence = entry.sequence;
    let hash_before = |back: usize| -> Option<ChainHash> {
        match index.checked_sub(back) {
            Some(i) => entries.get(i).map(|e| e.hash),
            None if index + 1 == back => Some(ChainHash::GENESIS),
            None => None,
        }
    };
    let links = |previous: &ChainHash, at: u64, e: &AuditEntry| {
        ChainHash::link(previous, at, &e.record) == e.hash
    };
    if let Some(next) = entries
        .get(index + 1)
        .filter(|n| n.sequence == sequence + 1)
    {
        // Its successor still links to its hash: only its content changed.
        if links(&entry.hash, sequence + 1, next) {
            return Tampering::Edited { sequence };
        }
        // It is the entry after a deleted one, and the rest were renumbered down.
        if links(&entry.hash, sequence + 2, next) {
            return Tampering::Deleted {
                first: sequence,
                last: sequence,
            };
        }
        // It and its successor changed places.
        if links(&next.hash, sequence + 1, entry) {
            return Tampering::Reordered {
                sequence,
                belongs_at: sequence + 1,
            };
        }
        // Its successor is the entry that was here: this one was put in before it.
        if hash_before(1).is_some_and(|before| links(&before, sequence, next)) {
            return Tampering::Inserted { sequence };
        }
    }
    // It is the entry that was one earlier, pushed down by an insertion with a valid hash.
    if hash_before(2).is_some_and(|before| links(&before, sequence - 1, entry)) {
        return Tampering::Inserted {
            sequence: sequence - 1,
        };
    }
    // It belongs after some other entry.
    let moved_to = std::iter::once((0, ChainHash::GENESIS))
        .chain(entries.iter().map(|e| (e.sequence, e.hash)))
        .map(|(before, hash)| (before + 1, hash))
        .find(|(at, hash)| *at != sequence && links(hash, *at, entry));
    match moved_to {
        Some((belongs_at, _)) => Tampering::Reordered {
            sequence,
            belongs_at,
        },
        None => Tampering::Unlinked { sequence },
    }
}
