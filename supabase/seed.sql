-- Seed data, run after the migrations (by `supabase db reset` / `supabase
-- start`, and by scripts/supabase_apply.py on every local apply).
--
-- The shared secret the webhook triggers send as X-Webhook-Secret; the
-- gateway must be configured with the same value (local development value,
-- spec 0.2). vault.create_secret fails on a duplicate name, so only create
-- it when missing: re-running the seed is a no-op.
--
-- gateway_url is deliberately not seeded: the triggers fall back to
-- http://host.docker.internal:8080. Point them elsewhere with
--   select vault.create_secret('http://host:port', 'gateway_url', 'api-gateway base url');
select vault.create_secret(
  'super-secret-webhook-key',
  'webhook_secret',
  'Shared secret sent as X-Webhook-Secret by the auth webhook triggers'
)
where not exists (
  select 1 from vault.decrypted_secrets where name = 'webhook_secret'
);
