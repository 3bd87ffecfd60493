-- Signout events -> user notification "identity.signout" (spec 3.2).
-- Source table signout_events (public.identity.signout.events) is registered by sql_runner.py,
-- the sink user_notifications_sink by sinks/user_notifications.sql.
--
-- Idempotency: JDBC upsert on idempotency_key. The event has no id of its own (the trigger
-- fires once per deleted auth.sessions row, signout_time is the transaction's now()), so the
-- key is every field that tells two signouts apart:
--   identity.signout:<user_id>:<signout_time>:<device_id>:<ip_address>:<user_agent>
-- (absent values as ""). Two sessions of one device ended in the same transaction are
-- indistinguishable and give one notification.

INSERT INTO user_notifications_sink
SELECT
  user_id,
  'identity.signout',
  JSON_OBJECT(
    'email' VALUE email,
    'device_id' VALUE device_id,
    'user_agent' VALUE user_agent,
    'ip_address' VALUE ip_address
  ),
  signout_time,
  CONCAT(
    'identity.signout:', COALESCE(user_id, ''), ':', COALESCE(signout_time, ''),
    ':', COALESCE(device_id, ''), ':', COALESCE(ip_address, ''), ':', COALESCE(user_agent, '')
  )
FROM signout_events;
