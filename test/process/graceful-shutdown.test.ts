import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { TEST_REDIS_URL } from '../helpers/test-env';
import {
  exitWithin,
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
 * SIGTERM on a real worker process in the middle of a slow sync: with enough grace the job
 * finishes; with too little it is handed back to the queue (not left active to stall) and another
 * worker finishes it from the committed state; a job that ignores the cancel cannot keep the
 * process alive past grace + hand-back time.
 *
 * All workers start once, together (a start costs seconds on a loaded machine). Each case decides
 * which worker takes its job by freezing (SIGSTOP) the others while the job is handed out.
 */
const HAND_BACK_MS = 5000; // src/main.ts: after the grace, cancelled jobs get this long to return

describe('a worker process stopped with SIGTERM mid-sync', () => {
  let api: TestApi;
  let patient: Child;
  let hasty: Child;
  let stubborn: Child;
  let rescuer: Child;

  logTailsOnFailure();

  beforeAll(async () => {
    api = await startTestApi({ env: { SYNC_ATTEMPTS: '3' } });
    const env = {
      databaseUrl: api.database.url,
      redisUrl: TEST_REDIS_URL,
      queuePrefix: api.container.config.queuePrefix,
    };
    const grace = (ms: number) => ({ ...env, extra: { SHUTDOWN_GRACE_MS: String(ms) } });
    patient = startWorker('patient', grace(20_000));
    hasty = startWorker('hasty', grace(500));
    stubborn = startWorker('stubborn', grace(500));
    rescuer = startWorker('rescuer', grace(500));
    await Promise.all([patient, hasty, stubborn, rescuer].map(workerReady));
  }, 150_000);

  afterAll(async () => {
    for (const w of [patient, hasty, stubborn, rescuer]) if (w?.running()) w.proc.kill('SIGCONT');
    await killAll();
    await api?.close();
  });

  const landed = async (sourceId: string) =>
    Number((await api.knex('raw_records').where({ source_id: sourceId }).count({ n: '*' }).first())?.n ?? 0);
  const landedNs = async (sourceId: string) => {
    const rows: { n: string }[] = await api
      .knex('raw_records')
      .select(api.knex.raw("payload->>'n' as n"))
      .where({ source_id: sourceId });
    return rows.map((r) => Number(r.n)).sort((a, b) => a - b);
  };
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const messages = (child: Child) => child.logs.map((l) => l.msg);

  async function slowSync(name: string, metadata: Record<string, unknown>) {
    const created = await api.post('/raw-data-sources', {
      name: `${name}-${process.pid}`,
      source_type: 'database',
      connection_string: 'postgres://loader:pw@127.0.0.1:5432/warehouse',
      metadata: { batch: 2, delay_ms: 150, ...metadata },
    });
    expect(created.status, created.text).toBe(201);
    const queued = await api.post(`/raw-data-sources/${created.body.id}/sync`);
    expect(queued.status, queued.text).toBe(202);
    return { sourceId: created.body.id as string, runId: queued.body.run_id as string };
  }

  const freeze = (ws: Child[]) => ws.filter((w) => w.running()).forEach((w) => w.proc.kill('SIGSTOP'));
  const thaw = (ws: Child[]) => ws.filter((w) => w.running()).forEach((w) => w.proc.kill('SIGCONT'));
  const others = (w: Child) => [patient, hasty, stubborn, rescuer].filter((o) => o !== w);

  /** Queues a slow sync that `worker` takes (the others are frozen meanwhile) and waits for some records. */
  async function syncOn(worker: Child, name: string, metadata: Record<string, unknown>) {
    freeze(others(worker));
    try {
      const started = await slowSync(name, metadata);
      await waitForLog(worker, (l) => l.msg === 'sync started' && l.runId === started.runId, 30_000);
      return started;
    } finally {
      thaw(others(worker));
    }
  }

  const finalStatus = (sourceId: string, ms: number) =>
    until(
      'the source reached a final status',
      async () => (await api.get(`/raw-data-sources/${sourceId}`)).body,
      (s) => s.sync_status === 'success' || s.sync_status === 'failed',
      ms,
    );

  it('with grace longer than the job: the job finishes, then the process exits 0', async () => {
    // The others stay frozen until the patient worker is gone, to see that it takes no new job.
    freeze(others(patient));
    try {
      const { sourceId, runId } = await slowSync('patient', { records: 20 });
      await waitForLog(patient, (l) => l.msg === 'sync started' && l.runId === runId, 30_000);
      await until(
        'some records landed',
        () => landed(sourceId),
        (n) => n >= 4,
        30_000,
        50,
      );

      patient.proc.kill('SIGTERM');
      // Queued once the worker is known to be stopping, not merely signalled: on a loaded machine
      // the signal may not have been handled yet when the job is added.
      await waitForLog(patient, (l) => l.msg === 'shutting down', 15_000);
      const later = await slowSync('after-sigterm', { records: 2 });
      const exit = await exitWithin(patient, 30_000);
      expect(exit, patient.stderr().slice(-2000)).toEqual({ code: 0, signal: null });

      // Finished by the same process, in one attempt, before it stopped.
      const done = await finalStatus(sourceId, 5_000);
      expect(done.sync_status, done.error_message).toBe('success');
      expect(await landedNs(sourceId)).toEqual(range(20));
      const run = (await api.get(`/raw-data-sources/${sourceId}/runs`)).body.data[0];
      expect(run).toMatchObject({ id: runId, status: 'success', attempt: 1, records: 20 });
      expect((await api.get(`/jobs/${runId}`)).body.state).toBe('completed');
      const log = messages(patient);
      expect(log.indexOf('shutting down')).toBeLessThan(log.lastIndexOf('stopped'));
      expect(log.at(-1)).toBe('stopped');
      expect(log).not.toContain('job handed back at shutdown');
      // A stopping worker takes no new job: the one queued after SIGTERM still waits.
      // It has exited (and its output was read to the end): everything it logged is here.
      expect(runLogs(patient, later.runId, 'sync started')).toEqual([]);
      expect((await api.get(`/jobs/${later.runId}`)).body.state).toBe('waiting');
    } finally {
      thaw(others(patient));
    }
  }, 120_000);

  it('with grace shorter than the job: the job is handed back and another worker finishes it', async () => {
    const GRACE_MS = 500;
    const records = 60;
    const { sourceId, runId } = await syncOn(hasty, 'hasty', { records });
    await until(
      'some records landed',
      () => landed(sourceId),
      (n) => n >= 4,
      30_000,
      50,
    );

    const signalledAt = Date.now();
    hasty.proc.kill('SIGTERM');
    const exit = await exitWithin(hasty, GRACE_MS + 15_000);
    const exitMs = Date.now() - signalledAt;
    expect(exit, hasty.stderr().slice(-2000)).toEqual({ code: 0, signal: null });
    const landedAtExit = await landed(sourceId);
    expect(landedAtExit, 'the job finished within the grace: nothing was handed back').toBeLessThan(records);
    expect(runLogs(hasty, runId, 'job handed back at shutdown')).toHaveLength(1);
    expect(messages(hasty).at(-1)).toBe('stopped');

    const done = await finalStatus(sourceId, 45_000);
    expect(done.sync_status, done.error_message).toBe('success');
    const retried = await settledRunLogs([stubborn, rescuer], runId, 'sync started');
    expect(retried).toHaveLength(1);
    expect(Number(retried[0]!.attempt)).toBe(2);
    expect(await landedNs(sourceId)).toEqual(range(records));
    const run = (await api.get(`/raw-data-sources/${sourceId}/runs`)).body.data[0];
    expect(run).toMatchObject({ id: runId, status: 'success', attempt: 2, records });

    // Handed back, never stalled; nothing left active or waiting in the queue.
    const job = await api.container.queues.sync.getJob(runId);
    expect(await job?.getState()).toBe('completed');
    expect(job?.stalledCounter).toBe(0);
    // BullMQ counts the completion as one attempt made; the hand-back counted none.
    expect(job?.attemptsMade).toBe(1);
    await until(
      'the queue drained',
      () => api.container.queues.sync.getJobCounts('active', 'wait'),
      (c) => c.active === 0 && c.wait === 0,
      30_000,
    );
    console.log(
      `[graceful-shutdown] grace ${GRACE_MS} ms: SIGTERM → exit ${exitMs} ms with ${landedAtExit}/${records} landed`,
    );
  }, 120_000);

  it('a job that ignores the cancel: the process exits anyway after grace + hand-back time, and the job is retried', async () => {
    const GRACE_MS = 500;
    const records = 160;
    const { sourceId, runId } = await syncOn(stubborn, 'stubborn', {
      records,
      delay_ms: 100,
      ignore_abort: true,
    });
    await until(
      'some records landed',
      () => landed(sourceId),
      (n) => n >= 4,
      30_000,
      50,
    );

    const signalledAt = Date.now();
    stubborn.proc.kill('SIGTERM');
    const exit = await exitWithin(stubborn, GRACE_MS + HAND_BACK_MS + 15_000);
    const exitMs = Date.now() - signalledAt;
    expect(exit, stubborn.stderr().slice(-2000)).toEqual({ code: 1, signal: null });
    expect(messages(stubborn)).toContain('shutdown deadline passed with work in flight; exiting');
    const landedAtExit = await landed(sourceId);
    expect(landedAtExit, 'the job finished before the deadline: nothing was tested').toBeLessThan(records);

    // Its lock is no longer renewed: the job stalls once and the rescuer finishes it, exactly once.
    const done = await finalStatus(sourceId, 45_000);
    expect(done.sync_status, done.error_message).toBe('success');
    expect(await settledRunLogs(rescuer, runId, 'sync started')).toHaveLength(1);
    expect(await landedNs(sourceId)).toEqual(range(records));
    console.log(
      `[graceful-shutdown] job ignoring the cancel: SIGTERM → forced exit ${exitMs} ms, ${landedAtExit}/${records} landed`,
    );
  }, 120_000);
});
