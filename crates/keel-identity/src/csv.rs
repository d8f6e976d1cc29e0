//! A small CSV reader (RFC 4180: comma-separated, fields optionally in double quotes with
//! `""` for a quote inside, CRLF or LF line ends) and the writer's quoting. Pure: it reads
//! from a string already in memory.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    /// 1-based line where the bad record starts.
    pub line: usize,
    pub message: &'static str,
}

impl std::fmt::Display for CsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for CsvError {}

/// Reads records one at a time.
pub struct CsvReader<'a> {
    rest: &'a str,
    line: usize,
}

impl<'a> CsvReader<'a> {
    pub fn new(text: &'a str) -> Self {
        CsvReader {
            rest: text.strip_prefix('\u{feff}').unwrap_or(text),
            line: 1,
        }
    }

    /// The line the next record starts on.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Reads the next record into `fields` (cleared first). `Ok(false)` at the end; blank lines
    /// are skipped.
    pub fn next_record(&mut self, fields: &mut Vec<String>) -> Result<bool, CsvError> {
        fields.clear();
        loop {
            if self.rest.is_empty() {
                return Ok(false);
            }
            if let Some(rest) = self.rest.strip_prefix("\r\n") {
                self.rest = rest;
                self.line += 1;
            } else if let Some(rest) = self.rest.strip_prefix('\n') {
                self.rest = rest;
                self.line += 1;
            } else {
                break;
            }
        }
        let start_line = self.line;
        let bytes = self.rest.as_bytes();
        let mut i = 0;
        loop {
            // One field.
            let mut field = String::new();
            if bytes.get(i) == Some(&b'"') {
                i += 1;
                loop {
                    let Some(&c) = bytes.get(i) else {
                        return Err(CsvError {
                            line: start_line,
                            message: "a quoted field is not closed",
                        });
                    };
                    if c == b'"' {
                        if bytes.get(i + 1) == Some(&b'"') {
                            field.push('"');
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    } else {
                        // Copy up to the next quote in one piece (keeps UTF-8 intact).
                        let end = bytes[i..]
                            .iter()
                            .position(|&b| b == b'"')
                            .map_or(bytes.len(), |p| i + p);
                        let piece = &self.rest[i..end];
                        self.line += piece.matches('\n').count();
                        field.push_str(piece);
                        i = end;
                    }
                }
                // After the closing quote: a separator, a line end or the end.
                match bytes.get(i) {
                    None | Some(b',' | b'\n') => {}
                    Some(b'\r') if bytes.get(i + 1) == Some(&b'\n') => {}
                    _ => {
                        return Err(CsvError {
                            line: start_line,
                            message: "text after a closing quote",
                        });
                    }
                }
            } else {
                let end = bytes[i..]
                    .iter()
                    .position(|&b| matches!(b, b',' | b'\n' | b'"'))
                    .map_or(bytes.len(), |p| i + p);
                if bytes.get(end) == Some(&b'"') {
                    return Err(CsvError {
                        line: start_line,
                        message: "a quote inside an unquoted field",
                    });
                }
                let mut piece = &self.rest[i..end];
                if bytes.get(end) == Some(&b'\n') {
                    piece = piece.strip_suffix('\r').unwrap_or(piece);
                }
                field.push_str(piece);
                i = end;
            }
            fields.push(field);
            match bytes.get(i) {
                Some(b',') => i += 1,
                Some(b'\r') => {
                    // CRLF after a quoted field.
                    i += 2;
                    self.line += 1;
                    break;
                }
                Some(b'\n') => {
                    i += 1;
                    self.line += 1;
                    break;
                }
                _ => break,
            }
        }
        self.rest = &self.rest[i.min(self.rest.len())..];
        Ok(true)
    }
}

/// Parses a whole CSV text into records.
pub fn parse(text: &str) -> Result<Vec<Vec<String>>, CsvError> {
    let mut reader = CsvReader::new(text);
    let mut out = Vec::new();
    let mut fields = Vec::new();
    while reader.next_record(&mut fields)? {
        out.push(std::mem::take(&mut fields));
    }
    Ok(out)
}

/// Appends `value` to `out` as one CSV field, quoted when it has to be.
pub fn write_field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// One record as a CSV line (with its `\n`).
pub fn write_record<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    // A record of one empty field would be a blank line, which readers skip.
    if let [only] = fields
        && only.as_ref().is_empty()
    {
        out.push_str("\"\"\n");
        return;
    }
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_field(out, f.as_ref());
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_quoted_and_crlf() {
        let text = "a,b,c\r\n1, two ,\"th,ree\"\n\"say \"\"hi\"\"\",\"multi\nline\",\n\n";
        let rows = parse(text).expect("parses");
        assert_eq!(rows[0], ["a", "b", "c"]);
        assert_eq!(rows[1], ["1", " two ", "th,ree"]);
        assert_eq!(rows[2], ["say \"hi\"", "multi\nline", ""]);
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(parse("a\n\"open").map_err(|e| e.line), Err(2));
        assert!(parse("a\"b").is_err());
        assert!(parse("\"a\"b").is_err());
    }

    #[test]
    fn written_records_read_back() {
        let fields = ["plain", "with,comma", "with \"quote\"", "line\nbreak", ""];
        let mut out = String::new();
        write_record(&mut out, &fields);
        assert_eq!(parse(&out).expect("parses"), vec![fields.to_vec()]);
    }
}
