// Playwright configuration of the browser suite. It drives the system's Chromium (Debian's
// /usr/bin/chromium, or CHROMIUM_PATH) against the page served by the already running Vite dev
// server (BASE_URL) and the running local platform. No browser is ever downloaded.

import { defineConfig, devices } from '@playwright/test';

export default defineConfig({
  testDir: './tests',
  outputDir: 'output/results',
  // One worker, like the original suite: the tests share the platform (Kafka, Flink, Realtime)
  // and each saga takes seconds, so running them side by side only adds contention.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: Boolean(process.env.CI),
  // 30 s per test; the upload journeys raise theirs to 90 s (test.setTimeout).
  timeout: 30_000,
  // 10 s per assertion; waits on a saga pass a longer timeout explicitly.
  expect: { timeout: 10_000 },
  reporter: [['list'], ['html', { outputFolder: 'output/report', open: 'never' }]],
  use: {
    baseURL: process.env.BASE_URL ?? 'http://127.0.0.1:5173',
    headless: true,
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    actionTimeout: 10_000,
    navigationTimeout: 15_000,
  },
  projects: [
    {
      name: 'chromium',
      use: {
        ...devices['Desktop Chrome'],
        launchOptions: {
          executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
          args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
          ],
        },
      },
    },
  ],
});
