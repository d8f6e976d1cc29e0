//! PDS answers: `keel_integrations::pds::map_patient` never panics on any JSON, and whatever it
//! accepts has a valid NHS number that is also the record's id.
#![no_main]

use keel_integrations::pds::map_patient;
use keel_model::OdsCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let source = OdsCode::parse("X26").expect("valid");
    if let Ok(record) = map_patient(&value, &source) {
        let nhs = record.demographics.nhs_number.expect("an accepted record has an NHS number");
        assert_eq!(record.demographics.source_patient_id, nhs.as_str());
    }
});
