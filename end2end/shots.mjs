// Screenshots of console pages for a visual check: node shots.mjs BASE_URL OUT_DIR PATH...
import { chromium } from '@playwright/test';
const [base, out, ...paths] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await page.goto(`${base}/login`);
await page.waitForSelector('body[data-hydrated="true"]');
await page.getByLabel('Email').fill('admin@demo.passhook.test');
await page.getByLabel('Password').fill(process.env.PW ?? 'e2e-demo-password');
await page.getByRole('button', { name: 'Sign in' }).click();
await page.waitForURL((u) => !u.pathname.startsWith('/login'));
for (const [i, p] of paths.entries()) {
  await page.goto(`${base}${p}`);
  await page.waitForSelector('body[data-hydrated="true"]');
  await page.waitForTimeout(800);
  await page.screenshot({ path: `${out}/${i}.png`, fullPage: true });
}
await browser.close();
