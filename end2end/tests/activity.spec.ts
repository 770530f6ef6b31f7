import fs from 'node:fs';
import { APIRequestContext, expect, test } from '@playwright/test';
import { LISTENER, MARKETER, envelope, hydrated, listenerKey, navigate, signIn, watchForErrors } from './helpers';

async function send(request: APIRequestContext, key: string | null, body: unknown) {
  const headers: Record<string, string> = key ? { 'X-API-KEY': key } : {};
  return request.post(LISTENER, { headers, data: body });
}

test('the audit page shows new requests live, with the cause of a rejection, and replays an event as a linked record', async ({ page, request }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  const key = await listenerKey(page);
  await navigate(page, 'Audit');
  await hydrated(page);
  await expect(page.getByTestId('live-badge')).toHaveText('Live');

  const id = `e2e-live-${Date.now()}`;
  const accepted = await send(request, key, envelope(id, 7));
  expect(accepted.status()).toBe(200);
  const eventId = (await accepted.json()).eventId;
  // No reload: the row arrives through the live stream.
  const row = page.locator(`tr[data-event-id="${eventId}"]`);
  await expect(row).toBeVisible({ timeout: 1_000 });
  await expect(row).toContainText('custom-action.updatePass');

  const refused = await send(request, null, envelope(`${id}-anon`, 1));
  expect(refused.status()).toBe(401);
  const refusedRow = page.getByTestId('event-table').locator('tbody tr').filter({ hasText: 'UNAUTHENTICATED' }).first();
  await expect(refusedRow).toBeVisible({ timeout: 1_000 });
  await expect(refusedRow).toContainText('rejected');

  // Detail: payload, redacted key, the pass it changed; then replay.
  await row.getByRole('link').click();
  await expect(page).toHaveURL(new RegExp(`/audit/${eventId}$`));
  await hydrated(page);
  await expect(page.getByTestId('payload')).toContainText(id);
  await expect(page.getByTestId('headers')).toContainText('[redacted]');
  await expect(page.getByTestId('pass-updates')).toContainText('points');
  await page.getByTestId('replay').click();
  await expect(page).not.toHaveURL(new RegExp(`/audit/${eventId}$`));
  await expect(page.getByTestId('replay-of')).toHaveText(eventId);
  const replayId = (await page.getByTestId('event-id').textContent())!.trim();
  expect(replayId).not.toBe(eventId);
  await page.getByTestId('replay-of').click();
  await expect(page.getByTestId('replays')).toContainText(replayId);

  // The refused request's detail: its cause, and no stored body.
  await page.goto('/audit?reason=UNAUTHENTICATED');
  await page.getByTestId('event-table').locator('tbody tr').first().getByRole('link').click();
  await expect(page.getByTestId('cause')).toHaveText('UNAUTHENTICATED');
  await expect(page.getByTestId('authentication')).toContainText('Refused');
  await expect(page.getByTestId('payload')).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('audit filters narrow the list and survive a reload', async ({ page, request }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  const key = await listenerKey(page);
  const tag = `e2e-filter-${Date.now()}`;
  expect((await send(request, key, envelope(tag, 3))).status()).toBe(200);
  expect((await send(request, null, envelope(`${tag}-x`, 3))).status()).toBe(401);

  await navigate(page, 'Audit');
  await hydrated(page);
  await page.getByLabel('Status').selectOption('rejected');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/status=rejected/);
  const rows = page.getByTestId('event-table').locator('tbody tr');
  await expect
    .poll(async () => {
      const texts = await rows.allTextContents();
      return texts.length > 0 && texts.every((t) => t.includes('rejected'));
    })
    .toBe(true);

  await page.getByLabel('Status').selectOption('');
  await page.getByLabel('Search').fill(tag);
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(new RegExp(`q=${tag}`));
  await expect(rows).toHaveCount(1);
  await page.reload();
  await expect(rows).toHaveCount(1);
  await expect(page.getByLabel('Search')).toHaveValue(tag);
  expect(errors).toEqual([]);
});

test('push history filters deliveries and exports the filtered rows as CSV', async ({ page, request }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  const key = await listenerKey(page);
  // Actito is told of each item through its callback: a delivery per request.
  expect((await send(request, key, envelope(`e2e-push-${Date.now()}`, 11))).status()).toBe(200);
  await navigate(page, 'Push history');
  await hydrated(page);
  await page.getByLabel('Channel').selectOption('actito-callback');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/channel=actito-callback/);
  const rows = page.getByTestId('delivery-table').locator('tbody tr');
  // The filtered table replaces the whole list once it has loaded.
  await expect
    .poll(async () => {
      const texts = await rows.allTextContents();
      return texts.length > 0 && texts.every((t) => t.includes('actito-callback'));
    })
    .toBe(true);
  const shown = await rows.count();

  const download = page.waitForEvent('download');
  await page.getByTestId('export-csv').click();
  const file = await (await download).path();
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  expect(lines[0]).toBe('id,created_at,channel,pass_id,event_id,target,status,attempts,last_status_code,last_latency_ms,last_error');
  expect(lines.length - 1).toBe(shown);
  for (const line of lines.slice(1)) expect(line.split(',')[2]).toBe('actito-callback');
  expect(errors).toEqual([]);
});

test('the dashboard counts the requests sent in the last hour', async ({ page, request }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  const key = await listenerKey(page);
  await page.goto('/');
  await hydrated(page);
  const number = async (id: string) => Number(await page.getByTestId(id).textContent());
  const before = { accepted: await number('stat-accepted'), rejected: await number('stat-rejected') };
  const tag = `e2e-dash-${Date.now()}`;
  for (let i = 0; i < 3; i++) expect((await send(request, key, envelope(`${tag}-${i}`, i))).status()).toBe(200);
  for (let i = 0; i < 2; i++) expect((await send(request, null, envelope(`${tag}-r${i}`, i))).status()).toBe(401);
  // Live: the figures follow without a reload.
  await expect(page.getByTestId('stat-accepted')).toHaveText(String(before.accepted + 3));
  await expect(page.getByTestId('stat-rejected')).toHaveText(String(before.rejected + 2));
  await page.reload();
  await expect(page.getByTestId('stat-accepted')).toHaveText(String(before.accepted + 3));
  expect(errors).toEqual([]);
});

test('a marketer sees the audit and push history but cannot replay or retry', async ({ page, request }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  const key = await listenerKey(page);
  const sent = await send(request, key, envelope(`e2e-marketer-${Date.now()}`, 5));
  const eventId = (await sent.json()).eventId;
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signIn(page, MARKETER);
  await page.goto(`/audit/${eventId}`);
  await hydrated(page);
  await expect(page.getByTestId('payload')).toBeVisible();
  await expect(page.getByTestId('replay')).toHaveCount(0);
  const forbidden = await page.request.post('/console/fn/replay_event', { form: { id: eventId } });
  expect(forbidden.status()).toBe(403);
  await navigate(page, 'Push history');
  await expect(page.getByRole('heading', { name: 'Push history' })).toBeVisible();
  await expect(page.getByTestId('retry-failed')).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('an admin sends a signed test event from the audit page and follows it to its detail', async ({ page }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  await navigate(page, 'Audit');
  await hydrated(page);
  await page.getByText('Send a test event').click();
  await page.getByLabel('Customer email').fill('not-an-email');
  await page.getByRole('button', { name: 'Send test event' }).click();
  await expect(page.locator('#email-error')).toContainText('email');

  await page.getByLabel('Customer email').fill('jane.smith@example.com');
  await page.getByLabel('Data (key=value, one per line)').fill('points=4321');
  await page.getByRole('button', { name: 'Send test event' }).click();
  await expect(page.getByTestId('test-result')).toContainText('Answered 200');
  await page.getByTestId('test-result').getByRole('link', { name: 'see the event' }).click();
  await expect(page.getByTestId('payload')).toContainText('jane.smith@example.com');
  await expect(page.getByTestId('authentication')).toContainText('API key');
  await expect(page.getByTestId('pass-updates')).toContainText('4321');

  // The same through SFMC, signed with a signing key added for the occasion.
  await page.goto('/integrations/sfmc');
  await hydrated(page);
  await page.getByLabel('Key id').fill('e2e-test-event');
  await page.getByLabel('Signing secret (salt)').fill('e2e-test-event-secret');
  await page.getByRole('button', { name: 'Add key' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Signing key added' })).toBeVisible();
  await page.goto('/audit');
  await hydrated(page);
  await page.getByText('Send a test event').click();
  await page.getByLabel('As').selectOption('sfmc');
  await page.getByLabel('Customer email').fill('jane.smith@example.com');
  await page.getByLabel('Data (key=value, one per line)').fill('tier=platinum');
  await page.getByRole('button', { name: 'Send test event' }).click();
  await expect(page.getByTestId('test-result')).toContainText('Answered 200');
  await page.getByTestId('test-result').getByRole('link', { name: 'see the event' }).click();
  await expect(page.getByTestId('authentication')).toContainText('JWT (HS256)');
  await expect(page.getByTestId('pass-updates')).toContainText('platinum');

  // The console's journey: its executions over time, and its contact leads back to the audit.
  // Journeys and Actito custom actions are listed apart, each under its heading.
  await navigate(page, 'Journeys');
  const actions = page.getByRole('region', { name: 'Actito custom actions' });
  await expect(actions.getByRole('link', { name: 'updatePass', exact: true })).toBeVisible();
  const journeys = page.getByRole('region', { name: 'Journey Builder journeys' });
  await expect(journeys.getByRole('link', { name: 'updatePass' })).toHaveCount(0);
  await journeys.getByRole('link', { name: 'console-test' }).click();
  await expect(page.getByRole('img', { name: /Executions per interval: .*[1-9]\d* matched a pass/ })).toBeVisible();
  await page.getByTestId('contact-table').getByRole('link', { name: 'jane.smith@example.com' }).click();
  await expect(page).toHaveURL(/\/audit\?q=jane\.smith%40example\.com/);
  await expect(page.locator('#filter-q')).toHaveValue('jane.smith@example.com');
  await expect(page.getByRole('cell', { name: 'pushupdate.execute' }).first()).toBeVisible();
  expect(errors).toEqual([]);
});

test('an admin sets how long events keep their content', async ({ page }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  await navigate(page, 'Integrations');
  await hydrated(page);
  await expect(page.getByLabel('Keep content for (days)')).toHaveValue('30');
  await page.getByLabel('Keep content for (days)').fill('0');
  await page.getByRole('button', { name: 'Save retention' }).click();
  await expect(page.locator('#retentionDays-error')).toContainText('between 1 and 3650');
  await page.getByLabel('Keep content for (days)').fill('7');
  await page.getByRole('button', { name: 'Save retention' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'keep their content for 7 days' })).toBeVisible();
  await page.reload();
  await expect(page.getByLabel('Keep content for (days)')).toHaveValue('7');
  await expect(page.getByTestId('history')).toContainText('retentionDays');
  // Back to the default for the stories that follow.
  await hydrated(page);
  await page.getByLabel('Keep content for (days)').fill('30');
  await page.getByRole('button', { name: 'Save retention' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'for 30 days' })).toBeVisible();
  expect(errors).toEqual([]);
});
