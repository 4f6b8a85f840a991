import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { freePort } from '../process/process-kit';

/**
 * Regression (make chaos, case 5): with Postgres unreachable, database-backed routes answered 500
 * "Internal server error". An outage is not a bug: 503 problem+json with Retry-After, fast.
 */
describe('the API with its database unreachable', () => {
  let api: TestApi;

  beforeAll(async () => {
    // Nothing listens there: every connect is refused at once, as when Postgres is stopped.
    const port = await freePort();
    api = await startTestApi({ env: { DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/gone` } });
  });
  afterAll(async () => {
    await api?.close();
  });

  it.each([
    ['GET', '/raw-data-sources'],
    ['GET', '/raw-data-sources/0b9d8a34-1f0c-4a51-9f38-1a0c2d6b9e77'],
    ['POST', '/raw-data-sources/0b9d8a34-1f0c-4a51-9f38-1a0c2d6b9e77/sync'],
  ])('%s %s → 503 problem+json with Retry-After', async (method, path) => {
    const started = performance.now();
    const res = await api.request(method, path, method === 'POST' ? { body: {} } : {});
    expect(performance.now() - started).toBeLessThan(5000);
    expect(res.status, res.text).toBe(503);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.headers.get('retry-after')).toBe('5');
    expect(res.body).toMatchObject({ status: 503, detail: 'The database is unavailable.' });
    expect(res.text).not.toContain('ECONNREFUSED');
  });

  it('failed for the reason the test set up: its pool saw the connection refused, logged as a line', () => {
    // knex's own warnings go through the app's logger (structured, no stack on the console).
    const warnings = api.logs
      .map((l) => JSON.parse(l) as { msg?: string; err?: string })
      .filter((l) => l.msg === 'knex warning');
    expect(warnings.length).toBeGreaterThan(0);
    for (const warning of warnings) expect(warning.err).toContain('ECONNREFUSED');
  });
});
