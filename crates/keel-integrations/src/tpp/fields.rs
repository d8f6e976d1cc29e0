//! A JSON object read lazily: its keys and the raw JSON text of each value, borrowed from the
//! answer body. A 5,000-event journal is scanned once and nothing is built for a field until
//! the mapping asks for it — and every field, asked for or not, can still be kept verbatim as
//! a source attribute.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The fields of one JSON object, in the order sent.
#[derive(Debug, Clone, Default)]
pub struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Fields<'a> {
    /// Parses the object in `text`.
    ///
    /// # Errors
    /// When `text` is not a JSON object.
    pub fn parse(text: &'a str) -> Result<Fields<'a>, String> {
        serde_json::from_str(text).map_err(|e| format!("not a JSON object ({e})"))
    }

    /// Every field with its raw JSON text.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &'a RawValue)> + '_ {
        self.0.iter().map(|(k, v)| (k.as_ref(), *v))
    }

    /// The raw value of `key`; `null` counts as absent.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .filter(|v| v.get() != "null")
    }

    /// `key` when it is a string.
    pub fn str(&self, key: &str) -> Option<Cow<'a, str>> {
        self.get(key).and_then(string)
    }

    /// `key` when it is a whole number that fits a `u64`.
    pub fn u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.get().parse().ok())
    }

    /// Whether `key` is `true`.
    pub fn is_true(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v.get() == "true")
    }

    /// `key` when it is an object.
    ///
    /// # Errors
    /// When it is present and not an object.
    pub fn object(&self, key: &str) -> Result<Option<Fields<'a>>, String> {
        self.get(key)
            .map(|v| Fields::parse(v.get()).map_err(|e| format!("{key} is {e}")))
            .transpose()
    }

    /// `key` when it is an array of objects.
    ///
    /// # Errors
    /// When it is present and not an array of objects.
    pub fn objects(&self, key: &str) -> Result<Option<Vec<Fields<'a>>>, String> {
        self.get(key)
            .map(|v| {
                serde_json::from_str(v.get()).map_err(|_| format!("{key} is not a list of objects"))
            })
            .transpose()
    }
}

/// A JSON string's content, borrowed when it has no escapes.
pub fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// A value as words: a string's content, anything else its JSON text.
pub fn words(raw: &RawValue) -> String {
    string(raw).map_or_else(|| raw.get().to_string(), Cow::into_owned)
}

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor(PhantomData))
    }
}

struct FieldsVisitor<'a>(PhantomData<&'a ()>);

impl<'de> Visitor<'de> for FieldsVisitor<'de> {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some((Key(key), value)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
            fields.push((key, value));
        }
        Ok(Fields(fields))
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_lazily_and_kept_verbatim() {
        let fields = Fields::parse(
            r#"{"A": "plain", "B\u0041": "esc\"aped", "N": 7.50, "O": {"X": [1, 2]}, "Z": null, "T": true}"#,
        )
        .expect("object");
        assert_eq!(fields.str("A").as_deref(), Some("plain"));
        assert!(matches!(fields.str("A"), Some(Cow::Borrowed(_))));
        assert_eq!(fields.str("BA").as_deref(), Some("esc\"aped"));
        assert_eq!(fields.get("N").map(RawValue::get), Some("7.50"));
        assert_eq!(fields.u64("N"), None);
        assert!(fields.get("Z").is_none());
        assert!(fields.is_true("T"));
        let inner = fields.object("O").expect("object").expect("present");
        assert_eq!(inner.get("X").map(words).as_deref(), Some("[1, 2]"));
        assert!(fields.object("A").is_err());
        assert!(Fields::parse("[1]").is_err());
    }
}
