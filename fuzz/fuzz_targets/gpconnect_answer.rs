//! GP Connect answers: the adapter's STU3 mapping (`keel_integrations::gpconnect`) never panics
//! on any bytes a provider could send — structured record Bundles for every section, the
//! Patient, and the CapabilityStatement a probe reads.
#![no_main]

use keel_integrations::gpconnect::map::{self, Source};
use keel_integrations::gpconnect::metadata;
use keel_model::record::RecordSection;
use keel_model::{Instant, OdsCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let practice = OdsCode::parse("Y90003").expect("valid");
    let retrieved = Instant::parse("2026-01-05T09:00:00Z").expect("valid");
    let source = Source { practice: &practice, retrieved: &retrieved };
    for section in RecordSection::ALL {
        let _ = map::map_section(data, section, &source);
    }
    let _ = map::map_patient(data);
    let _ = metadata::offered_operations(data);
});
