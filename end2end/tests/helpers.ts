import fs from 'node:fs';
import path from 'node:path';
import { expect, Page } from '@playwright/test';

export const ADMIN = 'admin@demo.passhook.test';
export const MARKETER = 'marketer@demo.passhook.test';
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
  // Signed in (the session cookie is set) or refused with a message.
  await page.waitForURL((url) => !url.pathname.startsWith('/login') || url.searchParams.has('error'));
}

/** The Actito sample payloads shipped with the product documentation. */
export function sample(name: string): unknown {
  const file = path.join(__dirname, '..', '..', '..', 'shared', 'spec', 'samples', name);
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** Opens a console page from the main navigation. */
export async function navigate(page: Page, label: string) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label }).click();
}
