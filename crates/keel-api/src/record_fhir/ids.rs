//! Resource ids for a rendered record: deterministic, FHIR-id-safe and unique within a Bundle.
//!
//! An id is a UUID-shaped hash (RFC 9562 version 8, "custom") of what names the resource —
//! for an item, the practice, its section and its `source_id` — so the same item gets the
//! same id on every read, whatever characters the source put in its identifier. The hash is
//! 128-bit FNV-1a over length-prefixed parts, so `("ab", "c")` and `("a", "bc")` differ. If
//! two resources in one Bundle would still share an id (a source sending one `source_id`
//! twice in a section), the later one is re-hashed with its occurrence number.

use std::collections::HashSet;

use std::str::Utf8Error;

use serde::ser::Error as _;
use serde::{Serialize, Serializer};

const FNV_OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
const FNV_PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

/// The prefix of the `urn:uuid:` form, used as `fullUrl` and reference.
const URN_PREFIX: &str = "urn:uuid:";

/// Mints the ids of one Bundle.
#[derive(Debug, Default)]
pub(super) struct Ids {
    minted: HashSet<u128>,
}

impl Ids {
    /// The id named by `parts`, unique within this Bundle.
    pub(super) fn mint(&mut self, parts: &[&str]) -> ResourceId {
        self.mint_after(Prefix::default(), parts)
    }

    /// The id named by `prefix`'s parts followed by `parts` (the same id as [`Ids::mint`] of
    /// them all gives), unique within this Bundle.
    pub(super) fn mint_after(&mut self, prefix: Prefix, parts: &[&str]) -> ResourceId {
        let named = prefix.then(parts);
        let mut hashed = named.0;
        let mut occurrence = 1u64;
        while !self.minted.insert(uuid_bits(hashed)) {
            occurrence += 1;
            hashed = named.occurrence(occurrence);
        }
        ResourceId::new(uuid_bits(hashed))
    }
}

/// The hash of some leading parts of a name, to mint many names that share them without
/// hashing those parts again.
#[derive(Debug, Clone, Copy)]
pub(super) struct Prefix(u128);

impl Default for Prefix {
    fn default() -> Self {
        Prefix(FNV_OFFSET)
    }
}

impl Prefix {
    /// The hash of `parts`.
    pub(super) fn of(parts: &[&str]) -> Prefix {
        Prefix::default().then(parts)
    }

    /// The hash of these parts followed by `parts`.
    fn then(self, parts: &[&str]) -> Prefix {
        let mut state = self.0;
        for part in parts {
            state = feed(state, &(part.len() as u64).to_le_bytes());
            state = feed(state, part.as_bytes());
        }
        Prefix(state)
    }

    /// The hash of the name's `n`th occurrence in a Bundle (n > 1).
    fn occurrence(self, n: u64) -> u128 {
        feed(feed(self.0, b"#"), &n.to_le_bytes())
    }
}

/// A minted id, held in its `urn:uuid:` form (ASCII) so the id and the reference are both
/// slices of it, with no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ResourceId {
    urn: [u8; URN_PREFIX.len() + 36],
}

impl ResourceId {
    fn new(bits: u128) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut urn = [b'-'; URN_PREFIX.len() + 36];
        urn[..URN_PREFIX.len()].copy_from_slice(URN_PREFIX.as_bytes());
        // The UUID's hyphens are at 8, 13, 18 and 23; every other place is a hex digit.
        let digits = (URN_PREFIX.len()..urn.len())
            .filter(|at| !matches!(at - URN_PREFIX.len(), 8 | 13 | 18 | 23));
        for (nibble, at) in digits.enumerate() {
            let shift = 124 - 4 * nibble;
            urn[at] = HEX[((bits >> shift) & 0xf) as usize];
        }
        Self { urn }
    }

    /// The `urn:uuid:` form, used as `fullUrl` and in every reference.
    fn urn(&self) -> Result<&str, Utf8Error> {
        std::str::from_utf8(&self.urn)
    }

    /// The id, e.g. `3f2a…`: a valid FHIR id.
    fn id(&self) -> Result<&str, Utf8Error> {
        std::str::from_utf8(&self.urn[URN_PREFIX.len()..])
    }

    /// Serialises as the `urn:uuid:` form.
    pub(super) fn as_urn(&self) -> Urn<'_> {
        Urn(self)
    }
}

/// Serialises as the id itself.
impl Serialize for ResourceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id().map_err(S::Error::custom)?)
    }
}

/// A [`ResourceId`] serialised as its `urn:uuid:` form.
#[derive(Debug, Clone, Copy)]
pub(super) struct Urn<'a>(&'a ResourceId);

impl Serialize for Urn<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.urn().map_err(S::Error::custom)?)
    }
}

/// 128-bit FNV-1a of `bytes`, from `state`.
fn feed(mut state: u128, bytes: &[u8]) -> u128 {
    for byte in bytes {
        state ^= u128::from(*byte);
        state = state.wrapping_mul(FNV_PRIME);
    }
    state
}

/// Sets the version (8) and variant (10) bits.
fn uuid_bits(hash: u128) -> u128 {
    let versioned = (hash & !(0xf << 76)) | (0x8 << 76);
    (versioned & !(0x3 << 62)) | (0x2 << 62)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The id of `["item", "problems", "c-1"]` as every release has minted it.
    const PINNED_ID: &str = "48195e1d-120f-85b7-a509-7018d6ff496c";

    #[test]
    fn ids_are_stable_uuid_shaped_and_fhir_safe() {
        let a = Ids::default().mint(&["item", "problems", "weird id/with spaces"]);
        let b = Ids::default().mint(&["item", "problems", "weird id/with spaces"]);
        assert_eq!(a, b);
        let id = a.id().expect("ASCII");
        assert_eq!(a.urn().expect("ASCII"), format!("urn:uuid:{id}"));
        let a = id;
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "8");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert!(keel_fhir::validate::is_id(a));
    }

    #[test]
    fn a_shared_prefix_names_the_same_ids() {
        let mut whole = Ids::default();
        let mut after = Ids::default();
        let prefix = Prefix::of(&["item", "problems"]);
        for source_id in ["c-1", "c-2", "c-1", "", "c-1"] {
            assert_eq!(
                whole.mint(&["item", "problems", source_id]),
                after.mint_after(prefix, &[source_id])
            );
        }
    }

    #[test]
    fn the_hash_is_fnv_1a_of_the_length_prefixed_parts() {
        // Pinned: ids must not change between releases.
        let id = Ids::default().mint(&["item", "problems", "c-1"]);
        assert_eq!(id.id().expect("ASCII"), PINNED_ID);
    }

    #[test]
    fn parts_are_length_prefixed_and_repeats_get_new_ids() {
        let mut ids = Ids::default();
        let ab_c = ids.mint(&["ab", "c"]);
        let a_bc = ids.mint(&["a", "bc"]);
        assert_ne!(ab_c, a_bc);
        let again = ids.mint(&["ab", "c"]);
        assert_ne!(again, ab_c);
        assert_eq!(again, {
            let mut fresh = Ids::default();
            fresh.mint(&["ab", "c"]);
            fresh.mint(&["ab", "c"])
        });
    }
}
