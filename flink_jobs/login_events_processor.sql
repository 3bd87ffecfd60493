-- Login events -> user notification "identity.login" (spec 3.2).
-- Source table login_events (public.identity.login.events) is registered by sql_runner.py,
-- the sink user_notifications_sink by sinks/user_notifications.sql.
--
-- Idempotency: the sink is a JDBC upsert on idempotency_key (unique in
-- public.user_notifications), so a replayed or re-delivered login writes the same row again
-- instead of a second one. Key: identity.login:<user_id>:<login_time>; login_time is
-- auth.users.last_sign_in_at, which changes with every login.

INSERT INTO user_notifications_sink
SELECT
  user_id,
  'identity.login',
  JSON_OBJECT(
    'email' VALUE email,
    'device_id' VALUE device_id,
    'user_agent' VALUE user_agent,
    'ip_address' VALUE ip_address
  ),
  login_time,
  CONCAT('identity.login:', COALESCE(user_id, ''), ':', COALESCE(login_time, ''))
FROM login_events;
