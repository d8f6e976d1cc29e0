//! Writing the API's XML: a thin layer over `quick_xml::Writer` into a byte buffer.

use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::date::{Date, DateTime};

/// The API's XML namespace (modelled; see the module docs of [`crate::emis`]).
pub const NAMESPACE: &str = "https://keel.invalid/sim/emis-style/1";

/// An XML document being written. Writes go to memory, so the only errors are quick-xml's
/// own (none expected); they are still carried, never unwrapped.
pub struct XmlOut {
    w: Writer<Vec<u8>>,
    scratch: Vec<u8>,
}

impl XmlOut {
    /// A document with the XML declaration written.
    pub fn new(capacity: usize) -> io::Result<XmlOut> {
        let mut w = Writer::new(Vec::with_capacity(capacity));
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        Ok(XmlOut {
            w,
            scratch: Vec::with_capacity(32),
        })
    }

    /// The root element `name`, declaring the namespace, with `attrs`.
    pub fn root(&mut self, name: &str, attrs: &[(&str, &str)]) -> io::Result<()> {
        let start = BytesStart::new(name)
            .with_attributes([("xmlns", NAMESPACE)])
            .with_attributes(attrs.iter().copied());
        self.w.write_event(Event::Start(start))
    }

    pub fn start(&mut self, name: &str, attrs: &[(&str, &str)]) -> io::Result<()> {
        let start = BytesStart::new(name).with_attributes(attrs.iter().copied());
        self.w.write_event(Event::Start(start))
    }

    pub fn end(&mut self, name: &str) -> io::Result<()> {
        self.w.write_event(Event::End(BytesEnd::new(name)))
    }

    /// `<name attrs/>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> io::Result<()> {
        let start = BytesStart::new(name).with_attributes(attrs.iter().copied());
        self.w.write_event(Event::Empty(start))
    }

    /// `<name attrs>text</name>`.
    pub fn text(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> io::Result<()> {
        self.start(name, attrs)?;
        self.w.write_event(Event::Text(BytesText::new(text)))?;
        self.end(name)
    }

    /// `<name>YYYY-MM-DD</name>`.
    pub fn date(&mut self, name: &str, date: Date) -> io::Result<()> {
        self.scratch.clear();
        date.write_to(&mut self.scratch);
        self.raw_text(name)
    }

    /// `<name>YYYY-MM-DDThh:mm:00+01:00</name>` (UK local time with its offset).
    pub fn datetime(&mut self, name: &str, at: DateTime) -> io::Result<()> {
        self.scratch.clear();
        at.write_to(&mut self.scratch);
        self.raw_text(name)
    }

    /// `<name>n</name>`.
    pub fn number(&mut self, name: &str, n: u64) -> io::Result<()> {
        self.scratch.clear();
        crate::json::push_u64(&mut self.scratch, n);
        self.raw_text(name)
    }

    /// `<name attrs>value/10^scale</name>`.
    pub fn fixed(
        &mut self,
        name: &str,
        attrs: &[(&str, &str)],
        value: i64,
        scale: u8,
    ) -> io::Result<()> {
        self.scratch.clear();
        crate::json::write_fixed(&mut self.scratch, value, scale);
        let text = std::str::from_utf8(&self.scratch).unwrap_or_default();
        let start = BytesStart::new(name).with_attributes(attrs.iter().copied());
        self.w.write_event(Event::Start(start))?;
        self.w
            .write_event(Event::Text(BytesText::from_escaped(text)))?;
        self.end(name)
    }

    /// Writes the scratch buffer (digits and punctuation only) as `name`'s text.
    fn raw_text(&mut self, name: &str) -> io::Result<()> {
        self.w.write_event(Event::Start(BytesStart::new(name)))?;
        let text = std::str::from_utf8(&self.scratch).unwrap_or_default();
        self.w
            .write_event(Event::Text(BytesText::from_escaped(text)))?;
        self.end(name)
    }

    pub fn finish(self) -> Vec<u8> {
        self.w.into_inner()
    }
}
