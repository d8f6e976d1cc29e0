//! Parsing request bodies: XML (quick-xml) into a small element tree, then into the typed
//! write requests, checking every mandatory field, code and value before anything is written.
//!
//! Rules (all answer 400 `InvalidRequest` with a message naming the element):
//! - one root element; no DOCTYPE; only the predefined entities and character references;
//!   at most [`MAX_DEPTH`] levels; element names compare by local name (a prefix is ignored),
//!   and a default namespace, if declared on the root, must be [`NAMESPACE`];
//! - an element the request does not define is rejected, as is a repeated single element;
//! - codes: `Scheme` is `SNOMED` (6–18 digits passing the Verhoeff check), `READ2` or `CTV3`
//!   (5 characters of letters, digits and dots); `Term` is mandatory; one code per scheme;
//! - dates `YYYY-MM-DD`, date-times `YYYY-MM-DDThh:mm` (seconds, if sent, must be `00`),
//!   years 1900–2100;
//! - values: a decimal as recorded (`7.1`, `-2`, `048`), a `Unit` as recorded (`%`,
//!   `mmol/mol`), an optional `Comparator` (`<`, `<=`, `>`, `>=`).

use base64::Engine;
use quick_xml::events::Event;
use quick_xml::reader::Reader;

use super::error::ApiError;
use super::xml::NAMESPACE;
use crate::date::{Date, DateTime};
use crate::model::ConsultationKind;

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 16;
/// Longest free text accepted, in bytes.
pub const MAX_TEXT: usize = 100_000;

/// A parsed element: local name, attributes (local names), text and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

fn local(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|b| *b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

fn utf8(bytes: &[u8], what: &str) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::invalid(format!("{what} is not valid UTF-8")))
}

fn element_of(start: &quick_xml::events::BytesStart<'_>) -> Result<Element, ApiError> {
    let name = utf8(local(start.name().as_ref()), "an element name")?;
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| ApiError::invalid(format!("bad attribute on {name}: {e}")))?;
        let key = attr.key.as_ref();
        let value = attr
            .unescape_value()
            .map_err(|e| ApiError::invalid(format!("bad attribute value on {name}: {e}")))?
            .into_owned();
        if key == b"xmlns" {
            if value != NAMESPACE {
                return Err(ApiError::invalid(format!(
                    "{name} is in namespace '{value}'; expected {NAMESPACE}"
                )));
            }
            continue;
        }
        if key.starts_with(b"xmlns:") {
            continue;
        }
        attrs.push((utf8(local(key), "an attribute name")?, value));
    }
    Ok(Element {
        name,
        attrs,
        text: String::new(),
        children: Vec::new(),
    })
}

/// Parses `body` into its root element (see the module docs for the rules).
pub fn parse_tree(body: &[u8]) -> Result<Element, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::invalid("the body is not valid UTF-8 XML"))?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let bad = |e: quick_xml::Error| ApiError::invalid(format!("malformed XML: {e}"));
    loop {
        let event = reader.read_event().map_err(bad)?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(ApiError::invalid(
                    "malformed XML: more than one root element",
                ));
            }
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(ApiError::invalid(format!(
                        "elements nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                stack.push(element_of(&start)?);
            }
            Event::Empty(start) => {
                let element = element_of(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                // quick-xml checks that end tags match their start tags.
                let Some(element) = stack.pop() else {
                    return Err(ApiError::invalid("malformed XML: unexpected end tag"));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(t) => {
                let s = t
                    .decode()
                    .map_err(|e| ApiError::invalid(format!("malformed XML text: {e}")))?;
                push_text(&mut stack, &s)?;
            }
            Event::CData(t) => {
                let s = t
                    .decode()
                    .map_err(|e| ApiError::invalid(format!("malformed XML CDATA: {e}")))?;
                push_text(&mut stack, &s)?;
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref().map_err(bad)?.map(String::from)
                } else {
                    let name = r
                        .decode()
                        .map_err(|e| ApiError::invalid(format!("malformed XML: {e}")))?;
                    quick_xml::escape::resolve_predefined_entity(&name).map(str::to_string)
                };
                let Some(resolved) = resolved else {
                    return Err(ApiError::invalid(
                        "malformed XML: only the predefined entities and character references are allowed",
                    ));
                };
                push_text(&mut stack, &resolved)?;
            }
            Event::DocType(_) => {
                return Err(ApiError::invalid("a DOCTYPE is not allowed"));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(ApiError::invalid("malformed XML: unclosed element"));
    }
    root.ok_or_else(|| ApiError::invalid("the body holds no XML element"))
}

fn push_text(stack: &mut [Element], s: &str) -> Result<(), ApiError> {
    match stack.last_mut() {
        Some(e) => {
            if e.text.len() + s.len() > MAX_TEXT {
                return Err(ApiError::invalid(format!(
                    "text of {} is longer than {MAX_TEXT} bytes",
                    e.name
                )));
            }
            e.text.push_str(s);
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None => Err(ApiError::invalid(
            "malformed XML: text outside the root element",
        )),
    }
}

impl Element {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn required_attr(&self, key: &str) -> Result<&str, ApiError> {
        self.attr(key).ok_or_else(|| {
            ApiError::invalid(format!("{}: missing mandatory attribute {key}", self.name))
        })
    }

    /// Rejects any child not named in `allowed`.
    fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self
            .children
            .iter()
            .find(|c| !allowed.contains(&c.name.as_str()))
        {
            Some(c) => Err(ApiError::invalid(format!(
                "{}: unexpected element {}",
                self.name, c.name
            ))),
            None => Ok(()),
        }
    }

    fn optional(&self, name: &str) -> Result<Option<&Element>, ApiError> {
        let mut found = self.children.iter().filter(|c| c.name == name);
        let first = found.next();
        if found.next().is_some() {
            return Err(ApiError::invalid(format!(
                "{}: element {name} given more than once",
                self.name
            )));
        }
        Ok(first)
    }

    fn required(&self, name: &str) -> Result<&Element, ApiError> {
        self.optional(name)?.ok_or_else(|| {
            ApiError::invalid(format!("{}: missing mandatory element {name}", self.name))
        })
    }

    /// The trimmed text of child `name`, which must be present and not empty.
    fn required_text(&self, name: &str) -> Result<&str, ApiError> {
        let text = self.required(name)?.text.trim();
        if text.is_empty() {
            return Err(ApiError::invalid(format!(
                "{}: element {name} is empty",
                self.name
            )));
        }
        Ok(text)
    }

    fn optional_text(&self, name: &str) -> Result<Option<&str>, ApiError> {
        Ok(self
            .optional(name)?
            .map(|e| e.text.trim())
            .filter(|t| !t.is_empty()))
    }

    fn expect_name(&self, name: &str) -> Result<(), ApiError> {
        if self.name == name {
            Ok(())
        } else {
            Err(ApiError::invalid(format!(
                "expected a {name} element, got {}",
                self.name
            )))
        }
    }
}

/// A code scheme accepted in requests and written in extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Snomed,
    ReadV2,
    Ctv3,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Snomed => "SNOMED",
            Scheme::ReadV2 => "READ2",
            Scheme::Ctv3 => "CTV3",
        }
    }

    fn parse(s: &str) -> Result<Scheme, ApiError> {
        match s {
            "SNOMED" => Ok(Scheme::Snomed),
            "READ2" => Ok(Scheme::ReadV2),
            "CTV3" => Ok(Scheme::Ctv3),
            other => Err(ApiError::invalid(format!(
                "Code: unknown code scheme '{other}'; expected SNOMED, READ2 or CTV3"
            ))),
        }
    }
}

/// One code as the client recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeInput {
    pub scheme: Scheme,
    pub value: String,
    pub term: String,
}

fn parse_code(e: &Element) -> Result<CodeInput, ApiError> {
    e.only(&[])?;
    let scheme = Scheme::parse(e.required_attr("Scheme")?)?;
    let value = e.required_attr("Value")?.trim();
    let term = e.required_attr("Term")?.trim();
    if term.is_empty() || term.len() > 255 {
        return Err(ApiError::invalid("Code: Term must be 1 to 255 characters"));
    }
    let ok = match scheme {
        Scheme::Snomed => {
            (6..=18).contains(&value.len())
                && value.bytes().all(|b| b.is_ascii_digit())
                && !value.starts_with('0')
                && crate::codes::verhoeff_valid(value)
        }
        Scheme::ReadV2 | Scheme::Ctv3 => {
            value.len() == 5
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.')
        }
    };
    if !ok {
        return Err(ApiError::invalid(format!(
            "Code: '{value}' is not a valid {} code",
            scheme.as_str()
        )));
    }
    Ok(CodeInput {
        scheme,
        value: value.to_string(),
        term: term.to_string(),
    })
}

/// The `Code` children of `e`: at least one, one per scheme.
fn parse_codes(e: &Element) -> Result<Vec<CodeInput>, ApiError> {
    let mut codes: Vec<CodeInput> = Vec::new();
    for c in e.children.iter().filter(|c| c.name == "Code") {
        let code = parse_code(c)?;
        if codes.iter().any(|k| k.scheme == code.scheme) {
            return Err(ApiError::invalid(format!(
                "{}: more than one {} code",
                e.name,
                code.scheme.as_str()
            )));
        }
        codes.push(code);
    }
    if codes.is_empty() {
        return Err(ApiError::invalid(format!(
            "{}: missing mandatory element Code",
            e.name
        )));
    }
    Ok(codes)
}

fn number(s: &str, what: &str) -> Result<u32, ApiError> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(format!("{what}: '{s}' is not a number")));
    }
    s.parse()
        .map_err(|_| ApiError::invalid(format!("{what}: '{s}' is not a number")))
}

/// Parses `YYYY-MM-DD` (years 1900–2100).
pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    if !(1900..=2100).contains(&y) || !(1..=12).contains(&m) || d < 1 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    (d <= days).then(|| Date::ymd(y as i32, m, d))
}

/// Parses `YYYY-MM-DDThh:mm` or `YYYY-MM-DDThh:mm:00`.
pub fn parse_datetime(s: &str) -> Option<DateTime> {
    let (date, time) = s.split_once('T')?;
    let date = parse_date(date)?;
    let time = time
        .strip_suffix(":00")
        .filter(|t| t.len() == 5)
        .unwrap_or(time);
    let b = time.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return None;
    }
    let part = |r: std::ops::Range<usize>| -> Option<u16> {
        let p = time.get(r)?;
        p.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| p.parse().ok())
            .flatten()
    };
    let (h, m) = (part(0..2)?, part(3..5)?);
    (h < 24 && m < 60).then(|| DateTime::new(date, h * 60 + m))
}

fn date_of(e: &Element, name: &str) -> Result<Date, ApiError> {
    let s = e.required_text(name)?;
    parse_date(s).ok_or_else(|| {
        ApiError::invalid(format!(
            "{}: {name} '{s}' is not a date (YYYY-MM-DD)",
            e.name
        ))
    })
}

fn datetime_of(e: &Element, name: &str) -> Result<DateTime, ApiError> {
    let s = e.required_text(name)?;
    parse_datetime(s).ok_or_else(|| {
        ApiError::invalid(format!(
            "{}: {name} '{s}' is not a date-time (YYYY-MM-DDThh:mm)",
            e.name
        ))
    })
}

/// A value as recorded: decimal text and unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueInput {
    pub value: String,
    pub unit: String,
    pub comparator: Option<&'static str>,
}

fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    s.len() <= 20
        && !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_value(e: &Element) -> Result<ValueInput, ApiError> {
    e.only(&[])?;
    let value = e.text.trim();
    if !is_decimal(value) {
        return Err(ApiError::invalid(format!(
            "Value: '{value}' is not a decimal number"
        )));
    }
    let unit = e.required_attr("Unit")?.trim();
    if unit.is_empty() || unit.len() > 50 {
        return Err(ApiError::invalid("Value: Unit must be 1 to 50 characters"));
    }
    let comparator = match e.attr("Comparator") {
        None => None,
        Some(c) => Some(
            ["<", "<=", ">", ">="]
                .into_iter()
                .find(|k| *k == c)
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "Value: Comparator '{c}' is not one of <, <=, >, >="
                    ))
                })?,
        ),
    };
    Ok(ValueInput {
        value: value.to_string(),
        unit: unit.to_string(),
        comparator,
    })
}

/// Whether a written coded entry is an observation or a problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// An `Event`, with an optional value.
    Event { value: Option<ValueInput> },
    /// A `Problem`: active or past (with an end date), major or minor.
    Problem {
        active: bool,
        major: bool,
        end: Option<Date>,
    },
}

/// A coded entry to write (`Event` or `Problem`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodedEntryInput {
    pub kind: EntryKind,
    pub codes: Vec<CodeInput>,
    pub date: Date,
    pub text: Option<String>,
}

/// Parses an `Event` or `Problem` element; `default_date` stands in for a missing `Date`
/// (inside a consultation).
fn coded_entry(e: &Element, default_date: Option<Date>) -> Result<CodedEntryInput, ApiError> {
    let is_event = match e.name.as_str() {
        "Event" => true,
        "Problem" => false,
        other => {
            return Err(ApiError::invalid(format!(
                "expected an Event or Problem element, got {other}"
            )));
        }
    };
    let date = match (e.optional("Date")?, default_date) {
        (None, Some(d)) => d,
        _ => date_of(e, "Date")?,
    };
    let text = e.optional_text("FreeText")?.map(str::to_string);
    let kind = if is_event {
        e.only(&["Code", "Date", "Value", "FreeText"])?;
        EntryKind::Event {
            value: e.optional("Value")?.map(parse_value).transpose()?,
        }
    } else {
        e.only(&["Code", "Date", "EndDate", "FreeText"])?;
        let active = match e.attr("Status").unwrap_or("Active") {
            "Active" => true,
            "Past" => false,
            other => {
                return Err(ApiError::invalid(format!(
                    "Problem: Status '{other}' is not Active or Past"
                )));
            }
        };
        let major = match e.attr("Significance").unwrap_or("Minor") {
            "Major" => true,
            "Minor" => false,
            other => {
                return Err(ApiError::invalid(format!(
                    "Problem: Significance '{other}' is not Major or Minor"
                )));
            }
        };
        let end = match e.optional("EndDate")? {
            Some(_) => Some(date_of(e, "EndDate")?),
            None => None,
        };
        if active && end.is_some() {
            return Err(ApiError::invalid(
                "Problem: an Active problem has no EndDate",
            ));
        }
        if end.is_some_and(|end| end < date) {
            return Err(ApiError::invalid("Problem: EndDate is before Date"));
        }
        EntryKind::Problem { active, major, end }
    };
    Ok(CodedEntryInput {
        kind,
        codes: parse_codes(e)?,
        date,
        text,
    })
}

/// `POST …/codedentries`: an `Event` or a `Problem`.
pub fn parse_coded_entry(body: &[u8]) -> Result<CodedEntryInput, ApiError> {
    coded_entry(&parse_tree(body)?, None)
}

/// One section of a consultation to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionInput {
    pub heading: String,
    pub text: Option<String>,
    pub entries: Vec<CodedEntryInput>,
}

/// A consultation to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsultationInput {
    pub kind: ConsultationKind,
    pub start: DateTime,
    pub minutes: u16,
    pub sections: Vec<SectionInput>,
}

/// Consultation types as the API spells them.
pub fn consultation_type(kind: ConsultationKind) -> &'static str {
    match kind {
        ConsultationKind::Surgery => "Surgery",
        ConsultationKind::Telephone => "Telephone",
        ConsultationKind::HomeVisit => "HomeVisit",
    }
}

/// `POST …/consultations`.
pub fn parse_consultation(body: &[u8]) -> Result<ConsultationInput, ApiError> {
    let e = parse_tree(body)?;
    e.expect_name("Consultation")?;
    e.only(&["Date", "DurationMinutes", "Section"])?;
    let kind = match e.required_attr("Type")? {
        "Surgery" => ConsultationKind::Surgery,
        "Telephone" => ConsultationKind::Telephone,
        "HomeVisit" => ConsultationKind::HomeVisit,
        other => {
            return Err(ApiError::invalid(format!(
                "Consultation: Type '{other}' is not Surgery, Telephone or HomeVisit"
            )));
        }
    };
    let start = datetime_of(&e, "Date")?;
    let minutes = match e.optional_text("DurationMinutes")? {
        None => 10,
        Some(m) => {
            let m = number(m, "DurationMinutes")?;
            if !(1..=480).contains(&m) {
                return Err(ApiError::invalid(
                    "Consultation: DurationMinutes must be 1 to 480",
                ));
            }
            m as u16
        }
    };
    let mut sections = Vec::new();
    for s in e.children.iter().filter(|c| c.name == "Section") {
        s.only(&["FreeText", "Event", "Problem"])?;
        let heading = s.required_attr("Heading")?.trim();
        if heading.is_empty() || heading.len() > 100 {
            return Err(ApiError::invalid(
                "Section: Heading must be 1 to 100 characters",
            ));
        }
        let text = s.optional_text("FreeText")?.map(str::to_string);
        let entries = s
            .children
            .iter()
            .filter(|c| c.name != "FreeText")
            .map(|c| coded_entry(c, Some(start.date)))
            .collect::<Result<Vec<_>, _>>()?;
        if text.is_none() && entries.is_empty() {
            return Err(ApiError::invalid(format!(
                "Section '{heading}': neither FreeText nor a coded entry"
            )));
        }
        sections.push(SectionInput {
            heading: heading.to_string(),
            text,
            entries,
        });
    }
    if sections.is_empty() {
        return Err(ApiError::invalid(
            "Consultation: missing mandatory element Section",
        ));
    }
    Ok(ConsultationInput {
        kind,
        start,
        minutes,
        sections,
    })
}

/// A task to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInput {
    pub description: String,
    pub created: DateTime,
    pub urgent: bool,
    /// The owner's user id (a staff id); the session's user when absent.
    pub owner: Option<String>,
}

/// `POST …/tasks`.
pub fn parse_task(body: &[u8]) -> Result<TaskInput, ApiError> {
    let e = parse_tree(body)?;
    e.expect_name("Task")?;
    e.only(&["Description", "Date", "Owner"])?;
    let urgent = match e.attr("Priority").unwrap_or("Routine") {
        "Routine" => false,
        "Urgent" => true,
        other => {
            return Err(ApiError::invalid(format!(
                "Task: Priority '{other}' is not Routine or Urgent"
            )));
        }
    };
    let owner = match e.optional("Owner")? {
        Some(o) => {
            o.only(&[])?;
            Some(o.required_attr("UserId")?.trim().to_string())
        }
        None => None,
    };
    Ok(TaskInput {
        description: e.required_text("Description")?.to_string(),
        created: datetime_of(&e, "Date")?,
        urgent,
        owner,
    })
}

/// A document to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentInput {
    pub title: String,
    pub date: Date,
    pub mime_type: String,
    pub content: Vec<u8>,
}

fn is_mime_type(s: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    s.len() <= 100 && s.split_once('/').is_some_and(|(a, b)| token(a) && token(b))
}

/// `POST …/documents`.
pub fn parse_document(body: &[u8]) -> Result<DocumentInput, ApiError> {
    let e = parse_tree(body)?;
    e.expect_name("Document")?;
    e.only(&["Title", "Date", "MimeType", "Content"])?;
    let mime_type = e.required_text("MimeType")?;
    if !is_mime_type(mime_type) {
        return Err(ApiError::invalid(format!(
            "Document: MimeType '{mime_type}' is not a media type"
        )));
    }
    let encoded: String = e
        .required_text("Content")?
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let content = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .map_err(|err| ApiError::invalid(format!("Document: Content is not base64: {err}")))?;
    Ok(DocumentInput {
        title: e.required_text("Title")?.to_string(),
        date: date_of(&e, "Date")?,
        mime_type: mime_type.to_string(),
        content,
    })
}

/// A login: the practice user opening the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginInput {
    pub user_id: String,
}

/// `POST …/sessions`.
pub fn parse_login(body: &[u8]) -> Result<LoginInput, ApiError> {
    let e = parse_tree(body)?;
    e.expect_name("Login")?;
    e.only(&["UserId"])?;
    Ok(LoginInput {
        user_id: e.required_text("UserId")?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use quick_xml::escape::escape;

    use super::*;

    fn every_parser(body: &[u8]) {
        let _ = parse_tree(body);
        let _ = parse_login(body);
        let _ = parse_consultation(body);
        let _ = parse_coded_entry(body);
        let _ = parse_task(body);
        let _ = parse_document(body);
    }

    #[test]
    fn limits_and_entities() {
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert!(parse_tree(deep.as_bytes()).is_err());
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse_tree(ok.as_bytes()).is_ok());
        let e = parse_tree(b"<a x='&lt;&#65;'>&amp;&#x42;<![CDATA[<c>]]></a>").expect("parses");
        assert_eq!(e.text, "&B<c>");
        assert_eq!(e.attrs, [("x".to_string(), "<A".to_string())]);
        assert!(parse_tree(b"<a>&custom;</a>").is_err());
        assert!(parse_tree(b"<a></b>").is_err());
        assert!(parse_tree(b"").is_err());
        assert!(
            parse_tree(b"<e:a xmlns:e='urn:x'><e:b/></e:a>")
                .is_ok_and(|e| e.children[0].name == "b")
        );
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(parse_date("2024-02-29"), Some(Date::ymd(2024, 2, 29)));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("1899-12-31"), None);
        assert_eq!(parse_date("2024-2-29"), None);
        assert_eq!(parse_date("+024-02-20"), None);
        assert_eq!(
            parse_datetime("2026-01-05T10:30:00"),
            Some(DateTime::new(Date::ymd(2026, 1, 5), 630))
        );
        assert_eq!(parse_datetime("2026-01-05T10:30:15"), None);
        assert_eq!(parse_datetime("2026-01-05T24:00"), None);
        assert_eq!(parse_datetime("2026-01-05"), None);
    }

    fn term() -> impl Strategy<Value = String> {
        "[A-Za-z0-9<>&'\"][A-Za-z0-9<>&'\" ()/%-]{0,40}[A-Za-z0-9<>&'\")]"
    }

    fn code() -> impl Strategy<Value = CodeInput> {
        let snomed = prop::sample::select(vec!["44054006", "195967001", "999791000000106"]);
        prop_oneof![
            (snomed, term()).prop_map(|(v, t)| CodeInput {
                scheme: Scheme::Snomed,
                value: v.to_string(),
                term: t
            }),
            ("[A-Za-z0-9.]{5}", term()).prop_map(|(v, t)| CodeInput {
                scheme: Scheme::ReadV2,
                value: v,
                term: t
            }),
            ("[A-Za-z0-9.]{5}", term()).prop_map(|(v, t)| CodeInput {
                scheme: Scheme::Ctv3,
                value: v,
                term: t
            }),
        ]
    }

    fn entry() -> impl Strategy<Value = CodedEntryInput> {
        let value = (
            "-?[0-9]{1,6}(\\.[0-9]{1,4})?",
            "[A-Za-z%/\\[\\]<>&]{1,12}",
            0usize..5,
        )
            .prop_map(|(value, unit, c)| ValueInput {
                value,
                unit,
                comparator: ["<", "<=", ">", ">="].get(c).copied(),
            });
        (
            code(),
            prop::option::of(code()),
            (-25_000i32..47_000).prop_map(Date),
            prop::option::of(value),
            prop::option::of(term()),
        )
            .prop_map(|(first, second, date, value, text)| {
                let mut codes = vec![first];
                codes.extend(second.filter(|s| s.scheme != codes[0].scheme));
                CodedEntryInput {
                    kind: EntryKind::Event { value },
                    codes,
                    date,
                    text,
                }
            })
    }

    fn render(e: &CodedEntryInput) -> String {
        let mut s = format!("<Event xmlns=\"{NAMESPACE}\">");
        for c in &e.codes {
            s.push_str(&format!(
                "<Code Scheme=\"{}\" Value=\"{}\" Term=\"{}\"/>",
                c.scheme.as_str(),
                escape(&c.value),
                escape(&c.term)
            ));
        }
        s.push_str(&format!("<Date>{}</Date>", e.date));
        if let EntryKind::Event { value: Some(v) } = &e.kind {
            let comparator = v
                .comparator
                .map(|c| format!(" Comparator=\"{}\"", escape(c)))
                .unwrap_or_default();
            s.push_str(&format!(
                "<Value Unit=\"{}\"{comparator}>{}</Value>",
                escape(&v.unit),
                v.value
            ));
        }
        if let Some(t) = &e.text {
            s.push_str(&format!("<FreeText>{}</FreeText>", escape(t)));
        }
        s.push_str("</Event>");
        s
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..400)) {
            every_parser(&body);
        }

        #[test]
        fn xml_like_text_never_panics(body in "[<>/=\"' a-zA-Z0-9&;#!?:\\[\\].-]{0,300}") {
            every_parser(body.as_bytes());
        }

        #[test]
        fn mutated_valid_requests_never_panic(
            entry in entry(),
            at in any::<prop::sample::Index>(),
            cut in any::<bool>(),
            byte in any::<u8>(),
        ) {
            let mut body = render(&entry).into_bytes();
            let i = at.index(body.len());
            if cut { body.truncate(i) } else { body[i] = byte }
            every_parser(&body);
        }

        #[test]
        fn a_written_event_parses_back_to_what_was_written(entry in entry()) {
            prop_assume!((1900..=2100).contains(&entry.date.year()));
            let parsed = parse_coded_entry(render(&entry).as_bytes());
            prop_assert_eq!(parsed, Ok(entry));
        }

        #[test]
        fn dates_round_trip(days in -40_000i32..60_000, minute in 0u16..1440) {
            let date = Date(days);
            let text = date.to_string();
            let expected = (1900..=2100).contains(&date.year()).then_some(date);
            prop_assert_eq!(parse_date(&text), expected);
            let (h, m) = (minute / 60, minute % 60);
            prop_assert_eq!(
                parse_datetime(&format!("{text}T{h:02}:{m:02}")),
                expected.map(|d| DateTime::new(d, minute))
            );
        }
    }
}
