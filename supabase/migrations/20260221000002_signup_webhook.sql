-- Signup webhook: every new auth.users row is announced to the api-gateway
-- (POST /webhooks/signup). Same delivery model as the login webhook: queued
-- by pg_net, sent after commit, never blocks the signup.

create extension if not exists pg_net;

create or replace function public.handle_user_signup()
returns trigger
language plpgsql
-- runs as the owner (postgres) so it can read the vault and call pg_net
security definer
as $$
declare
  webhook_secret text;
  gateway_url text;
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

  perform net.http_post(
    url := gateway_url || '/webhooks/signup',
    body := jsonb_build_object(
      'user_id', new.id,
      'email', new.email,
      'signup_time', new.created_at
    ),
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'X-Webhook-Secret', webhook_secret
    )
  );
  return new;
end;
$$;

drop trigger if exists on_auth_user_signup on auth.users;

create trigger on_auth_user_signup
  after insert on auth.users
  for each row
  execute function public.handle_user_signup();
