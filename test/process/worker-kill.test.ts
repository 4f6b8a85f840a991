import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { TEST_REDIS_URL } from '../helpers/test-env';
import {
  kill,
  killAll,
  logTailsOnFailure,
  runLogs,
  settledRunLogs,
  startWorker,
  until,
  waitForLog,
  workerReady,
  type Child,
} from './process-kit';

/**
 * "Never stuck", with real processes: two scripted worker processes share a queue prefix and a
 * database; the one running a slow sync is SIGKILLed mid-run. The other must notice the stalled job
 * (lock 3 s, stall check every 2 s), run it again from the committed state, and finish it.
 */
const SOURCE = { records: 40, batch: 2, delay_ms: 150 };
/** lock expiry (3 s) + two stall checks (2 s each) + the rest of the sync (≤ 3 s), on a loaded machine. */
const RECOVERY_BOUND_MS = 45_000;

describe('a worker SIGKILLed in the middle of a sync', () => {
  let api: TestApi;
  let workers: Child[] = [];

  logTailsOnFailure();

  beforeAll(async () => {
    api = await startTestApi({ env: { SYNC_ATTEMPTS: '3' } });
    const env = {
      databaseUrl: api.database.url,
      redisUrl: TEST_REDIS_URL,
      queuePrefix: api.container.config.queuePrefix,
    };
    // Three: one is killed in the first case, one frozen in the second; a live one always remains.
    workers = ['worker-a', 'worker-b', 'worker-c'].map((name) => startWorker(name, env));
    await Promise.all(workers.map(workerReady));
  }, 150_000);

  afterAll(async () => {
    await killAll();
    await api?.close();
  });

  const landed = async (sourceId: string) =>
    Number((await api.knex('raw_records').where({ source_id: sourceId }).count({ n: '*' }).first())?.n ?? 0);

  it('is retried by the other worker and lands every record exactly once', async () => {
    const created = await api.post('/raw-data-sources', {
      name: `kill-${process.pid}`,
      source_type: 'database',
      connection_string: 'postgres://loader:pw@127.0.0.1:5432/warehouse',
      metadata: SOURCE,
    });
    expect(created.status, created.text).toBe(201);
    const sourceId: string = created.body.id;
    const queued = await api.post(`/raw-data-sources/${sourceId}/sync`);
    expect(queued.status, queued.text).toBe(202);
    const runId: string = queued.body.run_id;

    // Running, with part of the records committed: then the worker holding the job dies.
    const holder = (await until(
      'a worker started the run',
      async () => workers.find((w) => runLogs(w, runId, 'sync started').length > 0),
      Boolean,
      30_000,
      50,
    ))!;
    await until(
      'some records landed',
      () => landed(sourceId),
      (n) => n >= 6,
      30_000,
      50,
    );
    const others = workers.filter((w) => w !== holder && w.running());
    const killedAt = Date.now();
    await kill(holder);
    const landedAtKill = await landed(sourceId);
    expect(landedAtKill, 'the sync finished before the kill: nothing was tested').toBeLessThan(
      SOURCE.records,
    );

    const done = await until(
      'the source reached a final status',
      async () => (await api.get(`/raw-data-sources/${sourceId}`)).body,
      (s) => s.sync_status === 'success' || s.sync_status === 'failed',
      RECOVERY_BOUND_MS,
    );
    const recoveredAt = Date.now();
    expect(done.sync_status, done.error_message).toBe('success');

    // Another worker ran it again, as a later attempt.
    const retried = await settledRunLogs(others, runId, 'sync started');
    expect(retried.length, others.map((w) => w.stdout().slice(-1500)).join('\n')).toBe(1);
    expect(Number(retried[0]!.attempt)).toBeGreaterThanOrEqual(2);
    const run = (await api.get(`/raw-data-sources/${sourceId}/runs`)).body.data;
    expect(run).toHaveLength(1);
    expect(run[0]).toMatchObject({ id: runId, status: 'success', records: SOURCE.records });
    expect(run[0].attempt).toBeGreaterThanOrEqual(2);

    // Resumed from the committed state: every n exactly once.
    const rows: { n: string }[] = await api
      .knex('raw_records')
      .select(api.knex.raw("payload->>'n' as n"))
      .where({ source_id: sourceId });
    const ns = rows.map((r) => Number(r.n)).sort((a, b) => a - b);
    expect(ns).toEqual(Array.from({ length: SOURCE.records }, (_, i) => i));

    // Nothing left behind in the queue. The source's status is written before the job completes
    // (the processor returns after closing the run): wait for the job, then check.
    const job = await until(
      'the job completed',
      async () => (await api.get(`/jobs/${runId}`)).body,
      (j) => j.state === 'completed',
      30_000,
    );
    expect(job).toMatchObject({ state: 'completed' });
    expect(await api.container.queues.sync.getJobCounts('active', 'wait')).toEqual({ active: 0, wait: 0 });
    // Delayed: only the source's next scheduler tick.
    const delayed = await api.container.queues.sync.getDelayed();
    expect(delayed.map((j) => j.repeatJobKey)).toEqual([`source-${sourceId}`]);

    const retriedAt = Date.parse(String(retried[0]!.time));
    console.log(
      `[worker-kill] killed with ${landedAtKill}/${SOURCE.records} landed; ` +
        `kill → retry started ${retriedAt - killedAt} ms; kill → success ${recoveredAt - killedAt} ms`,
    );
  }, 120_000);

  it('a frozen worker that wakes after its job moved on does not land records twice', async () => {
    const created = await api.post('/raw-data-sources', {
      name: `freeze-${process.pid}`,
      source_type: 'database',
      connection_string: 'postgres://loader:pw@127.0.0.1:5432/warehouse',
      metadata: SOURCE,
    });
    const sourceId: string = created.body.id;
    const runId: string = (await api.post(`/raw-data-sources/${sourceId}/sync`)).body.run_id;
    const live = workers.filter((w) => w.running());
    const holder = (await until(
      'a worker started the run',
      async () => live.find((w) => runLogs(w, runId, 'sync started').length > 0),
      Boolean,
      30_000,
      50,
    ))!;
    await until(
      'some records landed',
      () => landed(sourceId),
      (n) => n >= 6,
      30_000,
      50,
    );
    // A long GC pause, a VM freeze: the lock expires and another worker takes the job over.
    holder.proc.kill('SIGSTOP');
    try {
      await until(
        'another worker took the job over',
        async () => (await api.container.queues.sync.getJob(runId))?.attemptsStarted ?? 0,
        (n) => n >= 2,
        30_000,
      );
    } finally {
      holder.proc.kill('SIGCONT');
    }
    const done = await until(
      'the source reached a final status',
      async () => (await api.get(`/raw-data-sources/${sourceId}`)).body,
      (s) => s.sync_status === 'success' || s.sync_status === 'failed',
      RECOVERY_BOUND_MS,
    );
    expect(done.sync_status, done.error_message).toBe('success');
    // The woken worker still had batches in memory: its next one is refused, and it stops.
    await waitForLog(
      holder,
      (l) => l.runId === runId && l.msg.startsWith('sync attempt lost its run'),
      15_000,
    );
    const rows: { n: string }[] = await api
      .knex('raw_records')
      .select(api.knex.raw("payload->>'n' as n"))
      .where({ source_id: sourceId });
    const ns = rows.map((r) => Number(r.n)).sort((a, b) => a - b);
    expect(ns).toEqual(Array.from({ length: SOURCE.records }, (_, i) => i));
  }, 120_000);
});
