import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentSyncError, type SyncBatch, type TestStep } from '../../src/connectors/connector';
import { ConnectorError } from '../../src/connectors/kit/classify-error';
import { DatabaseConnector } from '../../src/connectors/database/database.connector';
import {
  createMysqlScratch,
  dbContext,
  dbSource,
  drain,
  freePort,
  MYSQL_ADMIN,
  startBlackHole,
  suffix,
  type MysqlScratch,
} from './support/database-peers';
import { HeapProbe } from './support/heap-probe';

const STEP_NAMES = ['configuration', 'resolve', 'connect', 'authenticate', 'read_sample', 'schema'];
const connector = new DatabaseConnector({ batchSize: 4 });

let db: MysqlScratch;
const user = `sluice_u_${suffix()}`;
const password = `Pw-${suffix()}`;

/** The scratch database's URL with another user (and password), port or database. */
function url(change: { auth?: string; port?: number; database?: string; query?: string } = {}): string {
  const base = new URL(db.url);
  const auth = change.auth ?? (base.password ? `${base.username}:${base.password}` : base.username);
  return `mysql://${auth}@${base.hostname}:${change.port ?? (base.port || 3306)}/${change.database ?? db.name}${change.query ?? ''}`;
}

const step = (steps: TestStep[], name: string) => steps.find((s) => s.name === name)!;
const ids = (batches: SyncBatch[]) => batches.flatMap((b) => b.records.map((r) => (r as { id: number }).id));

beforeAll(async () => {
  db = await createMysqlScratch();
  await db.conn.query("SET time_zone = '+00:00'");
  await db.conn.query(`CREATE TABLE orders (
    id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL, amount DECIMAL(12,2), big BIGINT,
    created_at DATETIME(6) NOT NULL, stamped TIMESTAMP(6) NULL, day DATE, payload VARBINARY(16), notes TEXT)`);
  await db.conn.query(
    `INSERT INTO orders (name, amount, big, created_at, stamped, day, payload, notes)
     SELECT CONCAT('order ', seq), seq * 1.25, 9007199254740993 + seq,
            TIMESTAMP'2024-01-01 00:00:00.123456' + INTERVAL seq MICROSECOND,
            TIMESTAMP'2024-01-01 00:00:00.123456' + INTERVAL seq MICROSECOND,
            DATE'2024-01-01' + INTERVAL seq DAY, x'00ff', CONCAT('n', seq)
     FROM seq_1_to_10`,
  );
  await db.conn.query(`CREATE TABLE secrets (id INT)`);
  await db.conn.query(`CREATE TABLE audit (n INT)`);
  await db.conn.query(
    `CREATE FUNCTION bump() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO audit VALUES (1); RETURN 1; END`,
  );
  await db.conn.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`);
  await db.conn.query(`GRANT SELECT ON \`${db.name}\`.orders TO '${user}'@'%'`);
});

afterAll(async () => {
  await db.conn.query(`DROP USER IF EXISTS '${user}'@'%'`).catch(() => undefined);
  await db.drop();
});

describe('database connector on MariaDB/MySQL: test()', () => {
  it('passes every step for a reachable table', async () => {
    const steps = await connector.test(
      dbSource(db.url, { table: 'orders', cursor_column: 'id' }),
      dbContext(),
    );
    expect(steps.map((s) => s.name)).toEqual(STEP_NAMES);
    expect(
      steps.map((s) => s.status),
      JSON.stringify(steps),
    ).toEqual(STEP_NAMES.map(() => 'passed'));
    expect(step(steps, 'read_sample').message).toBe('read 5 rows from table orders');
    expect(step(steps, 'schema').message).toContain('incremental by id (bigint)');
    expect(step(steps, 'schema').message).toContain('notes text');
  });

  it('accepts a database-qualified table and a query', async () => {
    const qualified = await connector.test(dbSource(db.url, { table: `${db.name}.orders` }), dbContext());
    expect(
      qualified.every((s) => s.status === 'passed'),
      JSON.stringify(qualified),
    ).toBe(true);
    const query =
      'WITH firsts AS (SELECT id, name FROM orders WHERE id <= 2) SELECT * FROM firsts # two rows';
    const steps = await connector.test(dbSource(db.url, { query }), dbContext());
    expect(
      steps.every((s) => s.status === 'passed'),
      JSON.stringify(steps),
    ).toBe(true);
    expect(step(steps, 'read_sample').message).toBe('read 2 rows from the query');
  });

  it('runs the query in a READ ONLY transaction: a query that would write fails and changes nothing', async () => {
    const steps = await connector.test(dbSource(db.url, { query: 'SELECT bump() AS b' }), dbContext());
    expect(step(steps, 'read_sample').status).toBe('failed');
    expect(step(steps, 'read_sample').message).toMatch(/READ ONLY/i);
    const [rows] = await db.conn.query('SELECT COUNT(*) AS n FROM audit');
    expect(rows).toEqual([{ n: 0 }]);
  });

  it('a wrong password fails authenticate with code auth, never showing the password', async () => {
    const wrong = 'Definitely-Wrong-77';
    const steps = await connector.test(
      dbSource(url({ auth: `${user}:${wrong}` }), { table: 'orders' }),
      dbContext(),
    );
    expect(steps.map((s) => s.status)).toEqual([
      'passed',
      'passed',
      'passed',
      'failed',
      'skipped',
      'skipped',
    ]);
    expect(step(steps, 'authenticate')).toMatchObject({ code: 'auth' });
    expect(step(steps, 'authenticate').message).toContain('Access denied');
    expect(JSON.stringify(steps)).not.toContain(wrong);
    const right = await connector.test(
      dbSource(url({ auth: `${user}:${encodeURIComponent(password)}` }), { table: 'orders' }),
      dbContext(),
    );
    expect(
      right.every((s) => s.status === 'passed'),
      JSON.stringify(right),
    ).toBe(true);
  });

  it('a table the user may not read fails read_sample with code permission', async () => {
    const steps = await connector.test(
      dbSource(url({ auth: `${user}:${encodeURIComponent(password)}` }), { table: 'secrets' }),
      dbContext(),
    );
    expect(step(steps, 'authenticate').status).toBe('passed');
    expect(step(steps, 'read_sample')).toMatchObject({ status: 'failed', code: 'permission' });
  });

  it('a wrong port fails connect with refused; a black-holed host with timeout, within the bound', async () => {
    const port = await freePort();
    const refused = await connector.test(dbSource(url({ port }), { table: 'orders' }), dbContext());
    expect(step(refused, 'connect')).toMatchObject({ status: 'failed', code: 'refused' });
    expect(step(refused, 'authenticate').status).toBe('skipped');
    const hole = await startBlackHole();
    try {
      const timeoutMs = 600;
      const started = Date.now();
      const steps = await connector.test(
        dbSource(url({ port: hole.port }), { table: 'orders' }),
        dbContext({ timeoutMs }),
      );
      expect(step(steps, 'connect')).toMatchObject({ status: 'failed', code: 'timeout' });
      expect(Date.now() - started).toBeLessThan(timeoutMs * 6);
    } finally {
      await hole.close();
    }
  });

  it('a missing table fails read_sample and a missing database fails authenticate, both not_found', async () => {
    const table = await connector.test(dbSource(db.url, { table: 'no_such_table' }), dbContext());
    expect(step(table, 'read_sample')).toMatchObject({ status: 'failed', code: 'not_found' });
    const database = await connector.test(
      dbSource(url({ database: `${db.name}_missing` }), { table: 'orders' }),
      dbContext(),
    );
    expect(step(database, 'authenticate')).toMatchObject({ status: 'failed', code: 'not_found' });
  });

  it('ssl-mode=REQUIRED against a server without TLS fails authenticate with code tls', async () => {
    const steps = await connector.test(
      dbSource(url({ query: '?ssl-mode=REQUIRED' }), { table: 'orders' }),
      dbContext(),
    );
    expect(step(steps, 'connect').status).toBe('passed');
    expect(step(steps, 'authenticate')).toMatchObject({ status: 'failed', code: 'tls' });
  });
});

describe('database connector on MariaDB/MySQL: sync()', () => {
  it('lands every row as plain JSON, then only the rows added since', async () => {
    await db.conn.query('CREATE TABLE sales_orders AS SELECT * FROM orders ORDER BY id');
    const source = dbSource(db.url, { table: 'sales_orders', cursor_column: 'id' });
    const first = await drain(connector.sync(source, undefined, dbContext()));
    expect(ids(first)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(first.every((b) => b.records.length <= 4)).toBe(true);
    expect(first.at(-1)!.state).toMatchObject({ cursor_column: 'id', cursor: '10' });
    expect(first[0]!.records[0]).toEqual({
      id: 1,
      name: 'order 1',
      amount: '1.25',
      big: '9007199254740994',
      created_at: '2024-01-01T00:00:00.123457',
      stamped: '2024-01-01T00:00:00.123457Z',
      day: '2024-01-02',
      payload: 'AP8=',
      notes: 'n1',
    });
    expect(await drain(connector.sync(source, first.at(-1)!.state, dbContext()))).toEqual([]);
    await db.conn.query(
      `INSERT INTO sales_orders (id, name, created_at) VALUES (11, 'late', NOW(6)), (12, 'later', NOW(6))`,
    );
    const second = await drain(connector.sync(source, first.at(-1)!.state, dbContext()));
    expect(ids(second)).toEqual([11, 12]);
  });

  it('compares big integer cursors exactly (past 2^53)', async () => {
    await db.conn.query(`CREATE TABLE bigids (id BIGINT UNSIGNED PRIMARY KEY)`);
    await db.conn.query(
      `INSERT INTO bigids VALUES (9007199254740993), (9007199254740994), (9007199254740995)`,
    );
    const source = dbSource(db.url, { table: 'bigids', cursor_column: 'id' });
    const rest = await drain(
      connector.sync(source, { cursor_column: 'id', cursor: '9007199254740993' }, dbContext()),
    );
    expect(rest.flatMap((b) => b.records)).toEqual([{ id: '9007199254740994' }, { id: '9007199254740995' }]);
  });

  it('keeps microsecond DATETIME cursors exact', async () => {
    await db.conn.query(`CREATE TABLE ticks (id INT, at DATETIME(6) NOT NULL)`);
    await db.conn.query(`INSERT INTO ticks VALUES
      (1, '2024-05-01 10:00:00.123456'), (2, '2024-05-01 10:00:00.123457'), (3, '2024-05-01 10:00:00.123458')`);
    const source = dbSource(db.url, { table: 'ticks', cursor_column: 'at' });
    const first = await drain(connector.sync(source, undefined, dbContext()));
    expect(first.at(-1)!.state).toMatchObject({ cursor_column: 'at', cursor: '2024-05-01 10:00:00.123458' });
    await db.conn.query(`INSERT INTO ticks VALUES (4, '2024-05-01 10:00:00.123459')`);
    expect(ids(await drain(connector.sync(source, first.at(-1)!.state, dbContext())))).toEqual([4]);
  });

  it('resuming from any landed batch loses and repeats nothing, even inside a run of equal cursor values', async () => {
    const ts = [1, 1, 1, 2, 2, 2, 2, 2, 3, 4, 4, 4, 4, 4, 4, 5, 6, 7, 7, 8];
    await db.conn.query(`CREATE TABLE events (id INT PRIMARY KEY, ts INT NOT NULL)`);
    await db.conn.query(`INSERT INTO events VALUES ${ts.map((t, i) => `(${i + 1}, ${t})`).join(', ')}`);
    const source = dbSource(db.url, { table: 'events', cursor_column: 'ts' });
    const all = await drain(connector.sync(source, undefined, dbContext()));
    const every = ts.map((_, i) => i + 1);
    expect(ids(all).sort((a, b) => a - b)).toEqual(every);
    for (let k = 0; k < all.length; k++) {
      const resumed = await drain(connector.sync(source, all[k]!.state, dbContext()));
      expect([...ids(all.slice(0, k + 1)), ...ids(resumed)].sort((a, b) => a - b)).toEqual(every);
    }
  });

  it('lands a row inserted later with a value equal to the stored cursor, once; a second sync lands only new rows', async () => {
    await db.conn.query(`CREATE TABLE ties (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL)`);
    await db.conn.query(`INSERT INTO ties VALUES (1, '2024-06-01 10:00:00'), (2, '2024-06-01 10:00:05')`);
    const source = dbSource(db.url, { table: 'ties', cursor_column: 'updated_at' });
    const first = await drain(connector.sync(source, undefined, dbContext()));
    expect(ids(first)).toEqual([1, 2]);
    const state1 = first.at(-1)!.state;
    expect(state1).toMatchObject({
      cursor: '2024-06-01 10:00:05.000000',
      from: '2024-06-01 09:55:05.000000',
    });
    await db.conn.query(`INSERT INTO ties VALUES (3, '2024-06-01 10:00:05')`);
    const second = await drain(connector.sync(source, state1, dbContext()));
    expect(ids(second)).toEqual([3]);
    const state2 = second.at(-1)!.state;
    expect(await drain(connector.sync(source, state2, dbContext()))).toEqual([]);
    await db.conn.query(`INSERT INTO ties VALUES (4, '2024-06-01 10:00:06')`);
    expect(ids(await drain(connector.sync(source, state2, dbContext())))).toEqual([4]);
  });

  it('lands a transaction that commits after a sync with an earlier timestamp, once (two real connections)', async () => {
    await db.conn.query(
      `CREATE TABLE feed (id INT PRIMARY KEY, note TEXT, updated_at TIMESTAMP(6) NOT NULL) ENGINE=InnoDB`,
    );
    await db.conn.query(`INSERT INTO feed VALUES (1, 'before', NOW(6) - INTERVAL 1 SECOND)`);
    const source = dbSource(db.url, { table: 'feed', cursor_column: 'updated_at' });
    let state = (await drain(connector.sync(source, undefined, dbContext()))).at(-1)!.state;
    const early = await mysql.createConnection({ ...MYSQL_ADMIN, database: db.name });
    const late = await mysql.createConnection({ ...MYSQL_ADMIN, database: db.name });
    try {
      await early.query('BEGIN');
      await early.query(`INSERT INTO feed VALUES (2, 'early', NOW(6))`);
      await late.query('BEGIN');
      await late.query(`INSERT INTO feed VALUES (3, 'late', NOW(6) + INTERVAL 1 MICROSECOND)`);
      await late.query('COMMIT');
      const during = await drain(connector.sync(source, state, dbContext()));
      expect(ids(during)).toEqual([3]);
      state = during.at(-1)!.state;
      await early.query('COMMIT');
    } finally {
      await early.end();
      await late.end();
    }
    const [rows] = await db.conn.query(`SELECT id FROM feed ORDER BY updated_at`);
    expect((rows as Array<{ id: number }>).map((r) => r.id)).toEqual([1, 2, 3]);
    const after = await drain(connector.sync(source, state, dbContext()));
    expect(ids(after)).toEqual([2]);
    state = after.at(-1)!.state;
    expect(await drain(connector.sync(source, state, dbContext()))).toEqual([]);
    await db.conn.query(`INSERT INTO feed VALUES (4, 'next', NOW(6) + INTERVAL 1 SECOND)`);
    expect(ids(await drain(connector.sync(source, state, dbContext())))).toEqual([4]);
  });

  it('integer cursors: ties and late ids inside cursor_lookback land once', async () => {
    await db.conn.query(`CREATE TABLE seq (id INT PRIMARY KEY, n BIGINT NOT NULL)`);
    await db.conn.query(`INSERT INTO seq VALUES (1, 10), (2, 20)`);
    const source = dbSource(db.url, { table: 'seq', cursor_column: 'n', cursor_lookback: 5 });
    const state = (await drain(connector.sync(source, undefined, dbContext()))).at(-1)!.state;
    expect(state).toMatchObject({ cursor: '20', from: '15' });
    await db.conn.query(`INSERT INTO seq VALUES (3, 20), (4, 16), (5, 14), (6, 21)`);
    expect(ids(await drain(connector.sync(source, state, dbContext())))).toEqual([4, 3, 6]);
  });

  it('without cursor_column every sync is a full refresh with no state', async () => {
    const source = dbSource(db.url, { query: 'SELECT id, name FROM orders WHERE id <= 5' });
    for (let i = 0; i < 2; i++) {
      const batches = await drain(connector.sync(source, undefined, dbContext()));
      expect(ids(batches).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
      expect(batches.every((b) => b.state === undefined)).toBe(true);
    }
  });

  it('fails permanently for bad credentials and transiently for a refused port', async () => {
    const denied = drain(
      connector.sync(
        dbSource(url({ auth: `${user}:nope-nope` }), { table: 'orders' }),
        undefined,
        dbContext(),
      ),
    );
    await expect(denied).rejects.toBeInstanceOf(PermanentSyncError);
    await expect(denied).rejects.toMatchObject({ code: 'auth' });
    const port = await freePort();
    const refused = drain(
      connector.sync(dbSource(url({ port }), { table: 'orders' }), undefined, dbContext()),
    );
    await expect(refused).rejects.toBeInstanceOf(ConnectorError);
    await expect(refused).rejects.toMatchObject({ code: 'refused' });
  });

  it('stops promptly when cancelled and leaves no connection open', async () => {
    await db.conn.query(`CREATE TABLE wide (id INT PRIMARY KEY) SELECT seq AS id FROM seq_1_to_5000`);
    const abort = new AbortController();
    let seen = 0;
    const run = (async () => {
      const source = dbSource(db.url, { table: 'wide', cursor_column: 'id' });
      for await (const batch of connector.sync(source, undefined, dbContext({ signal: abort.signal }))) {
        seen += batch.records.length;
        abort.abort();
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await expect(run).rejects.toThrow();
    expect(seen).toBe(4);
    await expect
      .poll(
        async () => {
          const [rows] = await db.conn.query(
            'SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()',
            [db.name],
          );
          return (rows as { n: number }[])[0]!.n;
        },
        { timeout: 5000 },
      )
      .toBe(0);
  });

  it('streams a 200k-row table with bounded memory', async () => {
    await db.conn.query(
      `CREATE TABLE big (id INT PRIMARY KEY, body VARCHAR(500)) SELECT seq AS id, CONCAT(REPEAT('x', 400), seq) AS body FROM seq_1_to_200000`,
    );
    const big = new DatabaseConnector({ batchSize: 1000 });
    const probe = new HeapProbe();
    let rows = 0;
    let batches = 0;
    let largest = 0;
    for await (const batch of big.sync(
      dbSource(db.url, { table: 'big', cursor_column: 'id' }),
      undefined,
      dbContext(),
    )) {
      rows += batch.records.length;
      largest = Math.max(largest, batch.records.length);
      batches += 1;
      probe.sample();
      if (batches % 40 === 0) probe.checkpoint();
    }
    probe.checkpoint();
    const memory = probe.report();
    console.log(`mariadb 200k rows (~80 MB of text) in ${batches} batches:`, memory);
    expect(rows).toBe(200_000);
    expect(largest).toBeLessThanOrEqual(1000);
    expect(memory.retainedMB).toBeLessThan(24);
  }, 60_000);

  it('describe() returns the columns with JSON types', async () => {
    const schema = await connector.describe(dbSource(db.url, { table: 'orders' }), dbContext());
    expect(schema).toMatchObject({
      type: 'object',
      properties: {
        id: { type: ['integer', 'string', 'null'], 'x-db-type': 'bigint' },
        name: { type: ['string', 'null'], 'x-db-type': 'varchar' },
        amount: { type: ['string', 'null'], 'x-db-type': 'decimal' },
        payload: { 'x-db-type': 'varbinary' },
      },
    });
  });
});
