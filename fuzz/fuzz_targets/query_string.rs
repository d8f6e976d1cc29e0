//! Query strings: `keel_core::fhir::parse_query_string` never panics, yields one pair per
//! non-empty `&`-segment, and re-parsing its output (percent-encoded again) is stable.
#![no_main]

use keel_core::fhir::parse_query_string;
use libfuzzer_sys::fuzz_target;

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let pairs = parse_query_string(text);
    assert_eq!(pairs.len(), text.split('&').filter(|p| !p.is_empty()).count());
    let again: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    let reparsed = parse_query_string(&again.join("&"));
    assert_eq!(pairs, reparsed, "re-encoding and re-parsing changed the pairs");
});
