import { expect, test } from '@playwright/test';
import { cspViolations, hydrated, navigate, signIn, watchForCspViolations, watchForErrors } from './helpers';

// The console sends a Content Security Policy without 'unsafe-inline' for scripts:
// its inline hydration scripts carry the response's nonce. Every page must still
// hydrate and work with no violation reported.
test('the console hydrates under its Content Security Policy without a single violation', async ({ page }) => {
  // Ten full page loads, each hydrating the bundle anew (slow with a debug build).
  test.setTimeout(120_000);
  const errors = watchForErrors(page);
  await watchForCspViolations(page);

  const login = await page.goto('/login');
  const policy = login!.headers()['content-security-policy'];
  expect(policy).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9_-]{22,}' 'wasm-unsafe-eval'/);
  expect(policy).not.toMatch(/script-src[^;]*'unsafe-inline'/);
  expect(policy).toContain("frame-ancestors 'none'");
  await hydrated(page);
  expect(await cspViolations(page)).toEqual([]);

  await signIn(page);
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
  expect(await cspViolations(page)).toEqual([]);

  // Full page loads (server-rendered, streamed resources, then hydration)…
  for (const path of ['/passes', '/audit', '/push-history', '/integrations/sfmc', '/integrations/actito', '/integrations/wallet', '/api-keys', '/people']) {
    await page.goto(path);
    await hydrated(page);
    expect(await cspViolations(page), path).toEqual([]);
  }
  // …and client-side navigation, which fetches server functions and opens the live feed.
  await navigate(page, 'Dashboard');
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
  await navigate(page, 'Passes');
  await expect(page.getByTestId('pass-table').locator('tbody tr').first()).toBeVisible();
  await page.getByTestId('pass-table').locator('tbody tr').first().getByRole('link').click();
  await expect(page).toHaveURL(/\/passes\/pass_/);
  await expect(page.getByTestId('pass-data')).toBeVisible();
  expect(await cspViolations(page)).toEqual([]);
  expect(errors).toEqual([]);

  // The watchers do see a violation: an inline script without the nonce is refused.
  await page.addScriptTag({ content: 'window.__injected = true;' }).catch(() => {});
  await expect.poll(() => cspViolations(page)).toHaveLength(1);
  expect(await page.evaluate(() => (window as unknown as { __injected?: boolean }).__injected)).toBeUndefined();
  await expect.poll(() => errors.filter((e) => e.startsWith('CSP:')).length).toBeGreaterThan(0);
});

test('the SFMC activity page may be framed by Journey Builder only, and runs under its policy', async ({ page }) => {
  const errors = watchForErrors(page);
  await watchForCspViolations(page);
  const response = await page.goto('/api/demo/webhooks/listeners/sfmc/actions/pushupdate/');
  const headers = response!.headers();
  expect(headers['content-security-policy']).toContain(
    'frame-ancestors https://*.exacttarget.com https://*.marketingcloudapps.com',
  );
  expect(headers['x-frame-options']).toBeUndefined();
  await page.waitForLoadState('load');
  expect(await cspViolations(page)).toEqual([]);
  expect(errors).toEqual([]);
});
