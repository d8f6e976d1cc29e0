//! ODS codes: the Organisation Data Service identifiers of NHS organisations and sites
//! (GP practices such as `A81001`, PCNs such as `U12345`, NHS England `X26`, ...).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// Shortest accepted ODS code.
const MIN_LEN: usize = 3;
/// Longest accepted ODS code.
const MAX_LEN: usize = 10;

/// A syntactically valid ODS code: 3 to 10 ASCII letters or digits, stored in upper case.
///
/// Only the shape is checked; whether the organisation exists is a question for ODS itself.
/// Serialises as the plain upper-case string; deserialising validates and normalises.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OdsCode(String);

/// Why a string is not a valid ODS code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OdsCodeError {
    /// Fewer than 3 or more than 10 characters.
    #[error("an ODS code has 3 to 10 characters, found {len}")]
    Length {
        /// Number of characters found (after trimming surrounding whitespace).
        len: usize,
    },
    /// A character other than an ASCII letter or digit.
    #[error(
        "an ODS code contains only ASCII letters and digits, found {found:?} at position {position}"
    )]
    Character {
        /// The offending character.
        found: char,
        /// Its zero-based character position.
        position: usize,
    },
}

impl OdsCode {
    /// Parses an ODS code, ignoring surrounding whitespace and normalising to upper case.
    ///
    /// # Errors
    ///
    /// [`OdsCodeError::Character`] for a non-alphanumeric character, else
    /// [`OdsCodeError::Length`] when outside 3 to 10 characters.
    pub fn parse(input: &str) -> Result<Self, OdsCodeError> {
        let input = input.trim();
        if let Some((position, found)) = input
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_alphanumeric())
        {
            return Err(OdsCodeError::Character { found, position });
        }
        let len = input.len();
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            return Err(OdsCodeError::Length { len });
        }
        Ok(Self(input.to_ascii_uppercase()))
    }

    /// The upper-case code, e.g. `A81001`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OdsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for OdsCode {
    type Err = OdsCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for OdsCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OdsCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_to_upper_case() {
        let code = OdsCode::parse(" a81001 ").expect("valid");
        assert_eq!(code.as_str(), "A81001");
        assert_eq!(code.to_string(), "A81001");
    }

    #[test]
    fn accepts_three_to_ten_characters() {
        for input in ["X26", "A81001", "RRF12345AB"] {
            assert_eq!(OdsCode::parse(input).expect("valid").as_str(), input);
        }
    }

    #[test]
    fn rejects_wrong_length() {
        assert_eq!(OdsCode::parse("X2"), Err(OdsCodeError::Length { len: 2 }));
        assert_eq!(
            OdsCode::parse("ABCDEFGHIJK"),
            Err(OdsCodeError::Length { len: 11 })
        );
        assert_eq!(OdsCode::parse("   "), Err(OdsCodeError::Length { len: 0 }));
    }

    #[test]
    fn rejects_non_alphanumeric_characters() {
        assert_eq!(
            OdsCode::parse("A81-001"),
            Err(OdsCodeError::Character {
                found: '-',
                position: 3
            })
        );
        assert_eq!(
            OdsCode::parse("Ä81001"),
            Err(OdsCodeError::Character {
                found: 'Ä',
                position: 0
            })
        );
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let code: OdsCode = serde_json::from_str(r#""y12345""#).expect("valid");
        assert_eq!(
            serde_json::to_string(&code).expect("serialise"),
            r#""Y12345""#
        );
        assert!(serde_json::from_str::<OdsCode>(r#""Y1 2345""#).is_err());
    }
}
