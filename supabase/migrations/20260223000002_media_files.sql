-- media_files: one row per file that completed the upload saga, pointing at
-- its permanent files/... object. Flink inserts rows (status 'active'); a
-- delete is a soft delete by media-service / the gateway (status 'deleted').

create table public.media_files (
  id bigint generated always as identity primary key,
  user_id text not null,
  file_name text not null,
  -- object key of the permanent copy, files/...
  file_path text not null,
  file_size bigint not null,
  media_type text not null,
  -- 'active' or 'deleted' (soft delete keeps the row for history)
  status text not null default 'active',
  upload_time text not null,
  created_at timestamptz not null default now()
);

alter table public.media_files enable row level security;

-- Users list their own files that are not deleted; writes are backend-only.
create policy "Users see own active files"
  on public.media_files
  for select
  to authenticated
  using (auth.uid()::text = user_id and status = 'active');

alter publication supabase_realtime add table public.media_files;
alter table public.media_files replica identity full;
