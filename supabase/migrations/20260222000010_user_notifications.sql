-- user_notifications: the single egress table for every client-facing event.
-- Backend writers (Flink JDBC sinks, the message consumer) connect as
-- postgres and bypass RLS; browsers read it through PostgREST and receive
-- new rows over Supabase Realtime, both gated by the select policy below.

create table public.user_notifications (
  id bigint generated always as identity primary key,
  user_id text not null,
  -- '<domain>.<entity>', e.g. identity.login, user.message, media.upload_ready
  event_type text not null,
  -- json as text rather than jsonb: the Flink JDBC sink writes plain strings
  payload text not null default '{}',
  -- the event's own iso-8601 timestamp, passed through verbatim
  event_time text not null,
  -- only meaningful for user.message: 'broadcast' or 'direct'
  visibility text not null default 'broadcast',
  -- target of a direct user.message
  recipient_id text,
  created_at timestamptz not null default now()
);

alter table public.user_notifications enable row level security;

-- Owners see all their events; user.message rows are also visible to every
-- authenticated user when broadcast, and to the recipient when direct. Other
-- event types are owner-only even though visibility defaults to 'broadcast'.
create policy "Users see own events or visible messages"
  on public.user_notifications
  for select
  to authenticated
  using (
    auth.uid()::text = user_id
    or (event_type = 'user.message' and visibility = 'broadcast')
    or (event_type = 'user.message' and recipient_id = auth.uid()::text)
  );

-- Nothing subject to RLS may insert; only the backend (bypassing RLS) writes.
-- There are no update or delete policies, so those are denied as well.
create policy "Only backend can insert notifications"
  on public.user_notifications
  for insert
  with check (false);

-- Realtime streams inserts to subscribed browsers; full replica identity
-- gives it whole rows so it can evaluate RLS for each subscriber.
alter publication supabase_realtime add table public.user_notifications;
alter table public.user_notifications replica identity full;
