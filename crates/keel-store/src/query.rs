//! Compiles a [`SearchQuery`] into SQL over the index tables, for SQLite and PostgreSQL (the
//! [`Dialect`] decides placeholders, boolean literals, substring search and planner hints).
//!
//! Plan: the most selective criterion drives (`rid IN (subquery)`), the others are
//! correlated `EXISTS` probes on the `(rid, param)` indexes, so no large set is materialised.

use keel_fhir::datetime::DateRange;
use keel_fhir::definitions::{Definitions, SearchParamType};
use keel_fhir::derived_params::{DerivedRows, derived_params};
use keel_fhir::search::{
    Criterion, DateValue, ParamRef, Prefix, SearchQuery, SearchValue, SortBy, StringMode,
    TokenValue, UriMode,
};
use std::collections::HashMap;

/// A bound SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Int(i64),
    Real(f64),
    Text(String),
}

/// Parameter ids by resource type and code, and where each parameter's rows are.
#[derive(Debug, Default)]
pub struct ParamIds {
    ids: HashMap<String, HashMap<String, i64>>,
    /// Derived parameters (see [`keel_fhir::derived_params`]), by resource type and code.
    derived: HashMap<String, HashMap<String, ParamRows>>,
}

/// Where a parameter's index rows are.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamRows {
    /// Its own rows. An unknown parameter has the id -1, which no row has.
    Own(i64),
    /// The rows of several parameters together.
    Union(Vec<i64>),
    /// A reference parameter's rows that point at one resource type.
    Targets { param: i64, target_type: String },
}

impl ParamIds {
    pub fn insert(&mut self, resource_type: String, code: String, id: i64) {
        self.ids.entry(resource_type).or_default().insert(code, id);
    }

    /// The id of a parameter that has rows of its own.
    pub fn get(&self, resource_type: &str, code: &str) -> Option<i64> {
        self.ids.get(resource_type)?.get(code).copied()
    }

    /// Notes the derived parameters of every resource type with parameters, once all ids are in.
    pub fn derive(&mut self, defs: &Definitions) {
        for (resource_type, ids) in &self.ids {
            let id = |code: &str| ids.get(code).copied().unwrap_or(-1);
            let rows: HashMap<String, ParamRows> = derived_params(defs, resource_type)
                .into_iter()
                .map(|(code, derived)| {
                    let rows = match derived {
                        DerivedRows::UnionOf(members) => {
                            ParamRows::Union(members.iter().map(|m| id(m)).collect())
                        }
                        DerivedRows::TargetsOf { param, target_type } => ParamRows::Targets {
                            param: id(&param),
                            target_type,
                        },
                    };
                    (code, rows)
                })
                .collect();
            if !rows.is_empty() {
                self.derived.insert(resource_type.clone(), rows);
            }
        }
    }

    /// Where the rows of a parameter are.
    pub fn rows(&self, resource_type: &str, code: &str) -> ParamRows {
        if let Some(rows) = self.derived.get(resource_type).and_then(|d| d.get(code)) {
            return rows.clone();
        }
        ParamRows::Own(self.get(resource_type, code).unwrap_or(-1))
    }
}

/// The SQL flavour a backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// `?` placeholders, `0`/`1` for false/true.
    #[default]
    Sqlite,
    /// `$n` placeholders, `FALSE`/`TRUE`.
    Postgres,
}

/// SQL text with its bound values, in order.
#[derive(Debug, Default)]
pub struct Sql {
    pub text: String,
    pub values: Vec<SqlValue>,
    pub dialect: Dialect,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Sql {
        Sql {
            dialect,
            ..Sql::default()
        }
    }
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }
    pub fn bind(&mut self, v: SqlValue) {
        self.values.push(v);
        match self.dialect {
            Dialect::Sqlite => self.text.push('?'),
            Dialect::Postgres => self.text.push_str(&format!("${}", self.values.len())),
        }
    }
    /// A condition that always or never holds.
    pub fn push_bool(&mut self, value: bool) {
        self.push(match (self.dialect, value) {
            (Dialect::Sqlite, false) => "0",
            (Dialect::Sqlite, true) => "1",
            (Dialect::Postgres, false) => "FALSE",
            (Dialect::Postgres, true) => "TRUE",
        });
    }
    /// `x.param = ?` for the rows of a parameter (or what stands for it when it is derived).
    pub fn param_rows(&mut self, x: &str, rows: &ParamRows) {
        match rows {
            ParamRows::Own(id) => {
                self.push(&format!("{x}.param = "));
                self.bind_int(*id);
            }
            ParamRows::Union(ids) => {
                self.push(&format!("{x}.param IN ("));
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        self.push(",");
                    }
                    self.bind_int(*id);
                }
                self.push(")");
            }
            ParamRows::Targets { param, target_type } => {
                self.push(&format!("({x}.param = "));
                self.bind_int(*param);
                self.push(&format!(" AND {x}.ttype = "));
                self.bind_text(target_type);
                self.push(")");
            }
        }
    }
    fn bind_text(&mut self, s: &str) {
        self.bind(SqlValue::Text(s.to_string()));
    }
    fn bind_int(&mut self, i: i64) {
        self.bind(SqlValue::Int(i));
    }
}

/// The highest Unicode scalar: appended to a prefix it bounds a prefix range in binary order.
const MAX_CHAR: char = '\u{10FFFF}';

pub struct Compiler<'p> {
    pub params: &'p ParamIds,
    alias_counter: usize,
}

impl<'p> Compiler<'p> {
    pub fn new(params: &'p ParamIds) -> Self {
        Compiler {
            params,
            alias_counter: 0,
        }
    }

    fn alias(&mut self, base: &str) -> String {
        self.alias_counter += 1;
        format!("{base}{}", self.alias_counter)
    }

    fn rows(&self, p: &ParamRef) -> ParamRows {
        self.params.rows(&p.resource_type, &p.code)
    }

    /// The `WHERE` clause for live resources of `resource_type` under `alias` that meet all
    /// `criteria`. When the most selective criterion drives by `rid`, the type test is written
    /// `+alias.rtype` so that the planner cannot prefer scanning every resource of the type.
    pub fn where_clause(
        &mut self,
        sql: &mut Sql,
        alias: &str,
        resource_type: &str,
        criteria: &[Criterion],
    ) {
        let mut order: Vec<&Criterion> = criteria.iter().collect();
        order.sort_by_key(|c| selectivity_rank(c));
        let drives_by_rid = matches!(
            order.first(),
            Some(Criterion::Match { .. } | Criterion::Chain { .. })
        );
        // SQLite's unary `+` keeps the column out of index selection; PostgreSQL plans by
        // statistics and needs no hint.
        let hint = drives_by_rid && sql.dialect == Dialect::Sqlite;
        sql.push(&format!("{}{alias}.rtype = ", if hint { "+" } else { "" }));
        sql.bind_text(resource_type);
        sql.push(&format!(" AND {alias}.deleted = 0"));
        for (i, criterion) in order.into_iter().enumerate() {
            sql.push(" AND ");
            self.criterion(sql, alias, resource_type, criterion, i == 0);
        }
    }

    fn criterion(
        &mut self,
        sql: &mut Sql,
        alias: &str,
        resource_type: &str,
        criterion: &Criterion,
        drive: bool,
    ) {
        match criterion {
            Criterion::Id(ids) => {
                sql.push(&format!("{alias}.id IN ("));
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        sql.push(",");
                    }
                    sql.bind_text(id);
                }
                sql.push(")");
            }
            Criterion::LastUpdated(values) => {
                sql.push("(");
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        sql.push(" OR ");
                    }
                    // A lastUpdated instant is a 1 ms range.
                    let (lo, hi) = (
                        format!("{alias}.last_updated"),
                        format!("({alias}.last_updated + 1)"),
                    );
                    date_condition(sql, &lo, &hi, v);
                }
                sql.push(")");
            }
            Criterion::Match { param, values } => {
                let x = self.alias("x");
                self.open_subquery(sql, alias, param, &x, drive);
                // Many token codes: one IN list lets the index seek each code directly.
                let codes: Vec<&String> = values
                    .iter()
                    .filter_map(|v| match v {
                        SearchValue::Token(TokenValue {
                            code: Some(code), ..
                        }) => Some(code),
                        _ => None,
                    })
                    .collect();
                if codes.len() > 1 && codes.len() == values.len() {
                    sql.push(&format!(" AND {x}.code IN ("));
                    for (i, code) in codes.iter().enumerate() {
                        if i > 0 {
                            sql.push(",");
                        }
                        sql.bind_text(code);
                    }
                    sql.push(")");
                }
                sql.push(" AND (");
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        sql.push(" OR ");
                    }
                    value_condition(sql, &x, value);
                }
                sql.push("))");
            }
            Criterion::NotToken { param, values } => {
                let x = self.alias("x");
                sql.push("NOT ");
                self.open_subquery(sql, alias, param, &x, false);
                sql.push(" AND (");
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        sql.push(" OR ");
                    }
                    token_condition(sql, &x, v);
                }
                sql.push("))");
            }
            Criterion::Missing { param, missing } => {
                let x = self.alias("x");
                if *missing {
                    sql.push("NOT ");
                }
                self.open_subquery(sql, alias, param, &x, false);
                sql.push(")");
            }
            Criterion::Chain {
                param,
                target_type,
                inner,
            } if !drive => {
                // A probe: this resource's reference names a target that meets `inner`. Checked
                // per row, so no set of every matching source is built.
                let s = self.alias("s");
                let t = self.alias("t");
                let rows = self.rows(param);
                sql.push(&format!(
                    "EXISTS (SELECT 1 FROM sp_ref {s} WHERE {s}.rid = {alias}.rid AND "
                ));
                sql.param_rows(&s, &rows);
                sql.push(&format!(" AND {s}.ttype = "));
                sql.bind_text(target_type);
                sql.push(&format!(
                    " AND EXISTS (SELECT 1 FROM resources {t} WHERE {t}.rtype = {s}.ttype AND {t}.id = {s}.tid AND {t}.deleted = 0 AND "
                ));
                self.criterion(sql, &t, target_type, inner, false);
                sql.push("))");
            }
            Criterion::AnyOf(parts) | Criterion::AllOf(parts) if parts.is_empty() => {
                // An empty disjunction holds for nothing; an empty conjunction for everything.
                sql.push_bool(!matches!(criterion, Criterion::AnyOf(_)));
            }
            Criterion::AnyOf(parts) | Criterion::AllOf(parts) => {
                let joiner = if matches!(criterion, Criterion::AnyOf(_)) {
                    " OR "
                } else {
                    " AND "
                };
                sql.push("(");
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        sql.push(joiner);
                    }
                    self.criterion(sql, alias, resource_type, part, false);
                }
                sql.push(")");
            }
            Criterion::Chain {
                param,
                target_type,
                inner,
            } => {
                let s = self.alias("s");
                let t = self.alias("t");
                let rows = self.rows(param);
                sql.push(&format!(
                    "{alias}.rid IN (SELECT {s}.rid FROM sp_ref {s} WHERE "
                ));
                sql.param_rows(&s, &rows);
                sql.push(&format!(" AND {s}.ttype = "));
                sql.bind_text(target_type);
                sql.push(&format!(
                    " AND {s}.tid IN (SELECT {t}.id FROM resources {t} WHERE "
                ));
                self.where_clause(sql, &t, target_type, std::slice::from_ref(inner));
                sql.push("))");
            }
            Criterion::Has {
                source_type,
                reference,
                inner,
            } => {
                let s = self.alias("s");
                let t = self.alias("t");
                let rows = self.rows(reference);
                // Sources of the given type whose reference names this resource.
                sql.push(&format!("{alias}.id IN (SELECT {s}.tid FROM sp_ref {s} JOIN resources {t} ON {t}.rid = {s}.rid WHERE "));
                sql.param_rows(&s, &rows);
                sql.push(&format!(" AND {s}.ttype = "));
                sql.bind_text(resource_type);
                sql.push(" AND ");
                self.where_clause(sql, &t, source_type, std::slice::from_ref(inner));
                sql.push(")");
            }
        }
    }

    /// Opens `alias.rid IN (SELECT x.rid FROM table x WHERE x.param = ?` (driver) or
    /// `EXISTS (SELECT 1 FROM table x WHERE x.rid = alias.rid AND x.param = ?` (probe).
    fn open_subquery(
        &mut self,
        sql: &mut Sql,
        alias: &str,
        param: &ParamRef,
        x: &str,
        drive: bool,
    ) {
        let table = table_of(param.kind);
        if drive {
            sql.push(&format!(
                "{alias}.rid IN (SELECT {x}.rid FROM {table} {x} WHERE "
            ));
        } else {
            sql.push(&format!(
                "EXISTS (SELECT 1 FROM {table} {x} WHERE {x}.rid = {alias}.rid AND "
            ));
        }
        sql.param_rows(x, &self.rows(param));
    }

    /// `ORDER BY` terms for the resource alias `r`, ending with a unique tiebreak.
    pub fn order_by(&mut self, sql: &mut Sql, alias: &str, query: &SearchQuery) {
        sql.push(" ORDER BY ");
        for key in &query.sort {
            let dir = if key.descending { "DESC" } else { "ASC" };
            match &key.by {
                SortBy::Id => sql.push(&format!("{alias}.id {dir}, ")),
                SortBy::LastUpdated => sql.push(&format!("{alias}.last_updated {dir}, ")),
                SortBy::Param(param) => {
                    let (table, column) = match param.kind {
                        SearchParamType::Date => (
                            "sp_date",
                            if key.descending { "MAX(hi)" } else { "MIN(lo)" },
                        ),
                        SearchParamType::String => (
                            "sp_string",
                            if key.descending {
                                "MAX(norm)"
                            } else {
                                "MIN(norm)"
                            },
                        ),
                        SearchParamType::Token => (
                            "sp_token",
                            if key.descending {
                                "MAX(NULLIF(code, ''))"
                            } else {
                                "MIN(NULLIF(code, ''))"
                            },
                        ),
                        SearchParamType::Number => (
                            "sp_number",
                            if key.descending {
                                "MAX(value)"
                            } else {
                                "MIN(value)"
                            },
                        ),
                        SearchParamType::Quantity => (
                            "sp_quantity",
                            if key.descending {
                                "MAX(value)"
                            } else {
                                "MIN(value)"
                            },
                        ),
                        _ => (
                            "sp_uri",
                            if key.descending {
                                "MAX(value)"
                            } else {
                                "MIN(value)"
                            },
                        ),
                    };
                    // Resources without a value sort last either way.
                    let sub =
                        format!("(SELECT {column} FROM {table} k WHERE k.rid = {alias}.rid AND ");
                    let rows = self.rows(param);
                    sql.push(&sub);
                    sql.param_rows("k", &rows);
                    sql.push(&format!(") IS NULL, {sub}"));
                    sql.param_rows("k", &rows);
                    sql.push(&format!(") {dir}, "));
                }
            }
        }
        sql.push(&format!("{alias}.rid ASC"));
    }
}

fn table_of(kind: SearchParamType) -> &'static str {
    match kind {
        SearchParamType::String => "sp_string",
        SearchParamType::Token => "sp_token",
        SearchParamType::Date => "sp_date",
        SearchParamType::Reference => "sp_ref",
        SearchParamType::Number => "sp_number",
        SearchParamType::Quantity => "sp_quantity",
        SearchParamType::Uri | SearchParamType::Composite | SearchParamType::Special => "sp_uri",
    }
}

/// Lower ranks drive the query: exact ids and references first, open ranges last.
fn selectivity_rank(c: &Criterion) -> u8 {
    match c {
        Criterion::Id(_) => 0,
        Criterion::Match { values, .. } => match values.first() {
            Some(SearchValue::Reference { .. }) => 1,
            Some(SearchValue::Token(TokenValue { code: Some(_), .. })) => 2,
            Some(SearchValue::String {
                mode: StringMode::Exact,
                ..
            })
            | Some(SearchValue::Uri {
                mode: UriMode::Exact,
                ..
            }) => 2,
            Some(SearchValue::String {
                mode: StringMode::StartsWith,
                ..
            }) => 3,
            Some(SearchValue::Date(DateValue {
                prefix: Prefix::Eq, ..
            })) => 4,
            _ => 5,
        },
        Criterion::Chain { .. } | Criterion::Has { .. } => 4,
        Criterion::AnyOf(_) | Criterion::AllOf(_) => 8,
        Criterion::LastUpdated(_) => 6,
        Criterion::NotToken { .. } | Criterion::Missing { .. } => 7,
    }
}

fn value_condition(sql: &mut Sql, x: &str, value: &SearchValue) {
    match value {
        SearchValue::String { mode, value } => match mode {
            StringMode::StartsWith => prefix_range(sql, &format!("{x}.norm"), value),
            StringMode::Exact => {
                // norm is a function of exact: comparing both lets the clustered key serve.
                sql.push(&format!("({x}.norm = "));
                sql.bind_text(&keel_fhir::index::normalize_string(value));
                sql.push(&format!(" AND {x}.exact = "));
                sql.bind_text(value);
                sql.push(")");
            }
            StringMode::Contains => {
                let find = match sql.dialect {
                    Dialect::Sqlite => "instr",
                    Dialect::Postgres => "strpos",
                };
                sql.push(&format!("{find}({x}.norm, "));
                sql.bind_text(value);
                sql.push(") > 0");
            }
        },
        SearchValue::Token(t) => token_condition(sql, x, t),
        SearchValue::TokenText(text) => prefix_range(sql, &format!("{x}.text"), text),
        SearchValue::Date(v) => date_condition(sql, &format!("{x}.lo"), &format!("{x}.hi"), v),
        SearchValue::Reference {
            target_type,
            id,
            url,
        } => {
            match (target_type, id) {
                (Some(t), Some(id)) => {
                    sql.push(&format!("({x}.tid = "));
                    sql.bind_text(id);
                    sql.push(&format!(" AND {x}.ttype = "));
                    sql.bind_text(t);
                    sql.push(")");
                }
                (None, Some(id)) => {
                    sql.push(&format!("{x}.tid = "));
                    sql.bind_text(id);
                }
                _ => {
                    // A canonical may carry |version; match with or without it.
                    let bare = url.split('|').next().unwrap_or(url);
                    sql.push(&format!("({x}.url = "));
                    sql.bind_text(url);
                    sql.push(&format!(" OR {x}.url = "));
                    sql.bind_text(bare);
                    sql.push(")");
                }
            }
        }
        SearchValue::Number {
            prefix,
            value,
            low,
            high,
        } => number_condition(sql, &format!("{x}.value"), *prefix, *value, *low, *high),
        SearchValue::Quantity {
            prefix,
            value,
            low,
            high,
            system,
            code,
        } => {
            sql.push("(");
            number_condition(sql, &format!("{x}.value"), *prefix, *value, *low, *high);
            if let Some(system) = system {
                sql.push(&format!(" AND {x}.system = "));
                sql.bind_text(system);
            }
            if let Some(code) = code {
                sql.push(&format!(" AND ({x}.code = "));
                sql.bind_text(code);
                sql.push(&format!(" OR {x}.unit = "));
                sql.bind_text(code);
                sql.push(")");
            }
            sql.push(")");
        }
        SearchValue::Uri { mode, value } => match mode {
            UriMode::Exact => {
                sql.push(&format!("{x}.value = "));
                sql.bind_text(value);
            }
            UriMode::Below => prefix_range(sql, &format!("{x}.value"), value),
            UriMode::Above => {
                sql.push("substr(");
                sql.bind_text(value);
                sql.push(&format!(", 1, length({x}.value)) = {x}.value"));
            }
        },
    }
}

fn token_condition(sql: &mut Sql, x: &str, t: &TokenValue) {
    sql.push("(");
    match &t.code {
        Some(code) => {
            sql.push(&format!("{x}.code = "));
            sql.bind_text(code);
        }
        None => sql.push(&format!("{x}.code <> ''")),
    }
    match &t.system {
        None => {}
        Some(None) => sql.push(&format!(" AND {x}.system = ''")),
        Some(Some(system)) => {
            sql.push(&format!(" AND {x}.system = "));
            sql.bind_text(system);
        }
    }
    sql.push(")");
}

fn prefix_range(sql: &mut Sql, column: &str, prefix: &str) {
    sql.push(&format!("({column} >= "));
    sql.bind_text(prefix);
    sql.push(&format!(" AND {column} < "));
    sql.bind_text(&format!("{prefix}{MAX_CHAR}"));
    sql.push(")");
}

/// R4 §3.1.1.5.6: compares the stored range `[lo, hi)` with the searched range.
fn date_condition(sql: &mut Sql, lo: &str, hi: &str, v: &DateValue) {
    let DateRange { start, end } = v.range;
    let eq = |sql: &mut Sql| {
        sql.push(&format!("({lo} >= "));
        sql.bind_int(start);
        sql.push(&format!(" AND {hi} <= "));
        sql.bind_int(end);
        sql.push(")");
    };
    match v.prefix {
        Prefix::Eq => eq(sql),
        Prefix::Ne => {
            sql.push("NOT ");
            eq(sql);
        }
        Prefix::Gt => {
            sql.push(&format!("{hi} > "));
            sql.bind_int(end);
        }
        Prefix::Lt => {
            sql.push(&format!("{lo} < "));
            sql.bind_int(start);
        }
        Prefix::Ge => {
            sql.push(&format!("({hi} > "));
            sql.bind_int(end);
            sql.push(" OR ");
            eq(sql);
            sql.push(")");
        }
        Prefix::Le => {
            sql.push(&format!("({lo} < "));
            sql.bind_int(start);
            sql.push(" OR ");
            eq(sql);
            sql.push(")");
        }
        Prefix::Sa => {
            sql.push(&format!("{lo} >= "));
            sql.bind_int(end);
        }
        Prefix::Eb => {
            sql.push(&format!("{hi} <= "));
            sql.bind_int(start);
        }
        Prefix::Ap => {
            // Approximately: overlaps the searched range widened by 10% of its width (at least a day).
            let margin = ((end - start) / 10).max(86_400_000);
            sql.push(&format!("({lo} < "));
            sql.bind_int(end.saturating_add(margin));
            sql.push(&format!(" AND {hi} > "));
            sql.bind_int(start.saturating_sub(margin));
            sql.push(")");
        }
    }
}

fn number_condition(sql: &mut Sql, column: &str, prefix: Prefix, value: f64, low: f64, high: f64) {
    let cmp = |sql: &mut Sql, op: &str, v: f64| {
        sql.push(&format!("{column} {op} "));
        sql.bind(SqlValue::Real(v));
    };
    match prefix {
        Prefix::Eq => {
            sql.push("(");
            cmp(sql, ">=", low);
            sql.push(" AND ");
            cmp(sql, "<", high);
            sql.push(")");
        }
        Prefix::Ne => {
            sql.push("(");
            cmp(sql, "<", low);
            sql.push(" OR ");
            cmp(sql, ">=", high);
            sql.push(")");
        }
        Prefix::Gt | Prefix::Sa => cmp(sql, ">", value),
        Prefix::Lt | Prefix::Eb => cmp(sql, "<", value),
        Prefix::Ge => cmp(sql, ">=", value),
        Prefix::Le => cmp(sql, "<=", value),
        Prefix::Ap => {
            let margin = (value * 0.1).abs();
            sql.push("(");
            cmp(sql, ">=", value - margin);
            sql.push(" AND ");
            cmp(sql, "<=", value + margin);
            sql.push(")");
        }
    }
}
