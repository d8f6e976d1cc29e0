//! Index rows of an open write transaction, held back and written when the transaction next
//! searches or commits, many rows per statement. (Sorting them first was measured: it cost
//! more than it saved, see BENCHMARKS.md.)

use keel_fhir::index::IndexValue;
use rusqlite::{Connection, ToSql};

/// Rows inserted per statement.
const ROWS_PER_STATEMENT: usize = 64;

#[derive(Default)]
pub(crate) struct PendingIndex {
    string: Vec<(i64, String, String, i64)>,
    token: Vec<(i64, String, String, String, i64)>,
    date: Vec<(i64, i64, i64, i64)>,
    reference: Vec<(i64, String, String, String, i64)>,
    number: Vec<(i64, f64, i64)>,
    quantity: Vec<(i64, f64, String, String, String, i64)>,
    uri: Vec<(i64, String, i64)>,
}

impl PendingIndex {
    pub(crate) fn add(&mut self, param: i64, rid: i64, value: IndexValue) {
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
            } => {
                // A reference that names its target is searched by type and id; its text is
                // kept only when it does not (a canonical, a `urn:`), so rows stay short.
                let url = if target_id.is_some() {
                    String::new()
                } else {
                    url
                };
                self.reference
                    .push((param, text(target_id), text(target_type), url, rid))
            }
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
    pub(crate) fn forget(&mut self, rid: i64) {
        self.string.retain(|r| r.3 != rid);
        self.token.retain(|r| r.4 != rid);
        self.date.retain(|r| r.3 != rid);
        self.reference.retain(|r| r.4 != rid);
        self.number.retain(|r| r.2 != rid);
        self.quantity.retain(|r| r.5 != rid);
        self.uri.retain(|r| r.2 != rid);
    }

    /// Writes every held row and empties the buffer.
    pub(crate) fn flush(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        insert(
            conn,
            "sp_string(param, norm, exact, rid)",
            4,
            &std::mem::take(&mut self.string),
            |r| vec![&r.0, &r.1, &r.2, &r.3],
        )?;
        insert(
            conn,
            "sp_token(param, code, system, text, rid)",
            5,
            &std::mem::take(&mut self.token),
            |r| vec![&r.0, &r.1, &r.2, &r.3, &r.4],
        )?;
        insert(
            conn,
            "sp_date(param, lo, hi, rid)",
            4,
            &std::mem::take(&mut self.date),
            |r| vec![&r.0, &r.1, &r.2, &r.3],
        )?;
        insert(
            conn,
            "sp_ref(param, tid, ttype, url, rid)",
            5,
            &std::mem::take(&mut self.reference),
            |r| vec![&r.0, &r.1, &r.2, &r.3, &r.4],
        )?;
        insert(
            conn,
            "sp_number(param, value, rid)",
            3,
            &std::mem::take(&mut self.number),
            |r| vec![&r.0, &r.1, &r.2],
        )?;
        insert(
            conn,
            "sp_quantity(param, value, system, code, unit, rid)",
            6,
            &std::mem::take(&mut self.quantity),
            |r| vec![&r.0, &r.1, &r.2, &r.3, &r.4, &r.5],
        )?;
        insert(
            conn,
            "sp_uri(param, value, rid)",
            3,
            &std::mem::take(&mut self.uri),
            |r| vec![&r.0, &r.1, &r.2],
        )?;
        Ok(())
    }
}

/// `INSERT OR IGNORE` of `rows` into `target` (`table(columns)`), many rows per statement.
fn insert<R>(
    conn: &Connection,
    target: &str,
    columns: usize,
    rows: &[R],
    values: impl Fn(&R) -> Vec<&dyn ToSql>,
) -> rusqlite::Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let row = format!("({})", vec!["?"; columns].join(","));
        let sql = format!(
            "INSERT OR IGNORE INTO {target} VALUES {}",
            vec![row.as_str(); chunk.len()].join(",")
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut index = 1;
        for r in chunk {
            for value in values(r) {
                stmt.raw_bind_parameter(index, value)?;
                index += 1;
            }
        }
        stmt.raw_execute()?;
    }
    Ok(())
}
