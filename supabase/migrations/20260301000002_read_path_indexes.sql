-- Indexes for the read paths; before this only the primary keys existed.

-- Notification history and the waiters read a user's newest events first.
create index user_notifications_user_id_created_at_idx
  on public.user_notifications (user_id, created_at desc);

-- Balance lookups (the view, the gateway's credit check and the PyFlink
-- deduction) sum one user's amounts; including amount lets Postgres answer
-- from the index alone.
create index credit_ledger_user_id_idx
  on public.credit_ledger (user_id) include (amount);

-- media_files (user_id, file_path) needs no extra index: the unique
-- constraint media_files_user_id_file_path_key (20260301000000) provides it.
