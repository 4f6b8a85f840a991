import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';

/**
 * Swagger UI at /docs, opened in Debian's Chromium: it must render every documented operation using
 * only assets this process serves, so the docs work on a machine with no internet.
 */
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SKIP = process.env.SKIP_BROWSER_TESTS === '1';
const SCREENSHOT = new URL('../../.tmp/docs.png', import.meta.url).pathname;
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
/** Every wait below is bounded; together they stay well inside the 30 s test budget. */
const STEP_MS = 15_000;

interface OpenApiDoc {
  info: { title: string };
  paths: Record<string, Record<string, unknown>>;
}

describe.skipIf(SKIP)('Swagger UI at /docs in headless Chromium', () => {
  let api: TestApi | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  let profile: string | undefined;
  let spec: OpenApiDoc;
  const requested: string[] = [];
  const offLoopback: string[] = [];
  const failed: string[] = [];
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    // Missing Chromium is a broken test machine, not a reason to pass quietly.
    if (!existsSync(CHROMIUM_PATH))
      throw new Error(
        `Chromium not found at ${CHROMIUM_PATH}: install Debian's package (apt-get install -y chromium) ` +
          'or point CHROMIUM_PATH at a Chromium binary; SKIP_BROWSER_TESTS=1 skips browser tests.',
      );
    api = await startTestApi();
    spec = (await api.get('/openapi.json')).body as OpenApiDoc;

    profile = mkdtempSync(join(tmpdir(), 'sluice-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      timeout: STEP_MS,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    // Every request the page makes passes through here: loopback goes on, anything else is
    // recorded and refused, so a CDN dependency fails this test instead of reaching the internet.
    await context.route('**/*', async (route) => {
      const url = route.request().url();
      requested.push(url);
      if (new URL(url).hostname === '127.0.0.1') await route.continue();
      else {
        offLoopback.push(url);
        await route.abort('blockedbyclient');
      }
    });
    context.on('requestfailed', (req) => failed.push(`${req.url()}: ${req.failure()?.errorText}`));
    context.on('response', (res) => {
      if (res.status() >= 400) failed.push(`${res.url()}: HTTP ${res.status()}`);
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(msg.text());
    });
    page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));

    await page.goto(`${api.baseUrl}/docs`, { waitUntil: 'load', timeout: STEP_MS });
    const operationCount = Object.values(spec.paths).flatMap((item) =>
      Object.keys(item).filter((k) => HTTP_METHODS.includes(k)),
    ).length;
    // Rendered = as many operation blocks as the document has operations.
    try {
      await page
        .locator('.opblock')
        .nth(operationCount - 1)
        .waitFor({ state: 'attached', timeout: STEP_MS });
      await page.waitForLoadState('networkidle', { timeout: STEP_MS });
    } catch (err) {
      // A timeout alone says nothing; what the page tried and what failed usually says why.
      throw new Error(
        `Swagger UI did not render ${operationCount} operations: ${(err as Error).message}\n` +
          `requests off loopback: ${JSON.stringify(offLoopback)}\nfailed: ${JSON.stringify(failed)}\n` +
          `console errors: ${JSON.stringify(consoleErrors)}`,
      );
    }
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true, timeout: STEP_MS });
  }, 30_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    if (profile) rmSync(profile, { recursive: true, force: true });
    await api?.close();
  });

  it('shows every operation of /openapi.json as an operation block', async () => {
    const expected = Object.entries(spec.paths)
      .flatMap(([path, item]) =>
        Object.keys(item)
          .filter((k) => HTTP_METHODS.includes(k))
          .map((method) => `${method.toUpperCase()} ${path}`),
      )
      .sort();
    expect(expected.length).toBeGreaterThanOrEqual(7);

    const shown: string[] = [];
    for (const block of await page.locator('.opblock').all()) {
      const method = (await block.locator('.opblock-summary-method').textContent())?.trim();
      const path = await block.locator('[data-path]').getAttribute('data-path');
      shown.push(`${method} ${path}`);
    }
    expect(shown.sort()).toEqual(expected);
  });

  it("is titled with the API's name", async () => {
    expect(spec.info.title).toBeTruthy();
    expect(await page.title()).toContain(spec.info.title);
    await expect.poll(() => page.locator('.info .title').first().textContent()).toContain(spec.info.title);
  });

  it('loads every asset from this process and nothing from elsewhere', () => {
    const paths = requested.map((url) => new URL(url).pathname);
    // The page, its stylesheet, both scripts and the document: proof that the counting works.
    for (const p of [
      '/docs',
      '/docs/assets/swagger-ui.min.css',
      '/docs/assets/swagger-ui-bundle.js',
      '/docs/assets/swagger-ui-standalone-preset.js',
      '/openapi.json',
    ])
      expect(paths, `never requested ${p}`).toContain(p);
    expect(offLoopback, 'requests that left 127.0.0.1').toEqual([]);
    expect(requested.every((url) => new URL(url).hostname === '127.0.0.1')).toBe(true);
    expect(failed, 'requests that failed or answered 4xx/5xx').toEqual([]);
    expect(consoleErrors, 'console errors').toEqual([]);
  });

  it('never asks validator.swagger.io to check the document', async () => {
    // The badge only calls out from non-localhost hosts, so read the setting instead of waiting for it.
    expect(await page.evaluate('window.ui.getConfigs().validatorUrl')).toBeNull();
  });
});
