//! The NHS number: England's 10-digit patient identifier with a Modulus 11 check digit.
//!
//! Rules (NHS Data Dictionary, as summarised in the Keel NHS reference sheet §1):
//!
//! 1. Multiply digits 1..9 by the weights 10, 9, 8, 7, 6, 5, 4, 3, 2 and sum the products.
//! 2. `check = 11 - (sum mod 11)`; a check of 11 becomes 0.
//! 3. A check of 10 means no valid NHS number can be built on that 9-digit stem.
//! 4. The number is valid when the computed check equals digit 10.
//!
//! Keel additionally rejects numbers whose ten digits are all the same (`0000000000`,
//! `9999999999`, ...). They pass the checksum but are placeholders, never real patients; the
//! reference sheet lists this as a defensive local rule rather than a national one.
//!
//! Error messages never echo the input, so an NHS number cannot leak into logs through them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// Number of digits in an NHS number.
const LEN: usize = 10;

/// Weights applied to digits 1..9 by the Modulus 11 algorithm.
const WEIGHTS: [u32; LEN - 1] = [10, 9, 8, 7, 6, 5, 4, 3, 2];

/// A validated NHS number, stored as its 10 ASCII digits.
///
/// Construct one with [`NhsNumber::parse`] (or [`str::parse`]) or, in generators,
/// [`NhsNumber::from_body`]. Serialises as the plain 10-digit string; deserialising validates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhsNumber([u8; LEN]);

/// Why a string is not a valid NHS number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    /// Not 10 digits, optionally grouped 3-3-4 by single spaces or hyphens.
    #[error("an NHS number is 10 digits, optionally grouped 3-3-4 by spaces or hyphens")]
    Format,
    /// The first nine digits give a Modulus 11 check of 10, so no check digit can make them valid.
    #[error("no valid NHS number exists with these first nine digits (Modulus 11 check is 10)")]
    UnusableStem,
    /// The tenth digit does not match the Modulus 11 check of the first nine.
    #[error("NHS number check digit is {found}, expected {expected}")]
    CheckDigit {
        /// The check digit computed from the first nine digits.
        expected: u8,
        /// The tenth digit actually supplied.
        found: u8,
    },
    /// All ten digits are identical: a placeholder, not a patient (local defensive rule).
    #[error("NHS number has all ten digits identical")]
    RepeatedDigit,
}

impl NhsNumber {
    /// Parses an NHS number from `999 123 4578`, `999-123-4578` or `9991234578`.
    ///
    /// Surrounding whitespace is ignored. Separators, when present, must both be a single space
    /// or both a single hyphen, placed in the 3-3-4 grouping.
    ///
    /// # Errors
    ///
    /// An [`NhsNumberError`] naming the first rule the input breaks.
    pub fn parse(input: &str) -> Result<Self, NhsNumberError> {
        let digits = strip_grouping(input.trim()).ok_or(NhsNumberError::Format)?;
        let (body, check) = digits.split_at(LEN - 1);
        let expected = check_digit(body).ok_or(NhsNumberError::UnusableStem)?;
        let found = check[0] - b'0';
        if expected != found {
            return Err(NhsNumberError::CheckDigit { expected, found });
        }
        if digits.iter().all(|&d| d == digits[0]) {
            return Err(NhsNumberError::RepeatedDigit);
        }
        Ok(Self(digits))
    }

    /// Builds the NHS number whose first nine digits are `body`, computing the check digit.
    ///
    /// Returns `None` when `body` is not exactly nine ASCII digits, when its Modulus 11 check
    /// would be 10, or when the result would have all ten digits identical. Intended for
    /// generators of synthetic (test-range) patients.
    pub fn from_body(body: &str) -> Option<Self> {
        let body: [u8; LEN - 1] = body.as_bytes().try_into().ok()?;
        if !body.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut digits = [0; LEN];
        digits[..LEN - 1].copy_from_slice(&body);
        digits[LEN - 1] = b'0' + check_digit(&body)?;
        Self::parse(std::str::from_utf8(&digits).ok()?).ok()
    }

    /// The ten digits with no separators, e.g. `9991234578`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("an NhsNumber holds only ASCII digits")
    }

    /// True for numbers in the `999 000 0000`–`999 999 9999` block, reserved for test data and
    /// never issued to patients.
    pub fn is_test_range(&self) -> bool {
        self.0.starts_with(b"999")
    }
}

/// Returns the ten ASCII digits of `input` if it is 10 digits or 3-3-4 grouped by one
/// consistent separator (space or hyphen).
fn strip_grouping(input: &str) -> Option<[u8; LEN]> {
    let bytes = input.as_bytes();
    let digits: Vec<u8> = match bytes.len() {
        LEN => bytes.to_vec(),
        12 if bytes[3] == bytes[7] && matches!(bytes[3], b' ' | b'-') => {
            [&bytes[..3], &bytes[4..7], &bytes[8..]].concat()
        }
        _ => return None,
    };
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.try_into().ok()
}

/// The Modulus 11 check digit for nine ASCII digits, or `None` when it would be 10.
fn check_digit(body: &[u8]) -> Option<u8> {
    let sum: u32 = body
        .iter()
        .zip(WEIGHTS)
        .map(|(&digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        check => u8::try_from(check).ok(),
    }
}

impl fmt::Display for NhsNumber {
    /// Formats in the 3-3-4 display form, e.g. `999 123 4578`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.as_str();
        write!(f, "{} {} {}", &s[..3], &s[3..6], &s[6..])
    }
}

impl fmt::Debug for NhsNumber {
    /// Shows the digits only for test-range numbers; real patients' numbers are redacted so that
    /// `{:?}` in logs and traces cannot leak them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_test_range() {
            f.debug_tuple("NhsNumber").field(&self.as_str()).finish()
        } else {
            f.write_str("NhsNumber(<redacted>)")
        }
    }
}

impl FromStr for NhsNumber {
    type Err = NhsNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for NhsNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NhsNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nhs(s: &str) -> NhsNumber {
        NhsNumber::parse(s).expect("valid test NHS number")
    }

    #[test]
    fn accepts_plain_spaced_and_hyphenated_forms() {
        for input in [
            "9990000018",
            "999 000 0018",
            "999-000-0018",
            "  999 000 0018 ",
        ] {
            assert_eq!(nhs(input).as_str(), "9990000018", "{input:?}");
        }
    }

    #[test]
    fn check_of_eleven_becomes_zero() {
        assert_eq!(nhs("9990000050").as_str(), "9990000050");
        assert_eq!(
            NhsNumber::from_body("999000005").map(|n| n.as_str().to_owned()),
            Some("9990000050".to_owned())
        );
    }

    #[test]
    fn rejects_bad_formats() {
        for input in [
            "",
            "999000001",
            "99900000188",
            "99900000a8",
            "999 0000018",
            "999-000 0018",
            "9990-00-0018",
            "999  000  0018",
            "+999000001",
            "９９９０００００１８",
        ] {
            assert_eq!(
                NhsNumber::parse(input),
                Err(NhsNumberError::Format),
                "{input:?}"
            );
        }
    }

    #[test]
    fn reports_expected_check_digit() {
        assert_eq!(
            NhsNumber::parse("9990000017"),
            Err(NhsNumberError::CheckDigit {
                expected: 8,
                found: 7
            })
        );
    }

    #[test]
    fn rejects_stem_whose_check_is_ten() {
        // 999 123 456 weighs to 320; 320 mod 11 = 1; 11 - 1 = 10.
        for last in 0..=9 {
            let input = format!("999123456{last}");
            assert_eq!(NhsNumber::parse(&input), Err(NhsNumberError::UnusableStem));
        }
        assert_eq!(NhsNumber::from_body("999123456"), None);
    }

    #[test]
    fn rejects_repeated_digits_even_when_checksum_passes() {
        assert_eq!(
            NhsNumber::parse("9999999999"),
            Err(NhsNumberError::RepeatedDigit)
        );
        assert_eq!(NhsNumber::from_body("999999999"), None);
    }

    #[test]
    fn from_body_rejects_wrong_shapes() {
        for body in ["", "99900000", "9990000011", "99900000x"] {
            assert_eq!(NhsNumber::from_body(body), None, "{body:?}");
        }
    }

    #[test]
    fn displays_in_three_three_four_groups() {
        assert_eq!(nhs("9998765439").to_string(), "999 876 5439");
    }

    #[test]
    fn recognises_test_range() {
        assert!(nhs("9991234578").is_test_range());
    }

    #[test]
    fn debug_shows_test_range_digits_only() {
        assert_eq!(
            format!("{:?}", nhs("9991234578")),
            r#"NhsNumber("9991234578")"#
        );
        // Built directly, bypassing validation: 123456789 has no valid check digit, so this can
        // never be a real patient's number, yet it exercises the non-test-range branch.
        let outside_test_range = NhsNumber(*b"1234567890");
        assert_eq!(format!("{outside_test_range:?}"), "NhsNumber(<redacted>)");
    }

    #[test]
    fn serde_uses_plain_digits_and_validates() {
        let number = nhs("999 123 4578");
        let json = serde_json::to_string(&number).expect("serialise");
        assert_eq!(json, r#""9991234578""#);
        let back: NhsNumber = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, number);
        assert!(serde_json::from_str::<NhsNumber>(r#""9991234577""#).is_err());
    }

    #[test]
    fn error_messages_do_not_echo_input() {
        for input in ["9991234577", "99912345x8", "9991234560"] {
            let message = NhsNumber::parse(input).expect_err("invalid").to_string();
            assert!(!message.contains(input), "{message}");
        }
    }
}
