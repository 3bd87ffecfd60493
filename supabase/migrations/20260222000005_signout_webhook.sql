-- Signout webhook: GoTrue deletes the auth.sessions row on sign-out, and we
-- tell the api-gateway (POST /webhooks/signout).
--
-- Known limitation (kept on purpose, see spec 13.19): the trigger fires for
-- every deleted session, including refresh-token cleanup and the cascade
-- when a user is deleted (then the email lookup finds nothing and sends
-- null). Consumers must not treat every signout event as a user action.

create extension if not exists pg_net;

create or replace function public.handle_user_signout()
returns trigger
language plpgsql
-- runs as the owner (postgres) so it can read auth.users, the vault and pg_net
security definer
as $$
declare
  webhook_secret text;
  gateway_url text;
  user_email text;
begin
  select decrypted_secret into webhook_secret
    from vault.decrypted_secrets
   where name = 'webhook_secret'
   limit 1;
  webhook_secret := coalesce(webhook_secret, 'super-secret-webhook-key');

  select decrypted_secret into gateway_url
    from vault.decrypted_secrets
   where name = 'gateway_url'
   limit 1;
  gateway_url := coalesce(gateway_url, 'http://host.docker.internal:8080');

  -- sessions do not carry the email; null when the user itself is gone
  select email into user_email
    from auth.users
   where id = old.user_id;

  perform net.http_post(
    url := gateway_url || '/webhooks/signout',
    body := jsonb_build_object(
      'user_id', old.user_id,
      'email', user_email,
      'signout_time', now(),
      -- sessions have no device id; the key stays so the body matches the schema
      'device_id', null,
      'user_agent', old.user_agent,
      'ip_address', host(old.ip)
    ),
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'X-Webhook-Secret', webhook_secret
    )
  );
  return old;
end;
$$;

drop trigger if exists on_auth_session_delete on auth.sessions;

create trigger on_auth_session_delete
  after delete on auth.sessions
  for each row
  execute function public.handle_user_signout();
