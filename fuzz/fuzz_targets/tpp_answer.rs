//! TPP-style answers: the adapter's JSON mapping (`keel_integrations::tpp::map`) never panics on
//! any bytes a supplier could send, for the journal of every section, medication and patients.
#![no_main]

use keel_integrations::tpp::map::{self, Source};
use keel_model::record::RecordSection;
use keel_model::{Instant, OdsCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let source = Source {
        practice: OdsCode::parse("Y90002").expect("valid"),
        retrieved: Instant::parse("2026-01-05T09:00:00Z").expect("valid"),
    };
    let _ = map::error_of(data);
    if let Ok(journal) = map::parse_journal(data) {
        for section in RecordSection::ALL {
            let _ = map::journal_section(&journal, section, &source);
        }
    }
    if let Ok(list) = map::parse_medication(data) {
        let _ = map::medication_section(&list, &source);
    }
    if let Ok(value) = map::parse(data) {
        let _ = map::search_results(&value);
        let _ = map::demographics(&value);
        let _ = map::created_row(&value);
    }
});
