import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { TEST_REDIS_URL } from '../helpers/test-env';
import {
  freePort,
  killAll,
  logTailsOnFailure,
  startPrivateRedis,
  startWorker,
  until,
  waitForLog,
  within,
  workerReady,
  type Child,
  type PrivateRedis,
} from '../process/process-kit';
import { ScriptedConnector } from '../support/scripted-connector';
import { schedulerId } from '../../src/queue/queue-names';
import type { SyncWorker } from '../../workers/sync-worker';

/**
 * /metrics with a real sync behind it (real Postgres and Redis, scripted connector): every series
 * the issue asks for, with the values that sync must produce; labels that stay a fixed set; no
 * secret; the worker role's own METRICS_PORT; and job log lines that lead back to the request.
 */
const SECRET = `Metr1cs-${randomBytes(6).toString('hex')}`;
const REQUEST_ID = `metrics-req-${randomBytes(4).toString('hex')}`;
const RECORDS = 7;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition as samples (comments skipped); label values unescaped. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, raw] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[key!] = raw!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample named `name` whose labels include `labels` (undefined if none). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value;
}

describe('GET /metrics after a real sync', () => {
  let api: TestApi;
  let worker: SyncWorker;
  let sourceId: string;
  let runId: string;
  let text: string;
  let samples: Sample[];

  beforeAll(async () => {
    api = await startTestApi({ connectors: [new ScriptedConnector('database')] });
    worker = await api.startWorker();
    const created = await api.post('/raw-data-sources', {
      name: `metrics-${process.pid}`,
      source_type: 'database',
      connection_string: `postgres://loader:${SECRET}@127.0.0.1:5432/warehouse?password=${SECRET}`,
      // A day: the scheduler's first tick falls far outside this test.
      refresh_interval: 86400,
      metadata: { records: RECORDS, batch: 3 },
    });
    expect(created.status, created.text).toBe(201);
    sourceId = created.body.id;
    const queued = await api.request('POST', `/raw-data-sources/${sourceId}/sync`, {
      headers: { 'x-request-id': REQUEST_ID },
    });
    expect(queued.status, queued.text).toBe(202);
    runId = queued.body.run_id;
    await until(
      'sync finished',
      async () => (await api.get(`/raw-data-sources/${sourceId}`)).body.sync_status,
      (s) => s === 'success' || s === 'failed',
      20_000,
      50,
    );
    // Unmatched paths, each different, and one 404 on a matched route.
    for (let i = 0; i < 25; i += 1) await api.get(`/no-such/${randomBytes(6).toString('hex')}/x${i}`);
    await api.get('/raw-data-sources/00000000-0000-4000-8000-000000000000');
    // Refused before the routers: still counted under the route it asked for.
    expect((await api.request('GET', `/raw-data-sources/${sourceId}`, { token: null })).status).toBe(401);
    const res = await api.get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    text = res.text;
    samples = parse(text);
  }, 60_000);
  afterAll(() => api?.close());

  it('counts the sync: one success, its duration, records, bytes and invalid by source type', async () => {
    const run = await api.knex('sync_runs').where({ id: runId }).first();
    expect(run).toMatchObject({ status: 'success', records: RECORDS });
    const job = { queue: 'sync', source_type: 'database', outcome: 'success' };
    expect(value(samples, 'sluice_jobs_total', job)).toBe(1);
    expect(value(samples, 'sluice_job_duration_seconds_count', job)).toBe(1);
    expect(value(samples, 'sluice_job_duration_seconds_sum', job)).toBeGreaterThan(0);
    expect(value(samples, 'sluice_job_duration_seconds_bucket', { ...job, le: '+Inf' })).toBe(1);
    expect(value(samples, 'sluice_records_landed_total', { source_type: 'database' })).toBe(RECORDS);
    expect(value(samples, 'sluice_bytes_landed_total', { source_type: 'database' })).toBe(Number(run.bytes));
    expect(value(samples, 'sluice_records_invalid_total', { source_type: 'database' })).toBe(0);
    // Nothing failed or retried.
    expect(samples.filter((s) => s.name === 'sluice_jobs_total' && s.labels.outcome !== 'success')).toEqual(
      [],
    );
  });

  it('reports queue depth per queue and state, the schedule count, and Redis up', () => {
    for (const queue of ['sync', 'test', 'sync-all'])
      for (const state of ['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized'])
        expect(value(samples, 'sluice_queue_jobs', { queue, state }), `${queue} ${state}`).toBeTypeOf(
          'number',
        );
    expect(value(samples, 'sluice_queue_jobs', { queue: 'sync', state: 'completed' })).toBe(1);
    expect(value(samples, 'sluice_queue_jobs', { queue: 'sync', state: 'failed' })).toBe(0);
    expect(value(samples, 'sluice_schedules', { queue: 'sync' })).toBe(1);
    expect(value(samples, 'sluice_redis_up')).toBe(1);
  });

  it('counts HTTP requests by route template; unmatched paths share one label', () => {
    const http = (method: string, route: string, status: string) =>
      value(samples, 'sluice_http_requests_total', { method, route, status });
    expect(http('POST', '/raw-data-sources/:id/sync', '202')).toBe(1);
    expect(http('POST', '/raw-data-sources', '201')).toBe(1);
    expect(http('GET', '/raw-data-sources/:id', '404')).toBe(1);
    expect(http('GET', '/raw-data-sources/:id', '200')).toBeGreaterThanOrEqual(1);
    expect(http('GET', '/raw-data-sources/:id', '401')).toBe(1);
    expect(http('GET', 'unmatched', '404')).toBe(25);
    expect(
      value(samples, 'sluice_http_request_duration_seconds_count', {
        method: 'POST',
        route: '/raw-data-sources/:id/sync',
        status_class: '2xx',
      }),
    ).toBe(1);
    // Route labels are router templates (or the two fixed names), whatever paths were asked for.
    const templates = new Set(
      api.container.routers
        .flatMap((r) => r.stack.map((l) => String(l.path)))
        .concat(['unmatched', '/admin/queues']),
    );
    const routes = new Set(samples.filter((s) => s.labels.route !== undefined).map((s) => s.labels.route!));
    expect([...routes].filter((r) => !templates.has(r))).toEqual([]);
    expect(text).not.toContain('/no-such/');
  });

  it('needs a key like every GET (read scope)', async () => {
    expect((await api.request('GET', '/metrics', { token: null })).status).toBe(401);
  });

  it('has the process metrics and reconciler series, and no id, name or secret anywhere', () => {
    expect(value(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(value(samples, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    for (const kind of ['runs', 'sources', 'schedules_restored', 'schedules_removed'])
      expect(value(samples, 'sluice_reconciler_repairs_total', { kind }), kind).toBeTypeOf('number');
    for (const leak of [SECRET, sourceId, runId, REQUEST_ID, `metrics-${process.pid}`, 'loader'])
      expect(text, leak).not.toContain(leak);
  });

  it('counts reconciler repairs by kind: a lost run closed, a lost schedule restored', async () => {
    const before = async () => parse((await api.get('/metrics')).text);
    const repairs = (s: Sample[], kind: string) => value(s, 'sluice_reconciler_repairs_total', { kind });
    const start = await before();
    // A run queued an hour ago whose job never reached Redis: lost.
    await api.knex('sync_runs').insert({
      id: '11111111-1111-4111-8111-111111111111',
      source_id: sourceId,
      trigger: 'manual',
      status: 'queued',
      attempt: 0,
      queued_at: new Date(Date.now() - 3600_000),
    });
    await worker.repair();
    // The source's scheduler lost from Redis.
    await api.container.queues.sync.removeJobScheduler(schedulerId(sourceId));
    await worker.reconcileSchedules();
    const after = await before();
    expect(repairs(after, 'runs')! - repairs(start, 'runs')!).toBe(1);
    expect(repairs(after, 'schedules_restored')! - repairs(start, 'schedules_restored')!).toBe(1);
    expect(value(after, 'sluice_schedules', { queue: 'sync' })).toBe(1);
  });

  it('job log lines carry jobId, runId, sourceId, queue and the requestId of the POST; no secret', () => {
    const lines = api.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const request = lines.find((l) => l.msg === 'request' && l.requestId === REQUEST_ID);
    expect(request).toMatchObject({ method: 'POST', status: 202 });
    const started = lines.find((l) => l.msg === 'sync started' && l.runId === runId);
    expect(started).toMatchObject({ jobId: runId, runId, sourceId, queue: 'sync', requestId: REQUEST_ID });
    for (const line of api.logs) expect(line).not.toContain(SECRET);
  });

  it('counts a permanent failure as failed and a transient one as retried, then success', async () => {
    const create = async (name: string, fail: string) =>
      (
        await api.post('/raw-data-sources', {
          name: `${name}-${process.pid}`,
          source_type: 'database',
          // The scripted connector puts the connection string into its error: it must not reach /metrics.
          connection_string: `postgres://loader:${SECRET}@127.0.0.1:5432/warehouse`,
          refresh_interval: 86400,
          metadata: { records: 2, fail },
        })
      ).body.id as string;
    const broken = await create('metrics-broken', 'permanent');
    const flaky = await create('metrics-flaky', 'transient-once');
    for (const id of [broken, flaky])
      expect((await api.post(`/raw-data-sources/${id}/sync`)).status).toBe(202);
    for (const [id, status] of [
      [broken, 'failed'],
      [flaky, 'success'],
    ] as const)
      await until(
        `${status} sync`,
        async () => (await api.get(`/raw-data-sources/${id}`)).body.sync_status,
        (s) => s === status,
        20_000,
        50,
      );
    const res = await api.get('/metrics');
    const after = parse(res.text);
    const jobs = (outcome: string) =>
      value(after, 'sluice_jobs_total', { queue: 'sync', source_type: 'database', outcome });
    expect(jobs('failed')).toBe(1);
    expect(jobs('retried')).toBe(1);
    expect(jobs('success')).toBe(2);
    expect(value(after, 'sluice_records_landed_total', { source_type: 'database' })).toBe(RECORDS + 2);
    expect(res.text).not.toContain(SECRET);
  });
});

describe('GET /metrics when Redis is down or frozen', () => {
  let api: TestApi;
  let redis: PrivateRedis;
  logTailsOnFailure();

  beforeAll(async () => {
    redis = await startPrivateRedis();
    api = await startTestApi({ env: { REDIS_URL: redis.url, READY_TIMEOUT_MS: '500' } });
    await until(
      'api redis ready',
      async () => api.container.redis.status,
      (s) => s === 'ready',
      10_000,
    );
  }, 60_000);
  afterAll(async () => {
    if (redis.child.running()) redis.child.proc.kill('SIGCONT');
    // Its Redis is gone: closing the queues may wait on it, so the close is bounded.
    await Promise.race([api?.close(), new Promise((r) => setTimeout(r, 20_000))]);
    await killAll();
  });

  const scrape = async () => {
    const started = performance.now();
    const res = await within(api.get('/metrics'), 5000, 'scrape');
    return { res, ms: performance.now() - started, samples: parse(res.text) };
  };

  it('answers 200 with sluice_redis_up 1, then 0 within the bound when Redis freezes, then when it is gone', async () => {
    const up = await scrape();
    expect(up.res.status).toBe(200);
    expect(value(up.samples, 'sluice_redis_up')).toBe(1);

    // Frozen: the connection still looks ready, commands just hang. The read gives up after 500 ms.
    redis.child.proc.kill('SIGSTOP');
    const frozen = await scrape();
    redis.child.proc.kill('SIGCONT');
    expect(frozen.res.status).toBe(200);
    expect(value(frozen.samples, 'sluice_redis_up')).toBe(0);
    expect(frozen.ms).toBeLessThan(1500);
    expect(frozen.samples.some((s) => s.name === 'sluice_queue_jobs')).toBe(false);

    await redis.stop();
    await until(
      'api notices redis is gone',
      async () => api.container.redis.status,
      (s) => s !== 'ready',
      10_000,
    );
    const down = await scrape();
    expect(down.res.status).toBe(200);
    expect(value(down.samples, 'sluice_redis_up')).toBe(0);
    expect(down.ms).toBeLessThan(500);
  });
});

describe('the worker role serves its own metrics on METRICS_PORT', () => {
  let api: TestApi;
  let child: Child;
  let port: number;
  logTailsOnFailure();

  beforeAll(async () => {
    api = await startTestApi();
    port = await freePort();
    child = startWorker('metrics-worker', {
      databaseUrl: api.database.url,
      redisUrl: TEST_REDIS_URL,
      queuePrefix: api.container.config.queuePrefix,
      extra: { METRICS_PORT: String(port) },
    });
    await workerReady(child);
    await waitForLog(child, (l) => l.msg === 'metrics listening', 10_000);
  }, 150_000);
  afterAll(async () => {
    await killAll();
    await api?.close();
  });

  it("counts the worker's jobs there, on loopback, and answers nothing but /metrics", async () => {
    const created = await api.post('/raw-data-sources', {
      name: `metrics-worker-${process.pid}`,
      source_type: 'database',
      connection_string: `postgres://loader:${SECRET}@127.0.0.1:5432/warehouse`,
      refresh_interval: 86400,
      metadata: { records: 4 },
    });
    expect(created.status, created.text).toBe(201);
    const queued = await api.request('POST', `/raw-data-sources/${created.body.id}/sync`, {
      headers: { 'x-request-id': REQUEST_ID },
    });
    expect(queued.status).toBe(202);
    await until(
      'worker process finished the sync',
      async () => (await api.get(`/raw-data-sources/${created.body.id}`)).body.sync_status,
      (s) => s === 'success' || s === 'failed',
      30_000,
    );
    const res = await within(fetch(`http://127.0.0.1:${port}/metrics`), 5000, 'worker scrape');
    expect(res.status).toBe(200);
    const text = await res.text();
    const samples = parse(text);
    const job = { queue: 'sync', source_type: 'database', outcome: 'success' };
    expect(value(samples, 'sluice_jobs_total', job)).toBe(1);
    expect(value(samples, 'sluice_records_landed_total', { source_type: 'database' })).toBe(4);
    expect(value(samples, 'sluice_redis_up')).toBe(1);
    expect(value(samples, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(text).not.toContain(SECRET);
    expect((await within(fetch(`http://127.0.0.1:${port}/other`), 5000, 'other path')).status).toBe(404);

    // The worker process's lines of this job lead back to the API request that queued it.
    // Written at once but flushed in batches (at least every 200 ms): wait for the line to arrive.
    const line = await waitForLog(
      child,
      (l) => l.msg === 'sync started' && l.runId === queued.body.run_id,
      5000,
    );
    expect(line).toMatchObject({ requestId: REQUEST_ID, sourceId: created.body.id, queue: 'sync' });
    expect(child.stdout()).not.toContain(SECRET);
  });
});
