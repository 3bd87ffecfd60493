-- flink_writer: the role the Flink jobs write with, instead of the superuser.
--
-- The SQL jobs upsert notifications, ledger rows and media files through the
-- JDBC sink (insert ... on conflict (...) do update); the credit check reads
-- balances, inserts deductions and their notifications, and claims the
-- original fleet's deductions at a cut-over. That is all this role may do: no
-- delete, no truncate, no DDL, no other table, no auth schema.
--
-- It is created without a password; the deployment sets one
-- (alter role flink_writer password '...'; README "Deploy"), and the chart
-- connects as it (flink.postgres.user). The local stack's server trusts local
-- connections, so local jobs and tests use it without one.

do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'flink_writer') then
    -- roles are per server: another database of it may have created it already
    create role flink_writer login;
  end if;
end $$;

grant usage on schema public to flink_writer;
grant select, insert, update on table
  public.user_notifications,
  public.credit_ledger,
  public.media_files
  to flink_writer;

-- RLS is on for these tables and the jobs write for every user: the writer
-- sees and writes every row (what it may do at all is limited by the grants).
create policy "Flink jobs write every row" on public.user_notifications
  for all to flink_writer using (true) with check (true);
create policy "Flink jobs write every row" on public.credit_ledger
  for all to flink_writer using (true) with check (true);
create policy "Flink jobs write every row" on public.media_files
  for all to flink_writer using (true) with check (true);

-- the credit check's cut-over claim (20261130000100_pre_cutover_deductions.sql)
grant usage on schema cutover to flink_writer;
grant execute on function
  cutover.try_timestamptz(text),
  cutover.claim_pre_cutover_deduction(text, text, text, text)
  to flink_writer;
