-- Idempotency keys of the api-gateway (crates/api-gateway/src/idempotency.rs).
--
-- A client that retries a request with the same Idempotency-Key gets the first
-- attempt's answer instead of a second event. One row per (user, path, key):
-- the fingerprint of the body it was first used with (a different body is
-- refused), the time of that first use (the key expires a window after it, and
-- the ids of what the attempt produced are derived from it), the lease of the
-- attempt running now, and, once it succeeded, its answer.
--
-- A schema of its own, outside the API's exposed schemas, and no grants to
-- the API roles: only the gateway (the owner, postgres, or service_role) may
-- read or write it. A user's keys would tell another user nothing useful, but
-- nothing here is the browser's business either.

create schema if not exists gateway;
revoke all on schema gateway from public;

create table gateway.idempotency_keys (
  user_id     text        not null,
  route       text        not null,
  key         text        not null check (length(key) between 1 and 255),
  fingerprint text        not null,
  first_used  timestamptz not null,
  lease_until timestamptz not null,
  -- the answer of the attempt that succeeded; null while an attempt runs
  status      smallint,
  body        jsonb,
  primary key (user_id, route, key)
);

-- the sweep removes keys older than the window
create index idempotency_keys_first_used on gateway.idempotency_keys (first_used);

alter table gateway.idempotency_keys enable row level security;
revoke all on table gateway.idempotency_keys from public, anon, authenticated;

grant usage on schema gateway to service_role;
grant select, insert, update, delete on table gateway.idempotency_keys to service_role;
