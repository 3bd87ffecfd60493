-- Explicit grants instead of Supabase's defaults.
--
-- By default Supabase gives anon, authenticated and service_role every
-- privilege on each new table in public, including truncate (which ignores
-- RLS), references and trigger, and leaves RLS as the only gate. State what
-- each role may do instead:
--   anon          nothing (these tables are for signed-in users only)
--   authenticated select; the RLS policies choose the rows
--   service_role  select/insert/update/delete (it bypasses RLS)
--   postgres      owner (it ran these migrations); backend writers use it
-- The identity columns need no sequence grants: identity defaults do not
-- check sequence privileges.

revoke all on table
  public.user_notifications,
  public.credit_ledger,
  public.media_files,
  public.user_credit_balances
  from public, anon, authenticated, service_role;

grant select on table
  public.user_notifications,
  public.credit_ledger,
  public.media_files,
  public.user_credit_balances
  to authenticated;

grant select, insert, update, delete on table
  public.user_notifications,
  public.credit_ledger,
  public.media_files
  to service_role;

-- the view is not writable anyway; reading is all service_role needs
grant select on table public.user_credit_balances to service_role;

revoke all on sequence
  public.user_notifications_id_seq,
  public.credit_ledger_id_seq,
  public.media_files_id_seq
  from public, anon, authenticated, service_role;

-- The webhook functions are security definer and only meant to run as
-- triggers: nobody needs execute on them. Pinning search_path stops a
-- caller from redirecting their unqualified names (they only use
-- schema-qualified objects and pg_catalog).
revoke all on function public.handle_user_login() from public, anon, authenticated, service_role;
revoke all on function public.handle_user_signup() from public, anon, authenticated, service_role;
revoke all on function public.handle_user_signout() from public, anon, authenticated, service_role;
alter function public.handle_user_login() set search_path = '';
alter function public.handle_user_signup() set search_path = '';
alter function public.handle_user_signout() set search_path = '';
