//! ODS codes: `keel_model::OdsCode::parse` never panics; an accepted code is 3-10 upper-case
//! ASCII alphanumerics and round-trips through its display form.
#![no_main]

use keel_model::OdsCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(code) = OdsCode::parse(text) else { return };
    let s = code.as_str();
    assert!((3..=10).contains(&s.len()), "{s:?}");
    assert!(s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()), "{s:?}");
    assert_eq!(OdsCode::parse(&code.to_string()).as_ref(), Ok(&code));
    assert_eq!(OdsCode::parse(&text.to_ascii_lowercase()).as_ref(), Ok(&code));
});
