// Messages and the notification feed over Realtime, what another user can see (the RLS of
// user_notifications and media_files), and the README screenshot.

import path from 'node:path';
import {
  API_GATEWAY_URL,
  REALTIME_TIMEOUT,
  REPO_ROOT,
  expect,
  expectSignupCredits,
  mediaCard,
  pngFile,
  randomTag,
  restAs,
  sendMessage,
  sessionOf,
  test,
  uploadThroughPage,
} from './helpers.js';

/** The feed line of a user.message (render.js formatNotification). */
function messageLine(email, message) {
  return `💬 ${email.split('@')[0]}: ${message}`;
}

test.describe('messages', () => {
  test('a message sent from the page appears in the feed through Realtime', async ({ page, users }) => {
    const user = await users.signUp(page, 'message');
    await expectSignupCredits(page);
    const message = `hello from the browser ${randomTag()}`;
    await sendMessage(page, message);
    const item = page.locator('#notifications-list .notification-item', { hasText: message });
    await expect(item).toHaveCount(1, { timeout: REALTIME_TIMEOUT });
    await expect(item).toHaveText(messageLine(user.email, message));
    await expect(page.locator('#notification-empty')).toBeHidden();
  });

  test('another user sees none of A\'s files or private events, only broadcast messages', async ({
    page,
    browser,
    request,
    users,
  }) => {
    test.setTimeout(90_000);
    // B first, in a separate browser context, so its live channel is open while A acts.
    const contextB = await browser.newContext();
    try {
      const pageB = await contextB.newPage();
      const userB = await users.signUp(pageB, 'iso-b');
      await expectSignupCredits(pageB);

      const userA = await users.signUp(page, 'iso-a');
      await expectSignupCredits(page);
      const file = pngFile(`private-${randomTag()}.png`);
      await uploadThroughPage(page, file);

      // A direct message from A to A (the page only sends broadcasts, so through the gateway
      // with A's token), then a broadcast from the page.
      const tokenA = (await sessionOf(page)).access_token;
      const direct = `direct to self ${randomTag()}`;
      const sent = await request.post(`${API_GATEWAY_URL}/api/v1/events/message`, {
        headers: { Authorization: `Bearer ${tokenA}` },
        data: { message: direct, timestamp: new Date().toISOString(), visibility: 'direct', recipient_id: userA.id },
      });
      expect(sent.status(), await sent.text()).toBeLessThan(300);
      await expect(page.locator('#notifications-list')).toContainText(messageLine(userA.email, direct), {
        timeout: REALTIME_TIMEOUT,
      });
      const broadcast = `broadcast from A ${randomTag()}`;
      await sendMessage(page, broadcast);
      await expect(page.locator('#notifications-list')).toContainText(messageLine(userA.email, broadcast), {
        timeout: REALTIME_TIMEOUT,
      });

      // Broadcast user.message rows are visible to every authenticated user: B gets A's live.
      // It was written after A's other events, so by now those reached B's channel too.
      const listB = pageB.locator('#notifications-list');
      await expect(listB).toContainText(messageLine(userA.email, broadcast), { timeout: REALTIME_TIMEOUT });

      /** What B's page must never show of A. */
      async function expectNothingPrivateOfA() {
        await expect(pageB.locator('#media-list .media-file-card')).toHaveCount(0);
        await expect(mediaCard(pageB, file.name)).toHaveCount(0);
        await expect(pageB.locator('#media-list .media-empty')).toHaveText('No files uploaded yet.');
        await expect(listB).not.toContainText(file.name); // media.upload_completed of A
        await expect(listB).not.toContainText(userA.id); // media.upload_ready carries A's path
        await expect(listB).not.toContainText(direct); // A's direct message to A
      }
      await expectNothingPrivateOfA();

      // The same after a reload, which reads the feed's history over REST.
      await pageB.reload();
      await expect(listB).toContainText(messageLine(userA.email, broadcast), { timeout: REALTIME_TIMEOUT });
      await expectNothingPrivateOfA();

      // Precisely what RLS lets B read of A: only A's broadcast user.message rows.
      const tokenB = (await sessionOf(pageB)).access_token;
      const rowsOfA = await restAs(
        request,
        tokenB,
        `user_notifications?select=event_type,visibility,recipient_id,payload&user_id=eq.${userA.id}`,
      );
      expect(rowsOfA.length).toBeGreaterThan(0);
      for (const row of rowsOfA) {
        expect(row, 'B reads only broadcast messages of A').toMatchObject({ event_type: 'user.message', visibility: 'broadcast' });
      }
      const messagesOfA = rowsOfA.map((row) => JSON.parse(row.payload).message);
      expect(messagesOfA).toContain(broadcast);
      expect(messagesOfA).not.toContain(direct);
      expect(await restAs(request, tokenB, `media_files?select=id&user_id=eq.${userA.id}`)).toEqual([]);
      expect(await restAs(request, tokenB, `credit_ledger?select=id&user_id=eq.${userA.id}`)).toEqual([]);
      expect(await restAs(request, tokenB, `user_credit_balances?select=balance&user_id=eq.${userA.id}`)).toEqual([]);
      // B still reads its own.
      const ownB = await restAs(request, tokenB, `user_notifications?select=event_type&user_id=eq.${userB.id}`);
      expect(ownB.map((row) => row.event_type)).toContain('identity.signup');

      // Control: the rows B cannot see exist, and A reads them.
      const ownA = await restAs(request, tokenA, `user_notifications?select=event_type,payload&user_id=eq.${userA.id}`);
      const typesA = ownA.map((row) => row.event_type);
      expect(typesA).toEqual(expect.arrayContaining(['identity.signup', 'credit.balance_changed', 'media.upload_ready', 'media.upload_completed', 'user.message']));
      expect(ownA.map((row) => JSON.parse(row.payload).message)).toContain(direct);
      const filesA = await restAs(request, tokenA, `media_files?select=file_name&user_id=eq.${userA.id}`);
      expect(filesA).toEqual([{ file_name: file.name }]);
    } finally {
      await contextB.close();
    }
  });

  test('home view screenshot (written to SCREENSHOT_PATH when set)', async ({ page, users }) => {
    test.setTimeout(90_000);
    await page.setViewportSize({ width: 1280, height: 860 });
    const user = await users.signUp(page, 'screenshot');
    await expectSignupCredits(page);
    // A file in the list and a message in the feed, so the picture shows both sagas' results.
    await uploadThroughPage(page, pngFile('holiday-photo.png'));
    const message = 'Hello from the browser tests 👋';
    await sendMessage(page, message);
    await expect(page.locator('#notifications-list .notification-item').first()).toHaveText(
      messageLine(user.email, message),
      { timeout: REALTIME_TIMEOUT },
    );
    await expect(page.locator('#home-view')).toBeVisible();
    const target = process.env.SCREENSHOT_PATH;
    if (target) {
      // Relative paths are taken from the repository root (docs/images/frontend.png).
      await page.screenshot({ path: path.resolve(REPO_ROOT, target), fullPage: true, animations: 'disabled' });
    }
  });
});
