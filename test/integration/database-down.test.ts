import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { freePort } from '../process/process-kit';
import { captureKnexWarnings } from '../support/knex-warnings';

/**
 * Regression (make chaos, case 5): with Postgres unreachable, database-backed routes answered 500
 * "Internal server error". An outage is not a bug: 503 problem+json with Retry-After, fast.
 */
describe('the API with its database unreachable', () => {
  let api: TestApi;
  let knex: ReturnType<typeof captureKnexWarnings>;

  beforeAll(async () => {
    // Every refused connect makes knex print a warning with a stack: expected here, so collected.
    knex = captureKnexWarnings();
    // Nothing listens there: every connect is refused at once, as when Postgres is stopped.
    const port = await freePort();
    api = await startTestApi({ env: { DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/gone` } });
  });
  afterAll(async () => {
    await api?.close();
    knex?.restore();
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

  it('failed for the reason the test set up: its pool saw the connection refused', () => {
    expect(knex.warnings.length).toBeGreaterThan(0);
    for (const warning of knex.warnings) expect(warning).toContain('ECONNREFUSED');
  });
});
