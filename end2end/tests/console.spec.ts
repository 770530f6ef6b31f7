import { expect, test } from '@playwright/test';
import { ADMIN, hydrated, signIn, watchForErrors } from './helpers';

test('an admin signs in, sees the dashboard and the seeded passes, searches one and signs out', async ({ page }) => {
  const errors = watchForErrors(page);
  await signIn(page);

  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
  await expect(page.getByTestId('stat-passes')).toHaveText('12');
  await expect(page.getByTestId('user-email')).toHaveText(ADMIN);

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Passes' }).click();
  await expect(page).toHaveURL(/\/passes$/);
  const rows = page.getByTestId('pass-table').locator('tbody tr');
  await expect(rows).toHaveCount(12);
  await expect(page.getByTestId('pass-count')).toHaveText('1–12 of 12');

  await page.getByLabel('Search passes').fill('lucas.peeters');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page).toHaveURL(/q=lucas\.peeters/);
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('lucas.peeters@example.com');
  await expect(rows.first()).toContainText('CUST-1004');
  await rows.first().getByRole('link').click();
  await expect(page).toHaveURL(/\/passes\/pass_/);
  await expect(page.getByTestId('pass-data')).toContainText('Lucas');
  await page.goBack();
  await expect(rows).toHaveCount(1);

  await page.getByLabel('Search passes').fill('nobody-like-this');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.getByText('No pass matches')).toBeVisible();

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login/);
  await page.goto('/passes');
  await expect(page).toHaveURL(/\/login\?next=/);
  expect(errors).toEqual([]);
});

test('a wrong password shows an error and does not sign in', async ({ page }) => {
  const errors = watchForErrors(page);
  await signIn(page, ADMIN, 'not-the-password');
  await expect(page.getByRole('alert')).toHaveText('Wrong email or password.');
  await page.goto('/');
  await expect(page).toHaveURL(/\/login/);
  expect(errors).toEqual([]);
});

test('signing in returns to the page that asked for it', async ({ page }) => {
  const errors = watchForErrors(page);
  await page.goto('/passes?q=jane');
  await expect(page).toHaveURL(/\/login\?next=/);
  await hydrated(page);
  await page.getByLabel('Email').fill(ADMIN);
  await page.getByLabel('Password').fill('e2e-demo-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/passes\?q=jane/);
  await expect(page.getByTestId('pass-table').locator('tbody tr')).toHaveCount(1);
  expect(errors).toEqual([]);
});
