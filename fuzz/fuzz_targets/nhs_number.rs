//! NHS numbers: `keel_model::NhsNumber::parse` never panics; what it accepts round-trips through
//! its display form and its digits, and its check digit is the one `from_body` computes.
#![no_main]

use keel_model::NhsNumber;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(number) = NhsNumber::parse(text) else { return };
    let shown = number.to_string();
    assert_eq!(NhsNumber::parse(&shown).as_ref(), Ok(&number), "display form {shown:?} does not parse back");
    let digits = number.as_str();
    assert_eq!(digits.len(), 10);
    assert!(digits.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(NhsNumber::parse(digits).as_ref(), Ok(&number));
    assert_eq!(NhsNumber::from_body(&digits[..9]).as_ref(), Some(&number));
});
