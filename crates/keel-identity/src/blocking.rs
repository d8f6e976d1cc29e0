//! Blocking rules: which pairs are compared at all. Each rule is a key; two records are a
//! candidate pair when some rule gives both the same key. The candidate pairs are the union of
//! every rule's pairs, each pair once (a rule skips the pairs an earlier rule already made).

use crate::corpus::{NONE, UNSEEN, View};

/// A blocking rule: its name and its key.
#[derive(Clone, Copy)]
pub struct BlockingRule {
    pub name: &'static str,
    pub(crate) key: fn(View<'_>) -> Option<u64>,
}

impl std::fmt::Debug for BlockingRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

fn id(x: u32) -> Option<u64> {
    (x != NONE && x != UNSEEN).then_some(u64::from(x))
}

fn nonzero<T: Into<u64>>(x: T) -> Option<u64> {
    let v = x.into();
    (v != 0).then_some(v)
}

/// FxHash-style mixing of the key's parts, finished with a splitmix avalanche.
fn mix(parts: &[u64]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for &p in parts {
        h = (h.rotate_left(5) ^ p).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn text_hash(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    let mut parts = [0u64; 8];
    let mut n = 0;
    for chunk in text.as_bytes().chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        if n == parts.len() {
            parts[0] = mix(&parts);
            n = 1;
        }
        parts[n] = u64::from_le_bytes(word);
        n += 1;
    }
    Some(mix(&parts[..n]))
}

fn dob(v: View<'_>) -> Option<u64> {
    let r = v.rec;
    (r.year != 0 && r.month != 0 && r.day != 0)
        .then(|| u64::from(r.year) << 16 | u64::from(r.month) << 8 | u64::from(r.day))
}

fn initial(span_text: &str) -> Option<u64> {
    span_text.bytes().next().map(u64::from)
}

/// The rules, in order. Each is narrow enough on its own to keep blocks small, and together
/// they leave a true match out only when it disagrees on nearly everything.
pub const RULES: &[BlockingRule] = &[
    BlockingRule {
        name: "nhs_number",
        key: |v| text_hash(v.text(v.rec.nhs)),
    },
    BlockingRule {
        name: "family+birth_date",
        key: |v| Some(mix(&[id(v.rec.family_id)?, dob(v)?])),
    },
    BlockingRule {
        name: "given+birth_date",
        key: |v| Some(mix(&[id(v.rec.given_id)?, dob(v)?])),
    },
    BlockingRule {
        name: "given+family+birth_year",
        key: |v| {
            Some(mix(&[
                id(v.rec.given_id)?,
                id(v.rec.family_id)?,
                nonzero(v.rec.year)?,
            ]))
        },
    },
    BlockingRule {
        name: "postcode+birth_year",
        key: |v| Some(mix(&[id(v.rec.postcode_id)?, nonzero(v.rec.year)?])),
    },
    BlockingRule {
        name: "soundex(family)+given_initial+birth_year+birth_month",
        key: |v| {
            Some(mix(&[
                nonzero(v.rec.family_sx)?,
                initial(v.text(v.rec.given))?,
                nonzero(v.rec.year)?,
                nonzero(v.rec.month)?,
            ]))
        },
    },
    BlockingRule {
        name: "soundex(given)+soundex(family)+birth_month+birth_day",
        key: |v| {
            Some(mix(&[
                nonzero(v.rec.given_sx)?,
                nonzero(v.rec.family_sx)?,
                nonzero(v.rec.month)?,
                nonzero(v.rec.day)?,
            ]))
        },
    },
    BlockingRule {
        name: "postcode+family",
        key: |v| Some(mix(&[id(v.rec.postcode_id)?, id(v.rec.family_id)?])),
    },
    BlockingRule {
        name: "postcode+given",
        key: |v| Some(mix(&[id(v.rec.postcode_id)?, id(v.rec.given_id)?])),
    },
    BlockingRule {
        name: "birth_date+postcode_district",
        key: |v| Some(mix(&[dob(v)?, id(v.rec.district_id)?])),
    },
    BlockingRule {
        name: "soundex(family)+birth_year+{day,month}",
        key: |v| {
            let (m, d) = (nonzero(v.rec.month)?, nonzero(v.rec.day)?);
            Some(mix(&[
                nonzero(v.rec.family_sx)?,
                nonzero(v.rec.year)?,
                m.min(d),
                m.max(d),
            ]))
        },
    },
    BlockingRule {
        name: "address+given_initial",
        key: |v| {
            Some(mix(&[
                text_hash(v.text(v.rec.address))?,
                initial(v.text(v.rec.given))?,
            ]))
        },
    },
    BlockingRule {
        name: "address+birth_year",
        key: |v| {
            Some(mix(&[
                text_hash(v.text(v.rec.address))?,
                nonzero(v.rec.year)?,
            ]))
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_hashes_differ_and_repeat() {
        assert_eq!(text_hash(""), None);
        assert_eq!(text_hash("abc"), text_hash("abc"));
        assert_ne!(text_hash("abc"), text_hash("abd"));
        assert_ne!(
            text_hash(
                "a long address line that spans many words indeed, more than sixty four bytes"
            ),
            text_hash(
                "a long address line that spans many words indeed, more than sixty four byte"
            )
        );
    }

    #[test]
    fn rule_names_are_unique() {
        let mut names: Vec<_> = RULES.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RULES.len());
    }
}
