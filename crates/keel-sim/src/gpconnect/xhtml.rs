//! A minimal writer of FHIR narrative XHTML (the `text.div` of Access Record HTML): one root
//! `<div>` in the XHTML namespace, elements opened and closed by the caller, and every piece
//! of text escaped for XML (`&`, `<`, `>`, `"`, `'`; characters XML 1.0 forbids are dropped),
//! so names such as `O'Brien` or `Smith & Sons` stay text and never become markup.

/// The narrative's root element as FHIR requires it.
const ROOT: &str = "<div xmlns=\"http://www.w3.org/1999/xhtml\">";

/// XHTML being written; [`Xhtml::finish`] closes the root `<div>`.
pub struct Xhtml {
    out: String,
}

impl Xhtml {
    pub fn new() -> Self {
        let mut out = String::with_capacity(16 * 1024);
        out.push_str(ROOT);
        Xhtml { out }
    }

    /// `<tag>`.
    pub fn open(&mut self, tag: &'static str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// `</tag>`.
    pub fn close(&mut self, tag: &'static str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// Escaped text.
    pub fn text(&mut self, text: &str) -> &mut Self {
        escape_into(&mut self.out, text);
        self
    }

    /// `<tag>text</tag>`.
    pub fn element(&mut self, tag: &'static str, text: &str) -> &mut Self {
        self.open(tag).text(text).close(tag)
    }

    /// Closes the root and returns the narrative.
    pub fn finish(mut self) -> String {
        self.out.push_str("</div>");
        self.out
    }
}

impl Default for Xhtml {
    fn default() -> Self {
        Self::new()
    }
}

/// Appends `text` escaped for XML character data and attribute values.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
}

/// Characters XML 1.0 allows in a document.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn markup_characters_become_references() {
        let mut h = Xhtml::new();
        h.element("p", "O'Brien & <Sons> \"Ltd\"");
        assert_eq!(
            h.finish(),
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>O&#39;Brien &amp; &lt;Sons&gt; &quot;Ltd&quot;</p></div>"
        );
    }

    proptest! {
        /// No text, whatever it holds, leaves a markup character unescaped.
        #[test]
        fn escaped_text_holds_no_markup(text in "\\PC{0,60}|[&<>'\"\u{0}-\u{1f}a-z]{0,30}") {
            let mut out = String::new();
            escape_into(&mut out, &text);
            prop_assert!(!out.contains(['<', '>', '"', '\'']));
            let references_only = out.split('&').skip(1).all(|rest| {
                ["amp;", "lt;", "gt;", "quot;", "#39;"].iter().any(|r| rest.starts_with(r))
            });
            prop_assert!(references_only);
            prop_assert!(out.chars().all(is_xml_char));
        }
    }
}
