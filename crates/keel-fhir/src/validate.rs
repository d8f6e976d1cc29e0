//! Structural validation of FHIR R4 JSON resources against the base specification.
//!
//! Checks, driven by the R4 snapshots in [`crate::definitions`]:
//!
//! * the value is a JSON object with a known, concrete `resourceType`;
//! * every property is an element of its type (choice elements by type suffix,
//!   `_name` primitive-extension siblings, `resourceType` only at resource roots,
//!   backbone elements by path, content references), `contained` and other
//!   `Resource`-typed elements recursively as resources, extensions as `Extension`;
//! * cardinality: repeating elements are non-empty arrays, single ones are not
//!   arrays, required elements (min >= 1) are present (a primitive's `_name`
//!   counts), at most one variant of a choice element;
//! * JSON types and the R4 lexical rules of every primitive (`boolean`, the
//!   integer types' ranges, `date`/`dateTime`/`instant`/`time` including calendar
//!   validity, `code`, `id`, `uri`, `oid`, `uuid`, `base64Binary` ...);
//! * R4 JSON rules: no empty objects, arrays or strings, `null` only inside
//!   primitive arrays aligned with a non-null `_name` entry (and vice versa);
//! * codes of `required` bindings where the value set can be enumerated
//!   (`Observation.status`, `Patient.gender`, `Condition.clinicalStatus` ...).
//!
//! Invariants (FHIRPath constraints), profiles and reference targets are not checked.
//!
//! The validator allocates only for issues it reports.

use std::fmt;

use serde_json::{Map, Value};

use crate::definitions::{self, Child, Definitions, ElementDef, Primitive, TypeKind};

/// How bad an issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The resource is not valid R4.
    Error,
    /// The resource is valid, but breaks a SHOULD or looks suspicious.
    Warning,
}

/// What kind of problem an issue is; see [`IssueKind::code`] for the
/// OperationOutcome issue type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueKind {
    /// Wrong shape: not an object, unknown element or resource type, array
    /// where a single value belongs (or the reverse), empty object/array, `null`.
    Structure,
    /// A required element (or `resourceType`) is missing.
    Required,
    /// A primitive of the wrong JSON type or breaking its type's lexical rules.
    Value,
    /// A code that is not in the value set of a `required` binding.
    CodeInvalid,
    /// A string longer than R4 allows (1 MB).
    TooLong,
    /// Nesting deeper than the validator follows.
    TooDeep,
}

impl IssueKind {
    /// The R4 `IssueType` code for an OperationOutcome.
    pub fn code(self) -> &'static str {
        match self {
            Self::Structure => "structure",
            Self::Required => "required",
            Self::Value => "value",
            Self::CodeInvalid => "code-invalid",
            Self::TooLong => "too-long",
            Self::TooDeep => "too-costly",
        }
    }
}

/// One problem found in a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationIssue {
    pub severity: Severity,
    pub kind: IssueKind,
    /// FHIRPath-style location, e.g. `Patient.name[0].given[1]`; JSON property
    /// names are used for choice elements (`Observation.valueQuantity`).
    pub location: String,
    pub message: String,
}

impl fmt::Display for ValidationIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{severity} [{}] at {}: {}",
            self.kind.code(),
            self.location,
            self.message
        )
    }
}

/// Whether any issue is an error.
pub fn has_errors(issues: &[ValidationIssue]) -> bool {
    issues.iter().any(|i| i.severity == Severity::Error)
}

/// Validates a resource against the R4 base definitions. An empty result, or
/// one with warnings only (see [`has_errors`]), means the resource is valid.
pub fn validate(resource: &Value) -> Vec<ValidationIssue> {
    validate_with(definitions::r4(), resource)
}

/// [`validate`] against explicit definitions.
pub fn validate_with(defs: &Definitions, resource: &Value) -> Vec<ValidationIssue> {
    let mut v = Validator {
        defs,
        issues: Vec::new(),
        path: Vec::with_capacity(16),
        seen: Vec::with_capacity(64),
        depth: 0,
        element_container: defs.container_of_type("Element"),
    };
    v.resource(resource, true);
    v.issues
}

/// Deeper nesting is reported instead of followed (protects the stack).
const MAX_DEPTH: usize = 96;

/// R4: "strings SHALL NOT exceed 1MB in size".
const MAX_STRING_BYTES: usize = 1024 * 1024;

#[derive(Clone, Copy)]
enum Seg<'a> {
    Name(&'a str),
    Index(usize),
}

struct Validator<'a> {
    defs: &'a Definitions,
    issues: Vec<ValidationIssue>,
    path: Vec<Seg<'a>>,
    /// (element, variant) present in the objects being walked; each object
    /// uses the part above the mark it took on entry.
    seen: Vec<(u32, u16)>,
    depth: usize,
    element_container: Option<u32>,
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Validator<'a> {
    fn location(&self, extra: Option<&str>) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        for seg in &self.path {
            match seg {
                Seg::Name(n) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(n);
                }
                Seg::Index(i) => {
                    let _ = write!(s, "[{i}]");
                }
            }
        }
        if let Some(e) = extra {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(e);
        }
        s
    }

    #[cold]
    fn issue(&mut self, severity: Severity, kind: IssueKind, extra: Option<&str>, message: String) {
        let location = self.location(extra);
        self.issues.push(ValidationIssue {
            severity,
            kind,
            location,
            message,
        });
    }

    #[cold]
    fn error(&mut self, kind: IssueKind, message: String) {
        self.issue(Severity::Error, kind, None, message);
    }

    /// Validates a resource; at the top level its type starts the location.
    fn resource(&mut self, value: &'a Value, top: bool) {
        let Some(obj) = value.as_object() else {
            self.error(
                IssueKind::Structure,
                format!(
                    "a resource must be a JSON object, found {}",
                    json_kind(value)
                ),
            );
            return;
        };
        let rt = match obj.get("resourceType") {
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                self.issue(
                    Severity::Error,
                    IssueKind::Structure,
                    Some("resourceType"),
                    format!("resourceType must be a string, found {}", json_kind(other)),
                );
                return;
            }
            None => {
                self.issue(
                    Severity::Error,
                    IssueKind::Required,
                    Some("resourceType"),
                    "missing resourceType".to_string(),
                );
                return;
            }
        };
        let container = match self.defs.container_of_type(rt) {
            Some(c) if self.defs.is_resource_type(rt) => c,
            _ => {
                self.issue(
                    Severity::Error,
                    IssueKind::Structure,
                    Some("resourceType"),
                    format!("unknown resource type '{rt}'"),
                );
                return;
            }
        };
        if top {
            self.path.push(Seg::Name(rt));
        }
        self.object(obj, container, true);
        if top {
            self.path.pop();
        }
    }

    /// Validates the properties of an object whose element definitions are `container`.
    fn object(&mut self, obj: &'a Map<String, Value>, container: u32, resource_root: bool) {
        if obj.is_empty() {
            self.error(
                IssueKind::Structure,
                "empty objects are not allowed".to_string(),
            );
            return;
        }
        if self.depth >= MAX_DEPTH {
            self.error(
                IssueKind::TooDeep,
                format!("nesting deeper than {MAX_DEPTH} levels is not validated"),
            );
            return;
        }
        self.depth += 1;
        let defs = self.defs;
        let c = &defs.containers[container as usize];
        let mark = self.seen.len();
        for (key, value) in obj {
            if let Some(base) = key.strip_prefix('_') {
                match c.children.get(base) {
                    Some(&child) if child.variant != Child::NO_VARIANT => {
                        let elem = &defs.elements[child.elem as usize];
                        match elem.kinds.get(usize::from(child.variant)) {
                            Some(TypeKind::Primitive(_)) => {
                                self.note_present(elem, child, key, mark);
                                self.primitive_extension(obj, key, base, value, elem);
                            }
                            _ => self.issue(
                                Severity::Error,
                                IssueKind::Structure,
                                Some(key),
                                format!(
                                    "'{key}' is not allowed: '{base}' is not a primitive element"
                                ),
                            ),
                        }
                    }
                    _ => self.unknown(key, c.path.as_str()),
                }
                continue;
            }
            let Some(&child) = c.children.get(key.as_str()) else {
                if !(resource_root && key == "resourceType") {
                    self.unknown(key, c.path.as_str());
                }
                continue;
            };
            if child.variant == Child::NO_VARIANT {
                let elem = &defs.elements[child.elem as usize];
                let names: Vec<String> = elem.choice_names().collect();
                self.issue(
                    Severity::Error,
                    IssueKind::Structure,
                    Some(key),
                    format!(
                        "'{key}' needs its type as a suffix: one of {}",
                        names.join(", ")
                    ),
                );
                continue;
            }
            let elem = &defs.elements[child.elem as usize];
            self.note_present(elem, child, key, mark);
            self.path.push(Seg::Name(key));
            self.element_value(obj, key, value, elem, usize::from(child.variant));
            self.path.pop();
        }
        for &r in &c.required {
            if !self.seen[mark..].iter().any(|&(e, _)| e == r) {
                let elem = &defs.elements[r as usize];
                self.issue(
                    Severity::Error,
                    IssueKind::Required,
                    Some(&elem.name),
                    format!(
                        "missing required element '{}' (min {})",
                        elem.name, elem.min
                    ),
                );
            }
        }
        self.seen.truncate(mark);
        self.depth -= 1;
    }

    #[cold]
    fn unknown(&mut self, key: &str, container_path: &str) {
        self.issue(
            Severity::Error,
            IssueKind::Structure,
            Some(key),
            format!("unknown element '{key}' in {container_path}"),
        );
    }

    /// Records that an element is present and reports a second choice variant.
    fn note_present(&mut self, elem: &ElementDef, child: Child, key: &str, mark: usize) {
        if elem.choice
            && self.seen[mark..]
                .iter()
                .any(|&(e, v)| e == child.elem && v != child.variant)
        {
            self.issue(
                Severity::Error,
                IssueKind::Structure,
                Some(key),
                format!("only one type of {} may be present", elem.name),
            );
        }
        self.seen.push((child.elem, child.variant));
    }

    /// Validates the value of element `key` (the location already ends in `key`).
    fn element_value(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        value: &'a Value,
        elem: &'a ElementDef,
        variant: usize,
    ) {
        if elem.is_array() {
            let Value::Array(items) = value else {
                self.error(
                    IssueKind::Structure,
                    format!(
                        "'{key}' repeats (max {}) and must be a JSON array, found {}",
                        elem.max.map_or_else(|| "*".to_string(), |m| m.to_string()),
                        json_kind(value)
                    ),
                );
                return;
            };
            if items.is_empty() {
                self.error(
                    IssueKind::Structure,
                    "empty arrays are not allowed".to_string(),
                );
                return;
            }
            if (items.len() as u64) < u64::from(elem.min) {
                self.error(
                    IssueKind::Required,
                    format!(
                        "'{key}' needs at least {} items, found {}",
                        elem.min,
                        items.len()
                    ),
                );
            }
            if let Some(max) = elem.max
                && items.len() as u64 > u64::from(max)
            {
                self.error(
                    IssueKind::Structure,
                    format!("'{key}' allows at most {max} items, found {}", items.len()),
                );
            }
            let is_primitive = matches!(elem.kinds.get(variant), Some(TypeKind::Primitive(_)));
            for (i, item) in items.iter().enumerate() {
                self.path.push(Seg::Index(i));
                if item.is_null() {
                    if !is_primitive {
                        self.error(IssueKind::Structure, "null is not allowed".to_string());
                    } else if !sibling_item_present(obj, &format!("_{key}"), i) {
                        self.error(
                            IssueKind::Structure,
                            format!(
                                "null is only allowed in '{key}' where '_{key}' has an entry at the same index"
                            ),
                        );
                    }
                } else {
                    self.single(item, elem, variant);
                }
                self.path.pop();
            }
        } else {
            match value {
                Value::Array(_) => self.error(
                    IssueKind::Structure,
                    format!("'{key}' has max 1 and must not be a JSON array"),
                ),
                Value::Null => self.error(IssueKind::Structure, "null is not allowed".to_string()),
                _ => self.single(value, elem, variant),
            }
        }
    }

    fn single(&mut self, value: &'a Value, elem: &'a ElementDef, variant: usize) {
        match elem.kinds.get(variant) {
            Some(&TypeKind::Primitive(p)) => self.primitive(value, p, elem),
            Some(&TypeKind::Complex(c)) => {
                let Value::Object(o) = value else {
                    let type_name = elem
                        .types
                        .get(variant)
                        .map_or("object", |t| t.code.as_str());
                    self.error(
                        IssueKind::Structure,
                        format!(
                            "expected a JSON object ({type_name}), found {}",
                            json_kind(value)
                        ),
                    );
                    return;
                };
                self.object(o, c, false);
                if let Some(vs) = elem.value_set {
                    let code = elem.types.get(variant).map(|t| t.code.as_str());
                    self.coded_binding(o, vs, code);
                }
            }
            Some(TypeKind::Resource) => self.resource(value, false),
            None => {}
        }
    }

    /// `_name` for a primitive element: an Element (id, extension), or an array
    /// of them / null aligned with the primitive array.
    fn primitive_extension(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &'a str,
        base: &str,
        value: &'a Value,
        elem: &ElementDef,
    ) {
        let Some(element_container) = self.element_container else {
            return;
        };
        self.path.push(Seg::Name(key));
        if elem.is_array() {
            match value {
                Value::Array(items) => {
                    if items.is_empty() {
                        self.error(
                            IssueKind::Structure,
                            "empty arrays are not allowed".to_string(),
                        );
                    }
                    let values = obj.get(base);
                    if let Some(Value::Array(values)) = values
                        && values.len() != items.len()
                    {
                        self.error(
                            IssueKind::Structure,
                            format!(
                                "'{key}' has {} items but '{base}' has {}; they must align",
                                items.len(),
                                values.len()
                            ),
                        );
                    }
                    for (i, item) in items.iter().enumerate() {
                        self.path.push(Seg::Index(i));
                        match item {
                            Value::Null => {
                                if !sibling_item_present(obj, base, i) {
                                    self.error(
                                        IssueKind::Structure,
                                        format!(
                                            "null in '{key}' needs a value in '{base}' at the same index"
                                        ),
                                    );
                                }
                            }
                            Value::Object(o) => self.object(o, element_container, false),
                            other => self.error(
                                IssueKind::Structure,
                                format!(
                                    "expected an object (id, extension) or null, found {}",
                                    json_kind(other)
                                ),
                            ),
                        }
                        self.path.pop();
                    }
                }
                other => self.error(
                    IssueKind::Structure,
                    format!(
                        "'{key}' must be a JSON array aligned with '{base}', found {}",
                        json_kind(other)
                    ),
                ),
            }
        } else {
            match value {
                Value::Object(o) => self.object(o, element_container, false),
                other => self.error(
                    IssueKind::Structure,
                    format!(
                        "'{key}' must be an object (id, extension), found {}",
                        json_kind(other)
                    ),
                ),
            }
        }
        self.path.pop();
    }

    fn primitive(&mut self, value: &'a Value, p: Primitive, elem: &ElementDef) {
        match p {
            Primitive::Boolean => {
                if !value.is_boolean() {
                    self.wrong_json_type(value, p, "a JSON boolean");
                }
            }
            Primitive::Integer | Primitive::UnsignedInt | Primitive::PositiveInt => {
                let Value::Number(n) = value else {
                    self.wrong_json_type(value, p, "a JSON number");
                    return;
                };
                let text = n.as_str();
                let (min, what) = match p {
                    Primitive::Integer => (i64::from(i32::MIN), "an integer"),
                    Primitive::UnsignedInt => (0, "an integer >= 0"),
                    _ => (1, "an integer >= 1"),
                };
                match parse_integer(text) {
                    Some(i) if i >= min && i <= i64::from(i32::MAX) => {}
                    Some(_) => self.error(
                        IssueKind::Value,
                        format!("{text} is out of range for {}", p.name()),
                    ),
                    None => self.error(
                        IssueKind::Value,
                        format!("{text} is not a valid {} ({what})", p.name()),
                    ),
                }
            }
            Primitive::Decimal => {
                if !value.is_number() {
                    self.wrong_json_type(value, p, "a JSON number");
                }
            }
            _ => {
                let Value::String(s) = value else {
                    self.wrong_json_type(value, p, "a JSON string");
                    return;
                };
                self.string_primitive(s, p, elem);
            }
        }
    }

    #[cold]
    fn wrong_json_type(&mut self, value: &Value, p: Primitive, expected: &str) {
        self.error(
            IssueKind::Value,
            format!(
                "{} must be {expected}, found {}",
                p.name(),
                json_kind(value)
            ),
        );
    }

    fn string_primitive(&mut self, s: &str, p: Primitive, elem: &ElementDef) {
        if s.is_empty() {
            self.error(
                IssueKind::Value,
                format!("empty strings are not allowed ({})", p.name()),
            );
            return;
        }
        let ok = match p {
            Primitive::String | Primitive::Markdown => {
                if s.len() > MAX_STRING_BYTES {
                    self.error(
                        IssueKind::TooLong,
                        format!("{} is {} bytes; the limit is 1 MB", p.name(), s.len()),
                    );
                }
                if s.bytes()
                    .any(|b| b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n'))
                {
                    self.issue(
                        Severity::Warning,
                        IssueKind::Value,
                        None,
                        "strings should not contain control characters other than tab, CR and LF"
                            .to_string(),
                    );
                }
                true
            }
            Primitive::Code => is_code(s),
            Primitive::Id => is_id(s),
            Primitive::Uri | Primitive::Url | Primitive::Canonical => is_uri(s),
            Primitive::Oid => is_oid(s),
            Primitive::Uuid => is_uuid(s),
            Primitive::Base64Binary => is_base64(s),
            Primitive::Instant => is_instant(s),
            Primitive::Date => is_date(s),
            Primitive::DateTime => is_date_time(s),
            Primitive::Time => is_time(s),
            Primitive::Xhtml => is_xhtml_div(s),
            Primitive::Boolean
            | Primitive::Integer
            | Primitive::UnsignedInt
            | Primitive::PositiveInt
            | Primitive::Decimal => true,
        };
        if !ok {
            self.error(
                IssueKind::Value,
                format!("'{}' is not a valid {}", truncate(s, 80), p.name()),
            );
            return;
        }
        if let Some(vs) = elem.value_set
            && p == Primitive::Code
        {
            let vs = &self.defs.value_sets[vs as usize];
            if vs.contains_code(s) == Some(false) {
                self.error(
                    IssueKind::CodeInvalid,
                    format!(
                        "'{}' is not in the required value set {}",
                        truncate(s, 80),
                        vs.url
                    ),
                );
            }
        }
    }

    /// Required bindings on Coding / CodeableConcept: a coding from one of the
    /// value set's systems must carry one of its codes; a CodeableConcept with
    /// no coding from the value set gets a warning.
    fn coded_binding(&mut self, obj: &'a Map<String, Value>, vs: u32, type_code: Option<&str>) {
        let defs = self.defs;
        let vs = &defs.value_sets[vs as usize];
        if !vs.is_enumerable() {
            return;
        }
        match type_code {
            Some("Coding") => {
                self.check_coding(obj, vs);
            }
            Some("CodeableConcept") => {
                let mut any_in = false;
                if let Some(Value::Array(codings)) = obj.get("coding") {
                    for (i, coding) in codings.iter().enumerate() {
                        if let Value::Object(c) = coding {
                            self.path.push(Seg::Name("coding"));
                            self.path.push(Seg::Index(i));
                            any_in |= self.check_coding(c, vs);
                            self.path.pop();
                            self.path.pop();
                        }
                    }
                }
                if !any_in {
                    self.issue(
                        Severity::Warning,
                        IssueKind::CodeInvalid,
                        None,
                        format!("no coding is from the required value set {}", vs.url),
                    );
                }
            }
            _ => {}
        }
    }

    /// Returns whether the coding is in the value set.
    fn check_coding(&mut self, coding: &Map<String, Value>, vs: &definitions::ValueSetDef) -> bool {
        let (Some(Value::String(system)), Some(Value::String(code))) =
            (coding.get("system"), coding.get("code"))
        else {
            return false;
        };
        if !vs.includes_system(system) {
            return false;
        }
        if vs.contains(system, code) == Some(true) {
            return true;
        }
        self.issue(
            Severity::Error,
            IssueKind::CodeInvalid,
            Some("code"),
            format!(
                "'{}' is not a code of {system} in the required value set {}",
                truncate(code, 80),
                vs.url
            ),
        );
        false
    }
}

fn sibling_item_present(obj: &Map<String, Value>, key: &str, i: usize) -> bool {
    match obj.get(key) {
        Some(Value::Array(items)) => items.get(i).is_some_and(|v| !v.is_null()),
        _ => false,
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

// ---------------------------------------------------------------------------
// Lexical rules of the R4 primitive types (the regexes of the specification,
// hand-written). `\s` there is the XML Schema / Java class [ \t\n\x0B\f\r].

fn is_regex_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `-?([0]|([1-9][0-9]*))`, as an i64 (None when malformed or beyond i64).
fn parse_integer(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let b = digits.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    if b.len() > 18 {
        // beyond any 32-bit value: report as out of range
        return Some(if s.starts_with('-') {
            i64::MIN
        } else {
            i64::MAX
        });
    }
    s.parse().ok()
}

/// `[^\s]+(\s[^\s]+)*`: no leading, trailing or doubled whitespace.
pub(crate) fn is_code(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || is_regex_space(b[0]) || is_regex_space(b[b.len() - 1]) {
        return false;
    }
    !b.windows(2)
        .any(|w| is_regex_space(w[0]) && is_regex_space(w[1]))
}

/// `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `\S*` (and non-empty, as JSON requires).
fn is_uri(s: &str) -> bool {
    !s.is_empty() && !s.bytes().any(is_regex_space)
}

/// `urn:oid:[0-2](\.(0|[1-9][0-9]*))+`.
fn is_oid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:oid:") else {
        return false;
    };
    let mut parts = rest.split('.');
    match parts.next() {
        Some("0" | "1" | "2") => {}
        _ => return false,
    }
    let mut count = 0;
    for p in parts {
        let b = p.as_bytes();
        if b.is_empty() || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
            return false;
        }
        count += 1;
    }
    count > 0
}

/// `urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`.
fn is_uuid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    let b = rest.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

/// `(\s*([0-9a-zA-Z\+/=]){4}\s*)+`.
fn is_base64(s: &str) -> bool {
    let mut n = 0usize;
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            n += 1;
        } else if !is_regex_space(b) {
            return false;
        }
    }
    n > 0 && n.is_multiple_of(4)
}

/// Narrative XHTML: a `div` element (content is not parsed).
fn is_xhtml_div(s: &str) -> bool {
    let t = s.trim_start();
    let t = t.strip_prefix("<?xml").map_or(t, |rest| {
        rest.find("?>")
            .map_or(rest, |end| rest[end + 2..].trim_start())
    });
    t.starts_with("<div") || t.starts_with("<xhtml:div") || t.starts_with("<h:div")
}

struct Cursor<'s> {
    b: &'s [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let end = self.i + n;
        let slice = self.b.get(self.i..end)?;
        let mut v = 0u32;
        for &c in slice {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.i = end;
        Some(v)
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

/// Parses `YYYY(-MM(-DD)?)?`; returns how many parts (1..=3) were present.
fn date_part(c: &mut Cursor<'_>) -> Option<u8> {
    let year = c.digits(4)?;
    if year == 0 {
        return None;
    }
    if !c.eat(b'-') {
        return Some(1);
    }
    let month = c.digits(2)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    if !c.eat(b'-') {
        return Some(2);
    }
    let day = c.digits(2)?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(3)
}

/// `hh:mm:ss(\.[0-9]+)?`
fn time_part(c: &mut Cursor<'_>) -> Option<()> {
    let h = c.digits(2)?;
    if h > 23 || !c.eat(b':') {
        return None;
    }
    let m = c.digits(2)?;
    if m > 59 || !c.eat(b':') {
        return None;
    }
    let s = c.digits(2)?;
    if s > 60 {
        return None;
    }
    if c.eat(b'.') {
        let start = c.i;
        while c.b.get(c.i).is_some_and(u8::is_ascii_digit) {
            c.i += 1;
        }
        if c.i == start {
            return None;
        }
    }
    Some(())
}

/// `Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)`
fn zone_part(c: &mut Cursor<'_>) -> Option<()> {
    if c.eat(b'Z') {
        return Some(());
    }
    if !(c.eat(b'+') || c.eat(b'-')) {
        return None;
    }
    let h = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    let m = c.digits(2)?;
    if h > 14 || m > 59 || (h == 14 && m != 0) {
        return None;
    }
    Some(())
}

/// R4 `date`: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
pub fn is_date(s: &str) -> bool {
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    date_part(&mut c).is_some() && c.done()
}

/// R4 `dateTime`: a date, or a full date with time and time zone.
pub fn is_date_time(s: &str) -> bool {
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    let Some(parts) = date_part(&mut c) else {
        return false;
    };
    if c.done() {
        return true;
    }
    parts == 3
        && c.eat(b'T')
        && time_part(&mut c).is_some()
        && zone_part(&mut c).is_some()
        && c.done()
}

/// R4 `instant`: full date, time and time zone.
pub fn is_instant(s: &str) -> bool {
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    date_part(&mut c) == Some(3)
        && c.eat(b'T')
        && time_part(&mut c).is_some()
        && zone_part(&mut c).is_some()
        && c.done()
}

/// R4 `time`: `hh:mm:ss(.fff)`.
pub fn is_time(s: &str) -> bool {
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    time_part(&mut c).is_some() && c.done()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod corpus_tests;
