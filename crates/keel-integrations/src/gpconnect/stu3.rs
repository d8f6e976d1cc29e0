//! GP Connect's STU3 JSON read lazily and leniently, borrowing from the answer's bytes.
//!
//! A resource is read one level deep ([`Object`]: each member's JSON text kept as sent, found
//! by name), so a multi-megabyte structured record is scanned once, and only the members a
//! mapping uses are deserialised, into the small typed shapes below. Resources a section does
//! not use (the items a consultation links to, the consultation's topic Lists, ...) cost
//! nothing beyond that scan. Strings borrow from the answer unless they carry escapes; numbers
//! keep their text exactly, as FHIR decimals must ([`Quantity::value`]).
//!
//! The shapes are lenient where the mapping is: a member of an unexpected JSON type reads as
//! absent ([`Text::Other`], an empty [`Many`], an empty [`Obj`]), and the mapping decides what
//! absent means. A JSON number where an object belongs makes the member holding it unreadable
//! (it then reads as absent); the answer was broken either way.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON object read one level deep: its members in order, each value as sent.
#[derive(Debug, Default)]
pub struct Object<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Object<'a> {
    /// Every member, in the order sent.
    pub fn members(&self) -> &[(Cow<'a, str>, &'a RawValue)] {
        &self.members
    }

    /// The JSON text of member `name` (the first, should it repeat).
    pub fn raw(&self, name: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| *value)
    }

    /// Whether member `name` is present and not `null`.
    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some_and(|value| value.get() != "null")
    }

    /// Member `name` read as `T`; `T::default()` when absent or unreadable.
    pub fn get<T: Deserialize<'a> + Default>(&self, name: &str) -> T {
        self.raw(name)
            .and_then(|value| serde_json::from_str(value.get()).ok())
            .unwrap_or_default()
    }

    /// Member `name` as text.
    pub fn text(&self, name: &str) -> Text<'a> {
        self.get(name)
    }

    /// Whether member `name` is the string `text`.
    pub fn is(&self, name: &str, text: &str) -> bool {
        self.text(name).is(text)
    }

    /// Member `name` read one level deep; empty when absent or not an object.
    pub fn object(&self, name: &str) -> Object<'a> {
        self.get::<Obj<Object<'a>>>(name).0.unwrap_or_default()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Object<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

struct ObjectVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ObjectVisitor<'a> {
    type Value = Object<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object<'a>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(12));
        while let Some(Key(key)) = map.next_key()? {
            members.push((key, map.next_value::<&'de RawValue>()?));
        }
        Ok(Object { members })
    }
}

/// An object member's name, borrowed unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_str(TextVisitor(PhantomData))? {
            Text::Str(key) => Ok(Key(key)),
            _ => Err(de::Error::custom("an object key is not a string")),
        }
    }
}

/// A member that should be a string.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum Text<'a> {
    /// Missing or `null`.
    #[default]
    Absent,
    Str(Cow<'a, str>),
    /// Any other JSON value.
    Other,
}

impl<'a> Text<'a> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Text::Str(text) => Some(text),
            _ => None,
        }
    }

    /// The string, keeping its borrow.
    pub fn into_cow(self) -> Option<Cow<'a, str>> {
        match self {
            Text::Str(text) => Some(text),
            _ => None,
        }
    }

    /// Whether this is the string `text`.
    pub fn is(&self, text: &str) -> bool {
        self.as_str() == Some(text)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor(PhantomData))
    }
}

struct TextVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
        Ok(Text::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'a>, E> {
        Ok(Text::Str(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'a>, E> {
        Ok(Text::Str(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Text<'a>, E> {
        Ok(Text::Absent)
    }

    fn visit_none<E: de::Error>(self) -> Result<Text<'a>, E> {
        Ok(Text::Absent)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text<'a>, E> {
        Ok(Text::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text<'a>, E> {
        Ok(Text::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text<'a>, E> {
        Ok(Text::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text<'a>, E> {
        Ok(Text::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text<'a>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Text::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text<'a>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Text::Other)
    }
}

/// A member that should be an array: its items, or none for any other JSON value.
#[derive(Debug)]
pub struct Many<T>(pub Vec<T>);

impl<T> Default for Many<T> {
    fn default() -> Self {
        Many(Vec::new())
    }
}

impl<T> Many<T> {
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<T> Many<Obj<T>> {
    /// The items that are objects.
    pub fn objects(&self) -> impl Iterator<Item = &T> {
        self.0.iter().filter_map(|item| item.0.as_ref())
    }

    /// The first item, if it is an object.
    pub fn first(&self) -> Option<&T> {
        self.0.first().and_then(|item| item.0.as_ref())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Many<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ManyVisitor(PhantomData))
    }
}

struct ManyVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ManyVisitor<T> {
    type Value = Many<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Many<T>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Many(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Many<T>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Many::default())
    }

    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Many<T>, E> {
        Ok(Many::default())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Many<T>, E> {
        Ok(Many::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Many<T>, E> {
        Ok(Many::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<Many<T>, E> {
        Ok(Many::default())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Many<T>, E> {
        Ok(Many::default())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Many<T>, E> {
        Ok(Many::default())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Many<T>, E> {
        Ok(Many::default())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Many<T>, E> {
        Ok(Many::default())
    }
}

/// A member that should be an object: it, or nothing for any other JSON value.
#[derive(Debug)]
pub struct Obj<T>(pub Option<T>);

impl<T> Default for Obj<T> {
    fn default() -> Self {
        Obj(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ObjVisitor(PhantomData))
    }
}

struct ObjVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjVisitor<T> {
    type Value = Obj<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(|value| Obj(Some(value)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Obj<T>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Obj(None))
    }

    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Obj<T>, E> {
        Ok(Obj(None))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Obj<T>, E> {
        Ok(Obj(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Obj<T>, E> {
        Ok(Obj(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Obj<T>, E> {
        Ok(Obj(None))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Obj<T>, E> {
        Ok(Obj(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Obj<T>, E> {
        Ok(Obj(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Obj<T>, E> {
        Ok(Obj(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Obj<T>, E> {
        Ok(Obj(None))
    }
}

/// A JSON value as a source attribute's text: a string itself, anything else as compact JSON.
pub fn attribute_text(value: &RawValue) -> String {
    match serde_json::from_str::<Text<'_>>(value.get()) {
        Ok(Text::Str(text)) => text.into_owned(),
        _ => serde_json::from_str::<serde_json::Value>(value.get())
            .map_or_else(|_| value.get().to_string(), |json| json.to_string()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Coding<'a> {
    #[serde(borrow)]
    pub system: Text<'a>,
    #[serde(borrow)]
    pub code: Text<'a>,
    #[serde(borrow)]
    pub display: Text<'a>,
    #[serde(borrow)]
    pub version: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeableConcept<'a> {
    #[serde(borrow)]
    pub coding: Many<Obj<Coding<'a>>>,
    #[serde(borrow)]
    pub text: Text<'a>,
}

impl CodeableConcept<'_> {
    /// Whether a coding has `code` (whatever its system).
    pub fn has_code(&self, code: &str) -> bool {
        self.coding.objects().any(|c| c.code.is(code))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Reference<'a> {
    #[serde(borrow)]
    pub reference: Text<'a>,
    #[serde(borrow)]
    pub display: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Period<'a> {
    #[serde(borrow)]
    pub start: Text<'a>,
    #[serde(borrow)]
    pub end: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Quantity<'a> {
    /// The number's text exactly as sent (any JSON value, checked by the mapping).
    #[serde(borrow)]
    pub value: Option<&'a RawValue>,
    #[serde(borrow)]
    pub comparator: Text<'a>,
    #[serde(borrow)]
    pub unit: Text<'a>,
    #[serde(borrow)]
    pub system: Text<'a>,
    #[serde(borrow)]
    pub code: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Extension<'a> {
    #[serde(borrow)]
    pub url: Text<'a>,
    #[serde(borrow)]
    pub value_code: Text<'a>,
    #[serde(borrow)]
    pub value_codeable_concept: Obj<CodeableConcept<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Identifier<'a> {
    #[serde(borrow)]
    pub system: Text<'a>,
    #[serde(borrow)]
    pub value: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HumanName<'a> {
    #[serde(borrow, rename = "use")]
    pub purpose: Text<'a>,
    #[serde(borrow)]
    pub text: Text<'a>,
    #[serde(borrow)]
    pub family: Text<'a>,
    #[serde(borrow)]
    pub given: Many<Text<'a>>,
    #[serde(borrow)]
    pub prefix: Many<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Address<'a> {
    #[serde(borrow, rename = "use")]
    pub purpose: Text<'a>,
    #[serde(borrow)]
    pub postal_code: Text<'a>,
}

/// An element whose only member read is its `text` (an Annotation, a Dosage).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Texted<'a> {
    #[serde(borrow)]
    pub text: Text<'a>,
}

/// A List entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListEntry<'a> {
    #[serde(borrow)]
    pub item: Obj<Reference<'a>>,
}

/// `Observation.related`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Related<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Text<'a>,
    #[serde(borrow)]
    pub target: Obj<Reference<'a>>,
}

/// `Encounter.participant`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Participant<'a> {
    #[serde(borrow)]
    pub individual: Obj<Reference<'a>>,
}

/// `Immunization.practitioner`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Performer<'a> {
    #[serde(borrow)]
    pub actor: Obj<Reference<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn members_keep_their_text_and_read_leniently() {
        let object: Obj<Object<'_>> = serde_json::from_str(
            r#"{"a": 7.50, "b": "x\"y", "c": [1, null, {"code": "k"}], "d": {"e": 1}, "n": null}"#,
        )
        .expect("JSON");
        let object = object.0.expect("an object");
        assert_eq!(object.raw("a").map(RawValue::get), Some("7.50"));
        assert_eq!(object.text("b").as_str(), Some("x\"y"));
        assert_eq!(object.text("a"), Text::Other);
        assert_eq!(object.text("n"), Text::Absent);
        assert_eq!(object.text("zz"), Text::Absent);
        assert!(object.has("a") && !object.has("n") && !object.has("zz"));
        let codings: Many<Obj<Coding<'_>>> = object.get("c");
        assert_eq!(codings.0.len(), 3);
        assert_eq!(codings.objects().count(), 1);
        assert!(object.get::<Many<Text<'_>>>("d").0.is_empty());
        assert!(object.object("b").members().is_empty());
        assert_eq!(object.object("d").members().len(), 1);
        assert_eq!(
            object.raw("c").map(attribute_text).as_deref(),
            Some(r#"[1,null,{"code":"k"}]"#)
        );
        assert_eq!(object.raw("b").map(attribute_text).as_deref(), Some("x\"y"));
        assert!(serde_json::from_str::<Obj<Object<'_>>>("{} x").is_err());
    }

    proptest! {
        #[test]
        fn reads_what_serde_json_reads(text in "\\PC{0,80}") {
            let ours = serde_json::from_str::<Obj<Object<'_>>>(&text);
            let theirs = serde_json::from_str::<serde_json::Value>(&text);
            if theirs.is_err() {
                prop_assert!(ours.is_err());
            }
            if let Ok(Obj(Some(object))) = &ours {
                prop_assert!(theirs.as_ref().is_ok_and(serde_json::Value::is_object));
                for (name, value) in object.members() {
                    prop_assert!(serde_json::from_str::<serde_json::Value>(value.get()).is_ok(), "{}", name);
                }
            }
        }
    }
}
