import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { ENQUEUE_TIMEOUT_MS } from '../../src/runs/sync.service';
import { startTestApi, type ApiResponse, type TestApi } from '../helpers/api-harness';
import {
  kill,
  killAll,
  logTailsOnFailure,
  settledRunLogs,
  startPrivateRedis,
  startWorker,
  until,
  within,
  waitForLog,
  workerReady,
  type Child,
  type PrivateRedis,
  type WorkerEnv,
} from './process-kit';

/**
 * Redis trouble with real processes: a private redis-server (the only Redis these tests stop, freeze
 * or wipe), the API in-process on it, and a scripted worker process on it.
 *  - down or frozen: producers answer 503 problem+json at once (a bounded wait on Redis, not a
 *    hang); CRUD keeps working; /readyz 503;
 *    once Redis is back, syncing works again through the same processes.
 *  - data wiped: the reconciler closes runs whose jobs are gone and repairs sources left syncing,
 *    and the schedules come back.
 */
/**
 * Producers give up on Redis after ENQUEUE_TIMEOUT_MS (runs/sync.service.ts): on an idle machine
 * the whole answer comes within 2 s (the latencies are printed). The assertion is looser, because on
 * a loaded 2-core machine the Postgres work and the HTTP round trip around that wait can take
 * seconds by themselves (1.3 s measured at load 15). What it tells apart is a bounded wait from a
 * hang: a producer waiting on a frozen Redis without a bound would not answer before CALL_BOUND_MS.
 */
const PRODUCER_BOUND_MS = ENQUEUE_TIMEOUT_MS + 4000;
const RECONCILE_INTERVAL_MS = 1000;
/** grace (= lock duration, 3 s) + two reconcile intervals, with room for a loaded machine. */
const REPAIR_BOUND_MS = 30_000;

describe('Redis lost under the API and a worker', () => {
  let redis: PrivateRedis;
  let api: TestApi;
  let env: WorkerEnv;
  let worker: Child;
  let driftedSource: string;
  const orphanScheduler = randomUUID();

  logTailsOnFailure();

  beforeAll(async () => {
    redis = await startPrivateRedis();
    api = await startTestApi({ env: { REDIS_URL: redis.url, SYNC_ATTEMPTS: '3', TEST_WAIT_MS: '3000' } });
    env = {
      databaseUrl: api.database.url,
      redisUrl: redis.url,
      queuePrefix: api.container.config.queuePrefix,
      extra: { RECONCILE_INTERVAL_MS: String(RECONCILE_INTERVAL_MS) },
    };
    // Drift for the start reconcile to repair: a source whose schedule is missing, a schedule without a source.
    driftedSource = await newSource();
    await api.container.queues.sync.removeJobScheduler(`source-${driftedSource}`);
    await api.container.schedules.apply({ id: orphanScheduler, refresh_interval: 60, is_active: true });
    worker = startWorker('worker', env);
    await workerReady(worker);
  }, 150_000);

  afterAll(async () => {
    // Workers first, then the API (while its Redis still answers), then the private Redis.
    if (worker) await kill(worker);
    await Promise.race([api?.close(), new Promise((r) => setTimeout(r, 20_000))]);
    await killAll();
  });

  let seq = 0;
  const newSource = async (metadata: Record<string, unknown> = {}) => {
    const { res } = await timed(() =>
      api.post('/raw-data-sources', {
        name: `redis-loss-${process.pid}-${++seq}`,
        source_type: 'database',
        connection_string: 'postgres://loader:pw@127.0.0.1:5432/warehouse',
        metadata,
      }),
    );
    expect(res.status, res.text).toBe(201);
    return res.body.id as string;
  };
  /** Every call into the API is bounded: a hang must fail the test, not stall it (and Redis frozen). */
  const CALL_BOUND_MS = 10_000;
  const timed = async (call: () => Promise<ApiResponse>) => {
    const started = performance.now();
    const res = await within(call(), CALL_BOUND_MS, 'API call');
    return { res, ms: Math.round(performance.now() - started) };
  };
  const expect503 = ({ res, ms }: { res: ApiResponse; ms: number }, what: string) => {
    expect(res.status, `${what}: ${res.text}`).toBe(503);
    expect(res.headers.get('content-type'), what).toContain('application/problem+json');
    expect(res.body, what).toMatchObject({ status: 503 });
    expect(ms, `${what} answered in ${ms} ms`).toBeLessThan(PRODUCER_BOUND_MS);
  };
  const producers = (id: string) =>
    [
      ['POST /sync', () => api.post(`/raw-data-sources/${id}/sync`)],
      ['POST /test', () => api.post(`/raw-data-sources/${id}/test`)],
      ['POST /sync-all', () => api.post('/raw-data-sources/sync-all')],
      ['GET /jobs/{id}', () => api.get(`/jobs/${randomUUID()}`)],
    ] as const;
  /** CRUD on sources: every call 2xx, with its latency. */
  const crud = async () => {
    const times: Record<string, number> = {};
    const create = await timed(() =>
      api.post('/raw-data-sources', {
        name: `crud-${process.pid}-${++seq}`,
        source_type: 'api',
        connection_string: 'https://127.0.0.1:9/x',
      }),
    );
    expect(create.res.status, create.res.text).toBe(201);
    times.create = create.ms;
    const id = create.res.body.id as string;
    const calls = [
      ['get', () => api.get(`/raw-data-sources/${id}`), 200],
      ['list', () => api.get('/raw-data-sources'), 200],
      [
        'update',
        () => api.put(`/raw-data-sources/${id}`, { refresh_interval: 600, metadata: { note: 'edited' } }),
        200,
      ],
      ['delete', () => api.del(`/raw-data-sources/${id}`), 204],
    ] as const;
    for (const [name, call, status] of calls) {
      const { res, ms } = await timed(call);
      expect(res.status, `${name}: ${res.text}`).toBe(status);
      times[name] = ms;
    }
    return times;
  };
  const schedulerOf = (id: string) => api.container.queues.sync.getJobScheduler(`source-${id}`);

  it('a worker reconciles the schedules when it starts', async () => {
    // Drift was made before the worker started (beforeAll): one schedule missing, one orphaned.
    const report = await waitForLog(worker, (l) => l.msg === 'schedules reconciled', 10_000);
    expect(report).toMatchObject({ removed: 1 });
    expect(Number(report.upserted)).toBeGreaterThanOrEqual(1);
    expect(await schedulerOf(driftedSource)).toBeTruthy();
    expect(await api.container.queues.sync.getJobScheduler(`source-${orphanScheduler}`)).toBeFalsy();
  });

  it('down: producers 503 fast, CRUD works, /readyz 503; back: syncing works again', async () => {
    const sourceId = await newSource({ records: 3 });

    // Frozen (SIGSTOP): connected but silent, the case a connection-status check cannot see.
    redis.child.proc.kill('SIGSTOP');
    const frozen: Record<string, number> = {};
    try {
      for (const [what, call] of producers(sourceId)) {
        const answer = await timed(call);
        expect503(answer, `${what} (Redis frozen)`);
        frozen[what] = answer.ms;
      }
      const ready = await timed(() => api.get('/readyz'));
      expect(ready.res.status).toBe(503);
      frozen.readyz = ready.ms;
      for (const [name, ms] of Object.entries(await crud())) frozen[`crud ${name}`] = ms;
    } finally {
      redis.child.proc.kill('SIGCONT');
    }

    // Down (SIGKILL): the connection is refused.
    const port = redis.port;
    await redis.stop();
    await until(
      'the API saw Redis go',
      async () => api.container.redis.status,
      (s) => s !== 'ready',
      10_000,
    );
    const down: Record<string, number> = {};
    for (const [what, call] of producers(sourceId)) {
      const answer = await timed(call);
      expect503(answer, `${what} (Redis down)`);
      down[what] = answer.ms;
    }
    const ready = await timed(() => api.get('/readyz'));
    expect(ready.res.status).toBe(503);
    expect(ready.res.body.checks.redis).not.toBe('ok');
    down.readyz = ready.ms;
    for (const [name, ms] of Object.entries(await crud())) down[`crud ${name}`] = ms;
    // Nothing was half-done: no run was opened for the refused syncs.
    const openRuns = await api
      .knex('sync_runs')
      .where({ source_id: sourceId })
      .whereIn('status', ['queued', 'running']);
    expect(openRuns).toEqual([]);

    // Back on the same port, empty (no persistence): the same API and worker processes recover.
    const restartedAt = Date.now();
    redis = await startPrivateRedis(port);
    await until(
      '/readyz is 200 again',
      async () => (await api.get('/readyz')).status,
      (s) => s === 200,
      20_000,
      200,
    );
    const readyAfterMs = Date.now() - restartedAt;
    const queued = await until(
      'a sync is accepted again',
      () => api.post(`/raw-data-sources/${sourceId}/sync`),
      (r) => r.status === 202,
      10_000,
      200,
    );
    await until(
      'the worker ran the sync after the outage',
      async () => (await api.get(`/raw-data-sources/${sourceId}/runs`)).body.data[0],
      (r) => r?.id === queued.body.run_id && r.status === 'success',
      30_000,
    );
    expect(await settledRunLogs(worker, queued.body.run_id, 'sync started')).toHaveLength(1);
    // The restart lost every schedule with the data; the running worker puts them back.
    await until('the schedule is back', () => schedulerOf(sourceId), Boolean, REPAIR_BOUND_MS, 200);

    console.log(
      `[redis-loss] 503 latency ms, Redis frozen: ${JSON.stringify(frozen)}; Redis down: ${JSON.stringify(down)}; ` +
        `ready again ${readyAfterMs} ms after restart`,
    );
  }, 120_000);

  it('data wiped: lost runs are closed, sources left syncing repaired, schedules restored', async () => {
    const slow = await newSource({ records: 400, batch: 2, delay_ms: 150 });
    const waiting = await newSource({ records: 3 });
    const orphan = await newSource({ records: 3 });
    // Left syncing with no run at all (a crash between two statements).
    await api.knex('raw_data_sources').update({ sync_status: 'syncing' }).where({ id: orphan });

    // One run in progress on the worker…
    const slowRun: string = (await api.post(`/raw-data-sources/${slow}/sync`)).body.run_id;
    await waitForLog(worker, (l) => l.msg === 'sync started' && l.runId === slowRun, 30_000);
    // …and one queued that no worker took yet (the worker is frozen while it is queued and wiped).
    worker.proc.kill('SIGSTOP');
    let waitingRun: string;
    let wipedAt: number;
    try {
      const { res: queued } = await timed(() => api.post(`/raw-data-sources/${waiting}/sync`));
      expect(queued.status, queued.text).toBe(202);
      waitingRun = queued.body.run_id;
      expect(await redis.client().flushall()).toBe('OK');
      wipedAt = Date.now();
    } finally {
      worker.proc.kill('SIGCONT');
    }

    const sources = async () =>
      api
        .knex('raw_data_sources')
        .select('id', 'sync_status', 'error_message')
        .whereIn('id', [slow, waiting, orphan]);
    const repaired = await until(
      'the reconciler repaired every source',
      sources,
      (rows) => rows.every((r) => r.sync_status === 'failed'),
      REPAIR_BOUND_MS,
      200,
    );
    const repairMs = Date.now() - wipedAt;
    const byId = new Map(repaired.map((r) => [r.id, r]));
    expect(byId.get(orphan)?.error_message).toContain('interrupted');
    for (const [source, runId] of [
      [slow, slowRun],
      [waiting, waitingRun],
    ] as const) {
      expect(byId.get(source)?.error_message).toContain('lost');
      const run = await api.knex('sync_runs').where({ id: runId }).first();
      expect(run).toMatchObject({ status: 'failed' });
      expect(run.error).toContain('lost');
    }
    // The worker still running the wiped job stops at its next batch instead of landing into a closed run.
    await waitForLog(
      worker,
      (l) => l.runId === slowRun && l.msg.startsWith('sync attempt lost its run'),
      10_000,
    );

    // The schedules went with the data; the running worker restores them.
    const scheduled = await until(
      'schedules restored',
      () => Promise.all([slow, waiting, orphan].map(schedulerOf)),
      (all) => all.every(Boolean),
      REPAIR_BOUND_MS,
      200,
    );
    expect(scheduled.map((s) => s?.every)).toEqual([3600_000, 3600_000, 3600_000]);

    // And the repaired sources sync again.
    const again = await api.post(`/raw-data-sources/${waiting}/sync`);
    expect(again.status, again.text).toBe(202);
    await until(
      'a repaired source syncs again',
      async () => (await api.get(`/raw-data-sources/${waiting}`)).body.sync_status,
      (s) => s === 'success',
      30_000,
    );
    console.log(`[redis-loss] wipe → every lost run and source repaired in ${repairMs} ms`);
  }, 120_000);
});
