//! The hash chain and its signed checkpoints.
//!
//! Entry `n` (numbered from 1) has hash `SHA-256(hash(n-1) ‖ n as 8 big-endian bytes ‖
//! canonical record bytes)`, with 32 zero bytes before the first entry. Every `every`-th entry
//! also gets a checkpoint: an Ed25519 signature over `"keel-audit-checkpoint-v1" ‖ n as 8
//! big-endian bytes ‖ hash(n)`. The chain shows any change relative to the stored hashes; the
//! signatures show that the stored hashes up to the last checkpoint are the ones Keel wrote.

use super::record::{AuditRecord, EncodeError};
use crate::store::{AuditLog, StoreError};
use ed25519_dalek::{Signature, Signer, SigningKey};
use sha2::{Digest, Sha256};
use std::fmt;
use std::num::NonZeroU64;

const CHECKPOINT_DOMAIN: &[u8] = b"keel-audit-checkpoint-v1";

/// A SHA-256 chain hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// What the first entry links to.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    /// The hash of entry `sequence` with canonical bytes `record` after `previous`.
    pub fn link(previous: &ChainHash, sequence: u64, record: &[u8]) -> ChainHash {
        let mut hasher = Sha256::new();
        hasher.update(previous.0);
        hasher.update(sequence.to_be_bytes());
        hasher.update(record);
        ChainHash(hasher.finalize().into())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// One stored entry of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub sequence: u64,
    /// The record's canonical bytes.
    pub record: Vec<u8>,
    pub hash: ChainHash,
}

/// A signed statement that entry `sequence` had hash `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub sequence: u64,
    pub hash: ChainHash,
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// The signed message.
    pub fn message(sequence: u64, hash: &ChainHash) -> Vec<u8> {
        [CHECKPOINT_DOMAIN, &sequence.to_be_bytes(), &hash.0].concat()
    }
}

/// The signing key and how often a checkpoint is signed.
pub struct CheckpointSigner {
    key: SigningKey,
    every: NonZeroU64,
}

impl CheckpointSigner {
    pub fn new(key: SigningKey, every: NonZeroU64) -> Self {
        CheckpointSigner { key, every }
    }

    pub fn every(&self) -> NonZeroU64 {
        self.every
    }

    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.key.verifying_key()
    }

    /// The checkpoint due at `sequence`, if one is.
    pub fn checkpoint(&self, sequence: u64, hash: &ChainHash) -> Option<Checkpoint> {
        sequence.is_multiple_of(self.every.get()).then(|| {
            let signature: Signature = self.key.sign(&Checkpoint::message(sequence, hash));
            Checkpoint {
                sequence,
                hash: *hash,
                signature: signature.to_bytes(),
            }
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Appends `record` after the log's head (and its checkpoint when one is due). Call it inside
/// the store write transaction whose effect it records, so both commit or neither does; the
/// transaction's single writer keeps the chain linear.
pub fn append<L: AuditLog + ?Sized>(
    log: &mut L,
    record: &AuditRecord,
    signer: &CheckpointSigner,
) -> Result<AuditEntry, AppendError> {
    let (last, previous) = log.audit_head()?.unwrap_or((0, ChainHash::GENESIS));
    let sequence = last + 1;
    let bytes = record.canonical_bytes()?;
    let entry = AuditEntry {
        sequence,
        hash: ChainHash::link(&previous, sequence, &bytes),
        record: bytes,
    };
    log.append_audit(&entry)?;
    if let Some(checkpoint) = signer.checkpoint(sequence, &entry.hash) {
        log.append_audit_checkpoint(&checkpoint)?;
    }
    Ok(entry)
}
