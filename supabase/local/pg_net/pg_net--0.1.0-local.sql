-- event-substrate local stand-in for Supabase's pg_net.
--
-- The real pg_net is a C extension whose background worker sends the queued
-- requests with libcurl. Plain PostgreSQL does not have it, so this SQL-only
-- version keeps the same public surface the migrations rely on
-- (net.http_post with the same signature, net.http_request_queue and
-- net._http_response) and leaves the sending to scripts/pgnet_worker.py,
-- which drains the queue. Like the real one, a call only queues the request:
-- nothing is sent unless the surrounding transaction commits.

\echo Use "create extension pg_net" to load this file. \quit

create schema net;

-- One row per request waiting to be sent. The worker deletes the row in the
-- same transaction that records the outcome in net._http_response.
create table net.http_request_queue (
  id bigserial primary key,
  method text not null check (method in ('GET', 'POST', 'DELETE')),
  url text not null,
  headers jsonb not null default '{}'::jsonb,
  body bytea,
  timeout_milliseconds integer not null check (timeout_milliseconds > 0),
  -- not in the real pg_net; kept to make the queue easier to inspect
  created timestamptz not null default now()
);

-- Outcome of each request; id is the value net.http_post returned.
create table net._http_response (
  id bigint primary key,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out boolean,
  error_msg text,
  created timestamptz not null default now(),
  -- not in the real pg_net: how many times the worker tried to connect
  attempts integer
);

-- Percent-encodes everything outside the RFC 3986 unreserved set, byte by
-- byte in UTF-8, so that params end up in the query string the way the real
-- extension encodes them.
create function net._urlencode(value text)
returns text
language sql
immutable
strict
set search_path = ''
as $$
  select coalesce(
    string_agg(
      case
        when ch ~ '^[A-Za-z0-9._~-]$' then ch
        else upper(regexp_replace(encode(convert_to(ch, 'UTF8'), 'hex'), '(..)', '%\1', 'g'))
      end,
      '' order by pos
    ),
    ''
  )
  from regexp_split_to_table(value, '') with ordinality as chars(ch, pos)
$$;

-- Same signature and defaults as pg_net's net.http_post. Returns the request
-- id; the response shows up in net._http_response once the worker sent it.
create function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer default 5000
)
returns bigint
language plpgsql
volatile
-- callers only need execute on this function, not rights on the queue
security definer
set search_path = ''
as $$
declare
  full_url text := url;
  query text;
  request_id bigint;
begin
  if url is null then
    raise exception 'net.http_post: url must not be null';
  end if;
  if jsonb_typeof(coalesce(headers, '{}'::jsonb)) <> 'object' then
    raise exception 'net.http_post: headers must be a json object';
  end if;
  if jsonb_typeof(coalesce(params, '{}'::jsonb)) <> 'object' then
    raise exception 'net.http_post: params must be a json object';
  end if;

  select string_agg(net._urlencode(p.key) || '=' || net._urlencode(p.value), '&' order by p.key)
    into query
    from jsonb_each_text(coalesce(params, '{}'::jsonb)) as p(key, value);
  if query is not null then
    full_url := full_url || case when position('?' in full_url) > 0 then '&' else '?' end || query;
  end if;

  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values (
    'POST',
    full_url,
    coalesce(headers, '{}'::jsonb),
    convert_to(coalesce(body, '{}'::jsonb)::text, 'UTF8'),
    coalesce(timeout_milliseconds, 5000)
  )
  returning id into request_id;

  -- delivered at commit, which is also when the queued row becomes visible
  perform pg_notify('pg_net_request_queue', request_id::text);
  return request_id;
end;
$$;

-- Executing this makes the database send HTTP requests anywhere, so nobody
-- gets it by default; security definer trigger functions owned by postgres
-- call it with the owner's rights.
revoke all on schema net from public;
revoke all on function net.http_post(text, jsonb, jsonb, jsonb, integer) from public;
revoke all on function net._urlencode(text) from public;
