//! ETags: `keel_core::fhir::parse_etag` never panics, and the version it reads is read again
//! from every form the server and clients write (`W/"n"`, `"n"`, `n`).
#![no_main]

use keel_core::fhir::parse_etag;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some(version) = parse_etag(text) else { return };
    for form in [format!("W/\"{version}\""), format!("\"{version}\""), version.to_string()] {
        assert_eq!(parse_etag(&form), Some(version), "{form:?}");
    }
});
