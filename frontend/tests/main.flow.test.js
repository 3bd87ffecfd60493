// @vitest-environment jsdom
// main.js against index.html with a fake Supabase client and a mocked fetch: the page flows
// the browser tests exercise against the real stack.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const fake = vi.hoisted(() => ({ current: /** @type {any} */ (null) }));

vi.mock('@supabase/supabase-js', () => ({
  createClient: vi.fn((url, key) => {
    fake.current.createdWith = { url, key };
    return fake.current.client;
  }),
}));

// A path, not a URL object: under jsdom the global URL is jsdom's, which node:fs does not take.
const INDEX_HTML = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'index.html'), 'utf8');
const GATEWAY = 'http://gateway.test:8080';
const USER = { id: 'user-1', email: 'alice@example.com' };
const FILE_ROW = {
  id: 1,
  file_name: 'holiday.png',
  file_path: 'files/user-1/abc/holiday.png',
  file_size: 2048,
  media_type: 'image/png',
  upload_time: '2026-03-01T10:00:00Z',
};

/**
 * A stand-in for the parts of supabase-js the page uses.
 * @param {{signedIn?: boolean, balance?: number | null, files?: any[], history?: any[], userError?: any}} options
 */
function createFakeSupabase(options = {}) {
  const state = {
    session: options.signedIn === false ? null : { access_token: 'access-token', user: USER },
    balance: options.balance === undefined ? 2 : options.balance,
    files: options.files ?? [],
    history: options.history ?? [],
    userError: options.userError ?? null,
    queries: /** @type {any[]} */ ([]),
    channels: /** @type {any[]} */ ([]),
    removedChannels: 0,
    authListener: /** @type {any} */ (null),
  };

  /** @param {string} table */
  function query(table) {
    const q = { table, select: '', eq: /** @type {any[]} */ ([]), order: /** @type {any[]} */ ([]), limit: 0, single: false };
    state.queries.push(q);
    const result = () => {
      if (table === 'user_credit_balances') {
        return { data: state.balance === null ? null : { balance: state.balance }, error: null };
      }
      if (table === 'media_files') return { data: state.files, error: null };
      if (table === 'user_notifications') return { data: state.history, error: null };
      return { data: null, error: { message: `no table ${table}` } };
    };
    const builder = {
      select(columns) { q.select = columns; return builder; },
      eq(column, value) { q.eq.push([column, value]); return builder; },
      order(column, opts) { q.order.push([column, opts]); return builder; },
      limit(n) { q.limit = n; return builder; },
      maybeSingle() { q.single = true; return builder; },
      then(resolve, reject) { return Promise.resolve(result()).then(resolve, reject); },
    };
    return builder;
  }

  const client = {
    auth: {
      getSession: vi.fn(async () => ({ data: { session: state.session }, error: null })),
      getUser: vi.fn(async () =>
        state.userError
          ? { data: { user: null }, error: state.userError }
          : { data: { user: state.session ? USER : null }, error: null },
      ),
      signInWithPassword: vi.fn(async () => {
        state.session = { access_token: 'access-token', user: USER };
        return { data: { session: state.session }, error: null };
      }),
      signUp: vi.fn(async () => ({ data: { session: null, user: USER }, error: null })),
      signOut: vi.fn(async () => {
        state.session = null;
        return { error: null };
      }),
      onAuthStateChange: vi.fn((callback) => {
        state.authListener = callback;
        return { data: { subscription: { unsubscribe() {} } } };
      }),
    },
    from: vi.fn(query),
    channel: vi.fn((name) => {
      const channel = {
        name,
        bindings: /** @type {any[]} */ ([]),
        subscribed: false,
        on(type, filter, callback) { channel.bindings.push({ type, filter, callback }); return channel; },
        subscribe() { channel.subscribed = true; return channel; },
      };
      state.channels.push(channel);
      return channel;
    }),
    removeChannel: vi.fn(async () => {
      state.removedChannels += 1;
      return 'ok';
    }),
  };

  /** Delivers a Realtime INSERT on user_notifications to the live channel. */
  function emit(row) {
    const channel = state.channels.at(-1);
    if (!channel) throw new Error('no channel');
    for (const binding of channel.bindings) binding.callback({ new: row });
  }

  return { client, state, emit };
}

/** @param {number} status @param {unknown} [body] */
function json(status, body) {
  return new Response(body === undefined ? null : JSON.stringify(body), { status });
}

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const text = (id) => $(id).textContent ?? '';
let nextId = 100;
/** @param {string} type @param {Record<string, unknown>} payload */
const notification = (type, payload) => ({
  id: nextId++,
  user_id: USER.id,
  event_type: type,
  payload: JSON.stringify(payload),
  event_time: '2026-03-01T10:00:00Z',
});

let fetchMock;

/**
 * Loads index.html into the document and runs main.js.
 * @param {Parameters<typeof createFakeSupabase>[0]} options
 * @param {{anonKey?: string}} [env]
 */
async function loadPage(options = {}, env = {}) {
  const parsed = new DOMParser().parseFromString(INDEX_HTML, 'text/html');
  document.documentElement.replaceWith(document.importNode(parsed.documentElement, true));
  fake.current = createFakeSupabase(options);
  vi.stubEnv('VITE_SUPABASE_ANON_KEY', env.anonKey ?? 'anon-key');
  vi.stubEnv('VITE_API_GATEWAY_URL', GATEWAY);
  vi.stubEnv('VITE_SUPABASE_URL', 'http://supabase.test:54321');
  vi.resetModules();
  await import('../main.js');
  return fake.current;
}

async function signedInPage(options = {}) {
  const page = await loadPage(options);
  await vi.waitFor(() => expect(text('credit-count')).not.toBe('—'));
  return page;
}

/** @param {File} file */
function chooseFile(file) {
  const input = /** @type {HTMLInputElement} */ ($('file-input'));
  Object.defineProperty(input, 'files', { value: [file], configurable: true });
  input.dispatchEvent(new Event('change', { bubbles: true }));
}

/** @param {string} path */
function callsTo(path) {
  return fetchMock.mock.calls.filter(([url]) => String(url).endsWith(path));
}

/** Fake timers for a saga wait; install after the page has loaded, before the action. */
function useSagaTimers() {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
}

/**
 * Runs the page's saga wait (30 s) out with fake timers until the status shows `part`. The old
 * page failed the saga here ("Notification timeout for request …").
 * @param {string} part
 */
async function outwait(part) {
  await vi.waitFor(() => {
    vi.advanceTimersByTime(5000);
    expect(text('upload-status')).toContain(part);
  });
}

beforeEach(() => {
  fetchMock = vi.fn(async () => json(500, {}));
  vi.stubGlobal('fetch', fetchMock);
  vi.spyOn(console, 'warn').mockImplementation(() => {});
});

afterEach(() => {
  vi.useRealTimers();
});

describe('configuration', () => {
  it('shows an error when VITE_SUPABASE_ANON_KEY is missing', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const page = await loadPage({}, { anonKey: '' });
    expect(error).toHaveBeenCalledWith(expect.stringContaining('VITE_SUPABASE_ANON_KEY'));
    expect($('alert-box').hidden).toBe(false);
    expect($('alert-box').className).toBe('alert error');
    expect(text('alert-box')).toContain('VITE_SUPABASE_ANON_KEY');
    expect(/** @type {HTMLButtonElement} */ ($('submit-btn')).disabled).toBe(true);
    expect(page.createdWith).toBeUndefined();
  });

  it('creates the client from the configured URL and key', async () => {
    const page = await loadPage({ signedIn: false });
    expect(page.createdWith).toEqual({ url: 'http://supabase.test:54321', key: 'anon-key' });
  });
});

describe('auth view', () => {
  it('starts on the auth view with the login texts', async () => {
    await loadPage({ signedIn: false });
    await vi.waitFor(() => expect(fake.current.client.auth.getSession).toHaveBeenCalled());
    expect($('auth-view').classList.contains('active-view')).toBe(true);
    expect($('home-view').classList.contains('active-view')).toBe(false);
    expect(text('submit-btn')).toBe('Log In');
    expect(text('form-title')).toBe('Welcome back');
    expect($('delete-modal').hidden).toBe(true);
  });

  it('toggles between login and signup texts', async () => {
    await loadPage({ signedIn: false });
    $('toggle-mode').click();
    expect(text('submit-btn')).toBe('Sign Up');
    expect(text('form-title')).toBe('Create an account');
    expect(text('toggle-prompt')).toBe('Already have an account?');
    expect(text('toggle-mode')).toBe('Log in');
    $('toggle-mode').click();
    expect(text('submit-btn')).toBe('Log In');
    expect(text('form-title')).toBe('Welcome back');
    expect(text('toggle-mode')).toBe('Sign up');
  });

  it('logs in and shows the home view', async () => {
    const page = await loadPage({ signedIn: false });
    /** @type {HTMLInputElement} */ ($('email')).value = 'alice@example.com';
    /** @type {HTMLInputElement} */ ($('password')).value = 'Test1234!!';
    $('submit-btn').click();
    await vi.waitFor(() => expect($('home-view').classList.contains('active-view')).toBe(true));
    expect(page.client.auth.signInWithPassword).toHaveBeenCalledWith({
      email: 'alice@example.com',
      password: 'Test1234!!',
    });
    expect(text('welcome-message')).toBe('Hello alice!');
    expect($('auth-view').classList.contains('active-view')).toBe(false);
  });

  it('signs up, confirms and switches back to login after 2 s', async () => {
    const page = await loadPage({ signedIn: false });
    await vi.waitFor(() => expect(page.client.auth.getSession).toHaveBeenCalled());
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    $('toggle-mode').click();
    /** @type {HTMLInputElement} */ ($('email')).value = 'bob@example.com';
    /** @type {HTMLInputElement} */ ($('password')).value = 'Test1234!!';
    $('submit-btn').click();
    await vi.waitFor(() => expect($('alert-box').className).toBe('alert success'));
    expect(page.client.auth.signUp).toHaveBeenCalledWith({ email: 'bob@example.com', password: 'Test1234!!' });
    vi.advanceTimersByTime(2000);
    expect(text('submit-btn')).toBe('Log In');
    expect(/** @type {HTMLInputElement} */ ($('password')).value).toBe('');
  });

  it('shows a login error in the alert box', async () => {
    const page = await loadPage({ signedIn: false });
    page.client.auth.signInWithPassword.mockResolvedValueOnce({
      data: { session: null },
      error: new Error('Invalid login credentials'),
    });
    /** @type {HTMLInputElement} */ ($('email')).value = 'alice@example.com';
    /** @type {HTMLInputElement} */ ($('password')).value = 'wrong';
    $('submit-btn').click();
    await vi.waitFor(() => expect(text('alert-box')).toBe('Invalid login credentials'));
    expect($('alert-box').className).toBe('alert error');
    expect(/** @type {HTMLButtonElement} */ ($('submit-btn')).disabled).toBe(false);
  });

  it('drops a ghost session the server refuses', async () => {
    const page = await loadPage({ userError: new Error('Auth session missing!') });
    await vi.waitFor(() => expect(page.client.auth.signOut).toHaveBeenCalledWith({ scope: 'local' }));
    expect($('auth-view').classList.contains('active-view')).toBe(true);
    expect($('home-view').classList.contains('active-view')).toBe(false);
    expect(page.state.channels).toHaveLength(0);
  });

  it('re-checks the session on SIGNED_IN and SIGNED_OUT only', async () => {
    const page = await loadPage({ signedIn: false });
    await vi.waitFor(() => expect(page.client.auth.getSession).toHaveBeenCalledTimes(1));
    page.state.authListener('TOKEN_REFRESHED', null);
    page.state.session = { access_token: 'a', user: USER };
    page.state.authListener('SIGNED_IN', page.state.session);
    await vi.waitFor(() => expect($('home-view').classList.contains('active-view')).toBe(true));
    expect(page.client.auth.getSession).toHaveBeenCalledTimes(2);
  });
});

describe('home view', () => {
  it('greets the user, subscribes to user-events and loads credits, files and history', async () => {
    const page = await signedInPage({
      files: [FILE_ROW],
      history: [
        notification('identity.login', {}),
        notification('identity.signup', {}),
      ],
    });
    expect(text('welcome-message')).toBe('Hello alice!');
    expect(text('credit-count')).toBe('2');
    expect($('credit-badge').classList.contains('empty')).toBe(false);

    const [channel] = page.state.channels;
    expect(channel.name).toBe('user-events');
    expect(channel.subscribed).toBe(true);
    expect(channel.bindings[0].type).toBe('postgres_changes');
    expect(channel.bindings[0].filter).toEqual({ event: 'INSERT', schema: 'public', table: 'user_notifications' });

    const credits = page.state.queries.find((q) => q.table === 'user_credit_balances');
    expect(credits).toMatchObject({ select: 'balance', eq: [['user_id', USER.id]], single: true });
    const history = page.state.queries.find((q) => q.table === 'user_notifications');
    expect(history).toMatchObject({ order: [['created_at', { ascending: false }]], limit: 20 });

    await vi.waitFor(() => expect(document.querySelectorAll('.media-file-card')).toHaveLength(1));
    expect(document.querySelector('.media-file-card .file-name')?.textContent).toBe('holiday.png');

    await vi.waitFor(() => expect(document.querySelectorAll('.notification-item')).toHaveLength(2));
    const items = [...document.querySelectorAll('.notification-item')].map((item) => item.textContent);
    expect(items[0]).toContain('Flink mapped Login'); // newest on top
    expect(items[1]).toContain('Flink mapped Signup');
    expect($('notification-empty').hidden).toBe(true);
  });

  it('shows "No files uploaded yet." for an empty browser', async () => {
    await signedInPage({ files: [] });
    await vi.waitFor(() => expect(text('media-list')).toBe('No files uploaded yet.'));
  });

  it('marks an empty balance and disables uploads until credits arrive', async () => {
    const page = await signedInPage({ balance: null });
    expect(text('credit-count')).toBe('0');
    expect($('credit-badge').classList.contains('empty')).toBe(true);
    expect(text('upload-status')).toContain('No credits remaining');
    expect($('upload-status').classList.contains('error')).toBe(true);

    page.state.balance = 2;
    page.emit(notification('credit.balance_changed', { amount: 2, reason: 'signup_bonus' }));
    await vi.waitFor(() => expect(text('credit-count')).toBe('2'));
    expect($('credit-badge').classList.contains('empty')).toBe(false);
    expect(text('upload-status')).not.toContain('No credits remaining');
  });

  it('prepends Realtime rows, skips duplicates and keeps at most 50', async () => {
    const page = await signedInPage();
    const first = notification('user.message', { email: 'bob@example.com', message: 'hi' });
    page.emit(first);
    page.emit(first);
    expect(document.querySelectorAll('.notification-item')).toHaveLength(1);
    expect(document.querySelector('.notification-item')?.textContent).toBe('💬 bob: hi');
    for (let i = 0; i < 60; i += 1) page.emit(notification('identity.login', {}));
    const items = document.querySelectorAll('.notification-item');
    expect(items).toHaveLength(50);
    expect(items[49].textContent).toContain('Flink mapped Login'); // the message was dropped
  });

  it('sends a message without any identity fields', async () => {
    await signedInPage();
    fetchMock.mockImplementation(async () => new Response(null, { status: 204 }));
    const input = /** @type {HTMLInputElement} */ ($('message-input'));
    input.value = '  hello world  ';
    $('send-message-btn').click();
    await vi.waitFor(() => expect(input.value).toBe(''));
    const [[url, init]] = callsTo('/api/v1/events/message');
    expect(url).toBe(`${GATEWAY}/api/v1/events/message`);
    expect(init.headers.Authorization).toBe('Bearer access-token');
    const body = JSON.parse(init.body);
    expect(body).toMatchObject({ message: 'hello world', visibility: 'broadcast', recipient_id: null });
    expect(body).not.toHaveProperty('user_id');
    expect(body).not.toHaveProperty('email');
  });

  it('ignores an empty message and reports a gateway error', async () => {
    await signedInPage();
    $('send-message-btn').click();
    expect(callsTo('/api/v1/events/message')).toHaveLength(0);
    fetchMock.mockImplementation(async () => new Response('rate limited', { status: 429 }));
    /** @type {HTMLInputElement} */ ($('message-input')).value = 'x';
    $('send-message-btn').click();
    await vi.waitFor(() => expect(text('message-status')).toBe('API Error: rate limited'));
    expect($('message-status').hidden).toBe(false);
  });

  it('logs out to the auth view and tears the session down', async () => {
    const page = await signedInPage();
    $('logout-btn').click();
    await vi.waitFor(() => expect($('auth-view').classList.contains('active-view')).toBe(true));
    expect(page.client.auth.signOut).toHaveBeenCalled();
    expect(page.client.removeChannel).toHaveBeenCalled();
    expect(text('credit-count')).toBe('—');
    expect(document.querySelectorAll('.notification-item')).toHaveLength(0);
    expect($('notification-empty').hidden).toBe(false);
  });
});

describe('file selection', () => {
  it('accepts an allowed file and labels it with its size', async () => {
    await signedInPage();
    chooseFile(new File(['x'.repeat(1536)], 'cat.png', { type: 'image/png' }));
    expect(text('upload-label')).toBe('cat.png (1.5 KB)');
    expect($('upload-dropzone').classList.contains('has-file')).toBe(true);
    expect(/** @type {HTMLButtonElement} */ ($('upload-btn')).disabled).toBe(false);
  });

  it('rejects an unsupported type', async () => {
    await signedInPage();
    chooseFile(new File(['%PDF'], 'doc.pdf', { type: 'application/pdf' }));
    expect($('upload-status').classList.contains('error')).toBe(true);
    expect(text('upload-status')).toContain('application/pdf');
    expect(/** @type {HTMLButtonElement} */ ($('upload-btn')).disabled).toBe(true);
    expect($('upload-dropzone').classList.contains('has-file')).toBe(false);
  });

  it('highlights the dropzone while dragging', async () => {
    await signedInPage();
    const zone = $('upload-dropzone');
    zone.dispatchEvent(new Event('dragover', { cancelable: true }));
    expect(zone.classList.contains('dragover')).toBe(true);
    zone.dispatchEvent(new Event('dragleave'));
    expect(zone.classList.contains('dragover')).toBe(false);
  });
});

describe('upload saga', () => {
  const staging = 'uploads/user-1/uuid-1/cat.png';
  const permanent = 'files/user-1/uuid-1/cat.png';
  const signedUrl = `http://127.0.0.1:9000/media-uploads/${staging}?X-Amz-Signature=sig`;

  /** `intentAnswered`: when set, the intent's answer waits for this promise. */
  function routeFetch({ intentStatus = 202, intentAnswered = undefined } = {}) {
    fetchMock.mockImplementation(async (url) => {
      if (String(url).endsWith('/api/v1/media/upload-intent')) {
        await intentAnswered;
        return intentStatus === 202 ? json(202, { request_id: 'req-up' }) : json(intentStatus, { error: 'x' });
      }
      if (String(url).startsWith('http://127.0.0.1:9000/')) return new Response(null, { status: 200 });
      return json(500, {});
    });
  }

  /** A signed-in page whose upload of cat.png has sent its intent (answered by routeFetch). */
  async function pageWithUploadIntent() {
    const page = await signedInPage();
    routeFetch();
    chooseFile(new File(['png'], 'cat.png', { type: 'image/png' }));
    $('upload-btn').click();
    await vi.waitFor(() => expect(callsTo('/api/v1/media/upload-intent')).toHaveLength(1));
    return page;
  }

  /** The current page (already signed in) after its upload of cat.png has sent its intent. */
  async function pageWithUploadIntentOn() {
    routeFetch();
    chooseFile(new File(['png'], 'cat.png', { type: 'image/png' }));
    $('upload-btn').click();
    await vi.waitFor(() => expect(callsTo('/api/v1/media/upload-intent')).toHaveLength(1));
    return fake.current;
  }

  /**
   * Delivers `row` once and waits for the page to move past the status `leaving`. The row may
   * come before the page has read the intent's 202 and started waiting: the waiter keeps it.
   */
  async function deliverUntil(page, row, leaving) {
    page.emit({ ...row });
    await vi.waitFor(() => expect(text('upload-status')).not.toBe(leaving));
  }

  it('intent -> ready -> PUT -> completed', async () => {
    const page = await signedInPage();
    routeFetch();
    chooseFile(new File(['png'], 'cat.png', { type: 'image/png' }));
    $('upload-btn').click();
    expect(text('upload-btn')).toBe('Uploading…');
    expect(text('upload-status')).toBe('Checking credits…');

    await vi.waitFor(() => expect(callsTo('/api/v1/media/upload-intent')).toHaveLength(1));
    const [, intentInit] = callsTo('/api/v1/media/upload-intent')[0];
    expect(JSON.parse(intentInit.body)).toEqual({ file_name: 'cat.png', media_type: 'image/png', file_size: 3 });

    const ready = notification('media.upload_ready', { request_id: 'req-up', upload_url: signedUrl, file_path: staging });
    await deliverUntil(page, ready, 'Checking credits…');
    await vi.waitFor(() => expect(text('upload-status')).toBe('Processing…'));

    const put = fetchMock.mock.calls.find(([url]) => url === signedUrl);
    expect(put?.[1]).toMatchObject({ method: 'PUT', headers: { 'Content-Type': 'image/png' }, credentials: 'omit' });

    page.state.balance = 1;
    page.state.files = [{ ...FILE_ROW, file_name: 'cat.png', file_path: permanent }];
    page.emit(notification('media.upload_completed', { file_path: permanent, file_name: 'cat.png' }));
    await vi.waitFor(() => expect(text('upload-status')).toBe('✓ Upload complete'));
    expect($('upload-status').classList.contains('success')).toBe(true);
    await vi.waitFor(() => expect(text('credit-count')).toBe('1'));
    await vi.waitFor(() => expect(document.querySelector('.media-file-card .file-name')?.textContent).toBe('cat.png'));
    expect(text('upload-btn')).toBe('Upload');
    expect(text('upload-label')).toBe('Choose a file or drag it here');
    expect(text('upload-status')).toBe('✓ Upload complete');
  });

  it('continues when the saga replies before the intent is answered', async () => {
    const page = await signedInPage();
    /** @type {() => void} */
    let answerIntent = () => {};
    routeFetch({ intentAnswered: new Promise((resolve) => { answerIntent = () => resolve(undefined); }) });
    chooseFile(new File(['png'], 'cat.png', { type: 'image/png' }));
    $('upload-btn').click();
    await vi.waitFor(() => expect(callsTo('/api/v1/media/upload-intent')).toHaveLength(1));
    // The reply arrives over Realtime while the 202 is still on its way.
    page.emit(notification('media.upload_ready', { request_id: 'req-up', upload_url: signedUrl, file_path: staging }));
    expect(text('upload-status')).toBe('Checking credits…');
    answerIntent();
    await vi.waitFor(() => expect(text('upload-status')).toBe('Processing…'));
    expect(fetchMock.mock.calls.some(([url]) => url === signedUrl)).toBe(true);
  });

  it('shows the reason of media.upload_rejected', async () => {
    const page = await pageWithUploadIntent();
    await deliverUntil(
      page,
      notification('media.upload_rejected', { request_id: 'req-up', reason: 'insufficient_credits' }),
      'Checking credits…',
    );
    expect(text('upload-status')).toBe('Upload rejected: insufficient_credits');
    expect($('upload-status').classList.contains('error')).toBe(true);
    expect(/** @type {HTMLButtonElement} */ ($('upload-btn')).disabled).toBe(false);
  });

  it('shows "Insufficient credits to upload." on 402', async () => {
    await signedInPage();
    routeFetch({ intentStatus: 402 });
    chooseFile(new File(['png'], 'cat.png', { type: 'image/png' }));
    $('upload-btn').click();
    await vi.waitFor(() => expect(text('upload-status')).toBe('Insufficient credits to upload.'));
    expect($('upload-status').classList.contains('error')).toBe(true);
  });

  /** The PUTs to the signed URL. */
  const puts = () => fetchMock.mock.calls.filter(([url]) => url === signedUrl);
  const STILL = 'Your upload of cat.png is still being processed. The result will appear here when it is ready; there is no need to upload it again.';

  it('tells the user a slow upload is still being processed and never fails it', async () => {
    await signedInPage();
    useSagaTimers();
    const page = await pageWithUploadIntentOn();
    await outwait('still being processed');
    expect(text('upload-status')).toBe(STILL);
    expect($('upload-status').classList.contains('error')).toBe(false);
    // Minutes later the page still waits: no timeout, no failure, no second intent.
    vi.advanceTimersByTime(10 * 60 * 1000);
    await Promise.resolve();
    expect(text('upload-status')).toBe(STILL);
    expect(text('upload-status')).not.toContain('Notification timeout');
    expect(text('upload-status')).not.toContain('failed');
    expect(text('upload-btn')).toBe('Uploading…');
    expect(/** @type {HTMLButtonElement} */ ($('upload-btn')).disabled).toBe(true);
    expect(callsTo('/api/v1/media/upload-intent')).toHaveLength(1);
    expect(page.state.channels).toHaveLength(1);
  });

  it('finishes an upload whose replies come after the wait: one intent, one PUT', async () => {
    await signedInPage();
    useSagaTimers();
    const page = await pageWithUploadIntentOn();
    await outwait('still being processed');

    page.emit(notification('media.upload_ready', { request_id: 'req-up', upload_url: signedUrl, file_path: staging }));
    await vi.waitFor(() => expect(text('upload-status')).toBe('Processing…'));
    expect(puts()).toHaveLength(1);
    expect(puts()[0][1]).toMatchObject({ method: 'PUT', headers: { 'Content-Type': 'image/png' } });

    // The completion is slow as well.
    await outwait('still being processed');
    page.state.balance = 1;
    page.state.files = [{ ...FILE_ROW, file_name: 'cat.png', file_path: permanent }];
    page.emit(notification('media.upload_completed', { file_path: permanent, file_name: 'cat.png' }));
    await vi.waitFor(() => expect(text('upload-status')).toBe('✓ Upload complete'));
    expect($('upload-status').classList.contains('success')).toBe(true);
    await vi.waitFor(() => expect(text('credit-count')).toBe('1'));
    expect(text('upload-btn')).toBe('Upload');
    expect(callsTo('/api/v1/media/upload-intent')).toHaveLength(1);
    expect(puts()).toHaveLength(1);
  });

  it('shows a rejection that comes after the wait', async () => {
    await signedInPage();
    useSagaTimers();
    const page = await pageWithUploadIntentOn();
    await outwait('still being processed');
    page.emit(notification('media.upload_rejected', { request_id: 'req-up', reason: 'insufficient_credits' }));
    await vi.waitFor(() => expect(text('upload-status')).toBe('Upload rejected: insufficient_credits'));
    expect($('upload-status').classList.contains('error')).toBe(true);
    expect(/** @type {HTMLButtonElement} */ ($('upload-btn')).disabled).toBe(false);
    expect(puts()).toHaveLength(0);
    expect(callsTo('/api/v1/media/upload-intent')).toHaveLength(1);
  });

  it('drops a pending upload silently on sign-out', async () => {
    await signedInPage();
    useSagaTimers();
    const page = await pageWithUploadIntentOn();
    await outwait('still being processed');
    $('logout-btn').click();
    await vi.waitFor(() => expect($('auth-view').classList.contains('active-view')).toBe(true));
    await vi.waitFor(() => expect(text('upload-btn')).toBe('Upload'));
    expect(text('upload-status')).toBe('');
    // A reply after sign-out (the channel is gone; a stray row) changes nothing.
    expect(() => page.emit(notification('media.upload_ready', { request_id: 'req-up', upload_url: signedUrl, file_path: staging }))).not.toThrow();
    expect(puts()).toHaveLength(0);
  });

  it('reports a failed move', async () => {
    const page = await pageWithUploadIntent();
    await deliverUntil(
      page,
      notification('media.upload_ready', { request_id: 'req-up', upload_url: signedUrl, file_path: staging }),
      'Checking credits…',
    );
    await vi.waitFor(() => expect(text('upload-status')).toBe('Processing…'));
    page.emit(notification('media.upload_failed', { file_path: permanent, failure_reason: 'max retries exceeded' }));
    await vi.waitFor(() => expect(text('upload-status')).toBe('Upload failed: max retries exceeded'));
  });
});

describe('media browser actions', () => {
  it('downloads through the intent and opens the signed URL in a new tab', async () => {
    const open = vi.spyOn(window, 'open').mockReturnValue(null);
    const page = await signedInPage({ files: [FILE_ROW] });
    fetchMock.mockImplementation(async (url) =>
      String(url).endsWith('/download-intent') ? json(202, { request_id: 'req-dl' }) : json(500, {}),
    );
    await vi.waitFor(() => expect(document.querySelector('.btn-download')).not.toBeNull());
    /** @type {HTMLButtonElement} */ (document.querySelector('.btn-download')).click();
    expect(text('upload-status')).toBe('Preparing download…');
    await vi.waitFor(() => expect(callsTo('/api/v1/media/download-intent')).toHaveLength(1));
    expect(JSON.parse(callsTo('/api/v1/media/download-intent')[0][1].body)).toEqual({ file_path: FILE_ROW.file_path });
    const url = 'http://127.0.0.1:9000/media-uploads/files/user-1/abc/holiday.png?X-Amz-Signature=s';
    await vi.waitFor(() => {
      page.emit(notification('media.download_ready', { request_id: 'req-dl', download_url: url, file_path: FILE_ROW.file_path }));
      expect(open).toHaveBeenCalledWith(url, '_blank', 'noopener');
    });
    expect($('upload-status').querySelector('a')?.getAttribute('href')).toBe(url);
  });

  it('offers the link of a download reply that comes after the wait', async () => {
    const open = vi.spyOn(window, 'open').mockReturnValue(null);
    const page = await signedInPage({ files: [FILE_ROW] });
    fetchMock.mockImplementation(async (url) =>
      String(url).endsWith('/download-intent') ? json(202, { request_id: 'req-dl-late' }) : json(500, {}),
    );
    await vi.waitFor(() => expect(document.querySelector('.btn-download')).not.toBeNull());
    useSagaTimers();
    const button = /** @type {HTMLButtonElement} */ (document.querySelector('.btn-download'));
    button.click();
    await vi.waitFor(() => expect(callsTo('/api/v1/media/download-intent')).toHaveLength(1));
    await outwait('still being prepared');
    expect(text('upload-status')).toBe(
      'Your download of holiday.png is still being prepared. A link to open it will appear here when it is ready.',
    );
    expect(text('upload-status')).not.toContain('Notification timeout');
    expect(button.disabled).toBe(true);

    const url = 'http://127.0.0.1:9000/media-uploads/files/user-1/abc/holiday.png?X-Amz-Signature=late';
    page.emit(notification('media.download_ready', { request_id: 'req-dl-late', download_url: url, file_path: FILE_ROW.file_path }));
    await vi.waitFor(() => expect(text('upload-status')).toContain('Download ready: holiday.png'));
    const link = $('upload-status').querySelector('a');
    expect(link?.getAttribute('href')).toBe(url);
    expect(link?.getAttribute('target')).toBe('_blank');
    expect($('upload-status').classList.contains('success')).toBe(true);
    // Late: no window.open (a popup blocker would stop it); the link is the way.
    expect(open).not.toHaveBeenCalled();
    expect(button.disabled).toBe(false);
    expect(callsTo('/api/v1/media/download-intent')).toHaveLength(1);
  });

  it('shows a download rejection that comes after the wait', async () => {
    const page = await signedInPage({ files: [FILE_ROW] });
    fetchMock.mockImplementation(async () => json(202, { request_id: 'req-dl-no' }));
    await vi.waitFor(() => expect(document.querySelector('.btn-download')).not.toBeNull());
    useSagaTimers();
    /** @type {HTMLButtonElement} */ (document.querySelector('.btn-download')).click();
    await outwait('still being prepared');
    page.emit(notification('media.download_rejected', { request_id: 'req-dl-no', reason: 'not_found' }));
    await vi.waitFor(() => expect(text('upload-status')).toBe('Download failed: not_found'));
    expect(callsTo('/api/v1/media/download-intent')).toHaveLength(1);
  });

  it('refuses a non-http download URL', async () => {
    const open = vi.spyOn(window, 'open').mockReturnValue(null);
    const page = await signedInPage({ files: [FILE_ROW] });
    fetchMock.mockImplementation(async () => json(202, { request_id: 'req-js' }));
    await vi.waitFor(() => expect(document.querySelector('.btn-download')).not.toBeNull());
    /** @type {HTMLButtonElement} */ (document.querySelector('.btn-download')).click();
    await vi.waitFor(() => {
      page.emit(notification('media.download_ready', { request_id: 'req-js', download_url: 'javascript:alert(1)' }));
      expect(text('upload-status')).toContain('Download failed:');
    });
    expect(open).not.toHaveBeenCalled();
  });

  it('deletes only after typing "delete" in the modal', async () => {
    const page = await signedInPage({ files: [FILE_ROW] });
    fetchMock.mockImplementation(async (url) =>
      String(url).endsWith('/delete-intent') ? json(202, { request_id: 'req-del' }) : json(500, {}),
    );
    await vi.waitFor(() => expect(document.querySelector('.btn-delete')).not.toBeNull());
    const modal = $('delete-modal');
    const input = /** @type {HTMLInputElement} */ ($('delete-confirm-input'));
    const confirm = /** @type {HTMLButtonElement} */ ($('delete-confirm-btn'));
    const type = (value) => {
      input.value = value;
      input.dispatchEvent(new Event('input'));
    };

    /** @type {HTMLButtonElement} */ (document.querySelector('.btn-delete')).click();
    expect(modal.hidden).toBe(false);
    expect(text('delete-modal-filename')).toBe('holiday.png');
    expect(document.activeElement).toBe(input);
    expect(confirm.disabled).toBe(true);
    type('del');
    expect(confirm.disabled).toBe(true);
    type('');
    expect(confirm.disabled).toBe(true);
    type(' DeLeTe ');
    expect(confirm.disabled).toBe(false);

    $('delete-cancel-btn').click();
    expect(modal.hidden).toBe(true);
    expect(callsTo('/api/v1/media/delete-intent')).toHaveLength(0);

    /** @type {HTMLButtonElement} */ (document.querySelector('.btn-delete')).click();
    expect(modal.hidden).toBe(false);
    expect(input.value).toBe('');
    expect(confirm.disabled).toBe(true);
    modal.click(); // backdrop
    expect(modal.hidden).toBe(true);

    /** @type {HTMLButtonElement} */ (document.querySelector('.btn-delete')).click();
    type('delete');
    confirm.click();
    expect(modal.hidden).toBe(true);
    await vi.waitFor(() => expect(callsTo('/api/v1/media/delete-intent')).toHaveLength(1));
    expect(JSON.parse(callsTo('/api/v1/media/delete-intent')[0][1].body)).toEqual({ file_path: FILE_ROW.file_path });

    page.state.files = [];
    await vi.waitFor(() => {
      page.emit(notification('media.file_deleted', { file_path: FILE_ROW.file_path, file_name: 'holiday.png' }));
      expect(text('upload-status')).toBe('✓ Deleted holiday.png');
    });
    await vi.waitFor(() => expect(document.querySelectorAll('.media-file-card')).toHaveLength(0));
    expect(text('media-list')).toBe('No files uploaded yet.');
  });

  it('finishes a delete whose reply comes after the wait', async () => {
    const page = await signedInPage({ files: [FILE_ROW] });
    fetchMock.mockImplementation(async () => json(202, { request_id: 'req-del-late' }));
    await vi.waitFor(() => expect(document.querySelector('.btn-delete')).not.toBeNull());
    useSagaTimers();
    /** @type {HTMLButtonElement} */ (document.querySelector('.btn-delete')).click();
    const input = /** @type {HTMLInputElement} */ ($('delete-confirm-input'));
    input.value = 'delete';
    input.dispatchEvent(new Event('input'));
    $('delete-confirm-btn').click();
    await outwait('still being processed');
    expect(text('upload-status')).not.toContain('failed');
    page.state.files = [];
    page.emit(notification('media.file_deleted', { file_path: FILE_ROW.file_path, file_name: 'holiday.png' }));
    await vi.waitFor(() => expect(text('upload-status')).toBe('✓ Deleted holiday.png'));
    expect(callsTo('/api/v1/media/delete-intent')).toHaveLength(1);
  });

  it('shows the reason of media.delete_rejected', async () => {
    const page = await signedInPage({ files: [FILE_ROW] });
    fetchMock.mockImplementation(async () => json(202, { request_id: 'req-del2' }));
    await vi.waitFor(() => expect(document.querySelector('.btn-delete')).not.toBeNull());
    /** @type {HTMLButtonElement} */ (document.querySelector('.btn-delete')).click();
    const input = /** @type {HTMLInputElement} */ ($('delete-confirm-input'));
    input.value = 'delete';
    input.dispatchEvent(new Event('input'));
    $('delete-confirm-btn').click();
    await vi.waitFor(() => {
      page.emit(notification('media.delete_rejected', { file_path: FILE_ROW.file_path, reason: 'not_owner' }));
      expect(text('upload-status')).toBe('Delete failed: not_owner');
    });
  });
});
