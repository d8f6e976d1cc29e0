//! FHIRPath: `keel_fhir::fhirpath::parse` never panics, and evaluating what it accepts against
//! fixed sample resources never panics.
#![no_main]

use keel_fhir::{definitions, fhirpath};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::LazyLock;

static SAMPLES: LazyLock<Vec<Value>> = LazyLock::new(|| {
    [
        include_str!("../samples/patient.json"),
        include_str!("../samples/observation.json"),
    ]
    .iter()
    .map(|s| serde_json::from_str(s).expect("sample resource is JSON"))
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(expr) = fhirpath::parse(text) else { return };
    for sample in SAMPLES.iter() {
        let _ = fhirpath::evaluate(&expr, sample, definitions::r4());
    }
});
