// The media sagas through the page, against the running platform: upload (intent -> signed PUT
// URL -> PUT -> media.upload_completed), download (signed URL opened in a new tab), delete (the
// confirmation modal), a file name that is markup, and an upload without credits.

import {
  SAGA_TIMEOUT,
  balanceOf,
  chooseFile,
  drainCredits,
  expect,
  expectSignupCredits,
  mediaCard,
  pngFile,
  randomTag,
  test,
  uploadThroughPage,
} from './helpers.js';

test.describe('media', () => {
  test.beforeEach(() => {
    test.setTimeout(90_000);
  });

  test('upload journey: upload a PNG, spend a credit, delete it through the modal', async ({ page, users }) => {
    await users.signUp(page, 'journey');
    await expectSignupCredits(page);

    const file = pngFile('e2e-journey-test.png');
    await chooseFile(page, file);
    await expect(page.locator('#upload-label')).toContainText('e2e-journey-test.png');
    await expect(page.locator('#upload-dropzone')).toHaveClass(/\bhas-file\b/);
    await page.locator('#upload-btn').click();

    const card = mediaCard(page, file.name);
    await expect(card).toBeVisible({ timeout: SAGA_TIMEOUT });
    await expect(page.locator('#upload-status')).toHaveText('✓ Upload complete');
    await expect(page.locator('#credit-count')).toHaveText('1', { timeout: 30_000 });
    await expect(card.locator('.file-meta')).toContainText('image');
    // The selection is reset for the next upload.
    await expect(page.locator('#upload-label')).toHaveText('Choose a file or drag it here');
    await expect(page.locator('#upload-btn')).toBeDisabled();

    await card.locator('.btn-delete').click();
    await expect(page.locator('#delete-modal')).toBeVisible();
    await expect(page.locator('#delete-modal-filename')).toHaveText(file.name);
    await page.locator('#delete-confirm-input').fill('delete');
    await page.locator('#delete-confirm-btn').click();
    await expect(page.locator('#delete-modal')).toBeHidden();

    await expect(card).toHaveCount(0, { timeout: 30_000 });
    await expect(page.locator('#upload-status')).toHaveText(`✓ Deleted ${file.name}`);
    await expect(page.locator('#media-list .media-empty')).toHaveText('No files uploaded yet.');
    // Deleting refunds nothing: the credit stays spent.
    await expect(page.locator('#credit-count')).toHaveText('1');
  });

  test('download opens the signed URL in a new tab and serves the uploaded bytes', async ({ page, context, request, users }) => {
    await users.signUp(page, 'download');
    await expectSignupCredits(page);
    const file = pngFile(`download-${randomTag()}.png`);
    const card = await uploadThroughPage(page, file);

    const popupPromise = context.waitForEvent('page', { timeout: SAGA_TIMEOUT });
    popupPromise.catch(() => {}); // awaited below, after the status tells how the saga went
    await card.locator('.btn-download').click();
    await expect(page.locator('#upload-status')).toContainText(`Download ready: ${file.name}`, {
      timeout: SAGA_TIMEOUT,
    });
    const popup = await popupPromise;
    await popup.waitForLoadState('domcontentloaded');
    const url = popup.url();
    expect(url).toMatch(/^https?:\/\//);
    // The signed URL names the file (URL-encoded in the object key).
    expect(decodeURIComponent(new URL(url).pathname)).toContain(file.name);

    // The page also offers the link, in case the tab was blocked.
    await expect(page.locator('#upload-status a.status-link')).toHaveAttribute('href', url);

    const response = await request.get(url);
    expect(response.status()).toBe(200);
    expect(Buffer.compare(await response.body(), file.buffer), 'downloaded bytes equal the uploaded ones').toBe(0);
    await popup.close();
  });

  test('a file name that is markup is shown as text, never parsed', async ({ page, users }) => {
    const dialogs = [];
    page.on('dialog', (dialog) => {
      dialogs.push(`${dialog.type()}: ${dialog.message()}`);
      void dialog.dismiss();
    });
    // Probes: an injected handler would call alert (recorded), and a blocked inline handler
    // would still raise a CSP violation.
    await page.addInitScript(() => {
      window.__xss = undefined;
      window.__cspViolations = [];
      const original = window.alert;
      window.alert = (...args) => {
        window.__xss = `alert(${args.join(',')})`;
        return original.apply(window, args);
      };
      document.addEventListener('securitypolicyviolation', (event) => {
        window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
      });
    });

    await users.signUp(page, 'xss');
    await expectSignupCredits(page);
    const name = '<img src=x onerror=alert(1)>.png';
    const file = pngFile(name);
    await chooseFile(page, file);
    await page.locator('#upload-btn').click();

    const fileName = page.locator('#media-list .media-file-card .file-name');
    await expect(fileName).toHaveCount(1, { timeout: SAGA_TIMEOUT });
    expect(await fileName.textContent()).toBe(name);
    await expect(fileName).toHaveAttribute('title', name);
    // The completion notification carries the name too, as text.
    await expect(page.locator('#notifications-list')).toContainText(`Upload complete: ${name}`);

    await expect(page.locator('#media-list img')).toHaveCount(0);
    await expect(page.locator('img[src="x"]')).toHaveCount(0);
    await expect(page.locator('#notifications-list img')).toHaveCount(0);
    expect(dialogs).toEqual([]);
    expect(await page.evaluate(() => window.__xss)).toBeUndefined();
    expect(await page.evaluate(() => window.__cspViolations)).toEqual([]);

    // The delete modal shows it as text as well.
    await page.locator('#media-list .media-file-card .btn-delete').click();
    await expect(page.locator('#delete-modal-filename')).toHaveText(name);
    await expect(page.locator('#delete-modal img')).toHaveCount(0);
    await page.locator('#delete-cancel-btn').click();
    expect(dialogs).toEqual([]);
  });

  test('an upload without credits is rejected and adds no file', async ({ page, users }) => {
    const user = await users.signUp(page, 'nocredit');
    await expectSignupCredits(page);
    // Spend both credits behind the page's back: the page still shows 2 and lets the user try,
    // so the rejection has to come from the platform.
    await drainCredits(user.id, 2);
    expect(await balanceOf(user.id)).toBe(0);

    const file = pngFile(`rejected-${randomTag()}.png`);
    await chooseFile(page, file);
    await expect(page.locator('#upload-btn')).toBeEnabled();
    await page.locator('#upload-btn').click();

    const status = page.locator('#upload-status');
    // The intent is accepted (202: the gateway does not check credits on the saga route) and
    // the credit check answers media.upload_rejected, which the page shows as it is. (A 402
    // would show "Insufficient credits to upload.".)
    await expect(status).toHaveText('Upload rejected: insufficient_credits', { timeout: SAGA_TIMEOUT });
    await expect(status).toHaveClass(/\berror\b/);
    await expect(page.locator('#notifications-list')).toContainText('❌ Upload rejected: insufficient_credits');
    await expect(page.locator('#media-list .media-file-card')).toHaveCount(0);
    await expect(page.locator('#media-list .media-empty')).toHaveText('No files uploaded yet.');
    // Nothing was deducted on the way.
    expect(await balanceOf(user.id)).toBe(0);

    // Once the page reads the balance again it shows the empty badge and keeps upload off.
    await page.reload();
    await expect(page.locator('#credit-count')).toHaveText('0');
    await expect(page.locator('#credit-badge')).toHaveClass(/\bempty\b/);
    await expect(status).toHaveText('No credits remaining…');
    await chooseFile(page, pngFile(`again-${randomTag()}.png`));
    await expect(page.locator('#upload-btn')).toBeDisabled();
  });
});
