-- Signup events -> user notification "identity.signup" (spec 3.2).
-- Source table signup_events (public.identity.signup.events) is registered by sql_runner.py,
-- the sink user_notifications_sink by sinks/user_notifications.sql.
--
-- Idempotency: JDBC upsert on idempotency_key. Key: identity.signup:<user_id>, since a user
-- signs up once; a signup event delivered twice (webhook retry) still gives one row.

INSERT INTO user_notifications_sink
SELECT
  user_id,
  'identity.signup',
  JSON_OBJECT('email' VALUE email),
  signup_time,
  CONCAT('identity.signup:', COALESCE(user_id, ''))
FROM signup_events;
