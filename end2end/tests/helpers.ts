import { expect, Page } from '@playwright/test';

export const ADMIN = 'admin@demo.passhook.test';
export const PASSWORD = 'e2e-demo-password';

/** Fails the test on any uncaught error in the page (a broken WASM build shows here). */
export function watchForErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

/** Waits until the console has hydrated, i.e. the WASM bundle loaded and ran. */
export async function hydrated(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

export async function signIn(page: Page, email = ADMIN, password = PASSWORD) {
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
