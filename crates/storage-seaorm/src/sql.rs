//! SQL written by hand, with its parameters as `#n#`, rendered for the backend at
//! hand: the statements SeaORM's builders cannot express in one round trip (the
//! append rule of `append`, the lease operations of `leases`).

use confab_domain::error::RepoError;
use sea_orm::{DbBackend, Statement, Value};

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
        let (number, after) = after.split_once('#').ok_or_else(|| {
            RepoError::Internal("an unclosed parameter in hand-written SQL".into())
        })?;
        let value = number
            .parse::<usize>()
            .ok()
            .and_then(|n| parameters.get(n.wrapping_sub(1)))
            .ok_or_else(|| {
                RepoError::Internal("an unknown parameter in hand-written SQL".into())
            })?;
        sql.push_str(before);
        values.push(value.clone());
        match backend {
            DbBackend::Postgres => {
                sql.push('$');
                sql.push_str(&values.len().to_string());
            }
            _ => sql.push('?'),
        }
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
