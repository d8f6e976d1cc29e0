//! EMIS-style answers: the adapter's XML mapping (`keel_integrations::emis::map`) never panics on
//! any bytes a supplier could send, for every record section and the full extract.
#![no_main]

use keel_integrations::emis::map::{self, ReadContext};
use keel_model::record::RecordSection;
use keel_model::{Instant, OdsCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let practice = OdsCode::parse("Y90001").expect("valid");
    let retrieved = Instant::parse("2026-01-05T09:00:00Z").expect("valid");
    let ctx = ReadContext { practice: &practice, retrieved: &retrieved };
    for section in RecordSection::ALL {
        let _ = map::map_section(data, section, &ctx);
    }
    let _ = map::map_medical_record(data, &ctx);
    let _ = map::map_patient_matches(data);
    let _ = map::map_write_result(data);
    let _ = map::map_session(data);
    let _ = map::map_error(data);
});
