-- Credits and media files (spec 3.2): the signup bonus, refunds of expired uploads, their
-- credit.balance_changed notifications, and the media_files row of a confirmed upload.
-- The upload deduction is not here: the PyFlink credit check writes it (pyflink_jobs/).
-- The notifications go to user_notifications_sink, registered by sinks/user_notifications.sql.
--
-- Idempotency: every sink is a JDBC upsert on a key that the schema makes unique
-- (supabase/README.md), so a replayed event rewrites its row instead of adding one:
--   ledger, signup bonus        credit.signup_bonus:<user_id>            (one bonus per user)
--   ledger, refund              credit.upload_refunded:<request_id>      (one refund per upload)
--   notification, bonus         credit.balance_changed:signup_bonus:<user_id>
--   notification, refund        credit.balance_changed:upload_expired:<request_id>
--   media_files                 (user_id, file_path), the table's natural key
-- media_files_sink has no status column on purpose: the upsert the JDBC connector generates
-- (insert ... on conflict (user_id, file_path) do update set <the sink's other columns>)
-- then never touches status, so a new row gets the column default 'active' and a replay
-- cannot bring a soft-deleted file back.

CREATE TABLE credit_ledger_sink (
  user_id STRING,
  amount INT,
  event_type STRING,
  description STRING,
  event_time STRING,
  idempotency_key STRING,
  PRIMARY KEY (idempotency_key) NOT ENFORCED
) WITH (
  'connector' = 'jdbc',
  'url' = '${SUPABASE_DB_JDBC_URL}',
  'table-name' = 'public.credit_ledger',
  'username' = '${SUPABASE_DB_USER}',
  'password' = '${SUPABASE_DB_PASSWORD}',
  'sink.buffer-flush.max-rows' = '1',
  'sink.buffer-flush.interval' = '1s'
);

CREATE TABLE media_files_sink (
  user_id STRING,
  file_name STRING,
  file_path STRING,
  file_size BIGINT,
  media_type STRING,
  upload_time STRING,
  PRIMARY KEY (user_id, file_path) NOT ENFORCED
) WITH (
  'connector' = 'jdbc',
  'url' = '${SUPABASE_DB_JDBC_URL}',
  'table-name' = 'public.media_files',
  'username' = '${SUPABASE_DB_USER}',
  'password' = '${SUPABASE_DB_PASSWORD}',
  'sink.buffer-flush.max-rows' = '1',
  'sink.buffer-flush.interval' = '1s'
);

-- 1. signup -> +2 welcome bonus
INSERT INTO credit_ledger_sink
SELECT
  user_id,
  2,
  'credit.signup_bonus',
  'Welcome bonus: 2 credits',
  signup_time,
  CONCAT('credit.signup_bonus:', COALESCE(user_id, ''))
FROM signup_events;

-- 2. confirmed upload (file at its permanent files/... path) -> media_files, status 'active'
--    from the column default (the key columns must not be null in an upsert sink)
INSERT INTO media_files_sink
SELECT
  user_id,
  file_name,
  file_path,
  file_size,
  media_type,
  upload_time
FROM media_upload_events
WHERE user_id IS NOT NULL AND file_path IS NOT NULL;

-- 3. signup -> balance notification
INSERT INTO user_notifications_sink
SELECT
  user_id,
  'credit.balance_changed',
  JSON_OBJECT('amount' VALUE 2, 'reason' VALUE 'signup_bonus'),
  signup_time,
  CONCAT('credit.balance_changed:signup_bonus:', COALESCE(user_id, ''))
FROM signup_events;

-- 4. expired upload -> +1 refund
INSERT INTO credit_ledger_sink
SELECT
  user_id,
  1,
  'credit.upload_refunded',
  CONCAT('Refund: upload expired for ', file_name),
  expired_time,
  CONCAT('credit.upload_refunded:', COALESCE(request_id, ''))
FROM media_expired_events;

-- 5. expired upload -> balance notification
INSERT INTO user_notifications_sink
SELECT
  user_id,
  'credit.balance_changed',
  JSON_OBJECT('amount' VALUE 1, 'reason' VALUE 'upload_expired', 'file_name' VALUE file_name),
  expired_time,
  CONCAT('credit.balance_changed:upload_expired:', COALESCE(request_id, ''))
FROM media_expired_events;
