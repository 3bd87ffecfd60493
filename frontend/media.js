// Media API helpers (api-gateway and object store) and the notification waiter that turns
// the asynchronous saga replies (rows of public.user_notifications) into promises.

/** The MIME types the platform accepts for upload (exact, case-sensitive). */
export const ALLOWED_MEDIA_TYPES = Object.freeze([
  'image/jpeg',
  'image/png',
  'image/gif',
  'image/webp',
  'video/mp4',
  'video/webm',
  'audio/mpeg',
  'audio/wav',
  'audio/ogg',
]);

const MEDIA_CATEGORIES = new Set(['image', 'video', 'audio']);
const SIZE_UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/**
 * @typedef {object} UploadMeta
 * @property {string} file_name
 * @property {string} media_type
 * @property {number} file_size
 */

/**
 * @typedef {object} NotificationRow
 * @property {number} [id]
 * @property {string} event_type
 * @property {string | null} [payload] JSON text
 * @property {string} [event_time]
 */

/** The gateway refused an upload because the user has no credits left (HTTP 402). */
export class InsufficientCreditsError extends Error {
  /** @param {string} [message] */
  constructor(message = 'Insufficient credits') {
    super(message);
    this.name = 'InsufficientCreditsError';
  }
}

/**
 * The notification waiter was cleaned up (sign-out) while a wait was pending: the page has
 * been reset, so the caller drops the flow without showing anything.
 */
export class WaiterClosedError extends Error {
  constructor() {
    super('Notification waiter cleaned up');
    this.name = 'WaiterClosedError';
  }
}

/**
 * @param {string} baseUrl
 * @param {string} path starting with '/'
 * @returns {string}
 */
function endpoint(baseUrl, path) {
  return String(baseUrl).replace(/\/+$/, '') + path;
}

/**
 * POSTs a JSON body with the user's bearer token.
 * @param {string} baseUrl
 * @param {string} path
 * @param {string} accessToken
 * @param {unknown} body
 * @returns {Promise<Response>}
 */
function postJson(baseUrl, path, accessToken, body) {
  return fetch(endpoint(baseUrl, path), {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Authorization: `Bearer ${accessToken}`,
    },
    body: JSON.stringify(body),
  });
}

/**
 * @param {Response} response
 * @returns {Error}
 */
function requestFailed(response) {
  return new Error(`Request failed with status ${response.status}`);
}

/**
 * @param {UploadMeta} meta
 * @returns {UploadMeta}
 */
function uploadBody(meta) {
  return { file_name: meta.file_name, media_type: meta.media_type, file_size: meta.file_size };
}

/**
 * Reads `{request_id}` from a 202 answer.
 * @param {Response} response
 * @returns {Promise<{request_id: string}>}
 */
async function accepted(response) {
  if (response.status !== 202) throw requestFailed(response);
  const data = await response.json();
  if (!data || typeof data.request_id !== 'string' || data.request_id === '') {
    throw new Error('Response carries no request_id');
  }
  return { request_id: data.request_id };
}

/**
 * Legacy synchronous upload: POST /api/v1/media/upload-url.
 * @param {string} baseUrl
 * @param {string} accessToken
 * @param {UploadMeta} meta
 * @returns {Promise<{upload_url: string, file_path: string, expires_in: number}>}
 */
export async function requestUploadUrl(baseUrl, accessToken, meta) {
  const response = await postJson(baseUrl, '/api/v1/media/upload-url', accessToken, uploadBody(meta));
  if (response.status === 402) throw new InsufficientCreditsError();
  if (!response.ok) throw requestFailed(response);
  return response.json();
}

/**
 * PUTs the file to a presigned object-store URL. The signature binds the Content-Type, so
 * the one sent in the upload intent is passed explicitly; nothing else (no credentials, no
 * extra headers) goes with the request.
 * @param {string} uploadUrl
 * @param {Blob} file
 * @param {string} [contentType] the media_type the URL was signed for (defaults to file.type)
 * @returns {Promise<{success: true}>}
 */
export async function uploadFileToStorage(uploadUrl, file, contentType = file.type) {
  if (typeof contentType !== 'string' || contentType === '') {
    throw new Error('Upload needs the content type the URL was signed for');
  }
  const response = await fetch(uploadUrl, {
    method: 'PUT',
    headers: { 'Content-Type': contentType },
    body: file,
    credentials: 'omit',
  });
  if (!response.ok) throw new Error(`Upload failed with status ${response.status}`);
  return { success: true };
}

/**
 * The signed-in user's files (RLS limits the rows to the owner's active files), newest first.
 * @param {import('@supabase/supabase-js').SupabaseClient} client
 * @returns {Promise<Array<Record<string, unknown>>>}
 */
export async function fetchUserFiles(client) {
  if (!client) throw new Error('Supabase client is required');
  const { data, error } = await client
    .from('media_files')
    .select('id, file_name, file_path, file_size, media_type, upload_time')
    .order('created_at', { ascending: false });
  if (error) throw new Error(error.message);
  return data ?? [];
}

/**
 * Human-readable size in base-1024 units with at most one decimal (1536 -> "1.5 KB").
 * @param {number} bytes
 * @returns {string}
 */
export function formatFileSize(bytes) {
  if (typeof bytes !== 'number' || !(bytes > 0)) return '0 B';
  let unit = Math.max(0, Math.min(SIZE_UNITS.length - 1, Math.floor(Math.log(bytes) / Math.log(1024))));
  let rounded = Math.round((bytes / 1024 ** unit) * 10) / 10;
  if (rounded >= 1024 && unit < SIZE_UNITS.length - 1) {
    unit += 1;
    rounded = Math.round((bytes / 1024 ** unit) * 10) / 10;
  }
  return `${rounded.toFixed(1).replace(/\.0$/, '')} ${SIZE_UNITS[unit]}`;
}

/**
 * @param {unknown} mediaType
 * @returns {boolean}
 */
export function isAllowedMediaType(mediaType) {
  return typeof mediaType === 'string' && ALLOWED_MEDIA_TYPES.includes(mediaType);
}

/**
 * @param {unknown} mediaType
 * @returns {'image' | 'video' | 'audio' | 'unknown'}
 */
export function getMediaCategory(mediaType) {
  if (typeof mediaType !== 'string' || mediaType === '') return 'unknown';
  const prefix = mediaType.split('/')[0];
  return MEDIA_CATEGORIES.has(prefix) ? /** @type {'image' | 'video' | 'audio'} */ (prefix) : 'unknown';
}

/**
 * Legacy synchronous download: POST /api/v1/media/download-url.
 * @param {string} baseUrl
 * @param {string} accessToken
 * @param {string} filePath
 * @returns {Promise<{download_url: string, expires_in: number}>}
 */
export async function requestDownloadUrl(baseUrl, accessToken, filePath) {
  const response = await postJson(baseUrl, '/api/v1/media/download-url', accessToken, { file_path: filePath });
  if (!response.ok) throw requestFailed(response);
  return response.json();
}

/**
 * Legacy synchronous delete: POST /api/v1/media/delete.
 * @param {string} baseUrl
 * @param {string} accessToken
 * @param {string} filePath
 * @returns {Promise<{success: boolean}>}
 */
export async function deleteFile(baseUrl, accessToken, filePath) {
  const response = await postJson(baseUrl, '/api/v1/media/delete', accessToken, { file_path: filePath });
  if (!response.ok) throw requestFailed(response);
  return response.json();
}

/**
 * Saga upload: POST /api/v1/media/upload-intent (202 -> request_id; the answer comes as a
 * media.upload_ready / media.upload_rejected notification).
 * @param {string} baseUrl
 * @param {string} accessToken
 * @param {UploadMeta} meta
 * @returns {Promise<{request_id: string}>}
 */
export async function requestUploadIntent(baseUrl, accessToken, meta) {
  const response = await postJson(baseUrl, '/api/v1/media/upload-intent', accessToken, uploadBody(meta));
  if (response.status === 402) throw new InsufficientCreditsError();
  return accepted(response);
}

/**
 * Saga download: POST /api/v1/media/download-intent.
 * @param {string} baseUrl
 * @param {string} accessToken
 * @param {string} filePath
 * @returns {Promise<{request_id: string}>}
 */
export async function requestDownloadIntent(baseUrl, accessToken, filePath) {
  return accepted(await postJson(baseUrl, '/api/v1/media/download-intent', accessToken, { file_path: filePath }));
}

/**
 * Saga delete: POST /api/v1/media/delete-intent.
 * @param {string} baseUrl
 * @param {string} accessToken
 * @param {string} filePath
 * @returns {Promise<{request_id: string}>}
 */
export async function requestDeleteIntent(baseUrl, accessToken, filePath) {
  return accepted(await postJson(baseUrl, '/api/v1/media/delete-intent', accessToken, { file_path: filePath }));
}

/**
 * Parses a notification payload (JSON text). null/undefined count as `{}`; malformed JSON
 * throws the SyntaxError of JSON.parse.
 * @param {unknown} payload
 * @returns {Record<string, any>}
 */
export function parsePayload(payload) {
  if (payload === null || payload === undefined) return {};
  const value = typeof payload === 'string' ? JSON.parse(payload) : payload;
  return value !== null && typeof value === 'object' ? value : {};
}

/**
 * @typedef {object} WaiterEntry
 * @property {(row: NotificationRow) => void} resolve
 * @property {(error: Error) => void} reject
 * @property {Set<string>} eventTypes
 * @property {string[]} keys
 * @property {ReturnType<typeof setTimeout> | undefined} timer
 */

/**
 * Matches notification rows to pending requests.
 *
 * - `waitFor(keyOrKeys, eventTypes, timeoutMs)` registers one entry under every key and
 *   resolves with the first row whose key and event_type match; on timeout its keys are
 *   removed and it rejects with "Notification timeout for request <first key>". A
 *   `timeoutMs` of `Infinity` (or null) sets no timeout: the entry stays registered until its
 *   row arrives or `cleanup()` (the page's sagas use this: a saga still running is never
 *   failed, see main.js).
 * - `handleNotification(row)` parses the payload and tries its `request_id`, then its
 *   `file_path`; the first pending entry (oldest first) whose types contain the row's
 *   event_type is resolved with the whole row and all its keys are removed. Returns whether
 *   an entry matched.
 * - A row with a `request_id` or `file_path` that matched nothing is kept for `recentMs`
 *   (at most `recentLimit` rows): the saga's reply can arrive over Realtime before the page
 *   has read the intent's 202 answer and registered its wait. `waitFor` first takes the
 *   oldest kept row that matches one of its keys and one of its types, and resolves with it
 *   at once.
 * - `cleanup()` rejects every pending entry with a `WaiterClosedError` ("Notification waiter
 *   cleaned up") and forgets the kept rows.
 * @param {{recentMs?: number, recentLimit?: number, now?: () => number}} [options]
 */
export function createNotificationWaiter({ recentMs = 10000, recentLimit = 50, now = () => Date.now() } = {}) {
  /** @type {Map<string, WaiterEntry[]>} */
  const pending = new Map();
  /** Unmatched rows with keys, oldest first. @type {{row: NotificationRow, keys: string[], at: number}[]} */
  let recent = [];

  function pruneRecent() {
    const cutoff = now() - recentMs;
    recent = recent.filter((kept) => kept.at > cutoff).slice(-recentLimit);
  }

  /**
   * Takes the oldest kept row matching one of `keys` and one of `eventTypes`.
   * @param {string[]} keys
   * @param {Set<string>} eventTypes
   * @returns {NotificationRow | undefined}
   */
  function takeRecent(keys, eventTypes) {
    pruneRecent();
    const index = recent.findIndex(
      (kept) => eventTypes.has(kept.row.event_type) && kept.keys.some((key) => keys.includes(key)),
    );
    if (index < 0) return undefined;
    const [kept] = recent.splice(index, 1);
    return kept.row;
  }

  /** @param {WaiterEntry} entry */
  function remove(entry) {
    clearTimeout(entry.timer);
    for (const key of entry.keys) {
      const entries = pending.get(key);
      if (!entries) continue;
      const rest = entries.filter((other) => other !== entry);
      if (rest.length === 0) pending.delete(key);
      else pending.set(key, rest);
    }
  }

  /**
   * @param {string | string[]} keyOrKeys
   * @param {string[]} eventTypes
   * @param {number | null} [timeoutMs] `Infinity` or null: no timeout
   * @returns {Promise<NotificationRow>}
   */
  function waitFor(keyOrKeys, eventTypes, timeoutMs = 30000) {
    const keys = [...new Set((Array.isArray(keyOrKeys) ? keyOrKeys : [keyOrKeys]).filter(
      (key) => typeof key === 'string' && key !== '',
    ))];
    if (keys.length === 0) return Promise.reject(new Error('waitFor needs at least one key'));
    const early = takeRecent(keys, new Set(eventTypes));
    if (early) return Promise.resolve(early);
    return new Promise((resolve, reject) => {
      /** @type {WaiterEntry} */
      const entry = { resolve, reject, eventTypes: new Set(eventTypes), keys, timer: undefined };
      // setTimeout would fire Infinity at once (it clamps to 32 bits), hence the check.
      if (timeoutMs !== null && Number.isFinite(timeoutMs)) {
        entry.timer = setTimeout(() => {
          remove(entry);
          reject(new Error(`Notification timeout for request ${keys[0]}`));
        }, timeoutMs);
      }
      for (const key of keys) pending.set(key, [...(pending.get(key) ?? []), entry]);
    });
  }

  /**
   * @param {NotificationRow} row
   * @returns {boolean}
   */
  function handleNotification(row) {
    const payload = parsePayload(row.payload);
    /** @type {string[]} */
    const keys = [payload.request_id, payload.file_path].filter((key) => typeof key === 'string' && key !== '');
    for (const key of keys) {
      const entry = pending.get(key)?.find((candidate) => candidate.eventTypes.has(row.event_type));
      if (entry) {
        remove(entry);
        entry.resolve(row);
        return true;
      }
    }
    if (keys.length > 0) {
      recent.push({ row, keys, at: now() });
      pruneRecent();
    }
    return false;
  }

  function cleanup() {
    recent = [];
    const entries = new Set([...pending.values()].flat());
    pending.clear();
    for (const entry of entries) {
      clearTimeout(entry.timer);
      entry.reject(new WaiterClosedError());
    }
  }

  return { waitFor, handleNotification, cleanup };
}
