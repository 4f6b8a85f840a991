import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, untilJobDone, type TestApi } from '../helpers/api-harness';
import { ScriptedConnector } from '../support/scripted-connector';

let seq = 0;
const name = () => `outcome-${process.pid}-${++seq}`;
const schema = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] };

describe('honest run outcomes: all invalid fails, partial warns, max_invalid_ratio, bytes landed, provenance', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ connectors: [new ScriptedConnector('database')] });
    await api.startWorker();
  });
  afterAll(() => api.close());

  const create = async (body: Record<string, unknown>) => {
    const res = await api.post('/raw-data-sources', { name: name(), source_type: 'database', ...body });
    expect(res.status).toBe(201);
    return res.body as { id: string };
  };
  const events = async (sourceId: string) => {
    const entries = await api.container.redis.xrange(api.container.events.key, '-', '+');
    return entries
      .map(([, f]) =>
        Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i], f[2 * i + 1]])),
      )
      .filter((e) => e.source_id === sourceId);
  };
  /**
   * The run once its job is over (see untilJobDone): the run row is closed first and its events
   * (sync.partial, then sync.succeeded or sync.failed) are published after it (runs/run-lifecycle.ts),
   * and a next sync of the source is a new run only once the job has ended.
   */
  const syncOnce = async (id: string) => {
    const { run_id: runId } = (await api.post(`/raw-data-sources/${id}/sync`)).body as { run_id: string };
    await untilJobDone(api, runId);
    return (await api.get(`/raw-data-sources/${id}/runs`)).body.data.find(
      (r: { id: string }) => r.id === runId,
    );
  };

  it('a run that read records and landed none because all were invalid fails, naming the first violations', async () => {
    const source = await create({ schema_definition: schema, metadata: { records: 10, shape: 'strings' } });
    const run = await syncOnce(source.id);
    expect(run).toMatchObject({ status: 'failed', records: 0, invalid: 10, bytes: 0 });
    expect(run.error).toContain('all 10 records read were invalid and none landed');
    expect(run.error).toContain('/n must be integer');
    const after = (await api.get(`/raw-data-sources/${source.id}`)).body;
    expect(after).toMatchObject({ sync_status: 'failed', last_warning: null });
    expect(after.error_message).toContain('/n must be integer');
    // Kept, not dropped: every invalid record is in quarantine.
    const kept = await api
      .knex('quarantined_records')
      .where({ source_id: source.id })
      .count({ c: '*' })
      .first();
    expect(Number(kept?.c)).toBe(10);
    const types = (await events(source.id)).map((e) => e.type);
    expect(types).toContain('sync.failed');
    expect(types).not.toContain('sync.succeeded');
  });

  it('a run that quarantined some succeeds and says so: count, last_warning, sync.partial', async () => {
    const source = await create({
      schema_definition: schema,
      metadata: { records: 9, batch: 4, shape: 'mixed' },
    });
    const run = await syncOnce(source.id);
    expect(run).toMatchObject({ status: 'success', records: 6, invalid: 3, error: null });
    const after = (await api.get(`/raw-data-sources/${source.id}`)).body;
    expect(after.sync_status).toBe('success');
    expect(after.error_message).toBeNull();
    expect(after.last_warning).toContain('3 of 9 records (33.3%) were invalid and quarantined');
    expect(after.last_warning).toContain('/n must be integer');
    const partial = (await events(source.id)).find((e) => e.type === 'sync.partial');
    expect(partial?.run_id).toBe(run.id);
    expect(JSON.parse(partial!.data)).toMatchObject({ records: 6, invalid: 3, warning: after.last_warning });
    // A later clean run clears the warning.
    await api.put(`/raw-data-sources/${source.id}`, { schema_definition: null });
    await api.knex('source_sync_state').where({ source_id: source.id }).delete();
    expect(await syncOnce(source.id)).toMatchObject({ status: 'success', invalid: 0 });
    expect((await api.get(`/raw-data-sources/${source.id}`)).body.last_warning).toBeNull();
  });

  it('max_invalid_ratio: above it the run fails, at or below it succeeds with a warning', async () => {
    const strict = await create({
      schema_definition: schema,
      max_invalid_ratio: 0.2,
      metadata: { records: 9, shape: 'mixed' },
    });
    const failed = await syncOnce(strict.id);
    expect(failed).toMatchObject({ status: 'failed', records: 6, invalid: 3 });
    expect(failed.error).toContain('3 of 9 records (33.3%) were invalid, above max_invalid_ratio 0.2');
    expect(failed.error).toContain('/n must be integer');
    const lenient = await create({
      schema_definition: schema,
      max_invalid_ratio: 0.5,
      metadata: { records: 9, shape: 'mixed' },
    });
    expect(await syncOnce(lenient.id)).toMatchObject({ status: 'success', invalid: 3 });
    const bad = await api.post('/raw-data-sources', {
      name: name(),
      source_type: 'database',
      max_invalid_ratio: 1.5,
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].pointer).toBe('/max_invalid_ratio');
  });

  it('bytes counts the JSON of the records landed, not of those read', async () => {
    const source = await create({ schema_definition: schema, metadata: { records: 9, shape: 'mixed' } });
    const run = await syncOnce(source.id);
    const landed = (await api.knex('raw_records').where({ run_id: run.id }).orderBy('id')) as {
      payload: unknown;
    }[];
    const expected = [0, 1, 3, 4, 6, 7].reduce((sum, n) => sum + Buffer.byteLength(JSON.stringify({ n })), 0);
    expect(landed).toHaveLength(6);
    expect(run.bytes).toBe(expected);
  });

  it('each landed and quarantined row keeps its provenance: the batch part and its own', async () => {
    const source = await create({
      schema_definition: schema,
      metadata: { records: 5, batch: 2, shape: 'mixed' },
    });
    const run = await syncOnce(source.id);
    const landed = await api.knex('raw_records').where({ run_id: run.id }).orderBy('id');
    expect(landed.map((r) => r.provenance)).toEqual(
      [0, 1, 3, 4].map((index) => ({ script: expect.any(String), index })),
    );
    const quarantined = await api.knex('quarantined_records').where({ run_id: run.id });
    expect(quarantined.map((r) => r.provenance)).toEqual([{ script: expect.any(String), index: 2 }]);
  });
});
