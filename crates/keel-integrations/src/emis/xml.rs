//! The EMIS-style API's XML, both ways: answers parsed (quick-xml) into a small element tree
//! for the mapping, and request bodies written with escaping.
//!
//! Parsing is strict about well-formedness and lenient about names: elements and attributes
//! compare by local name (a namespace prefix is ignored), namespace declarations are dropped,
//! and a DOCTYPE or an entity other than the predefined ones is refused (no entity expansion).

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// The namespace of the API's documents (written on request roots).
pub const NAMESPACE: &str = "https://keel.invalid/sim/emis-style/1";

/// Deepest nesting accepted in an answer.
const MAX_DEPTH: usize = 32;

/// An answer that is not well-formed XML, or not the document expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError(pub String);

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for XmlError {}

/// One element: local name, attributes (local names, unescaped), its own text and children,
/// borrowing from the answer wherever nothing had to be unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element<'a> {
    pub name: Cow<'a, str>,
    pub attrs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// The element's character data, exactly as sent (unescaped, untrimmed).
    pub text: Cow<'a, str>,
    pub children: Vec<Element<'a>>,
}

impl<'a> Element<'a> {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element<'a>> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn children_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Element<'a>> {
        self.children.iter().filter(move |c| c.name == name)
    }
}

fn local(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|b| *b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// `part` as text: borrowed from `input` when it is a slice of it (the reader reads from a
/// string, so it normally is), otherwise copied.
fn text_of<'a>(input: &'a str, part: &[u8]) -> Result<Cow<'a, str>, XmlError> {
    let start = input.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    if at >= start && at + part.len() <= start + input.len() {
        let offset = at - start;
        if let Some(borrowed) = input.get(offset..offset + part.len()) {
            return Ok(Cow::Borrowed(borrowed));
        }
    }
    std::str::from_utf8(part)
        .map(|s| Cow::Owned(s.to_string()))
        .map_err(|_| XmlError("a name or value is not valid UTF-8".into()))
}

fn element_of<'a>(input: &'a str, start: &BytesStart<'_>) -> Result<Element<'a>, XmlError> {
    let name = text_of(input, local(start.name().as_ref()))?;
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| XmlError(format!("bad attribute on {name}: {e}")))?;
        let key = attr.key.as_ref();
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            continue;
        }
        let value = if attr.value.contains(&b'&') {
            let unescaped = attr
                .unescape_value()
                .map_err(|e| XmlError(format!("bad attribute value on {name}: {e}")))?;
            Cow::Owned(unescaped.into_owned())
        } else {
            text_of(input, &attr.value)?
        };
        attrs.push((text_of(input, local(key))?, value));
    }
    Ok(Element {
        name,
        attrs,
        text: Cow::Borrowed(""),
        children: Vec::new(),
    })
}

fn push_text<'a>(stack: &mut [Element<'a>], text: Cow<'a, str>) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(e) if e.text.is_empty() => {
            e.text = text;
            Ok(())
        }
        Some(e) => {
            e.text.to_mut().push_str(&text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(XmlError("text outside the root element".into())),
    }
}

/// Parses `body` into its root element.
///
/// # Errors
/// [`XmlError`] when the body is not one well-formed UTF-8 XML element (see the module docs).
pub fn parse(body: &[u8]) -> Result<Element<'_>, XmlError> {
    let text = std::str::from_utf8(body).map_err(|_| XmlError("the answer is not UTF-8".into()))?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let bad = |e: quick_xml::Error| XmlError(format!("malformed XML: {e}"));
    loop {
        match reader.read_event().map_err(bad)? {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(XmlError("more than one root element".into()));
            }
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError(format!(
                        "elements nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                stack.push(element_of(text, &start)?);
            }
            Event::Empty(start) => {
                let element = element_of(text, &start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| XmlError("an unexpected end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(t) => {
                let s = t
                    .decode()
                    .map_err(|e| XmlError(format!("malformed text: {e}")))?;
                push_text(&mut stack, s)?;
            }
            Event::CData(t) => {
                let s = t
                    .decode()
                    .map_err(|e| XmlError(format!("malformed CDATA: {e}")))?;
                push_text(&mut stack, s)?;
            }
            Event::GeneralRef(r) => {
                let resolved: Option<Cow<'_, str>> = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(bad)?
                        .map(|c| Cow::Owned(c.to_string()))
                } else {
                    let name = r
                        .decode()
                        .map_err(|e| XmlError(format!("malformed reference: {e}")))?;
                    quick_xml::escape::resolve_predefined_entity(&name).map(Cow::Borrowed)
                };
                let resolved = resolved.ok_or_else(|| {
                    XmlError(
                        "only the predefined entities and character references are allowed".into(),
                    )
                })?;
                push_text(&mut stack, resolved)?;
            }
            Event::DocType(_) => return Err(XmlError("a DOCTYPE is not allowed".into())),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError("an unclosed element".into()));
    }
    root.ok_or_else(|| XmlError("the answer holds no XML element".into()))
}

/// Writes a request body: elements with escaped attributes and text.
#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    /// Opens the root element `name` in the API's namespace.
    pub fn root(name: &str, attrs: &[(&str, &str)]) -> XmlWriter {
        let mut w = XmlWriter {
            out: String::with_capacity(256),
        };
        w.out.push('<');
        w.out.push_str(name);
        w.attrs(&[("xmlns", NAMESPACE)]);
        w.attrs(attrs);
        w.out.push('>');
        w
    }

    fn attrs(&mut self, attrs: &[(&str, &str)]) {
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            self.out.push_str(&quick_xml::escape::escape(*v));
            self.out.push('"');
        }
    }

    fn open(&mut self, name: &str, attrs: &[(&str, &str)], empty: bool) {
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(attrs);
        self.out.push_str(if empty { "/>" } else { ">" });
    }

    /// `<name attrs>`, to be closed with [`XmlWriter::end`].
    pub fn start(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.open(name, attrs, false);
    }

    /// `<name attrs/>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.open(name, attrs, true);
    }

    /// `<name attrs>text</name>`.
    pub fn text(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        self.open(name, attrs, false);
        self.out.push_str(&quick_xml::escape::escape(text));
        self.end(name);
    }

    pub fn end(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// Closes the root `name` and returns the document.
    pub fn finish(mut self, name: &str) -> String {
        self.end(name);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_attributes_and_text_with_entities() {
        let root = parse(
            br#"<?xml version="1.0"?><e:Root xmlns:e="urn:x" A="1 &amp; 2"><Child>a &lt; b&#33;</Child><Empty B="x"/></e:Root>"#,
        )
        .expect("well-formed");
        assert_eq!(root.name, "Root");
        assert_eq!(root.attr("A"), Some("1 & 2"));
        assert_eq!(root.child("Child").map(|c| c.text.as_ref()), Some("a < b!"));
        assert_eq!(root.child("Empty").and_then(|c| c.attr("B")), Some("x"));
    }

    #[test]
    fn refuses_what_is_not_one_well_formed_element() {
        for body in [
            &b""[..],
            b"not xml",
            b"<A><B></A>",
            b"<A/><B/>",
            b"<A>",
            b"<!DOCTYPE a [<!ENTITY x \"y\">]><A>&x;</A>",
            b"<A>&unknown;</A>",
            b"\xff\xfe",
        ] {
            assert!(parse(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn written_requests_escape_and_parse_back() {
        let mut w = XmlWriter::root("Task", &[("Priority", "Urgent")]);
        w.text("Description", &[], "Call <back> & \"check\"");
        w.empty("Owner", &[("UserId", "a\"b")]);
        let body = w.finish("Task");
        let root = parse(body.as_bytes()).expect("parses");
        assert_eq!(root.attr("Priority"), Some("Urgent"));
        assert_eq!(
            root.child("Description").map(|d| d.text.as_ref()),
            Some("Call <back> & \"check\"")
        );
        assert_eq!(
            root.child("Owner").and_then(|o| o.attr("UserId")),
            Some("a\"b")
        );
    }
}
