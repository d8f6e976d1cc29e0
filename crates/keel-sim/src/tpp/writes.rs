//! The request bodies of the four writes, parsed and validated in full before anything is
//! stored, so a rejected write leaves nothing behind.
//!
//! Bodies are JSON objects with the API's own field names (table in [`crate::tpp`]). Unknown
//! fields are rejected rather than ignored, so a client's typo does not silently drop data.

use base64::Engine;
use serde_json::{Map, Value};

use super::error::TppError;
use crate::codes::{ALL_CONCEPTS, Concept, verhoeff_valid};
use crate::date::Date;
use crate::model::{CodingStyle, ConsultationKind, LegacyScheme};

/// Longest `ExternalReference` accepted, in characters.
pub const MAX_EXTERNAL_REFERENCE: usize = 100;
/// Longest free text accepted, in characters.
pub const MAX_TEXT: usize = 100_000;
/// Most coded items in one consultation.
pub const MAX_ITEMS: usize = 100;
/// Largest document accepted, in bytes after base64 decoding.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024 * 1024;

/// When a written event happened, as the client states it (the simulator reads no clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When {
    pub date: Date,
    /// Minutes after local midnight, when a time was given.
    pub minute: Option<u16>,
}

/// A numeric value with its unit: `value / 10^scale` `unit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    pub value: i64,
    pub scale: u8,
    pub unit: String,
}

/// One coded item: a dictionary concept as the client coded it.
#[derive(Debug, Clone)]
pub struct CodedItem {
    pub concept: &'static Concept,
    /// `LegacyBeside(Ctv3)` when written in CTV3 (SNOMED CT mapped beside), `Snomed` when
    /// written in SNOMED CT.
    pub coding: CodingStyle,
    pub value: Option<Quantity>,
    pub text: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ConsultationWrite {
    pub external_reference: String,
    pub when: When,
    pub kind: ConsultationKind,
    pub text: String,
    pub confidential: bool,
    pub items: Vec<CodedItem>,
}

#[derive(Debug, Clone)]
pub struct CodedEntryWrite {
    pub external_reference: String,
    pub when: When,
    pub item: CodedItem,
    pub confidential: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskWrite {
    pub external_reference: String,
    pub when: When,
    pub description: String,
    pub urgent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentWrite {
    pub external_reference: String,
    pub when: When,
    pub title: String,
    pub mime_type: String,
    pub content: Vec<u8>,
}

/// The fields of one JSON object, checked against the fields the request takes.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    /// Path prefix for messages (`CodedItems[2].`).
    at: String,
}

impl<'a> Fields<'a> {
    fn new(value: &'a Value, at: &str, allowed: &[&str]) -> Result<Self, TppError> {
        let Some(map) = value.as_object() else {
            return Err(if at.is_empty() {
                TppError::malformed_body("The body must be a JSON object")
            } else {
                TppError::invalid_value(at.trim_end_matches('.'), "expected an object")
            });
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(TppError::unknown_field(&format!("{at}{unknown}")));
        }
        Ok(Fields {
            map,
            at: at.to_string(),
        })
    }

    fn name(&self, key: &str) -> String {
        format!("{}{key}", self.at)
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn opt_str(&self, key: &str, max: usize) -> Result<Option<String>, TppError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let s = v
            .as_str()
            .ok_or_else(|| TppError::invalid_value(&self.name(key), "expected a string"))?;
        if s.chars().count() > max {
            return Err(TppError::invalid_value(
                &self.name(key),
                &format!("longer than {max} characters"),
            ));
        }
        Ok(Some(s.to_string()))
    }

    /// A mandatory string that is not blank.
    fn str(&self, key: &str, max: usize) -> Result<String, TppError> {
        match self.opt_str(key, max)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(TppError::missing_field(&self.name(key))),
        }
    }

    fn bool(&self, key: &str) -> Result<bool, TppError> {
        match self.get(key) {
            None => Ok(false),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| TppError::invalid_value(&self.name(key), "expected true or false")),
        }
    }

    fn when(&self, key: &str) -> Result<When, TppError> {
        let s = self.str(key, 16)?;
        parse_when(&s).ok_or_else(|| {
            TppError::invalid_value(
                &self.name(key),
                "expected a date YYYY-MM-DD or a local date-time YYYY-MM-DDThh:mm",
            )
        })
    }

    fn external_reference(&self) -> Result<String, TppError> {
        self.str("ExternalReference", MAX_EXTERNAL_REFERENCE)
    }
}

/// Parses `YYYY-MM-DD` into a real calendar date.
pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = i32::try_from(y).ok()?;
    let date = Date::ymd(y, m, d);
    (date.civil() == (y, m, d)).then_some(date)
}

/// Parses `YYYY-MM-DD` or `YYYY-MM-DDThh:mm`.
pub fn parse_when(s: &str) -> Option<When> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let date = parse_date(date)?;
    let minute = match time {
        None => None,
        Some(t) => {
            let b = t.as_bytes();
            if b.len() != 5 || b[2] != b':' {
                return None;
            }
            let h: u16 = t.get(0..2)?.parse().ok()?;
            let m: u16 = t.get(3..5)?.parse().ok()?;
            if h > 23
                || m > 59
                || !t
                    .bytes()
                    .enumerate()
                    .all(|(i, c)| i == 2 || c.is_ascii_digit())
            {
                return None;
            }
            Some(h * 60 + m)
        }
    };
    Some(When { date, minute })
}

fn parse_object(body: &[u8]) -> Result<Value, TppError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| TppError::malformed_body(format!("The body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(TppError::malformed_body("The body must be a JSON object"));
    }
    Ok(value)
}

/// The concept for `code` in `scheme`, with the coding style it was written in.
fn lookup(
    field: &str,
    scheme: &str,
    code: &str,
) -> Result<(&'static Concept, CodingStyle), TppError> {
    match scheme {
        "CTV3" => {
            let well_formed =
                code.len() == 5 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
            if !well_formed {
                return Err(TppError::invalid_value(
                    field,
                    "a CTV3 code is five letters, digits or dots",
                ));
            }
            ALL_CONCEPTS
                .iter()
                .find(|c| c.ctv3.is_some_and(|(c3, _)| c3 == code))
                .map(|c| (*c, CodingStyle::LegacyBeside(LegacyScheme::Ctv3)))
                .ok_or_else(|| TppError::unknown_code(field, scheme, code))
        }
        "SNOMED" => {
            let well_formed = (6..=18).contains(&code.len()) && verhoeff_valid(code);
            if !well_formed {
                return Err(TppError::invalid_value(
                    field,
                    "a SNOMED CT id is 6 to 18 digits with a valid check digit",
                ));
            }
            ALL_CONCEPTS
                .iter()
                .find(|c| c.snomed == code)
                .map(|c| (*c, CodingStyle::Snomed))
                .ok_or_else(|| TppError::unknown_code(field, scheme, code))
        }
        other => Err(TppError::unknown_code_scheme(field, other)),
    }
}

/// A decimal number as written (`7.5`, `-12`, `"48"`), up to four fraction digits.
fn parse_decimal(text: &str) -> Option<(i64, u8)> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((_, "")) => return None,
        Some((whole, fraction)) => (whole, fraction),
        None => (digits, ""),
    };
    let well_formed = !whole.is_empty()
        && whole.len() <= 12
        && fraction.len() <= 4
        && whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit());
    if !well_formed {
        return None;
    }
    let value: i64 = format!("{whole}{fraction}").parse().ok()?;
    let scale = u8::try_from(fraction.len()).ok()?;
    Some((if negative { -value } else { value }, scale))
}

fn coded_item(value: &Value, at: &str) -> Result<CodedItem, TppError> {
    let f = Fields::new(value, at, &["Scheme", "Code", "Value", "Unit", "Text"])?;
    let scheme = f.str("Scheme", 16)?;
    let code = f.str("Code", 18)?;
    let (concept, coding) = lookup(&f.name("Code"), &scheme, &code)?;
    let value = match f.get("Value") {
        None => None,
        Some(v) => {
            let text = match v {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => String::new(),
            };
            let (value, scale) = parse_decimal(&text).ok_or_else(|| {
                TppError::invalid_value(&f.name("Value"), "expected a decimal number")
            })?;
            let unit = f.str("Unit", 32)?;
            Some(Quantity { value, scale, unit })
        }
    };
    if value.is_none() && f.get("Unit").is_some() {
        return Err(TppError::invalid_value(
            &f.name("Unit"),
            "a unit needs a Value",
        ));
    }
    Ok(CodedItem {
        concept,
        coding,
        value,
        text: f.opt_str("Text", MAX_TEXT)?,
    })
}

/// `POST .../journal/consultations`.
pub fn consultation(body: &[u8]) -> Result<ConsultationWrite, TppError> {
    let value = parse_object(body)?;
    let f = Fields::new(
        &value,
        "",
        &[
            "ExternalReference",
            "Date",
            "ConsultationType",
            "Text",
            "Confidential",
            "CodedItems",
        ],
    )?;
    let external_reference = f.external_reference()?;
    let when = f.when("Date")?;
    let kind = match f.str("ConsultationType", 32)?.as_str() {
        "Surgery" => ConsultationKind::Surgery,
        "Telephone" => ConsultationKind::Telephone,
        "HomeVisit" => ConsultationKind::HomeVisit,
        _ => {
            return Err(TppError::invalid_value(
                "ConsultationType",
                "expected Surgery, Telephone or HomeVisit",
            ));
        }
    };
    let text = f.str("Text", MAX_TEXT)?;
    let confidential = f.bool("Confidential")?;
    let items = match f.get("CodedItems") {
        None => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_ITEMS {
                return Err(TppError::invalid_value(
                    "CodedItems",
                    &format!("at most {MAX_ITEMS} items"),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| coded_item(item, &format!("CodedItems[{i}].")))
                .collect::<Result<_, _>>()?
        }
        Some(_) => return Err(TppError::invalid_value("CodedItems", "expected an array")),
    };
    Ok(ConsultationWrite {
        external_reference,
        when,
        kind,
        text,
        confidential,
        items,
    })
}

/// `POST .../journal/coded-entries`.
pub fn coded_entry(body: &[u8]) -> Result<CodedEntryWrite, TppError> {
    let value = parse_object(body)?;
    let f = Fields::new(
        &value,
        "",
        &[
            "ExternalReference",
            "Date",
            "Confidential",
            "Scheme",
            "Code",
            "Value",
            "Unit",
            "Text",
        ],
    )?;
    let external_reference = f.external_reference()?;
    let when = f.when("Date")?;
    let confidential = f.bool("Confidential")?;
    let mut item_fields = value.clone();
    if let Some(obj) = item_fields.as_object_mut() {
        obj.remove("ExternalReference");
        obj.remove("Date");
        obj.remove("Confidential");
    }
    let item = coded_item(&item_fields, "")?;
    Ok(CodedEntryWrite {
        external_reference,
        when,
        item,
        confidential,
    })
}

/// `POST .../tasks`.
pub fn task(body: &[u8]) -> Result<TaskWrite, TppError> {
    let value = parse_object(body)?;
    let f = Fields::new(
        &value,
        "",
        &["ExternalReference", "Date", "Description", "Urgent"],
    )?;
    Ok(TaskWrite {
        external_reference: f.external_reference()?,
        when: f.when("Date")?,
        description: f.str("Description", 2_000)?,
        urgent: f.bool("Urgent")?,
    })
}

/// `POST .../documents`.
pub fn document(body: &[u8]) -> Result<DocumentWrite, TppError> {
    let value = parse_object(body)?;
    let f = Fields::new(
        &value,
        "",
        &["ExternalReference", "Date", "Title", "MimeType", "Content"],
    )?;
    let external_reference = f.external_reference()?;
    let when = f.when("Date")?;
    let title = f.str("Title", 200)?;
    let mime_type = f.str("MimeType", 100)?;
    let well_formed_mime = mime_type.split_once('/').is_some_and(|(t, s)| {
        let token = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        token(t) && token(s)
    });
    if !well_formed_mime {
        return Err(TppError::invalid_value(
            "MimeType",
            "expected a media type such as application/pdf",
        ));
    }
    let encoded = f.str("Content", usize::MAX)?;
    let content = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .map_err(|_| TppError::invalid_value("Content", "expected standard base64"))?;
    if content.len() > MAX_DOCUMENT_BYTES {
        return Err(TppError::too_large(format!(
            "A document may be at most {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    Ok(DocumentWrite {
        external_reference,
        when,
        title,
        mime_type,
        content,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// Any of the four parsers on `body`: `Ok(())` or the error's status.
    fn parse_all(body: &[u8]) -> Vec<Result<(), u16>> {
        let status = |e: TppError| e.status.as_u16();
        vec![
            consultation(body).map(|_| ()).map_err(status),
            coded_entry(body).map(|_| ()).map_err(status),
            task(body).map(|_| ()).map_err(status),
            document(body).map(|_| ()).map_err(status),
        ]
    }

    fn field_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[ -~]{0,24}".prop_map(Value::from),
            Just(json!("2026-01-05")),
            Just(json!("2026-01-05T10:30")),
            Just(json!("CTV3")),
            Just(json!("G20..")),
            Just(json!("59621000")),
            Just(json!([{"Scheme": "CTV3", "Code": "G20.."}])),
            Just(json!({})),
        ]
    }

    const KEYS: [&str; 14] = [
        "ExternalReference",
        "Date",
        "ConsultationType",
        "Text",
        "Confidential",
        "CodedItems",
        "Scheme",
        "Code",
        "Value",
        "Unit",
        "Description",
        "Urgent",
        "Title",
        "Content",
    ];

    proptest! {
        #[test]
        fn arbitrary_bytes_are_rejected_or_parsed_never_a_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            for result in parse_all(&body) {
                if let Err(status) = result {
                    prop_assert!(matches!(status, 400 | 413 | 422));
                }
            }
        }

        #[test]
        fn objects_of_known_fields_are_parsed_or_refused_with_400_or_422(
            fields in proptest::collection::vec((0..KEYS.len(), field_value()), 0..10)
        ) {
            let body: serde_json::Map<String, Value> =
                fields.into_iter().map(|(k, v)| (KEYS[k].to_string(), v)).collect();
            let bytes = serde_json::to_vec(&Value::Object(body)).expect("json");
            for result in parse_all(&bytes) {
                if let Err(status) = result {
                    prop_assert!(matches!(status, 400 | 422), "{status}");
                }
            }
        }

        #[test]
        fn a_valid_task_keeps_what_the_client_sent(
            reference in "[A-Za-z0-9-]{1,100}",
            description in "[ -~]{0,60}[A-Za-z]",
            urgent in any::<bool>(),
            (y, m, d) in (1900i32..2100, 1u32..=12, 1u32..=28),
            minute in proptest::option::of(0u16..1440),
        ) {
            let date = match minute {
                Some(t) => format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}", t / 60, t % 60),
                None => format!("{y:04}-{m:02}-{d:02}"),
            };
            let body = json!({"ExternalReference": reference, "Date": date,
                "Description": description, "Urgent": urgent});
            let parsed = task(body.to_string().as_bytes()).expect("valid");
            prop_assert_eq!(parsed.external_reference, reference);
            prop_assert_eq!(parsed.description, description);
            prop_assert_eq!(parsed.urgent, urgent);
            prop_assert_eq!(parsed.when, When { date: Date::ymd(y, m, d), minute });
        }

        #[test]
        fn decimals_round_trip(value in -999_999_999i64..999_999_999, scale in 0u8..=4) {
            let text = {
                let mut out = Vec::new();
                crate::json::write_fixed(&mut out, value, scale);
                String::from_utf8(out).expect("ascii")
            };
            let (parsed, parsed_scale) = parse_decimal(&text).expect("parses");
            prop_assert_eq!(parsed_scale, scale);
            prop_assert_eq!(parsed, value);
        }
    }

    #[test]
    fn dates_must_exist_and_times_be_on_the_clock() {
        assert!(parse_when("2024-02-29").is_some());
        assert!(parse_when("2023-02-29").is_none());
        assert!(parse_when("2024-1-05").is_none());
        assert!(parse_when("2024-01-05T24:00").is_none());
        assert!(parse_when("2024-01-05T9:00").is_none());
        assert!(parse_when("2024-01-05T+9:00").is_none());
        assert_eq!(
            parse_when("2024-01-05T09:05").map(|w| w.minute),
            Some(Some(545))
        );
        for bad in ["", "-", "1.", ".5", "1e3", "--1", "1.23456"] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
    }
}
