import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ALLOWED_MEDIA_TYPES,
  InsufficientCreditsError,
  WaiterClosedError,
  createNotificationWaiter,
  deleteFile,
  fetchUserFiles,
  formatFileSize,
  getMediaCategory,
  isAllowedMediaType,
  parsePayload,
  requestDeleteIntent,
  requestDownloadIntent,
  requestDownloadUrl,
  requestUploadIntent,
  requestUploadUrl,
  uploadFileToStorage,
} from '../media.js';

const BASE = 'http://gateway.test:8080';
const TOKEN = 'token-123';
const META = { file_name: 'cat.png', media_type: 'image/png', file_size: 1234 };

/**
 * @param {number} status
 * @param {unknown} [body]
 */
function jsonResponse(status, body = {}) {
  return new Response(status === 204 ? null : JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });
}

let fetchMock;

beforeEach(() => {
  fetchMock = vi.fn();
  vi.stubGlobal('fetch', fetchMock);
});

afterEach(() => {
  vi.useRealTimers();
});

/** The single fetch call: [url, init] with the body parsed. */
function lastCall() {
  expect(fetchMock).toHaveBeenCalledTimes(1);
  const [url, init] = fetchMock.mock.calls[0];
  return { url, init, body: typeof init.body === 'string' ? JSON.parse(init.body) : init.body };
}

function expectJsonPost(init) {
  expect(init.method).toBe('POST');
  expect(init.headers['Content-Type']).toBe('application/json');
  expect(init.headers.Authorization).toBe(`Bearer ${TOKEN}`);
}

describe('InsufficientCreditsError', () => {
  it('is an Error with its own name and default message', () => {
    const error = new InsufficientCreditsError();
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('InsufficientCreditsError');
    expect(error.message).toBe('Insufficient credits');
    expect(new InsufficientCreditsError('custom').message).toBe('custom');
  });
});

describe('requestUploadUrl (legacy)', () => {
  it('POSTs the metadata to /api/v1/media/upload-url and returns the JSON', async () => {
    const answer = { upload_url: 'http://s3/x', file_path: 'uploads/u/1/cat.png', expires_in: 900 };
    fetchMock.mockResolvedValue(jsonResponse(200, answer));
    await expect(requestUploadUrl(BASE, TOKEN, { ...META, extra: 'ignored' })).resolves.toEqual(answer);
    const { url, init, body } = lastCall();
    expect(url).toBe(`${BASE}/api/v1/media/upload-url`);
    expectJsonPost(init);
    expect(body).toEqual(META);
  });

  it('strips trailing slashes from the base URL', async () => {
    fetchMock.mockResolvedValue(jsonResponse(200, {}));
    await requestUploadUrl(`${BASE}//`, TOKEN, META);
    expect(lastCall().url).toBe(`${BASE}/api/v1/media/upload-url`);
  });

  it('maps 402 to InsufficientCreditsError', async () => {
    fetchMock.mockResolvedValue(jsonResponse(402, { error: 'insufficient_credits' }));
    await expect(requestUploadUrl(BASE, TOKEN, META)).rejects.toBeInstanceOf(InsufficientCreditsError);
  });

  it.each([400, 403, 404, 500])('throws on %i', async (status) => {
    fetchMock.mockResolvedValue(jsonResponse(status, {}));
    await expect(requestUploadUrl(BASE, TOKEN, META)).rejects.toThrow(`Request failed with status ${status}`);
  });

  it('propagates a network failure', async () => {
    fetchMock.mockRejectedValue(new TypeError('Failed to fetch'));
    await expect(requestUploadUrl(BASE, TOKEN, META)).rejects.toThrow('Failed to fetch');
  });
});

describe('requestUploadIntent', () => {
  it('POSTs {file_name, media_type, file_size} and returns {request_id} on 202', async () => {
    fetchMock.mockResolvedValue(jsonResponse(202, { request_id: 'req-1', other: 'dropped' }));
    await expect(requestUploadIntent(BASE, TOKEN, META)).resolves.toEqual({ request_id: 'req-1' });
    const { url, init, body } = lastCall();
    expect(url).toBe(`${BASE}/api/v1/media/upload-intent`);
    expectJsonPost(init);
    expect(body).toEqual(META);
  });

  it('strips trailing slashes from the base URL', async () => {
    fetchMock.mockResolvedValue(jsonResponse(202, { request_id: 'r' }));
    await requestUploadIntent(`${BASE}/`, TOKEN, META);
    expect(lastCall().url).toBe(`${BASE}/api/v1/media/upload-intent`);
  });

  it('maps 402 to InsufficientCreditsError', async () => {
    fetchMock.mockResolvedValue(jsonResponse(402, { error: 'insufficient_credits' }));
    await expect(requestUploadIntent(BASE, TOKEN, META)).rejects.toBeInstanceOf(InsufficientCreditsError);
  });

  it('throws on 200: an intent must be accepted with 202', async () => {
    fetchMock.mockResolvedValue(jsonResponse(200, { request_id: 'req-1' }));
    await expect(requestUploadIntent(BASE, TOKEN, META)).rejects.toThrow('Request failed with status 200');
  });

  it.each([400, 401, 403, 404, 429, 500, 503])('throws on %i', async (status) => {
    fetchMock.mockResolvedValue(jsonResponse(status, {}));
    const error = await requestUploadIntent(BASE, TOKEN, META).catch((e) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(InsufficientCreditsError);
    expect(error.message).toBe(`Request failed with status ${status}`);
  });

  it('throws when the 202 carries no request_id', async () => {
    fetchMock.mockResolvedValue(jsonResponse(202, {}));
    await expect(requestUploadIntent(BASE, TOKEN, META)).rejects.toThrow('request_id');
  });

  it('propagates a network failure', async () => {
    fetchMock.mockRejectedValue(new TypeError('Failed to fetch'));
    await expect(requestUploadIntent(BASE, TOKEN, META)).rejects.toThrow('Failed to fetch');
  });
});

describe.each([
  ['requestDownloadIntent', requestDownloadIntent, '/api/v1/media/download-intent'],
  ['requestDeleteIntent', requestDeleteIntent, '/api/v1/media/delete-intent'],
])('%s', (_name, helper, path) => {
  const filePath = 'files/user-1/abc/cat.png';

  it(`POSTs {file_path} to ${path} and returns {request_id} on 202`, async () => {
    fetchMock.mockResolvedValue(jsonResponse(202, { request_id: 'req-9' }));
    await expect(helper(BASE, TOKEN, filePath)).resolves.toEqual({ request_id: 'req-9' });
    const { url, init, body } = lastCall();
    expect(url).toBe(`${BASE}${path}`);
    expectJsonPost(init);
    expect(body).toEqual({ file_path: filePath });
  });

  it('strips trailing slashes from the base URL', async () => {
    fetchMock.mockResolvedValue(jsonResponse(202, { request_id: 'r' }));
    await helper(`${BASE}///`, TOKEN, filePath);
    expect(lastCall().url).toBe(`${BASE}${path}`);
  });

  it('throws on 200 (must be 202)', async () => {
    fetchMock.mockResolvedValue(jsonResponse(200, { request_id: 'r' }));
    await expect(helper(BASE, TOKEN, filePath)).rejects.toThrow('Request failed with status 200');
  });

  it.each([402, 403, 404, 500])('throws on %i', async (status) => {
    fetchMock.mockResolvedValue(jsonResponse(status, {}));
    await expect(helper(BASE, TOKEN, filePath)).rejects.toThrow(`Request failed with status ${status}`);
  });

  it('propagates a network failure', async () => {
    fetchMock.mockRejectedValue(new TypeError('Failed to fetch'));
    await expect(helper(BASE, TOKEN, filePath)).rejects.toThrow('Failed to fetch');
  });
});

describe.each([
  ['requestDownloadUrl', requestDownloadUrl, '/api/v1/media/download-url', { download_url: 'http://s3/x', expires_in: 900 }],
  ['deleteFile', deleteFile, '/api/v1/media/delete', { success: true }],
])('%s (legacy)', (_name, helper, path, answer) => {
  it(`POSTs {file_path} to ${path} and returns the JSON`, async () => {
    fetchMock.mockResolvedValue(jsonResponse(200, answer));
    await expect(helper(BASE, TOKEN, 'files/u/1/a.png')).resolves.toEqual(answer);
    const { url, init, body } = lastCall();
    expect(url).toBe(`${BASE}${path}`);
    expectJsonPost(init);
    expect(body).toEqual({ file_path: 'files/u/1/a.png' });
  });

  it('strips trailing slashes from the base URL', async () => {
    fetchMock.mockResolvedValue(jsonResponse(200, answer));
    await helper(`${BASE}/`, TOKEN, 'files/u/1/a.png');
    expect(lastCall().url).toBe(`${BASE}${path}`);
  });

  it.each([403, 404, 500])('throws on %i', async (status) => {
    fetchMock.mockResolvedValue(jsonResponse(status, {}));
    await expect(helper(BASE, TOKEN, 'x')).rejects.toThrow(`Request failed with status ${status}`);
  });

  it('propagates a network failure', async () => {
    fetchMock.mockRejectedValue(new TypeError('Failed to fetch'));
    await expect(helper(BASE, TOKEN, 'x')).rejects.toThrow('Failed to fetch');
  });
});

describe('uploadFileToStorage', () => {
  const url = 'http://127.0.0.1:9000/media-uploads/uploads/u/1/cat.png?X-Amz-Signature=abc';

  it('PUTs the file with exactly the signed Content-Type and nothing else', async () => {
    fetchMock.mockResolvedValue(new Response(null, { status: 200 }));
    const file = new Blob(['png-bytes'], { type: 'image/png' });
    await expect(uploadFileToStorage(url, file, 'image/png')).resolves.toEqual({ success: true });
    const [calledUrl, init] = fetchMock.mock.calls[0];
    expect(calledUrl).toBe(url);
    expect(init.method).toBe('PUT');
    expect(init.body).toBe(file);
    expect(init.headers).toEqual({ 'Content-Type': 'image/png' });
    expect(init.credentials).toBe('omit');
  });

  it('sends the explicit content type even when the browser guessed another one', async () => {
    fetchMock.mockResolvedValue(new Response(null, { status: 200 }));
    const file = new Blob(['x'], { type: 'image/x-png' });
    await uploadFileToStorage(url, file, 'image/png');
    expect(fetchMock.mock.calls[0][1].headers['Content-Type']).toBe('image/png');
  });

  it('defaults to file.type', async () => {
    fetchMock.mockResolvedValue(new Response(null, { status: 200 }));
    await uploadFileToStorage(url, new Blob(['x'], { type: 'video/mp4' }));
    expect(fetchMock.mock.calls[0][1].headers['Content-Type']).toBe('video/mp4');
  });

  it('refuses to upload without a content type (the signature binds one)', async () => {
    await expect(uploadFileToStorage(url, new Blob(['x']))).rejects.toThrow('content type');
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it.each([403, 500])('throws "Upload failed with status %i"', async (status) => {
    fetchMock.mockResolvedValue(new Response('SignatureDoesNotMatch', { status }));
    await expect(uploadFileToStorage(url, new Blob(['x'], { type: 'image/png' }), 'image/png')).rejects.toThrow(
      `Upload failed with status ${status}`,
    );
  });

  it('propagates a network failure', async () => {
    fetchMock.mockRejectedValue(new TypeError('Failed to fetch'));
    await expect(uploadFileToStorage(url, new Blob(['x'], { type: 'image/png' }))).rejects.toThrow('Failed to fetch');
  });
});

describe('fetchUserFiles', () => {
  function clientReturning(result) {
    const order = vi.fn().mockResolvedValue(result);
    const select = vi.fn(() => ({ order }));
    const from = vi.fn(() => ({ select }));
    return { client: { from }, from, select, order };
  }

  it('selects the file columns from media_files, newest first', async () => {
    const rows = [{ id: 1, file_name: 'a.png' }];
    const { client, from, select, order } = clientReturning({ data: rows, error: null });
    await expect(fetchUserFiles(client)).resolves.toEqual(rows);
    expect(from).toHaveBeenCalledWith('media_files');
    expect(select).toHaveBeenCalledWith('id, file_name, file_path, file_size, media_type, upload_time');
    expect(order).toHaveBeenCalledWith('created_at', { ascending: false });
  });

  it('returns [] when there are no rows', async () => {
    await expect(fetchUserFiles(clientReturning({ data: [], error: null }).client)).resolves.toEqual([]);
    await expect(fetchUserFiles(clientReturning({ data: null, error: null }).client)).resolves.toEqual([]);
  });

  it('throws the error message', async () => {
    const { client } = clientReturning({ data: null, error: { message: 'permission denied' } });
    await expect(fetchUserFiles(client)).rejects.toThrow('permission denied');
  });

  it.each([null, undefined])('throws without a client (%s)', async (client) => {
    await expect(fetchUserFiles(client)).rejects.toThrow('Supabase client is required');
  });
});

describe('formatFileSize', () => {
  it.each([
    [0, '0 B'],
    [1, '1 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1 KB'],
    [1536, '1.5 KB'],
    [10 * 1024, '10 KB'],
    [1024 * 1024, '1 MB'],
    [1.5 * 1024 * 1024, '1.5 MB'],
    [1024 ** 3, '1 GB'],
    [2.25 * 1024 ** 3, '2.3 GB'],
    [1024 ** 4, '1 TB'],
    [1024 ** 5, '1024 TB'],
    [1048575, '1 MB'],
  ])('%d -> %s', (bytes, expected) => {
    expect(formatFileSize(bytes)).toBe(expected);
  });

  it('returns a string for negative and odd input', () => {
    expect(typeof formatFileSize(-5)).toBe('string');
    expect(formatFileSize(-5)).toBe('0 B');
    expect(formatFileSize(Number.NaN)).toBe('0 B');
    expect(formatFileSize(/** @type {any} */ (undefined))).toBe('0 B');
  });
});

describe('isAllowedMediaType', () => {
  it.each(ALLOWED_MEDIA_TYPES)('accepts %s', (type) => {
    expect(isAllowedMediaType(type)).toBe(true);
  });

  it('has exactly the nine platform types', () => {
    expect([...ALLOWED_MEDIA_TYPES].sort()).toEqual(
      ['audio/mpeg', 'audio/ogg', 'audio/wav', 'image/gif', 'image/jpeg', 'image/png', 'image/webp', 'video/mp4', 'video/webm'],
    );
  });

  it.each([
    'image/bmp',
    'image/tiff',
    'video/avi',
    'video/x-msvideo',
    'audio/flac',
    'application/pdf',
    'text/plain',
    'text/html',
    'application/json',
    'application/zip',
    'application/octet-stream',
    'image/svg+xml',
  ])('rejects %s', (type) => {
    expect(isAllowedMediaType(type)).toBe(false);
  });

  it.each(['IMAGE/PNG', 'Image/Jpeg', ' image/png', 'image/png ', 'image/png\n'])(
    'rejects case or whitespace variants (%j)',
    (type) => {
      expect(isAllowedMediaType(type)).toBe(false);
    },
  );

  it.each([null, undefined, '', 42, {}])('returns false for %j', (value) => {
    expect(isAllowedMediaType(value)).toBe(false);
  });
});

describe('getMediaCategory', () => {
  it.each([
    ['image/png', 'image'],
    ['image/jpeg', 'image'],
    ['image/bmp', 'image'],
    ['video/mp4', 'video'],
    ['video/avi', 'video'],
    ['audio/mpeg', 'audio'],
    ['audio/flac', 'audio'],
    ['application/pdf', 'unknown'],
    ['text/plain', 'unknown'],
    ['image', 'image'],
    ['IMAGE/PNG', 'unknown'],
    ['', 'unknown'],
    [null, 'unknown'],
    [undefined, 'unknown'],
  ])('%j -> %s', (type, expected) => {
    expect(getMediaCategory(type)).toBe(expected);
  });
});

describe('parsePayload', () => {
  it('parses JSON text and tolerates null/undefined', () => {
    expect(parsePayload('{"a":1}')).toEqual({ a: 1 });
    expect(parsePayload(null)).toEqual({});
    expect(parsePayload(undefined)).toEqual({});
    expect(parsePayload({ b: 2 })).toEqual({ b: 2 });
    expect(parsePayload('null')).toEqual({});
  });

  it('throws SyntaxError on malformed JSON', () => {
    expect(() => parsePayload('{oops')).toThrow(SyntaxError);
  });
});

describe('createNotificationWaiter', () => {
  /**
   * @param {string} eventType
   * @param {Record<string, unknown> | null | undefined} payload
   */
  function row(eventType, payload) {
    return {
      event_type: eventType,
      payload: payload === null || payload === undefined ? payload : JSON.stringify(payload),
      event_time: '2026-01-01T00:00:00Z',
    };
  }

  it('resolves with the whole row when request_id and type match', async () => {
    const waiter = createNotificationWaiter();
    const pending = waiter.waitFor('req-1', ['media.upload_ready', 'media.upload_rejected'], 1000);
    const ready = row('media.upload_ready', { request_id: 'req-1', upload_url: 'http://s3/x' });
    expect(waiter.handleNotification(ready)).toBe(true);
    await expect(pending).resolves.toBe(ready);
  });

  it('resolves on the rejection type as well', async () => {
    const waiter = createNotificationWaiter();
    const pending = waiter.waitFor('req-2', ['media.upload_ready', 'media.upload_rejected'], 1000);
    const rejected = row('media.upload_rejected', { request_id: 'req-2', reason: 'insufficient_credits' });
    waiter.handleNotification(rejected);
    const result = await pending;
    expect(result.event_type).toBe('media.upload_rejected');
    expect(JSON.parse(result.payload).reason).toBe('insufficient_credits');
  });

  it('ignores a row of another event type', async () => {
    vi.useFakeTimers();
    const waiter = createNotificationWaiter();
    const pending = waiter.waitFor('req-3', ['media.download_ready'], 1000);
    const settled = vi.fn();
    pending.then(settled, settled);
    expect(waiter.handleNotification(row('media.upload_ready', { request_id: 'req-3' }))).toBe(false);
    await Promise.resolve();
    expect(settled).not.toHaveBeenCalled();
    const ready = row('media.download_ready', { request_id: 'req-3' });
    waiter.handleNotification(ready);
    await expect(pending).resolves.toBe(ready);
  });

  it('ignores a row with another request_id', async () => {
    vi.useFakeTimers();
    const waiter = createNotificationWaiter();
    const pending = waiter.waitFor('req-4', ['media.upload_ready'], 1000);
    expect(waiter.handleNotification(row('media.upload_ready', { request_id: 'other' }))).toBe(false);
    vi.advanceTimersByTime(1000);
    await expect(pending).rejects.toThrow('Notification timeout for request req-4');
  });

  it('rejects on timeout with the first key and forgets the entry', async () => {
    vi.useFakeTimers();
    const waiter = createNotificationWaiter();
    const pending = waiter.waitFor(['files/u/1/a.png', 'uploads/u/1/a.png'], ['media.upload_completed'], 30000);
    vi.advanceTimersByTime(29999);
    vi.advanceTimersByTime(1);
    await expect(pending).rejects.toThrow('Notification timeout for request files/u/1/a.png');
    expect(waiter.handleNotification(row('media.upload_completed', { file_path: 'uploads/u/1/a.png' }))).toBe(false);
  });

  it('keeps concurrent waiters apart', async () => {
    const waiter = createNotificationWaiter();
    const first = waiter.waitFor('req-a', ['media.download_ready'], 1000);
    const second = waiter.waitFor('req-b', ['media.download_ready'], 1000);
    const rowB = row('media.download_ready', { request_id: 'req-b' });
    const rowA = row('media.download_ready', { request_id: 'req-a' });
    waiter.handleNotification(rowB);
    waiter.handleNotification(rowA);
    await expect(first).resolves.toBe(rowA);
    await expect(second).resolves.toBe(rowB);
  });

  it('resolves two waiters on the same key in registration order', async () => {
    const waiter = createNotificationWaiter();
    const first = waiter.waitFor('files/x', ['media.file_deleted'], 1000);
    const second = waiter.waitFor('files/x', ['media.file_deleted'], 1000);
    const row1 = row('media.file_deleted', { file_path: 'files/x' });
    const row2 = row('media.file_deleted', { file_path: 'files/x' });
    waiter.handleNotification(row1);
    waiter.handleNotification(row2);
    await expect(first).resolves.toBe(row1);
    await expect(second).resolves.toBe(row2);
  });

  it('cleanup rejects every pending waiter once', async () => {
    const waiter = createNotificationWaiter();
    const one = waiter.waitFor('req-1', ['media.upload_ready'], 1000);
    const two = waiter.waitFor(['k1', 'k2'], ['media.upload_completed'], 1000);
    waiter.cleanup();
    await expect(one).rejects.toThrow('Notification waiter cleaned up');
    await expect(two).rejects.toThrow('Notification waiter cleaned up');
    expect(waiter.handleNotification(row('media.upload_ready', { request_id: 'req-1' }))).toBe(false);
  });

  it('is a no-op without waiters', () => {
    const waiter = createNotificationWaiter();
    expect(waiter.handleNotification(row('identity.login', { email: 'a@b.c' }))).toBe(false);
    expect(() => waiter.cleanup()).not.toThrow();
  });

  it.each([null, undefined])('tolerates a %s payload', (payload) => {
    const waiter = createNotificationWaiter();
    expect(waiter.handleNotification({ event_type: 'identity.login', payload })).toBe(false);
    expect(waiter.handleNotification({ event_type: 'identity.login' })).toBe(false);
  });

  it('throws SyntaxError on a malformed payload', () => {
    const waiter = createNotificationWaiter();
    expect(() => waiter.handleNotification({ event_type: 'media.upload_ready', payload: '{not json' })).toThrow(
      SyntaxError,
    );
  });

  it('falls back to file_path when the row has no matching request_id', async () => {
    const waiter = createNotificationWaiter();
    const pending = waiter.waitFor(['files/u/1/a.png', 'uploads/u/1/a.png'], ['media.upload_completed'], 1000);
    const completed = row('media.upload_completed', { file_path: 'files/u/1/a.png', file_name: 'a.png' });
    expect(waiter.handleNotification(completed)).toBe(true);
    await expect(pending).resolves.toBe(completed);
  });

  it('matches on any of the registered keys and removes all of them', async () => {
    const waiter = createNotificationWaiter();
    const pending = waiter.waitFor(['files/u/1/a.png', 'uploads/u/1/a.png'], ['media.upload_expired'], 1000);
    const expired = row('media.upload_expired', { file_path: 'uploads/u/1/a.png' });
    waiter.handleNotification(expired);
    await expect(pending).resolves.toBe(expired);
    expect(waiter.handleNotification(row('media.upload_expired', { file_path: 'files/u/1/a.png' }))).toBe(false);
  });

  it('prefers request_id over file_path', async () => {
    vi.useFakeTimers();
    const waiter = createNotificationWaiter();
    const byPath = waiter.waitFor('files/u/1/a.png', ['media.download_ready'], 1000);
    const byRequest = waiter.waitFor('req-7', ['media.download_ready'], 1000);
    const ready = row('media.download_ready', { request_id: 'req-7', file_path: 'files/u/1/a.png' });
    waiter.handleNotification(ready);
    await expect(byRequest).resolves.toBe(ready);
    vi.advanceTimersByTime(1000);
    await expect(byPath).rejects.toThrow('Notification timeout for request files/u/1/a.png');
  });

  it('uses file_path when the request_id entry does not take the type', async () => {
    const waiter = createNotificationWaiter();
    const byRequest = waiter.waitFor('req-8', ['media.download_ready'], 1000);
    const byPath = waiter.waitFor('files/z', ['media.file_deleted'], 1000);
    const deleted = row('media.file_deleted', { request_id: 'req-8', file_path: 'files/z' });
    waiter.handleNotification(deleted);
    await expect(byPath).resolves.toBe(deleted);
    const ready = row('media.download_ready', { request_id: 'req-8' });
    waiter.handleNotification(ready);
    await expect(byRequest).resolves.toBe(ready);
  });

  it('resolves a wait registered after its reply arrived (the reply beat the 202)', async () => {
    const waiter = createNotificationWaiter();
    const ready = row('media.download_ready', { request_id: 'req-early', download_url: 'http://s3/x' });
    expect(waiter.handleNotification(ready)).toBe(false);
    await expect(waiter.waitFor('req-early', ['media.download_ready', 'media.download_rejected'], 1000)).resolves.toBe(
      ready,
    );
    // Taken once: a second wait on the same key does not get it again.
    vi.useFakeTimers();
    const again = waiter.waitFor('req-early', ['media.download_ready'], 1000);
    vi.advanceTimersByTime(1000);
    await expect(again).rejects.toThrow('Notification timeout for request req-early');
  });

  it('matches an early reply by file_path and only for the awaited types', async () => {
    vi.useFakeTimers();
    const waiter = createNotificationWaiter();
    const deleted = row('media.file_deleted', { request_id: 'req-d', file_path: 'files/u/1/a.png' });
    waiter.handleNotification(deleted);
    const wrongType = waiter.waitFor('files/u/1/a.png', ['media.upload_completed'], 1000);
    vi.advanceTimersByTime(1000);
    await expect(wrongType).rejects.toThrow('Notification timeout for request files/u/1/a.png');
    await expect(waiter.waitFor(['files/u/1/a.png', 'req-x'], ['media.file_deleted'], 1000)).resolves.toBe(deleted);
  });

  it('forgets early replies after recentMs, beyond recentLimit and on cleanup', async () => {
    vi.useFakeTimers();
    let clock = 0;
    const waiter = createNotificationWaiter({ recentMs: 5000, recentLimit: 2, now: () => clock });
    waiter.handleNotification(row('media.download_ready', { request_id: 'old' }));
    clock = 5000;
    const stale = waiter.waitFor('old', ['media.download_ready'], 100);
    vi.advanceTimersByTime(100);
    await expect(stale).rejects.toThrow('Notification timeout for request old');

    for (const id of ['r1', 'r2', 'r3']) waiter.handleNotification(row('media.download_ready', { request_id: id }));
    const dropped = waiter.waitFor('r1', ['media.download_ready'], 100);
    vi.advanceTimersByTime(100);
    await expect(dropped).rejects.toThrow('Notification timeout for request r1');
    await expect(waiter.waitFor('r3', ['media.download_ready'], 100)).resolves.toMatchObject({
      event_type: 'media.download_ready',
    });

    waiter.cleanup();
    const afterCleanup = waiter.waitFor('r2', ['media.download_ready'], 100);
    vi.advanceTimersByTime(100);
    await expect(afterCleanup).rejects.toThrow('Notification timeout for request r2');
  });

  it('keeps no row without a request_id or file_path', async () => {
    vi.useFakeTimers();
    const waiter = createNotificationWaiter();
    waiter.handleNotification(row('identity.login', { email: 'a@b.c' }));
    const pending = waiter.waitFor('a@b.c', ['identity.login'], 100);
    vi.advanceTimersByTime(100);
    await expect(pending).rejects.toThrow('Notification timeout for request a@b.c');
  });

  it('waits without a timeout for Infinity or null, until the row or cleanup', async () => {
    vi.useFakeTimers();
    const waiter = createNotificationWaiter();
    const forever = waiter.waitFor('req-slow', ['media.upload_ready'], Infinity);
    const alsoForever = waiter.waitFor('req-slower', ['media.download_ready'], null);
    const settled = vi.fn();
    forever.then(settled, settled);
    alsoForever.then(settled, settled);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(24 * 60 * 60 * 1000);
    await Promise.resolve();
    expect(settled).not.toHaveBeenCalled();
    const ready = row('media.upload_ready', { request_id: 'req-slow' });
    expect(waiter.handleNotification(ready)).toBe(true);
    await expect(forever).resolves.toBe(ready);
    waiter.cleanup();
    await expect(alsoForever).rejects.toBeInstanceOf(WaiterClosedError);
    await expect(alsoForever).rejects.toThrow('Notification waiter cleaned up');
  });

  it('rejects a wait without a usable key', async () => {
    const waiter = createNotificationWaiter();
    await expect(waiter.waitFor('', ['x'], 10)).rejects.toThrow('at least one key');
    await expect(waiter.waitFor([undefined, null], ['x'], 10)).rejects.toThrow('at least one key');
  });
});
