//! The PostgREST read subset supabase-js uses: `GET /rest/v1/<table or view>` with `select`,
//! column filters, `order`, `limit` and `offset`, run as the caller's role with
//! `request.jwt.claims` set, so the tables' row level security decides what it sees.
//!
//! Names come from the request, so every identifier is checked against the catalogue and
//! quoted; every value is a bind parameter cast to its column's type.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::keys::{DbRole, Verified};

/// An error in PostgREST's shape.
#[derive(Debug)]
pub struct RestError {
    status: StatusCode,
    code: String,
    message: String,
    details: Option<String>,
}

impl RestError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            details: None,
        }
    }

    fn parse(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "PGRST100", message)
    }

    /// A database error, with the status PostgREST gives its SQLSTATE.
    fn database(error: sqlx::Error, role: DbRole) -> Self {
        let Some(db) = error.as_database_error() else {
            tracing::error!(%error, "rest: database error");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "PGRST000",
                "Database error",
            );
        };
        let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
        let status = match code.as_str() {
            "42501" if role == DbRole::Anon => StatusCode::UNAUTHORIZED,
            "42501" => StatusCode::FORBIDDEN,
            "42P01" => StatusCode::NOT_FOUND,
            c if c.starts_with("22") || c.starts_with("42") => StatusCode::BAD_REQUEST,
            "57014" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, &code, db.message())
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({
                "code": self.code,
                "message": self.message,
                "details": self.details,
                "hint": null,
            })),
        )
            .into_response()
    }
}

/// Only the schema PostgREST exposes by default.
const SCHEMA: &str = "public";

fn identifier(name: &str) -> Result<&str, RestError> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63;
    if valid {
        Ok(name)
    } else {
        Err(RestError::parse(format!(
            "\"{name}\" is not a column or table name this server accepts"
        )))
    }
}

fn quoted(name: &str) -> String {
    // `identifier` admits no quote characters, so wrapping is enough.
    format!("\"{name}\"")
}

/// The relation's columns and their SQL types (from the catalogue, so safe to splice).
async fn columns(state: &AppState, table: &str) -> Result<HashMap<String, String>, RestError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select a.attname::text, format_type(a.atttypid, a.atttypmod) \
           from pg_attribute a join pg_class c on c.oid = a.attrelid \
           join pg_namespace n on n.oid = c.relnamespace \
          where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'v', 'm', 'p', 'f') \
            and a.attnum > 0 and not a.attisdropped",
    )
    .bind(SCHEMA)
    .bind(table)
    .fetch_all(&state.pool)
    .await
    .map_err(|error| RestError::database(error, DbRole::ServiceRole))?;
    if rows.is_empty() {
        return Err(RestError::new(
            StatusCode::NOT_FOUND,
            "PGRST205",
            format!("Could not find the table '{SCHEMA}.{table}' in the schema cache"),
        ));
    }
    Ok(rows.into_iter().collect())
}

/// One built statement and its parameters.
#[derive(Debug, Default, PartialEq)]
struct Statement {
    sql: String,
    params: Vec<Param>,
}

#[derive(Debug, PartialEq)]
enum Param {
    One(String),
    Many(Vec<String>),
}

fn column<'a>(
    name: &'a str,
    columns: &'a HashMap<String, String>,
    table: &str,
) -> Result<(&'a str, &'a str), RestError> {
    let name = identifier(name)?;
    columns
        .get(name)
        .map(|ty| (name, ty.as_str()))
        .ok_or_else(|| {
            RestError::new(
                StatusCode::BAD_REQUEST,
                "42703",
                format!("column {table}.{name} does not exist"),
            )
        })
}

/// Builds the query for `table` from the request's parameters (in their order).
fn build(
    table: &str,
    columns: &HashMap<String, String>,
    query: &[(String, String)],
) -> Result<Statement, RestError> {
    let mut statement = Statement::default();
    let mut select = String::from("*");
    let mut filters = Vec::new();
    let mut order = Vec::new();
    let mut limit = None;
    let mut offset = None;
    for (key, value) in query {
        match key.as_str() {
            "select" => select = value.clone(),
            "order" => order.push(value.clone()),
            "limit" => {
                limit = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| RestError::parse("limit must be a number"))?,
                )
            }
            "offset" => {
                offset = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| RestError::parse("offset must be a number"))?,
                )
            }
            "or" | "and" | "not.or" | "not.and" => {
                return Err(RestError::parse(
                    "logical operators are not supported locally",
                ));
            }
            _ => filters.push((key.clone(), value.clone())),
        }
    }
    let mut list = Vec::new();
    for item in select.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "*" {
            list.push("*".to_owned());
            continue;
        }
        let (alias, name) = item.split_once(':').unwrap_or((item, item));
        let (name, _) = column(name, columns, table)?;
        let alias = identifier(alias)?;
        list.push(if alias == name {
            quoted(name)
        } else {
            format!("{} as {}", quoted(name), quoted(alias))
        });
    }
    if list.is_empty() {
        list.push("*".to_owned());
    }
    let mut sql = format!(
        "select coalesce(json_agg(_r), '[]'::json)::text from (select {} from {}.{}",
        list.join(", "),
        quoted(SCHEMA),
        quoted(identifier(table)?)
    );
    let mut conditions = Vec::new();
    for (name, expression) in filters {
        let (name, ty) = column(&name, columns, table)?;
        let (negated, expression) = match expression.strip_prefix("not.") {
            Some(rest) => (true, rest),
            None => (false, expression.as_str()),
        };
        let (operator, operand) = expression.split_once('.').ok_or_else(|| {
            RestError::parse(format!("\"{expression}\" is not an operator.value filter"))
        })?;
        let column = quoted(name);
        let mut bind = |param: Param| {
            statement.params.push(param);
            statement.params.len()
        };
        let condition = match operator {
            "eq" | "neq" | "gt" | "gte" | "lt" | "lte" => {
                let sign = match operator {
                    "eq" => "=",
                    "neq" => "<>",
                    "gt" => ">",
                    "gte" => ">=",
                    "lt" => "<",
                    _ => "<=",
                };
                let n = bind(Param::One(operand.to_owned()));
                format!("{column} {sign} ${n}::{ty}")
            }
            "like" | "ilike" => {
                let n = bind(Param::One(operand.replace('*', "%")));
                format!(
                    "{column}::text {} ${n}",
                    if operator == "like" { "like" } else { "ilike" }
                )
            }
            "is" => match operand {
                "null" => format!("{column} is null"),
                "true" => format!("{column} is true"),
                "false" => format!("{column} is false"),
                "unknown" => format!("{column} is unknown"),
                _ => return Err(RestError::parse("is. takes null, true, false or unknown")),
            },
            "in" => {
                let inner = operand
                    .strip_prefix('(')
                    .and_then(|rest| rest.strip_suffix(')'))
                    .ok_or_else(|| RestError::parse("in. takes a list in parentheses"))?;
                let values = inner
                    .split(',')
                    .map(|v| v.trim().trim_matches('"').to_owned())
                    .filter(|v| !v.is_empty())
                    .collect();
                let n = bind(Param::Many(values));
                format!("{column} = any(${n}::text[]::{ty}[])")
            }
            other => {
                return Err(RestError::parse(format!(
                    "operator \"{other}\" is not supported locally"
                )));
            }
        };
        conditions.push(if negated {
            format!("not ({condition})")
        } else {
            condition
        });
    }
    if !conditions.is_empty() {
        let _ = write!(sql, " where {}", conditions.join(" and "));
    }
    let mut terms = Vec::new();
    for term in order
        .iter()
        .flat_map(|o| o.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let mut parts = term.split('.');
        let (name, _) = column(parts.next().unwrap_or_default(), columns, table)?;
        let mut sql_term = quoted(name);
        for modifier in parts {
            sql_term.push_str(match modifier {
                "asc" => " asc",
                "desc" => " desc",
                "nullsfirst" => " nulls first",
                "nullslast" => " nulls last",
                other => {
                    return Err(RestError::parse(format!(
                        "order modifier \"{other}\" is unknown"
                    )));
                }
            });
        }
        terms.push(sql_term);
    }
    if !terms.is_empty() {
        let _ = write!(sql, " order by {}", terms.join(", "));
    }
    if let Some(limit) = limit {
        let _ = write!(sql, " limit {limit}");
    }
    if let Some(offset) = offset {
        let _ = write!(sql, " offset {offset}");
    }
    sql.push_str(") _r");
    statement.sql = sql;
    Ok(statement)
}

/// Who the request runs as: the bearer token, or the API key when there is none.
fn caller(state: &AppState, headers: &HeaderMap) -> Result<Verified, RestError> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let token = text(header::AUTHORIZATION.as_str())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| text("apikey"))
        .ok_or_else(|| {
            RestError::new(
                StatusCode::UNAUTHORIZED,
                "PGRST302",
                "Anonymous access is disabled",
            )
        })?;
    state
        .keys
        .verify(token)
        .map_err(|error| RestError::new(StatusCode::UNAUTHORIZED, "PGRST301", error.to_string()))
}

/// `GET /rest/v1/{table}`.
pub async fn read(
    State(state): State<AppState>,
    Path(table): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, RestError> {
    let caller = caller(&state, &headers)?;
    if let Some(profile) = headers.get("accept-profile").and_then(|v| v.to_str().ok())
        && profile != SCHEMA
    {
        return Err(RestError::new(
            StatusCode::NOT_ACCEPTABLE,
            "PGRST106",
            format!("The schema must be one of the following: {SCHEMA}"),
        ));
    }
    let table = identifier(&table)?.to_owned();
    let columns = columns(&state, &table).await?;
    let statement = build(&table, &columns, &query)?;
    let role = caller.role;
    let db = |error| RestError::database(error, role);
    let mut tx = state.pool.begin().await.map_err(db)?;
    sqlx::query(&format!("set local role {}", role.as_sql()))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    sqlx::query("select set_config('request.jwt.claims', $1, true), set_config('statement_timeout', '8s', true)")
        .bind(caller.claims.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let mut prepared = sqlx::query_scalar::<_, String>(&statement.sql);
    for param in &statement.params {
        prepared = match param {
            Param::One(value) => prepared.bind(value.clone()),
            Param::Many(values) => prepared.bind(values.clone()),
        };
    }
    let body = prepared.fetch_one(&mut *tx).await.map_err(db)?;
    // Read only: nothing to keep.
    tx.rollback().await.map_err(db)?;
    let rows: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
    let wants_object = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/vnd.pgrst.object+json"));
    if wants_object {
        return match <[Value; 1]>::try_from(rows) {
            Ok([row]) => Ok(Json(row).into_response()),
            Err(rows) => Err(RestError {
                details: Some(format!("The result contains {} rows", rows.len())),
                ..RestError::new(
                    StatusCode::NOT_ACCEPTABLE,
                    "PGRST116",
                    "JSON object requested, multiple (or no) rows returned",
                )
            }),
        };
    }
    let range = match rows.len() {
        0 => "*/*".to_owned(),
        n => format!("0-{}/*", n - 1),
    };
    Ok(([(header::CONTENT_RANGE, range)], Json(Value::Array(rows))).into_response())
}

/// Anything but reading.
pub async fn read_only() -> RestError {
    RestError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "PGRST101",
        "local-supabase serves reads only; write through the platform's services",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifications() -> HashMap<String, String> {
        [
            ("id", "bigint"),
            ("user_id", "uuid"),
            ("event_type", "text"),
            ("created_at", "timestamp with time zone"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_typical_query_is_quoted_typed_and_parameterised() {
        let statement = build(
            "user_notifications",
            &notifications(),
            &q(&[
                ("select", "event_type,created_at"),
                ("user_id", "eq.6f1c0c2e-0000-0000-0000-000000000001"),
                ("event_type", "in.(identity.login,user.message)"),
                ("order", "created_at.desc.nullslast"),
                ("limit", "20"),
            ]),
        )
        .unwrap();
        assert_eq!(
            statement.sql,
            "select coalesce(json_agg(_r), '[]'::json)::text from (select \"event_type\", \"created_at\" \
             from \"public\".\"user_notifications\" where \"user_id\" = $1::uuid and \
             \"event_type\" = any($2::text[]::text[]) order by \"created_at\" desc nulls last limit 20) _r"
        );
        assert_eq!(
            statement.params,
            [
                Param::One("6f1c0c2e-0000-0000-0000-000000000001".into()),
                Param::Many(vec!["identity.login".into(), "user.message".into()]),
            ]
        );
    }

    #[test]
    fn names_outside_the_catalogue_or_with_quotes_are_refused() {
        let columns = notifications();
        for query in [
            q(&[("select", "nope")]),
            q(&[("select", "id\"; drop table x; --")]),
            q(&[("nope", "eq.1")]),
            q(&[("order", "id.sideways")]),
            q(&[("id", "between.1")]),
            q(&[("or", "(id.eq.1,id.eq.2)")]),
            q(&[("limit", "ten")]),
        ] {
            assert!(
                build("user_notifications", &columns, &query).is_err(),
                "{query:?}"
            );
        }
        assert!(build("bad\"name", &columns, &[]).is_err());
    }

    #[test]
    fn negation_aliases_and_null_checks() {
        let statement = build(
            "user_notifications",
            &notifications(),
            &q(&[
                ("select", "kind:event_type"),
                ("event_type", "not.is.null"),
                ("id", "not.eq.3"),
            ]),
        )
        .unwrap();
        assert!(
            statement.sql.contains("\"event_type\" as \"kind\""),
            "{}",
            statement.sql
        );
        assert!(
            statement
                .sql
                .contains("not (\"event_type\" is null) and not (\"id\" = $1::bigint)"),
            "{}",
            statement.sql
        );
    }
}
