//! FHIR search parameters: `keel_fhir::search::parse_query` must never panic, whatever the
//! query string, for either handling mode.
//!
//! Input: `[ResourceType?]query-string`. A real R4 resource type before the first `?` is searched;
//! otherwise one from a short list is picked from the input's length. The query string is split
//! and percent-decoded by `keel_core::fhir::parse_query_string`, as the HTTP edge does.
#![no_main]

use keel_fhir::definitions;
use keel_fhir::search::{Handling, parse_query};
use libfuzzer_sys::fuzz_target;

const TYPES: &[&str] = &["Patient", "Observation", "Encounter", "Condition", "MedicationRequest", "Practitioner", "Organization", "Immunization"];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let defs = definitions::r4();
    let (resource_type, query) = match text.split_once('?') {
        Some((rt, q)) if defs.is_resource_type(rt) => (rt, q),
        _ => (TYPES[data.len() % TYPES.len()], &*text),
    };
    let pairs = keel_core::fhir::parse_query_string(query);
    let lenient = parse_query(defs, resource_type, &pairs, Handling::Lenient);
    let strict = parse_query(defs, resource_type, &pairs, Handling::Strict);
    // Strict handling only rejects more: what it accepts, lenient handling accepts identically.
    if let Ok(strict) = &strict {
        assert_eq!(lenient.as_ref().ok(), Some(strict), "strict accepted what lenient did not, or differently");
    }
});
