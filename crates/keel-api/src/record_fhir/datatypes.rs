//! FHIR R4 data types from canonical values, as serialisable views that borrow the canonical
//! record: codings, quantities, provenance and source attributes, extensions, and the rules
//! that keep every primitive valid R4 JSON.
//!
//! Canonical text is kept verbatim wherever R4 allows it. Where R4 cannot hold it — an empty
//! string, a `code` with leading, trailing or doubled whitespace, a `uri` with whitespace —
//! the element gets the nearest valid value (trimmed and collapsed, or whitespace
//! percent-encoded; omitted if nothing is left) and the exact original rides on the
//! primitive's `_name` sibling as an [`ORIGINAL_TEXT_URL`] extension.

use std::borrow::Cow;
use std::str::FromStr;

use keel_model::identifier::systems::ODS_ORGANISATION_CODE;
use keel_model::record::SourceAttribute;
use keel_model::{CodeableConcept, Coding, CodingOrigin, Instant, OdsCode, Provenance, Quantity};
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use serde_json::Number;

use super::{
    CODING_ORIGIN_URL, ITEM_PROVENANCE_URL, NORMALISED_QUANTITY_URL, ORIGINAL_TEXT_URL,
    SOURCE_ATTRIBUTE_URL,
};

/// The standard R4 extension saying why a required element has no value.
const DATA_ABSENT_REASON_URL: &str = "http://hl7.org/fhir/StructureDefinition/data-absent-reason";

/// `text` unless it is empty: a `string` (or `markdown`) element.
pub(super) fn non_empty(text: &str) -> Option<&str> {
    Some(text).filter(|t| !t.is_empty())
}

/// An optional `string` element: present when there is non-empty text.
pub(super) fn non_empty_opt(text: Option<&str>) -> Option<&str> {
    text.filter(|t| !t.is_empty())
}

/// A `code` or `uri` element as R4 can hold it (`value`), and on its `_name` sibling the
/// exact original when that differs (`original`).
pub(super) struct Primitive<'a> {
    pub(super) value: Option<Cow<'a, str>>,
    pub(super) original: Option<ExtensionsOnly<'a>>,
}

impl<'a> Primitive<'a> {
    /// A `code` element: no leading, trailing or doubled whitespace.
    pub(super) fn code(text: &'a str) -> Self {
        if is_code(text) {
            return Self::verbatim(text);
        }
        let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
        Self::replaced(collapsed, text)
    }

    /// A `uri` element: no whitespace.
    pub(super) fn uri(text: &'a str) -> Self {
        let spaced = if text.is_ascii() {
            text.bytes().any(is_ascii_space)
        } else {
            text.chars().any(char::is_whitespace)
        };
        if !text.is_empty() && !spaced {
            return Self::verbatim(text);
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
        Self::replaced(encoded, text)
    }

    fn verbatim(text: &'a str) -> Self {
        Self {
            value: Some(Cow::Borrowed(text)),
            original: None,
        }
    }

    fn replaced(valid: String, original: &'a str) -> Self {
        Self {
            value: (!valid.is_empty()).then_some(Cow::Owned(valid)),
            original: original_text(original),
        }
    }

    fn is_empty(&self) -> bool {
        self.value.is_none() && self.original.is_none()
    }
}

/// R4 `code`: `[^\s]+(\s[^\s]+)*`.
fn is_code(text: &str) -> bool {
    if text.is_ascii() {
        // The common case, byte by byte: ASCII's whitespace characters are one byte each.
        let bytes = text.as_bytes();
        return bytes.first().is_some_and(|b| !is_ascii_space(*b))
            && bytes.last().is_some_and(|b| !is_ascii_space(*b))
            && !bytes
                .windows(2)
                .any(|pair| is_ascii_space(pair[0]) && is_ascii_space(pair[1]));
    }
    !text.is_empty()
        && !text.starts_with(char::is_whitespace)
        && !text.ends_with(char::is_whitespace)
        && !text
            .chars()
            .zip(text.chars().skip(1))
            .any(|(a, b)| a.is_whitespace() && b.is_whitespace())
}

/// Whether `byte` is an ASCII character `char::is_whitespace` holds to be whitespace.
fn is_ascii_space(byte: u8) -> bool {
    matches!(byte, b'\t'..=b'\r' | b' ')
}

/// The `_name` sibling carrying `original` as an [`ORIGINAL_TEXT_URL`] extension; `None` for
/// the empty string (which R4 cannot hold either).
fn original_text(original: &str) -> Option<ExtensionsOnly<'_>> {
    non_empty(original).map(|text| ExtensionsOnly {
        extension: [Extension {
            url: ORIGINAL_TEXT_URL,
            value: ExtensionValue::String(text),
        }],
    })
}

/// An element that is nothing but one extension: `{"extension": [...]}`.
#[derive(Serialize)]
pub(super) struct ExtensionsOnly<'a> {
    pub(super) extension: [Extension<'a>; 1],
}

/// An extension with a primitive (or Identifier) value.
pub(super) struct Extension<'a> {
    pub(super) url: &'a str,
    pub(super) value: ExtensionValue<'a>,
}

/// The `value[x]` of an [`Extension`].
pub(super) enum ExtensionValue<'a> {
    Code(&'a str),
    String(&'a str),
    Boolean(bool),
    Instant(&'a str),
    DateTime(&'a str),
    Identifier(OdsIdentifier<'a>),
}

impl Serialize for Extension<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Extension", 2)?;
        out.serialize_field("url", self.url)?;
        match &self.value {
            ExtensionValue::Code(code) => out.serialize_field("valueCode", code)?,
            ExtensionValue::String(text) => out.serialize_field("valueString", text)?,
            ExtensionValue::Boolean(value) => out.serialize_field("valueBoolean", value)?,
            ExtensionValue::Instant(instant) => out.serialize_field("valueInstant", instant)?,
            ExtensionValue::DateTime(date) => out.serialize_field("valueDateTime", date)?,
            ExtensionValue::Identifier(identifier) => {
                out.serialize_field("valueIdentifier", identifier)?;
            }
        }
        out.end()
    }
}

/// The elements of a fixed list of optional ones that are present, as a JSON array.
pub(super) struct Present<T, const N: usize>(pub(super) [Option<T>; N]);

impl<T, const N: usize> Present<T, N> {
    pub(super) fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }
}

impl<T: Serialize, const N: usize> Serialize for Present<T, N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().flatten())
    }
}

/// An extension made of sub-extensions: `{"url": …, "extension": [...]}`.
#[derive(Serialize)]
pub(super) struct ComplexExtension<'a, const N: usize> {
    url: &'static str,
    extension: Present<Extension<'a>, N>,
}

/// A `Coding` exactly as canonical; a translation carries a [`CODING_ORIGIN_URL`] extension.
#[derive(Serialize)]
pub(super) struct CodingJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    extension: Option<[Extension<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<Cow<'a, str>>,
    #[serde(rename = "_system", skip_serializing_if = "Option::is_none")]
    system_original: Option<ExtensionsOnly<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<Cow<'a, str>>,
    #[serde(rename = "_code", skip_serializing_if = "Option::is_none")]
    code_original: Option<ExtensionsOnly<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
}

impl<'a> CodingJson<'a> {
    /// `None` when nothing of the coding can be written.
    pub(super) fn new(coding: &'a Coding) -> Option<Self> {
        let extension = (coding.origin == CodingOrigin::Translated).then_some([Extension {
            url: CODING_ORIGIN_URL,
            value: ExtensionValue::Code("translated"),
        }]);
        let system = Primitive::uri(&coding.system);
        let code = Primitive::code(&coding.code);
        let version = non_empty_opt(coding.version.as_deref());
        let display = non_empty_opt(coding.display.as_deref());
        let empty = extension.is_none()
            && system.is_empty()
            && version.is_none()
            && code.is_empty()
            && display.is_none();
        (!empty).then_some(Self {
            extension,
            system: system.value,
            system_original: system.original,
            version,
            code: code.value,
            code_original: code.original,
            display,
        })
    }
}

/// A `CodeableConcept` exactly as canonical.
#[derive(Serialize)]
pub(super) struct ConceptJson<'a> {
    #[serde(skip_serializing_if = "Codings::is_empty")]
    coding: Codings<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

impl<'a> ConceptJson<'a> {
    /// `None` when the concept holds nothing.
    pub(super) fn new(concept: &'a CodeableConcept) -> Option<Self> {
        let coding = Codings(concept.codings());
        let text = non_empty_opt(concept.text.as_deref());
        (!coding.is_empty() || text.is_some()).then_some(Self { coding, text })
    }
}

/// The codings of a concept that have anything to write, written as they are reached.
struct Codings<'a>(&'a [Coding]);

impl Codings<'_> {
    fn is_empty(&self) -> bool {
        !self.0.iter().any(|c| CodingJson::new(c).is_some())
    }
}

impl Serialize for Codings<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().filter_map(CodingJson::new))
    }
}

/// A `CodeableConcept` for an element R4 requires: an empty concept becomes a data-absent
/// reason (`unknown`) rather than an invalid empty object.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum RequiredConcept<'a> {
    Concept(ConceptJson<'a>),
    Absent(ExtensionsOnly<'a>),
}

impl<'a> RequiredConcept<'a> {
    pub(super) fn new(concept: &'a CodeableConcept) -> Self {
        ConceptJson::new(concept).map_or_else(|| Self::Absent(data_absent()), Self::Concept)
    }
}

/// An element R4 requires but the source left empty: the data-absent reason `unknown`.
pub(super) fn data_absent() -> ExtensionsOnly<'static> {
    ExtensionsOnly {
        extension: [Extension {
            url: DATA_ABSENT_REASON_URL,
            value: ExtensionValue::Code("unknown"),
        }],
    }
}

/// A `Quantity` with value, comparator, unit, system and code exactly as canonical; Keel's
/// normalised form, if any, as a [`NORMALISED_QUANTITY_URL`] extension.
#[derive(Serialize)]
pub(super) struct QuantityJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    extension: Option<[NormalisedExtension<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Number>,
    #[serde(rename = "_value", skip_serializing_if = "Option::is_none")]
    value_original: Option<ExtensionsOnly<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comparator: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<Cow<'a, str>>,
    #[serde(rename = "_system", skip_serializing_if = "Option::is_none")]
    system_original: Option<ExtensionsOnly<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<Cow<'a, str>>,
    #[serde(rename = "_code", skip_serializing_if = "Option::is_none")]
    code_original: Option<ExtensionsOnly<'a>>,
}

impl<'a> QuantityJson<'a> {
    /// The quantity of a `Quantity` element.
    pub(super) fn new(quantity: &'a Quantity) -> Self {
        Self::shaped(quantity, true)
    }

    /// The quantity of a `SimpleQuantity` element, which R4 forbids a comparator: it is left
    /// out.
    pub(super) fn simple(quantity: &'a Quantity) -> Self {
        Self::shaped(quantity, false)
    }

    fn shaped(quantity: &'a Quantity, comparator: bool) -> Self {
        let extension = quantity.normalised.as_ref().map(|normalised| {
            let (value, value_original) = decimal(normalised.value.as_str());
            let code = Primitive::code(&normalised.unit);
            [NormalisedExtension {
                url: NORMALISED_QUANTITY_URL,
                value_quantity: NormalisedQuantity {
                    value,
                    value_original,
                    system: keel_model::coding::systems::UCUM,
                    code: code.value,
                    code_original: code.original,
                },
            }]
        });
        let (value, value_original) = decimal(quantity.value.as_str());
        let system = quantity.system.as_deref().map(Primitive::uri);
        let code = quantity.code.as_deref().map(Primitive::code);
        let (system, system_original) = system.map_or((None, None), |p| (p.value, p.original));
        let (code, code_original) = code.map_or((None, None), |p| (p.value, p.original));
        Self {
            extension,
            value,
            value_original,
            comparator: quantity
                .comparator
                .filter(|_| comparator)
                .map(|c| c.as_code()),
            unit: non_empty_opt(quantity.unit.as_deref()),
            system,
            system_original,
            code,
            code_original,
        }
    }
}

/// The [`NORMALISED_QUANTITY_URL`] extension.
#[derive(Serialize)]
struct NormalisedExtension<'a> {
    url: &'static str,
    #[serde(rename = "valueQuantity")]
    value_quantity: NormalisedQuantity<'a>,
}

/// Keel's conversion of a quantity to a canonical UCUM unit.
#[derive(Serialize)]
struct NormalisedQuantity<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Number>,
    #[serde(rename = "_value", skip_serializing_if = "Option::is_none")]
    value_original: Option<ExtensionsOnly<'a>>,
    system: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<Cow<'a, str>>,
    #[serde(rename = "_code", skip_serializing_if = "Option::is_none")]
    code_original: Option<ExtensionsOnly<'a>>,
}

/// A `decimal` with the canonical digits (serde_json keeps them: `arbitrary_precision`), or
/// the original text on the `_name` sibling when they are not a JSON number.
fn decimal(digits: &str) -> (Option<Number>, Option<ExtensionsOnly<'_>>) {
    match Number::from_str(digits) {
        Ok(number) => (Some(number), None),
        Err(_) => (None, original_text(digits)),
    }
}

/// A logical reference to an organisation by its ODS code.
#[derive(Serialize)]
pub(super) struct OdsIdentifier<'a> {
    system: &'static str,
    value: &'a str,
}

impl<'a> OdsIdentifier<'a> {
    pub(super) fn new(ods: &'a OdsCode) -> Self {
        Self {
            system: ODS_ORGANISATION_CODE,
            value: ods.as_str(),
        }
    }
}

/// `meta` with `source` `<source system>#<ODS code>`.
pub(super) struct MetaSource<'a>(pub(super) &'a Provenance);

impl Serialize for MetaSource<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Source<'a>(&'a Provenance);
        impl Serialize for Source<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&format_args!(
                    "{}#{}",
                    self.0.source_system.as_str(),
                    self.0.source_organisation.as_str()
                ))
            }
        }
        let mut out = serializer.serialize_struct("Meta", 1)?;
        out.serialize_field("source", &Source(self.0))?;
        out.end()
    }
}

/// The [`ITEM_PROVENANCE_URL`] extension: one sub-extension per provenance field present.
pub(super) fn provenance_extension(provenance: &Provenance) -> ComplexExtension<'_, 7> {
    fn instant<'a>(url: &'static str, instant: Option<&'a Instant>) -> Option<Extension<'a>> {
        instant.map(|i| Extension {
            url,
            value: ExtensionValue::Instant(i.as_str()),
        })
    }
    fn text<'a>(url: &'static str, text: Option<&'a String>) -> Option<Extension<'a>> {
        non_empty_opt(text.map(String::as_str)).map(|t| Extension {
            url,
            value: ExtensionValue::String(t),
        })
    }
    ComplexExtension {
        url: ITEM_PROVENANCE_URL,
        extension: Present([
            Some(Extension {
                url: "source-organisation",
                value: ExtensionValue::Identifier(OdsIdentifier::new(
                    &provenance.source_organisation,
                )),
            }),
            Some(Extension {
                url: "source-system",
                value: ExtensionValue::Code(provenance.source_system.as_str()),
            }),
            instant("recorded", provenance.recorded.as_ref()),
            instant("retrieved", provenance.retrieved.as_ref()),
            text("author", provenance.author.as_ref()),
            text("status", provenance.status.as_ref()),
            text("source-version", provenance.source_version.as_ref()),
        ]),
    }
}

/// The [`SOURCE_ATTRIBUTE_URL`] extension with `name` and `value` sub-extensions. An empty
/// name or value has no sub-extension (R4 has no empty strings); an attribute with both
/// empty carries nothing and is `None`.
pub(super) fn source_attribute<'a>(
    name: &'a str,
    value: &'a str,
) -> Option<ComplexExtension<'a, 2>> {
    let part = |url, text| {
        non_empty(text).map(|t| Extension {
            url,
            value: ExtensionValue::String(t),
        })
    };
    let parts = Present([part("name", name), part("value", value)]);
    (!parts.is_empty()).then_some(ComplexExtension {
        url: SOURCE_ATTRIBUTE_URL,
        extension: parts,
    })
}

/// [`source_attribute`] of a canonical source attribute.
pub(super) fn source_attribute_of(attribute: &SourceAttribute) -> Option<ComplexExtension<'_, 2>> {
    source_attribute(&attribute.name, &attribute.value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_model::{Comparator, Decimal, SourceSystem};
    use serde_json::{Value, json};

    fn to_value(value: impl Serialize) -> Value {
        serde_json::to_value(value).expect("serialise")
    }

    proptest::proptest! {
        #[test]
        fn the_ascii_checks_agree_with_unicode_whitespace(text in "[ \t\n\x0b\x0c\r\x1fa-b\u{a0}]{0,6}") {
            let code = !text.is_empty()
                && !text.starts_with(char::is_whitespace)
                && !text.ends_with(char::is_whitespace)
                && !text
                    .chars()
                    .zip(text.chars().skip(1))
                    .any(|(a, b)| a.is_whitespace() && b.is_whitespace());
            proptest::prop_assert_eq!(is_code(&text), code);
            let uri = !text.is_empty() && !text.chars().any(char::is_whitespace);
            let verbatim = matches!(Primitive::uri(&text).value, Some(Cow::Borrowed(_)));
            proptest::prop_assert_eq!(verbatim, uri);
        }
    }

    fn concept(concept: &CodeableConcept) -> Option<Value> {
        ConceptJson::new(concept).map(to_value)
    }

    fn coding(coding: &Coding) -> Option<Value> {
        CodingJson::new(coding).map(to_value)
    }

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
        let rendered = serde_json::to_string(&QuantityJson::new(&q)).expect("serialise");
        assert_eq!(
            rendered,
            r#"{"value":5.0,"comparator":"<","unit":"mmol/l","system":"http://unitsofmeasure.org","code":"mmol/L"}"#
        );
        assert!(
            to_value(QuantityJson::simple(&q))
                .get("comparator")
                .is_none()
        );
    }

    #[test]
    fn provenance_lists_the_fields_present() {
        let provenance = Provenance::new(
            OdsCode::parse("Y90001").expect("ods"),
            SourceSystem::EmisStyle,
        )
        .with_author("Dr A Example");
        let ext = to_value(provenance_extension(&provenance));
        let names: Vec<&str> = ext["extension"]
            .as_array()
            .expect("parts")
            .iter()
            .filter_map(|p| p["url"].as_str())
            .collect();
        assert_eq!(names, ["source-organisation", "source-system", "author"]);
        assert_eq!(
            to_value(MetaSource(&provenance))["source"],
            "emis-style#Y90001"
        );
    }
}
