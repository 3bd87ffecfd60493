// The signed-in home view (spec 11.2's home-view group): its elements, the delete modal and
// logout. The modal and the intent requests are exercised on files the test lists itself (the
// media_files query is answered with rows of the test's choosing and the intent endpoints are
// intercepted), so no saga runs here; the real sagas are in media.spec.js.

import { API_GATEWAY_URL, expect, expectSignupCredits, test } from './helpers.js';

const MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'video/mp4', 'video/webm', 'audio/mpeg', 'audio/wav', 'audio/ogg'];

/** Two files listed by the mocked media_files query. */
function fakeRows(userId) {
  const now = new Date().toISOString();
  return [
    {
      id: 1,
      file_name: 'first-mocked.png',
      file_path: `files/${userId}/00000000-0000-4000-8000-000000000001/first-mocked.png`,
      file_size: 2048,
      media_type: 'image/png',
      upload_time: now,
    },
    {
      id: 2,
      file_name: 'second-mocked.mp4',
      file_path: `files/${userId}/00000000-0000-4000-8000-000000000002/second-mocked.mp4`,
      file_size: 4096,
      media_type: 'video/mp4',
      upload_time: now,
    },
  ];
}

/**
 * Answers the page's media_files listing with `rows` (the real response's headers are kept,
 * so CORS and content type stay as the server sends them).
 * @param {import('@playwright/test').Page} page
 * @param {() => object[]} rows
 */
async function mockMediaListing(page, rows) {
  await page.route('**/rest/v1/media_files?**', async (route) => {
    if (route.request().method() !== 'GET') return route.fallback();
    const response = await route.fetch();
    return route.fulfill({ response, json: rows() });
  });
}

/**
 * Intercepts an intent endpoint: records the JSON bodies and answers 202 with a request id
 * (no reply notification ever comes, so the page just waits).
 * @param {import('@playwright/test').Page} page
 * @param {string} path
 * @returns {Promise<object[]>} the recorded bodies (filled as requests arrive)
 */
async function mockIntent(page, path) {
  const bodies = [];
  const cors = {
    'access-control-allow-origin': '*',
    'access-control-allow-methods': 'POST, OPTIONS',
    'access-control-allow-headers': 'authorization, content-type',
  };
  await page.route(`${API_GATEWAY_URL}${path}`, async (route) => {
    const request = route.request();
    if (request.method() === 'OPTIONS') return route.fulfill({ status: 204, headers: cors });
    bodies.push(request.postDataJSON());
    return route.fulfill({ status: 202, headers: cors, json: { request_id: `mock-${bodies.length}` } });
  });
  return bodies;
}

test.describe('home view', () => {
  test('shows the greeting, message form, media section and notifications pane', async ({ page, users }) => {
    await users.signUp(page, 'home');
    await expect(page.locator('#welcome-message')).toBeVisible();
    await expect(page.locator('#logout-btn')).toBeVisible();

    await expect(page.locator('#message-form')).toBeVisible();
    await expect(page.locator('#message-input')).toBeVisible();
    await expect(page.locator('#send-message-btn')).toBeVisible();
    await expect(page.locator('#message-status')).toBeHidden();

    await expect(page.locator('#media-section')).toBeVisible();
    await expect(page.locator('#upload-dropzone')).toBeVisible();
    await expect(page.locator('#upload-label')).toHaveText('Choose a file or drag it here');
    await expect(page.locator('#file-input')).toBeAttached();
    // Nothing chosen yet: nothing to upload.
    await expect(page.locator('#upload-btn')).toBeDisabled();
    // The balance is read once the session starts (the signup bonus follows over Realtime).
    await expect(page.locator('#credit-count')).not.toHaveText('—');
    await expectSignupCredits(page);

    await expect(page.locator('#media-browser')).toBeVisible();
    await expect(page.locator('#media-list .media-empty')).toHaveText('No files uploaded yet.');
    await expect(page.locator('.notifications-pane')).toBeVisible();
    await expect(page.locator('#notifications-list')).toBeVisible();
  });

  test('the file input accepts exactly the supported media types', async ({ page, users }) => {
    await users.signUp(page, 'accept');
    const accept = await page.locator('#file-input').getAttribute('accept');
    expect(accept?.split(',').map((type) => type.trim()).sort()).toEqual([...MEDIA_TYPES].sort());
  });

  test('an unsupported file type is refused before any upload', async ({ page, users }) => {
    await users.signUp(page, 'badtype');
    await page.locator('#file-input').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hi') });
    await expect(page.locator('#upload-status')).toHaveText(/^Unsupported file type: text\/plain\./);
    await expect(page.locator('#upload-status')).toHaveClass(/\berror\b/);
    await expect(page.locator('#upload-label')).toHaveText('Choose a file or drag it here');
    await expect(page.locator('#upload-btn')).toBeDisabled();
  });

  test('the delete modal is hidden by default with its controls attached', async ({ page, users }) => {
    await users.signUp(page, 'modal');
    await expect(page.locator('#delete-modal')).toBeHidden();
    for (const id of ['#delete-modal-filename', '#delete-confirm-input', '#delete-cancel-btn', '#delete-confirm-btn']) {
      await expect(page.locator(id)).toBeAttached();
    }
    await expect(page.locator('#delete-confirm-btn')).toBeDisabled();
  });

  test('delete modal: confirm only for "delete", cancel and re-open reset it, confirm sends the path', async ({ page, users }) => {
    let rows = [];
    await mockMediaListing(page, () => rows);
    const deletes = await mockIntent(page, '/api/v1/media/delete-intent');
    const user = await users.signUp(page, 'modal');
    rows = fakeRows(user.id);
    // Re-read the listing with the mocked rows (a reload keeps the session).
    await page.reload();
    await expect(page.locator('#media-list .media-file-card')).toHaveCount(2);

    const modal = page.locator('#delete-modal');
    const input = page.locator('#delete-confirm-input');
    const confirm = page.locator('#delete-confirm-btn');
    const firstCard = page.locator('.media-file-card', { hasText: 'first-mocked.png' });
    const secondCard = page.locator('.media-file-card', { hasText: 'second-mocked.mp4' });

    await firstCard.locator('.btn-delete').click();
    await expect(modal).toBeVisible();
    await expect(page.locator('#delete-modal-filename')).toHaveText('first-mocked.png');
    await expect(input).toHaveValue('');
    await expect(confirm).toBeDisabled();
    for (const [typed, enabled] of [
      ['', false],
      ['del', false],
      ['deletes', false],
      ['delete', true],
      ['DELETE', true],
      ['DeLeTe', true],
      ['  delete  ', true],
      ['delet', false],
    ]) {
      await input.fill(typed);
      if (enabled) await expect(confirm, `typed ${JSON.stringify(typed)}`).toBeEnabled();
      else await expect(confirm, `typed ${JSON.stringify(typed)}`).toBeDisabled();
    }

    // Cancel hides the modal and sends nothing.
    await page.locator('#delete-cancel-btn').click();
    await expect(modal).toBeHidden();

    // Re-opening (for another file) starts from an empty input and shows the new name.
    await secondCard.locator('.btn-delete').click();
    await expect(modal).toBeVisible();
    await expect(page.locator('#delete-modal-filename')).toHaveText('second-mocked.mp4');
    await expect(input).toHaveValue('');
    await expect(confirm).toBeDisabled();
    // Escape closes it as well.
    await page.keyboard.press('Escape');
    await expect(modal).toBeHidden();
    expect(deletes).toEqual([]);

    // Confirming sends the delete intent for exactly that file's path.
    await firstCard.locator('.btn-delete').click();
    await input.fill('Delete');
    await confirm.click();
    await expect(modal).toBeHidden();
    await expect(page.locator('#upload-status')).toHaveText('Deleting first-mocked.png…');
    await expect.poll(() => deletes.length).toBe(1);
    expect(deletes[0]).toEqual({ file_path: rows[0].file_path });
  });

  test('the download button sends the download intent for the file path', async ({ page, users }) => {
    let rows = [];
    await mockMediaListing(page, () => rows);
    const downloads = await mockIntent(page, '/api/v1/media/download-intent');
    const user = await users.signUp(page, 'dlmock');
    rows = fakeRows(user.id);
    await page.reload();
    await page.locator('.media-file-card', { hasText: 'second-mocked.mp4' }).locator('.btn-download').click();
    await expect(page.locator('#upload-status')).toHaveText('Preparing download…');
    await expect.poll(() => downloads.length).toBe(1);
    expect(downloads[0]).toEqual({ file_path: rows[1].file_path });
  });

  test('logout returns to the auth view', async ({ page, users }) => {
    await users.signUp(page, 'logout');
    await page.locator('#logout-btn').click();
    await expect(page.locator('#auth-view')).toBeVisible();
    await expect(page.locator('#home-view')).toBeHidden();
    await expect(page.locator('#submit-btn')).toHaveText('Log In');
    await expect(page.locator('#email')).toHaveValue('');
    // The session is gone: a reload stays on the auth view.
    await page.reload();
    await expect(page.locator('#auth-view')).toBeVisible();
    await expect(page.locator('#home-view')).toBeHidden();
  });

  test('login with the password shows the home view again', async ({ page, users }) => {
    const user = await users.signUp(page, 'login');
    await page.locator('#logout-btn').click();
    await expect(page.locator('#auth-view')).toBeVisible();
    await page.locator('#email').fill(user.email);
    await page.locator('#password').fill('Test1234!!');
    await page.locator('#submit-btn').click();
    await expect(page.locator('#home-view')).toBeVisible();
    await expect(page.locator('#welcome-message')).toHaveText(`Hello ${user.email.split('@')[0]}!`);
  });
});
