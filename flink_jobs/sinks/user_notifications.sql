-- The JDBC sink of public.user_notifications, declared once for every processor file that
-- writes notifications (login, signup, signout, credit balance, media). sql_runner.py registers
-- the files of this directory (SHARED_SINK_FILES) before the statements of the processor
-- files, with the same placeholder substitution; the processor files only INSERT INTO it.
--
-- Idempotency: an upsert on idempotency_key, the unique key of public.user_notifications
-- (supabase/migrations/20260301000000_idempotency_keys.sql): a replayed event rewrites its
-- row instead of adding one. Each processor file documents the keys of its rows.
-- Every row is flushed at once (max-rows 1), so the sink adds no latency.

CREATE TABLE user_notifications_sink (
  user_id STRING,
  event_type STRING,
  payload STRING,
  event_time STRING,
  idempotency_key STRING,
  PRIMARY KEY (idempotency_key) NOT ENFORCED
) WITH (
  'connector' = 'jdbc',
  'url' = '${SUPABASE_DB_JDBC_URL}',
  'table-name' = 'public.user_notifications',
  'username' = '${SUPABASE_DB_USER}',
  'password' = '${SUPABASE_DB_PASSWORD}',
  'sink.buffer-flush.max-rows' = '1',
  'sink.buffer-flush.interval' = '1s'
);
