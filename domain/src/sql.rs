//! `WHERE` clauses built from optional filters, with numbered placeholders (`$n`)
//! that both backends accept, the `at.id` cursors of newest-first lists, and the
//! placeholders of multi-row statements ([`Marks`]).

use crate::db::Backend;
use crate::error::{DomainError, Result};

/// A value bound to a placeholder.
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// Conditions joined with `AND`, and the values of their placeholders.
#[derive(Clone, Debug)]
pub(crate) struct Where {
    pub sql: String,
    pub args: Vec<Arg>,
}

type AnyQueryAs<'q, O> = sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>;

impl Where {
    /// Starts with `column = value` (the tenant, in practice).
    pub fn new(column: &str, value: &str) -> Self {
        Where {
            sql: format!("{column} = $1"),
            args: vec![Arg::Text(value.to_string())],
        }
    }

    /// Adds a text value; returns its placeholder.
    pub fn arg(&mut self, value: String) -> String {
        self.push(Arg::Text(value))
    }

    pub fn push(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    pub fn and(&mut self, clause: &str) {
        self.sql.push_str(" AND ");
        self.sql.push_str(clause);
    }

    /// `column = value` for each value given (an empty value means no filter).
    pub fn equal(&mut self, conditions: &[(&str, &Option<String>)]) {
        for (column, value) in conditions {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                let p = self.arg(value.to_string());
                self.and(&format!("{column} = {p}"));
            }
        }
    }

    /// `from <= column < to`, either end optional.
    pub fn between(&mut self, column: &str, from: Option<i64>, to: Option<i64>) {
        if let Some(from) = from {
            let p = self.push(Arg::Int(from));
            self.and(&format!("{column} >= {p}"));
        }
        if let Some(to) = to {
            let p = self.push(Arg::Int(to));
            self.and(&format!("{column} < {p}"));
        }
    }

    /// Any of `columns` contains `text`, ignoring case (blank text: no filter).
    pub fn contains(&mut self, columns: &[&str], text: Option<&str>) {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            return;
        };
        let p = self.arg(format!("%{}%", escape_like(&text.to_lowercase())));
        let any = columns
            .iter()
            .map(|c| format!("LOWER({c}) LIKE {p} ESCAPE '\\'"))
            .collect::<Vec<_>>()
            .join(" OR ");
        self.and(&format!("({any})"));
    }

    /// Rows after `cursor` in a list ordered by `at_column DESC, id_column DESC`.
    pub fn before(&mut self, at_column: &str, id_column: &str, cursor: Option<&str>) -> Result<()> {
        let Some(cursor) = cursor else {
            return Ok(());
        };
        let (at, id) = cursor
            .split_once('.')
            .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
            .ok_or_else(|| DomainError::invalid("cursor", "is not a cursor from this API"))?;
        let (a, i) = (self.push(Arg::Int(at)), self.arg(id));
        self.and(&format!(
            "({at_column} < {a} OR ({at_column} = {a} AND {id_column} < {i}))"
        ));
        Ok(())
    }

    /// Binds the placeholders' values to `query`, in order.
    pub fn bind<'q, O>(&self, mut query: AnyQueryAs<'q, O>) -> AnyQueryAs<'q, O> {
        for arg in &self.args {
            query = match arg {
                Arg::Text(text) => query.bind(text.clone()),
                Arg::Int(n) => query.bind(*n),
            };
        }
        query
    }
}

/// The cursor [`Where::before`] reads: the last row's time and id.
pub(crate) fn cursor(at: i64, id: &str) -> String {
    format!("{at}.{id}")
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Rows or values per multi-row statement: far below both backends' parameter limits.
pub(crate) const PER_STATEMENT: usize = 200;

/// `items` in runs of at most [`PER_STATEMENT`], each without a repeated `key`.
pub(crate) fn distinct_chunks<'t, T, K: Eq + std::hash::Hash>(
    items: &'t [T],
    key: impl Fn(&'t T) -> K,
) -> Vec<&'t [T]> {
    let mut chunks = Vec::new();
    let (mut start, mut seen) = (0, std::collections::HashSet::new());
    for (i, item) in items.iter().enumerate() {
        if i - start == PER_STATEMENT || !seen.insert(key(item)) {
            chunks.push(&items[start..i]);
            start = i;
            seen.clear();
            seen.insert(key(item));
        }
    }
    if start < items.len() {
        chunks.push(&items[start..]);
    }
    chunks
}

/// Placeholders for a statement whose values are bound in the order the placeholders
/// appear, each once. On SQLite they are anonymous `?`: sqlx asks SQLite for the name
/// of every numbered one, and SQLite finds it by scanning the statement's list of
/// names, so binding a multi-row insert of n values took n² steps (a tenth of the
/// single writer's time under load, for the inbound events' inserts).
pub(crate) struct Marks {
    anonymous: bool,
    count: usize,
}

impl Marks {
    pub fn new(conn: &sqlx::AnyConnection) -> Self {
        Self::for_backend(Backend::of(conn))
    }

    fn for_backend(backend: Backend) -> Self {
        Marks {
            anonymous: backend == Backend::Sqlite,
            count: 0,
        }
    }

    /// The next placeholder.
    pub fn next(&mut self) -> String {
        self.count += 1;
        if self.anonymous {
            "?".into()
        } else {
            format!("${}", self.count)
        }
    }

    /// The next `n` placeholders, comma-separated (a `VALUES` row's inside).
    pub fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.next()).collect::<Vec<_>>().join(", ")
    }
}

/// `$from, $from+1, …` for `n` values (an `IN (…)` list or a `VALUES` row).
pub(crate) fn params(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_chunks_split_at_a_repeated_key_and_at_the_statement_size() {
        let keys = ["a", "b", "a", "c", "c"];
        let chunks = distinct_chunks(&keys, |k| *k);
        assert_eq!(chunks, vec![&["a", "b"][..], &["a", "c"][..], &["c"][..]]);
        let many: Vec<usize> = (0..PER_STATEMENT * 2 + 1).collect();
        let sizes: Vec<usize> = distinct_chunks(&many, |n| *n)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, vec![PER_STATEMENT, PER_STATEMENT, 1]);
        assert!(distinct_chunks(&[] as &[u8], |n| *n).is_empty());
    }

    #[test]
    fn conditions_number_their_placeholders_in_order() {
        let mut w = Where::new("tenant_id", "acme");
        w.equal(&[
            ("source", &Some("sfmc".into())),
            ("status", &Some(String::new())),
        ]);
        w.between("received_at", Some(5), None);
        w.contains(&["id", "body"], Some(" 50%_ "));
        w.before("received_at", "id", Some("9.evt_1")).unwrap();
        assert_eq!(
            w.sql,
            "tenant_id = $1 AND source = $2 AND received_at >= $3 \
             AND (LOWER(id) LIKE $4 ESCAPE '\\' OR LOWER(body) LIKE $4 ESCAPE '\\') \
             AND (received_at < $5 OR (received_at = $5 AND id < $6))"
        );
        assert!(matches!(&w.args[3], Arg::Text(t) if t == "%50\\%\\_%"));
        assert!(w.before("at", "id", Some("nonsense")).is_err());
    }

    #[test]
    fn marks_are_anonymous_on_sqlite_and_numbered_on_postgres() {
        let mut sqlite = Marks::for_backend(Backend::Sqlite);
        assert_eq!(
            format!("({}), ({})", sqlite.list(2), sqlite.next()),
            "(?, ?), (?)"
        );
        let mut postgres = Marks::for_backend(Backend::Postgres);
        assert_eq!(
            format!("({}), ({})", postgres.list(2), postgres.next()),
            "($1, $2), ($3)"
        );
    }

    #[test]
    fn params_count_from_the_first_placeholder() {
        assert_eq!(params(3, 3), "$3, $4, $5");
        assert_eq!(params(1, 0), "");
    }
}
