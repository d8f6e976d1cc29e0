//! A read-only JSON tree that borrows its strings from the answer's bytes, so a multi-megabyte
//! structured record is parsed without an allocation per string (`serde_json::Value` with the
//! workspace's `preserve_order` and `arbitrary_precision` features is several times slower).
//! Numbers keep their text exactly, as FHIR decimals must.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// How `serde_json` (with `arbitrary_precision`) hands a number to a visitor: a one-entry map
/// under this key, with the number's text as the value.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// One JSON value. Object members keep their order; lookups are linear (FHIR objects are
/// small).
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    /// The number's text as sent.
    Number(Cow<'a, str>),
    Str(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

static NULL: Node<'static> = Node::Null;

impl<'a> Node<'a> {
    /// Parses `bytes`.
    ///
    /// # Errors
    /// When they are not JSON.
    pub fn parse(bytes: &'a [u8]) -> Result<Node<'a>, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let node = deserializer.deserialize_any(NodeVisitor)?;
        deserializer.end()?;
        Ok(node)
    }

    /// The member `key` of an object; [`Node::Null`] when absent or not an object.
    pub fn get(&self, key: &str) -> &Node<'a> {
        match self {
            Node::Object(members) => members
                .iter()
                .find(|(k, _)| k == key)
                .map_or(&NULL, |(_, v)| v),
            _ => &NULL,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A number's text.
    pub fn as_number(&self) -> Option<&str> {
        match self {
            Node::Number(n) => Some(n),
            _ => None,
        }
    }

    /// An array's items; empty for anything else.
    pub fn items(&self) -> &[Node<'a>] {
        match self {
            Node::Array(items) => items,
            _ => &[],
        }
    }

    /// An object's members; empty for anything else.
    pub fn members(&self) -> &[(Cow<'a, str>, Node<'a>)] {
        match self {
            Node::Object(members) => members,
            _ => &[],
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }

    /// Whether this is the string `text`.
    pub fn is(&self, text: &str) -> bool {
        self.as_str() == Some(text)
    }

    /// The string itself, or the value as compact JSON.
    pub fn text(&self) -> String {
        match self {
            Node::Str(s) => s.to_string(),
            other => serde_json::to_string(other).unwrap_or_default(),
        }
    }
}

impl std::ops::Index<&str> for Node<'_> {
    type Output = Self;

    fn index(&self, key: &str) -> &Self {
        self.get(key)
    }
}

impl std::ops::Index<usize> for Node<'_> {
    type Output = Self;

    fn index(&self, index: usize) -> &Self {
        self.items().get(index).unwrap_or(&NULL)
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => serializer.serialize_unit(),
            Node::Bool(b) => serializer.serialize_bool(*b),
            Node::Number(n) => {
                let number: serde_json::Number = n.parse().map_err(serde::ser::Error::custom)?;
                number.serialize(serializer)
            }
            Node::Str(s) => serializer.serialize_str(s),
            Node::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
        }
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        d.deserialize_any(NodeVisitor)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(Cow::Owned(v.to_string())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(Cow::Owned(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node<'de>, E> {
        Ok(Node::Number(Cow::Owned(v.to_string())))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v.to_string())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(NodeSeed)? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let Some(first) = map.next_key_seed(TextSeed)? else {
            return Ok(Node::Object(Vec::new()));
        };
        if first == NUMBER_TOKEN {
            return Ok(Node::Number(map.next_value_seed(TextSeed)?));
        }
        let mut members = Vec::new();
        members.push((first, map.next_value_seed(NodeSeed)?));
        while let Some(key) = map.next_key_seed(TextSeed)? {
            members.push((key, map.next_value_seed(NodeSeed)?));
        }
        Ok(Node::Object(members))
    }
}

struct NodeSeed;

impl<'de> DeserializeSeed<'de> for NodeSeed {
    type Value = Node<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node<'de>, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// A string, borrowed when it has no escapes.
struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(TextSeed)
    }
}

impl<'de> Visitor<'de> for TextSeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_keep_their_text_and_strings_unescape() {
        let node = Node::parse(br#"{"a": 7.50, "b": "x\"y", "c": [1, null, true], "d": {}}"#)
            .expect("JSON");
        assert_eq!(node["a"].as_number(), Some("7.50"));
        assert_eq!(node["b"].as_str(), Some("x\"y"));
        assert_eq!(node["c"][2], Node::Bool(true));
        assert!(node["c"][7].is_null() && node["zz"]["y"].is_null());
        assert_eq!(node["c"].text(), "[1,null,true]");
        assert!(Node::parse(b"{} x").is_err());
    }

    proptest! {
        #[test]
        fn parses_as_serde_json_does(text in "\\PC{0,80}") {
            let ours = Node::parse(text.as_bytes());
            let theirs = serde_json::from_str::<serde_json::Value>(&text);
            prop_assert_eq!(ours.is_ok(), theirs.is_ok());
            if let (Ok(ours), Ok(theirs)) = (ours, theirs) {
                prop_assert_eq!(serde_json::to_value(&ours).ok(), Some(theirs));
            }
        }
    }
}
