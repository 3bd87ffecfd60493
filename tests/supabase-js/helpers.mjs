// Shared fixtures for the supabase-js suite: clients, users, a pg pool,
// row inserts, JWT decoding, polling and cleanup.
//
// Every test file registers `after(cleanup)`; node --test runs each file in
// its own process, so the registries below are per file.

import { randomBytes } from 'node:crypto';
import { createClient } from '@supabase/supabase-js';
import pg from 'pg';
import WebSocket from 'ws';

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set. The supabase-js suite needs SUPABASE_ANON_KEY and ` +
        'SUPABASE_SERVICE_ROLE_KEY (the keys local-supabase signs with); see tests/supabase-js/README.md.',
    );
  }
  return value;
}

export const SUPABASE_URL = (process.env.SUPABASE_URL || 'http://127.0.0.1:54321').replace(/\/+$/, '');
export const ANON_KEY = required('SUPABASE_ANON_KEY');
export const SERVICE_ROLE_KEY = required('SUPABASE_SERVICE_ROLE_KEY');
export const DATABASE_URL = process.env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:54322/substrate';

export const PASSWORD = 'Test1234!!';

// Client-side auth options for every client: no storage, no timers.
const AUTH_OPTIONS = { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false };

/** A short random hex string, used for emails and row tags. */
export function randomTag(bytes = 6) {
  return randomBytes(bytes).toString('hex');
}

/** `<prefix>-<random>@supabase-js.test` */
export function uniqueEmail(prefix) {
  return `${prefix}-${randomTag()}@supabase-js.test`;
}

// ---------------------------------------------------------------------------
// clients

const clients = new Set();

/**
 * A WebSocket transport (ws) that records every text frame the server sends,
 * parsed, in `frames`. Lets tests assert what reached the socket, not only
 * what supabase-js chose to dispatch to a callback.
 */
function recordingTransport(frames) {
  return class RecordingWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      this.on('message', (data, isBinary) => {
        if (isBinary) return;
        try {
          frames.push(normalizeFrame(JSON.parse(Buffer.from(data).toString('utf8'))));
        } catch {
          // not JSON: not a Phoenix frame we care about
        }
      });
    }
  };
}

// Phoenix serializer 2.0.0 sends [join_ref, ref, topic, event, payload];
// 1.0.0 sends an object. Both become {joinRef, ref, topic, event, payload}.
function normalizeFrame(msg) {
  if (Array.isArray(msg)) {
    const [joinRef, ref, topic, event, payload] = msg;
    return { joinRef, ref, topic, event, payload };
  }
  return { joinRef: msg.join_ref, ref: msg.ref, topic: msg.topic, event: msg.event, payload: msg.payload };
}

/**
 * A client with the anon key, as the page creates it. Its Realtime socket
 * uses ws and records received frames in `client.receivedFrames`.
 */
export function anonClient() {
  const frames = [];
  const client = createClient(SUPABASE_URL, ANON_KEY, {
    auth: AUTH_OPTIONS,
    realtime: { transport: recordingTransport(frames) },
  });
  client.receivedFrames = frames;
  clients.add(client);
  return client;
}

let service;
/** A client with the service-role key (admin API). */
export function serviceClient() {
  if (!service) {
    service = createClient(SUPABASE_URL, SERVICE_ROLE_KEY, {
      auth: AUTH_OPTIONS,
      realtime: { transport: WebSocket },
    });
    clients.add(service);
  }
  return service;
}

// ---------------------------------------------------------------------------
// users

const createdUserIds = new Set();

/** Remember a user id so cleanup deletes it (and its rows). */
export function trackUser(id) {
  if (id) createdUserIds.add(id);
}

/**
 * Signs a new user up through supabase-js (signup auto-confirms and returns a
 * session) and returns { client, email, password, user, session, id }. The
 * client is then signed in as that user.
 */
export async function newUser(prefix) {
  const client = anonClient();
  const email = uniqueEmail(prefix);
  const { data, error } = await client.auth.signUp({ email, password: PASSWORD });
  if (error) throw new Error(`signUp(${email}) failed: ${error.status} ${error.code} ${error.message}`);
  if (!data.user || !data.session) throw new Error(`signUp(${email}) returned no user or no session`);
  trackUser(data.user.id);
  return { client, email, password: PASSWORD, user: data.user, session: data.session, id: data.user.id };
}

// ---------------------------------------------------------------------------
// database (superuser; only to insert and inspect rows directly)

let pool;
export function db() {
  if (!pool) pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  return pool;
}

/**
 * Inserts a user_notifications row as the backend does (bypassing RLS) and
 * returns it (id comes back from pg as a string: bigint).
 */
export async function insertNotification({
  userId,
  eventType,
  payload = {},
  eventTime = new Date().toISOString(),
  visibility,
  recipientId = null,
  createdAt,
}) {
  const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const { rows } = await db().query(
    `insert into public.user_notifications
       (user_id, event_type, payload, event_time, visibility, recipient_id, created_at)
     values ($1, $2, $3, $4, coalesce($5, 'broadcast'), $6, coalesce($7::timestamptz, now()))
     returning *`,
    [userId, eventType, text, eventTime, visibility ?? null, recipientId, createdAt ?? null],
  );
  return rows[0];
}

/** Inserts a credit_ledger row (signed amount) and returns it. */
export async function insertCredit(userId, amount, eventType = 'credit.test_grant') {
  const { rows } = await db().query(
    `insert into public.credit_ledger (user_id, amount, event_type, description, event_time)
     values ($1, $2, $3, 'supabase-js test', $4)
     returning *`,
    [userId, amount, eventType, new Date().toISOString()],
  );
  return rows[0];
}

/** Inserts a media_files row and returns it. */
export async function insertMediaFile(userId, { fileName, status = 'active', fileSize = 1234 }) {
  const { rows } = await db().query(
    `insert into public.media_files (user_id, file_name, file_path, file_size, media_type, status, upload_time)
     values ($1, $2, $3, $4, 'image/png', $5, $6)
     returning *`,
    [userId, fileName, `files/${userId}/${randomTag()}-${fileName}`, fileSize, status, new Date().toISOString()],
  );
  return rows[0];
}

/** The RLS select policy of user_notifications, evaluated in JS. */
export function notificationVisibleTo(row, userId) {
  return (
    row.user_id === userId ||
    (row.event_type === 'user.message' && row.visibility === 'broadcast') ||
    (row.event_type === 'user.message' && row.recipient_id === userId)
  );
}

// ---------------------------------------------------------------------------
// HTTP and JWT

/** fetch against local-supabase with no client-side defaults (raw HTTP checks). */
export function rawFetch(path, init = {}) {
  return fetch(`${SUPABASE_URL}${path}`, init);
}

/** Decodes a JWT's header and payload (no signature check: the secret is the server's). */
export function decodeJwt(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) throw new Error(`not a JWT: ${token}`);
  const part = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  return { header: part(parts[0]), payload: part(parts[1]) };
}

// ---------------------------------------------------------------------------
// waiting

/**
 * Polls `predicate` (sync or async) until it returns a truthy value, which is
 * returned; throws after timeoutMs. `describe` (string or function) explains
 * the timeout.
 */
export async function waitFor(predicate, timeoutMs = 10_000, describe = 'condition') {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const what = typeof describe === 'function' ? describe() : describe;
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}` + (lastError ? ` (last error: ${lastError.message})` : ''),
      );
    }
    await sleep(50);
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// realtime

/**
 * Subscribes `client` to INSERTs on public.user_notifications on a channel
 * called `name` (the page uses 'user-events') and resolves once the server
 * confirmed the join (SUBSCRIBED). Returns { channel, topic, events, statuses }:
 * events collects the supabase-js change payloads, statuses every subscribe
 * status (SUBSCRIBED, CLOSED, ...).
 */
export async function subscribeInserts(client, { name = 'user-events', filter } = {}) {
  const events = [];
  const statuses = [];
  const binding = { event: 'INSERT', schema: 'public', table: 'user_notifications' };
  if (filter) binding.filter = filter;
  const channel = client.channel(name).on('postgres_changes', binding, (payload) => events.push(payload));
  await new Promise((resolve, reject) => {
    let settled = false;
    channel.subscribe((status, err) => {
      statuses.push(status);
      if (settled) return;
      settled = true;
      if (status === 'SUBSCRIBED') resolve();
      // CHANNEL_ERROR (join refused, binding mismatch, socket error), TIMED_OUT or CLOSED
      else reject(new Error(`channel ${name} did not subscribe: ${status}${err ? `: ${err.message}` : ''}`));
    });
  });
  return { channel, topic: `realtime:${name}`, events, statuses };
}

/** Ids (numbers) of the rows whose INSERT payloads supabase-js delivered. */
export function eventIds(events) {
  return events.map((e) => e.new?.id);
}

/**
 * The records of every postgres_changes frame the client's socket received
 * (optionally only for one topic), as the server sent them.
 */
export function receivedChangeRecords(client, topic) {
  return client.receivedFrames
    .filter((f) => f.event === 'postgres_changes' && (!topic || f.topic === topic))
    .map((f) => ({ topic: f.topic, record: f.payload?.data?.record ?? {}, data: f.payload?.data }));
}

// ---------------------------------------------------------------------------
// cleanup

/**
 * Closes every Realtime socket, deletes every user created (admin API, with
 * the service-role key) and the rows inserted for them, and closes the pool.
 */
export async function cleanup() {
  const problems = [];
  for (const client of clients) {
    try {
      await client.removeAllChannels();
    } catch (e) {
      problems.push(`removeAllChannels: ${e.message}`);
    }
    await client.realtime.disconnect();
  }
  const ids = [...createdUserIds];
  for (const id of ids) {
    const { error } = await serviceClient().auth.admin.deleteUser(id);
    // 404: the test deleted it already
    if (error && error.status !== 404) problems.push(`deleteUser(${id}): ${error.status} ${error.message}`);
  }
  if (ids.length) {
    for (const table of ['user_notifications', 'credit_ledger', 'media_files']) {
      await db().query(`delete from public.${table} where user_id = any($1::text[])`, [ids]);
    }
  }
  if (service) await service.realtime.disconnect();
  if (pool) await pool.end();
  if (problems.length) throw new Error(`cleanup: ${problems.join('; ')}`);
}
