import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestApi, TEST_ADMIN_TOKEN, type TestApi } from '../helpers/api-harness';
import { killAll, startPrivateRedis, type PrivateRedis } from '../process/process-kit';

const OTHER_TOKEN = `slc_test_other_${'o'.repeat(40)}`;
const KEYS = `admin:${TEST_ADMIN_TOKEN},write:${OTHER_TOKEN}`;

describe('rate limits per key', () => {
  const apis: TestApi[] = [];
  let redis: PrivateRedis | undefined;
  afterAll(async () => {
    await Promise.all(apis.map((a) => a.close()));
    await redis?.stop();
    await killAll();
  });
  const start = async (env: Record<string, string>) => {
    // Exact counts need every check answered by Redis: on a loaded machine a command can take longer
    // than the production wait (250 ms), and the in-memory limiter, counting apart, would answer it.
    // A stopped Redis still falls back at once (no offline queue).
    const api = await startTestApi({ env: { API_KEYS: KEYS, RATE_LIMIT_REDIS_WAIT_MS: '10000', ...env } });
    apis.push(api);
    return api;
  };

  it('answers 429 problem+json with Retry-After and RateLimit headers past the per-minute limit', async () => {
    const api = await start({ RATE_LIMIT_ALL: '40', RATE_LIMIT_SYNC: '0', RATE_LIMIT_TEST: '0' });
    const missing = `/raw-data-sources/${randomUUID()}`;
    const statuses: number[] = [];
    let first;
    for (let i = 0; i < 45; i++) {
      const res = await api.get(missing);
      first ??= res;
      statuses.push(res.status);
      if (res.status === 429) {
        expect(res.headers.get('content-type')).toContain('application/problem+json');
        expect(res.body).toMatchObject({ status: 429, type: '/problems/too-many-requests' });
        const retryAfter = Number(res.headers.get('retry-after'));
        expect(retryAfter).toBeGreaterThanOrEqual(1);
        expect(retryAfter).toBeLessThanOrEqual(60);
        expect(res.headers.get('ratelimit-remaining')).toBe('0');
      }
    }
    // Exactly the limit is served (leases never overshoot), then 429s.
    expect(statuses.filter((s) => s === 404)).toHaveLength(40);
    expect(statuses.slice(40)).toEqual([429, 429, 429, 429, 429]);
    expect(first!.headers.get('ratelimit-limit')).toBe('40');
    expect(first!.headers.get('ratelimit-remaining')).toBe('39');
    // Another key has its own budget; public routes are not limited.
    expect((await api.request('GET', missing, { token: OTHER_TOKEN })).status).toBe(404);
    expect((await api.request('GET', '/healthz', { token: null })).status).toBe(200);
  });

  it('serves exactly the limit under concurrency while leasing points ahead from Redis', async () => {
    // 1% leases (3 points here): most requests are answered from the process's lease.
    const api = await start({ RATE_LIMIT_ALL: '300' });
    const missing = `/raw-data-sources/${randomUUID()}`;
    const statuses: number[] = [];
    for (let batch = 0; batch < 33; batch++)
      statuses.push(
        ...(await Promise.all(Array.from({ length: 10 }, async () => (await api.get(missing)).status))),
      );
    expect(statuses.filter((s) => s === 404)).toHaveLength(300);
    expect(statuses.filter((s) => s === 429)).toHaveLength(30);
    // Redis holds at least what was served (leased and unused points count too), never less.
    const redis = api.container.redis;
    const [key] = await redis.keys(`${api.container.config.queuePrefix}:ratelimit:all:*`);
    expect(Number(await redis.get(key!))).toBeGreaterThanOrEqual(300);
  });

  it('limits test and sync requests tighter than the rest', async () => {
    const api = await start({
      RATE_LIMIT_ALL: '100',
      RATE_LIMIT_SYNC: '2',
      RATE_LIMIT_TEST: '1',
      TEST_WAIT_MS: '0',
    });
    const id = randomUUID();
    expect((await api.post(`/raw-data-sources/${id}/test`)).status).toBe(404);
    const limited = await api.post(`/raw-data-sources/${id}/test`);
    expect(limited.status).toBe(429);
    expect(limited.body.detail).toContain('test requests');
    expect((await api.post(`/raw-data-sources/${id}/sync`)).status).toBe(404);
    expect((await api.post('/raw-data-sources/sync-all')).status).toBe(202);
    expect((await api.post(`/raw-data-sources/${id}/sync`)).status).toBe(429);
    // Everything else still goes through.
    expect((await api.get(`/raw-data-sources/${id}`)).status).toBe(404);
    expect((await api.request('POST', `/raw-data-sources/${id}/test`, { token: OTHER_TOKEN })).status).toBe(
      404,
    );
  });

  it('keeps serving, limited in memory, while Redis is down', async () => {
    redis = await startPrivateRedis();
    const api = await start({ REDIS_URL: redis.url, RATE_LIMIT_ALL: '20' });
    const missing = `/raw-data-sources/${randomUUID()}`;
    expect((await api.get(missing)).status).toBe(404);
    await redis.stop();
    const started = Date.now();
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await api.get(missing)).status);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(
      statuses,
      JSON.stringify(api.logs.filter((l) => l.includes('"level":50')).slice(0, 2)),
    ).not.toContain(500);
    // The in-memory insurance limiter has the same limit: some answered, then 429.
    expect(statuses.filter((s) => s === 404).length).toBeGreaterThanOrEqual(10);
    expect(statuses.at(-1)).toBe(429);
  });
});
