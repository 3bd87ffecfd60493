-- Login, signup and signout events -> internal.platform.unified.events (spec 3.2), read by
-- ClickHouse. The Kafka sink platform_unified_events is registered by sql_runner.py.
--
-- Idempotency: the sink writes in Kafka transactions committed with each checkpoint
-- (exactly-once); event_id is derived from the event (<user_id>_<event time>), so a consumer
-- can also dedupe on it when the sink runs at-least-once.
-- PlatformEvent.email is a non-null string: a signout of a user deleted before their sessions
-- has no email and gets "" (spec 13.8).

INSERT INTO platform_unified_events
SELECT
  CONCAT(user_id, '_', login_time) AS event_id,
  login_time AS event_time,
  'LOGIN' AS event_type,
  user_id,
  COALESCE(email, '') AS email,
  device_id,
  user_agent,
  ip_address
FROM login_events
UNION ALL
SELECT
  CONCAT(user_id, '_', signup_time),
  signup_time,
  'SIGNUP',
  user_id,
  COALESCE(email, ''),
  CAST(NULL AS STRING),
  CAST(NULL AS STRING),
  CAST(NULL AS STRING)
FROM signup_events
UNION ALL
SELECT
  CONCAT(user_id, '_', signout_time),
  signout_time,
  'SIGNOUT',
  user_id,
  COALESCE(email, ''),
  CAST(NULL AS STRING),
  CAST(NULL AS STRING),
  CAST(NULL AS STRING)
FROM signout_events;
