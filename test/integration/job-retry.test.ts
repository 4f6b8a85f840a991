import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { ScriptedConnector } from '../support/scripted-connector';
import { toEvent } from '../../src/events/event-bus';
import { until } from '../helpers/until';

/**
 * The Bull dashboard's Retry on a failed sync job calls job.retry('failed') (bull-board's
 * retryJob handler): the same job, same data, back in the queue. It used to complete as
 * {status: skipped, reason: run is no longer active}, the source left failed. Now it opens a new
 * run, or fails saying why it cannot.
 */
describe('retrying a finished sync job (the dashboard Retry)', () => {
  let api: TestApi;
  let seq = 0;
  beforeAll(async () => {
    api = await startTestApi({
      connectors: [new ScriptedConnector('database')],
      env: { SYNC_ATTEMPTS: '2' },
    });
    await api.startWorker();
  });
  afterAll(() => api.close());

  /** A source whose first sync fails for good; answers its ids and the failed job. */
  const failedSource = async () => {
    const created = await api.post('/raw-data-sources', {
      name: `retry-${process.pid}-${++seq}`,
      source_type: 'database',
      connection_string: 'postgres://loader:pw@127.0.0.1:5432/warehouse',
      metadata: { fail: 'permanent' },
    });
    expect(created.status, created.text).toBe(201);
    const sourceId: string = created.body.id;
    const queued = await api.post(`/raw-data-sources/${sourceId}/sync`);
    const runId: string = queued.body.run_id;
    const jobId: string = queued.body.job_id;
    await until(
      async () => (await api.get(`/jobs/${jobId}`)).body.state,
      (s) => s === 'failed',
    );
    expect((await api.get(`/raw-data-sources/${sourceId}`)).body.sync_status).toBe('failed');
    return { sourceId, runId, jobId };
  };
  const retry = async (jobId: string) => {
    const job = await api.container.queues.sync.getJob(jobId);
    expect(job).toBeDefined();
    await job!.retry('failed');
  };
  const settled = (jobId: string, previous: number) =>
    until(
      () => api.container.queues.sync.getJob(jobId),
      (j) => Boolean(j?.finishedOn) && (j?.processedOn ?? 0) > previous,
    );

  it('starts a new run: a new run row, the source syncing then succeeded, the old run kept', async () => {
    const { sourceId, runId, jobId } = await failedSource();
    await api.put(`/raw-data-sources/${sourceId}`, { metadata: { records: 3 } });
    const before = Date.now();
    await retry(jobId);
    const job = await settled(jobId, before);
    expect(await job!.getState()).toBe('completed');
    expect(job!.returnvalue).toMatchObject({ status: 'success', records: 3 });
    const newRunId: string = job!.returnvalue.runId;
    expect(newRunId).not.toBe(runId);
    expect(job!.data).toMatchObject({ sourceId, runId: newRunId, trigger: 'manual' });

    const runs = (await api.get(`/raw-data-sources/${sourceId}/runs`)).body.data;
    expect(runs.map((r: { id: string; status: string }) => [r.id, r.status])).toEqual([
      [newRunId, 'success'],
      [runId, 'failed'],
    ]);
    expect(runs[0]).toMatchObject({ trigger: 'manual', job_id: jobId, records: 3 });
    expect((await api.get(`/raw-data-sources/${sourceId}`)).body.sync_status).toBe('success');
    // sync.queued and sync.started were published for the new run: the source went through syncing.
    const events = await api.container.redis.xrange(`${api.container.config.queuePrefix}:events`, '-', '+');
    const types = events
      .map(([id, fields]) => toEvent(id, fields))
      .filter((e) => e.run_id === newRunId)
      .map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['sync.queued', 'sync.started', 'sync.succeeded']));
    const lines = (await api.get(`/raw-data-sources/${sourceId}/runs/${newRunId}/logs`)).body.lines;
    expect(lines[0]).toMatchObject({ event: 'started', message: expect.stringContaining('(manual)') });
  });

  it('is refused with a visible reason while another run holds the source', async () => {
    const { sourceId, runId, jobId } = await failedSource();
    const holder = randomUUID();
    await api
      .knex('sync_runs')
      .insert({ id: holder, source_id: sourceId, trigger: 'manual', job_id: holder });
    const before = Date.now();
    await retry(jobId);
    const job = await settled(jobId, before);
    expect(await job!.getState()).toBe('failed');
    expect(job!.failedReason).toBe(
      `retry refused: the source already has run ${holder} queued; wait for it to finish (run ${runId} stays failed)`,
    );
    const runs = await api.knex('sync_runs').where({ source_id: sourceId }).orderBy('queued_at');
    expect(runs.map((r) => r.status)).toEqual(['failed', 'queued']);
    await api.knex('sync_runs').where({ id: holder }).update({ status: 'cancelled' });
  });

  it('is refused with a visible reason when the source is inactive', async () => {
    const { sourceId, runId, jobId } = await failedSource();
    await api.put(`/raw-data-sources/${sourceId}`, { is_active: false });
    const before = Date.now();
    await retry(jobId);
    const job = await settled(jobId, before);
    expect(await job!.getState()).toBe('failed');
    expect(job!.failedReason).toBe(
      `retry refused: the source is inactive; activate it, then retry or sync again (run ${runId} stays failed)`,
    );
    const runs = await api.knex('sync_runs').where({ source_id: sourceId }).select('status');
    expect(runs.map((r) => r.status)).toEqual(['failed']);
  });
});
