//! Search-index extraction: evaluates each R4 SearchParameter expression on a resource and
//! turns the result into typed index values that every store backend persists the same way.

use crate::datetime::{self, DateRange};
use crate::definitions::{Definitions, SearchParamDef, SearchParamType};
use crate::derived_params::{DerivedRows, derived_params};
use crate::fhirpath::{self, Expr, Item, TypeInfo};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use unicode_normalization::UnicodeNormalization;

/// One indexed value of one search parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// `normalized` is lower-cased with accents removed (for default and `:contains` matching).
    String {
        normalized: String,
        exact: String,
    },
    /// A coded value; `text` (normalised) serves `:text` (a display or CodeableConcept.text).
    Token {
        system: Option<String>,
        code: Option<String>,
        text: Option<String>,
    },
    Date(DateRange),
    /// A literal reference; `target_type`/`target_id` when it names a resource by type and id.
    Reference {
        target_type: Option<String>,
        target_id: Option<String>,
        url: String,
    },
    Number(f64),
    Quantity {
        value: f64,
        system: Option<String>,
        code: Option<String>,
        unit: Option<String>,
    },
    Uri(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// The search parameter code, e.g. `subject`. `:identifier` tokens of reference parameters
    /// are stored under `<code>:identifier`.
    pub param: String,
    pub value: IndexValue,
}

/// Which index entries to extract.
#[derive(Clone, Copy)]
enum Rows {
    All,
    Stored,
}

/// A search parameter ready to evaluate.
#[derive(Debug)]
pub struct CompiledParam {
    pub def: &'static SearchParamDef,
    pub expr: Expr,
    /// Set when a store serves the parameter from other parameters' rows.
    pub derived: Option<DerivedRows>,
}

/// Compiles and caches the expressions of every searchable parameter per resource type.
pub struct Indexer {
    defs: &'static Definitions,
    by_type: RwLock<HashMap<String, Arc<Vec<CompiledParam>>>>,
}

impl Indexer {
    pub fn new(defs: &'static Definitions) -> Self {
        Indexer {
            defs,
            by_type: RwLock::new(HashMap::new()),
        }
    }

    /// The parameters with an expression this server can evaluate, for a resource type.
    /// Composite and special parameters are not indexed.
    pub fn params(&self, resource_type: &str) -> Arc<Vec<CompiledParam>> {
        if !self.defs.is_resource_type(resource_type) {
            return Arc::new(Vec::new()); // nothing to index, and nothing cached for it
        }
        if let Some(found) = self
            .by_type
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(resource_type)
        {
            return found.clone();
        }
        let mut derived = derived_params(self.defs, resource_type);
        let compiled: Vec<CompiledParam> = self
            .defs
            .search_params(resource_type)
            .filter(|d| indexable(d))
            .filter_map(|def| {
                Some(CompiledParam {
                    def,
                    expr: fhirpath::parse(def.expression.as_deref()?).ok()?,
                    derived: derived.remove(&def.code),
                })
            })
            .collect();
        let compiled = Arc::new(compiled);
        self.by_type
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(resource_type.to_string(), compiled.clone());
        compiled
    }

    /// Every index entry of `resource` (which must carry its `resourceType`), derived
    /// parameters included.
    pub fn extract(&self, resource: &Value) -> Vec<IndexEntry> {
        self.entries(resource, &|_: &str| None, Rows::All)
    }

    /// The index entries of `resource` for the parameters named in `codes` only (access
    /// decisions need two or three of a type's parameters, not all of them).
    pub fn extract_params(&self, resource: &Value, codes: &[&str]) -> Vec<IndexEntry> {
        let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for param in self.params(resource_type).iter() {
            if !codes.contains(&param.def.code.as_str()) {
                continue;
            }
            for item in fhirpath::evaluate_with(&param.expr, resource, self.defs, &|_: &str| None) {
                values_of(&param.def.code, param.def.kind, &item, &mut out);
            }
        }
        out
    }

    /// The index entries a store keeps for `resource`, given the target types of references
    /// the resource alone does not reveal (a Bundle's `urn:uuid:` entries) for `resolve()`.
    /// Derived parameters are left out (a store serves them from their sources' rows, see
    /// [`derived_params`]), except the `:identifier` rows of a reference parameter.
    pub fn stored_entries(
        &self,
        resource: &Value,
        references: &fhirpath::ReferenceTypes<'_>,
    ) -> Vec<IndexEntry> {
        self.entries(resource, references, Rows::Stored)
    }

    fn entries(
        &self,
        resource: &Value,
        references: &fhirpath::ReferenceTypes<'_>,
        rows: Rows,
    ) -> Vec<IndexEntry> {
        let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for param in self.params(resource_type).iter() {
            if matches!(param.def.code.as_str(), "_id" | "_lastUpdated") {
                continue; // served from the resource table itself
            }
            let identifiers_only = match (&param.derived, rows) {
                (None, _) | (Some(_), Rows::All) => false,
                (Some(DerivedRows::UnionOf(_)), Rows::Stored) => continue,
                (Some(DerivedRows::TargetsOf { .. }), Rows::Stored) => true,
            };
            let from = out.len();
            for item in fhirpath::evaluate_with(&param.expr, resource, self.defs, references) {
                values_of(&param.def.code, param.def.kind, &item, &mut out);
            }
            if identifiers_only {
                let mut kept = from;
                for i in from..out.len() {
                    if out[i].param.ends_with(":identifier") {
                        out.swap(kept, i);
                        kept += 1;
                    }
                }
                out.truncate(kept);
            }
        }
        out
    }
}

/// Whether this server indexes a parameter of this kind.
pub fn indexable(def: &SearchParamDef) -> bool {
    !matches!(
        def.kind,
        SearchParamType::Composite | SearchParamType::Special
    ) && def.expression.is_some()
}

impl TypeInfo for Definitions {
    fn is_resource_type(&self, name: &str) -> bool {
        Definitions::is_resource_type(self, name)
    }
    fn is_choice_name(&self, name: &str) -> bool {
        self.choice_element_names().contains(name)
    }
    fn is_type_suffix(&self, suffix: &str) -> bool {
        if self.is_data_type(suffix) {
            return true;
        }
        let mut chars = suffix.chars();
        match chars.next() {
            Some(first) => {
                self.is_data_type(&format!("{}{}", first.to_ascii_lowercase(), chars.as_str()))
            }
            None => false,
        }
    }
}

/// Lower case, accents removed: the form string search compares.
pub fn normalize_string(s: &str) -> String {
    s.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

fn push(out: &mut Vec<IndexEntry>, param: &str, value: IndexValue) {
    let entry = IndexEntry {
        param: param.to_string(),
        value,
    };
    if !out.contains(&entry) {
        out.push(entry);
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn opt_string(v: &Value, key: &str) -> Option<String> {
    str_field(v, key).map(str::to_string)
}

fn values_of(param: &str, kind: SearchParamType, item: &Item<'_>, out: &mut Vec<IndexEntry>) {
    let value = match item {
        Item::Boolean(b) if kind == SearchParamType::Token => {
            push(
                out,
                param,
                IndexValue::Token {
                    system: None,
                    code: Some(b.to_string()),
                    text: None,
                },
            );
            return;
        }
        Item::Node { value, .. } => *value,
        _ => return,
    };
    match kind {
        SearchParamType::String => string_values(param, value, out),
        SearchParamType::Token => token_values(param, value, out),
        SearchParamType::Date => date_values(param, value, out),
        SearchParamType::Reference => reference_values(param, value, out),
        SearchParamType::Number => {
            if let Some(n) = number(value) {
                push(out, param, IndexValue::Number(n));
            }
        }
        SearchParamType::Quantity => {
            if let Some(v) = value.get("value").and_then(number) {
                push(
                    out,
                    param,
                    IndexValue::Quantity {
                        value: v,
                        system: opt_string(value, "system"),
                        code: opt_string(value, "code"),
                        unit: opt_string(value, "unit"),
                    },
                );
            }
        }
        SearchParamType::Uri => {
            if let Some(s) = value.as_str() {
                push(out, param, IndexValue::Uri(s.to_string()));
            }
        }
        SearchParamType::Composite | SearchParamType::Special => {}
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().or_else(|| n.to_string().parse().ok()),
        _ => None,
    }
}

fn string_values(param: &str, value: &Value, out: &mut Vec<IndexEntry>) {
    let mut add = |s: &str| {
        if !s.is_empty() {
            push(
                out,
                param,
                IndexValue::String {
                    normalized: normalize_string(s),
                    exact: s.to_string(),
                },
            );
        }
    };
    match value {
        Value::String(s) => add(s),
        Value::Object(map) => {
            // HumanName, Address and similar: every string part is searchable.
            for key in [
                "text",
                "family",
                "given",
                "prefix",
                "suffix",
                "line",
                "city",
                "district",
                "state",
                "postalCode",
                "country",
            ] {
                match map.get(key) {
                    Some(Value::String(s)) => add(s),
                    Some(Value::Array(items)) => {
                        items.iter().filter_map(Value::as_str).for_each(&mut add)
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn token_values(param: &str, value: &Value, out: &mut Vec<IndexEntry>) {
    match value {
        Value::String(s) => push(
            out,
            param,
            IndexValue::Token {
                system: None,
                code: Some(s.clone()),
                text: None,
            },
        ),
        Value::Bool(b) => push(
            out,
            param,
            IndexValue::Token {
                system: None,
                code: Some(b.to_string()),
                text: None,
            },
        ),
        Value::Object(map) => {
            if let Some(Value::Array(codings)) = map.get("coding") {
                // CodeableConcept
                for coding in codings {
                    coding_value(param, coding, out);
                }
                if let Some(text) = str_field(value, "text") {
                    push(
                        out,
                        param,
                        IndexValue::Token {
                            system: None,
                            code: None,
                            text: Some(normalize_string(text)),
                        },
                    );
                }
            } else if map.contains_key("code") {
                coding_value(param, value, out);
            } else if let Some(v) = str_field(value, "value") {
                // Identifier or ContactPoint
                let system = if map.contains_key("use")
                    && map
                        .get("system")
                        .is_some_and(|s| !s.as_str().unwrap_or("").contains(':'))
                {
                    None // a ContactPoint's system is a kind (phone, email), not a namespace
                } else {
                    opt_string(value, "system")
                };
                let text = value
                    .get("type")
                    .and_then(|t| str_field(t, "text"))
                    .map(normalize_string);
                push(
                    out,
                    param,
                    IndexValue::Token {
                        system,
                        code: Some(v.to_string()),
                        text,
                    },
                );
            } else if let Some(text) = str_field(value, "text") {
                push(
                    out,
                    param,
                    IndexValue::Token {
                        system: None,
                        code: None,
                        text: Some(normalize_string(text)),
                    },
                );
            }
        }
        _ => {}
    }
}

fn coding_value(param: &str, coding: &Value, out: &mut Vec<IndexEntry>) {
    let code = opt_string(coding, "code");
    let system = opt_string(coding, "system");
    let text = str_field(coding, "display").map(normalize_string);
    if code.is_some() || text.is_some() {
        push(out, param, IndexValue::Token { system, code, text });
    }
}

fn date_values(param: &str, value: &Value, out: &mut Vec<IndexEntry>) {
    match value {
        Value::String(s) => {
            if let Ok(range) = datetime::parse_range(s) {
                push(out, param, IndexValue::Date(range));
            }
        }
        Value::Object(map) => {
            if map.contains_key("start") || map.contains_key("end") {
                let start = str_field(value, "start").and_then(|s| datetime::parse_range(s).ok());
                let end = str_field(value, "end").and_then(|s| datetime::parse_range(s).ok());
                let range = DateRange {
                    start: start.map_or(DateRange::MIN, |r| r.start),
                    end: end.map_or(DateRange::MAX, |r| r.end),
                };
                push(out, param, IndexValue::Date(range));
            } else if let Some(Value::Array(events)) = map.get("event") {
                // Timing
                for event in events.iter().filter_map(Value::as_str) {
                    if let Ok(range) = datetime::parse_range(event) {
                        push(out, param, IndexValue::Date(range));
                    }
                }
            }
        }
        _ => {}
    }
}

fn reference_values(param: &str, value: &Value, out: &mut Vec<IndexEntry>) {
    match value {
        // canonical or uri used as a reference target
        Value::String(url) => {
            push(
                out,
                param,
                IndexValue::Reference {
                    target_type: None,
                    target_id: None,
                    url: url.clone(),
                },
            );
        }
        Value::Object(_) => {
            if let Some(reference) = str_field(value, "reference") {
                let (target_type, target_id) = split_reference(reference);
                push(
                    out,
                    param,
                    IndexValue::Reference {
                        target_type,
                        target_id,
                        url: reference.to_string(),
                    },
                );
            }
            if let Some(identifier) = value.get("identifier") {
                let code = str_field(identifier, "value").map(str::to_string);
                if code.is_some() {
                    push(
                        out,
                        &format!("{param}:identifier"),
                        IndexValue::Token {
                            system: opt_string(identifier, "system"),
                            code,
                            text: None,
                        },
                    );
                }
            }
        }
        _ => {}
    }
}

/// Splits `Type/id`, `base/Type/id` or `base/Type/id/_history/v` into type and id.
/// Contained (`#x`) and `urn:` references have neither.
pub fn split_reference(reference: &str) -> (Option<String>, Option<String>) {
    if reference.starts_with('#') || reference.starts_with("urn:") {
        return (None, None);
    }
    let path = reference.split(['?', '#']).next().unwrap_or(reference);
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let n = segs.len();
    let (t, i) = if n >= 4 && segs[n - 2] == "_history" {
        (segs[n - 4], segs[n - 3])
    } else if n >= 2 {
        (segs[n - 2], segs[n - 1])
    } else {
        return (None, None);
    };
    if t.starts_with(|c: char| c.is_ascii_uppercase()) {
        (Some(t.to_string()), Some(i.to_string()))
    } else {
        (None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definitions;
    use serde_json::json;

    fn entries(resource: Value) -> Vec<IndexEntry> {
        Indexer::new(definitions::r4()).extract(&resource)
    }

    fn of<'a>(entries: &'a [IndexEntry], param: &str) -> Vec<&'a IndexValue> {
        entries
            .iter()
            .filter(|e| e.param == param)
            .map(|e| &e.value)
            .collect()
    }

    #[test]
    fn a_store_keeps_no_rows_of_derived_parameters_but_their_identifiers() {
        let observation = json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "1234"}]},
            "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "5678"}]}}],
            "subject": {"reference": "Patient/p1"},
            "performer": [{"identifier": {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "u1"}}]
        });
        let indexer = Indexer::new(definitions::r4());
        let all = indexer.extract(&observation);
        let stored = indexer.stored_entries(&observation, &|_: &str| None);
        assert_eq!(of(&all, "combo-code").len(), 2);
        assert!(of(&stored, "combo-code").is_empty());
        assert_eq!(of(&stored, "code").len(), 1);
        assert_eq!(of(&stored, "component-code").len(), 1);
        assert_eq!(of(&all, "patient").len(), 1);
        assert!(of(&stored, "patient").is_empty());
        assert_eq!(of(&stored, "subject").len(), 1);
        let with_identifier = json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"type": "Patient", "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}}
        });
        let all = indexer.extract(&with_identifier);
        let stored = indexer.stored_entries(&with_identifier, &|_: &str| None);
        assert_eq!(
            of(&stored, "patient:identifier"),
            of(&all, "patient:identifier"),
            "a logical reference's identifier rows stay the parameter's own"
        );
    }

    #[test]
    fn observation_is_indexed_by_its_parameters() {
        let e = entries(json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic"}], "text": "BP"},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2020-01-02",
            "valueQuantity": {"value": 120.50, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
        }));
        assert!(of(&e, "code").contains(&&IndexValue::Token {
            system: Some("http://loinc.org".into()),
            code: Some("8480-6".into()),
            text: Some("systolic".into())
        }));
        assert!(of(&e, "code").contains(&&IndexValue::Token {
            system: None,
            code: None,
            text: Some("bp".into())
        }));
        assert_eq!(
            of(&e, "patient"),
            vec![&IndexValue::Reference {
                target_type: Some("Patient".into()),
                target_id: Some("p1".into()),
                url: "Patient/p1".into()
            }]
        );
        assert_eq!(of(&e, "subject").len(), 1);
        assert_eq!(of(&e, "date").len(), 1);
        assert!(
            matches!(of(&e, "value-quantity")[..], [IndexValue::Quantity { value, .. }] if (*value - 120.5).abs() < 1e-9)
        );
        assert_eq!(
            of(&e, "status"),
            vec![&IndexValue::Token {
                system: None,
                code: Some("final".into()),
                text: None
            }]
        );
    }

    #[test]
    fn patient_names_and_identifiers() {
        let e = entries(json!({
            "resourceType": "Patient", "name": [{"family": "Ó Briain", "given": ["Seán"]}],
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9000000009"}],
            "telecom": [{"system": "phone", "value": "01234", "use": "home"}],
            "gender": "male", "birthDate": "1980-02-03", "deceasedBoolean": false
        }));
        assert!(of(&e, "family").contains(&&IndexValue::String {
            normalized: "o briain".into(),
            exact: "Ó Briain".into()
        }));
        assert!(of(&e, "name").len() >= 2);
        assert!(of(&e, "identifier").contains(&&IndexValue::Token {
            system: Some("https://fhir.nhs.uk/Id/nhs-number".into()),
            code: Some("9000000009".into()),
            text: None
        }));
        assert_eq!(
            of(&e, "phone"),
            vec![&IndexValue::Token {
                system: None,
                code: Some("01234".into()),
                text: None
            }]
        );
        assert_eq!(
            of(&e, "deceased"),
            vec![&IndexValue::Token {
                system: None,
                code: Some("false".into()),
                text: None
            }]
        );
    }

    #[test]
    fn every_r4_expression_parses() {
        let defs = definitions::r4();
        let mut failures = Vec::new();
        for rt in defs.resource_types() {
            for def in defs.search_params(rt).filter(|d| indexable(d)) {
                if let Some(expr) = &def.expression
                    && let Err(e) = fhirpath::parse(expr)
                {
                    failures.push(format!("{rt}.{}: {e}", def.code));
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn references_split() {
        assert_eq!(
            split_reference("Patient/1"),
            (Some("Patient".into()), Some("1".into()))
        );
        assert_eq!(
            split_reference("http://x/fhir/Patient/1/_history/3"),
            (Some("Patient".into()), Some("1".into()))
        );
        assert_eq!(split_reference("#c1"), (None, None));
        assert_eq!(split_reference("urn:uuid:abc"), (None, None));
    }
}
