-- Rows the original (Go + original Flink) fleet wrote before a cut-over.
--
-- Those writers set no idempotency key, so a record they had already handled
-- and that the new fleet sees again (the overlap a cut-over leaves: offsets
-- the Go consumers had not committed yet, the Flink jobs' start timestamp a
-- little before the original jobs stopped) would otherwise be written a
-- second time. The work is a function, cutover.key_pre_cutover_rows(), which
-- this migration runs once; docs/cutover.md runs it again after a rollback to
-- the Go services and a second cut-over. It lives in its own schema, which the
-- API roles cannot reach (PostgREST exposes public).
--
-- 1. Keys for the rows whose key the new writers derive from the event
--    itself (flink_jobs/*.sql): computed here from the same columns and
--    payload fields the original jobs wrote, so the new writers' "on conflict
--    (idempotency_key)" sees them. Where replays of the original already left
--    several identical rows, the oldest gets the key and the copies stay as
--    they are; a key some row already has is never given twice.
-- 2. An index for the message consumer, whose key is the Kafka record's
--    position (user.message events carry no id): it recognises a Go row by
--    its content instead (crates/message-consumer/src/store.rs).
--
-- Rows the original wrote whose key cannot be derived are left alone:
-- credit.upload_deducted (the ledger row keeps no request id; the new credit
-- check claims it when it reads the intent again, see
-- 20261130000100_pre_cutover_deductions.sql), and media.upload_failed (the
-- original payload had no file path; the runbook keeps its overlap empty).

create schema cutover;
revoke all on schema cutover from public;

-- payload is text; a row with malformed JSON simply gets no key
create function cutover.payload_field(payload text, field text) returns text
  language plpgsql immutable as $$
begin
  return payload::jsonb ->> field;
exception when others then
  return null;
end $$;

-- Gives keyless rows the keys the new writers would give them; returns how many
-- rows of each table it keyed. Safe to run again: it only touches rows without
-- a key and never gives a key twice.
create function cutover.key_pre_cutover_rows(out notifications bigint, out ledger bigint)
  language plpgsql as $$
begin
  create temporary table pre_cutover_notification_keys as
  select id,
         case event_type
           when 'identity.signup' then 'identity.signup:' || user_id
           when 'identity.login' then 'identity.login:' || user_id || ':' || event_time
           when 'identity.signout' then
             'identity.signout:' || user_id || ':' || event_time
             || ':' || coalesce(cutover.payload_field(payload, 'device_id'), '')
             || ':' || coalesce(cutover.payload_field(payload, 'ip_address'), '')
             || ':' || coalesce(cutover.payload_field(payload, 'user_agent'), '')
           when 'media.upload_completed' then
             'media.upload_completed:' || user_id || ':' || cutover.payload_field(payload, 'file_path')
           when 'media.file_deleted' then
             'media.file_deleted:' || user_id || ':' || cutover.payload_field(payload, 'file_path')
           when 'media.upload_ready' then 'media.upload_ready:' || cutover.payload_field(payload, 'request_id')
           when 'media.upload_rejected' then 'media.upload_rejected:' || cutover.payload_field(payload, 'request_id')
           when 'media.upload_expired' then 'media.upload_expired:' || cutover.payload_field(payload, 'request_id')
           when 'media.download_ready' then 'media.download_ready:' || cutover.payload_field(payload, 'request_id')
           when 'media.download_rejected' then 'media.download_rejected:' || cutover.payload_field(payload, 'request_id')
           when 'media.delete_rejected' then 'media.delete_rejected:' || cutover.payload_field(payload, 'request_id')
           when 'credit.balance_changed' then
             case cutover.payload_field(payload, 'reason')
               when 'signup_bonus' then 'credit.balance_changed:signup_bonus:' || user_id
               -- the refund's notification names the file; its request id is in the
               -- media.upload_expired notification written from the same event
               when 'upload_expired' then (
                 select 'credit.balance_changed:upload_expired:' || cutover.payload_field(e.payload, 'request_id')
                   from public.user_notifications as e
                  where e.idempotency_key is null
                    and e.event_type = 'media.upload_expired'
                    and e.user_id = n.user_id
                    and e.event_time = n.event_time
                    and cutover.payload_field(e.payload, 'file_name') = cutover.payload_field(n.payload, 'file_name')
                  order by e.id
                  limit 1)
             end
         end as key
    from public.user_notifications as n
   where idempotency_key is null
     and event_type <> 'user.message';

  with first as (
    select distinct on (key) id, key
      from pre_cutover_notification_keys
     where key is not null
     order by key, id
  )
  update public.user_notifications as n
     set idempotency_key = first.key
    from first
   where n.id = first.id
     and not exists (select 1 from public.user_notifications as k where k.idempotency_key = first.key);
  get diagnostics notifications = row_count;

  create temporary table pre_cutover_ledger_keys as
  select id,
         case event_type
           when 'credit.signup_bonus' then 'credit.signup_bonus:' || user_id
           -- the refund's request id, from the expiry notification of the same event
           when 'credit.upload_refunded' then (
             select 'credit.upload_refunded:' || cutover.payload_field(e.payload, 'request_id')
               from public.user_notifications as e
              where e.event_type = 'media.upload_expired'
                and e.user_id = l.user_id
                and e.event_time = l.event_time
                and 'Refund: upload expired for ' || cutover.payload_field(e.payload, 'file_name') = l.description
              order by e.id
              limit 1)
         end as key
    from public.credit_ledger as l
   where idempotency_key is null;

  with first as (
    select distinct on (key) id, key
      from pre_cutover_ledger_keys
     where key is not null
     order by key, id
  )
  update public.credit_ledger as l
     set idempotency_key = first.key
    from first
   where l.id = first.id
     and not exists (select 1 from public.credit_ledger as k where k.idempotency_key = first.key);
  get diagnostics ledger = row_count;
  drop table pre_cutover_notification_keys, pre_cutover_ledger_keys;
end $$;

revoke all on all functions in schema cutover from public;

select * from cutover.key_pre_cutover_rows();

-- the message consumer's content match on Go rows (see 2. above)
create index user_notifications_pre_cutover_idx
  on public.user_notifications (user_id, event_time)
  where idempotency_key is null;
