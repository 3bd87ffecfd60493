-- Media saga events -> user notifications (spec 3.2, media table). The sink
-- user_notifications_sink is registered by sinks/user_notifications.sql.
--
-- Idempotency: JDBC upsert on idempotency_key, <event_type>:<id of the event>:
--   events of one request (upload/download/delete intent)   <event_type>:<request_id>
--   upload completed, file deleted                           <event_type>:<user_id>:<file_path>
--   upload failed (dead letter)                              media.upload_failed:<user_id>:<permanent_path>
-- request_id is the id the gateway gives every intent; file paths contain a fresh uuid per
-- upload, so each identifies one upload.
--
-- media.upload_failed also carries file_path = the permanent path (spec 13.10): the
-- browser waits for the outcome of an upload by request_id or file_path, and the dead letter
-- has no request_id.

-- upload URL signed
INSERT INTO user_notifications_sink
SELECT
  user_id,
  'media.upload_ready',
  JSON_OBJECT(
    'upload_url' VALUE upload_url,
    'file_path' VALUE file_path,
    'expires_in' VALUE expires_in,
    'request_id' VALUE request_id
  ),
  signed_time,
  CONCAT('media.upload_ready:', COALESCE(request_id, ''))
FROM upload_signed_events;

-- upload rejected by the credit check
INSERT INTO user_notifications_sink
SELECT
  user_id,
  'media.upload_rejected',
  JSON_OBJECT('reason' VALUE reason, 'request_id' VALUE request_id, 'file_name' VALUE file_name),
  rejected_time,
  CONCAT('media.upload_rejected:', COALESCE(request_id, ''))
FROM upload_rejected_events;

-- upload confirmed (moved to its permanent path)
INSERT INTO user_notifications_sink
SELECT
  user_id,
  'media.upload_completed',
  JSON_OBJECT(
    'file_path' VALUE file_path,
    'file_name' VALUE file_name,
    'file_size' VALUE file_size,
    'media_type' VALUE media_type
  ),
  upload_time,
  CONCAT('media.upload_completed:', COALESCE(user_id, ''), ':', COALESCE(file_path, ''))
FROM media_upload_events;

-- upload expired (never uploaded within the TTL; the credit is refunded)
INSERT INTO user_notifications_sink
SELECT
  user_id,
  'media.upload_expired',
  JSON_OBJECT(
    'file_path' VALUE file_path,
    'file_name' VALUE file_name,
    'amount_refunded' VALUE 1,
    'request_id' VALUE request_id
  ),
  expired_time,
  CONCAT('media.upload_expired:', COALESCE(request_id, ''))
FROM media_expired_events;

-- download URL signed
INSERT INTO user_notifications_sink
SELECT
  user_id,
  'media.download_ready',
  JSON_OBJECT(
    'download_url' VALUE download_url,
    'file_path' VALUE file_path,
    'expires_in' VALUE expires_in,
    'request_id' VALUE request_id
  ),
  signed_time,
  CONCAT('media.download_ready:', COALESCE(request_id, ''))
FROM download_signed_events;

-- download rejected
INSERT INTO user_notifications_sink
SELECT
  user_id,
  'media.download_rejected',
  JSON_OBJECT('file_path' VALUE file_path, 'reason' VALUE reason, 'request_id' VALUE request_id),
  rejected_time,
  CONCAT('media.download_rejected:', COALESCE(request_id, ''))
FROM download_rejected_events;

-- file deleted
INSERT INTO user_notifications_sink
SELECT
  user_id,
  'media.file_deleted',
  JSON_OBJECT('file_path' VALUE file_path, 'file_name' VALUE file_name),
  delete_time,
  CONCAT('media.file_deleted:', COALESCE(user_id, ''), ':', COALESCE(file_path, ''))
FROM media_delete_events;

-- delete rejected
INSERT INTO user_notifications_sink
SELECT
  user_id,
  'media.delete_rejected',
  JSON_OBJECT('file_path' VALUE file_path, 'reason' VALUE reason, 'request_id' VALUE request_id),
  rejected_time,
  CONCAT('media.delete_rejected:', COALESCE(request_id, ''))
FROM delete_rejected_events;

-- upload failed for good (move saga dead letter)
INSERT INTO user_notifications_sink
SELECT
  user_id,
  'media.upload_failed',
  JSON_OBJECT(
    'file_name' VALUE file_name,
    'failure_reason' VALUE failure_reason,
    'retry_count' VALUE retry_count,
    'file_path' VALUE permanent_path
  ),
  dead_letter_time,
  CONCAT('media.upload_failed:', COALESCE(user_id, ''), ':', COALESCE(permanent_path, ''))
FROM upload_dead_letter_events;
