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
    sqlite: OnceLock<Rendered>,
    postgres: OnceLock<Rendered>,
}

struct Rendered {
    sql: String,
    /// For each placeholder, in order, the index of its parameter.
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
        let rendered = match backend {
            DbBackend::Postgres => &self.postgres,
            _ => &self.sqlite,
        }
        .get_or_init(|| Rendered::of(&self.text, backend));
        if rendered.sql.is_empty() {
            return Err(unclosed_parameter());
        }
        let values = rendered
            .order
            .iter()
            .map(|&n| parameters.get(n).cloned().ok_or_else(unknown_parameter))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Statement::from_sql_and_values(
            backend,
            rendered.sql.as_str(),
            values,
        ))
    }
}

impl Rendered {
    /// `template` for `backend`; an empty text when a parameter is not closed.
    fn of(template: &str, backend: DbBackend) -> Self {
        let mut sql = String::with_capacity(template.len());
        let mut order = Vec::new();
        let mut rest = template;
        while let Some((before, after)) = rest.split_once('#') {
            let Some((number, after)) = after.split_once('#') else {
                return Self {
                    sql: String::new(),
                    order: Vec::new(),
                };
            };
            // An unknown number is caught when the statement binds its parameters.
            order.push(
                number
                    .parse::<usize>()
                    .map_or(usize::MAX, |n| n.wrapping_sub(1)),
            );
            sql.push_str(before);
            push_placeholder(&mut sql, order.len(), backend);
            rest = after;
        }
        sql.push_str(rest);
        Self { sql, order }
    }
}

fn push_placeholder(sql: &mut String, position: usize, backend: DbBackend) {
    match backend {
        DbBackend::Postgres => {
            sql.push('$');
            sql.push_str(&position.to_string());
        }
        _ => sql.push('?'),
    }
}

fn unknown_parameter() -> RepoError {
    RepoError::Internal("an unknown parameter in hand-written SQL".into())
}

fn unclosed_parameter() -> RepoError {
    RepoError::Internal("an unclosed parameter in hand-written SQL".into())
}

/// Appends `template` to `sql` with each `#n#` replaced by a placeholder of
/// `backend` and `parameters[n - 1]` pushed to `values`, one value per occurrence, so
/// that SQLite's statements bind in order alike through sqlx and rusqlite. PostgreSQL
/// numbers its placeholders across the statement.
fn render(
    template: &str,
    parameters: &[Value],
    backend: DbBackend,
    sql: &mut String,
    values: &mut Vec<Value>,
) -> Result<(), RepoError> {
    let mut rest = template;
    while let Some((before, after)) = rest.split_once('#') {
        let (number, after) = after.split_once('#').ok_or_else(unclosed_parameter)?;
        let value = number
            .parse::<usize>()
            .ok()
            .and_then(|n| parameters.get(n.wrapping_sub(1)))
            .ok_or_else(unknown_parameter)?;
        sql.push_str(before);
        values.push(value.clone());
        push_placeholder(sql, values.len(), backend);
        rest = after;
    }
    sql.push_str(rest);
    Ok(())
}

/// One statement of `template` with `parameters`, for `backend`.
pub(crate) fn statement(
    template: &str,
    parameters: &[Value],
    backend: DbBackend,
) -> Result<Statement, RepoError> {
    let mut sql = String::new();
    let mut values = Vec::new();
    render(template, parameters, backend, &mut sql, &mut values)?;
    Ok(Statement::from_sql_and_values(backend, sql, values))
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;

    static TEMPLATE: LazyLock<Template> =
        LazyLock::new(|| Template::new("SELECT #2#, #1# WHERE x = #2#"));

    /// The kept rendering is what rendering each time gives, on both backends.
    #[test]
    fn a_template_binds_as_rendering_each_time_does() {
        let parameters: [Value; 2] = [1_i64.into(), "two".into()];
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for _ in 0..2 {
                assert_eq!(
                    TEMPLATE.statement(&parameters, backend).expect("kept"),
                    statement(&TEMPLATE.text, &parameters, backend).expect("rendered")
                );
            }
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
