import fs from 'node:fs';
import path from 'node:path';
import { expect, Page } from '@playwright/test';

export const ADMIN = 'admin@demo.passhook.test';
export const MARKETER = 'marketer@demo.passhook.test';
export const PASSWORD = 'e2e-demo-password';

/**
 * Collects uncaught errors in the page (a broken WASM build shows here) and anything
 * the Content Security Policy refused (Chromium reports it on the console), so
 * every story that checks `errors` also proves the policy lets the console work.
 */
export function watchForErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content[- ]Security[- ]Policy/i.test(message.text())) {
      errors.push(`CSP: ${message.text()}`);
    }
  });
  return errors;
}

/**
 * Records every `securitypolicyviolation` event of every document the page loads
 * (the listener is installed before any of the page's own scripts run); read them
 * with `cspViolations`.
 */
export async function watchForCspViolations(page: Page) {
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { __cspViolations: string[] }).__cspViolations = seen;
    document.addEventListener('securitypolicyviolation', (e) => {
      seen.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
}

/** The violations the current document saw so far. */
export async function cspViolations(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __cspViolations?: string[] }).__cspViolations ?? []);
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

/** The Actito sample payloads (fixtures/actito, copied from the product documentation). */
export function sample(name: string): unknown {
  const file = path.join(__dirname, '..', '..', 'fixtures', 'actito', name);
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** Opens a console page from the main navigation. */
export async function navigate(page: Page, label: string) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label }).click();
}
