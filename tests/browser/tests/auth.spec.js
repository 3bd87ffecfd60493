// The auth view and signup (spec 11.2: initial render, toggle, signup, signup credits).

import { expect, expectSignupCredits, test } from './helpers.js';

test.describe('auth view', () => {
  test('initial render shows the login form and hides home', async ({ page }) => {
    await page.goto('/');
    await expect(page.locator('#auth-view')).toBeVisible();
    await expect(page.locator('#home-view')).toBeHidden();
    await expect(page.locator('#email')).toBeVisible();
    await expect(page.locator('#password')).toBeVisible();
    await expect(page.locator('#submit-btn')).toBeVisible();
    await expect(page.locator('#submit-btn')).toHaveText('Log In');
    await expect(page.locator('#form-title')).toHaveText('Welcome back');
    // The page is configured (anon key set): no configuration error, submit usable.
    await expect(page.locator('#alert-box')).toBeHidden();
    await expect(page.locator('#submit-btn')).toBeEnabled();
  });

  test('toggle switches to sign-up mode and back', async ({ page }) => {
    await page.goto('/');
    await page.locator('#toggle-mode').click();
    await expect(page.locator('#submit-btn')).toHaveText('Sign Up');
    await expect(page.locator('#form-title')).toHaveText('Create an account');
    await expect(page.locator('#toggle-mode')).toHaveText('Log in');
    await page.locator('#toggle-mode').click();
    await expect(page.locator('#submit-btn')).toHaveText('Log In');
    await expect(page.locator('#form-title')).toHaveText('Welcome back');
  });

  test('signup shows the home view with a greeting', async ({ page, users }) => {
    const user = await users.signUp(page, 'signup');
    await expect(page.locator('#auth-view')).toBeHidden();
    await expect(page.locator('#welcome-message')).toContainText('Hello');
    await expect(page.locator('#welcome-message')).toContainText(user.email.split('@')[0]);
  });

  test('signup credits arrive over Realtime', async ({ page, users }) => {
    await users.signUp(page, 'credits');
    await expectSignupCredits(page);
    await expect(page.locator('#credit-badge')).not.toHaveClass(/\bempty\b/);
    await expect(page.locator('#upload-status')).not.toContainText('No credits remaining');
  });
});
