//! A point in time as FHIR's `instant` type: an RFC 3339 timestamp with seconds and an offset.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A validated FHIR `instant`, e.g. `2025-03-12T09:30:00Z` or `2025-06-01T14:05:09.123+01:00`.
///
/// The text is kept exactly as given, including its offset and fractional digits. Equality is
/// textual, and there is deliberately no ordering: the same moment can be written with different
/// offsets, so compare instants with a time library after conversion at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Instant(String);

/// The text is not a FHIR instant (`YYYY-MM-DDThh:mm:ss[.f+](Z|±hh:mm)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a FHIR instant: expected YYYY-MM-DDThh:mm:ss[.fraction] with Z or ±hh:mm")]
pub struct InstantError;

impl Instant {
    /// Validates the syntax and calendar (month lengths and leap years) and keeps the text.
    ///
    /// # Errors
    ///
    /// [`InstantError`] when `text` is not a FHIR instant or names a day that does not exist.
    pub fn parse(text: &str) -> Result<Self, InstantError> {
        if is_fhir_instant(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(InstantError)
        }
    }

    /// The original text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks `text` against the FHIR R4 instant grammar, including day-of-month validity.
fn is_fhir_instant(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return false;
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        number(&b[0..4]),
        number(&b[5..7]),
        number(&b[8..10]),
        number(&b[11..13]),
        number(&b[14..16]),
        number(&b[17..19]),
    ) else {
        return false;
    };
    let date_ok =
        year >= 1 && (1..=12).contains(&month) && (1..=days_in(year, month)).contains(&day);
    // FHIR permits a leap second (60).
    let time_ok = hour <= 23 && minute <= 59 && second <= 60;
    date_ok && time_ok && is_fraction_and_offset(&b[19..])
}

/// Checks the optional `.fraction` and the mandatory `Z` / `±hh:mm` (max `+14:00`).
fn is_fraction_and_offset(rest: &[u8]) -> bool {
    let rest = match rest.strip_prefix(b".") {
        Some(fraction) => {
            let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return false;
            }
            &fraction[digits..]
        }
        None => rest,
    };
    match rest {
        b"Z" => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => match (number(&[*h1, *h2]), number(&[*m1, *m2])) {
            (Some(hours), Some(minutes)) => {
                (hours <= 13 && minutes <= 59) || (hours, minutes) == (14, 0)
            }
            _ => false,
        },
        _ => false,
    }
}

/// Parses a run of ASCII digits; `None` if any byte is not a digit.
fn number(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// Days in `month` of `year` in the proleptic Gregorian calendar.
fn days_in(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Instant {
    type Err = InstantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Instant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_instants_verbatim() {
        for text in [
            "2025-03-12T09:30:00Z",
            "2025-06-01T14:05:09.123+01:00",
            "2024-02-29T23:59:60.5-05:30",
            "0001-01-01T00:00:00+14:00",
            "2025-12-31T00:00:00.000000001-13:59",
        ] {
            assert_eq!(Instant::parse(text).expect(text).as_str(), text);
        }
    }

    #[test]
    fn rejects_invalid_instants() {
        for text in [
            "",
            "2025-03-12",
            "2025-03-12T09:30Z",
            "2025-03-12T09:30:00",
            "2025-03-12 09:30:00Z",
            "2025-03-12t09:30:00z",
            "2025-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2025-04-31T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2025-01-01T24:00:00Z",
            "2025-01-01T00:60:00Z",
            "2025-01-01T00:00:61Z",
            "2025-01-01T00:00:00.Z",
            "2025-01-01T00:00:00+14:30",
            "2025-01-01T00:00:00+0100",
            "2025-01-01T00:00:00Z ",
            "2025-0a-01T00:00:00Z",
        ] {
            assert_eq!(Instant::parse(text), Err(InstantError), "{text:?}");
        }
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let instant: Instant = serde_json::from_str(r#""2000-02-29T12:00:00Z""#).expect("valid");
        assert_eq!(
            serde_json::to_string(&instant).expect("serialise"),
            r#""2000-02-29T12:00:00Z""#
        );
        assert!(serde_json::from_str::<Instant>(r#""2025-03-12""#).is_err());
    }
}
