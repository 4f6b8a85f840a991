import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, untilJobDone, type TestApi } from '../helpers/api-harness';
import { ScriptedConnector } from '../support/scripted-connector';
import { until } from '../helpers/until';

let seq = 0;
const name = () => `mode-change-${process.pid}-${++seq}`;

const rows = Array.from({ length: 4 }, (_, id) => ({ id, k: `k${id % 2}`, v: 1 }));

describe('changing sync_mode clears what no longer applies, in the update’s transaction', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ connectors: [new ScriptedConnector('database')] });
    await api.startWorker();
  });
  afterAll(() => api.close());

  const create = async (body: Record<string, unknown>) => {
    const res = await api.post('/raw-data-sources', { name: name(), source_type: 'database', ...body });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string };
  };
  const update = async (id: string, body: Record<string, unknown>) => {
    const res = await api.put(`/raw-data-sources/${id}`, body);
    expect(res.status, res.text).toBe(200);
  };
  const synced = async (id: string) => {
    const { run_id: runId } = (await api.post(`/raw-data-sources/${id}/sync`)).body as { run_id: string };
    // Its job over too (see untilJobDone): the next sync of the source is then a new run.
    await untilJobDone(api, runId);
    const run = await api.knex('sync_runs').where({ id: runId }).first();
    expect(run.status, run.error).toBe('success');
    return runId;
  };
  const count = async (table: string, sourceId: string) =>
    Number((await api.knex(table).where({ source_id: sourceId }).count({ c: '*' }).first())?.c);

  it('dedup → append removes the current versions; raw history stays; a later sync keeps none', async () => {
    const source = await create({ sync_mode: 'dedup', metadata: { rows, primary_key: 'id' } });
    await synced(source.id);
    expect(await count('raw_current', source.id)).toBe(4);
    await update(source.id, { sync_mode: 'append' });
    expect(await count('raw_current', source.id)).toBe(0);
    expect(await count('raw_records', source.id)).toBe(4);
    await update(source.id, { metadata: { rows, primary_key: 'id', full_refresh: true } });
    await synced(source.id);
    expect(await count('raw_current', source.id)).toBe(0);
    expect(await count('raw_records', source.id)).toBe(8);
  });

  it('an update that keeps the mode and key (a rename, another delete_marker) keeps the current versions', async () => {
    const source = await create({ sync_mode: 'dedup', metadata: { rows, primary_key: ['id'] } });
    await synced(source.id);
    await update(source.id, { name: name() });
    // The same key written as a string instead of a one-element list is the same rule.
    await update(source.id, { metadata: { rows, primary_key: 'id', delete_marker: 'gone' } });
    expect(await count('raw_current', source.id)).toBe(4);
  });

  it('dedup with another primary_key drops the old keys; the next sync builds the new ones', async () => {
    const source = await create({ sync_mode: 'dedup', metadata: { rows, primary_key: 'id' } });
    await synced(source.id);
    await update(source.id, { metadata: { rows, primary_key: 'k', full_refresh: true } });
    expect(await count('raw_current', source.id)).toBe(0);
    await synced(source.id);
    const keys = (await api.knex('raw_current').where({ source_id: source.id }).orderBy('record_key')).map(
      (r: { record_key: unknown }) => r.record_key,
    );
    expect(keys).toEqual(['k0', 'k1']);
  });

  it('snapshot → append and snapshot → dedup remove the current snapshot; dedup → snapshot removes raw_current', async () => {
    const full = { rows, full_refresh: true };
    const a = await create({ sync_mode: 'snapshot', metadata: full });
    await synced(a.id);
    expect(await count('source_snapshots', a.id)).toBe(1);
    await update(a.id, { sync_mode: 'append' });
    expect(await count('source_snapshots', a.id)).toBe(0);

    const b = await create({ sync_mode: 'snapshot', metadata: { ...full, primary_key: 'id' } });
    await synced(b.id);
    await update(b.id, { sync_mode: 'dedup' });
    expect(await count('source_snapshots', b.id)).toBe(0);
    await synced(b.id);
    expect(await count('raw_current', b.id)).toBe(4);

    await update(b.id, { sync_mode: 'snapshot' });
    expect(await count('raw_current', b.id)).toBe(0);
    await synced(b.id);
    expect(await count('source_snapshots', b.id)).toBe(1);
    expect(await count('raw_current', b.id)).toBe(0);
    // What a reader of ?view=current gets is the snapshot's rows, nothing of the dedup days.
    const res = await api.get(`/raw-data-sources/${b.id}/records?view=current&limit=100`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toHaveLength(4);
  });

  it('a dedup run still landing when the mode changes adds no current versions back', async () => {
    const many = Array.from({ length: 8 }, (_, id) => ({ id }));
    const source = await create({
      sync_mode: 'dedup',
      metadata: { rows: many, batch: 1, delay_ms: 150, primary_key: 'id' },
    });
    const { run_id: runId } = (await api.post(`/raw-data-sources/${source.id}/sync`)).body as {
      run_id: string;
    };
    // Wait for the run to have landed part of its rows (current versions included), then switch.
    await until(
      () => count('raw_current', source.id),
      (n) => n >= 2,
    );
    await update(source.id, { sync_mode: 'append' });
    const run = await until(
      () => api.knex('sync_runs').where({ id: runId }).first(),
      (r) => r?.status === 'success' || r?.status === 'failed',
    );
    expect(run.status, run.error).toBe('success');
    expect(await count('raw_records', source.id)).toBe(8);
    expect(await count('raw_current', source.id)).toBe(0);
  });
});
