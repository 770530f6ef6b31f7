import { expect, test } from '@playwright/test';
import { ADMIN, hydrated, watchForErrors } from './helpers';

test('an admin signs in with SSO through the OpenID provider and lands where they wanted to go', async ({ page }) => {
  const errors = watchForErrors(page);
  await page.goto('/passes');
  await expect(page).toHaveURL(/\/login\?next=/);
  await hydrated(page);
  await page.getByRole('link', { name: 'Sign in with SSO' }).click();
  await expect(page).toHaveTitle('Fake IdP');
  await page.getByLabel('Email').fill(ADMIN.toUpperCase());
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page).toHaveURL(/\/passes$/);
  await expect(page.getByTestId('user-email')).toHaveText(ADMIN);
  await expect(page.getByTestId('pass-table')).toBeVisible();
  expect(errors).toEqual([]);
});

test('SSO for an email without a Passhook account signs nobody in', async ({ page }) => {
  const errors = watchForErrors(page);
  await page.goto('/login');
  await hydrated(page);
  await page.getByRole('link', { name: 'Sign in with SSO' }).click();
  await page.getByLabel('Email').fill('stranger@elsewhere.test');
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page).toHaveURL(/\/login\?error=sso-unknown/);
  await expect(page.getByRole('alert')).toContainText('no Passhook account has that email');
  await page.goto('/');
  await expect(page).toHaveURL(/\/login/);
  expect(errors).toEqual([]);
});

test('a callback that did not start in this browser is refused', async ({ page }) => {
  const errors = watchForErrors(page);
  await page.goto('/auth/sso/callback?code=stolen&state=forged');
  await expect(page).toHaveURL(/\/login\?error=sso-failed/);
  await page.goto('/');
  await expect(page).toHaveURL(/\/login/);
  expect(errors).toEqual([]);
});
