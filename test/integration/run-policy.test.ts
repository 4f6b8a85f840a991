import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { eventsKey } from '../../src/events/event-bus';
import { schedulerId } from '../../src/queue/queue-names';
import { expectInvalid, startTestApi, untilJobDone, type TestApi } from '../helpers/api-harness';
import { TEST_REDIS_URL } from '../helpers/test-env';
import { startHttpServer, type TestServer } from '../connectors/support/http-source';
import { ScriptedConnector } from '../support/scripted-connector';
import { until } from '../helpers/until';

let seq = 0;
const named = () => `policy-${process.pid}-${++seq}`;

/** Per-source run policy through the API and an in-process worker (real Postgres and Redis). */
describe('per-source run policy', () => {
  let api: TestApi;
  let redis: Redis;
  let slow: TestServer;
  const held = new Set<() => void>();

  beforeAll(async () => {
    // A loopback API peer that accepts the request and never answers until the test ends.
    slow = await startHttpServer((_req, res) => {
      held.add(() => res.destroy());
    });
    api = await startTestApi({
      connectors: [new ScriptedConnector('database')],
      env: {
        SYNC_ATTEMPTS: '4',
        SYNC_BACKOFF_MS: '100',
        HTTP_REQUEST_MAX_MS: '60000',
        CONNECT_TIMEOUT_MS: '60000',
      },
    });
    redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    await api.startWorker();
  });
  afterAll(async () => {
    for (const release of held) release();
    await api.close();
    await slow.close();
    redis.disconnect();
  });

  const runsOf = async (id: string) => (await api.get(`/raw-data-sources/${id}/runs`)).body.data;

  it('refuses out-of-range policy settings with a 400 naming each field', async () => {
    const base = { name: named(), source_type: 'database', connection_string: 'postgres://u@127.0.0.1/x' };
    for (const [field, value] of [
      ['max_run_seconds', 0],
      ['max_run_seconds', 604801],
      ['retry_attempts', 0],
      ['retry_attempts', 51],
      ['retry_backoff_seconds', 0],
      ['deactivate_after_failures', -1],
      ['concurrency_limit', -1],
      ['concurrency_limit', 10001],
      ['concurrency_group', 'x'.repeat(201)],
      ['retry_attempts', 'three'],
    ] as const) {
      const res = await api.post('/raw-data-sources', { ...base, [field]: value });
      expectInvalid(res, `/${field}`);
    }
    const ok = await api.post('/raw-data-sources', {
      ...base,
      max_run_seconds: 60,
      retry_attempts: 2,
      retry_backoff_seconds: 1,
      deactivate_after_failures: 0,
      concurrency_group: 'warehouse',
      concurrency_limit: 3,
    });
    expect(ok.status, ok.text).toBe(201);
    expect(ok.body).toMatchObject({
      retry_attempts: 2,
      concurrency_group: 'warehouse',
      concurrency_limit: 3,
    });
    const cleared = await api.put(`/raw-data-sources/${ok.body.id}`, { retry_attempts: null });
    expect(cleared.status, cleared.text).toBe(200);
    expect(cleared.body.retry_attempts).toBeNull();
  });

  it("gives a sync job its source's retry attempts and backoff, or the global defaults", async () => {
    const own = await api.post('/raw-data-sources', {
      name: named(),
      source_type: 'database',
      connection_string: 'postgres://u@127.0.0.1/x',
      metadata: { fail: 'always' },
      retry_attempts: 2,
      retry_backoff_seconds: 1,
      deactivate_after_failures: 0,
    });
    const plain = await api.post('/raw-data-sources', {
      name: named(),
      source_type: 'database',
      connection_string: 'postgres://u@127.0.0.1/x',
      metadata: { records: 1 },
    });
    const a = (await api.post(`/raw-data-sources/${own.body.id}/sync`)).body;
    const b = (await api.post(`/raw-data-sources/${plain.body.id}/sync`)).body;
    const queue = api.container.queues.sync;
    const jobA = await queue.getJob(a.job_id);
    const jobB = await queue.getJob(b.job_id);
    expect(jobA?.opts).toMatchObject({ attempts: 2, backoff: { type: 'exponential', delay: 1000 } });
    expect(jobB?.opts).toMatchObject({ attempts: 4, backoff: { type: 'exponential', delay: 100 } });
    // Two attempts, then the run fails: the second is its last.
    const runs = await until(
      () => runsOf(own.body.id),
      (r) => r[0]?.status === 'failed',
    );
    expect(runs[0]).toMatchObject({ attempt: 2 });
    // The scheduler's template carries the source's policy too.
    const scheduler = await redis.hget(
      `${queue.opts.prefix}:sync:repeat:${schedulerId(own.body.id)}`,
      'opts',
    );
    expect(JSON.parse(scheduler ?? '{}')).toMatchObject({ attempts: 2, backoff: { delay: 1000 } });
  });

  it('fails a run that outlives max_run_seconds with "timed out after …", without retrying it', async () => {
    const created = await api.post('/raw-data-sources', {
      name: named(),
      source_type: 'api',
      connection_string: `${slow.url}/items`,
      max_run_seconds: 1,
      retry_attempts: 3,
      deactivate_after_failures: 0,
    });
    expect(created.status, created.text).toBe(201);
    const sync = (await api.post(`/raw-data-sources/${created.body.id}/sync`)).body;
    const runs = await until(
      () => runsOf(created.body.id),
      (r) => r[0]?.status === 'failed',
    );
    expect(runs[0].error).toMatch(/^timed out after 1 s/);
    expect(runs[0].attempt).toBe(1);
    const job = await until(
      () => api.container.queues.sync.getJob(sync.job_id),
      (j) => Boolean(j?.finishedOn),
    );
    expect(job?.attemptsMade).toBe(1);
    expect(held.size).toBeGreaterThan(0);
  });

  it('deactivates a source after N consecutive failed runs: once, with its reason, schedule removed', async () => {
    const created = await api.post('/raw-data-sources', {
      name: named(),
      source_type: 'database',
      connection_string: 'postgres://u@127.0.0.1/x',
      metadata: { fail: 'permanent' },
      deactivate_after_failures: 2,
    });
    const id = created.body.id as string;
    const prefix = api.container.config.queuePrefix;
    expect(await redis.exists(`${prefix}:sync:repeat:${schedulerId(id)}`)).toBe(1);
    const syncOnce = async (n: number) => {
      const queued = await api.post(`/raw-data-sources/${id}/sync`);
      expect(queued.status, queued.text).toBe(202);
      await until(
        () => runsOf(id),
        (r) => r.length === n && r[0].status === 'failed',
      );
      // Its job failed too (see untilJobDone): the next POST /sync is then a new run, not a 409.
      await untilJobDone(api, queued.body.job_id);
    };
    await syncOnce(1);
    expect((await api.get(`/raw-data-sources/${id}`)).body.is_active).toBe(true);
    await syncOnce(2);
    const source = await until(
      async () => (await api.get(`/raw-data-sources/${id}`)).body,
      (s) => s.is_active === false,
    );
    expect(source.last_warning).toContain('deactivated');
    const asObject = (fields: string[]) => {
      const out: Record<string, string> = {};
      for (let i = 0; i < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
      return out;
    };
    const deactivations = async () =>
      (await redis.xrange(eventsKey(prefix), '-', '+'))
        .map(([, fields]) => asObject(fields))
        .filter((e) => e.type === 'source.deactivated' && e.source_id === id);
    // The source is deactivated in Postgres first; its schedule is removed and source.deactivated
    // published after that (runs/auto-deactivation.ts): wait for the event, the last step.
    await until(deactivations, (d) => d.length >= 1);
    expect(await redis.exists(`${prefix}:sync:repeat:${schedulerId(id)}`)).toBe(0);
    // A sync of an inactive source is refused; another failure path cannot publish it twice.
    expect((await api.post(`/raw-data-sources/${id}/sync`)).status).toBe(409);
    await api.container.lifecycle.fail((await runsOf(id))[0].id, 'late failure').catch(() => undefined);
    const deactivated = await deactivations();
    expect(deactivated).toHaveLength(1);
    expect(JSON.parse(deactivated[0]!.data!)).toMatchObject({ failures: 2 });
    expect(JSON.parse(deactivated[0]!.data!).reason).toContain('2 consecutive runs failed');
  });
});
