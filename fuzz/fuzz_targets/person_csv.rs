//! CSV of people for `keel match`: `keel_identity::csv` never panics on any text; what it reads
//! writes back and reads again to the same records; and every record normalises into a
//! `PersonRecord` without panicking.
#![no_main]

use keel_identity::PersonRecord;
use keel_identity::csv::{parse, write_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(records) = parse(text) else { return };
    let mut written = String::new();
    for r in &records {
        write_record(&mut written, r);
        let field = |i: usize| r.get(i).map_or("", String::as_str);
        let _ = PersonRecord::new(field(0))
            .with_given(field(1))
            .with_family(field(2))
            .with_sex(field(3))
            .with_birth_date(field(4))
            .with_postcode(field(5))
            .with_address(field(6))
            .with_nhs_number(field(7))
            .birth_date_text();
    }
    let again = parse(&written).expect("what the writer wrote reads back");
    assert_eq!(again, records, "written as {written:?}");
});
