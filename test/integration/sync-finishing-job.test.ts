import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncDedupId } from '../../src/queue/queue-names';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { ScriptedConnector } from '../support/scripted-connector';

/**
 * Regression (make chaos, case 8): a sync requested while the source's previous job was finishing
 * (its run already closed in Postgres, its deduplication key not yet released in Redis) answered
 * 202 with a run id that it had just cancelled: the client waited on a dead run and nothing synced.
 */
describe('POST /sync while the previous job of the source is finishing', () => {
  let api: TestApi;

  beforeAll(async () => {
    api = await startTestApi({ connectors: [new ScriptedConnector('database')] });
  });
  afterAll(() => api.close());

  it('answers 409 naming that job, not 202 with a cancelled run', async () => {
    const created = await api.post('/raw-data-sources', {
      name: `finishing-${process.pid}`,
      source_type: 'database',
      connection_string: 'postgres://loader:pw@127.0.0.1:5432/warehouse',
      metadata: { records: 2 },
    });
    expect(created.status, created.text).toBe(201);
    const sourceId: string = created.body.id;
    // The previous job, still holding the dedup key; its run is closed (no active run in Postgres).
    const previous = await api.container.queues.sync.add(
      'sync',
      { sourceId, runId: '00000000-0000-4000-8000-000000000001', trigger: 'manual' },
      { jobId: 'previous-job', deduplication: { id: syncDedupId(sourceId) } },
    );
    expect(previous.id).toBe('previous-job');

    const res = await api.post(`/raw-data-sources/${sourceId}/sync`);
    expect(res.status, res.text).toBe(409);
    expect(res.body.detail).toContain('previous-job');
    const runs = await api.knex('sync_runs').where({ source_id: sourceId }).select('status');
    expect(runs.map((r) => r.status)).toEqual(['cancelled']);

    // Once that job is gone, the next request queues a sync of its own.
    await previous.remove();
    const again = await api.post(`/raw-data-sources/${sourceId}/sync`);
    expect(again.status, again.text).toBe(202);
    expect(again.body.job_id).toBe(again.body.run_id);
  });
});
