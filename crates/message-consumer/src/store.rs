//! Writes notifications to Postgres, idempotently.

use sqlx::PgPool;

use crate::domain::{EVENT_TYPE, Notification};

/// How an insert failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database is unreachable or temporarily refusing work; retrying later will succeed.
    #[error("database unavailable: {0}")]
    Transient(sqlx::Error),
    /// The database rejected the data itself; retrying the same rows will fail again.
    #[error("database rejected the row: {0}")]
    Rejected(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if substrate::postgres::is_permanent(&error) {
            Self::Rejected(error)
        } else {
            Self::Transient(error)
        }
    }
}

/// Inserts all rows in one statement (one transaction). Rows whose idempotency key already
/// exists are skipped, so a redelivered batch inserts nothing twice. So is a row the Go service
/// already wrote before the cut-over: it has no key (the Go service set none), so it is
/// recognised by its content, which the Go service wrote from the same record the same way
/// (migration 20261130000000_pre_cutover_rows.sql indexes those rows). Returns rows inserted.
pub async fn insert_batch(pool: &PgPool, rows: &[&Notification]) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let column =
        |f: fn(&Notification) -> Option<String>| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
    let result = sqlx::query(
        "insert into public.user_notifications
             (user_id, event_type, payload, event_time, visibility, recipient_id, idempotency_key)
         select user_id, $1, payload, event_time, visibility, recipient_id, idempotency_key
         from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
              as batch(user_id, payload, event_time, visibility, recipient_id, idempotency_key)
         where not exists (
             select 1 from public.user_notifications as pre
              where pre.idempotency_key is null
                and pre.user_id = batch.user_id
                and pre.event_time = batch.event_time
                and pre.event_type = $1
                and pre.payload = batch.payload
                and pre.visibility = batch.visibility
                and pre.recipient_id is not distinct from batch.recipient_id)
         on conflict (idempotency_key) do nothing",
    )
    .bind(EVENT_TYPE)
    .bind(column(|r| Some(r.user_id.clone())))
    .bind(column(|r| Some(r.payload.clone())))
    .bind(column(|r| Some(r.event_time.clone())))
    .bind(column(|r| Some(r.visibility.clone())))
    .bind(column(|r| r.recipient_id.clone()))
    .bind(column(|r| Some(r.idempotency_key.clone())))
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}
