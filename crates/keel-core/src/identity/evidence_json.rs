//! The matcher's evidence as a FHIR extension (`match-evidence`), used on `$match` entries and
//! on the person index's Linkage records: what a grade rests on, the probability and match
//! weight, and per field its agreement level and weight (log2 Bayes factor, term-frequency
//! adjustment included).

use keel_identity::Evidence;
use serde_json::{Value, json};

pub const MATCH_EVIDENCE_EXTENSION: &str =
    "https://keel.example/fhir/StructureDefinition/match-evidence";

/// The `match-evidence` extension; `basis` is `nhs-number` or `demographics`.
pub fn evidence_extension(basis: &str, evidence: &Evidence) -> Value {
    let mut parts = vec![
        json!({"url": "basis", "valueCode": basis}),
        json!({"url": "probability", "valueDecimal": round(evidence.probability)}),
        json!({"url": "matchWeight", "valueDecimal": round(evidence.match_weight)}),
        json!({"url": "priorWeight", "valueDecimal": round(evidence.prior_weight)}),
    ];
    for f in &evidence.fields {
        parts.push(json!({
            "url": "field",
            "extension": [
                {"url": "name", "valueCode": f.field.name()},
                {"url": "level", "valueString": f.level_name},
                {"url": "weight", "valueDecimal": round(f.weight)},
                {"url": "termFrequencyAdjustment", "valueDecimal": round(f.tf_adjustment)},
            ]
        }));
    }
    json!({"url": MATCH_EVIDENCE_EXTENSION, "extension": parts})
}

/// Six decimal places: enough to order by, stable to read.
pub fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
