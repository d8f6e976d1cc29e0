//! Measured amounts (FHIR `Quantity`) that keep the value and unit exactly as recorded, with
//! an optional normalised (UCUM) form held beside them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de, ser};

use crate::coding::systems::UCUM;

/// A FHIR `decimal`, kept as its original text so that precision is never lost.
///
/// `37.50` stays `37.50` (two decimal places recorded), unlike an `f64`, which would become
/// `37.5`. Equality is textual: `37.5` and `37.50` are different values. Use
/// [`Decimal::to_f64`] for numeric comparisons.
///
/// Serialises as a JSON number with the same digits (this relies on serde_json's
/// `arbitrary_precision` feature, which the workspace enables).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal(String);

/// The text is not a FHIR decimal (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a FHIR decimal: expected digits with an optional sign, fraction and exponent")]
pub struct DecimalError;

impl Decimal {
    /// Validates FHIR decimal syntax and keeps the text exactly (no trimming).
    ///
    /// # Errors
    ///
    /// [`DecimalError`] when `text` is not a FHIR decimal.
    pub fn parse(text: &str) -> Result<Self, DecimalError> {
        if is_fhir_decimal(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(DecimalError)
        }
    }

    /// The original text, e.g. `37.50`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The nearest `f64`, for comparisons and arithmetic; never store the result.
    ///
    /// Magnitudes beyond `f64`'s range become infinite.
    pub fn to_f64(&self) -> f64 {
        self.0
            .parse()
            .expect("FHIR decimal syntax is a subset of Rust's float syntax")
    }
}

/// Checks `text` against the FHIR R4 decimal grammar.
fn is_fhir_decimal(text: &str) -> bool {
    let rest = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (integer, fraction) = match mantissa.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (mantissa, None),
    };
    let integer_ok = integer == "0" || (all_digits(integer) && !integer.starts_with('0'));
    let fraction_ok = fraction.is_none_or(all_digits);
    let exponent_ok = exponent.is_none_or(|e| all_digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    integer_ok && fraction_ok && exponent_ok
}

/// True for a non-empty run of ASCII digits.
fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let number: serde_json::Number = self.0.parse().map_err(ser::Error::custom)?;
        number.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        Self::parse(&number.to_string()).map_err(de::Error::custom)
    }
}

/// How the true value relates to the stated one, for results such as `<5` or `>90`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Comparator {
    /// The true value is less than the stated value.
    #[serde(rename = "<")]
    LessThan,
    /// The true value is less than or equal to the stated value.
    #[serde(rename = "<=")]
    LessOrEqual,
    /// The true value is greater than or equal to the stated value.
    #[serde(rename = ">=")]
    GreaterOrEqual,
    /// The true value is greater than the stated value.
    #[serde(rename = ">")]
    GreaterThan,
}

impl Comparator {
    /// The FHIR `quantity-comparator` code.
    pub fn as_code(&self) -> &'static str {
        match self {
            Self::LessThan => "<",
            Self::LessOrEqual => "<=",
            Self::GreaterOrEqual => ">=",
            Self::GreaterThan => ">",
        }
    }
}

/// A measured amount as recorded, plus an optional normalised form.
///
/// The original `value` and `unit` are never rewritten; conversion results live in
/// `normalised`. Serialises with FHIR's element names for the original fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quantity {
    /// The value exactly as recorded.
    pub value: Decimal,
    /// Qualifier for values recorded as a bound, e.g. `<` in `<5 mmol/L`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparator: Option<Comparator>,
    /// The unit text exactly as recorded (e.g. `mmol/l`, `Kg`, `puffs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The system of `code`, normally [`UCUM`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The coded unit as sent, e.g. the UCUM code `mmol/L`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The amount converted by Keel to a canonical UCUM unit, kept beside the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalised: Option<NormalisedQuantity>,
}

/// A value converted to a canonical UCUM unit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NormalisedQuantity {
    /// The converted value.
    pub value: Decimal,
    /// The UCUM code of the canonical unit.
    pub unit: String,
}

impl Quantity {
    /// A quantity with the recorded value and unit text and nothing else.
    pub fn new(value: Decimal, unit: impl Into<String>) -> Self {
        Self {
            value,
            comparator: None,
            unit: Some(unit.into()),
            system: None,
            code: None,
            normalised: None,
        }
    }

    /// Sets the comparator, for values recorded as bounds.
    pub fn with_comparator(mut self, comparator: Comparator) -> Self {
        self.comparator = Some(comparator);
        self
    }

    /// Sets the coded unit as a UCUM code (system [`UCUM`]).
    pub fn with_ucum_code(mut self, code: impl Into<String>) -> Self {
        self.system = Some(UCUM.to_owned());
        self.code = Some(code.into());
        self
    }

    /// Records a normalised form beside the original.
    pub fn with_normalised(mut self, value: Decimal, ucum_unit: impl Into<String>) -> Self {
        self.normalised = Some(NormalisedQuantity {
            value,
            unit: ucum_unit.into(),
        });
        self
    }

    /// True when the unit is coded in UCUM.
    pub fn is_ucum(&self) -> bool {
        self.system.as_deref() == Some(UCUM) && self.code.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        Decimal::parse(text).expect("valid decimal")
    }

    #[test]
    fn accepts_fhir_decimals_verbatim() {
        for text in [
            "0", "-0", "37.50", "0.001", "-12.3", "100", "1e5", "1.5E-3", "2E+10", "0.0",
        ] {
            assert_eq!(dec(text).as_str(), text);
        }
    }

    #[test]
    fn rejects_non_decimals() {
        for text in [
            "", "-", "01", "1.", ".5", "+1", " 1", "1 ", "1e", "1e+", "1.2.3", "NaN", "inf", "1,5",
            "--1", "0x10", "１",
        ] {
            assert_eq!(Decimal::parse(text), Err(DecimalError), "{text:?}");
        }
    }

    #[test]
    fn equality_is_textual_and_to_f64_is_numeric() {
        assert_ne!(dec("37.5"), dec("37.50"));
        assert_eq!(dec("37.5").to_f64(), dec("37.50").to_f64());
        assert_eq!(dec("1.5E-3").to_f64(), 0.0015);
    }

    #[test]
    fn decimal_json_round_trip_keeps_trailing_zeros() {
        let value: Decimal = serde_json::from_str("37.50").expect("deserialise");
        assert_eq!(value.as_str(), "37.50");
        assert_eq!(serde_json::to_string(&value).expect("serialise"), "37.50");
        assert!(serde_json::from_str::<Decimal>(r#""37.50""#).is_err());
    }

    #[test]
    fn quantity_keeps_original_beside_normalised() {
        let weight = Quantity::new(dec("12.50"), "st")
            .with_ucum_code("[stone_av]")
            .with_normalised(dec("79.379"), "kg");
        assert_eq!(weight.value.as_str(), "12.50");
        assert_eq!(weight.unit.as_deref(), Some("st"));
        assert!(weight.is_ucum());
        let normalised = weight.normalised.as_ref().expect("normalised");
        assert_eq!(normalised.value.as_str(), "79.379");
        assert_eq!(normalised.unit, "kg");
    }

    #[test]
    fn quantity_json_round_trip_is_lossless() {
        let json = r#"{"value":5.0,"comparator":"<","unit":"mmol/l","system":"http://unitsofmeasure.org","code":"mmol/L"}"#;
        let quantity: Quantity = serde_json::from_str(json).expect("deserialise");
        assert_eq!(quantity.comparator.map(|c| c.as_code()), Some("<"));
        assert_eq!(quantity.value.as_str(), "5.0");
        assert_eq!(serde_json::to_string(&quantity).expect("serialise"), json);
    }

    #[test]
    fn uncoded_unit_is_not_ucum() {
        let puffs = Quantity::new(dec("2"), "puffs");
        assert!(!puffs.is_ucum());
        assert_eq!(puffs.code, None);
    }
}
