import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { until } from '../helpers/until';
import { ScriptedConnector } from '../support/scripted-connector';

let seq = 0;
const name = () => `quality-${process.pid}-${++seq}`;
const schema = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] };

describe('landing quality: schema validation, quarantine, drift, unsaved tests', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({
      connectors: [new ScriptedConnector('database')],
      env: { TEST_WAIT_MS: '8000' },
    });
    await api.startWorker();
  });
  afterAll(() => api.close());

  const lastRun = (id: string) =>
    until(
      async () => (await api.get(`/raw-data-sources/${id}/runs`)).body.data[0],
      (r) => r?.status === 'success' || r?.status === 'failed',
    );
  /** A source's events, as objects. */
  const eventsOf = async (sourceId: string) =>
    (await api.container.redis.xrange(api.container.events.key, '-', '+'))
      .map(([, f]) =>
        Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i], f[2 * i + 1]])),
      )
      .filter((e) => e.source_id === sourceId);
  /**
   * A source's events once its last run's are all out: the run row is closed first, then
   * schema.drift_detected and sync.succeeded (last) are published (runs/run-lifecycle.ts).
   */
  const settledEvents = async (sourceId: string) => {
    const run = await lastRun(sourceId);
    return until(
      () => eventsOf(sourceId),
      (all) =>
        all.some((e) => e.run_id === run.id && (e.type === 'sync.succeeded' || e.type === 'sync.failed')),
    );
  };

  it('records failing schema_definition are quarantined with their errors and counted, never dropped', async () => {
    const source = (
      await api.post('/raw-data-sources', {
        name: name(),
        source_type: 'database',
        schema_definition: schema,
        metadata: { records: 9, batch: 4, shape: 'mixed' },
      })
    ).body;
    await api.post(`/raw-data-sources/${source.id}/sync`);
    const run = await lastRun(source.id);
    expect(run).toMatchObject({ status: 'success', records: 6, invalid: 3 });
    const quarantined = await api.knex('quarantined_records').where({ source_id: source.id }).orderBy('id');
    expect(quarantined.map((q) => q.payload.n)).toEqual(['#2', '#5', '#8']);
    expect(quarantined[0].errors[0]).toMatchObject({ pointer: '/n', message: 'must be integer' });
    const landed = await api.knex('raw_records').where({ source_id: source.id }).count({ c: '*' }).first();
    expect(Number(landed?.c)).toBe(6);
  });

  it('a difference between the records and schema_definition emits schema.drift_detected with the diff', async () => {
    const source = (
      await api.post('/raw-data-sources', {
        name: name(),
        source_type: 'database',
        schema_definition: {
          type: 'object',
          properties: { n: { type: 'integer' }, gone: { type: 'string' } },
        },
        metadata: { records: 3, shape: 'mixed' },
      })
    ).body;
    await api.post(`/raw-data-sources/${source.id}/sync`);
    const drift = (await settledEvents(source.id)).find((e) => e.type === 'schema.drift_detected');
    expect(drift).toBeDefined();
    expect(JSON.parse(drift!.data)).toEqual({
      added: ['extra'],
      removed: ['gone'],
      changed: [{ field: 'n', expected: ['integer'], observed: ['integer', 'string'] }],
    });
  });

  it('no drift event when the records match', async () => {
    const source = (
      await api.post('/raw-data-sources', {
        name: name(),
        source_type: 'database',
        schema_definition: schema,
        metadata: { records: 2 },
      })
    ).body;
    await api.post(`/raw-data-sources/${source.id}/sync`);
    const types = (await settledEvents(source.id)).map((e) => e.type);
    expect(types).toContain('sync.succeeded');
    expect(types).not.toContain('schema.drift_detected');
  });

  it('records Postgres cannot store (U+0000, lone surrogates) are quarantined, visibly repaired, not retried forever', async () => {
    const { Landing } = await import('../../src/runs/landing');
    const source = (await api.post('/raw-data-sources', { name: name(), source_type: 'database' })).body;
    const [run] = await api
      .knex('sync_runs')
      .insert({
        id: crypto.randomUUID(),
        source_id: source.id,
        trigger: 'manual',
        status: 'running',
        attempt: 1,
      })
      .returning('id');
    const landed = await new Landing(api.knex).land(
      source.id,
      run.id,
      { records: [{ a: 'nul\u0000here' }, { b: '\ud800' }, { 'k\u0000': 1 }, { ok: '\\u0000 is text' }] },
      1,
    );
    expect(landed).toMatchObject({ records: 1, invalid: 3 });
    const q = await api.knex('quarantined_records').where({ run_id: run.id }).orderBy('id');
    expect(q.map((r) => r.payload)).toEqual([{ a: 'nul\ufffdhere' }, { b: '\ufffd' }, { 'k\ufffd': 1 }]);
    const ok = await api.knex('raw_records').where({ run_id: run.id }).first();
    expect(ok.payload).toEqual({ ok: '\\u0000 is text' });
  });

  it('an unsaved configuration can be tested; nothing is saved and the draft is gone afterwards', async () => {
    const before = (await api.get('/raw-data-sources')).body.pagination.total;
    const res = await api.post('/raw-data-sources/test', {
      name: name(),
      source_type: 'database',
      connection_string: 'postgres://u:Draft-Secret-1@127.0.0.1:5432/db',
      schema_definition: schema,
      metadata: { records: 5, batch: 5, shape: 'mixed' },
    });
    expect(res.status).toBe(200);
    expect(res.body.ok).toBe(true);
    expect(res.body.steps.map((s: { name: string }) => s.name)).toEqual([
      'configuration',
      'connect',
      'validate sample',
    ]);
    expect(res.body.steps[2]).toMatchObject({ status: 'warning', code: 'schema_mismatch' });
    expect(res.text).not.toContain('Draft-Secret-1');
    expect((await api.get('/raw-data-sources')).body.pagination.total).toBe(before);
    expect(await api.knex('source_drafts').count({ c: '*' }).first()).toEqual({ c: 0 });
  });

  it('an unsaved configuration is validated like a create body', async () => {
    const res = await api.post('/raw-data-sources/test', { source_type: 'nope', refresh_interval: 5 });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { pointer: string }) => e.pointer).sort()).toEqual([
      '/name',
      '/refresh_interval',
      '/source_type',
    ]);
  });
});
