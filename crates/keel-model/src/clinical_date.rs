//! A clinical date as sources record it: a year, a month, a day, or a moment (FHIR `date` /
//! `dateTime`). GP systems hold many partial dates ("diabetes since 1998"), and a partial date
//! must never be widened into a false precise one.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::Instant;

/// A FHIR `dateTime`: `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or a full instant with offset. The text is
/// kept exactly as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClinicalDate(String);

/// The text is not a FHIR date or dateTime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a clinical date: expected YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with Z or ±hh:mm"
)]
pub struct ClinicalDateError;

/// How much of a [`ClinicalDate`] is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Precision {
    Year,
    Month,
    Day,
    Moment,
}

impl ClinicalDate {
    /// Validates the syntax and calendar and keeps the text.
    ///
    /// # Errors
    /// [`ClinicalDateError`] when `text` is not a FHIR date or dateTime.
    pub fn parse(text: &str) -> Result<Self, ClinicalDateError> {
        let b = text.as_bytes();
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            let s = b.get(r)?;
            s.iter()
                .all(u8::is_ascii_digit)
                .then(|| s.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
        };
        let ok = match b.len() {
            4 => digits(0..4).is_some_and(|y| y >= 1),
            7 => {
                b[4] == b'-'
                    && digits(0..4).is_some_and(|y| y >= 1)
                    && digits(5..7).is_some_and(|m| (1..=12).contains(&m))
            }
            10 => {
                b[4] == b'-' && b[7] == b'-' && Instant::parse(&format!("{text}T00:00:00Z")).is_ok()
            }
            _ => Instant::parse(text).is_ok(),
        };
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(ClinicalDateError)
        }
    }

    /// The original text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn precision(&self) -> Precision {
        match self.0.len() {
            4 => Precision::Year,
            7 => Precision::Month,
            10 => Precision::Day,
            _ => Precision::Moment,
        }
    }

    /// The calendar date part as text (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`), for ordering and
    /// display. Offsets are not applied: two moments on either side of midnight in different
    /// offsets may share a day here.
    pub fn date_part(&self) -> &str {
        &self.0[..self.0.len().min(10)]
    }
}

impl fmt::Display for ClinicalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ClinicalDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ClinicalDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn partial_dates_keep_their_precision() {
        let cases = [
            ("1998", Precision::Year),
            ("1998-04", Precision::Month),
            ("1998-04-30", Precision::Day),
            ("1998-04-30T09:15:00+01:00", Precision::Moment),
        ];
        for (text, precision) in cases {
            let date = ClinicalDate::parse(text).expect(text);
            assert_eq!(date.precision(), precision, "{text}");
            assert_eq!(date.as_str(), text);
        }
    }

    #[test]
    fn impossible_dates_are_refused() {
        for text in [
            "",
            "98",
            "1998-13",
            "1998-02-30",
            "1998-4-30",
            "0000",
            "1998-04-30T25:00:00Z",
            "1998-04-30T09:15",
            "19980430",
        ] {
            assert!(ClinicalDate::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn serde_is_the_text() {
        let date = ClinicalDate::parse("2001-07").expect("valid");
        let json = serde_json::to_string(&date).expect("serialise");
        assert_eq!(json, "\"2001-07\"");
        let back: ClinicalDate = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, date);
        assert!(serde_json::from_str::<ClinicalDate>("\"2001-7\"").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_keeps_text(text in "\\PC{0,30}") {
            if let Ok(date) = ClinicalDate::parse(&text) {
                prop_assert_eq!(date.as_str(), text.as_str());
            }
        }

        #[test]
        fn every_real_day_parses(y in 1u32..=9999, m in 1u32..=12, d in 1u32..=28) {
            let text = format!("{y:04}-{m:02}-{d:02}");
            prop_assert!(ClinicalDate::parse(&text).is_ok());
        }
    }
}
