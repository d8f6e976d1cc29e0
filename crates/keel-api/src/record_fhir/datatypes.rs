//! FHIR R4 data types from canonical values: codings, quantities, provenance and source
//! attributes, and an object builder that keeps every primitive valid R4 JSON.
//!
//! Canonical text is kept verbatim wherever R4 allows it. Where R4 cannot hold it — an empty
//! string, a `code` with leading, trailing or doubled whitespace, a `uri` with whitespace —
//! the element gets the nearest valid value (trimmed and collapsed, or whitespace
//! percent-encoded; omitted if nothing is left) and the exact original rides on the
//! primitive's `_name` sibling as an [`ORIGINAL_TEXT_URL`] extension.

use std::str::FromStr;

use keel_model::identifier::systems::ODS_ORGANISATION_CODE;
use keel_model::record::SourceAttribute;
use keel_model::{
    ClinicalDate, CodeableConcept, Coding, CodingOrigin, OdsCode, Provenance, Quantity,
};
use serde_json::{Map, Number, Value, json};

use super::{
    CODING_ORIGIN_URL, ITEM_PROVENANCE_URL, NORMALISED_QUANTITY_URL, ORIGINAL_TEXT_URL,
    SOURCE_ATTRIBUTE_URL,
};

/// The standard R4 extension saying why a required element has no value.
const DATA_ABSENT_REASON_URL: &str = "http://hl7.org/fhir/StructureDefinition/data-absent-reason";

/// A JSON object under construction, with setters that only write valid R4 primitives.
#[derive(Debug, Default)]
pub(super) struct Obj(Map<String, Value>);

impl Obj {
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// An object with room for `fields` elements, so building it does not reallocate.
    pub(super) fn with_capacity(fields: usize) -> Self {
        Self(Map::with_capacity(fields))
    }

    /// Sets `key` to `value`.
    pub(super) fn set(&mut self, key: &str, value: Value) -> &mut Self {
        self.0.insert(key.to_owned(), value);
        self
    }

    /// Sets `key` when `value` is present.
    pub(super) fn set_some(&mut self, key: &str, value: Option<Value>) -> &mut Self {
        if let Some(value) = value {
            self.set(key, value);
        }
        self
    }

    /// Sets `key` to a non-empty array.
    pub(super) fn set_array(&mut self, key: &str, items: Vec<Value>) -> &mut Self {
        if !items.is_empty() {
            self.set(key, Value::Array(items));
        }
        self
    }

    /// A `string` (or `markdown`) element: anything but the empty string is valid.
    pub(super) fn string(&mut self, key: &str, text: &str) -> &mut Self {
        if !text.is_empty() {
            self.set(key, Value::from(text));
        }
        self
    }

    /// A `code` element: no leading, trailing or doubled whitespace.
    pub(super) fn code(&mut self, key: &str, text: &str) -> &mut Self {
        if is_code(text) {
            return self.set(key, Value::from(text));
        }
        let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
        self.string(key, &collapsed).original_text(key, text)
    }

    /// A `uri` element: no whitespace.
    pub(super) fn uri(&mut self, key: &str, text: &str) -> &mut Self {
        if !text.is_empty() && !text.chars().any(char::is_whitespace) {
            return self.set(key, Value::from(text));
        }
        let encoded: String = text
            .chars()
            .map(|c| {
                if c.is_whitespace() {
                    let mut bytes = [0u8; 4];
                    c.encode_utf8(&mut bytes)
                        .bytes()
                        .map(|b| format!("%{b:02X}"))
                        .collect()
                } else {
                    c.to_string()
                }
            })
            .collect();
        self.string(key, &encoded).original_text(key, text)
    }

    /// A `dateTime` element from a clinical date, which is always a valid one.
    pub(super) fn date_time(&mut self, key: &str, date: Option<&ClinicalDate>) -> &mut Self {
        if let Some(date) = date {
            self.set(key, Value::from(date.as_str()));
        }
        self
    }

    /// Records `original` on the `_key` sibling when it differs from what `key` holds.
    fn original_text(&mut self, key: &str, original: &str) -> &mut Self {
        if original.is_empty() {
            return self;
        }
        self.set(
            &format!("_{key}"),
            json!({"extension": [{"url": ORIGINAL_TEXT_URL, "valueString": original}]}),
        )
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn build(self) -> Value {
        Value::Object(self.0)
    }
}

/// A JSON object of `fields`, moved in as they are. (`json!` copies any `Value` it is given
/// by re-serialising it, which costs more than the rendering itself.)
pub(super) fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// R4 `code`: `[^\s]+(\s[^\s]+)*`.
fn is_code(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(char::is_whitespace)
        && !text.ends_with(char::is_whitespace)
        && !text
            .chars()
            .zip(text.chars().skip(1))
            .any(|(a, b)| a.is_whitespace() && b.is_whitespace())
}

/// A `Coding` exactly as canonical; a translation carries a [`CODING_ORIGIN_URL`] extension.
/// `None` when nothing of it can be written.
pub(super) fn coding(coding: &Coding) -> Option<Value> {
    let mut out = Obj::new();
    if coding.origin == CodingOrigin::Translated {
        out.set(
            "extension",
            json!([{"url": CODING_ORIGIN_URL, "valueCode": "translated"}]),
        );
    }
    out.uri("system", &coding.system);
    if let Some(version) = &coding.version {
        out.string("version", version);
    }
    out.code("code", &coding.code);
    if let Some(display) = &coding.display {
        out.string("display", display);
    }
    (!out.is_empty()).then(|| out.build())
}

/// A `CodeableConcept` exactly as canonical; `None` when it holds nothing.
pub(super) fn concept(concept: &CodeableConcept) -> Option<Value> {
    let mut out = Obj::new();
    out.set_array(
        "coding",
        concept.codings().iter().filter_map(coding).collect(),
    );
    if let Some(text) = &concept.text {
        out.string("text", text);
    }
    (!out.is_empty()).then(|| out.build())
}

/// A `CodeableConcept` for an element R4 requires: an empty concept becomes a data-absent
/// reason (`unknown`) rather than an invalid empty object.
pub(super) fn required_concept(value: &CodeableConcept) -> Value {
    concept(value).unwrap_or_else(data_absent)
}

/// An element R4 requires but the source left empty: the data-absent reason `unknown`.
pub(super) fn data_absent() -> Value {
    json!({"extension": [{"url": DATA_ABSENT_REASON_URL, "valueCode": "unknown"}]})
}

/// A `Quantity` with value, comparator, unit, system and code exactly as canonical; Keel's
/// normalised form, if any, as a [`NORMALISED_QUANTITY_URL`] extension. For a
/// `SimpleQuantity` element (`simple`), which R4 forbids a comparator, the comparator is left
/// out.
pub(super) fn quantity(quantity: &Quantity, simple: bool) -> Value {
    let mut out = Obj::new();
    if let Some(normalised) = &quantity.normalised {
        let mut value = Obj::new();
        decimal(&mut value, "value", normalised.value.as_str());
        value
            .set("system", Value::from(keel_model::coding::systems::UCUM))
            .code("code", &normalised.unit);
        out.set(
            "extension",
            Value::Array(vec![object([
                ("url", Value::from(NORMALISED_QUANTITY_URL)),
                ("valueQuantity", value.build()),
            ])]),
        );
    }
    decimal(&mut out, "value", quantity.value.as_str());
    if let (Some(comparator), false) = (quantity.comparator, simple) {
        out.set("comparator", Value::from(comparator.as_code()));
    }
    if let Some(unit) = &quantity.unit {
        out.string("unit", unit);
    }
    if let Some(system) = &quantity.system {
        out.uri("system", system);
    }
    if let Some(code) = &quantity.code {
        out.code("code", code);
    }
    out.build()
}

/// A `decimal` with the canonical digits (serde_json keeps them: `arbitrary_precision`).
fn decimal(out: &mut Obj, key: &str, digits: &str) {
    match Number::from_str(digits) {
        Ok(number) => {
            out.set(key, Value::Number(number));
        }
        Err(_) => {
            out.original_text(key, digits);
        }
    }
}

/// An extension `url` with a primitive value `value_kind` (e.g. `valueString`).
pub(super) fn text_extension(url: &str, value_kind: &str, value: &str) -> Value {
    let mut map = Map::with_capacity(2);
    map.insert("url".to_owned(), Value::from(url));
    map.insert(value_kind.to_owned(), Value::from(value));
    Value::Object(map)
}

/// A logical reference to an organisation by its ODS code.
pub(super) fn ods_identifier(ods: &OdsCode) -> Value {
    object([
        ("system", Value::from(ODS_ORGANISATION_CODE)),
        ("value", Value::from(ods.as_str())),
    ])
}

/// `meta.source`: `<source system>#<ODS code>`.
pub(super) fn meta_source(provenance: &Provenance) -> Value {
    let source = format!(
        "{}#{}",
        provenance.source_system.as_str(),
        provenance.source_organisation.as_str()
    );
    object([("source", Value::from(source))])
}

/// The [`ITEM_PROVENANCE_URL`] extension: one sub-extension per provenance field present.
pub(super) fn provenance_extension(provenance: &Provenance) -> Value {
    let mut parts = Vec::with_capacity(7);
    parts.extend([
        object([
            ("url", Value::from("source-organisation")),
            (
                "valueIdentifier",
                ods_identifier(&provenance.source_organisation),
            ),
        ]),
        text_extension(
            "source-system",
            "valueCode",
            provenance.source_system.as_str(),
        ),
    ]);
    if let Some(recorded) = &provenance.recorded {
        parts.push(text_extension(
            "recorded",
            "valueInstant",
            recorded.as_str(),
        ));
    }
    if let Some(retrieved) = &provenance.retrieved {
        parts.push(text_extension(
            "retrieved",
            "valueInstant",
            retrieved.as_str(),
        ));
    }
    let texts = [
        ("author", &provenance.author),
        ("status", &provenance.status),
        ("source-version", &provenance.source_version),
    ];
    for (name, text) in texts {
        if let Some(text) = text.as_deref().filter(|t| !t.is_empty()) {
            parts.push(text_extension(name, "valueString", text));
        }
    }
    object([
        ("url", Value::from(ITEM_PROVENANCE_URL)),
        ("extension", Value::Array(parts)),
    ])
}

/// The [`SOURCE_ATTRIBUTE_URL`] extension with `name` and `value` sub-extensions. An empty
/// name or value has no sub-extension (R4 has no empty strings); an attribute with both
/// empty carries nothing and is `None`.
pub(super) fn source_attribute(attribute: &SourceAttribute) -> Option<Value> {
    let parts: Vec<Value> = [("name", &attribute.name), ("value", &attribute.value)]
        .into_iter()
        .filter(|(_, text)| !text.is_empty())
        .map(|(url, text)| text_extension(url, "valueString", text))
        .collect();
    (!parts.is_empty()).then(|| {
        object([
            ("url", Value::from(SOURCE_ATTRIBUTE_URL)),
            ("extension", Value::Array(parts)),
        ])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_model::{Comparator, Decimal, SourceSystem};

    #[test]
    fn a_translated_coding_says_so_and_keeps_every_field() {
        let mut concept_value = CodeableConcept::from_coding(
            Coding::new("http://read.info/readv2", "H33..").with_display("asthma"),
        );
        concept_value.add_translation(
            Coding::new("http://snomed.info/sct", "195967001")
                .with_display("Asthma")
                .with_version("http://snomed.info/sct/83821000000107/version/20240925"),
        );
        let value = concept(&concept_value).expect("concept");
        assert_eq!(
            value["coding"][0],
            json!({"system": "http://read.info/readv2", "code": "H33..", "display": "asthma"})
        );
        assert_eq!(
            value["coding"][1]["extension"][0],
            json!({"url": CODING_ORIGIN_URL, "valueCode": "translated"})
        );
        assert_eq!(
            value["coding"][1]["version"],
            "http://snomed.info/sct/83821000000107/version/20240925"
        );
    }

    #[test]
    fn an_unrepresentable_code_keeps_its_original_text() {
        let value = coding(&Coding::new("http://read.info/readv2", " h33.. ")).expect("coding");
        assert_eq!(value["code"], "h33..");
        assert_eq!(value["_code"]["extension"][0]["valueString"], " h33.. ");
        let blank = coding(&Coding::new("", "   ")).expect("coding");
        assert!(blank.get("code").is_none());
        assert_eq!(blank["_code"]["extension"][0]["valueString"], "   ");
        assert_eq!(coding(&Coding::new("", "")), None);
    }

    #[test]
    fn a_quantity_is_exactly_as_canonical() {
        let value = Decimal::parse("5.0").expect("decimal");
        let q = Quantity::new(value, "mmol/l")
            .with_comparator(Comparator::LessThan)
            .with_ucum_code("mmol/L");
        let rendered = quantity(&q, false);
        assert_eq!(
            rendered.to_string(),
            r#"{"value":5.0,"comparator":"<","unit":"mmol/l","system":"http://unitsofmeasure.org","code":"mmol/L"}"#
        );
        assert!(quantity(&q, true).get("comparator").is_none());
    }

    #[test]
    fn provenance_lists_the_fields_present() {
        let provenance = Provenance::new(
            OdsCode::parse("Y90001").expect("ods"),
            SourceSystem::EmisStyle,
        )
        .with_author("Dr A Example");
        let ext = provenance_extension(&provenance);
        let names: Vec<&str> = ext["extension"]
            .as_array()
            .expect("parts")
            .iter()
            .filter_map(|p| p["url"].as_str())
            .collect();
        assert_eq!(names, ["source-organisation", "source-system", "author"]);
        assert_eq!(meta_source(&provenance)["source"], "emis-style#Y90001");
    }
}
