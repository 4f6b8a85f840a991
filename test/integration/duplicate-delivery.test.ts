import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { ScriptedConnector } from '../support/scripted-connector';
import { until } from '../helpers/until';

/**
 * Regression (make chaos, case 6): two copies of one sync job (same run id, two BullMQ job ids),
 * taken by workers at the same moment, both started the run with attempt 1 and both landed every
 * batch: each record twice. A running run is now taken over only by a later attempt.
 */
describe('the same sync job delivered twice at once', () => {
  let api: TestApi;
  const SCRIPT = { records: 20, batch: 2, delay_ms: 20 };

  beforeAll(async () => {
    api = await startTestApi({ connectors: [new ScriptedConnector('database')] });
  });
  afterAll(() => api.close());

  it('runs once and lands every record once', async () => {
    const created = await api.post('/raw-data-sources', {
      name: `dup-${process.pid}`,
      source_type: 'database',
      connection_string: 'postgres://loader:pw@127.0.0.1:5432/warehouse',
      metadata: SCRIPT,
    });
    expect(created.status, created.text).toBe(201);
    const sourceId: string = created.body.id;
    // Both copies wait before any worker runs: the worker (concurrency 10) takes them together.
    const queued = await api.post(`/raw-data-sources/${sourceId}/sync`);
    expect(queued.status, queued.text).toBe(202);
    const runId: string = queued.body.run_id;
    await api.container.queues.sync.add(
      'sync',
      { sourceId, runId, trigger: 'manual' },
      { jobId: `${runId}-copy` },
    );
    expect(await api.container.queues.sync.getWaitingCount()).toBe(2);
    await api.startWorker();

    await until(
      () => api.container.queues.sync.getJobCounts('active', 'wait'),
      (c) => c.active === 0 && c.wait === 0,
    );
    const run = await until(
      () => api.knex('sync_runs').where({ id: runId }).first(),
      (r) => r?.status === 'success',
    );
    const rows: { n: string }[] = await api
      .knex('raw_records')
      .select(api.knex.raw("payload->>'n' as n"))
      .where({ source_id: sourceId });
    const ns = rows.map((r) => Number(r.n)).sort((a, b) => a - b);
    expect(ns).toEqual(Array.from({ length: SCRIPT.records }, (_, i) => i));
    expect(Number(run.records)).toBe(SCRIPT.records);
    const starts = api.logs.filter((l) => l.includes('"sync started"') && l.includes(runId));
    expect(starts).toHaveLength(1);
  });
});
