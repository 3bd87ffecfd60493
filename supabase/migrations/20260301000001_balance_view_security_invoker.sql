-- Fix spec 13.14: user_credit_balances was a plain view, which runs with the
-- rights of its owner (postgres, who bypasses RLS), so any client could read
-- every user's balance through the REST API. With security_invoker the view
-- reads credit_ledger with the caller's rights, so the ledger's "Users see
-- own credits" policy applies and a user only sees their own balance row.
-- (Requires PostgreSQL 15, which Supabase runs.)
alter view public.user_credit_balances set (security_invoker = true);
