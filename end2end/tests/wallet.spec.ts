import crypto from 'node:crypto';
import { expect, test } from '@playwright/test';
import { hydrated, signIn, watchForErrors } from './helpers';

test('an admin edits a pass type with a live preview, is told what is wrong, and saves it', async ({ page }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  await page.goto('/integrations');
  await page.getByRole('link', { name: /Apple Wallet and Google Wallet/ }).click();
  await expect(page.getByRole('heading', { name: 'Wallets', level: 1 })).toBeVisible();
  await hydrated(page);
  await page.getByRole('tab', { name: 'Loyalty card' }).click();
  await expect(page.getByRole('tab', { name: 'Loyalty card' })).toHaveAttribute('aria-selected', 'true');
  await expect(page.getByRole('tab', { name: 'Coupon' })).toHaveAttribute('aria-selected', 'false');
  const preview = page.getByTestId('card-preview');
  await expect(preview).toContainText('Demo Retail');
  await expect(preview).toContainText('Points');

  // The preview follows the form before anything is saved.
  await page.getByLabel('Label of field points').first().fill('Stars');
  await expect(preview).toContainText('Stars');
  await page.getByLabel('Change message of field points').first().fill('Your stars changed');
  await page.getByRole('button', { name: 'Save pass type' }).click();
  await expect(page.getByTestId('design-problems')).toContainText('must contain %@');
  await expect(page.getByLabel('Label of field points').first()).toHaveValue('Stars');

  await page.getByLabel('Change message of field points').first().fill('You now have %@ stars');
  await page.getByRole('button', { name: 'Save pass type' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Pass type saved' })).toBeVisible();
  await expect(page.getByRole('tab', { name: 'Loyalty card' })).toHaveAttribute('aria-selected', 'true');
  await page.reload();
  await hydrated(page);
  await page.getByRole('tab', { name: 'Loyalty card' }).click();
  await expect(page.getByLabel('Label of field points').first()).toHaveValue('Stars');
  await expect(page.getByLabel('Change message of field points').first()).toHaveValue('You now have %@ stars');
  await expect(page.getByTestId('history')).toContainText('Changed the design of pass type “loyalty”');

  await page.getByRole('tab', { name: 'Coupon' }).click();
  await expect(page.getByLabel('Label of field points').first()).toHaveValue('Points');
  expect(errors).toEqual([]);
});

test('an admin uploads wallet credentials: bad files are explained, good ones are summarised, never shown back', async ({ page }) => {
  const errors = watchForErrors(page);
  await signIn(page);
  await page.goto('/integrations/wallet');
  await hydrated(page);
  // The demo's Apple credentials, summarised as labelled fields rather than raw JSON.
  const apple = page.getByTestId('apple-credentials');
  await expect(apple).toContainText('Push (APNs)');
  await expect(apple).toContainText(/key \S+ of team \S+/);
  await expect(apple).not.toContainText('{');

  await page.getByLabel('Certificate (PEM)').fill('not a certificate');
  await page.getByLabel('Private key (PEM)').fill('not a key');
  await page.getByLabel('Apple WWDR intermediate (PEM)').fill('not a certificate');
  await page.getByRole('button', { name: 'Save Apple credentials' }).click();
  await expect(page.locator('#certificatePem-error')).toContainText('is not a PEM certificate');

  await page.getByLabel('Service account key (JSON)').fill('{ not json');
  await page.getByRole('button', { name: 'Save Google credentials' }).click();
  await expect(page.locator('#serviceAccount-error')).toContainText('is not JSON');

  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const account = { type: 'service_account', client_email: 'wallet@e2e-project.iam.gserviceaccount.com', private_key_id: 'e2e-key-1', private_key: pem };
  await page.getByLabel('Service account key (JSON)').fill(JSON.stringify(account));
  await page.getByRole('button', { name: 'Save Google credentials' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Google service account saved' })).toBeVisible();
  await expect(page.getByTestId('google-credentials')).toContainText('wallet@e2e-project.iam.gserviceaccount.com');
  await expect(page.locator('body')).not.toContainText('BEGIN PRIVATE KEY');
  await expect(page.getByTestId('history')).toContainText('Uploaded a Google service account');
  await expect(page.getByTestId('google-credentials')).toContainText('Private key id');
  expect(errors).toEqual([]);
});
