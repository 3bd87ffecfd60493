-- Signup events -> user notification "identity.signup" (spec 3.2).
-- Source table signup_events (public.identity.signup.events) is registered by sql_runner.py.
--
-- Idempotency: JDBC upsert on idempotency_key. Key: identity.signup:<user_id>, since a user
-- signs up once; a signup event delivered twice (webhook retry) still gives one row.

CREATE TABLE signup_notification_sink (
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

INSERT INTO signup_notification_sink
SELECT
  user_id,
  'identity.signup',
  JSON_OBJECT('email' VALUE email),
  signup_time,
  CONCAT('identity.signup:', COALESCE(user_id, ''))
FROM signup_events;
