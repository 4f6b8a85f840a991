import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger';
import { AHEAD_DAYS, RecordRetention } from '../../src/records/record-retention';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { until } from '../helpers/until';

const DAY = 86_400_000;
const ymd = (t: number) => new Date(t).toISOString().slice(0, 10).replace(/-/g, '');
let seq = 0;

describe('record partitions and retention', () => {
  let api: TestApi;
  const logger = createLogger('silent');
  const retention = (retentionDays: number) => new RecordRetention(api.knex, { retentionDays, logger });
  const partitionNames = async () => (await retention(0).partitions()).map((p) => p.name);

  const newSource = async (retention_days: number | null = null) =>
    (
      await api
        .knex('raw_data_sources')
        .insert(
          { name: `retention-${process.pid}-${++seq}`, source_type: 'webhook', metadata: {}, retention_days },
          ['id'],
        )
    )[0]!.id as string;
  const newRun = async (sourceId: string) => {
    const id = randomUUID();
    await api.knex('sync_runs').insert({ id, source_id: sourceId, trigger: 'manual', status: 'success' });
    return id;
  };
  /** `n` landed and one quarantined record of `sourceId`, at `at`. */
  const landAt = async (sourceId: string, at: Date, n = 3) => {
    const runId = await newRun(sourceId);
    await api.knex.raw(
      `INSERT INTO raw_records (source_id, run_id, payload, ingested_at)
       SELECT ?, ?, jsonb_build_object('n', g), ? FROM generate_series(1, ?) g`,
      [sourceId, runId, at, n],
    );
    await api.knex('quarantined_records').insert({
      source_id: sourceId,
      run_id: runId,
      payload: '{}',
      errors: '[]',
      quarantined_at: at,
    });
  };
  const counts = async (sourceId: string) => ({
    landed: Number(
      (await api.knex('raw_records').where({ source_id: sourceId }).count({ n: '*' }).first())!.n,
    ),
    quarantined: Number(
      (await api.knex('quarantined_records').where({ source_id: sourceId }).count({ n: '*' }).first())!.n,
    ),
  });

  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(() => api?.close());

  it('keeps partitions of today and the next days ready, for both tables, and creates each once', async () => {
    const now = new Date();
    await retention(0).ensurePartitions(now);
    const names = await partitionNames();
    for (let d = 0; d <= AHEAD_DAYS; d++)
      for (const table of ['raw_records', 'quarantined_records'])
        expect(names).toContain(`${table}_p${ymd(now.getTime() + d * DAY)}`);
    expect(await retention(0).ensurePartitions(now)).toEqual([]);
    // A day further on, one new day per table.
    const tomorrow = new Date(now.getTime() + DAY);
    expect(await retention(0).ensurePartitions(tomorrow)).toEqual([
      `raw_records_p${ymd(tomorrow.getTime() + AHEAD_DAYS * DAY)}`,
      `quarantined_records_p${ymd(tomorrow.getTime() + AHEAD_DAYS * DAY)}`,
    ]);
    // The new partition has the table's indexes and keys (attached, not a bare table).
    const indexes = await api.knex.raw(`SELECT indexdef FROM pg_indexes WHERE tablename = ?`, [
      `raw_records_p${ymd(tomorrow.getTime() + AHEAD_DAYS * DAY)}`,
    ]);
    expect(indexes.rows.length).toBeGreaterThanOrEqual(3);
  });

  it('drops whole partitions past the global retention and keeps recent data; landing goes on', async () => {
    const now = new Date();
    // Partitions of the past, as a worker running then would have made them.
    await retention(0).ensurePartitions(new Date(now.getTime() - 12 * DAY));
    await retention(0).ensurePartitions(new Date(now.getTime() - 4 * DAY));
    const source = await newSource();
    await landAt(source, new Date(now.getTime() - 10 * DAY));
    await landAt(source, new Date(now.getTime() - 2 * DAY));
    await landAt(source, now);
    expect(await counts(source)).toEqual({ landed: 9, quarantined: 3 });

    const report = await retention(5).maintain(now);
    const old = ymd(now.getTime() - 10 * DAY);
    expect(report.dropped).toContain(`raw_records_p${old}`);
    expect(report.dropped).toContain(`quarantined_records_p${old}`);
    expect(report.dropped).not.toContain(`raw_records_p${ymd(now.getTime() - 4 * DAY)}`);
    const names = await partitionNames();
    expect(names).not.toContain(`raw_records_p${old}`);
    expect(names).toContain(`raw_records_p${ymd(now.getTime() - 2 * DAY)}`);
    expect(await counts(source)).toEqual({ landed: 6, quarantined: 2 });
    // The dropped tables are gone, not merely detached.
    const leftover = await api.knex.raw(`SELECT to_regclass(?) AS t`, [`raw_records_p${old}`]);
    expect(leftover.rows[0].t).toBeNull();

    await landAt(source, now);
    expect((await counts(source)).landed).toBe(9);
    expect((await api.get(`/raw-data-sources/${source}/records`)).body.data).toHaveLength(9);
  });

  it('a source with a shorter retention_days loses its older rows in batches; others keep theirs', async () => {
    const now = new Date();
    await retention(0).ensurePartitions(new Date(now.getTime() - 5 * DAY));
    const short = await newSource(2);
    const kept = await newSource();
    const longer = await newSource(30);
    for (const s of [short, kept, longer]) {
      await landAt(s, new Date(now.getTime() - 3 * DAY), 6000);
      await landAt(s, now, 2);
    }
    const before = await partitionNames();

    const report = await retention(0).maintain(now);

    expect(report.deleted).toBe(6001);
    expect(report.dropped).toEqual([]);
    expect(await partitionNames()).toEqual(before);
    expect(await counts(short)).toEqual({ landed: 2, quarantined: 1 });
    expect(await counts(kept)).toEqual({ landed: 6002, quarantined: 2 });
    expect(await counts(longer)).toEqual({ landed: 6002, quarantined: 2 });
    // With a global retention, only sources shorter than it are deleted row by row.
    await landAt(short, new Date(now.getTime() - 3 * DAY), 1);
    expect(await retention(1).deleteBySource(now)).toBe(0);
    expect(await retention(10).deleteBySource(now)).toBe(2);
  });

  it("keeps a current snapshot's rows however old their day: they move forward, older runs expire", async () => {
    const now = new Date();
    await retention(0).ensurePartitions(new Date(now.getTime() - 12 * DAY));
    const source = (
      await api.knex('raw_data_sources').insert(
        {
          name: `retention-snap-${process.pid}-${++seq}`,
          source_type: 'webhook',
          metadata: {},
          sync_mode: 'snapshot',
        },
        ['id'],
      )
    )[0]!.id as string;
    const shortLived = await newSource(2);
    // Two complete snapshots 11 and 10 days ago; the second is current (nothing since).
    await landAt(source, new Date(now.getTime() - 11 * DAY), 4);
    await landAt(source, new Date(now.getTime() - 10 * DAY), 5);
    const current = (await api
      .knex('sync_runs')
      .where({ source_id: source })
      .orderBy('queued_at', 'desc')
      .first())!.id as string;
    const older = (await api
      .knex('raw_records')
      .where({ source_id: source })
      .whereNot({ run_id: current })
      .first())!.run_id as string;
    await api.knex('source_snapshots').insert({ source_id: source, run_id: current, records: 5 });
    // A per-source retention never deletes a current snapshot's rows either.
    await landAt(shortLived, new Date(now.getTime() - 5 * DAY), 3);
    const shortRun = (await api.knex('raw_records').where({ source_id: shortLived }).first())!
      .run_id as string;
    await api.knex('source_snapshots').insert({ source_id: shortLived, run_id: shortRun, records: 3 });

    const report = await retention(5).maintain(now);

    expect(report.dropped).toContain(`raw_records_p${ymd(now.getTime() - 10 * DAY)}`);
    const left = await api.knex('raw_records').where({ source_id: source }).select('run_id', 'ingested_at');
    expect(left).toHaveLength(5);
    expect(new Set(left.map((r) => r.run_id))).toEqual(new Set([current]));
    expect(left.every((r) => (r.ingested_at as Date).getTime() === now.getTime())).toBe(true);
    expect(await api.knex('raw_records').where({ run_id: older })).toEqual([]);
    const read = await api.get(`/raw-data-sources/${source}/records?view=current`);
    expect(read.status, read.text).toBe(200);
    expect(read.body.data).toHaveLength(5);
    expect((await counts(shortLived)).landed).toBe(3);
  });

  it('finishes a detach that was interrupted', async () => {
    const now = new Date();
    const day = now.getTime() - 40 * DAY;
    const name = `raw_records_p${ymd(day)}`;
    await api.knex.raw(`CREATE TABLE ${name} (LIKE raw_records INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
    const from = new Date(Math.floor(day / DAY) * DAY);
    await api.knex.raw(
      `ALTER TABLE raw_records ATTACH PARTITION ${name} FOR VALUES FROM ('${from.toISOString()}') TO ('${new Date(from.getTime() + DAY).toISOString()}')`,
    );
    // A detach whose second transaction never ran leaves the partition "detach pending".
    const pending = await api.knex.raw(
      `UPDATE pg_inherits SET inhdetachpending = true WHERE inhrelid = ?::regclass RETURNING 1`,
      [name],
    );
    expect(pending.rowCount).toBe(1);
    const report = await retention(0).maintain(now);
    expect(report.dropped).toEqual([name]);
    expect(await partitionNames()).not.toContain(name);
  });

  it('a worker keeps partitions ahead when it starts', async () => {
    const last = `raw_records_p${ymd(Date.now() + AHEAD_DAYS * DAY)}`;
    await api.knex.raw(`ALTER TABLE raw_records DETACH PARTITION ${last}`);
    await api.knex.raw(`DROP TABLE ${last}`);
    expect(await partitionNames()).not.toContain(last);
    await api.startWorker();
    await until(partitionNames, (names) => names.includes(last));
  });
});
