import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';

// Issue 13 row 4 through the worker's own composition (workers/worker-container.ts): its policy is
// handed DATABASE_URL and REDIS_URL, and refuses them even though OUTBOUND_ALLOW (the test default,
// 127.0.0.0/8) covers loopback.
describe('the worker refuses Sluice’s own database and Redis as sources', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
    await api.startWorker();
  });
  afterAll(() => api.close());

  const stepsOf = async (body: Record<string, unknown>) => {
    const res = await api.post('/raw-data-sources/test', { name: 'own-service', ...body });
    expect(res.status, res.text).toBe(200);
    return res.body as {
      ok: boolean;
      steps: { name: string; status: string; code?: string; message: string }[];
    };
  };

  it('a database source pointed at the API’s own Postgres fails at resolve, forbidden_address', async () => {
    const db = new URL(api.database.url);
    const result = await stepsOf({
      source_type: 'database',
      connection_string: `postgres://postgres@${db.hostname}:${db.port || 5432}${db.pathname}`,
      metadata: { table: 'raw_data_sources' },
    });
    expect(result.ok).toBe(false);
    const resolve = result.steps.find((s) => s.name === 'resolve');
    expect(resolve).toMatchObject({ status: 'failed', code: 'forbidden_address' });
    expect(resolve?.message).toMatch(/port 5432 there is Sluice's own database, never a source/);
    expect(result.steps.find((s) => s.name === 'read_sample')?.status).toBe('skipped');
  });

  it('a stream source pointed at the queues’ Redis fails at resolve, forbidden_address', async () => {
    const result = await stepsOf({
      source_type: 'stream',
      connection_string: 'redis://127.0.0.1:6379/0',
      metadata: { stream: 'anything' },
    });
    expect(result.steps.find((s) => s.name === 'resolve')).toMatchObject({
      status: 'failed',
      code: 'forbidden_address',
    });
    expect(result.steps.find((s) => s.name === 'resolve')?.message).toMatch(/Sluice's own Redis/);
  });
});
