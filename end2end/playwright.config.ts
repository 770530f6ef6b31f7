import { defineConfig } from '@playwright/test';

const port = Number(process.env.E2E_PORT ?? 3100);
export const actitoPort = port + 1;
export const oidcPort = port + 2;

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    },
  },
  webServer: [
    {
      command: `node ./fakes/actito.mjs ${actitoPort}`,
      url: `http://127.0.0.1:${actitoPort}/__health`,
      timeout: 20_000,
      reuseExistingServer: false,
    },
    {
      command: `node ./fakes/oidc.mjs ${oidcPort}`,
      url: `http://127.0.0.1:${oidcPort}/jwks`,
      timeout: 20_000,
      reuseExistingServer: false,
    },
    {
      command: `bash ./start-server.sh ${port} ${oidcPort}`,
      url: `http://127.0.0.1:${port}/readyz`,
      timeout: 60_000,
      reuseExistingServer: false,
      stdout: 'pipe',
      stderr: 'pipe',
    },
  ],
});
