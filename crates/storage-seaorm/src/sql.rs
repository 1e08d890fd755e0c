//! SQL written by hand, with its parameters as `#n#`, rendered for the backend at
//! hand: the statements SeaORM's builders cannot express in one round trip (the
//! append rule of `append`, the lease operations of `leases`).

use std::borrow::Cow;
use std::sync::OnceLock;

use confab_domain::error::RepoError;
use sea_orm::{DbBackend, Statement, Value};

/// Hand-written SQL that runs with every message (the append's), rendered once per
/// backend on first use instead of on every statement: what `statement` would make of
/// it, kept as its text and the parameter each placeholder takes.
pub(crate) struct Template {
    text: Cow<'static, str>,
    sqlite: OnceLock<Option<Rendered>>,
    postgres: OnceLock<Option<Rendered>>,
}

/// A template rendered for one backend: its text with the backend's placeholders,
/// and for each placeholder, in order, the index of its parameter.
struct Rendered {
    sql: String,
    order: Vec<usize>,
}

impl Template {
    pub(crate) fn new(text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            text: text.into(),
            sqlite: OnceLock::new(),
            postgres: OnceLock::new(),
        }
    }

    /// The statement for `backend` with `parameters` bound, as [`statement`] gives it.
    pub(crate) fn statement(
        &self,
        parameters: &[Value],
        backend: DbBackend,
    ) -> Result<Statement, RepoError> {
        match backend {
            DbBackend::Postgres => &self.postgres,
            _ => &self.sqlite,
        }
        .get_or_init(|| Rendered::of(&self.text, backend))
        .as_ref()
        .ok_or_else(unclosed_parameter)?
        .bind(parameters, backend)
    }
}

impl Rendered {
    /// `template` for `backend`; `None` when a parameter is not closed.
    fn of(template: &str, backend: DbBackend) -> Option<Self> {
        let mut sql = String::with_capacity(template.len());
        let mut order = Vec::new();
        let mut rest = template;
        while let Some((before, after)) = rest.split_once('#') {
            let (number, after) = after.split_once('#')?;
            // An unknown number is caught when the statement binds its parameters.
            order.push(
                number
                    .parse::<usize>()
                    .map_or(usize::MAX, |n| n.wrapping_sub(1)),
            );
            sql.push_str(before);
            match backend {
                DbBackend::Postgres => {
                    sql.push('$');
                    sql.push_str(&order.len().to_string());
                }
                _ => sql.push('?'),
            }
            rest = after;
        }
        sql.push_str(rest);
        Some(Self { sql, order })
    }

    /// The statement with `parameters[n]` for each placeholder numbered `n + 1`, one
    /// value per occurrence, so that SQLite's statements bind in order alike through
    /// sqlx and rusqlite. PostgreSQL numbers its placeholders across the statement.
    fn bind(&self, parameters: &[Value], backend: DbBackend) -> Result<Statement, RepoError> {
        let values = self
            .order
            .iter()
            .map(|&n| parameters.get(n).cloned().ok_or_else(unknown_parameter))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Statement::from_sql_and_values(
            backend,
            self.sql.as_str(),
            values,
        ))
    }
}

fn unknown_parameter() -> RepoError {
    RepoError::Internal("an unknown parameter in hand-written SQL".into())
}

fn unclosed_parameter() -> RepoError {
    RepoError::Internal("an unclosed parameter in hand-written SQL".into())
}

/// One statement of `template` with `parameters`, for `backend`.
pub(crate) fn statement(
    template: &str,
    parameters: &[Value],
    backend: DbBackend,
) -> Result<Statement, RepoError> {
    Rendered::of(template, backend)
        .ok_or_else(unclosed_parameter)?
        .bind(parameters, backend)
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;

    static TEMPLATE: LazyLock<Template> =
        LazyLock::new(|| Template::new("SELECT #2#, #1# WHERE x = #2#"));

    /// Each placeholder takes its parameter, once per occurrence, numbered across
    /// the statement on PostgreSQL; the kept rendering binds again alike.
    #[test]
    fn a_template_binds_each_occurrence_of_its_parameters_in_order() {
        let parameters: [Value; 2] = [1_i64.into(), "two".into()];
        let bound = |sql: &str, backend| {
            Statement::from_sql_and_values(
                backend,
                sql,
                [Value::from("two"), Value::from(1_i64), Value::from("two")],
            )
        };
        for _ in 0..2 {
            assert_eq!(
                TEMPLATE
                    .statement(&parameters, DbBackend::Sqlite)
                    .expect("sqlite"),
                bound("SELECT ?, ? WHERE x = ?", DbBackend::Sqlite)
            );
            assert_eq!(
                TEMPLATE
                    .statement(&parameters, DbBackend::Postgres)
                    .expect("postgres"),
                bound("SELECT $1, $2 WHERE x = $3", DbBackend::Postgres)
            );
        }
    }

    #[test]
    fn a_template_with_a_missing_or_unclosed_parameter_is_an_error() {
        let one: [Value; 1] = [1_i64.into()];
        assert!(TEMPLATE.statement(&one, DbBackend::Sqlite).is_err());
        let unclosed = Template::new("SELECT #1");
        assert!(unclosed.statement(&one, DbBackend::Postgres).is_err());
    }
}
