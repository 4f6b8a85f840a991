import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { TEST_REDIS_URL } from '../helpers/test-env';
import {
  killAll,
  logTailsOnFailure,
  runLogs,
  sleep,
  startWorker,
  until,
  workerReady,
  type Child,
} from './process-kit';

/**
 * A source that crashes its process ends failed instead of crashing it forever, with real
 * processes: one worker process at a time, restarted by this test (as a supervisor would)
 * whenever it dies. The source's connector makes the process exit mid-sync on every attempt.
 * With WORKER_MAX_STALLED=2 the job may lose its worker twice and run again; the third death fails
 * the run with a reason that says so, and the next worker stays up.
 */
const MAX_STALLED = 2;
const SCRIPT = { records: 40, batch: 2, delay_ms: 50, crash: 'exit' };

describe('a source whose sync kills its worker process every time', () => {
  let api: TestApi;
  const workers: Child[] = [];

  logTailsOnFailure();

  beforeAll(async () => {
    api = await startTestApi({ env: { SYNC_ATTEMPTS: '3' } });
  }, 60_000);

  afterAll(async () => {
    await killAll();
    await api?.close();
  });

  const start = async () => {
    const worker = startWorker(`worker-${workers.length + 1}`, {
      databaseUrl: api.database.url,
      redisUrl: TEST_REDIS_URL,
      queuePrefix: api.container.config.queuePrefix,
      extra: { WORKER_MAX_STALLED: String(MAX_STALLED), RECONCILE_INTERVAL_MS: '600000' },
    });
    workers.push(worker);
    await workerReady(worker);
    return worker;
  };

  it(`ends failed after ${MAX_STALLED + 1} worker deaths, with a clear reason; the next worker stays up`, async () => {
    await start();
    const created = await api.post('/raw-data-sources', {
      name: `crash-${process.pid}`,
      source_type: 'database',
      connection_string: 'postgres://loader:pw@127.0.0.1:5432/warehouse',
      metadata: SCRIPT,
    });
    expect(created.status, created.text).toBe(201);
    const sourceId: string = created.body.id;
    const queued = await api.post(`/raw-data-sources/${sourceId}/sync`);
    expect(queued.status, queued.text).toBe(202);
    const runId: string = queued.body.run_id;

    // The supervisor: a dead worker is replaced, at most a few times more than the bound.
    const run = await until(
      'the run is final',
      async () => {
        const last = workers[workers.length - 1]!;
        if (!last.running() && workers.length <= MAX_STALLED + 3) await start();
        return (await api.knex('sync_runs').where({ id: runId }).first()) as Record<string, unknown>;
      },
      (r) => r.status !== 'queued' && r.status !== 'running',
      240_000,
      200,
    );
    const deaths = workers.filter((w) => !w.running());
    const started = workers.flatMap((w) => runLogs(w, runId, 'sync started'));
    console.log(
      `[crashing-source] worker deaths ${deaths.map((w) => w.proc.exitCode).join(',')}; ` +
        `attempts started ${started.length}; run ${run.status} at attempt ${run.attempt}: ${String(run.error)}`,
    );
    expect(run.status).toBe('failed');
    expect(String(run.error)).toContain(
      `the worker process running this sync died ${MAX_STALLED + 1} times (killed, out of memory or crashed; WORKER_MAX_STALLED=${MAX_STALLED})`,
    );
    expect(deaths.map((w) => w.proc.exitCode)).toEqual(Array(MAX_STALLED + 1).fill(70));
    const source = (await api.get(`/raw-data-sources/${sourceId}`)).body;
    expect(source.sync_status).toBe('failed');
    // Not run again: the job is failed, and the last worker lives on.
    const job = (await api.get(`/jobs/${runId}`)).body;
    expect(job).toMatchObject({ state: 'failed' });
    await sleep(2000);
    const live = workers.filter((w) => w.running());
    expect(live).toHaveLength(1);
    expect(await api.container.queues.sync.getJobCounts('active', 'wait')).toEqual({ active: 0, wait: 0 });
  }, 300_000);
});
