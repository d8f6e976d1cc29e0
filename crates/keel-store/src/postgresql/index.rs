//! Index rows of an open PostgreSQL write transaction, held back and written when the
//! transaction next searches or commits: one `INSERT ... SELECT FROM unnest(arrays)` per table,
//! whatever the number of rows. Rows are sorted and their duplicates (a value a resource
//! holds twice) dropped first, so tables without floating-point columns take a plain insert:
//! a resource's rows are all new (a later version deletes the earlier rows first), and
//! `ON CONFLICT` would cost every row a speculative insertion.

use super::PgConn;
use keel_fhir::index::IndexValue;
use postgres::types::ToSql;

#[derive(Default)]
pub(super) struct PendingRows {
    string: Vec<(i64, String, String, i64)>,
    token: Vec<(i64, String, String, String, i64)>,
    date: Vec<(i64, i64, i64, i64)>,
    reference: Vec<(i64, String, String, String, i64)>,
    number: Vec<(i64, f64, i64)>,
    quantity: Vec<(i64, f64, String, String, String, i64)>,
    uri: Vec<(i64, String, i64)>,
}

impl PendingRows {
    pub(super) fn add(&mut self, param: i64, rid: i64, value: IndexValue) {
        let text = |v: Option<String>| v.unwrap_or_default();
        match value {
            IndexValue::String { normalized, exact } => {
                self.string.push((param, normalized, exact, rid))
            }
            IndexValue::Token {
                system,
                code,
                text: display,
            } => self
                .token
                .push((param, text(code), text(system), text(display), rid)),
            IndexValue::Date(range) => self.date.push((param, range.start, range.end, rid)),
            IndexValue::Reference {
                target_type,
                target_id,
                url,
            } => self
                .reference
                .push((param, text(target_id), text(target_type), url, rid)),
            IndexValue::Number(n) => self.number.push((param, n, rid)),
            IndexValue::Quantity {
                value,
                system,
                code,
                unit,
            } => self
                .quantity
                .push((param, value, text(system), text(code), text(unit), rid)),
            IndexValue::Uri(value) => self.uri.push((param, value, rid)),
        }
    }

    /// Drops the rows of a resource written earlier in this transaction (it has a newer version).
    pub(super) fn forget(&mut self, rid: i64) {
        self.string.retain(|r| r.3 != rid);
        self.token.retain(|r| r.4 != rid);
        self.date.retain(|r| r.3 != rid);
        self.reference.retain(|r| r.4 != rid);
        self.number.retain(|r| r.2 != rid);
        self.quantity.retain(|r| r.5 != rid);
        self.uri.retain(|r| r.2 != rid);
    }

    /// Writes every held row and empties the buffer.
    pub(super) fn flush(&mut self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        let rows = sorted_unique(std::mem::take(&mut self.string));
        if !rows.is_empty() {
            let (a, b, c, d): (Vec<i64>, Vec<String>, Vec<String>, Vec<i64>) = unzip4(rows);
            insert(
                conn,
                "sp_string(param, norm, exact, rid)",
                "$1::bigint[], $2::text[], $3::text[], $4::bigint[]",
                Rows::Unique,
                &[&a, &b, &c, &d],
            )?;
        }
        let rows = sorted_unique(std::mem::take(&mut self.token));
        if !rows.is_empty() {
            let (a, b, c, d, e) = unzip5(rows);
            insert(
                conn,
                "sp_token(param, code, system, text, rid)",
                "$1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[]",
                Rows::Unique,
                &[&a, &b, &c, &d, &e],
            )?;
        }
        let rows = sorted_unique(std::mem::take(&mut self.date));
        if !rows.is_empty() {
            let (a, b, c, d): (Vec<i64>, Vec<i64>, Vec<i64>, Vec<i64>) = unzip4(rows);
            insert(
                conn,
                "sp_date(param, lo, hi, rid)",
                "$1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]",
                Rows::Unique,
                &[&a, &b, &c, &d],
            )?;
        }
        let rows = sorted_unique(std::mem::take(&mut self.reference));
        if !rows.is_empty() {
            let (a, b, c, d, e) = unzip5(rows);
            insert(
                conn,
                "sp_ref(param, tid, ttype, url, rid)",
                "$1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[]",
                Rows::Unique,
                &[&a, &b, &c, &d, &e],
            )?;
        }
        let rows = std::mem::take(&mut self.number);
        if !rows.is_empty() {
            let (a, b, c): (Vec<i64>, Vec<f64>, Vec<i64>) = unzip3(rows);
            insert(
                conn,
                "sp_number(param, value, rid)",
                "$1::bigint[], $2::float8[], $3::bigint[]",
                Rows::MayRepeat,
                &[&a, &b, &c],
            )?;
        }
        let rows = std::mem::take(&mut self.quantity);
        if !rows.is_empty() {
            let cols = unzip6(rows);
            insert(
                conn,
                "sp_quantity(param, value, system, code, unit, rid)",
                "$1::bigint[], $2::float8[], $3::text[], $4::text[], $5::text[], $6::bigint[]",
                Rows::MayRepeat,
                &[&cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5],
            )?;
        }
        let rows = sorted_unique(std::mem::take(&mut self.uri));
        if !rows.is_empty() {
            let (a, b, c): (Vec<i64>, Vec<String>, Vec<i64>) = unzip3(rows);
            insert(
                conn,
                "sp_uri(param, value, rid)",
                "$1::bigint[], $2::text[], $3::bigint[]",
                Rows::Unique,
                &[&a, &b, &c],
            )?;
        }
        Ok(())
    }
}

/// `rows` in order, each once.
fn sorted_unique<T: Ord>(mut rows: Vec<T>) -> Vec<T> {
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// Whether the rows given to [`insert`] may hold one row twice.
#[derive(Clone, Copy)]
enum Rows {
    /// Deduplicated by [`sorted_unique`]: a plain insert.
    Unique,
    /// Floating-point columns keep them from being sorted: `ON CONFLICT DO NOTHING`.
    MayRepeat,
}

/// Inserts rows into `target`.
fn insert(
    conn: &mut PgConn,
    target: &str,
    arrays: &str,
    rows: Rows,
    columns: &[&(dyn ToSql + Sync)],
) -> Result<(), postgres::Error> {
    let on_conflict = match rows {
        Rows::Unique => "",
        Rows::MayRepeat => " ON CONFLICT DO NOTHING",
    };
    let sql = format!("INSERT INTO {target} SELECT * FROM unnest({arrays}){on_conflict}");
    conn.execute(&sql, columns).map(|_| ())
}

fn unzip3<A, B, C>(rows: Vec<(A, B, C)>) -> (Vec<A>, Vec<B>, Vec<C>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for (a, b, c) in rows {
        out.0.push(a);
        out.1.push(b);
        out.2.push(c);
    }
    out
}

fn unzip4<A, B, C, D>(rows: Vec<(A, B, C, D)>) -> (Vec<A>, Vec<B>, Vec<C>, Vec<D>) {
    let mut out = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (a, b, c, d) in rows {
        out.0.push(a);
        out.1.push(b);
        out.2.push(c);
        out.3.push(d);
    }
    out
}

type Columns5<A, B, C, D, E> = (Vec<A>, Vec<B>, Vec<C>, Vec<D>, Vec<E>);

fn unzip5<A, B, C, D, E>(rows: Vec<(A, B, C, D, E)>) -> Columns5<A, B, C, D, E> {
    let mut out = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (a, b, c, d, e) in rows {
        out.0.push(a);
        out.1.push(b);
        out.2.push(c);
        out.3.push(d);
        out.4.push(e);
    }
    out
}

type Columns6<A, B, C, D, E, F> = (Vec<A>, Vec<B>, Vec<C>, Vec<D>, Vec<E>, Vec<F>);

fn unzip6<A, B, C, D, E, F>(rows: Vec<(A, B, C, D, E, F)>) -> Columns6<A, B, C, D, E, F> {
    let mut out = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (a, b, c, d, e, f) in rows {
        out.0.push(a);
        out.1.push(b);
        out.2.push(c);
        out.3.push(d);
        out.4.push(e);
        out.5.push(f);
    }
    out
}
