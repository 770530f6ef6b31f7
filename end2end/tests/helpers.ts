import fs from 'node:fs';
import path from 'node:path';
import { expect, Page } from '@playwright/test';

export const ADMIN = 'admin@demo.passhook.test';
export const MARKETER = 'marketer@demo.passhook.test';
export const PASSWORD = 'e2e-demo-password';
/** The demo tenant's Actito custom-action listener. */
export const LISTENER = '/api/demo/webhooks/listeners/actito/custom-actions/updatePass';

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

/** A new ActitoListener.Write key, created through the admin's console session. */
export async function listenerKey(page: Page): Promise<string> {
  const answer = await page.request.post('/console/fn/create_key', {
    data: { name: `e2e activity ${Date.now()}`, scopes: ['ActitoListener.Write'] },
  });
  expect(answer.status()).toBe(200);
  return (await answer.json()).Done.key;
}

/**
 * The ONE_BY_ONE sample with a fresh envelope id, aimed at a demo customer (and
 * setting their points, when given). Its callbacks go to a host no tenant allows, so
 * each is recorded as a failed delivery without any call leaving the machine.
 */
export function envelope(id: string, points?: number) {
  const body = sample('custom-action-trigger-one-by-one.json') as any;
  body.id = id;
  if (points !== undefined) body.data['actionParameters.points'] = points;
  body.data['profileAttributes.emailAddress'] = 'john.smith@example.com';
  body.data._links.notifyOK.href = `https://callbacks.invalid/ca/OK_${id}`;
  body.data._links.notifyKO.href = `https://callbacks.invalid/ca/KO_${id}`;
  return body;
}

/** Who looks at the console: admins see every page, marketers the activity pages. */
export type Role = 'admin' | 'marketer';

const ADMIN_ONLY = ['/integrations', '/integrations/actito', '/integrations/sfmc', '/integrations/wallet', '/api-keys', '/people'];
const EVERYONE = ['/', '/passes', '/journeys', '/audit', '/push-history', '/account'];

/**
 * Every console page the role may open, with one detail page of each kind (a pass,
 * an event, a journey) found from its list. Needs a signed-in `page`.
 */
export async function consolePages(page: Page, role: Role): Promise<string[]> {
  const pages = role === 'admin' ? [...EVERYONE, ...ADMIN_ONLY] : [...EVERYONE];
  for (const [list, prefix] of [['/passes', '/passes/'], ['/audit', '/audit/'], ['/journeys', '/journeys/']]) {
    await page.goto(list);
    await hydrated(page);
    const link = page.locator(`main a[href^="${prefix}"]`).first();
    await expect(link, `a link to one of ${list}`).toBeVisible();
    pages.push((await link.getAttribute('href'))!);
  }
  return pages;
}

/**
 * Opens a console page and waits until it has hydrated, its lists have loaded and
 * their entrance animations (new rows fade in) have ended: audits measure the page as
 * people read it, not half-faded.
 */
export async function openLoaded(page: Page, path: string) {
  await page.goto(path);
  await hydrated(page);
  await expect(page.locator('.skeleton')).toHaveCount(0);
  await page.waitForFunction(
    () => document.getAnimations().every((a) => a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity),
    undefined,
    { timeout: 10_000 },
  );
}

/**
 * Activity for the pages to show, as an admin makes it: an Actito custom action (an
 * event, and a failed callback delivery with its error) and an SFMC test execute (a
 * journey). `page` is signed in as an admin.
 */
export async function seedActivity(page: Page) {
  const run = `${Date.now()}`;
  const key = await listenerKey(page);
  const sent = await page.request.post(LISTENER, {
    headers: { 'X-API-KEY': key },
    data: envelope(`e2e-seed-${run}`),
  });
  expect(sent.status()).toBe(200);

  // A secret of its own: a key sharing another story's secret would verify its calls.
  const keyId = `e2e-seed-${run}`;
  const added = await page.request.post('/console/fn/add_signing_key', {
    form: { id: keyId, secret: `e2e seed secret ${run}` },
  });
  expect(added.status()).toBe(200);
  const executed = await page.request.post('/console/fn/test_execute', {
    data: {
      call: {
        key_id: keyId,
        pass_id: '',
        email: 'lucas.peeters@example.com',
        additional_data: [['tier', 'Gold']],
        message: 'Seeded by the end-to-end stories',
      },
    },
  });
  expect(executed.status()).toBe(200);
}
