import { expect, Page, test } from '@playwright/test';
import { actitoPort } from '../playwright.config';
import { hydrated, MARKETER, navigate, sample, signIn, watchForErrors } from './helpers';

const ACTITO = `http://127.0.0.1:${actitoPort}`;
const ACTITO_KEY = 'e2e-actito-api-key';

/** Connects the demo tenant to the fake Actito as the first story does, so that later
 * stories don't depend on it having run. */
async function connectActito(page: Page) {
  const saved = await page.request.post('/console/fn/save_actito', {
    headers: { Origin: new URL(page.url()).origin },
    data: {
      form: {
        api_base_url: ACTITO, entity: 'demo-entity', api_key: ACTITO_KEY, profile_table_id: '12',
        identifier_mapping: [['emailAddress', 'email'], ['businessId', 'customId']],
        data_mapping: [['loyaltyTier', 'tier']], callback_hosts: ['127.0.0.1'],
      },
    },
  });
  expect(saved.status()).toBe(200);
  expect(await saved.json()).toHaveProperty('Done');
}

test('an admin connects Actito: field errors, a failed and a working connection test, history without the key', async ({ page }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  await navigate(page, 'Integrations');
  await page.getByRole('link', { name: /Actito/ }).click();
  await expect(page.getByRole('heading', { name: 'Actito', level: 1 })).toBeVisible();
  await hydrated(page);

  await page.getByLabel('API host').fill(ACTITO);
  await page.getByLabel('Entity').fill('demo-entity');
  await page.getByLabel('Profile table id').fill('12');
  await page.getByLabel('API key').fill('not-the-key');
  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.getByTestId('connection-result')).toContainText('refused');

  await page.getByLabel('API key').fill(ACTITO_KEY);
  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.getByTestId('connection-result')).toContainText('Connected');

  // The server validates: a bad callback host is shown next to its field, nothing is saved.
  await page.getByLabel('Callback hosts').fill('127.0.0.1\nhttps://not a host');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect(page.locator('#callbackHosts-error')).toContainText('is not a host');
  await expect(page.getByTestId('history')).toHaveCount(0);

  await page.getByLabel('Callback hosts').fill('127.0.0.1');
  const mapping = page.getByTestId('data-mapping');
  await page.getByRole('button', { name: 'Add row: Data mapping' }).click();
  await mapping.getByLabel('Actito attribute').last().fill('loyaltyTier');
  await mapping.getByLabel('Pass data key').last().fill('tier');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Actito settings saved' })).toBeVisible();

  const history = page.getByTestId('history');
  await expect(history).toContainText('Connected Actito');
  await expect(history).toContainText('admin@demo.passhook.test');
  await expect(history).toContainText('apiKey: — → ••••');
  await expect(history).not.toContainText(ACTITO_KEY);
  await expect(page.getByLabel('API key')).toHaveValue('');
  await expect(page.getByLabel('API key')).toHaveAttribute('placeholder', /Stored key ••••/);

  // The stored key is used when the field is left empty, with the host it was stored for.
  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.getByTestId('connection-result')).toContainText('Connected');
  // Another host gets no stored key: it must be typed again, and nothing is sent.
  await page.getByLabel('API host').fill('http://127.0.0.1:9');
  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.getByTestId('connection-result')).toContainText('Not tested');
  await expect(page.locator('#apiKey-error')).toContainText('API host changed');
  await page.reload();
  await expect(page.getByTestId('data-mapping').getByLabel('Pass data key').last()).toHaveValue('tier');
  expect(errors).toEqual([]);
});

test('an admin subscribes Passhook to one custom action, named by its id as Actito requires', async ({ page, request }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  await connectActito(page);
  await page.goto('/integrations/actito');
  await hydrated(page);
  await page.locator('#subscription-kind').selectOption('custom-action');
  await page.getByRole('button', { name: 'Create subscription' }).click();
  await expect(page.locator('#customAction-error')).toContainText('id of the custom action');
  await page.getByLabel('Custom action id').fill('4512');
  await page.getByRole('button', { name: 'Create subscription' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Subscription created in Actito' })).toBeVisible();
  const seen = await (await request.get(`${ACTITO}/__requests`)).json();
  const created = seen.filter((r: any) => r.method === 'POST' && r.path === '/webhooks/v4/entity/demo-entity/webhookSubscription').pop();
  const body = JSON.parse(created.body);
  expect(body).toMatchObject({ on: 'CUSTOM_ACTION', onElementId: '4512', isActive: true });
  expect(body.targetUrl).toMatch(/\/api\/demo\/webhooks\/listeners\/actito\/custom-actions\/updatePass$/);
  expect(Object.keys(body.headers)).toEqual(['X-API-KEY']);
  // Shown by what it is, then deleted so the other stories see their own rows.
  const row = page.getByTestId('subscriptions').locator('tr', { hasText: 'Custom action 4512 triggered' });
  await expect(row).toContainText('This Passhook');
  const id = await row.getAttribute('data-subscription');
  await page.getByRole('button', { name: `Delete subscription ${id}` }).click();
  await expect(row).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('an admin subscribes Passhook to Actito profile updates, Actito gets a working key, then the subscription is switched off and deleted', async ({ page, request }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  await connectActito(page);
  await page.goto('/integrations/actito');
  await hydrated(page);
  const table = page.getByTestId('subscriptions');
  const foreign = table.locator('tr', { hasText: 'crm.example.com' });
  await expect(foreign).toContainText('PROFILE_TABLE CREATE on table 12');
  await expect(foreign).not.toContainText('This Passhook');

  await expect(page.getByLabel('Fields to watch')).toHaveValue('emailAddress, businessId, loyaltyTier');
  await page.getByLabel('Fields to watch').fill('emailAddress, loyaltyTier');
  await page.getByRole('button', { name: 'Create subscription' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Subscription created in Actito' })).toBeVisible();
  const ours = table.locator('tr', { hasText: 'This Passhook' });
  await expect(ours).toContainText('PROFILE_TABLE UPDATE on table 12');
  await expect(ours).toContainText('Fields: emailAddress, loyaltyTier');

  const seen = await (await request.get(`${ACTITO}/__requests`)).json();
  const created = seen.find((r: any) => r.method === 'POST' && r.path === '/webhooks/v4/entity/demo-entity/table/12/webhookSubscription');
  expect(created.headers.authorization).toBe('Bearer e2e-token');
  const body = JSON.parse(created.body);
  expect(body).toMatchObject({ on: 'PROFILE_TABLE', eventType: 'UPDATE', onElementId: '12', onFields: ['emailAddress', 'loyaltyTier'], isActive: true });
  expect(body.targetUrl).toMatch(/\/api\/demo\/webhooks\/listeners\/actito\/profile\/UPDATE$/);
  expect(Object.keys(body.headers)).toEqual(['X-API-KEY']);
  // The key Actito will send works on exactly that listener.
  const listener = new URL(body.targetUrl).pathname;
  // For the profile table Actito was connected with (the listener refuses another).
  const update = { ...(sample('profile-create-one-by-one.json') as object), id: 'e2e-subscription-check', operation: 'UPDATE', tableId: '12' };
  const pushed = await request.post(listener, { headers: { 'X-API-KEY': body.headers['X-API-KEY'] }, data: update });
  expect(pushed.status()).toBe(200);

  const id = await ours.getAttribute('data-subscription');
  await page.getByRole('button', { name: `Deactivate subscription ${id}` }).click();
  await expect(ours).toContainText('Inactive');
  await page.getByRole('button', { name: `Delete subscription ${id}` }).click();
  await expect(table.locator('tr', { hasText: 'This Passhook' })).toHaveCount(0);
  const after = await (await request.get(`${ACTITO}/__requests`)).json();
  expect(after.some((r: any) => r.method === 'DELETE' && r.path.endsWith(`/webhookSubscription/${id}`))).toBe(true);
  await expect(page.getByTestId('history')).toContainText('Subscribed Actito');
  await expect(page.getByTestId('history')).not.toContainText('phk_');
  expect(errors).toEqual([]);
});

test('an admin adds an SFMC key, sends a test execute and sees the pass updated, then retires the key', async ({ page }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  await page.goto('/integrations/sfmc');
  await hydrated(page);
  await expect(page.getByTestId('config-url')).toHaveText(/\/api\/demo\/webhooks\/listeners\/sfmc\/actions\/pushupdate\/config\.json$/);

  await page.getByLabel('Key id').fill('e2e-key');
  await page.getByLabel('Signing secret (salt)').fill('0x6532652d7369676e696e672d73656372657421');
  await page.getByRole('button', { name: 'Add key' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Signing key added' })).toBeVisible();
  await expect(page.getByTestId('signing-keys')).toContainText('e2e-key');

  await page.getByLabel('Signing key', { exact: true }).selectOption('e2e-key');
  await page.getByLabel('or email').fill('lucas.peeters@example.com');
  const data = page.getByTestId('test-data');
  await data.getByLabel('Key').fill('tier');
  await data.getByLabel('Value').fill('Platinum');
  await page.getByRole('button', { name: 'Send test execute' }).click();
  const result = page.getByTestId('test-result');
  await expect(page.getByTestId('test-status')).toHaveText('HTTP 200');
  await expect(result).toContainText('The update was applied.');
  await expect(result.getByTestId('pass-table')).toContainText('Platinum');
  await expect(result.getByTestId('pass-table')).toContainText('lucas.peeters@example.com');

  await page.reload();
  const row = page.getByTestId('signing-keys').locator('tr', { hasText: 'e2e-key' });
  await expect(row).toContainText('Verified the latest call');
  await hydrated(page);
  await page.getByRole('button', { name: 'Retire e2e-key' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Signing key retired' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Retire e2e-key' })).toHaveCount(0);
  await expect(page.getByTestId('history')).toContainText('signing key e2e-key: •••• → —');
  expect(errors).toEqual([]);
});

test('an admin creates a key with one scope, it works only where that scope is needed, and stops when revoked', async ({ page, request }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  await navigate(page, 'API keys');
  await hydrated(page);
  await page.getByLabel('Name').fill('e2e listener');
  await page.getByRole('button', { name: 'Create key' }).click();
  await expect(page.locator('#scopes-error')).toContainText('choose at least one scope');

  await page.getByLabel(/ActitoListener\.Write/).check();
  await page.getByRole('button', { name: 'Create key' }).click();
  const key = (await page.getByTestId('new-key').textContent())!.trim();
  expect(key).toMatch(/^phk_/);
  await page.getByRole('button', { name: 'I have copied it' }).click();
  await expect(page.getByTestId('new-key')).toHaveCount(0);
  const row = page.getByTestId('key-table').locator('tr', { hasText: 'e2e listener' });
  await expect(row).toContainText('ActitoListener.Write');
  await expect(row).toContainText('Never');

  const listener = '/api/demo/webhooks/listeners/actito/custom-actions/updatePass';
  const accepted = await request.post(listener, { headers: { 'X-API-KEY': key }, data: sample('custom-action-trigger-one-by-one.json') });
  expect(accepted.status()).toBe(200);
  const otherScope = await request.get('/api/demo/passes', { headers: { 'X-API-KEY': key } });
  expect(otherScope.status()).toBe(403);
  expect((await otherScope.json()).title).toBeTruthy();

  await page.reload();
  await expect(row).toContainText('from 127.0.0.1');
  await hydrated(page);
  await page.getByRole('button', { name: 'Revoke e2e listener' }).click();
  await page.getByRole('button', { name: 'Confirm revoke' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Key revoked' })).toBeVisible();
  await expect(row).toContainText('Revoked');
  const revoked = await request.post(listener, { headers: { 'X-API-KEY': key }, data: sample('custom-action-trigger-one-by-one.json') });
  expect(revoked.status()).toBe(401);
  await expect(page.getByTestId('history')).toContainText('Revoked API key “e2e listener”');
  expect(errors).toEqual([]);
});

test('a marketer sees no integration pages, and their server functions refuse', async ({ page }) => {
  const errors = watchForErrors(page);
  await signIn(page, MARKETER);
  await expect(page.getByRole('heading', { name: 'Dashboard' })).toBeVisible();
  const nav = page.getByRole('navigation', { name: 'Main' });
  await expect(nav.getByRole('link', { name: 'Passes' })).toBeVisible();
  for (const hidden of ['Integrations', 'API keys', 'People']) {
    await expect(nav.getByRole('link', { name: hidden })).toHaveCount(0);
  }
  for (const path of ['/integrations/actito', '/integrations/sfmc', '/integrations/wallet', '/api-keys', '/people']) {
    await page.goto(path);
    await expect(page.getByRole('alert')).toContainText('Your role does not allow this');
    await expect(page.locator('input[type="password"]')).toHaveCount(0);
  }
  for (const fn of ['actito_page', 'sfmc_page', 'wallet_page', 'key_page', 'people_page', 'actito_subscriptions']) {
    const answer = await page.request.post(`/console/fn/${fn}`, { form: {} });
    expect(answer.status(), fn).toBe(403);
    const text = await answer.text();
    expect(text, fn).toContain('Your role does not allow this');
    expect(text).not.toContain('••••');
  }
  const create = await page.request.post('/console/fn/create_key', { data: { name: 'sneaky', scopes: ['Passes.Write'] } });
  expect(create.status()).toBe(403);
  expect(await create.text()).toContain('Your role does not allow this');
  expect(errors).toEqual([]);
});
