//! Practice connections sent to `PUT /api/practices/{ods}`: reading, validating and deriving the
//! capability profile never panics, and a valid connection routes every operation or says why not.
#![no_main]

use keel_core::integration::{Operation, PracticeConnection};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(connection) = serde_json::from_slice::<PracticeConnection>(data) else { return };
    if connection.validate().is_ok() {
        let profile = connection.capability_profile();
        assert_eq!(profile.operations.len(), Operation::ALL.len());
        for operation in Operation::ALL {
            let _ = profile.route(operation);
        }
    }
});
