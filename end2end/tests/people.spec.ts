import { expect, test } from '@playwright/test';
import { hydrated, navigate, signIn, watchForErrors } from './helpers';

test('an admin adds a marketer, who signs in, changes their password and signs out everywhere; the admin then disables them', async ({ page, browser }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  await navigate(page, 'People');
  await hydrated(page);
  await page.getByLabel('Email').fill('mia@demo.passhook.test');
  await page.getByRole('button', { name: 'Add person' }).click();
  const row = page.getByTestId('people-table').locator('tr', { hasText: 'mia@demo.passhook.test' });
  await expect(row).toContainText('Active');
  await expect(row.getByTestId('role')).toHaveText('Marketer');
  // A new account: the admin gets a one-time link and never chooses the password.
  const link = await page.getByTestId('setup-link').textContent();
  expect(link).toMatch(/\/welcome\?token=/);
  await expect(page.getByTestId('history')).toContainText('Added mia@demo.passhook.test');

  // Mia, in her own browser, chooses her password with the link and is signed in.
  const mia = await (await browser.newContext()).newPage();
  await mia.goto(new URL(link!).pathname + new URL(link!).search);
  await hydrated(mia);
  await expect(mia.getByText('mia@demo.passhook.test')).toBeVisible();
  await mia.getByLabel('Password').fill('short');
  await mia.getByRole('button', { name: 'Set password and sign in' }).click();
  await expect(mia.locator('#password-error')).toContainText('at least 10 characters');
  await mia.getByLabel('Password').fill('first mia password');
  await mia.getByRole('button', { name: 'Set password and sign in' }).click();
  await expect(mia.getByTestId('user-email')).toHaveText('mia@demo.passhook.test');
  await expect(mia.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'People' })).toHaveCount(0);
  // The link is used up.
  const again = await (await browser.newContext()).newPage();
  await again.goto(new URL(link!).pathname + new URL(link!).search);
  await expect(again.getByRole('alert')).toContainText('no longer works');
  const other = await (await browser.newContext()).newPage();
  await signIn(other, 'mia@demo.passhook.test', 'first mia password');
  await mia.getByTestId('user-email').click();
  await hydrated(mia);
  await mia.getByLabel('Current password').fill('first mia password');
  await mia.getByLabel('New password').fill('second mia password');
  await mia.getByRole('button', { name: 'Change password' }).click();
  await expect(mia.getByRole('status').filter({ hasText: 'Password changed' })).toBeVisible();
  // Her other session ended with the change; this one goes on.
  await other.goto('/passes');
  await expect(other).toHaveURL(/\/login/);
  await mia.goto('/passes');
  await expect(mia).toHaveURL(/\/passes$/);
  await mia.goto('/account');
  await hydrated(mia);
  await mia.getByRole('button', { name: 'Sign out everywhere' }).click();
  await expect(mia).toHaveURL(/\/login/);

  // The admin promotes her, then takes her access away.
  await page.getByRole('button', { name: 'Make admin: mia@demo.passhook.test' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Role changed' })).toBeVisible();
  await expect(row.getByTestId('role')).toHaveText('Admin');
  await page.getByRole('button', { name: 'Disable mia@demo.passhook.test' }).click();
  await expect(row).toContainText('Disabled');
  await expect(page.getByTestId('history')).toContainText('Changed the role of mia@demo.passhook.test');
  await signIn(mia, 'mia@demo.passhook.test', 'second mia password');
  await expect(mia.getByRole('alert')).toHaveText('Wrong email or password.');
  expect(errors).toEqual([]);
});

test('the last admin cannot demote themselves', async ({ page }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  await page.goto('/people');
  await hydrated(page);
  await page.getByRole('button', { name: 'Make marketer: admin@demo.passhook.test' }).click();
  await expect(page.getByRole('alert')).toContainText('at least one active admin');
  const row = page.getByTestId('people-table').locator('tr', { hasText: 'admin@demo.passhook.test' });
  await expect(row.getByTestId('role')).toHaveText('Admin');
  expect(errors).toEqual([]);
});

test('repeated wrong passwords lock the account for a while, even with the right one', async ({ page, browser }) => {
  const errors = watchForErrors(page);
  // An account of its own: no other story finds a demo login locked.
  await signIn(page);
  await navigate(page, 'People');
  await hydrated(page);
  await page.getByLabel('Email').fill('lockout@demo.passhook.test');
  await page.getByRole('button', { name: 'Add person' }).click();
  const link = new URL((await page.getByTestId('setup-link').textContent())!);
  const person = await (await browser.newContext()).newPage();
  await person.goto(link.pathname + link.search);
  await hydrated(person);
  await person.getByLabel('Password').fill('the lockout password');
  await person.getByRole('button', { name: 'Set password and sign in' }).click();
  await expect(person.getByTestId('user-email')).toHaveText('lockout@demo.passhook.test');

  const guesser = await (await browser.newContext()).newPage();
  for (let i = 0; i < 5; i++) {
    await signIn(guesser, 'lockout@demo.passhook.test', `wrong password ${i}`);
    await expect(guesser.getByRole('alert')).toHaveText('Wrong email or password.');
  }
  await signIn(guesser, 'lockout@demo.passhook.test', 'the lockout password');
  await expect(guesser.getByRole('alert')).toContainText('Too many failed sign-ins');
  await guesser.goto('/');
  await expect(guesser).toHaveURL(/\/login/);
  expect(errors).toEqual([]);
});
