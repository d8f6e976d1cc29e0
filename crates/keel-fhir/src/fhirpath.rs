//! The subset of FHIRPath that the R4 SearchParameter expressions use.
//!
//! Supported: paths with choice elements (`Observation.value`), unions (`|`), `as`/`is` type
//! operators and the `as()`, `is()`, `ofType()` functions, `where(...)` with equality and
//! `resolve() is Type`, indexers (`[0]`), `exists()`, `empty()`, `not()`, `first()`,
//! `extension('url')`, `and`/`or`, `=`/`!=`, string, number and boolean literals.
//! Anything else is a parse error, so an unsupported definition is found when it is loaded,
//! never silently mis-indexed.

use serde_json::Value;
use std::fmt;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// The evaluation context (`$this`, or the resource at the top level).
    This,
    /// A member of each item of the inner collection. At the top level a capitalised name is a
    /// resource type: it selects the context when the type matches and nothing otherwise.
    Member(Box<Expr>, String),
    /// A free identifier: the root type name or a member of the context.
    Identifier(String),
    Index(Box<Expr>, usize),
    Function(Box<Expr>, Function),
    As(Box<Expr>, String),
    Is(Box<Expr>, String),
    Union(Box<Expr>, Box<Expr>),
    Equals(Box<Expr>, Box<Expr>, bool),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Literal(Literal),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Number(String),
    Boolean(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Function {
    Where(Box<Expr>),
    Exists,
    Empty,
    Not,
    First,
    Resolve,
    OfType(String),
    Extension(String),
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("FHIRPath parse error at {position}: {message}")]
pub struct ParseError {
    pub position: usize,
    pub message: String,
}

/// One item of a result collection.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    /// A JSON node; `type_hint` is the type suffix when it came from a choice element
    /// (`valueQuantity` gives `Quantity`).
    Node {
        value: &'a Value,
        type_hint: Option<&'a str>,
    },
    Boolean(bool),
    /// A string or number literal of the expression.
    Literal(Literal),
    /// The result of `resolve()`: only the target type is known without I/O.
    Resolved {
        resource_type: String,
    },
}

impl<'a> Item<'a> {
    pub fn node(value: &'a Value) -> Self {
        Item::Node {
            value,
            type_hint: None,
        }
    }

    pub fn as_value(&self) -> Option<&'a Value> {
        match self {
            Item::Node { value, .. } => Some(value),
            _ => None,
        }
    }

    pub fn type_hint(&self) -> Option<&'a str> {
        match self {
            Item::Node { type_hint, .. } => *type_hint,
            _ => None,
        }
    }
}

/// What the evaluator needs to know about the FHIR type system.
pub trait TypeInfo {
    /// Is `name` a resource type?
    fn is_resource_type(&self, name: &str) -> bool;
    /// Is `name` an `[x]` element somewhere (so `nameQuantity` may stand for it)?
    fn is_choice_name(&self, name: &str) -> bool;
    /// Is `suffix` (e.g. `Quantity`, `DateTime`) the capitalised name of a data type?
    fn is_type_suffix(&self, suffix: &str) -> bool;
}

// ---------------------------------------------------------------- parsing

pub fn parse(source: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(source)?;
    let mut parser = Parser { tokens, pos: 0 };
    let expr = parser.or_expr()?;
    if parser.pos != parser.tokens.len() {
        return Err(parser.error("unexpected trailing input"));
    }
    Ok(expr)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(String),
    Sym(&'static str),
}

fn tokenize(src: &str) -> Result<Vec<(usize, Token)>, ParseError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => {
                            return Err(ParseError {
                                position: start,
                                message: "unterminated string".into(),
                            });
                        }
                        Some(b'\'') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            // The escaped character may be multi-byte: step over all of it.
                            let escaped = src[i + 1..].chars().next().unwrap_or('\\');
                            s.push(match escaped {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                            i += 1 + escaped.len_utf8();
                        }
                        Some(_) => {
                            let ch = src[i..].chars().next().unwrap_or(' ');
                            s.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                out.push((start, Token::Str(s)));
            }
            b'0'..=b'9' => {
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                    i += 1;
                }
                out.push((start, Token::Num(src[start..i].to_string())));
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' | b'%' => {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push((start, Token::Ident(src[start..i].to_string())));
            }
            b'`' => {
                let end = src[i + 1..].find('`').ok_or(ParseError {
                    position: start,
                    message: "unterminated identifier".into(),
                })?;
                out.push((start, Token::Ident(src[i + 1..i + 1 + end].to_string())));
                i += end + 2;
            }
            _ => {
                let two = src.get(i..i + 2);
                let sym: &'static str = match (two, c) {
                    (Some("!="), _) => "!=",
                    (_, b'.') => ".",
                    (_, b'(') => "(",
                    (_, b')') => ")",
                    (_, b'[') => "[",
                    (_, b']') => "]",
                    (_, b'|') => "|",
                    (_, b'=') => "=",
                    (_, b',') => ",",
                    _ => {
                        return Err(ParseError {
                            position: start,
                            message: format!("unsupported character {:?}", c as char),
                        });
                    }
                };
                i += sym.len();
                out.push((start, Token::Sym(sym)));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
}

impl Parser {
    fn error(&self, message: &str) -> ParseError {
        let position = self.tokens.get(self.pos).map(|t| t.0).unwrap_or(usize::MAX);
        ParseError {
            position,
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|t| &t.1)
    }

    fn eat_sym(&mut self, sym: &str) -> bool {
        if matches!(self.peek(), Some(Token::Sym(s)) if *s == sym) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Ident(s)) if s == word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, sym: &str) -> Result<(), ParseError> {
        if self.eat_sym(sym) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{sym}'")))
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(Token::Ident(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.error("expected an identifier")),
        }
    }

    fn or_expr(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and_expr()?;
        while self.eat_keyword("or") {
            let right = self.and_expr()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.equality()?;
        while self.eat_keyword("and") {
            let right = self.equality()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn equality(&mut self) -> Result<Expr, ParseError> {
        let left = self.union()?;
        if self.eat_sym("=") {
            let right = self.union()?;
            return Ok(Expr::Equals(Box::new(left), Box::new(right), true));
        }
        if self.eat_sym("!=") {
            let right = self.union()?;
            return Ok(Expr::Equals(Box::new(left), Box::new(right), false));
        }
        Ok(left)
    }

    fn union(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.type_expr()?;
        while self.eat_sym("|") {
            let right = self.type_expr()?;
            left = Expr::Union(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn type_expr(&mut self) -> Result<Expr, ParseError> {
        let mut expr = self.postfix()?;
        loop {
            if self.eat_keyword("as") {
                expr = Expr::As(Box::new(expr), self.ident()?);
            } else if self.eat_keyword("is") {
                expr = Expr::Is(Box::new(expr), self.ident()?);
            } else {
                return Ok(expr);
            }
        }
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut expr = self.primary()?;
        loop {
            if self.eat_sym(".") {
                let name = self.ident()?;
                expr = if self.eat_sym("(") {
                    self.function(expr, &name)?
                } else {
                    Expr::Member(Box::new(expr), name)
                };
            } else if self.eat_sym("[") {
                let index = match self.peek() {
                    Some(Token::Num(n)) => n.parse().map_err(|_| self.error("bad index"))?,
                    _ => return Err(self.error("expected an index")),
                };
                self.pos += 1;
                self.expect_sym("]")?;
                expr = Expr::Index(Box::new(expr), index);
            } else {
                return Ok(expr);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        match self.peek().cloned() {
            Some(Token::Sym("(")) => {
                self.pos += 1;
                let inner = self.or_expr()?;
                self.expect_sym(")")?;
                Ok(inner)
            }
            Some(Token::Str(s)) => {
                self.pos += 1;
                Ok(Expr::Literal(Literal::String(s)))
            }
            Some(Token::Num(n)) => {
                self.pos += 1;
                Ok(Expr::Literal(Literal::Number(n)))
            }
            Some(Token::Ident(name)) => {
                self.pos += 1;
                match name.as_str() {
                    "true" => Ok(Expr::Literal(Literal::Boolean(true))),
                    "false" => Ok(Expr::Literal(Literal::Boolean(false))),
                    "$this" | "%resource" => Ok(Expr::This),
                    _ if self.eat_sym("(") => self.function(Expr::This, &name),
                    _ => Ok(Expr::Identifier(name)),
                }
            }
            _ => Err(self.error("expected an expression")),
        }
    }

    fn function(&mut self, target: Expr, name: &str) -> Result<Expr, ParseError> {
        let function = match name {
            "where" => Function::Where(Box::new(self.or_expr()?)),
            "exists" => Function::Exists,
            "empty" => Function::Empty,
            "not" => Function::Not,
            "first" => Function::First,
            "resolve" => Function::Resolve,
            "as" => return self.type_function(target, true),
            "is" => return self.type_function(target, false),
            "ofType" => Function::OfType(self.ident()?),
            "extension" => match self.peek().cloned() {
                Some(Token::Str(url)) => {
                    self.pos += 1;
                    Function::Extension(url)
                }
                _ => return Err(self.error("extension() takes a url string")),
            },
            other => return Err(self.error(&format!("unsupported function {other}()"))),
        };
        self.expect_sym(")")?;
        Ok(Expr::Function(Box::new(target), function))
    }

    fn type_function(&mut self, target: Expr, is_as: bool) -> Result<Expr, ParseError> {
        let type_name = self.ident()?;
        self.expect_sym(")")?;
        let target = Box::new(target);
        Ok(if is_as {
            Expr::As(target, type_name)
        } else {
            Expr::Is(target, type_name)
        })
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => write!(f, "'{s}'"),
            Literal::Number(n) => f.write_str(n),
            Literal::Boolean(b) => write!(f, "{b}"),
        }
    }
}

// ---------------------------------------------------------------- evaluation

/// Evaluates `expr` against `resource` (a resource JSON object).
pub fn evaluate<'a>(expr: &Expr, resource: &'a Value, types: &dyn TypeInfo) -> Vec<Item<'a>> {
    evaluate_with(expr, resource, types, &|_: &str| None)
}

/// What `resolve()` knows beyond the resource itself: the target type of a reference that does
/// not name it, such as a Bundle entry's `urn:uuid:` fullUrl.
pub type ReferenceTypes<'r> = dyn Fn(&str) -> Option<String> + 'r;

/// As [`evaluate`], with `references` consulted by `resolve()` for references that neither
/// name their type (`Type/id`) nor point into `contained`.
pub fn evaluate_with<'a>(
    expr: &Expr,
    resource: &'a Value,
    types: &dyn TypeInfo,
    references: &ReferenceTypes<'_>,
) -> Vec<Item<'a>> {
    let resource_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("");
    let eval = Evaluator {
        types,
        resource_type,
        root: resource,
        references,
    };
    eval.eval(expr, &[Item::node(resource)], true)
}

struct Evaluator<'t> {
    references: &'t ReferenceTypes<'t>,
    types: &'t dyn TypeInfo,
    resource_type: &'t str,
    /// The resource evaluated: the container of the resources `#id` references name.
    root: &'t Value,
}

impl Evaluator<'_> {
    fn eval<'a>(&self, expr: &Expr, context: &[Item<'a>], top: bool) -> Vec<Item<'a>> {
        match expr {
            Expr::This => context.to_vec(),
            Expr::Identifier(name) => {
                if top && self.is_root_type(name) {
                    if name == self.resource_type || name == "Resource" || name == "DomainResource"
                    {
                        context.to_vec()
                    } else {
                        Vec::new()
                    }
                } else {
                    self.members(context, name)
                }
            }
            Expr::Member(inner, name) => {
                let items = self.eval(inner, context, top);
                self.members(&items, name)
            }
            Expr::Index(inner, index) => self
                .eval(inner, context, top)
                .into_iter()
                .nth(*index)
                .into_iter()
                .collect(),
            Expr::Union(a, b) => {
                // Both collections merged without duplicates, within either operand too.
                let mut items: Vec<Item<'a>> = Vec::new();
                for item in self
                    .eval(a, context, top)
                    .into_iter()
                    .chain(self.eval(b, context, top))
                {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
                items
            }
            Expr::As(inner, type_name) => self
                .eval(inner, context, top)
                .into_iter()
                .filter(|i| self.has_type(i, type_name))
                .collect(),
            Expr::Is(inner, type_name) => {
                let items = self.eval(inner, context, top);
                match items.as_slice() {
                    [one] => vec![Item::Boolean(self.has_type(one, type_name))],
                    _ => Vec::new(),
                }
            }
            Expr::Function(inner, function) => {
                let items = self.eval(inner, context, top);
                self.function(items, function)
            }
            Expr::Equals(a, b, equal) => {
                let left = self.eval(a, context, top);
                let right = self.eval(b, context, top);
                if left.is_empty() || right.is_empty() {
                    return Vec::new();
                }
                let same = left.len() == right.len()
                    && left.iter().zip(&right).all(|(l, r)| items_equal(l, r));
                vec![Item::Boolean(same == *equal)]
            }
            Expr::And(a, b) => {
                let left = truth(&self.eval(a, context, top));
                let right = truth(&self.eval(b, context, top));
                match (left, right) {
                    (Some(false), _) | (_, Some(false)) => vec![Item::Boolean(false)],
                    (Some(true), Some(true)) => vec![Item::Boolean(true)],
                    _ => Vec::new(),
                }
            }
            Expr::Or(a, b) => {
                let left = truth(&self.eval(a, context, top));
                let right = truth(&self.eval(b, context, top));
                match (left, right) {
                    (Some(true), _) | (_, Some(true)) => vec![Item::Boolean(true)],
                    (Some(false), Some(false)) => vec![Item::Boolean(false)],
                    _ => Vec::new(),
                }
            }
            Expr::Literal(lit) => vec![literal_item(lit)],
        }
    }

    fn is_root_type(&self, name: &str) -> bool {
        name == "Resource" || name == "DomainResource" || self.types.is_resource_type(name)
    }

    fn function<'a>(&self, items: Vec<Item<'a>>, function: &Function) -> Vec<Item<'a>> {
        match function {
            Function::Where(condition) => items
                .into_iter()
                .filter(|item| {
                    truth(&self.eval(condition, std::slice::from_ref(item), false)) == Some(true)
                })
                .collect(),
            Function::Exists => vec![Item::Boolean(!items.is_empty())],
            Function::Empty => vec![Item::Boolean(items.is_empty())],
            Function::Not => match truth(&items) {
                Some(b) => vec![Item::Boolean(!b)],
                None => Vec::new(),
            },
            Function::First => items.into_iter().take(1).collect(),
            Function::Resolve => items
                .iter()
                .filter_map(|item| self.resolve_type(item.as_value()?))
                .map(|resource_type| Item::Resolved { resource_type })
                .collect(),
            Function::OfType(type_name) => items
                .into_iter()
                .filter(|i| self.has_type(i, type_name))
                .collect(),
            Function::Extension(url) => self
                .members(&items, "extension")
                .into_iter()
                .filter(|ext| {
                    ext.as_value()
                        .and_then(|v| v.get("url"))
                        .and_then(Value::as_str)
                        == Some(url)
                })
                .collect(),
        }
    }

    /// The type of the resource a Reference points at: the contained resource a `#id`
    /// reference names, else what the literal reference (or its `type`) says.
    fn resolve_type(&self, reference: &Value) -> Option<String> {
        let contained = reference
            .get("reference")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .filter(|id| !id.is_empty())
            .and_then(|id| {
                self.root
                    .get("contained")?
                    .as_array()?
                    .iter()
                    .find(|c| c.get("id").and_then(Value::as_str) == Some(id))
            })
            .and_then(|c| c.get("resourceType")?.as_str());
        match contained {
            Some(resource_type) => Some(resource_type.to_string()),
            None => reference_target_type(reference).or_else(|| {
                reference
                    .get("reference")
                    .and_then(Value::as_str)
                    .and_then(|r| (self.references)(r))
            }),
        }
    }

    fn has_type(&self, item: &Item<'_>, type_name: &str) -> bool {
        match item {
            Item::Resolved { resource_type } => resource_type == type_name,
            Item::Boolean(_) => type_name.eq_ignore_ascii_case("boolean"),
            Item::Literal(_) => false,
            Item::Node { value, type_hint } => match type_hint {
                Some(hint) => hint.eq_ignore_ascii_case(type_name),
                // Not from a choice element: a contained resource can be checked by its
                // resourceType; anything else is taken to be of the asked type, since the
                // definitions only cast choice elements.
                None => match value.get("resourceType").and_then(Value::as_str) {
                    Some(rt) => rt == type_name,
                    None => true,
                },
            },
        }
    }

    fn members<'a>(&self, items: &[Item<'a>], name: &str) -> Vec<Item<'a>> {
        let mut out = Vec::new();
        let choice = self.types.is_choice_name(name);
        for item in items {
            let Some(Value::Object(map)) = item.as_value() else {
                continue;
            };
            if let Some(value) = map.get(name) {
                push_flat(&mut out, value, None);
            } else if choice {
                for (key, value) in map {
                    if let Some(suffix) = key.strip_prefix(name)
                        && suffix.starts_with(|c: char| c.is_ascii_uppercase())
                        && self.types.is_type_suffix(suffix)
                    {
                        push_flat(&mut out, value, Some(suffix));
                    }
                }
            }
        }
        out
    }
}

fn push_flat<'a>(out: &mut Vec<Item<'a>>, value: &'a Value, type_hint: Option<&'a str>) {
    match value {
        Value::Array(values) => out.extend(
            values
                .iter()
                .filter(|v| !v.is_null())
                .map(|value| Item::Node { value, type_hint }),
        ),
        Value::Null => {}
        value => out.push(Item::Node { value, type_hint }),
    }
}

fn literal_item(lit: &Literal) -> Item<'static> {
    match lit {
        Literal::Boolean(b) => Item::Boolean(*b),
        other => Item::Literal(other.clone()),
    }
}

/// Equality of two singleton items, FHIRPath style (primitives by value).
fn items_equal(left: &Item<'_>, right: &Item<'_>) -> bool {
    match (primitive_text(left), primitive_text(right)) {
        (Some(l), Some(r)) => l == r,
        _ => left == right,
    }
}

/// A comparable text for a primitive item, tagged by kind so `'true'` never equals `true`.
fn primitive_text(item: &Item<'_>) -> Option<String> {
    match item {
        Item::Boolean(b) => Some(format!("b:{b}")),
        Item::Literal(Literal::String(s)) => Some(format!("s:{s}")),
        Item::Literal(Literal::Number(n)) => Some(format!("n:{n}")),
        Item::Literal(Literal::Boolean(b)) => Some(format!("b:{b}")),
        Item::Resolved { .. } => None,
        Item::Node { value, .. } => match value {
            Value::String(s) => Some(format!("s:{s}")),
            Value::Bool(b) => Some(format!("b:{b}")),
            Value::Number(n) => Some(format!("n:{n}")),
            _ => None,
        },
    }
}

/// The FHIRPath truth value of a collection (empty → unknown).
fn truth(items: &[Item<'_>]) -> Option<bool> {
    match items {
        [] => None,
        [Item::Boolean(b)] => Some(*b),
        [
            Item::Node {
                value: Value::Bool(b),
                ..
            },
        ] => Some(*b),
        _ => Some(true),
    }
}

/// The type of the resource a Reference points at, from its literal `reference`.
pub fn reference_target_type(value: &Value) -> Option<String> {
    let reference = value.get("reference")?.as_str()?;
    if reference.starts_with('#') || reference.starts_with("urn:") {
        return value
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let path = reference.split(['?', '#']).next().unwrap_or(reference);
    let segments: Vec<&str> = path.split('/').collect();
    // Type/id or .../Type/id or .../Type/id/_history/v
    let n = segments.len();
    let type_segment = if n >= 4 && segments[n - 2] == "_history" {
        segments.get(n - 4)
    } else {
        n.checked_sub(2).and_then(|i| segments.get(i))
    };
    type_segment
        .filter(|s| s.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|s| s.to_string())
        .or_else(|| {
            value
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_escaped_multibyte_character_in_a_string_is_not_split() {
        // Found by fuzz/fuzz_targets/fhirpath.rs: this used to panic (slice inside 'é').
        assert_eq!(
            tokenize("'\\é'").ok(),
            Some(vec![(0, Token::Str("é".into()))])
        );
        assert!(parse("Patient.name.where(family = 'O\\'Br\\ïen')").is_ok());
    }

    struct Types;
    impl TypeInfo for Types {
        fn is_resource_type(&self, name: &str) -> bool {
            matches!(
                name,
                "Patient" | "Observation" | "Condition" | "Practitioner" | "Bundle" | "Composition"
            )
        }
        fn is_choice_name(&self, name: &str) -> bool {
            matches!(name, "value" | "deceased" | "effective" | "onset")
        }
        fn is_type_suffix(&self, suffix: &str) -> bool {
            matches!(
                suffix,
                "Quantity" | "String" | "DateTime" | "Boolean" | "CodeableConcept" | "Period"
            )
        }
    }

    fn values(expr: &str, resource: &Value) -> Vec<Value> {
        let parsed = parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        evaluate(&parsed, resource, &Types)
            .into_iter()
            .map(|i| match i {
                Item::Node { value, .. } => value.clone(),
                Item::Boolean(b) => Value::Bool(b),
                Item::Resolved { resource_type } => Value::String(resource_type),
                Item::Literal(l) => Value::String(l.to_string()),
            })
            .collect()
    }

    #[test]
    fn paths_flatten_arrays() {
        let p = json!({"resourceType":"Patient","name":[{"given":["A","B"]},{"given":["C"]}]});
        assert_eq!(
            values("Patient.name.given", &p),
            vec![json!("A"), json!("B"), json!("C")]
        );
        assert!(values("Observation.code", &p).is_empty());
    }

    #[test]
    fn choice_elements_and_casts() {
        let o = json!({"resourceType":"Observation","valueQuantity":{"value":1},"effectiveDateTime":"2020"});
        assert_eq!(
            values("(Observation.value as Quantity)", &o),
            vec![json!({"value":1})]
        );
        assert!(values("(Observation.value as CodeableConcept)", &o).is_empty());
        assert_eq!(values("Observation.effective", &o), vec![json!("2020")]);
        assert_eq!(
            values("Observation.value.as(Quantity)", &o),
            vec![json!({"value":1})]
        );
    }

    #[test]
    fn choice_requires_a_type_suffix() {
        // `countMax` must not be taken for a choice `count[x]`.
        struct T2;
        impl TypeInfo for T2 {
            fn is_resource_type(&self, n: &str) -> bool {
                n == "Timing"
            }
            fn is_choice_name(&self, n: &str) -> bool {
                n == "count"
            }
            fn is_type_suffix(&self, s: &str) -> bool {
                s == "Quantity"
            }
        }
        let r = json!({"resourceType":"Timing","countMax":3});
        let e = parse("Timing.count").unwrap_or_else(|e| panic!("{e}"));
        assert!(evaluate(&e, &r, &T2).is_empty());
    }

    #[test]
    fn where_resolve_is() {
        let o = json!({"resourceType":"Observation","subject":{"reference":"Patient/1"},"performer":[{"reference":"Practitioner/2"},{"reference":"http://x/fhir/Patient/3/_history/2"}]});
        assert_eq!(
            values("Observation.subject.where(resolve() is Patient)", &o).len(),
            1
        );
        assert_eq!(
            values("Observation.performer.where(resolve() is Patient)", &o),
            vec![json!({"reference":"http://x/fhir/Patient/3/_history/2"})]
        );
    }

    #[test]
    fn resolve_finds_contained_resources() {
        let o = json!({"resourceType":"Observation","contained":[{"resourceType":"Patient","id":"p"}],"subject":{"reference":"#p"},"performer":[{"reference":"#missing"}]});
        assert_eq!(
            values("Observation.subject.where(resolve() is Patient)", &o),
            vec![json!({"reference":"#p"})]
        );
        assert!(values("Observation.performer.where(resolve() is Patient)", &o).is_empty());
    }

    #[test]
    fn unions_remove_duplicates_within_either_side() {
        let p = json!({"resourceType":"Patient","name":[{"given":["A","B"]},{"given":["A"]}]});
        assert_eq!(
            values("Patient.name.given | Practitioner.name.given", &p),
            vec![json!("A"), json!("B")]
        );
    }

    #[test]
    fn where_equality_and_index() {
        let p = json!({"resourceType":"Patient","telecom":[{"system":"phone","value":"1"},{"system":"email","value":"e"}]});
        assert_eq!(values("Patient.telecom.where(system='email')", &p).len(), 1);
        let b = json!({"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Composition"}},{"resource":{}}]});
        assert_eq!(
            values("Bundle.entry[0].resource", &b),
            vec![json!({"resourceType":"Composition"})]
        );
    }

    #[test]
    fn deceased_expression() {
        let e = "Patient.deceased.exists() and Patient.deceased != false";
        assert_eq!(
            values(
                e,
                &json!({"resourceType":"Patient","deceasedBoolean":false})
            ),
            vec![json!(false)]
        );
        assert_eq!(
            values(e, &json!({"resourceType":"Patient","deceasedBoolean":true})),
            vec![json!(true)]
        );
        assert_eq!(
            values(
                e,
                &json!({"resourceType":"Patient","deceasedDateTime":"2020"})
            ),
            vec![json!(true)]
        );
        assert_eq!(
            values(e, &json!({"resourceType":"Patient"})),
            vec![json!(false)]
        );
    }

    #[test]
    fn unions_of_other_types_select_own_branch() {
        let c = json!({"resourceType":"Condition","code":{"text":"x"}});
        assert_eq!(
            values("Observation.code | Condition.code", &c),
            vec![json!({"text":"x"})]
        );
    }

    #[test]
    fn unsupported_syntax_is_an_error() {
        assert!(parse("Patient.name.select(given)").is_err());
        assert!(parse("Patient.name +").is_err());
    }
}
