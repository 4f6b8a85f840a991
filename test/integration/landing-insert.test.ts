import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Landing, RunTakenOverError } from '../../src/runs/landing';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * Valid records land through one text parameter per INSERT (their JSON joined by newlines, split
 * by Postgres): every record must come back exactly, whatever its strings hold, and a batch larger
 * than one INSERT's share must land whole.
 */
describe('landing inserts', () => {
  let db: TestDatabase;
  let landing: Landing;
  let sourceId: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    landing = new Landing(db.knex);
  });
  afterAll(() => db?.drop());

  /** A source of its own with a running run (a source has one active run at a time). */
  const newRun = async (source: Record<string, unknown> = {}) => {
    sourceId = randomUUID();
    await db
      .knex('raw_data_sources')
      .insert({ id: sourceId, name: `landing-${sourceId}`, source_type: 'file', ...source });
    const id = randomUUID();
    await db
      .knex('sync_runs')
      .insert({ id, source_id: sourceId, trigger: 'manual', status: 'running', attempt: 1 });
    return id;
  };
  const payloads = async (runId: string) =>
    (await db.knex('raw_records').select('payload').where({ run_id: runId }).orderBy('id')).map(
      (r) => r.payload,
    );

  it('lands every record exactly, in order: newlines, escapes, quotes, unicode, odd keys and values', async () => {
    const runId = await newRun();
    const records = [
      { text: 'two\nlines', crlf: 'a\r\nb', literal: 'backslash-n: \\n', tab: 'a\tb' },
      { quote: 'say "hi"', backslashes: '\\\\server\\share\\', slash: '</script>' },
      { emoji: 'ok 👍 ✓', separators: 'line\u2028para\u2029', control: '\u0001\u001f' },
      { 'key\nwith newline': true, '': 'empty key', nested: { a: [1, [2, [3]]], b: null } },
      {},
      [],
      'a bare string\n',
      12.5e-3,
      null,
      { big: 9007199254740991, neg: -0.5, deep: { x: { y: { z: 'bottom' } } } },
    ];
    const landed = await landing.land(sourceId, runId, { records, state: { cursor: 'after\nten' } }, 1);
    expect(landed).toEqual({
      records: records.length,
      invalid: 0,
      bytes: records.reduce((sum: number, r) => sum + Buffer.byteLength(JSON.stringify(r)), 0),
    });
    expect(await payloads(runId)).toEqual(records);
    const state = await db.knex('source_sync_state').where({ source_id: sourceId }).first();
    expect(state).toMatchObject({ state: { cursor: 'after\nten' }, run_id: runId });
    const run = await db.knex('sync_runs').where({ id: runId }).first();
    expect(Number(run.records)).toBe(records.length);
  });

  it('a batch larger than one INSERT carries (8 MiB of JSON) lands whole, records split over several', async () => {
    const runId = await newRun();
    // Five records of 3 MiB: at most two fit one INSERT; the third, fourth and fifth go in others.
    const records = Array.from({ length: 5 }, (_, i) => ({ i, blob: `${i}\n`.padEnd(3 * 2 ** 20, 'x') }));
    const many = Array.from({ length: 3000 }, (_, i) => ({ i, s: `row ${i}` }));
    const landed = await landing.land(sourceId, runId, { records: [...records, ...many] }, 1);
    expect(landed.records).toBe(3005);
    const back = await payloads(runId);
    expect(back).toHaveLength(3005);
    expect(back.slice(0, 5)).toEqual(records);
    expect(back.slice(5)).toEqual(many);
  });

  it('with dedup, a batch split over several INSERTs keeps provenance aligned and raw_current at the last version of each key', async () => {
    // raw_current is kept only while the source is dedup by this key (see the dedup_still CTE).
    const runId = await newRun({
      sync_mode: 'dedup',
      metadata: { primary_key: 'id', delete_marker: 'gone' },
    });
    // Key 0 appears in the first piece and again in the last (big records force several pieces).
    const records = [
      { id: 0, v: 'first', blob: 'x'.repeat(3 * 2 ** 20) },
      { id: 1, v: 'one', blob: 'y'.repeat(3 * 2 ** 20) },
      { id: 2, v: 'two', blob: 'z'.repeat(3 * 2 ** 20) },
      { id: 0, v: 'last', blob: '' },
      { id: 1, gone: true, blob: '' },
    ];
    const landed = await landing.land(
      sourceId,
      runId,
      {
        records,
        provenance: { file: '/data/x.ndjson' },
        recordProvenance: { line: records.map((_, i) => i + 1) },
      },
      1,
      undefined,
      { primaryKey: ['id'], deleteMarker: 'gone' },
    );
    expect(landed.records).toBe(5);
    const rows = await db
      .knex('raw_records')
      .where({ run_id: runId })
      .orderBy('id')
      .select('payload', 'provenance');
    expect(rows.map((r) => [r.payload.id, r.provenance])).toEqual(
      records.map((r, i) => [r.id, { file: '/data/x.ndjson', line: i + 1 }]),
    );
    const current = await db.knex('raw_current').where({ source_id: sourceId }).orderBy('record_key');
    expect(current.map((c) => [c.record_key, c.payload.v, c.provenance.line])).toEqual([
      [0, 'last', 4],
      [2, 'two', 3],
    ]);
  });

  it('an attempt that no longer holds its run lands nothing', async () => {
    const runId = await newRun();
    await expect(landing.land(sourceId, runId, { records: [{ a: 1 }] }, 2)).rejects.toBeInstanceOf(
      RunTakenOverError,
    );
    expect(await payloads(runId)).toEqual([]);
  });
});
