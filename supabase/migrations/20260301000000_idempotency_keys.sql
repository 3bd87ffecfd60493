-- Idempotent writers.
--
-- Every backend writer consumes Kafka at least once, and the Flink jobs
-- replay their topics from the earliest offset whenever they restart (spec
-- 13.2), so the same event reaches Postgres more than once. Each table gets
-- a unique key that writers use in an "insert ... on conflict (...) do
-- nothing", which turns the second and later deliveries into no-ops
-- (statements in supabase/README.md).

-- Nullable on purpose: writers that do not send a key yet (the original
-- 4-column Flink sinks) keep working, because nulls never conflict. Rows
-- written before this migration keep a null key; their duplicates cannot be
-- told apart from legitimate repeats, so they are left alone.
alter table public.user_notifications add column idempotency_key text;
alter table public.user_notifications
  add constraint user_notifications_idempotency_key_key unique (idempotency_key);

alter table public.credit_ledger add column idempotency_key text;
alter table public.credit_ledger
  add constraint credit_ledger_idempotency_key_key unique (idempotency_key);

-- media_files already has a natural key: a user's file lives at one
-- permanent path. Replays may have created duplicates before this
-- migration, so collapse them first, keeping the oldest row. If any copy is
-- soft-deleted the file was deleted after its first insert (a replay then
-- re-created it as active), so the survivor must stay deleted.
update public.media_files as keep
   set status = 'deleted'
 where keep.status <> 'deleted'
   and keep.id = (
     select min(d.id) from public.media_files as d
      where d.user_id = keep.user_id and d.file_path = keep.file_path
   )
   and exists (
     select 1 from public.media_files as d
      where d.user_id = keep.user_id and d.file_path = keep.file_path and d.status = 'deleted'
   );

delete from public.media_files as dup
 using public.media_files as older
 where older.user_id = dup.user_id
   and older.file_path = dup.file_path
   and older.id < dup.id;

-- Also the index for the (user_id, file_path) lookups of the media service
-- and the gateway (metadata read, soft delete).
alter table public.media_files
  add constraint media_files_user_id_file_path_key unique (user_id, file_path);
