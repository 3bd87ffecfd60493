//! Postgres connection settings, and how a failed statement is classified.

use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::ConfigError;

/// Legacy variable of the original services for the database URL.
pub const POSTGRES_ALIASES: &[(&str, &str)] = &[("SUPABASE_DB_URL", "postgres.url")];

/// Database settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PostgresSettings {
    /// Connection URL (`postgres://user:password@host:port/db?sslmode=…`); secret because it
    /// usually carries the password.
    pub url: SecretString,
    /// Pool size.
    pub max_connections: u32,
    /// Longest wait for a pooled connection, in milliseconds; bounds every query's wait when the
    /// database is down, so readiness and handlers fail fast instead of hanging.
    pub acquire_timeout_ms: u64,
    /// Server-side `statement_timeout`, in milliseconds.
    pub statement_timeout_ms: u64,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from(crate::local_stack::database_url()),
            max_connections: 5,
            acquire_timeout_ms: 3_000,
            statement_timeout_ms: 10_000,
        }
    }
}

impl PostgresSettings {
    /// Connection options parsed from the URL plus the statement timeout.
    pub fn connect_options(&self) -> Result<PgConnectOptions, ConfigError> {
        let options = PgConnectOptions::from_str(self.url.expose_secret())
            .map_err(|e| ConfigError::Invalid(format!("postgres.url: {e}")))?;
        Ok(options.options([("statement_timeout", self.statement_timeout_ms.to_string())]))
    }

    /// A lazily connecting pool: startup never blocks on the database, readiness reports it.
    pub fn pool(&self) -> Result<PgPool, ConfigError> {
        Ok(PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(Duration::from_millis(self.acquire_timeout_ms))
            .connect_lazy_with(self.connect_options()?))
    }
}

/// Whether a failed statement can never succeed for the same data. Only data errors are:
/// SQLSTATE class 22 (data exception) and 23 (integrity constraint violation), and values that
/// cannot be encoded or decoded. Everything else (connection failures, a database refusing
/// connections or shutting down, missing privileges or objects after a bad deploy, statement
/// timeouts) is retried: giving up on good records because of an outage would lose them.
pub fn is_permanent(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Encode(_)
        | sqlx::Error::TypeNotFound { .. } => true,
        _ => false,
    }
}
