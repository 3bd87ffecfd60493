-- credit_ledger: append-only signed credit deltas per user; the balance is
-- their sum (view user_credit_balances). Written by the backend only:
-- Flink (signup bonus +2, upload refund +1) and the PyFlink credit check
-- (upload deduction -1).

create table public.credit_ledger (
  id bigint generated always as identity primary key,
  user_id text not null,
  -- signed: positive grants, negative deductions
  amount integer not null,
  -- credit.signup_bonus, credit.upload_deducted, credit.upload_refunded
  event_type text not null,
  description text not null default '',
  event_time text not null,
  created_at timestamptz not null default now()
);

-- One row per user that has ledger entries; users without entries have no
-- row (clients treat that as 0).
-- NOTE: created as a plain view, which runs with its owner's rights and so
-- ignores credit_ledger's RLS; 20260301000001 switches it to
-- security_invoker so every user only sees their own balance.
create view public.user_credit_balances as
  select user_id, coalesce(sum(amount), 0) as balance
    from public.credit_ledger
   group by user_id;

alter table public.credit_ledger enable row level security;

-- Users read their own entries; no insert/update/delete policies, so only
-- the backend (bypassing RLS) writes.
create policy "Users see own credits"
  on public.credit_ledger
  for select
  to authenticated
  using (auth.uid()::text = user_id);

alter publication supabase_realtime add table public.credit_ledger;
alter table public.credit_ledger replica identity full;
