-- Which delete request soft-deleted a file.
--
-- The media-service's delete saga must be idempotent per request: a redelivered delete intent
-- has to produce the same outcome (file deleted, object removed) instead of "not found", while a
-- second, different request for an already-deleted file must be told it no longer exists. The
-- request id recorded at soft-delete time tells the two apart. Null for rows deleted before this
-- column existed or by the legacy synchronous route.
alter table public.media_files add column if not exists deleted_by_request_id text;

comment on column public.media_files.deleted_by_request_id is
  'request_id of the delete intent that soft-deleted this row (media-service delete saga)';
