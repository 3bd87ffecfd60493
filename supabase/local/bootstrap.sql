-- Supabase-compatibility bootstrap for a plain PostgreSQL (15+) database.
--
-- Used only by the local stack and the tests (scripts/supabase_apply.py runs
-- it before the migrations). It recreates the small part of a Supabase
-- database that supabase/migrations depends on, so the migrations run
-- unchanged here and on real Supabase:
--   * roles anon, authenticated, service_role and supabase_auth_admin, and
--     Supabase's default privileges on schema public (so the explicit-grants
--     migration is tested against the defaults it overrides on Supabase);
--   * auth.users and auth.sessions (the columns GoTrue keeps that matter
--     here) and auth.uid() / auth.role() / auth.jwt() / auth.email(), which
--     read the request.jwt.* settings PostgREST and Realtime set per request;
--   * vault.secrets, vault.create_secret(), vault.update_secret() and
--     vault.decrypted_secrets (secrets stored in plain text: local only);
--   * the supabase_realtime publication.
-- pg_net itself comes from supabase/local/pg_net (installed as an extension,
-- created by the migrations). Everything here is idempotent.

-- Refuse to touch a real Supabase database: there auth and vault belong to
-- Supabase and replacing their functions would break GoTrue.
do $$
begin
  if exists (select 1 from pg_namespace where nspname = 'auth')
     and coalesce(obj_description((select oid from pg_namespace where nspname = 'auth'), 'pg_namespace'), '')
         not like 'event-substrate local bootstrap%' then
    raise exception 'schema auth exists and was not created by the local bootstrap: is this a real Supabase database? Apply migrations there with the Supabase CLI instead.';
  end if;
end
$$;

-- Roles are cluster-wide and several test databases may be bootstrapped at
-- once, so a concurrent creator winning the race is not an error.
do $$
begin
  create role anon nologin noinherit;
exception when duplicate_object or unique_violation then null;
end
$$;

do $$
begin
  create role authenticated nologin noinherit;
exception when duplicate_object or unique_violation then null;
end
$$;

do $$
begin
  create role service_role nologin noinherit bypassrls;
exception when duplicate_object or unique_violation then null;
end
$$;

-- GoTrue's database role: owns nothing here but writes auth.users and
-- auth.sessions, so the webhook triggers fire under an unprivileged role as
-- they do on Supabase (tests use it; there is no GoTrue locally).
do $$
begin
  create role supabase_auth_admin nologin noinherit;
exception when duplicate_object or unique_violation then null;
end
$$;

-- Supabase's service_role skips row level security; fix a role created
-- earlier without it (checked first to avoid concurrent alter role).
do $$
begin
  if not (select rolbypassrls from pg_roles where rolname = 'service_role') then
    alter role service_role bypassrls;
  end if;
end
$$;

-- Supabase's defaults on public: every API role may use the schema and gets
-- all privileges on whatever postgres creates there later (RLS is then the
-- only gate). Our migrations revoke what they do not want to hand out.
grant usage on schema public to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on sequences to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on functions to anon, authenticated, service_role;

-- auth ---------------------------------------------------------------------

create schema if not exists auth;
comment on schema auth is 'event-substrate local bootstrap: stand-in for the Supabase auth (GoTrue) schema';
grant usage on schema auth to anon, authenticated, service_role;

-- A subset of GoTrue's auth.users: identity, the timestamps GoTrue maintains
-- and the metadata columns. The webhook triggers read id, email,
-- created_at, last_sign_in_at and raw_user_meta_data.
create table if not exists auth.users (
  instance_id uuid,
  id uuid primary key default gen_random_uuid(),
  aud varchar(255) default 'authenticated',
  role varchar(255) default 'authenticated',
  email varchar(255),
  encrypted_password varchar(255),
  email_confirmed_at timestamptz,
  invited_at timestamptz,
  confirmation_sent_at timestamptz,
  last_sign_in_at timestamptz,
  raw_app_meta_data jsonb default '{}'::jsonb,
  raw_user_meta_data jsonb default '{}'::jsonb,
  is_super_admin boolean,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  phone text,
  banned_until timestamptz,
  deleted_at timestamptz,
  is_anonymous boolean not null default false
);

-- One row per refresh-token session; GoTrue deletes it on sign-out, and the
-- foreign key removes a user's sessions when the user is deleted (which is
-- why the signout webhook also fires then).
create table if not exists auth.sessions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  factor_id uuid,
  not_after timestamptz,
  refreshed_at timestamp,
  user_agent text,
  ip inet,
  tag text
);
create index if not exists sessions_user_id_idx on auth.sessions (user_id);

-- GoTrue's refresh tokens: one chain per session, each token revoked when it
-- is exchanged for the next (parent); they go with their session.
create table if not exists auth.refresh_tokens (
  instance_id uuid,
  id bigserial primary key,
  token varchar(255) unique,
  user_id varchar(255),
  revoked boolean,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  parent varchar(255),
  session_id uuid references auth.sessions (id) on delete cascade
);
create index if not exists refresh_tokens_session_id_idx on auth.refresh_tokens (session_id);

grant usage on schema auth to supabase_auth_admin;
grant select, insert, update, delete on auth.users, auth.sessions, auth.refresh_tokens to supabase_auth_admin;
grant usage, select on sequence auth.refresh_tokens_id_seq to supabase_auth_admin;

-- The request.jwt.claims setting holds the whole JWT payload (PostgREST 9+);
-- request.jwt.claim.<name> is the older per-claim form, still honoured.
create or replace function auth.jwt()
returns jsonb
language sql
stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

create or replace function auth.uid()
returns uuid
language sql
stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role()
returns text
language sql
stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email()
returns text
language sql
stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

-- vault --------------------------------------------------------------------

create schema if not exists vault;
comment on schema vault is 'event-substrate local bootstrap: stand-in for supabase_vault (secrets are NOT encrypted)';
-- only postgres (the owner) reads secrets, as on Supabase
revoke all on schema vault from public;

create table if not exists vault.secrets (
  id uuid primary key default gen_random_uuid(),
  name text,
  description text not null default '',
  -- supabase_vault stores ciphertext here; the stand-in keeps plain text
  secret text not null,
  key_id uuid,
  nonce bytea,
  created_at timestamptz not null default current_timestamp,
  updated_at timestamptz not null default current_timestamp
);
-- supabase_vault enforces unique names the same way
create unique index if not exists secrets_name_idx on vault.secrets (name) where name is not null;

create or replace view vault.decrypted_secrets as
  select id, name, description, secret, secret as decrypted_secret, key_id, nonce, created_at, updated_at
  from vault.secrets;

create or replace function vault.create_secret(
  new_secret text,
  new_name text default null,
  new_description text default '',
  new_key_id uuid default null
)
returns uuid
language sql
as $$
  insert into vault.secrets (secret, name, description, key_id)
  values (new_secret, new_name, coalesce(new_description, ''), new_key_id)
  returning id
$$;

create or replace function vault.update_secret(
  secret_id uuid,
  new_secret text default null,
  new_name text default null,
  new_description text default null,
  new_key_id uuid default null
)
returns void
language sql
as $$
  update vault.secrets
     set secret = coalesce(new_secret, secret),
         name = coalesce(new_name, name),
         description = coalesce(new_description, description),
         key_id = coalesce(new_key_id, key_id),
         updated_at = current_timestamp
   where id = secret_id
$$;

revoke all on function vault.create_secret(text, text, text, uuid) from public;
revoke all on function vault.update_secret(uuid, text, text, text, uuid) from public;

-- realtime -----------------------------------------------------------------

-- Supabase creates this publication empty; migrations add their tables. (A
-- server with wal_level below logical warns here; that is harmless for the
-- schema, Realtime itself needs logical decoding.)
do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;
