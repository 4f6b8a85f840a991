import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import { COUNTS_TABLE, SourceCounts } from '../../src/sources/source-counts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const TYPES = [null, 'database', 'api', 'file', 'stream', 'webhook'] as const;
const STATUSES = ['pending', 'syncing', 'success', 'failed'] as const;

/** Every combination of the three list filters, each one present or absent: 6 × 3 × 5 = 90. */
function everyFilter(): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const type of [undefined, ...TYPES.filter((t) => t !== null)])
    for (const active of [undefined, true, false])
      for (const status of [undefined, ...STATUSES]) {
        const f: Record<string, unknown> = {};
        if (type !== undefined) f.source_type = type;
        if (active !== undefined) f.is_active = active;
        if (status !== undefined) f.sync_status = status;
        out.push(f);
      }
  return out;
}

/** A small seeded PRNG (mulberry32), so a failing run can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function exactCount(db: Knex, filters: Record<string, unknown>): Promise<number> {
  const [row] = await db('raw_data_sources').where(filters).count({ total: '*' });
  return Number(row?.total ?? 0);
}

async function expectLedgerMatches(db: Knex, counts: SourceCounts): Promise<void> {
  for (const filters of everyFilter())
    expect(await counts.count(filters), JSON.stringify(filters)).toBe(await exactCount(db, filters));
}

describe('SourceCounts', () => {
  let database: TestDatabase;
  let knex: Knex;
  let counts: SourceCounts;
  let seq = 0;

  beforeAll(async () => {
    database = await createTestDatabase();
    knex = database.knex;
    counts = new SourceCounts(knex);
  });
  afterAll(async () => {
    await counts.settled();
    await database.drop();
  });

  const row = (rnd: () => number) => ({
    name: `counted-${process.pid}-${++seq}`,
    source_type: TYPES[Math.floor(rnd() * TYPES.length)],
    is_active: rnd() < 0.8,
    sync_status: STATUSES[Math.floor(rnd() * STATUSES.length)],
  });

  it('equals count(*) for every filter after concurrent inserts, updates, deletes, rollbacks and folds', async () => {
    const ids: string[] = [];
    const pick = (rnd: () => number) =>
      ids[Math.floor(rnd() * ids.length)] ?? '00000000-0000-0000-0000-000000000000';
    let deadlocks = 0;

    const operations: Array<(db: Knex, rnd: () => number) => Promise<unknown>> = [
      async (db, rnd) => {
        const [r] = await db('raw_data_sources').insert(row(rnd)).returning('id');
        if (r) ids.push(r.id);
      },
      async (db, rnd) => {
        const rows = await db('raw_data_sources')
          .insert(Array.from({ length: 1 + Math.floor(rnd() * 5) }, () => row(rnd)))
          .returning('id');
        ids.push(...rows.map((r) => r.id));
      },
      // A worker's guarded status change, and its outcome.
      (db, rnd) =>
        db('raw_data_sources')
          .update({ sync_status: 'syncing' })
          .where({ id: pick(rnd) })
          .whereNot({ sync_status: 'syncing' }),
      (db, rnd) =>
        db('raw_data_sources')
          .update({ sync_status: rnd() < 0.7 ? 'success' : 'failed', last_sync_at: db.fn.now() })
          .where({ id: pick(rnd), sync_status: 'syncing' }),
      (db, rnd) =>
        db('raw_data_sources')
          .update({ sync_status: STATUSES[Math.floor(rnd() * 4)] })
          .whereIn('id', [pick(rnd), pick(rnd), pick(rnd)]),
      (db, rnd) =>
        db('raw_data_sources')
          .update({ is_active: db.raw('NOT is_active'), source_type: row(rnd).source_type })
          .where({ id: pick(rnd) }),
      // Changes no key: must add nothing, and break nothing.
      (db, rnd) =>
        db('raw_data_sources')
          .update({ refresh_interval: 60 + Math.floor(rnd() * 1000) })
          .where({ id: pick(rnd) }),
      (db, rnd) =>
        db('raw_data_sources')
          .delete()
          .where({ id: pick(rnd) }),
      // Insert or update in one statement (fires both triggers).
      (db, rnd) =>
        db('raw_data_sources')
          .insert({ ...row(rnd), name: `upserted-${Math.floor(rnd() * 20)}` })
          .onConflict('name')
          .merge(['sync_status', 'is_active']),
      async (db, rnd) => {
        await db
          .transaction(async (trx) => {
            await trx('raw_data_sources').insert(row(rnd));
            await trx('raw_data_sources')
              .delete()
              .where({ id: pick(rnd) });
            await trx('raw_data_sources')
              .update({ sync_status: 'failed' })
              .where({ id: pick(rnd) });
            throw new Error('rollback');
          })
          .catch((err: Error) => {
            if (err.message !== 'rollback') throw err;
          });
      },
      (db, rnd) =>
        db.transaction(async (trx) => {
          await trx('raw_data_sources')
            .update({ sync_status: 'pending' })
            .where({ id: pick(rnd) });
          await trx('raw_data_sources').insert(row(rnd));
          await trx('raw_data_sources')
            .update({ is_active: false })
            .where({ id: pick(rnd) });
        }),
      () => counts.fold(),
    ];

    const writer = async (seed: number) => {
      const rnd = random(seed);
      for (let i = 0; i < 150; i++) {
        const op = operations[Math.floor(rnd() * operations.length)]!;
        await op(knex, rnd).catch((err: { code?: string }) => {
          // Row locks on raw_data_sources itself, taken in different orders by multi-row transactions.
          if (err.code === '40P01') deadlocks++;
          else throw err;
        });
      }
    };

    // While the writers run, a snapshot must agree with itself: ledger sum = count(*).
    let writing = true;
    let snapshotsChecked = 0;
    const checker = async () => {
      const rnd = random(99);
      const filters = everyFilter();
      while (writing) {
        await knex.transaction(
          async (trx) => {
            const f = filters[Math.floor(rnd() * filters.length)]!;
            expect(await new SourceCounts(trx).count(f), JSON.stringify(f)).toBe(await exactCount(trx, f));
          },
          { isolationLevel: 'repeatable read' },
        );
        snapshotsChecked++;
      }
    };

    const checking = checker();
    await Promise.all([1, 2, 3, 4, 5, 6, 7].map((seed) => writer(seed))).finally(() => {
      writing = false;
    });
    await checking;

    expect(snapshotsChecked).toBeGreaterThan(0);
    expect(deadlocks).toBeLessThan(50);
    expect(await exactCount(knex, {})).toBeGreaterThan(100);
    await expectLedgerMatches(knex, counts);
  });

  it('folds the ledger to one row per key without changing any count', async () => {
    const rnd = random(7);
    for (let i = 0; i < 30; i++) await knex('raw_data_sources').insert(row(rnd));
    const before = await Promise.all(everyFilter().map((f) => counts.count(f)));
    expect(await counts.fold()).toBe(true);
    const [keys] = await knex(COUNTS_TABLE).countDistinct({
      n: knex.raw('(source_type, is_active, sync_status)'),
    });
    const [rows] = await knex(COUNTS_TABLE).count({ n: '*' });
    expect(Number(rows?.n)).toBe(Number(keys?.n));
    expect(await Promise.all(everyFilter().map((f) => counts.count(f)))).toEqual(before);
    await expectLedgerMatches(knex, counts);
  });

  it('folds in the background once a count sees the ledger grown', async () => {
    const ids = (await knex('raw_data_sources').select('id').limit(50)).map((r) => r.id as string);
    for (let i = 0; i < 500; i++)
      await knex('raw_data_sources')
        .update({ sync_status: STATUSES[i % 4] })
        .where({ id: ids[i % ids.length] });
    const [grown] = await knex(COUNTS_TABLE).count({ n: '*' });
    expect(Number(grown?.n)).toBeGreaterThan(500);
    await counts.count({});
    await counts.settled();
    const [folded] = await knex(COUNTS_TABLE).count({ n: '*' });
    expect(Number(folded?.n)).toBeLessThanOrEqual(6 * 2 * 4);
    await expectLedgerMatches(knex, counts);
  });

  it('counts filters the ledger is not keyed by with count(*)', async () => {
    const [row] = await knex('raw_data_sources').select('name').limit(1);
    expect(await counts.count({ name: row?.name })).toBe(1);
    expect(await counts.count({ name: 'no such source' })).toBe(0);
  });

  it('resets on TRUNCATE', async () => {
    await knex.raw('TRUNCATE raw_data_sources CASCADE');
    for (const filters of everyFilter()) expect(await counts.count(filters)).toBe(0);
    expect(await knex(COUNTS_TABLE).first()).toBeUndefined();
  });
});
