//! Parses a FHIR R4 search request (query parameters) into a typed [`SearchQuery`] that store
//! backends compile into their own query language. Parameter meaning comes only from the R4
//! SearchParameter definitions.

use crate::datetime::{self, DateRange};
use crate::definitions::{Definitions, SearchParamDef, SearchParamType};
use crate::index::{indexable, normalize_string};

/// Default and maximum page sizes.
pub const DEFAULT_COUNT: usize = 50;
pub const MAX_COUNT: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub resource_type: String,
    /// All must hold (AND); each criterion ORs its own values.
    pub criteria: Vec<Criterion>,
    pub sort: Vec<SortKey>,
    pub count: usize,
    pub offset: usize,
    pub includes: Vec<Include>,
    pub revincludes: Vec<Include>,
    pub summary_count: bool,
    pub total: TotalMode,
    /// Parameters that were ignored, with the reason (reported as warnings).
    pub ignored: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalMode {
    None,
    Accurate,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Criterion {
    /// `_id`
    Id(Vec<String>),
    /// `_lastUpdated`
    LastUpdated(Vec<DateValue>),
    /// A parameter of the searched type; values are ORed.
    Match {
        param: ParamRef,
        values: Vec<SearchValue>,
    },
    /// `:not` on a token: no value of the parameter matches any of these.
    NotToken {
        param: ParamRef,
        values: Vec<TokenValue>,
    },
    /// `:missing=true|false`
    Missing { param: ParamRef, missing: bool },
    /// `ref:Type.param=...`: the reference parameter points at a `target_type` resource that
    /// satisfies `inner`.
    Chain {
        param: ParamRef,
        target_type: String,
        inner: Box<Criterion>,
    },
    /// `_has:Type:ref:param=...`: some `source_type` resource refers to this one through `reference`
    /// and satisfies `inner`.
    Has {
        source_type: String,
        reference: ParamRef,
        inner: Box<Criterion>,
    },
    /// At least one holds. Never parsed from a request: access control adds it.
    AnyOf(Vec<Criterion>),
    /// All hold. Never parsed from a request: access control adds it.
    AllOf(Vec<Criterion>),
}

/// A search parameter of a resource type, as stored in the index.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamRef {
    pub resource_type: String,
    /// The index key: the parameter code, or `<code>:identifier` for reference identifiers.
    pub code: String,
    pub kind: SearchParamType,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SearchValue {
    /// Default (starts with, normalised), `:exact` or `:contains`.
    String {
        mode: StringMode,
        value: String,
    },
    Token(TokenValue),
    /// `:text`: the normalised text starts with this.
    TokenText(String),
    Date(DateValue),
    Reference {
        target_type: Option<String>,
        id: Option<String>,
        url: String,
    },
    Number {
        prefix: Prefix,
        value: f64,
        low: f64,
        high: f64,
    },
    Quantity {
        prefix: Prefix,
        value: f64,
        low: f64,
        high: f64,
        system: Option<String>,
        code: Option<String>,
    },
    Uri {
        mode: UriMode,
        value: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMode {
    StartsWith,
    Exact,
    Contains,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriMode {
    Exact,
    Below,
    Above,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenValue {
    /// `None`: any system. `Some(None)`: no system (`|code`). `Some(Some(s))`: that system.
    pub system: Option<Option<String>>,
    /// `None` with a system: any code in that system (`system|`).
    pub code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DateValue {
    pub prefix: Prefix,
    pub range: DateRange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub by: SortBy,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SortBy {
    Id,
    LastUpdated,
    Param(ParamRef),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Include {
    /// The resource type holding the reference parameter.
    pub source_type: String,
    pub param: ParamRef,
    /// Restricts the target type (`_include=Observation:subject:Patient`).
    pub target_type: Option<String>,
    pub iterate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("search parameter '{param}': {message}")]
    Invalid { param: String, message: String },
    #[error("unknown search parameter '{0}'")]
    Unknown(String),
}

/// How unknown or unsupported parameters are treated (`Prefer: handling=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    Lenient,
    Strict,
}

/// Parameters that are not search criteria and that this layer ignores (handled elsewhere).
const RESULT_PARAMS_HANDLED_ELSEWHERE: &[&str] = &["_format", "_pretty", "_elements"];

pub fn parse_query(
    defs: &Definitions,
    resource_type: &str,
    pairs: &[(String, String)],
    handling: Handling,
) -> Result<SearchQuery, SearchError> {
    let mut query = SearchQuery {
        resource_type: resource_type.to_string(),
        criteria: Vec::new(),
        sort: Vec::new(),
        count: DEFAULT_COUNT,
        offset: 0,
        includes: Vec::new(),
        revincludes: Vec::new(),
        summary_count: false,
        total: TotalMode::Accurate,
        ignored: Vec::new(),
    };
    let parser = QueryParser { defs };
    for (name, value) in pairs {
        let result = match name.as_str() {
            "_count" => parse_usize(name, value).map(|n| query.count = n.min(MAX_COUNT)),
            "_offset" => parse_usize(name, value).map(|n| query.offset = n),
            "_sort" => parser.sort(resource_type, value).map(|s| query.sort = s),
            "_summary" => match value.as_str() {
                "count" => {
                    query.summary_count = true;
                    Ok(())
                }
                "false" => Ok(()),
                _ => Err(SearchError::Invalid {
                    param: name.clone(),
                    message: format!("_summary={value} is not supported (count and false are)"),
                }),
            },
            "_total" => match value.as_str() {
                "none" => {
                    query.total = TotalMode::None;
                    Ok(())
                }
                "accurate" | "estimate" => Ok(()),
                _ => Err(SearchError::Invalid {
                    param: name.clone(),
                    message: "expected none, estimate or accurate".into(),
                }),
            },
            n if n == "_include" || n == "_include:iterate" || n == "_include:recurse" => parser
                .include(value, n != "_include", false, resource_type)
                .map(|i| query.includes.push(i)),
            n if n == "_revinclude" || n == "_revinclude:iterate" || n == "_revinclude:recurse" => {
                parser
                    .include(value, n != "_revinclude", true, resource_type)
                    .map(|i| query.revincludes.push(i))
            }
            n if RESULT_PARAMS_HANDLED_ELSEWHERE.contains(&n) => Ok(()),
            _ => parser
                .criterion(resource_type, name, value)
                .map(|c| query.criteria.push(c)),
        };
        match result {
            Ok(()) => {}
            Err(SearchError::Unknown(param)) if handling == Handling::Lenient => {
                query
                    .ignored
                    .push(format!("unknown search parameter '{param}' was ignored"));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(query)
}

fn parse_usize(name: &str, value: &str) -> Result<usize, SearchError> {
    value.parse().map_err(|_| SearchError::Invalid {
        param: name.into(),
        message: format!("'{value}' is not a non-negative integer"),
    })
}

struct QueryParser<'d> {
    defs: &'d Definitions,
}

impl QueryParser<'_> {
    fn param(&self, resource_type: &str, code: &str) -> Result<&SearchParamDef, SearchError> {
        self.defs
            .search_param(resource_type, code)
            .filter(|d| indexable(d) || matches!(code, "_id" | "_lastUpdated"))
            .ok_or_else(|| SearchError::Unknown(format!("{resource_type}:{code}")))
    }

    fn param_ref(&self, resource_type: &str, code: &str) -> Result<ParamRef, SearchError> {
        let def = self.param(resource_type, code)?;
        Ok(ParamRef {
            resource_type: resource_type.to_string(),
            code: def.code.clone(),
            kind: def.kind,
        })
    }

    fn criterion(
        &self,
        resource_type: &str,
        name: &str,
        value: &str,
    ) -> Result<Criterion, SearchError> {
        if let Some(rest) = name.strip_prefix("_has:") {
            return self.has(resource_type, name, rest, value);
        }
        // Chain: split at the first '.' of the name.
        if let Some((head, tail)) = name.split_once('.') {
            let (code, modifier) = split_modifier(head);
            let param = self.param_ref(resource_type, code)?;
            if param.kind != SearchParamType::Reference {
                return Err(invalid(name, "only reference parameters can be chained"));
            }
            let def = self.param(resource_type, code)?;
            let targets: Vec<String> = match modifier {
                Some(t) => vec![t.to_string()],
                None => def.targets.clone(),
            };
            let chained_code = tail.split([':', '.']).next().unwrap_or(tail);
            let viable: Vec<&String> = targets
                .iter()
                .filter(|t| self.defs.search_param(t, chained_code).is_some())
                .collect();
            return match viable.as_slice() {
                [target] => Ok(Criterion::Chain {
                    param,
                    target_type: (*target).clone(),
                    inner: Box::new(self.criterion(target, tail, value)?),
                }),
                [] => Err(SearchError::Unknown(name.to_string())),
                _ => Err(invalid(
                    name,
                    "the chain is ambiguous: name the target type, e.g. subject:Patient.name",
                )),
            };
        }
        let (code, modifier) = split_modifier(name);
        match code {
            "_id" => {
                return Ok(Criterion::Id(
                    split_or(value).into_iter().map(|v| unescape(&v)).collect(),
                ));
            }
            "_lastUpdated" => {
                let values = split_or(value)
                    .iter()
                    .map(|v| date_value(name, v))
                    .collect::<Result<_, _>>()?;
                return Ok(Criterion::LastUpdated(values));
            }
            _ => {}
        }
        let def = self.param(resource_type, code)?;
        let param = ParamRef {
            resource_type: resource_type.to_string(),
            code: def.code.clone(),
            kind: def.kind,
        };
        if modifier == Some("missing") {
            let missing = match value {
                "true" => true,
                "false" => false,
                _ => return Err(invalid(name, "missing takes true or false")),
            };
            return Ok(Criterion::Missing { param, missing });
        }
        let raw_values = split_or(value);
        if raw_values.iter().any(|v| v.is_empty()) {
            return Err(invalid(name, "empty value"));
        }
        let values = |f: &dyn Fn(&str) -> Result<SearchValue, SearchError>| -> Result<Vec<SearchValue>, SearchError> {
            raw_values.iter().map(|v| f(v)).collect()
        };
        let unsupported = |m: &str| {
            invalid(
                name,
                &format!(
                    "modifier :{m} is not supported for {:?} parameters",
                    def.kind
                ),
            )
        };
        let values = match (def.kind, modifier) {
            (SearchParamType::String, None) => values(&|v| Ok(string(StringMode::StartsWith, v)))?,
            (SearchParamType::String, Some("exact")) => {
                values(&|v| Ok(string(StringMode::Exact, v)))?
            }
            (SearchParamType::String, Some("contains")) => {
                values(&|v| Ok(string(StringMode::Contains, v)))?
            }
            (SearchParamType::Token, None) => values(&|v| Ok(SearchValue::Token(token(v))))?,
            (SearchParamType::Token, Some("text")) => {
                values(&|v| Ok(SearchValue::TokenText(normalize_string(&unescape(v)))))?
            }
            (SearchParamType::Token, Some("not")) => {
                return Ok(Criterion::NotToken {
                    param,
                    values: raw_values.iter().map(|v| token(v)).collect(),
                });
            }
            (SearchParamType::Date, None) => {
                values(&|v| Ok(SearchValue::Date(date_value(name, v)?)))?
            }
            (SearchParamType::Number, None) => values(&|v| number_value(name, v))?,
            (SearchParamType::Quantity, None) => values(&|v| quantity_value(name, v))?,
            (SearchParamType::Uri, None) => values(&|v| {
                Ok(SearchValue::Uri {
                    mode: UriMode::Exact,
                    value: unescape(v),
                })
            })?,
            (SearchParamType::Uri, Some("below")) => values(&|v| {
                Ok(SearchValue::Uri {
                    mode: UriMode::Below,
                    value: unescape(v),
                })
            })?,
            (SearchParamType::Uri, Some("above")) => values(&|v| {
                Ok(SearchValue::Uri {
                    mode: UriMode::Above,
                    value: unescape(v),
                })
            })?,
            (SearchParamType::Reference, Some("identifier")) => {
                let param = ParamRef {
                    code: format!("{}:identifier", def.code),
                    kind: SearchParamType::Token,
                    ..param
                };
                let values = raw_values
                    .iter()
                    .map(|v| SearchValue::Token(token(v)))
                    .collect();
                return Ok(Criterion::Match { param, values });
            }
            (SearchParamType::Reference, None) => values(&|v| Ok(reference_value(def, None, v)))?,
            (SearchParamType::Reference, Some(t)) if self.defs.is_resource_type(t) => {
                values(&|v| Ok(reference_value(def, Some(t), v)))?
            }
            (_, Some(m)) => return Err(unsupported(m)),
            (SearchParamType::Composite | SearchParamType::Special, None) => {
                return Err(SearchError::Unknown(name.to_string()));
            }
        };
        Ok(Criterion::Match { param, values })
    }

    fn has(
        &self,
        resource_type: &str,
        name: &str,
        rest: &str,
        value: &str,
    ) -> Result<Criterion, SearchError> {
        let mut parts = rest.splitn(3, ':');
        let (Some(source_type), Some(reference_code), Some(inner_name)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid(name, "expected _has:Type:reference:parameter"));
        };
        if !self.defs.is_resource_type(source_type) {
            return Err(invalid(
                name,
                &format!("'{source_type}' is not a resource type"),
            ));
        }
        let reference = self.param_ref(source_type, reference_code)?;
        if reference.kind != SearchParamType::Reference {
            return Err(invalid(
                name,
                &format!("'{reference_code}' is not a reference parameter of {source_type}"),
            ));
        }
        let inner = self.criterion(source_type, inner_name, value)?;
        let _ = resource_type;
        Ok(Criterion::Has {
            source_type: source_type.to_string(),
            reference,
            inner: Box::new(inner),
        })
    }

    fn sort(&self, resource_type: &str, value: &str) -> Result<Vec<SortKey>, SearchError> {
        value
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|key| {
                let (descending, code) = match key.strip_prefix('-') {
                    Some(code) => (true, code),
                    None => (false, key),
                };
                let by = match code {
                    "_id" => SortBy::Id,
                    "_lastUpdated" => SortBy::LastUpdated,
                    _ => {
                        let param = self
                            .param_ref(resource_type, code)
                            .map_err(|_| invalid("_sort", &format!("cannot sort by '{code}'")))?;
                        if matches!(param.kind, SearchParamType::Reference) {
                            return Err(invalid(
                                "_sort",
                                &format!("cannot sort by reference parameter '{code}'"),
                            ));
                        }
                        SortBy::Param(param)
                    }
                };
                Ok(SortKey { by, descending })
            })
            .collect()
    }

    fn include(
        &self,
        value: &str,
        iterate: bool,
        reverse: bool,
        resource_type: &str,
    ) -> Result<Include, SearchError> {
        let name = if reverse { "_revinclude" } else { "_include" };
        let mut parts = value.split(':');
        let (Some(source_type), Some(code)) = (parts.next(), parts.next()) else {
            return Err(invalid(name, "expected Type:parameter[:TargetType]"));
        };
        let target_type = parts.next().map(str::to_string);
        if !iterate && !reverse && source_type != resource_type {
            return Err(invalid(
                name,
                &format!(
                    "{value} does not start with the searched type {resource_type} (use _include:iterate)"
                ),
            ));
        }
        let param = self
            .param_ref(source_type, code)
            .map_err(|_| invalid(name, &format!("unknown parameter {value}")))?;
        if param.kind != SearchParamType::Reference {
            return Err(invalid(
                name,
                &format!("'{code}' is not a reference parameter"),
            ));
        }
        Ok(Include {
            source_type: source_type.to_string(),
            param,
            target_type,
            iterate,
        })
    }
}

fn invalid(param: &str, message: &str) -> SearchError {
    SearchError::Invalid {
        param: param.to_string(),
        message: message.to_string(),
    }
}

fn split_modifier(name: &str) -> (&str, Option<&str>) {
    match name.split_once(':') {
        Some((code, modifier)) => (code, Some(modifier)),
        None => (name, None),
    }
}

/// Splits on unescaped commas (`\,` is a literal comma).
fn split_or(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push('\\');
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            ',' => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    out.push(current);
    out
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits on the first unescaped `|`.
fn split_pipe(value: &str) -> Option<(String, String)> {
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => return Some((unescape(&value[..i]), value[i + 1..].to_string())),
            _ => escaped = false,
        }
    }
    None
}

fn string(mode: StringMode, v: &str) -> SearchValue {
    let value = unescape(v);
    let value = if mode == StringMode::Exact {
        value
    } else {
        normalize_string(&value)
    };
    SearchValue::String { mode, value }
}

fn token(v: &str) -> TokenValue {
    match split_pipe(v) {
        Some((system, code)) => {
            let code = unescape(&code);
            TokenValue {
                system: Some(if system.is_empty() {
                    None
                } else {
                    Some(system)
                }),
                code: if code.is_empty() { None } else { Some(code) },
            }
        }
        None => TokenValue {
            system: None,
            code: Some(unescape(v)),
        },
    }
}

fn prefix(v: &str) -> (Prefix, &str) {
    let p = match v.get(..2) {
        Some("eq") => Prefix::Eq,
        Some("ne") => Prefix::Ne,
        Some("gt") => Prefix::Gt,
        Some("lt") => Prefix::Lt,
        Some("ge") => Prefix::Ge,
        Some("le") => Prefix::Le,
        Some("sa") => Prefix::Sa,
        Some("eb") => Prefix::Eb,
        Some("ap") => Prefix::Ap,
        _ => return (Prefix::Eq, v),
    };
    (p, &v[2..])
}

fn date_value(name: &str, v: &str) -> Result<DateValue, SearchError> {
    let (prefix, rest) = prefix(v);
    let range = datetime::parse_range(rest).map_err(|e| invalid(name, &e.to_string()))?;
    Ok(DateValue { prefix, range })
}

/// The implicit range of a decimal: ± half a unit of its last significant digit.
fn decimal_range(name: &str, text: &str) -> Result<(f64, f64, f64), SearchError> {
    let value: f64 = text
        .parse()
        .map_err(|_| invalid(name, &format!("'{text}' is not a number")))?;
    if !value.is_finite() {
        return Err(invalid(name, &format!("'{text}' is not a finite number")));
    }
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let decimals = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i32);
    let half = 0.5 * 10f64.powi(exponent - decimals);
    Ok((value, value - half, value + half))
}

fn number_value(name: &str, v: &str) -> Result<SearchValue, SearchError> {
    let (prefix, rest) = prefix(v);
    let (value, low, high) = decimal_range(name, rest)?;
    Ok(SearchValue::Number {
        prefix,
        value,
        low,
        high,
    })
}

fn quantity_value(name: &str, v: &str) -> Result<SearchValue, SearchError> {
    let (prefix, rest) = prefix(v);
    let mut parts = rest.splitn(3, '|');
    let number = parts.next().unwrap_or("");
    let system = parts.next().filter(|s| !s.is_empty()).map(unescape);
    let code = parts.next().filter(|s| !s.is_empty()).map(unescape);
    let (value, low, high) = decimal_range(name, number)?;
    Ok(SearchValue::Quantity {
        prefix,
        value,
        low,
        high,
        system,
        code,
    })
}

fn reference_value(def: &SearchParamDef, type_modifier: Option<&str>, v: &str) -> SearchValue {
    let url = unescape(v);
    let (t, id) = crate::index::split_reference(&url);
    match (t, id) {
        (Some(t), Some(id)) => SearchValue::Reference {
            target_type: Some(t),
            id: Some(id),
            url,
        },
        _ if !url.contains('/') && !url.contains(':') => {
            let target_type = type_modifier.map(str::to_string).or_else(|| {
                if def.targets.len() == 1 {
                    def.targets.first().cloned()
                } else {
                    None
                }
            });
            SearchValue::Reference {
                target_type,
                id: Some(url.clone()),
                url,
            }
        }
        // A canonical URL or an absolute reference with no recognisable type/id.
        _ => SearchValue::Reference {
            target_type: None,
            id: None,
            url,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definitions;

    fn q(rt: &str, query: &str) -> Result<SearchQuery, SearchError> {
        let pairs: Vec<(String, String)> = form_pairs(query);
        parse_query(definitions::r4(), rt, &pairs, Handling::Strict)
    }

    fn form_pairs(query: &str) -> Vec<(String, String)> {
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    #[test]
    fn tokens_and_or_lists() {
        let query = q("Observation", "code=http://loinc.org|1,2&status=final")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(query.criteria.len(), 2);
        let Criterion::Match { values, .. } = &query.criteria[0] else {
            panic!("{:?}", query.criteria[0])
        };
        assert_eq!(values.len(), 2);
        assert_eq!(
            values[0],
            SearchValue::Token(TokenValue {
                system: Some(Some("http://loinc.org".into())),
                code: Some("1".into())
            })
        );
        assert_eq!(
            values[1],
            SearchValue::Token(TokenValue {
                system: None,
                code: Some("2".into())
            })
        );
    }

    #[test]
    fn chains_and_has() {
        let query =
            q("Observation", "subject:Patient.family=Smith").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(&query.criteria[0], Criterion::Chain { target_type, .. } if target_type == "Patient")
        );
        let query = q(
            "Observation",
            "encounter:Encounter.subject:Patient.family=X",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(&query.criteria[0], Criterion::Chain { inner, .. } if matches!(**inner, Criterion::Chain { .. }))
        );
        let query =
            q("Patient", "_has:Encounter:patient:class=IMP").unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(&query.criteria[0], Criterion::Has { source_type, .. } if source_type == "Encounter")
        );
        assert!(q("Observation", "patient.gender=male").is_ok());
        assert!(q("MedicationRequest", "medication.code=1736854").is_ok());
    }

    #[test]
    fn prefixes_and_numbers() {
        let query = q(
            "Observation",
            "date=ge2015-01-01&value-quantity=lt5.40|http://unitsofmeasure.org|mg",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(&query.criteria[0], Criterion::Match { values, .. } if matches!(values[0], SearchValue::Date(DateValue { prefix: Prefix::Ge, .. })))
        );
        let Criterion::Match { values, .. } = &query.criteria[1] else {
            panic!()
        };
        let SearchValue::Quantity {
            low, high, code, ..
        } = &values[0]
        else {
            panic!()
        };
        assert!((low - 5.395).abs() < 1e-9 && (high - 5.405).abs() < 1e-9);
        assert_eq!(code.as_deref(), Some("mg"));
    }

    #[test]
    fn unknown_parameters_depend_on_handling() {
        assert!(matches!(
            q("Patient", "foo=bar"),
            Err(SearchError::Unknown(_))
        ));
        let lenient = parse_query(
            definitions::r4(),
            "Patient",
            &form_pairs("foo=bar"),
            Handling::Lenient,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(lenient.ignored.len(), 1);
        assert!(matches!(
            q("Patient", "birthdate=notadate"),
            Err(SearchError::Invalid { .. })
        ));
        assert!(matches!(
            q("Patient", "gender:contains=m"),
            Err(SearchError::Invalid { .. })
        ));
    }

    #[test]
    fn escaping() {
        assert_eq!(
            split_or(r"a\,b,c"),
            vec![r"a\,b".to_string(), "c".to_string()]
        );
        assert_eq!(unescape(r"a\,b"), "a,b");
    }

    #[test]
    fn sort_and_include() {
        let query = q(
            "Observation",
            "_sort=-date,_id&_include=Observation:subject&_revinclude=Provenance:target&_count=10",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(query.sort.len(), 2);
        assert!(query.sort[0].descending);
        assert_eq!(query.includes.len(), 1);
        assert_eq!(query.revincludes.len(), 1);
        assert_eq!(query.count, 10);
    }
}
