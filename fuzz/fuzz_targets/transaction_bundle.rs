//! Batch and transaction Bundles: `FhirService::process_bundle` against a real SQLite store never
//! panics (errors are fine).
//!
//! The store lives in a temporary directory created once per process (under `$TMPDIR`;
//! `scripts/fuzz.sh` points that at a RAM disk and removes it afterwards), so state accumulates
//! across inputs: to reproduce a crash, run the artifact alone first, then with the corpus.
#![no_main]

use keel_core::clock::{SequentialIds, SystemClock};
use keel_core::fhir::FhirService;
use keel_core::{CorrelationId, RequestContext};
use keel_store::SqliteStore;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::{Arc, LazyLock};

struct Fixture {
    service: FhirService,
    ctx: RequestContext,
    _dir: tempfile::TempDir,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = tempfile::Builder::new().prefix("keel-fuzz-bundle-").tempdir().expect("temporary directory");
    let store = SqliteStore::open_dir(dir.path()).expect("open the SQLite store");
    let service = FhirService::new(Arc::new(store), Arc::new(SystemClock::default()), Arc::new(SequentialIds::new("fz")));
    let ctx = RequestContext::local_development(CorrelationId::parse("fuzz").expect("valid correlation id"));
    Fixture { service, ctx, _dir: dir }
});

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = serde_json::from_slice::<Value>(data) else { return };
    let f = &*FIXTURE;
    let _ = f.service.process_bundle(&f.ctx, bundle);
});
