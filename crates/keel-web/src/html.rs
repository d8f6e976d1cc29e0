//! HTML text. Every value that reaches a page goes through [`Text`] (element content and
//! quoted attribute values alike); page structure is written as literal markup around it.

use std::fmt;

/// Text escaped for HTML: `&`, `<`, `>`, `"` and `'` become character references.
pub struct Text<'a>(pub &'a str);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// `text` escaped, as a new string.
pub fn escape(text: &str) -> String {
    Text(text).to_string()
}

/// A query-string value, percent-encoded (for links built from data).
pub fn query_value(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Appends formatted markup to a `String` (writing to a `String` cannot fail).
#[macro_export]
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($out, $($arg)*);
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped_and_the_rest_is_kept() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(escape("Zoë O’Brien — 5 < 6"), "Zoë O’Brien — 5 &lt; 6");
        assert_eq!(escape(""), "");
        assert_eq!(escape("&amp;"), "&amp;amp;", "escaping is not undone");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(query_value("O'Brien & Sons"), "O%27Brien+%26+Sons");
    }
}
