//! A minimal streaming JSON writer into a byte buffer.
//!
//! Output is compact (no whitespace) and its bytes depend only on the calls made, never on a
//! serialisation library's version: numbers are written from integers (fixed-point decimals
//! included), strings are escaped per RFC 8259 with non-ASCII kept as UTF-8.

use crate::date::{Date, DateTime};

/// Appends JSON to a buffer, inserting commas between members and elements.
pub struct Json<'a> {
    out: &'a mut Vec<u8>,
    comma: bool,
}

impl<'a> Json<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Json { out, comma: false }
    }

    fn sep(&mut self) {
        if self.comma {
            self.out.push(b',');
        }
    }

    /// Starts an object (as a value: top level, array element, or after [`Json::key`]).
    pub fn begin(&mut self) -> &mut Self {
        self.sep();
        self.out.push(b'{');
        self.comma = false;
        self
    }

    pub fn end(&mut self) -> &mut Self {
        self.out.push(b'}');
        self.comma = true;
        self
    }

    pub fn begin_array(&mut self) -> &mut Self {
        self.sep();
        self.out.push(b'[');
        self.comma = false;
        self
    }

    pub fn end_array(&mut self) -> &mut Self {
        self.out.push(b']');
        self.comma = true;
        self
    }

    /// Writes a member name; the next call writes its value.
    pub fn key(&mut self, key: &str) -> &mut Self {
        self.sep();
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.comma = false;
        self
    }

    /// `"key":{` — an object member.
    pub fn obj(&mut self, key: &str) -> &mut Self {
        self.key(key).begin()
    }

    /// `"key":[` — an array member.
    pub fn arr(&mut self, key: &str) -> &mut Self {
        self.key(key).begin_array()
    }

    /// A string value.
    pub fn str(&mut self, value: &str) -> &mut Self {
        self.sep();
        escape_into(self.out, value);
        self.comma = true;
        self
    }

    /// A string built from raw bytes the caller guarantees need no escaping.
    fn raw_str(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        self.sep();
        self.out.push(b'"');
        write(self.out);
        self.out.push(b'"');
        self.comma = true;
        self
    }

    pub fn u64(&mut self, value: u64) -> &mut Self {
        self.sep();
        push_u64(self.out, value);
        self.comma = true;
        self
    }

    pub fn i64(&mut self, value: i64) -> &mut Self {
        self.sep();
        if value < 0 {
            self.out.push(b'-');
        }
        push_u64(self.out, value.unsigned_abs());
        self.comma = true;
        self
    }

    /// A decimal number `value / 10^scale`, written with exactly `scale` fraction digits.
    pub fn fixed(&mut self, value: i64, scale: u8) -> &mut Self {
        self.sep();
        write_fixed(self.out, value, scale);
        self.comma = true;
        self
    }

    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.sep();
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
        self.comma = true;
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.sep();
        self.out.extend_from_slice(b"null");
        self.comma = true;
        self
    }

    pub fn date(&mut self, date: Date) -> &mut Self {
        self.raw_str(|out| date.write_to(out))
    }

    pub fn datetime(&mut self, at: DateTime) -> &mut Self {
        self.raw_str(|out| at.write_to(out))
    }

    /// A string value made of a prefix and a suffix (for ids such as `Y90001-0000012-o3`).
    pub fn str2(&mut self, a: &str, b: &str) -> &mut Self {
        self.sep();
        self.out.push(b'"');
        escape_body(self.out, a);
        escape_body(self.out, b);
        self.out.push(b'"');
        self.comma = true;
        self
    }

    /// A resource id `base-tagN` (ids are ASCII letters, digits and hyphens: no escaping).
    pub fn idn(&mut self, base: &str, tag: &str, n: u64) -> &mut Self {
        self.sep();
        self.out.push(b'"');
        self.out.extend_from_slice(base.as_bytes());
        self.out.push(b'-');
        self.out.extend_from_slice(tag.as_bytes());
        push_u64(self.out, n);
        self.out.push(b'"');
        self.comma = true;
        self
    }

    /// `{"reference":"Type/id"}` as a value.
    pub fn ref_value(&mut self, rtype: &str, id: &str) -> &mut Self {
        self.begin().key("reference");
        self.out.push(b'"');
        self.out.extend_from_slice(rtype.as_bytes());
        self.out.push(b'/');
        self.out.extend_from_slice(id.as_bytes());
        self.out.push(b'"');
        self.comma = true;
        self.end()
    }

    /// `{"reference":"Type/base-tagN"}` as a value.
    pub fn ref_value_n(&mut self, rtype: &str, base: &str, tag: &str, n: u64) -> &mut Self {
        self.begin().key("reference");
        self.out.push(b'"');
        self.out.extend_from_slice(rtype.as_bytes());
        self.out.push(b'/');
        self.out.extend_from_slice(base.as_bytes());
        self.out.push(b'-');
        self.out.extend_from_slice(tag.as_bytes());
        push_u64(self.out, n);
        self.out.push(b'"');
        self.comma = true;
        self.end()
    }

    /// `"key":{"reference":"Type/id"}`.
    pub fn reference(&mut self, key: &str, rtype: &str, id: &str) -> &mut Self {
        self.key(key).ref_value(rtype, id)
    }

    /// `"key":{"reference":"Type/base-tagN"}`.
    pub fn reference_n(
        &mut self,
        key: &str,
        rtype: &str,
        base: &str,
        tag: &str,
        n: u64,
    ) -> &mut Self {
        self.key(key).ref_value_n(rtype, base, tag, n)
    }

    /// `"key":"value"`.
    pub fn kstr(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key).str(value)
    }

    /// `"key":"value"` when present.
    pub fn kopt(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.key(key).str(v);
        }
        self
    }

    pub fn kdate(&mut self, key: &str, date: Date) -> &mut Self {
        self.key(key).date(date)
    }

    pub fn ku64(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key).u64(value)
    }

    pub fn kbool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key).bool(value)
    }

    /// Ends a line of JSON Lines / NDJSON.
    pub fn newline(&mut self) {
        self.out.push(b'\n');
        self.comma = false;
    }
}

/// Appends the decimal digits of `n`.
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Writes `value / 10^scale` with `scale` fraction digits (`1234, 1` → `123.4`).
pub fn write_fixed(out: &mut Vec<u8>, value: i64, scale: u8) {
    if value < 0 {
        out.push(b'-');
    }
    let abs = value.unsigned_abs();
    if scale == 0 {
        push_u64(out, abs);
        return;
    }
    let pow = 10u64.pow(u32::from(scale));
    push_u64(out, abs / pow);
    out.push(b'.');
    crate::date::push_num(out, (abs % pow) as u32, usize::from(scale));
}

fn escape_into(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape_body(out, s);
    out.push(b'"');
}

fn escape_body(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escaped.is_empty() {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.extend_from_slice(escaped);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_compact_json() {
        let mut buf = Vec::new();
        let mut j = Json::new(&mut buf);
        j.begin()
            .kstr("name", "Zoë \"Z\" O'Neill\n")
            .arr("v")
            .fixed(1234, 1)
            .fixed(-5, 2)
            .fixed(7, 0)
            .u64(3)
            .begin()
            .end()
            .end_array()
            .kbool("ok", true)
            .end();
        let text = String::from_utf8(buf).expect("utf8");
        assert_eq!(
            text,
            r#"{"name":"Zoë \"Z\" O'Neill\n","v":[123.4,-0.05,7,3,{}],"ok":true}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(parsed["name"], "Zoë \"Z\" O'Neill\n");
    }
}
