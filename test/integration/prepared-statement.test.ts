import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKnex } from '../../src/db/create-knex';
import { isDatabaseUnavailable } from '../../src/db/database-unavailable';
import { PreparedStatement } from '../../src/db/prepared-statement';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { collectingLogger } from '../helpers/test-logger';

/** PreparedStatement against a real PostgreSQL, on a one-connection pool so leaks would show as hangs. */
describe('PreparedStatement', () => {
  let db: TestDatabase;
  let single: Knex;
  /** The one-connection pool's log: knex's warnings, kept for the test rather than printed. */
  const singleLog = collectingLogger('warn');
  const byName = () =>
    new PreparedStatement<{ name: string; n: number }>(
      'test_things_by_name',
      // `limit 1` leaves a binding of its own after the name: values replace bindings from the first.
      single('things').select('name', 'n').where({ name: '' }).first() as unknown as Knex.QueryBuilder,
    );

  beforeAll(async () => {
    db = await createTestDatabase();
    single = createKnex({ url: db.url, poolMax: 1, acquireTimeoutMs: 300, logger: singleLog.logger });
    await single.schema.createTable('things', (t) => {
      t.text('name').primary();
      t.integer('n').notNullable();
    });
    await single('things').insert([
      { name: 'a', n: 1 },
      { name: 'b', n: 2 },
    ]);
  });

  afterAll(async () => {
    await single?.destroy();
    await db?.drop();
  });

  it('answers rows, prepared once on the connection and reused', async () => {
    const statement = byName();
    expect(await statement.rows(single, ['a'])).toEqual([{ name: 'a', n: 1 }]);
    expect(await statement.rows(single, ['nothing'])).toEqual([]);
    // Many calls, some at once, through the one pooled connection: each gave it back.
    const answers = await Promise.all(
      ['a', 'b', 'a', 'b', 'a'].map((name) => statement.rows(single, [name])),
    );
    expect(answers.map((rows) => rows[0]?.n)).toEqual([1, 2, 1, 2, 1]);
    const prepared = await single.raw<{ rows: { name: string; statement: string }[] }>(
      'select name, statement from pg_prepared_statements',
    );
    // The name carries a hash of the text: the same name never means other text on a shared server.
    expect(prepared.rows.map((r) => r.name)).toEqual([
      expect.stringMatching(/^test_things_by_name_[0-9a-f]{12}$/),
    ]);
    expect(prepared.rows[0]!.name).toBe(byName().name);
    expect(prepared.rows[0]!.statement).toMatch(/where "name" = \$1 limit \$2/);
  });

  it('DATABASE_PREPARED_STATEMENTS=off sends the same statement unnamed: nothing prepared by name', async () => {
    const off = createKnex({ url: db.url, poolMax: 1, preparedStatements: 'off' });
    try {
      const statement = new PreparedStatement<{ name: string; n: number }>(
        'test_things_by_name_off',
        off('things').select('name', 'n').where({ name: '' }).first() as unknown as Knex.QueryBuilder,
      );
      expect(await statement.rows(off, ['b'])).toEqual([{ name: 'b', n: 2 }]);
      expect(await statement.rows(off, ['a'])).toEqual([{ name: 'a', n: 1 }]);
      const prepared = await off.raw<{ rows: unknown[] }>('select name from pg_prepared_statements');
      expect(prepared.rows).toEqual([]);
    } finally {
      await off.destroy();
    }
  });

  it('gives the connection back after a failed query', async () => {
    const broken = new PreparedStatement<object>(
      'test_things_broken',
      single('things').select('name').where({ n: 0 }) as unknown as Knex.QueryBuilder,
    );
    await expect(broken.rows(single, ['not a number'])).rejects.toMatchObject({ code: '22P02' });
    expect(await byName().rows(single, ['b'])).toEqual([{ name: 'b', n: 2 }]);
  });

  it('runs on the transaction it is given, seeing what the transaction wrote', async () => {
    await single
      .transaction(async (trx) => {
        await trx('things').insert({ name: 'c', n: 3 });
        expect(await byName().rows(trx, ['c'])).toEqual([{ name: 'c', n: 3 }]);
        await trx.rollback();
      })
      .catch(() => undefined);
    expect(await byName().rows(single, ['c'])).toEqual([]);
  });

  it('waits for a pool connection at most the acquire timeout: the API then answers 503', async () => {
    let release = undefined as (() => void) | undefined;
    const held = single.transaction(
      (trx) => new Promise<void>((resolve) => (release = () => void trx.commit().then(() => resolve()))),
    );
    // The transaction holds the only connection once its callback runs (BEGIN done): waited for,
    // bounded, rather than assumed after a fixed pause.
    for (let i = 0; !release; i += 1) {
      if (i >= 200) throw new Error('the transaction did not start within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const started = performance.now();
    // The timeout makes knex warn: through the pool's logger, collected rather than printed.
    const warned = singleLog.lines.length;
    const err = await byName()
      .rows(single, ['a'])
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(singleLog.lines.slice(warned).map((l) => JSON.parse(l) as { msg: string; err: string })).toEqual([
      expect.objectContaining({
        msg: 'knex warning',
        err: expect.stringContaining('Acquire connection error'),
      }),
    ]);
    expect(err).toMatchObject({ name: 'KnexTimeoutError' });
    expect(isDatabaseUnavailable(err)).toBe(true);
    expect(performance.now() - started).toBeLessThan(3000);
    release!();
    await held;
    expect(await byName().rows(single, ['a'])).toEqual([{ name: 'a', n: 1 }]);
  });
});
