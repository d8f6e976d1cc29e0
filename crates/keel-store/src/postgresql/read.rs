//! Reads, history and search on PostgreSQL: the same queries as the SQLite backend, in the
//! compiler's PostgreSQL dialect, with sets of rows fetched by array (`= ANY($1)`) rather than
//! one statement per row.

use super::{PgConn, unavailable};
use crate::query::{Compiler, Dialect, ParamIds, ParamRows, Sql, SqlValue};
use keel_core::store::{
    HistoryPage, HistoryQuery, HistoryScope, ScopedQuery, SearchResult, SequencedVersion,
    StoreResult, StoredResource, TypeVisibility, Visibility, WriteMethod,
};
use keel_fhir::search::{Criterion, Include, SearchQuery, TotalMode};
use postgres::Row;
use postgres::types::ToSql;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// How many `_include:iterate` rounds are followed at most (as in SQLite).
const MAX_INCLUDE_ROUNDS: usize = 4;

const SELECT_VERSION: &str = "SELECT r.rtype, r.id, v.version, v.last_updated, v.method, v.body FROM versions v JOIN resources r ON r.rid = v.rid";

fn stored(row: &Row) -> StoredResource {
    let method: &str = row.get(4);
    let body: Option<String> = row.get(5);
    StoredResource {
        resource_type: row.get(0),
        id: row.get(1),
        version: row.get::<_, i64>(2) as u64,
        last_updated: row.get(3),
        body: body.map(Arc::from),
        method: match method {
            "C" => WriteMethod::Create,
            "D" => WriteMethod::Delete,
            _ => WriteMethod::Update,
        },
    }
}

fn bound(values: &[SqlValue]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|v| -> &(dyn ToSql + Sync) {
            match v {
                SqlValue::Int(i) => i,
                SqlValue::Real(f) => f,
                SqlValue::Text(s) => s,
            }
        })
        .collect()
}

pub fn current(
    conn: &mut PgConn,
    resource_type: &str,
    id: &str,
) -> StoreResult<Option<StoredResource>> {
    let row = conn
        .query_opt(
            &format!("{SELECT_VERSION} WHERE r.rtype = $1 AND r.id = $2 AND v.version = r.version"),
            &[&resource_type, &id],
        )
        .map_err(unavailable)?;
    Ok(row.as_ref().map(stored))
}

pub fn version(
    conn: &mut PgConn,
    resource_type: &str,
    id: &str,
    version: u64,
) -> StoreResult<Option<StoredResource>> {
    let row = conn
        .query_opt(
            &format!("{SELECT_VERSION} WHERE r.rtype = $1 AND r.id = $2 AND v.version = $3"),
            &[&resource_type, &id, &(version as i64)],
        )
        .map_err(unavailable)?;
    Ok(row.as_ref().map(stored))
}

pub fn version_head(conn: &mut PgConn) -> StoreResult<u64> {
    let head: i64 = conn
        .query("SELECT COALESCE(MAX(seq), 0)::bigint FROM versions", &[])
        .map_err(unavailable)?
        .first()
        .map_or(0, |row| row.get(0));
    Ok(head.max(0) as u64)
}

pub fn versions_between(
    conn: &mut PgConn,
    resource_type: &str,
    after: u64,
    upto: u64,
    limit: usize,
) -> StoreResult<Vec<SequencedVersion>> {
    let rows = conn
        .query(
            "SELECT r.rtype, r.id, v.version, v.last_updated, v.method, v.body, v.seq \
             FROM versions v JOIN resources r ON r.rid = v.rid \
             WHERE v.seq > $1 AND v.seq <= $2 AND r.rtype = $3 ORDER BY v.seq LIMIT $4",
            &[
                &i64::try_from(after).unwrap_or(i64::MAX),
                &i64::try_from(upto).unwrap_or(i64::MAX),
                &resource_type,
                &i64::try_from(limit).unwrap_or(i64::MAX),
            ],
        )
        .map_err(unavailable)?;
    Ok(rows
        .iter()
        .map(|row| SequencedVersion {
            resource: stored(row),
            sequence: row.get::<_, i64>(6) as u64,
        })
        .collect())
}

/// The current versions of `rids`, in the order given.
fn current_by_rids(conn: &mut PgConn, rids: &[i64]) -> StoreResult<Vec<StoredResource>> {
    if rids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = conn
        .query(
            "SELECT r.rtype, r.id, v.version, v.last_updated, v.method, v.body, r.rid \
             FROM versions v JOIN resources r ON r.rid = v.rid \
             WHERE r.rid = ANY($1) AND v.version = r.version",
            &[&rids],
        )
        .map_err(unavailable)?;
    let mut by_rid: HashMap<i64, StoredResource> = rows
        .iter()
        .map(|row| (row.get::<_, i64>(6), stored(row)))
        .collect();
    Ok(rids.iter().filter_map(|rid| by_rid.remove(rid)).collect())
}

pub fn search(
    conn: &mut PgConn,
    params: &ParamIds,
    scoped: &ScopedQuery,
) -> StoreResult<SearchResult> {
    let query = scoped.query();
    let mut compiler = Compiler::new(params);
    let mut filter = Sql::new(Dialect::Postgres);
    filter.push("FROM resources r WHERE ");
    compiler.where_clause(&mut filter, "r", &query.resource_type, &query.criteria);
    let count_only = |conn: &mut PgConn| -> StoreResult<u64> {
        let rows = conn
            .query(
                &format!("SELECT COUNT(*) {}", filter.text),
                &bound(&filter.values),
            )
            .map_err(unavailable)?;
        Ok(rows.first().map_or(0, |row| row.get::<_, i64>(0)) as u64)
    };
    if query.summary_count || query.count == 0 {
        let total = if query.summary_count || query.total == TotalMode::Accurate {
            Some(count_only(conn)?)
        } else {
            None
        };
        return Ok(SearchResult {
            matches: Vec::new(),
            included: Vec::new(),
            total,
        });
    }

    // One pass gives the page and, through the window function, the total over all pages.
    let with_total = query.total == TotalMode::Accurate;
    let columns = if with_total {
        "r.rid, COUNT(*) OVER ()"
    } else {
        "r.rid, 0::bigint"
    };
    let mut page = Sql {
        text: format!("SELECT {columns} {}", filter.text),
        values: filter.values.clone(),
        dialect: Dialect::Postgres,
    };
    compiler.order_by(&mut page, "r", query);
    page.push(" LIMIT ");
    page.bind(SqlValue::Int(query.count as i64));
    page.push(" OFFSET ");
    page.bind(SqlValue::Int(query.offset as i64));
    let rows: Vec<(i64, i64)> = conn
        .query(&page.text, &bound(&page.values))
        .map_err(unavailable)?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let total = match (with_total, rows.first()) {
        (false, _) => None,
        (true, Some((_, n))) => Some(*n as u64),
        // A page past the end carries no count: ask for it.
        (true, None) if query.offset > 0 => Some(count_only(conn)?),
        (true, None) => Some(0),
    };
    let rids: Vec<i64> = rows.into_iter().map(|(rid, _)| rid).collect();
    let matches = current_by_rids(conn, &rids)?;
    let included = includes(conn, params, scoped, &rids)?;
    Ok(SearchResult {
        matches,
        included,
        total,
    })
}

pub fn search_ids(
    conn: &mut PgConn,
    params: &ParamIds,
    query: &SearchQuery,
) -> StoreResult<Vec<String>> {
    let mut compiler = Compiler::new(params);
    let mut sql = Sql::new(Dialect::Postgres);
    sql.push("SELECT r.id FROM resources r WHERE ");
    compiler.where_clause(&mut sql, "r", &query.resource_type, &query.criteria);
    compiler.order_by(&mut sql, "r", query);
    sql.push(" LIMIT ");
    sql.bind(SqlValue::Int(query.count as i64));
    sql.push(" OFFSET ");
    sql.bind(SqlValue::Int(query.offset as i64));
    Ok(conn
        .query(&sql.text, &bound(&sql.values))
        .map_err(unavailable)?
        .iter()
        .map(|row| row.get(0))
        .collect())
}

/// Follows `_include` and `_revinclude` from the page (and, for `:iterate`, from what they add),
/// keeping only what the visibility allows: a hidden resource is neither returned nor followed.
fn includes(
    conn: &mut PgConn,
    params: &ParamIds,
    scoped: &ScopedQuery,
    page: &[i64],
) -> StoreResult<Vec<StoredResource>> {
    let query = scoped.query();
    if query.includes.is_empty() && query.revincludes.is_empty() {
        return Ok(Vec::new());
    }
    let mut filter = VisibilityFilter::new(params, scoped.visibility());
    let mut seen: HashSet<i64> = page.iter().copied().collect();
    let mut added: Vec<i64> = Vec::new();
    let mut frontier: Vec<i64> = page.to_vec();
    for round in 0..MAX_INCLUDE_ROUNDS {
        let mut next = Vec::new();
        for include in query.includes.iter().filter(|i| round == 0 || i.iterate) {
            for rid in forward(conn, params, include, &frontier)? {
                if seen.insert(rid) && filter.allows(conn, rid)? {
                    next.push(rid);
                }
            }
        }
        for include in query.revincludes.iter().filter(|i| round == 0 || i.iterate) {
            for rid in reverse(conn, params, include, &frontier)? {
                if seen.insert(rid) && filter.allows(conn, rid)? {
                    next.push(rid);
                }
            }
        }
        if next.is_empty() {
            break;
        }
        added.extend(&next);
        frontier = next;
    }
    current_by_rids(conn, &added)
}

/// Checks single resources against a visibility, one compiled statement per type.
struct VisibilityFilter<'a> {
    params: &'a ParamIds,
    visibility: &'a Visibility,
    /// Per type: `None` hidden, `Some(None)` all, `Some(Some(sql))` the check.
    checks: HashMap<String, Option<Option<Sql>>>,
}

impl<'a> VisibilityFilter<'a> {
    fn new(params: &'a ParamIds, visibility: &'a Visibility) -> Self {
        VisibilityFilter {
            params,
            visibility,
            checks: HashMap::new(),
        }
    }

    fn allows(&mut self, conn: &mut PgConn, rid: i64) -> StoreResult<bool> {
        if self.visibility.is_whole_store() {
            return Ok(true);
        }
        let Some(row) = conn
            .query_opt("SELECT rtype FROM resources WHERE rid = $1", &[&rid])
            .map_err(unavailable)?
        else {
            return Ok(false);
        };
        let rtype: String = row.get(0);
        let (params, visibility) = (self.params, self.visibility);
        let check =
            self.checks
                .entry(rtype.clone())
                .or_insert_with(|| match visibility.of_type(&rtype) {
                    TypeVisibility::Hidden => None,
                    TypeVisibility::All => Some(None),
                    TypeVisibility::Where(criteria) => {
                        let mut sql = Sql::new(Dialect::Postgres);
                        sql.push("SELECT 1 FROM resources r WHERE ");
                        Compiler::new(params).where_clause(&mut sql, "r", &rtype, criteria);
                        sql.push(" AND r.rid = ");
                        sql.bind(SqlValue::Int(0));
                        Some(Some(sql))
                    }
                });
        let Some(check) = check else {
            return Ok(false);
        };
        let Some(sql) = check else {
            return Ok(true);
        };
        // The last bound value is the resource's rid.
        let mut values = sql.values.clone();
        if let Some(last) = values.last_mut() {
            *last = SqlValue::Int(rid);
        }
        Ok(conn
            .query_opt(&sql.text, &bound(&values))
            .map_err(unavailable)?
            .is_some())
    }
}

/// The include parameter's rows as parameter ids and, for a derived reference parameter,
/// the target type its source's rows must have.
fn include_rows(params: &ParamIds, include: &Include) -> (Vec<i64>, Option<String>) {
    match params.rows(&include.param.resource_type, &include.param.code) {
        ParamRows::Own(id) => (vec![id], None),
        ParamRows::Union(ids) => (ids, None),
        ParamRows::Targets { param, target_type } => (vec![param], Some(target_type)),
    }
}

/// Resources that `from` refer to through the include's parameter, in the order of `from`.
fn forward(
    conn: &mut PgConn,
    params: &ParamIds,
    include: &Include,
    from: &[i64],
) -> StoreResult<Vec<i64>> {
    let (ids, target_of_source) = include_rows(params, include);
    let rows = conn
        .query(
            "SELECT t.rid FROM sp_ref s JOIN resources src ON src.rid = s.rid \
             JOIN resources t ON t.rtype = s.ttype AND t.id = s.tid \
             WHERE s.rid = ANY($1) AND s.param = ANY($2) AND src.rtype = $3 AND t.deleted = 0 \
             AND ($4::text IS NULL OR t.rtype = $4) AND ($5::text IS NULL OR s.ttype = $5) \
             ORDER BY array_position($1, s.rid), s.tid, t.rid",
            &[
                &from,
                &ids,
                &include.source_type,
                &include.target_type,
                &target_of_source,
            ],
        )
        .map_err(unavailable)?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Resources of the include's source type that refer to `to` through its parameter.
fn reverse(
    conn: &mut PgConn,
    params: &ParamIds,
    include: &Include,
    to: &[i64],
) -> StoreResult<Vec<i64>> {
    let (ids, target_of_source) = include_rows(params, include);
    let rows = conn
        .query(
            "SELECT s.rid FROM resources t JOIN sp_ref s ON s.ttype = t.rtype AND s.tid = t.id AND s.param = ANY($1) \
             JOIN resources src ON src.rid = s.rid WHERE t.rid = ANY($2) AND src.deleted = 0 AND src.rtype = $3 \
             AND ($4::text IS NULL OR s.ttype = $4) \
             ORDER BY array_position($2, t.rid), s.rid",
            &[&ids, &to, &include.source_type, &target_of_source],
        )
        .map_err(unavailable)?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

pub fn history(
    conn: &mut PgConn,
    params: &ParamIds,
    query: &HistoryQuery,
    visibility: &Visibility,
) -> StoreResult<HistoryPage> {
    let since = query.since.unwrap_or(i64::MIN);
    let mut filter = Sql::new(Dialect::Postgres);
    match &query.scope {
        HistoryScope::System => {}
        HistoryScope::Type(t) => {
            filter.push("r.rtype = ");
            filter.bind(SqlValue::Text(t.clone()));
            filter.push(" AND ");
        }
        HistoryScope::Instance { resource_type, id } => {
            filter.push("r.rtype = ");
            filter.bind(SqlValue::Text(resource_type.clone()));
            filter.push(" AND r.id = ");
            filter.bind(SqlValue::Text(id.clone()));
            filter.push(" AND ");
        }
    }
    filter.push("v.last_updated >= ");
    filter.bind(SqlValue::Int(since));
    visible_versions(&mut filter, params, &query.scope, visibility);
    let total: i64 = conn
        .query(
            &format!(
                "SELECT COUNT(*) FROM versions v JOIN resources r ON r.rid = v.rid WHERE {}",
                filter.text
            ),
            &bound(&filter.values),
        )
        .map_err(unavailable)?
        .first()
        .map_or(0, |row| row.get(0));
    filter.push(" ORDER BY v.seq DESC LIMIT ");
    filter.bind(SqlValue::Int(query.count as i64));
    filter.push(" OFFSET ");
    filter.bind(SqlValue::Int(query.offset as i64));
    let versions = conn
        .query(
            &format!("{SELECT_VERSION} WHERE {}", filter.text),
            &bound(&filter.values),
        )
        .map_err(unavailable)?
        .iter()
        .map(stored)
        .collect();
    Ok(HistoryPage {
        versions,
        total: total as u64,
    })
}

/// Restricts a history filter over `r` to resources whose current version the visibility
/// allows (an instance's history is decided on before it is asked for).
fn visible_versions(
    filter: &mut Sql,
    params: &ParamIds,
    scope: &HistoryScope,
    visibility: &Visibility,
) {
    let Some(types) = visibility.types() else {
        return;
    };
    if matches!(scope, HistoryScope::Instance { .. }) {
        return;
    }
    let mut types: Vec<(&str, &[Criterion])> = types
        .filter(|(t, _)| match scope {
            HistoryScope::Type(wanted) => t == wanted,
            _ => true,
        })
        .collect();
    types.sort_by_key(|(t, _)| *t);
    filter.push(" AND (FALSE");
    for (t, criteria) in types {
        filter.push(" OR r.rid IN (SELECT a.rid FROM resources a WHERE ");
        Compiler::new(params).where_clause(filter, "a", t, criteria);
        filter.push(")");
    }
    filter.push(")");
}

pub fn referencing(
    conn: &mut PgConn,
    params: &ParamIds,
    resource_type: &str,
    id: &str,
    visibility: &Visibility,
) -> StoreResult<Vec<StoredResource>> {
    let rids: Vec<i64> = conn
        .query(
            "SELECT DISTINCT s.rid FROM sp_ref s JOIN resources src ON src.rid = s.rid \
             WHERE s.ttype = $1 AND s.tid = $2 AND src.deleted = 0 ORDER BY s.rid",
            &[&resource_type, &id],
        )
        .map_err(unavailable)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut filter = VisibilityFilter::new(params, visibility);
    let mut visible = Vec::with_capacity(rids.len());
    for rid in rids {
        if filter.allows(conn, rid)? {
            visible.push(rid);
        }
    }
    current_by_rids(conn, &visible)
}
