//! FHIR date/dateTime/instant ranges: `keel_fhir::datetime::parse_range` never panics; an
//! accepted value is a non-empty range, and a date lies inside its year (and month).
#![no_main]

use keel_fhir::datetime::parse_range;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(range) = parse_range(text) else { return };
    assert!(range.start < range.end, "{text:?} parsed to an empty range {range:?}");
    // Date-only values (no zone to shift them) nest inside their coarser precisions.
    if text.len() == 7 || text.len() == 10 {
        for prefix in [4, 7].into_iter().filter(|&p| p < text.len()) {
            let outer = parse_range(&text[..prefix]).expect("the prefix of a valid date is valid");
            assert!(outer.start <= range.start && range.end <= outer.end, "{text:?} {range:?} is not inside {outer:?}");
        }
    }
});
