//! Property tests for the NHS number Modulus 11 rules. Every generated number is in the
//! `999` test range, which is never issued to patients.

use keel_model::{NhsNumber, NhsNumberError};
use proptest::prelude::*;

/// Nine-digit test-range stems (`999` followed by six digits).
fn test_range_body() -> impl Strategy<Value = String> {
    (0u32..1_000_000).prop_map(|n| format!("999{n:06}"))
}

/// Valid test-range NHS numbers.
fn valid_number() -> impl Strategy<Value = NhsNumber> {
    test_range_body().prop_filter_map("stem has no valid check digit", |body| {
        NhsNumber::from_body(&body)
    })
}

/// Stems whose Modulus 11 check would be 10.
fn unusable_body() -> impl Strategy<Value = String> {
    test_range_body().prop_filter("stem has a valid check digit", |body| {
        let sum: u32 = body
            .bytes()
            .zip((2..=10).rev())
            .map(|(digit, weight)| u32::from(digit - b'0') * weight)
            .sum();
        11 - sum % 11 == 10
    })
}

/// Replaces the digit at `index` of `number` with `digit`.
fn with_digit(number: &str, index: usize, digit: u8) -> String {
    let mut bytes = number.as_bytes().to_vec();
    bytes[index] = b'0' + digit;
    String::from_utf8(bytes).expect("ASCII digits")
}

proptest! {
    #[test]
    fn generated_numbers_are_test_range(number in valid_number()) {
        prop_assert!(number.is_test_range());
        prop_assert_eq!(number.as_str().len(), 10);
    }

    #[test]
    fn display_and_plain_forms_round_trip(number in valid_number()) {
        prop_assert_eq!(NhsNumber::parse(&number.to_string()), Ok(number));
        prop_assert_eq!(NhsNumber::parse(number.as_str()), Ok(number));
        prop_assert_eq!(NhsNumber::parse(&number.to_string().replace(' ', "-")), Ok(number));
    }

    #[test]
    fn serde_round_trips(number in valid_number()) {
        let json = serde_json::to_string(&number).expect("serialise");
        prop_assert_eq!(json.clone(), format!("\"{}\"", number.as_str()));
        let back: NhsNumber = serde_json::from_str(&json).expect("deserialise");
        prop_assert_eq!(back, number);
    }

    /// Weights 1..=10 are all non-zero modulo the prime 11, so no single-digit change can
    /// keep the weighted sum divisible by 11.
    #[test]
    fn any_single_digit_change_is_detected(
        number in valid_number(),
        index in 0usize..10,
        offset in 1u8..10,
    ) {
        let original = number.as_str();
        let digit = (original.as_bytes()[index] - b'0' + offset) % 10;
        let changed = with_digit(original, index, digit);
        prop_assert!(NhsNumber::parse(&changed).is_err(), "{} accepted", changed);
    }

    /// Swapping adjacent digits a, b (weights w and w - 1, the check digit weighing 1) shifts
    /// the weighted sum by ±(a - b), which is never 0 mod 11 for distinct digits. The reference
    /// sheet names no exception, and the arithmetic leaves none: every such transposition,
    /// including one involving the check digit, is detected.
    #[test]
    fn adjacent_transpositions_of_different_digits_are_detected(
        number in valid_number(),
        index in 0usize..9,
    ) {
        let mut bytes = number.as_str().as_bytes().to_vec();
        prop_assume!(bytes[index] != bytes[index + 1]);
        bytes.swap(index, index + 1);
        let swapped = String::from_utf8(bytes).expect("ASCII digits");
        prop_assert!(NhsNumber::parse(&swapped).is_err(), "{} accepted", swapped);
    }

    #[test]
    fn stems_with_check_ten_are_rejected(body in unusable_body(), last in 0u8..10) {
        prop_assert_eq!(NhsNumber::from_body(&body), None);
        let candidate = format!("{body}{last}");
        prop_assert_eq!(NhsNumber::parse(&candidate), Err(NhsNumberError::UnusableStem));
    }

    #[test]
    fn wrong_check_digit_reports_the_expected_one(number in valid_number(), offset in 1u8..10) {
        let expected = number.as_str().as_bytes()[9] - b'0';
        let found = (expected + offset) % 10;
        let changed = with_digit(number.as_str(), 9, found);
        prop_assert_eq!(
            NhsNumber::parse(&changed),
            Err(NhsNumberError::CheckDigit { expected, found })
        );
    }
}
