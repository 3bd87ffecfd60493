// Shared helpers of the browser suite: unique users, signup through the page, admin cleanup of
// every user a test created (and the rows the platform wrote for them), direct SQL for setup,
// and a tiny PNG generator for uploads.

import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import zlib from 'node:zlib';
import { expect, test as base } from '@playwright/test';
import pg from 'pg';

export const PASSWORD = 'Test1234!!';
export const SUPABASE_URL = (process.env.SUPABASE_URL ?? 'http://127.0.0.1:54321').replace(/\/+$/, '');
export const API_GATEWAY_URL = (process.env.API_GATEWAY_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:54322/substrate';
/** The repository root (tests/browser/tests/ -> ../../..). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** How long a saga (upload, download, delete) may take end to end before a wait fails. */
export const SAGA_TIMEOUT = 60_000;
/** How long a Realtime-pushed change (credits, a message) may take to show. */
export const REALTIME_TIMEOUT = 30_000;

/** A short random hex string. */
export function randomTag(bytes = 5) {
  return randomBytes(bytes).toString('hex');
}

/** `<prefix>-<random>@browser.test` */
export function uniqueEmail(prefix) {
  return `${prefix}-${randomTag()}@browser.test`;
}

// ---------------------------------------------------------------------------------------------
// Keys

/**
 * local-supabase's anon and service-role keys, from SUPABASE_ANON_KEY and
 * SUPABASE_SERVICE_ROLE_KEY (`./taskw test:browser` exports both, as for the supabase-js suite).
 * @returns {{anonKey: string, serviceRoleKey: string}}
 */
export function supabaseKeys() {
  const anonKey = process.env.SUPABASE_ANON_KEY;
  const serviceRoleKey = process.env.SUPABASE_SERVICE_ROLE_KEY;
  if (!anonKey || !serviceRoleKey) {
    throw new Error(
      'SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY are not set: run the suite with ./taskw test:browser, ' +
        'which exports the keys local-supabase signs with',
    );
  }
  return { anonKey, serviceRoleKey };
}

function adminHeaders() {
  const { serviceRoleKey } = supabaseKeys();
  return { apikey: serviceRoleKey, Authorization: `Bearer ${serviceRoleKey}` };
}

// ---------------------------------------------------------------------------------------------
// SQL

let pool;

/** A small pg pool on the platform's database (setup and cleanup only). */
export function db() {
  pool ??= new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  return pool;
}

/**
 * Takes `amount` credits from a user by appending a deduction to the append-only ledger, as
 * the credit check would. It carries its own idempotency key, so the cut-over claim logic
 * (which only looks at keyless `Upload: <name>` rows) never touches it. No notification is
 * written: the page keeps showing its last known balance until it reads it again.
 */
export async function drainCredits(userId, amount) {
  await db().query(
    `insert into public.credit_ledger (user_id, amount, event_type, description, event_time, idempotency_key)
     values ($1, $2, 'credit.upload_deducted', 'browser test: credits drained', $3, $4)`,
    [userId, -amount, new Date().toISOString(), `browser-test-drain:${userId}:${randomTag(8)}`],
  );
}

/** The user's balance as the database computes it. */
export async function balanceOf(userId) {
  const { rows } = await db().query(
    'select coalesce(sum(amount), 0)::int as balance from public.credit_ledger where user_id = $1',
    [userId],
  );
  return rows[0].balance;
}

// ---------------------------------------------------------------------------------------------
// Users

/** Every user a test created, deleted (with their rows) when the test ends. */
class UserRegistry {
  constructor() {
    /** @type {Map<string, {email: string, id?: string}>} */
    this.users = new Map();
  }

  track(email) {
    const user = { email };
    this.users.set(email, user);
    return user;
  }

  /**
   * Signs a new user up through the page: toggle to sign-up mode, fill the form, submit. The
   * local auth auto-confirms, so the home view follows. Returns `{email, id}`.
   * @param {import('@playwright/test').Page} page
   * @param {string} prefix
   */
  async signUp(page, prefix) {
    const email = uniqueEmail(prefix);
    const user = this.track(email);
    await page.goto('/');
    await expect(page.locator('#auth-view')).toBeVisible();
    await page.locator('#toggle-mode').click();
    await expect(page.locator('#submit-btn')).toHaveText('Sign Up');
    await page.locator('#email').fill(email);
    await page.locator('#password').fill(PASSWORD);
    await page.locator('#submit-btn').click();
    await expect(page.locator('#home-view')).toBeVisible();
    await expect(page.locator('#welcome-message')).toHaveText(`Hello ${email.split('@')[0]}!`);
    user.id = await sessionUserId(page);
    expect(user.id, 'the signed-in session carries the user id').toMatch(/^[0-9a-f-]{36}$/);
    return user;
  }

  /** Deletes every tracked user (admin API) and the rows the platform wrote for them. */
  async cleanup() {
    const problems = [];
    const ids = [];
    for (const user of this.users.values()) {
      const id = user.id ?? (await findUserId(user.email).catch(() => undefined));
      if (!id) continue;
      ids.push(id);
      const response = await fetch(`${SUPABASE_URL}/auth/v1/admin/users/${id}`, {
        method: 'DELETE',
        headers: adminHeaders(),
      });
      // 404: already gone
      if (!response.ok && response.status !== 404) {
        problems.push(`DELETE user ${user.email} (${id}): ${response.status} ${await response.text()}`);
      }
    }
    if (ids.length > 0) {
      await deleteRowsOf(ids);
      for (const id of ids) deletedUserIds.add(id);
    }
    this.users.clear();
    if (problems.length > 0) throw new Error(`cleanup: ${problems.join('; ')}`);
  }
}

/** Every user this worker deleted; swept once more when the worker ends. */
const deletedUserIds = new Set();
const USER_TABLES = ['user_notifications', 'credit_ledger', 'media_files'];

/** Deletes the platform's rows of these users; returns how many went. */
async function deleteRowsOf(ids) {
  let count = 0;
  for (const table of USER_TABLES) {
    const result = await db().query(`delete from public.${table} where user_id = any($1::text[])`, [ids]);
    count += result.rowCount ?? 0;
  }
  return count;
}

/**
 * Rows keep arriving for a deleted user for a moment: deleting a user deletes its sessions,
 * and every deleted session fires the signout webhook (a documented limitation of
 * 20260222000005_signout_webhook.sql), whose identity.signout row lands a second or two later;
 * a logout just before the end is in flight the same way. So when the worker ends, the rows of
 * every user it deleted are deleted again until none has come for QUIET_MS (at most SWEEP_MS).
 */
const QUIET_MS = 4_000;
const SWEEP_MS = 25_000;

async function sweepDeletedUsers() {
  if (deletedUserIds.size === 0) return;
  const ids = [...deletedUserIds];
  const started = Date.now();
  let quietSince = Date.now();
  while (Date.now() - quietSince < QUIET_MS && Date.now() - started < SWEEP_MS) {
    if ((await deleteRowsOf(ids)) > 0) quietSince = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  deletedUserIds.clear();
}

/**
 * The id of the user whose session the page holds (supabase-js keeps it in localStorage under
 * `sb-<ref>-auth-token`).
 * @param {import('@playwright/test').Page} page
 * @returns {Promise<string | undefined>}
 */
export async function sessionUserId(page) {
  return (await sessionOf(page))?.user?.id;
}

/**
 * The session supabase-js stored for the page: `{access_token, user, ...}`.
 * @param {import('@playwright/test').Page} page
 */
export async function sessionOf(page) {
  return page.evaluate(() => {
    for (let index = 0; index < localStorage.length; index += 1) {
      const key = localStorage.key(index);
      if (key && /^sb-.+-auth-token$/.test(key)) {
        try {
          return JSON.parse(localStorage.getItem(key) ?? 'null');
        } catch {
          return null;
        }
      }
    }
    return null;
  });
}

/** Looks a user up by email through the admin API (for a signup whose id was never read). */
async function findUserId(email) {
  for (let page = 1; page <= 100; page += 1) {
    const response = await fetch(`${SUPABASE_URL}/auth/v1/admin/users?page=${page}&per_page=1000`, {
      headers: adminHeaders(),
    });
    if (!response.ok) return undefined;
    const { users } = await response.json();
    const found = users.find((user) => user.email === email);
    if (found) return found.id;
    if (users.length < 1000) return undefined;
  }
  return undefined;
}

/**
 * REST query of local-supabase as a signed-in user (RLS applies), e.g.
 * `restAs(request, token, 'user_notifications?select=*&user_id=eq.<id>')`.
 * @param {import('@playwright/test').APIRequestContext} request
 * @param {string} accessToken
 * @param {string} query table and query string
 * @returns {Promise<any[]>}
 */
export async function restAs(request, accessToken, query) {
  const response = await request.get(`${SUPABASE_URL}/rest/v1/${query}`, {
    headers: { apikey: supabaseKeys().anonKey, Authorization: `Bearer ${accessToken}` },
  });
  expect(response.status(), `GET /rest/v1/${query}`).toBe(200);
  return response.json();
}

/**
 * The suite's `test`: adds the `users` fixture (a registry whose users are deleted after the
 * test, also when it fails); every worker first checks that it has the admin key.
 */
export const test = base.extend({
  // eslint-disable-next-line no-empty-pattern
  users: async ({}, use) => {
    const registry = new UserRegistry();
    try {
      await use(registry);
    } finally {
      await registry.cleanup();
    }
  },
  // Worker-wide: the keys are resolved before any test signs a user up (a test that could not
  // clean up after itself must not start), and the SQL pool is closed at the end.
  platformSetup: [
    // eslint-disable-next-line no-empty-pattern
    async ({}, use) => {
      supabaseKeys();
      await use();
      await sweepDeletedUsers();
      if (pool) {
        const closing = pool;
        pool = undefined;
        await closing.end();
      }
    },
    { scope: 'worker', auto: true, timeout: 60_000 },
  ],
});

export { expect };

// ---------------------------------------------------------------------------------------------
// Page helpers

/**
 * Waits until the page shows the signup bonus (2 credits) pushed over Realtime; by then the
 * page's notification channel is joined, so later events reach it.
 * @param {import('@playwright/test').Page} page
 */
export async function expectSignupCredits(page) {
  await expect(page.locator('#credit-count')).toHaveText('2', { timeout: REALTIME_TIMEOUT });
}

/**
 * Chooses a file in the upload form (no dialog: the input's files are set directly).
 * @param {import('@playwright/test').Page} page
 * @param {{name: string, mimeType: string, buffer: Buffer}} file
 */
export async function chooseFile(page, file) {
  await page.locator('#file-input').setInputFiles(file);
  await expect(page.locator('#upload-label')).toContainText(file.name);
}

/**
 * Uploads a file through the page and waits for its card in the media browser.
 * @param {import('@playwright/test').Page} page
 * @param {{name: string, mimeType: string, buffer: Buffer}} file
 * @returns {Promise<import('@playwright/test').Locator>} the card
 */
export async function uploadThroughPage(page, file) {
  await chooseFile(page, file);
  await expect(page.locator('#upload-btn')).toBeEnabled();
  await page.locator('#upload-btn').click();
  await expect(page.locator('#upload-status')).toHaveText('✓ Upload complete', { timeout: SAGA_TIMEOUT });
  const card = mediaCard(page, file.name);
  await expect(card).toBeVisible();
  return card;
}

/**
 * The media card whose `.file-name` is exactly `name`.
 * @param {import('@playwright/test').Page} page
 * @param {string} name
 */
export function mediaCard(page, name) {
  return page
    .locator('#media-list .media-file-card')
    .filter({ has: page.locator('.file-name').getByText(name, { exact: true }) });
}

/**
 * Sends a message through the page's message form and waits for the form to clear (the
 * gateway accepted it).
 * @param {import('@playwright/test').Page} page
 * @param {string} message
 */
export async function sendMessage(page, message) {
  await page.locator('#message-input').fill(message);
  await page.locator('#send-message-btn').click();
  await expect(page.locator('#message-input')).toHaveValue('');
  await expect(page.locator('#message-status')).toBeHidden();
}

// ---------------------------------------------------------------------------------------------
// PNG

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(buffer) {
  let crc = 0xffffffff;
  for (const byte of buffer) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/**
 * A valid RGB PNG of one random colour (so every generated file has its own bytes).
 * @param {number} [width]
 * @param {number} [height]
 * @returns {Buffer}
 */
export function pngBytes(width = 8, height = 8) {
  const [r, g, b] = randomBytes(3);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: RGB
  header[10] = 0; // compression
  header[11] = 0; // filter
  header[12] = 0; // no interlace
  const row = Buffer.alloc(1 + width * 3);
  for (let x = 0; x < width; x += 1) row.set([r, g, b], 1 + x * 3);
  const raw = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * A PNG upload payload for setInputFiles.
 * @param {string} name
 */
export function pngFile(name) {
  return { name, mimeType: 'image/png', buffer: pngBytes() };
}
