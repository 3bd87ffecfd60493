-- api_gateway, message_consumer, media_service: one least-privilege role per
-- service, instead of the owner (postgres, which bypasses RLS). Same model as
-- flink_writer (20261201000100_flink_writer_role.sql): created with LOGIN and
-- without a password; the deployment sets one (README "Deploy";
-- scripts/infra/postgres-roles.sh), and the chart and compose connect as them
-- (apiGateway.postgres.user, ...). The local developer stack keeps connecting as
-- postgres; its server trusts local connections.
--
-- Every grant below is a statement the service runs (the SQL is in
-- crates/*/src; tests/supabase/test_service_roles.py runs each one as its role
-- and fails when the Rust text changes). Column grants where a service reads or
-- writes only some columns; identity columns need no sequence grant. Functions
-- of pg_catalog they call (pg_advisory_xact_lock, hashtextextended,
-- clock_timestamp, make_interval) are executable by every role already. The
-- readiness check (`select 1`, substrate::health::PostgresCheck) needs nothing.
--
-- api_gateway (crates/api-gateway/src/credits.rs, idempotency.rs;
-- crates/substrate/src/media/mod.rs through the legacy routes):
--   select pg_advisory_xact_lock(hashtextextended('credit_ledger:' || user, 0))
--   public.credit_ledger       select (user_id, amount): the balance
--                              select (idempotency_key): the on conflict target
--                              insert (user_id, amount, event_type, description,
--                                      event_time, idempotency_key)
--                                      on conflict (idempotency_key) do nothing:
--                                      the legacy upload's -1 deduction
--   public.user_notifications  insert (user_id, event_type, payload, event_time,
--                                      idempotency_key) on conflict do nothing:
--                                      its credit.balance_changed
--                              select (idempotency_key): the on conflict target
--   public.media_files         select (user_id, file_path, file_name, media_type,
--                                      file_size, status, deleted_by_request_id)
--                              update (status, deleted_by_request_id): soft delete
--   gateway.idempotency_keys   select; insert (user_id, route, key, fingerprint,
--                                      first_used, lease_until);
--                              update (fingerprint, first_used, lease_until,
--                                      status, body); delete (release, sweep)
-- message_consumer (crates/message-consumer/src/store.rs):
--   public.user_notifications  insert (user_id, event_type, payload, event_time,
--                                      visibility, recipient_id, idempotency_key)
--                                      on conflict (idempotency_key) do nothing
--                              select (user_id, event_type, payload, event_time,
--                                      visibility, recipient_id, idempotency_key):
--                                      its "not exists" match on the keyless
--                                      user.message rows of the Go fleet
-- media_service (crates/substrate/src/media/mod.rs: lookup, soft_delete):
--   public.media_files         select (user_id, file_path, file_name, media_type,
--                                      file_size, status, deleted_by_request_id)
--                              update (status, deleted_by_request_id)
--
-- RLS stays on. The tables hold every user's rows and the services act for
-- every user, so each role gets policies of its own, limited to the rows and
-- values its statements touch; the policies of the other roles are unchanged.
-- "on conflict (idempotency_key)" needs SELECT on the key column, and with it
-- Postgres checks each inserted row against the role's select policies too: a
-- role that inserts rows must also be allowed to see them.
-- No delete, truncate, DDL, auth/vault/cutover schema, or other table.

do $$
declare
  service text;
begin
  foreach service in array array['api_gateway', 'message_consumer', 'media_service'] loop
    if not exists (select 1 from pg_roles where rolname = service) then
      -- roles are per server: another database of it may have created it already
      execute format('create role %I login', service);
    end if;
  end loop;
end $$;

grant usage on schema public to api_gateway, message_consumer, media_service;

-- ---------------------------------------------------------------- api_gateway

grant select (user_id, amount, idempotency_key),
      insert (user_id, amount, event_type, description, event_time, idempotency_key)
  on table public.credit_ledger to api_gateway;
grant select (idempotency_key),
      insert (user_id, event_type, payload, event_time, idempotency_key)
  on table public.user_notifications to api_gateway;
grant select (user_id, file_path, file_name, media_type, file_size, status, deleted_by_request_id),
      update (status, deleted_by_request_id)
  on table public.media_files to api_gateway;

grant usage on schema gateway to api_gateway;
grant select, delete,
      insert (user_id, route, key, fingerprint, first_used, lease_until),
      update (fingerprint, first_used, lease_until, status, body)
  on table gateway.idempotency_keys to api_gateway;

-- the balance of whichever user uploads; only the legacy upload's deduction
create policy "API gateway reads balances" on public.credit_ledger
  for select to api_gateway using (true);
create policy "API gateway deducts upload credits" on public.credit_ledger
  for insert to api_gateway
  with check (amount = -1 and event_type = 'credit.upload_deducted');
-- the deduction's notification only (seeing them: the on conflict check)
create policy "API gateway announces deductions" on public.user_notifications
  for insert to api_gateway
  with check (event_type = 'credit.balance_changed');
create policy "API gateway sees its announcements" on public.user_notifications
  for select to api_gateway
  using (event_type = 'credit.balance_changed');
-- any user's file (the route checks ownership); soft delete: active -> deleted only
create policy "API gateway reads files" on public.media_files
  for select to api_gateway using (true);
create policy "API gateway soft-deletes files" on public.media_files
  for update to api_gateway
  using (status = 'active') with check (status = 'deleted');
-- the keys of every user (the table is the gateway's alone)
create policy "API gateway keeps idempotency keys" on gateway.idempotency_keys
  for all to api_gateway using (true) with check (true);

-- ---------------------------------------------------------------- message_consumer

grant select (user_id, event_type, payload, event_time, visibility, recipient_id, idempotency_key),
      insert (user_id, event_type, payload, event_time, visibility, recipient_id, idempotency_key)
  on table public.user_notifications to message_consumer;

-- user messages only, written and read (its match on the Go fleet's keyless
-- rows, and the on conflict check of the rows it inserts)
create policy "Message consumer writes messages" on public.user_notifications
  for insert to message_consumer
  with check (event_type = 'user.message');
create policy "Message consumer reads messages" on public.user_notifications
  for select to message_consumer
  using (event_type = 'user.message');

-- ---------------------------------------------------------------- media_service

grant select (user_id, file_path, file_name, media_type, file_size, status, deleted_by_request_id),
      update (status, deleted_by_request_id)
  on table public.media_files to media_service;

-- any user's file (the saga checks ownership); soft delete: active -> deleted only
create policy "Media service reads files" on public.media_files
  for select to media_service using (true);
create policy "Media service soft-deletes files" on public.media_files
  for update to media_service
  using (status = 'active') with check (status = 'deleted');
