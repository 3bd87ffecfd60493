-- Upload deductions the original credit check wrote before a cut-over.
--
-- The original ledger row of a deduction keeps no request id (description
-- 'Upload: <file_name>', event_time = the moment it deducted), so
-- cutover.key_pre_cutover_rows() cannot key it in advance. An intent the
-- original job had already handled and that the new credit check reads again
-- (its sources start at the cut-over timestamp, a little before the original
-- jobs stopped) would be charged twice.
--
-- So the new credit check, under the user's credit lock and before it inserts
-- a deduction, claims the original row of that intent if there is one: the
-- user's oldest keyless 'Upload: <file_name>' deduction written at or after the
-- intent's request_time (the original deducted after the gateway stamped the
-- intent). Claiming gives the row the intent's key, so the insert that follows
-- finds it and approves without charging again. Keyless rows are written only
-- by the original fleet, so an intent after the cut-over never matches one
-- (they are all older than its request time). Intents are claimed in order, so
-- several uploads of one file name in the overlap each get their own row.

-- text -> timestamptz, or null for what does not parse (event_time is text).
create function cutover.try_timestamptz(value text) returns timestamptz
  language plpgsql stable as $$
begin
  return value::timestamptz;
exception when others then
  return null;
end $$;

-- Gives the original deduction of this intent the key `p_key`; true when it
-- found one. Does nothing when a row already has the key (a redelivery of an
-- intent the new job deducted) or request_time does not parse.
create function cutover.claim_pre_cutover_deduction(
  p_user_id text, p_file_name text, p_request_time text, p_key text
) returns boolean
  language plpgsql as $$
declare
  since timestamptz := cutover.try_timestamptz(p_request_time);
  claimed bigint;
begin
  if since is null
     or exists (select 1 from public.credit_ledger where idempotency_key = p_key) then
    return false;
  end if;
  update public.credit_ledger
     set idempotency_key = p_key
   where id = (
     select id from public.credit_ledger
      where user_id = p_user_id
        and idempotency_key is null
        and event_type = 'credit.upload_deducted'
        and description = 'Upload: ' || p_file_name
        and cutover.try_timestamptz(event_time) >= since
      order by cutover.try_timestamptz(event_time), id
      limit 1
      for update)
  returning id into claimed;
  return claimed is not null;
end $$;

-- The lookup runs for every intent; for a user without original deductions
-- (everyone who signed up after the cut-over) it is one empty index probe.
create index credit_ledger_pre_cutover_deductions_idx
  on public.credit_ledger (user_id)
  where idempotency_key is null and event_type = 'credit.upload_deducted';
