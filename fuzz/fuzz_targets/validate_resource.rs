//! Resources: structural validation (`keel_fhir::validate::validate`) and search-index
//! extraction (`keel_fhir::index::Indexer::extract`) never panic on any JSON value.
#![no_main]

use keel_fhir::{definitions, index::Indexer, validate};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::LazyLock;

static INDEXER: LazyLock<Indexer> = LazyLock::new(|| Indexer::new(definitions::r4()));

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let _ = validate::validate(&value);
    let _ = INDEXER.extract(&value);
});
