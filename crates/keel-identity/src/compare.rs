//! String metrics (written here: Jaro–Winkler, optimal-string-alignment Damerau–Levenshtein,
//! American Soundex) and the field comparators that turn two values into an agreement level.
//!
//! A level is a small number: 0 is "disagrees", higher is stronger agreement, and
//! [`NULL_LEVEL`] means one side (or both) has no value, which is evidence of nothing.

use crate::record::postcode_parts;

/// The level of a comparison where either side is missing.
pub const NULL_LEVEL: u8 = 15;

/// The fields a match is decided on, in the order evidence lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    NhsNumber,
    Given,
    Family,
    BirthDate,
    Sex,
    Postcode,
    Address,
}

pub const FIELDS: [Field; 7] = [
    Field::NhsNumber,
    Field::Given,
    Field::Family,
    Field::BirthDate,
    Field::Sex,
    Field::Postcode,
    Field::Address,
];

const NAME_LEVELS: &[&str] = &[
    "different",
    "soundex",
    "edit distance <= 2",
    "jaro-winkler >= 0.88",
    "jaro-winkler >= 0.92",
    "exact",
];

impl Field {
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Field::NhsNumber => "nhs_number",
            Field::Given => "given",
            Field::Family => "family",
            Field::BirthDate => "birth_date",
            Field::Sex => "sex",
            Field::Postcode => "postcode",
            Field::Address => "address",
        }
    }

    /// The names of the field's levels, indexed by level (0 = different; the last = exact).
    pub fn levels(self) -> &'static [&'static str] {
        match self {
            Field::NhsNumber => &["different", "one digit different", "exact"],
            Field::Given | Field::Family => NAME_LEVELS,
            Field::BirthDate => &[
                "different",
                "two characters different",
                "one character different",
                "day and month transposed",
                "exact",
            ],
            Field::Sex => &["different", "exact"],
            // Codes that are not UK postcodes: "sector" is one character different and
            // "district" the same first two characters.
            Field::Postcode => &["different", "district", "sector", "exact"],
            Field::Address => &[
                "different",
                "street similar",
                "number and street similar",
                "exact",
            ],
        }
    }

    /// The level of an exact match.
    pub fn exact_level(self) -> u8 {
        (self.levels().len() - 1) as u8
    }

    /// Whether an exact match is weighed by how common the value is.
    pub fn term_frequency(self) -> bool {
        matches!(self, Field::Given | Field::Family | Field::Postcode)
    }

    pub fn level_name(self, level: u8) -> &'static str {
        if level == NULL_LEVEL {
            "null"
        } else {
            self.levels()
                .get(usize::from(level))
                .copied()
                .unwrap_or("?")
        }
    }
}

/// Jaro–Winkler similarity (prefix scale 0.1, up to four characters, applied above Jaro 0.7),
/// on bytes: both strings are normalised ASCII.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let jaro = jaro(a, b);
    if jaro <= 0.7 {
        return jaro;
    }
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count() as f64;
    jaro + prefix * 0.1 * (1.0 - jaro)
}

/// How many characters two strings have in common as multisets: a bound on the matches Jaro
/// can find and on how close an edit distance can get.
fn common_characters(a: &[u8], b: &[u8]) -> usize {
    // Lower-case letters fall in distinct slots; digits share theirs with letters, which only
    // loosens the bound.
    let mut hist = [0u16; 32];
    for &c in a {
        hist[usize::from(c & 31)] += 1;
    }
    let mut common = 0;
    for &c in b {
        let slot = &mut hist[usize::from(c & 31)];
        if *slot > 0 {
            *slot -= 1;
            common += 1;
        }
    }
    common
}

/// Whether the Jaro–Winkler similarity of `a` and `b` can reach `threshold`, from a cheap upper
/// bound (shared characters, no transpositions, the actual common prefix).
pub fn jaro_winkler_may_reach(a: &str, b: &str, threshold: f64) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.is_empty() || b.is_empty() {
        return false;
    }
    jw_bound(a, b, common_characters(a, b)) >= threshold - 1e-12
}

fn jw_bound(a: &[u8], b: &[u8], common: usize) -> f64 {
    let m = common as f64;
    let jaro = (m / a.len() as f64 + m / b.len() as f64 + 1.0) / 3.0;
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count() as f64;
    if jaro > 0.7 {
        jaro + prefix * 0.1 * (1.0 - jaro)
    } else {
        jaro
    }
}

/// Jaro similarity.
pub fn jaro(a: &[u8], b: &[u8]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    if a == b {
        return 1.0;
    }
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let mut stack_a = [false; 64];
    let mut stack_b = [false; 64];
    let mut heap_a;
    let mut heap_b;
    let (used_a, used_b): (&mut [bool], &mut [bool]) = if a.len() <= 64 && b.len() <= 64 {
        (&mut stack_a[..a.len()], &mut stack_b[..b.len()])
    } else {
        heap_a = vec![false; a.len()];
        heap_b = vec![false; b.len()];
        (&mut heap_a[..], &mut heap_b[..])
    };
    let mut matches = 0usize;
    for (i, &ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        for j in lo..hi {
            if !used_b[j] && b[j] == ca {
                used_a[i] = true;
                used_b[j] = true;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut k = 0usize;
    for (i, &ca) in a.iter().enumerate() {
        if !used_a[i] {
            continue;
        }
        while !used_b[k] {
            k += 1;
        }
        if ca != b[k] {
            transpositions += 1;
        }
        k += 1;
    }
    let m = matches as f64;
    (m / a.len() as f64 + m / b.len() as f64 + (m - (transpositions / 2) as f64) / m) / 3.0
}

/// Damerau–Levenshtein distance in its optimal-string-alignment form (insertions, deletions,
/// substitutions and transpositions of adjacent characters, each costing one), on bytes.
pub fn damerau_levenshtein(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a == b {
        return 0;
    }
    if a.is_empty() {
        return b.len();
    }
    if b.is_empty() {
        return a.len();
    }
    let width = b.len() + 1;
    // Three rows: two back (for transpositions), one back, current; on the stack for the
    // short strings names and dates are.
    let mut stack = [0usize; 3 * 65];
    let mut heap;
    let rows: &mut [usize] = if width <= 65 {
        &mut stack[..3 * width]
    } else {
        heap = vec![0usize; 3 * width];
        &mut heap[..]
    };
    let (mut two, rest) = rows.split_at_mut(width);
    let (mut one, mut cur) = rest.split_at_mut(width);
    for (j, slot) in one.iter_mut().enumerate() {
        *slot = j;
    }
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (one[j] + 1).min(cur[j - 1] + 1).min(one[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(two[j - 2] + 1);
            }
            cur[j] = v;
        }
        std::mem::swap(&mut two, &mut one);
        std::mem::swap(&mut one, &mut cur);
    }
    one[b.len()]
}

/// Whether the Damerau–Levenshtein distance is at most `limit`, cheaply rejecting strings
/// whose lengths already differ by more.
pub fn within_edits(a: &str, b: &str, limit: usize) -> bool {
    if a.len().abs_diff(b.len()) > limit {
        return false;
    }
    // Every character of the longer string that the shorter lacks costs at least one edit.
    let common = common_characters(a.as_bytes(), b.as_bytes());
    a.len().max(b.len()) - common <= limit && damerau_levenshtein(a, b) <= limit
}

/// American Soundex of a normalised (lower-case ASCII) name, packed into a `u32`: the first
/// letter in the high byte and three digits below; 0 for a name without letters.
pub fn soundex(name: &str) -> u32 {
    fn digit(c: u8) -> u8 {
        match c {
            b'b' | b'f' | b'p' | b'v' => 1,
            b'c' | b'g' | b'j' | b'k' | b'q' | b's' | b'x' | b'z' => 2,
            b'd' | b't' => 3,
            b'l' => 4,
            b'm' | b'n' => 5,
            b'r' => 6,
            _ => 0, // vowels, h, w, y
        }
    }
    let mut letters = name.bytes().filter(u8::is_ascii_lowercase);
    let Some(first) = letters.next() else {
        return 0;
    };
    let mut code = [0u8; 3];
    let mut n = 0;
    let mut last = digit(first);
    for c in letters {
        if n == 3 {
            break;
        }
        let d = digit(c);
        if d != 0 && d != last {
            code[n] = d;
            n += 1;
        }
        // h and w do not separate equal codes; vowels do.
        if c != b'h' && c != b'w' {
            last = d;
        }
    }
    (u32::from(first) << 24)
        | (u32::from(code[0]) << 16)
        | (u32::from(code[1]) << 8)
        | u32::from(code[2])
}

/// The Soundex code as text (`r163` for Robert).
pub fn soundex_text(code: u32) -> String {
    if code == 0 {
        return String::new();
    }
    let first = (code >> 24) as u8 as char;
    format!(
        "{first}{}{}{}",
        (code >> 16) & 0xff,
        (code >> 8) & 0xff,
        code & 0xff
    )
}

/// Given or family name: exact; Jaro–Winkler ≥ 0.92; ≥ 0.88; edit distance ≤ 2; same Soundex;
/// else different.
pub fn compare_name(a: &str, b: &str, soundex_a: u32, soundex_b: u32) -> u8 {
    if a.is_empty() || b.is_empty() {
        return NULL_LEVEL;
    }
    if a == b {
        return 5;
    }
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let common = common_characters(ab, bb);
    let jw = if jw_bound(ab, bb, common) >= 0.88 - 1e-12 {
        jaro_winkler(a, b)
    } else {
        0.0
    };
    if jw >= 0.92 {
        4
    } else if jw >= 0.88 {
        3
    } else if ab.len().abs_diff(bb.len()) <= 2
        && ab.len().max(bb.len()) - common <= 2
        && damerau_levenshtein(a, b) <= 2
    {
        2
    } else if soundex_a != 0 && soundex_a == soundex_b {
        1
    } else {
        0
    }
}

/// Dates of birth as `YYYYMMDD` with `?` for absent parts: exact; day and month transposed;
/// one character different (or two adjacent characters swapped); two characters different;
/// else different. The text has a fixed layout, so characters are compared by position.
pub fn compare_birth_date(a: Option<[u8; 8]>, b: Option<[u8; 8]>) -> u8 {
    let (Some(a), Some(b)) = (a, b) else {
        return NULL_LEVEL;
    };
    if a == b {
        return 4;
    }
    if a[0..4] == b[0..4] && a[4..6] == b[6..8] && a[6..8] == b[4..6] {
        return 3;
    }
    let mut first = None;
    let mut differ = 0;
    for i in 0..8 {
        if a[i] != b[i] {
            differ += 1;
            first.get_or_insert(i);
        }
    }
    let swapped =
        differ == 2 && first.is_some_and(|i| i < 7 && a[i] == b[i + 1] && a[i + 1] == b[i]);
    match differ {
        1 => 2,
        2 if swapped => 2,
        2 => 1,
        _ => 0,
    }
}

/// Sex: exact or different; unknown on either side is null.
pub fn compare_sex(a: crate::record::Sex, b: crate::record::Sex) -> u8 {
    use crate::record::Sex;
    if a == Sex::Unknown || b == Sex::Unknown {
        NULL_LEVEL
    } else {
        u8::from(a == b)
    }
}

/// Postcodes: exact; same sector; same district; else different. Codes that are not UK
/// postcodes: one character different counts as the sector level and the same first two
/// characters as the district level.
pub fn compare_postcode(a: &str, b: &str) -> u8 {
    if a.is_empty() || b.is_empty() {
        return NULL_LEVEL;
    }
    if a == b {
        return 3;
    }
    match (postcode_parts(a), postcode_parts(b)) {
        (Some((da, sa)), Some((db, sb))) => {
            if sa == sb {
                2
            } else if da == db {
                1
            } else {
                0
            }
        }
        (None, None) => {
            if within_edits(a, b, 1) {
                2
            } else if a.len() >= 2 && b.len() >= 2 && a[..2] == b[..2] {
                1
            } else {
                0
            }
        }
        _ => 0,
    }
}

/// Splits a normalised address into its house number (a leading word with a digit) and the
/// rest.
pub fn split_address(address: &str) -> (&str, &str) {
    match address.split_once(' ') {
        Some((first, rest)) if first.bytes().any(|b| b.is_ascii_digit()) => (first, rest),
        _ if address.bytes().next().is_some_and(|b| b.is_ascii_digit()) => (address, ""),
        _ => ("", address),
    }
}

/// Address lines: exact; same house number and street Jaro–Winkler ≥ 0.88; street (or whole
/// line) Jaro–Winkler ≥ 0.88; else different.
pub fn compare_address(a: &str, b: &str) -> u8 {
    if a.is_empty() || b.is_empty() {
        return NULL_LEVEL;
    }
    if a == b {
        return 3;
    }
    let (na, sa) = split_address(a);
    let (nb, sb) = split_address(b);
    let street_similar = if sa.is_empty() || sb.is_empty() {
        false
    } else {
        sa == sb || (jaro_winkler_may_reach(sa, sb, 0.88) && jaro_winkler(sa, sb) >= 0.88)
    };
    if street_similar && !na.is_empty() && na == nb {
        2
    } else if street_similar || (jaro_winkler_may_reach(a, b, 0.88) && jaro_winkler(a, b) >= 0.88) {
        1
    } else {
        0
    }
}

/// NHS numbers (or another identifier): exact; one digit different or two adjacent digits
/// transposed; else different.
pub fn compare_identifier(a: Option<&str>, b: Option<&str>) -> u8 {
    let (Some(a), Some(b)) = (a, b) else {
        return NULL_LEVEL;
    };
    if a == b {
        return 2;
    }
    if a.len() == b.len() {
        let mut diffs = [0usize; 3];
        let mut n = 0;
        for (i, (x, y)) in a.bytes().zip(b.bytes()).enumerate() {
            if x != y {
                if n == 3 {
                    break;
                }
                diffs[n] = i;
                n += 1;
            }
        }
        let diffs = &diffs[..n];
        let transposed = diffs.len() == 2
            && diffs[1] == diffs[0] + 1
            && a.as_bytes()[diffs[0]] == b.as_bytes()[diffs[1]]
            && a.as_bytes()[diffs[1]] == b.as_bytes()[diffs[0]];
        if diffs.len() == 1 || transposed {
            return 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-3
    }

    #[test]
    fn jaro_winkler_reference_values() {
        // The classic examples (Winkler 1990; as in strsim and Splink's documentation).
        assert!(close(jaro_winkler("martha", "marhta"), 0.961));
        assert!(close(jaro_winkler("dwayne", "duane"), 0.84));
        assert!(close(jaro_winkler("dixon", "dicksonx"), 0.813));
        assert!(close(jaro(b"martha", b"marhta"), 0.944));
        assert_eq!(jaro_winkler("", ""), 1.0);
        assert_eq!(jaro_winkler("abc", ""), 0.0);
        assert_eq!(jaro_winkler("same", "same"), 1.0);
    }

    #[test]
    fn the_jaro_winkler_bound_never_rejects_a_reachable_threshold() {
        let words = [
            "martha",
            "marhta",
            "dwayne",
            "duane",
            "dixon",
            "dicksonx",
            "smith",
            "smyth",
            "a",
            "ab",
            "ba",
            "stanley street",
            "stanely street",
        ];
        for a in words {
            for b in words {
                let jw = jaro_winkler(a, b);
                for t in [0.5, 0.7, 0.8, 0.88, 0.92] {
                    if jw >= t {
                        assert!(jaro_winkler_may_reach(a, b, t), "{a} {b} {t}");
                    }
                }
            }
        }
    }

    #[test]
    fn damerau_levenshtein_counts_adjacent_transpositions_once() {
        assert_eq!(damerau_levenshtein("kitten", "sitting"), 3);
        assert_eq!(damerau_levenshtein("ca", "ac"), 1);
        assert_eq!(damerau_levenshtein("abcdef", "abdcef"), 1);
        assert_eq!(damerau_levenshtein("", "abc"), 3);
        assert_eq!(damerau_levenshtein("same", "same"), 0);
        assert!(within_edits("smith", "smyth", 1));
        assert!(!within_edits("smith", "smithsonian", 2));
    }

    #[test]
    fn soundex_reference_codes() {
        for (name, code) in [
            ("robert", "r163"),
            ("rupert", "r163"),
            ("rubin", "r150"),
            ("ashcraft", "a261"),
            ("tymczak", "t522"),
            ("pfister", "p236"),
            ("lee", "l000"),
        ] {
            assert_eq!(soundex_text(soundex(name)), code, "{name}");
        }
        assert_eq!(soundex(""), 0);
    }

    #[test]
    fn name_levels() {
        let sx = soundex;
        assert_eq!(compare_name("smith", "smith", sx("smith"), sx("smith")), 5);
        assert_eq!(
            compare_name("martha", "marhta", sx("martha"), sx("marhta")),
            4
        );
        assert_eq!(compare_name("smith", "", 0, 0), NULL_LEVEL);
        assert_eq!(compare_name("jon", "jan", sx("jon"), sx("jan")), 2);
        assert_eq!(compare_name("ann", "zoe", sx("ann"), sx("zoe")), 0);
    }

    #[test]
    fn birth_date_levels() {
        let d = |s: &str| Some(<[u8; 8]>::try_from(s.as_bytes()).expect("8 bytes"));
        assert_eq!(compare_birth_date(d("19800102"), d("19800102")), 4);
        assert_eq!(compare_birth_date(d("19800102"), d("19800201")), 3);
        assert_eq!(compare_birth_date(d("19800102"), d("19800103")), 2);
        assert_eq!(compare_birth_date(d("19800102"), d("19810103")), 1);
        assert_eq!(compare_birth_date(d("19800102"), d("19651231")), 0);
        assert_eq!(compare_birth_date(None, d("19651231")), NULL_LEVEL);
    }

    #[test]
    fn postcode_levels() {
        assert_eq!(compare_postcode("LS6 4AP", "LS6 4AP"), 3);
        assert_eq!(compare_postcode("LS6 4AP", "LS6 4BD"), 2);
        assert_eq!(compare_postcode("LS6 4AP", "LS6 1AP"), 1);
        assert_eq!(compare_postcode("LS6 4AP", "LS7 4AP"), 0);
        assert_eq!(compare_postcode("4223", "4233"), 2);
        assert_eq!(compare_postcode("4223", "4288"), 1);
        assert_eq!(compare_postcode("4223", "3115"), 0);
        assert_eq!(compare_postcode("", "3223"), NULL_LEVEL);
    }

    #[test]
    fn address_levels() {
        assert_eq!(compare_address("8 stanley street", "8 stanley street"), 3);
        assert_eq!(compare_address("8 stanley street", "8 stanely street"), 2);
        assert_eq!(compare_address("8 stanley street", "18 stanley street"), 1);
        assert_eq!(compare_address("8 stanley street", "3 light road"), 0);
        assert_eq!(split_address("12 mill road"), ("12", "mill road"));
        assert_eq!(split_address("mill road"), ("", "mill road"));
    }

    #[test]
    fn identifier_levels() {
        assert_eq!(
            compare_identifier(Some("9991234560"), Some("9991234560")),
            2
        );
        assert_eq!(
            compare_identifier(Some("9991234560"), Some("9991234561")),
            1
        );
        assert_eq!(
            compare_identifier(Some("9991234560"), Some("9997654560")),
            0
        );
        assert_eq!(
            compare_identifier(Some("9991234560"), Some("9991243560")),
            1
        );
        assert_eq!(compare_identifier(None, Some("9991234561")), NULL_LEVEL);
    }
}
