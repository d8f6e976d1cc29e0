//! Query templates: `Observation?patient={Patient}&code=http://loinc.org|8480-6` and
//! `Patient?name={Patient.name.family}&birthdate={Patient.birthDate}`.
//!
//! `{Type}` stands for the id of a resource of that type, `{Type.path.to.field}` for the value at
//! that dotted JSON path in a resource of that type (the first element of any array on the way).
//! All placeholders of one type in one rendering are filled from the same resource.

use crate::rng::SplitMix64;
use serde_json::Value;
use std::collections::BTreeMap;

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Text sent as written (URL-illegal characters percent-encoded).
    Literal(String),
    /// `{Type}`: the id of a resource of that type.
    Id { ty: String },
    /// `{Type.a.b}`: the value at path `a.b` of a resource of that type.
    Field { ty: String, path: Vec<String> },
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub source: String,
    pub parts: Vec<Part>,
}

/// The resources one type's placeholders are filled from: for each resource, its id and the
/// values of the template's paths (in the order of [`Template::paths`]).
#[derive(Clone, Debug, Default)]
pub struct Rows {
    pub rows: Vec<(String, Vec<String>)>,
}

impl Template {
    /// Parses a template. A `{` must open a placeholder `{Type}` or `{Type.path}` closed by `}`.
    pub fn parse(source: &str) -> Result<Template, String> {
        let text = source.trim().trim_start_matches('/');
        if text.is_empty() {
            return Err("empty query template".into());
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest.as_bytes()[open] == b'}' {
                return Err(format!("unmatched '}}' in template {source:?}"));
            }
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("unclosed '{{' in template {source:?}"))?;
            let inner = &after[..close];
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts
                .push(parse_placeholder(inner).map_err(|e| format!("{e} in template {source:?}"))?);
            rest = &after[close + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// The resource types the template refers to, each with the paths it needs (empty when only
    /// `{Type}` is used), in first-use order of paths.
    pub fn types(&self) -> BTreeMap<String, Vec<Vec<String>>> {
        let mut types: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        for part in &self.parts {
            match part {
                Part::Literal(_) => {}
                Part::Id { ty } => {
                    types.entry(ty.clone()).or_default();
                }
                Part::Field { ty, path } => {
                    let paths = types.entry(ty.clone()).or_default();
                    if !paths.contains(path) {
                        paths.push(path.clone());
                    }
                }
            }
        }
        types
    }

    /// The paths of `ty` the template needs, in the order row values are kept in.
    pub fn paths(&self, ty: &str) -> Vec<Vec<String>> {
        self.types().remove(ty).unwrap_or_default()
    }

    /// Renders the template with, for each type it refers to, one row: the resource's id and its
    /// values at the template's paths of that type (in [`Template::paths`] order).
    pub fn render(&self, rows: &BTreeMap<String, (&str, &[String])>) -> Result<String, String> {
        self.render_typed(&self.types(), rows)
    }

    fn render_typed(
        &self,
        types: &BTreeMap<String, Vec<Vec<String>>>,
        rows: &BTreeMap<String, (&str, &[String])>,
    ) -> Result<String, String> {
        let mut out = String::with_capacity(self.source.len() + 64);
        for part in &self.parts {
            match part {
                Part::Literal(text) => encode_literal_into(text, &mut out),
                Part::Id { ty } => {
                    let (id, _) = rows
                        .get(ty)
                        .ok_or_else(|| format!("no {ty} to fill {{{ty}}}"))?;
                    encode_value_into(id, &mut out);
                }
                Part::Field { ty, path } => {
                    let missing = || format!("no value to fill {{{ty}.{}}}", path.join("."));
                    let (_, values) = rows.get(ty).ok_or_else(missing)?;
                    let index = types
                        .get(ty)
                        .and_then(|paths| paths.iter().position(|p| p == path))
                        .ok_or_else(missing)?;
                    let value = values.get(index).ok_or_else(missing)?;
                    encode_value_into(&fhir_escape(value), &mut out);
                }
            }
        }
        Ok(out)
    }

    /// Renders `count` requests, each with resources picked at random from `sources` (one
    /// [`Rows`] per type of [`Template::types`], the values in [`Template::paths`] order).
    pub fn render_pool(
        &self,
        sources: &BTreeMap<String, Rows>,
        count: usize,
        rng: &mut SplitMix64,
    ) -> Result<Vec<String>, String> {
        let types = self.types();
        for ty in types.keys() {
            match sources.get(ty) {
                Some(rows) if !rows.rows.is_empty() => {}
                _ => {
                    return Err(format!(
                        "no {ty} resources to fill template {:?}",
                        self.source
                    ));
                }
            }
        }
        let mut pool = Vec::with_capacity(count);
        for _ in 0..count.max(1) {
            let mut picked: BTreeMap<String, (&str, &[String])> = BTreeMap::new();
            for ty in types.keys() {
                let rows = &sources[ty].rows;
                let (id, values) = &rows[rng.below(rows.len())];
                picked.insert(ty.clone(), (id.as_str(), values.as_slice()));
            }
            pool.push(self.render_typed(&types, &picked)?);
        }
        Ok(pool)
    }
}

fn parse_placeholder(inner: &str) -> Result<Part, String> {
    let mut segments = inner.split('.');
    let ty = segments.next().unwrap_or_default();
    let type_ok = ty.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && ty.chars().all(|c| c.is_ascii_alphanumeric());
    if !type_ok {
        return Err(format!(
            "bad placeholder {{{inner}}}: expected {{Type}} or {{Type.path.to.field}}"
        ));
    }
    let path: Vec<String> = segments.map(str::to_string).collect();
    if path
        .iter()
        .any(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(format!("bad path in placeholder {{{inner}}}"));
    }
    if path.is_empty() {
        Ok(Part::Id { ty: ty.to_string() })
    } else {
        Ok(Part::Field {
            ty: ty.to_string(),
            path,
        })
    }
}

/// The value at a dotted path in a JSON resource, taking the first element of arrays on the way
/// (and at the end). Strings, numbers and booleans are values; objects and nulls are not.
pub fn extract(resource: &Value, path: &[String]) -> Option<String> {
    let mut current = resource;
    for segment in path {
        current = first(current).get(segment.as_str())?;
    }
    match first(current) {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn first(value: &Value) -> &Value {
    match value {
        Value::Array(items) => items.first().unwrap_or(&Value::Null),
        other => other,
    }
}

/// Escapes the characters FHIR search gives a meaning to in parameter values (`\ , $ |`).
pub fn fhir_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '$' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_pct(byte: u8, out: &mut String) {
    out.push('%');
    out.push(HEX[usize::from(byte >> 4)] as char);
    out.push(HEX[usize::from(byte & 15)] as char);
}

/// Percent-encodes a substituted value: everything but the unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`).
pub fn encode_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    encode_value_into(value, &mut out);
    out
}

fn encode_value_into(value: &str, out: &mut String) {
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            push_pct(b, out);
        }
    }
}

/// Percent-encodes the characters of literal template text that may not appear in a URL (space,
/// `"`, `#`, `<`, `>`, `[`, `\`, `]`, `^`, `` ` ``, `{`, `|`, `}`, controls and non-ASCII),
/// keeping the URL's own delimiters and any `%XX` already there.
pub fn encode_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    encode_literal_into(text, &mut out);
    out
}

fn encode_literal_into(text: &str, out: &mut String) {
    for &b in text.as_bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
                    | b'?'
                    | b'%'
            );
        if keep {
            out.push(b as char);
        } else {
            push_pct(b, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_placeholders() {
        let t = Template::parse(
            "Observation?patient={Patient}&code=http://loinc.org|8480-6&date=ge2015-01-01",
        )
        .expect("parse");
        assert_eq!(
            t.parts,
            vec![
                Part::Literal("Observation?patient=".into()),
                Part::Id {
                    ty: "Patient".into()
                },
                Part::Literal("&code=http://loinc.org|8480-6&date=ge2015-01-01".into()),
            ]
        );
        let t =
            Template::parse("/Patient?name={Patient.name.family}&birthdate={Patient.birthDate}")
                .expect("parse");
        assert_eq!(t.types().len(), 1);
        assert_eq!(
            t.paths("Patient"),
            vec![
                vec!["name".to_string(), "family".to_string()],
                vec!["birthDate".to_string()]
            ]
        );
        let t = Template::parse("Patient/{Patient}/$everything").expect("parse");
        assert_eq!(t.parts.len(), 3);
        for bad in [
            "Patient?name={patient}",
            "Patient?x={Patient",
            "Patient?x=}",
            "Patient?x={Patient..a}",
            "Patient?x={}",
            "",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn encodes_values_and_literals() {
        assert_eq!(encode_value("abc-1.2_3~"), "abc-1.2_3~");
        assert_eq!(encode_value("O'Brien & Sons"), "O%27Brien%20%26%20Sons");
        assert_eq!(encode_value("a=b+c/d?e#f"), "a%3Db%2Bc%2Fd%3Fe%23f");
        assert_eq!(encode_value("Zoë"), "Zo%C3%AB");
        assert_eq!(
            encode_literal("code=http://loinc.org|8480-6&date=ge2015-01-01"),
            "code=http://loinc.org%7C8480-6&date=ge2015-01-01"
        );
        assert_eq!(encode_literal("name=a b&x=%20"), "name=a%20b&x=%20");
        assert_eq!(
            encode_literal("x=\"<>\\^`{}#[]"),
            "x=%22%3C%3E%5C%5E%60%7B%7D%23%5B%5D"
        );
        assert_eq!(fhir_escape(r"a,b|c$d\e"), r"a\,b\|c\$d\\e");
    }

    #[test]
    fn extracts_dotted_paths() {
        let patient = json!({
            "resourceType": "Patient", "id": "p1", "birthDate": "1970-01-02", "active": true,
            "name": [{"family": "Smith", "given": ["Ann", "Bea"]}, {"family": "Jones"}],
            "multipleBirthInteger": 2,
            "address": [{"line": []}]
        });
        let p = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            extract(&patient, &p("name.family")).as_deref(),
            Some("Smith")
        );
        assert_eq!(extract(&patient, &p("name.given")).as_deref(), Some("Ann"));
        assert_eq!(
            extract(&patient, &p("birthDate")).as_deref(),
            Some("1970-01-02")
        );
        assert_eq!(extract(&patient, &p("active")).as_deref(), Some("true"));
        assert_eq!(
            extract(&patient, &p("multipleBirthInteger")).as_deref(),
            Some("2")
        );
        assert_eq!(extract(&patient, &p("name")), None);
        assert_eq!(extract(&patient, &p("address.line")), None);
        assert_eq!(extract(&patient, &p("telecom.value")), None);
    }

    #[test]
    fn renders_consistently_per_type() {
        let t = Template::parse(
            "Patient?name={Patient.name.family}&birthdate={Patient.birthDate}&_id={Patient}",
        )
        .expect("parse");
        let mut sources = BTreeMap::new();
        sources.insert(
            "Patient".to_string(),
            Rows {
                rows: vec![
                    ("p1".into(), vec!["O'Neil, Jr".into(), "1970-01-02".into()]),
                    ("p2".into(), vec!["Smith".into(), "1980-03-04".into()]),
                ],
            },
        );
        let pool = t
            .render_pool(&sources, 50, &mut SplitMix64::new(7))
            .expect("render");
        assert_eq!(pool.len(), 50);
        for r in &pool {
            assert!(
                r == "Patient?name=O%27Neil%5C%2C%20Jr&birthdate=1970-01-02&_id=p1"
                    || r == "Patient?name=Smith&birthdate=1980-03-04&_id=p2",
                "{r}"
            );
        }
        assert!(pool.iter().any(|r| r.ends_with("p1")) && pool.iter().any(|r| r.ends_with("p2")));
        // The same seed gives the same pool.
        assert_eq!(
            pool,
            t.render_pool(&sources, 50, &mut SplitMix64::new(7))
                .expect("render")
        );
        // A type without resources is an error.
        let t =
            Template::parse("Observation?patient={Patient}&encounter={Encounter}").expect("parse");
        assert!(t.render_pool(&sources, 1, &mut SplitMix64::new(7)).is_err());
    }
}
