-- Login webhook: when GoTrue records a new sign-in on auth.users, tell the
-- api-gateway (POST /webhooks/login), which publishes the event to Kafka.
--
-- The call goes through pg_net, so it is queued in the transaction and sent
-- asynchronously after commit: a slow or absent gateway never delays or
-- fails the sign-in itself (and a failed delivery is not retried).

create extension if not exists pg_net;

create or replace function public.handle_user_login()
returns trigger
language plpgsql
-- runs as the owner (postgres) so it can read the vault and call pg_net
-- whatever role GoTrue uses to update auth.users
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
  -- local development value; production sets the vault secret
  webhook_secret := coalesce(webhook_secret, 'super-secret-webhook-key');

  select decrypted_secret into gateway_url
    from vault.decrypted_secrets
   where name = 'gateway_url'
   limit 1;
  -- the gateway as seen from the Supabase containers in local development
  gateway_url := coalesce(gateway_url, 'http://host.docker.internal:8080');

  perform net.http_post(
    url := gateway_url || '/webhooks/login',
    body := jsonb_build_object(
      'user_id', new.id,
      'email', new.email,
      -- jsonb renders timestamptz as iso-8601, which is what the avro schema carries
      'login_time', new.last_sign_in_at,
      'device_id', new.raw_user_meta_data ->> 'device_id',
      'user_agent', new.raw_user_meta_data ->> 'user_agent',
      'ip_address', new.raw_user_meta_data ->> 'ip_address'
    ),
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'X-Webhook-Secret', webhook_secret
    )
  );
  return new;
end;
$$;

drop trigger if exists on_auth_user_login on auth.users;

-- GoTrue updates auth.users for many reasons; only a changed
-- last_sign_in_at means somebody signed in.
create trigger on_auth_user_login
  after update on auth.users
  for each row
  when (old.last_sign_in_at is distinct from new.last_sign_in_at)
  execute function public.handle_user_login();
