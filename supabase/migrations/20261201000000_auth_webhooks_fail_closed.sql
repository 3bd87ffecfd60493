-- The auth webhook triggers fail closed.
--
-- Until now each trigger fell back to the local development secret when the
-- vault held no 'webhook_secret', so a deployment that forgot the secret (or
-- pushed the development seed) sent a publicly known value that the gateway,
-- configured the same way, accepted. Now a trigger without a stored secret
-- sends nothing and raises a warning: the sign-in itself still succeeds (a
-- webhook never blocks GoTrue), the event is missing, and the Postgres log
-- says why. Local development is unchanged: supabase/seed.sql stores the
-- development secret in the vault.
--
-- The three triggers now share one sender, so the rule lives in one place.

create function public.send_auth_webhook(p_path text, p_body jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  webhook_secret text;
  gateway_url text;
begin
  select decrypted_secret into webhook_secret
    from vault.decrypted_secrets
   where name = 'webhook_secret'
   limit 1;
  if coalesce(webhook_secret, '') = '' then
    raise warning 'auth webhook % not sent: no webhook_secret in the vault', p_path;
    return;
  end if;

  select decrypted_secret into gateway_url
    from vault.decrypted_secrets
   where name = 'gateway_url'
   limit 1;
  -- the gateway as seen from the Supabase containers in local development
  gateway_url := coalesce(gateway_url, 'http://host.docker.internal:8080');

  perform net.http_post(
    url := gateway_url || p_path,
    body := p_body,
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'X-Webhook-Secret', webhook_secret
    )
  );
end;
$$;

create or replace function public.handle_user_login()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform public.send_auth_webhook('/webhooks/login', jsonb_build_object(
    'user_id', new.id,
    'email', new.email,
    -- jsonb renders timestamptz as iso-8601, which is what the avro schema carries
    'login_time', new.last_sign_in_at,
    'device_id', new.raw_user_meta_data ->> 'device_id',
    'user_agent', new.raw_user_meta_data ->> 'user_agent',
    'ip_address', new.raw_user_meta_data ->> 'ip_address'
  ));
  return new;
end;
$$;

create or replace function public.handle_user_signup()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform public.send_auth_webhook('/webhooks/signup', jsonb_build_object(
    'user_id', new.id,
    'email', new.email,
    'signup_time', new.created_at
  ));
  return new;
end;
$$;

create or replace function public.handle_user_signout()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  user_email text;
begin
  -- sessions do not carry the email; null when the user itself is gone
  select email into user_email
    from auth.users
   where id = old.user_id;
  perform public.send_auth_webhook('/webhooks/signout', jsonb_build_object(
    'user_id', old.user_id,
    'email', user_email,
    'signout_time', now(),
    -- sessions have no device id; the key stays so the body matches the schema
    'device_id', null,
    'user_agent', old.user_agent,
    'ip_address', host(old.ip)
  ));
  return old;
end;
$$;

-- Only the triggers call it (as its owner): nobody gets execute.
revoke all on function public.send_auth_webhook(text, jsonb)
  from public, anon, authenticated, service_role;
