import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_BYTE_LIMITS } from '../../src/connectors/kit/byte-limits';
import { PermanentSyncError, type SyncBatch, type TestStep } from '../../src/connectors/connector';
import { ConnectorError } from '../../src/connectors/kit/classify-error';
import { DatabaseConnector } from '../../src/connectors/database/database.connector';
import {
  createPgScratch,
  dbContext,
  dbSource,
  drain,
  freePort,
  selfSignedCert,
  startTlsPostgresFake,
  startBlackHole,
  startPrivatePostgres,
  suffix,
  type PgScratch,
} from './support/database-peers';
import { HeapProbe } from './support/heap-probe';
import { provenanceOf } from './support/http-source';

const STEP_NAMES = ['configuration', 'resolve', 'connect', 'authenticate', 'read_sample', 'schema'];
const connector = new DatabaseConnector({ batchSize: 4 });

let db: PgScratch;
const role = `sluice_noread_${suffix()}`;

/** The URL of the scratch database with another user, port, database or parameters. */
function url(change: { user?: string; port?: number; database?: string; query?: string } = {}): string {
  const base = new URL(db.url);
  const password = base.password ? `:${base.password}` : '';
  const user = change.user ?? `${base.username}${password}`;
  return `postgres://${user}@${base.hostname}:${change.port ?? (base.port || 5432)}/${change.database ?? db.name}${change.query ?? ''}`;
}

const step = (steps: TestStep[], name: string) => steps.find((s) => s.name === name)!;
const ids = (batches: SyncBatch[]) => batches.flatMap((b) => b.records.map((r) => (r as { id: number }).id));

async function insertOrders(n: number): Promise<void> {
  await db.client.query(
    `INSERT INTO orders (name, amount, big, created_at, day, payload, tags)
     SELECT 'order ' || g, g * 1.25, 9007199254740993 + g,
            timestamptz '2024-01-01 00:00:00.123456+00' + (g + coalesce((SELECT max(id) FROM orders), 0)) * interval '1 microsecond',
            date '2024-01-01' + g, '\\x00ff'::bytea, jsonb_build_object('g', g)
     FROM generate_series(1, $1::int) g`,
    [n],
  );
}

beforeAll(async () => {
  db = await createPgScratch();
  await db.client.query(`CREATE TABLE orders (
    id bigserial PRIMARY KEY, name text NOT NULL, amount numeric(12,2), big bigint,
    created_at timestamptz NOT NULL, day date, payload bytea, tags jsonb)`);
  await insertOrders(10);
  await db.client.query(`CREATE ROLE ${role} LOGIN`);
});

afterAll(async () => {
  await db.client.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
  await db.drop();
});

describe('database connector on PostgreSQL: test()', () => {
  it('passes every step for a reachable table', async () => {
    const steps = await connector.test(
      dbSource(db.url, { table: 'public.orders', cursor_column: 'id' }),
      dbContext(),
    );
    expect(steps.map((s) => s.name)).toEqual(STEP_NAMES);
    expect(steps.map((s) => s.status)).toEqual(STEP_NAMES.map(() => 'passed'));
    expect(step(steps, 'connect').message).toContain('127.0.0.1:5432');
    expect(step(steps, 'read_sample').message).toBe('read 5 rows from table public.orders');
    expect(step(steps, 'schema').message).toContain('incremental by id (bigint)');
    expect(step(steps, 'schema').message).toContain('created_at timestamp with time zone');
  });

  it('reads a sample of a query (a trailing comment cannot break the wrapping)', async () => {
    const query = 'SELECT id, name FROM orders WHERE id <= 3 -- only the first three';
    const steps = await connector.test(dbSource(db.url, { query }), dbContext());
    expect(
      steps.every((s) => s.status === 'passed'),
      JSON.stringify(steps),
    ).toBe(true);
    expect(step(steps, 'read_sample').message).toBe('read 3 rows from the query');
    expect(step(steps, 'schema').message).toContain('2 columns: id bigint, name text; full refresh');
  });

  it('runs the query in a READ ONLY transaction: a query that would write fails and changes nothing', async () => {
    const before = await db.client.query('SELECT last_value FROM orders_id_seq');
    const query = "SELECT nextval('orders_id_seq') AS taken";
    const steps = await connector.test(dbSource(db.url, { query }), dbContext());
    expect(step(steps, 'read_sample')).toMatchObject({ status: 'failed' });
    expect(step(steps, 'read_sample').message).toContain('read-only transaction');
    expect(step(steps, 'schema').status).toBe('skipped');
    const after = await db.client.query('SELECT last_value FROM orders_id_seq');
    expect(after.rows).toEqual(before.rows);
  });

  it('refuses a second statement before connecting (configuration, invalid_config)', async () => {
    const steps = await connector.test(
      dbSource(db.url, { query: 'SELECT 1; DROP TABLE orders' }),
      dbContext(),
    );
    expect(step(steps, 'configuration')).toMatchObject({ status: 'failed', code: 'invalid_config' });
    expect(step(steps, 'configuration').message).toContain('single statement');
    expect(steps.slice(1).every((s) => s.status === 'skipped')).toBe(true);
  });

  it('a wrong port fails the connect step with code refused; later steps are skipped', async () => {
    const port = await freePort();
    const steps = await connector.test(dbSource(url({ port }), { table: 'orders' }), dbContext());
    expect(steps.map((s) => s.status)).toEqual([
      'passed',
      'passed',
      'failed',
      'skipped',
      'skipped',
      'skipped',
    ]);
    expect(step(steps, 'connect')).toMatchObject({ code: 'refused' });
    expect(step(steps, 'connect').message).toContain(`127.0.0.1:${port}`);
  });

  it('a black-holed host fails the connect step with code timeout within the timeout', async () => {
    const hole = await startBlackHole();
    try {
      const timeoutMs = 600;
      const started = Date.now();
      const steps = await connector.test(
        dbSource(url({ port: hole.port }), { table: 'orders' }),
        dbContext({ timeoutMs }),
      );
      const elapsed = Date.now() - started;
      expect(step(steps, 'connect')).toMatchObject({ status: 'failed', code: 'timeout' });
      expect(step(steps, 'connect').duration_ms).toBeGreaterThanOrEqual(timeoutMs - 50);
      // Bounded by the timeout (plus scheduling slack on a loaded machine), never hanging.
      expect(elapsed).toBeLessThan(timeoutMs * 6);
    } finally {
      await hole.close();
    }
  });

  it('an unknown host fails the resolve step with code dns', async () => {
    const resolver = () =>
      Promise.reject(
        Object.assign(new Error('getaddrinfo ENOTFOUND db.nowhere.invalid'), { code: 'ENOTFOUND' }),
      );
    const steps = await connector.test(
      dbSource('postgres://loader:pw@db.nowhere.invalid:5432/app', { table: 'orders' }),
      dbContext({ resolver }),
    );
    expect(step(steps, 'resolve')).toMatchObject({ status: 'failed', code: 'dns' });
    expect(step(steps, 'connect').status).toBe('skipped');
  });

  it('a missing table fails read_sample with not_found; a missing database fails authenticate', async () => {
    const table = await connector.test(dbSource(db.url, { table: 'no_such_table' }), dbContext());
    expect(step(table, 'read_sample')).toMatchObject({ status: 'failed', code: 'not_found' });
    expect(step(table, 'read_sample').message).toContain('no_such_table');
    const database = await connector.test(
      dbSource(url({ database: `${db.name}_missing` }), { table: 'orders' }),
      dbContext(),
    );
    expect(step(database, 'authenticate')).toMatchObject({ status: 'failed', code: 'not_found' });
    expect(step(database, 'connect').status).toBe('passed');
  });

  it('a user without SELECT on the table fails read_sample with code permission', async () => {
    const steps = await connector.test(dbSource(url({ user: role }), { table: 'orders' }), dbContext());
    expect(step(steps, 'authenticate').status).toBe('passed');
    expect(step(steps, 'read_sample')).toMatchObject({ status: 'failed', code: 'permission' });
  });

  it('a cursor_column that is not a column fails the schema step', async () => {
    const steps = await connector.test(
      dbSource(db.url, { table: 'orders', cursor_column: 'updated_at' }),
      dbContext(),
    );
    expect(step(steps, 'read_sample').status).toBe('passed');
    expect(step(steps, 'schema')).toMatchObject({ status: 'failed', code: 'invalid_config' });
  });

  it('sslmode=require against a server without TLS fails authenticate with code tls', async () => {
    const steps = await connector.test(
      dbSource(url({ query: '?sslmode=require' }), { table: 'orders' }),
      dbContext(),
    );
    expect(step(steps, 'connect').status).toBe('passed');
    expect(step(steps, 'authenticate')).toMatchObject({ status: 'failed', code: 'tls' });
  });

  it('connects to the resolved address but names the original host for TLS (SNI, certificate check)', async () => {
    const host = 'db.internal.test';
    const fake = await startTlsPostgresFake(await selfSignedCert(host));
    // The name resolves (through Outbound) to loopback: no DNS, no network beyond 127.0.0.1.
    const resolver = async (name: string) => {
      expect(name).toBe(host);
      return { address: '127.0.0.1', family: 4 };
    };
    try {
      const target = `postgres://loader:pw@${host}:${fake.port}/app`;
      const steps = await connector.test(
        dbSource(`${target}?sslmode=require`, { table: 'orders' }),
        dbContext({ resolver }),
      );
      expect(step(steps, 'resolve').message).toBe(`${host} resolved to 127.0.0.1`);
      expect(step(steps, 'connect')).toMatchObject({ status: 'passed' });
      expect(fake.sniNames).toEqual([host]);
      // The fake hangs up after the handshake: login cannot complete.
      expect(step(steps, 'authenticate').status).toBe('failed');
      // verify-full checks the certificate: a self-signed one is refused with code tls.
      const strict = await connector.test(
        dbSource(`${target}?sslmode=verify-full`, { table: 'orders' }),
        dbContext({ resolver }),
      );
      expect(step(strict, 'authenticate')).toMatchObject({ status: 'failed', code: 'tls' });
      expect(step(strict, 'authenticate').message).toMatch(/self[- ]signed/);
    } finally {
      await fake.close();
    }
  });

  it('checks the password on a server that asks for one (private scram-sha-256 cluster)', async () => {
    const server = await startPrivatePostgres();
    try {
      const target = `postgres://postgres:%s@127.0.0.1:${server.port}/postgres`;
      const wrongPassword = 'Not-The-Password-42';
      const wrong = await connector.test(
        dbSource(target.replace('%s', wrongPassword), { query: 'SELECT 1 AS one' }),
        dbContext(),
      );
      expect(wrong.map((s) => s.status)).toEqual([
        'passed',
        'passed',
        'passed',
        'failed',
        'skipped',
        'skipped',
      ]);
      expect(step(wrong, 'authenticate')).toMatchObject({ code: 'auth' });
      expect(step(wrong, 'authenticate').message).toContain('password authentication failed');
      expect(JSON.stringify(wrong)).not.toContain(wrongPassword);
      const right = await connector.test(
        dbSource(target.replace('%s', encodeURIComponent(server.password)), { query: 'SELECT 1 AS one' }),
        dbContext(),
      );
      expect(
        right.every((s) => s.status === 'passed'),
        JSON.stringify(right),
      ).toBe(true);
      await expect(
        drain(
          connector.sync(
            dbSource(target.replace('%s', wrongPassword), { query: 'SELECT 1 AS one' }),
            undefined,
            dbContext(),
          ),
        ),
      ).rejects.toMatchObject({ name: 'PermanentSyncError', code: 'auth' });
    } finally {
      await server.stop();
    }
  }, 60_000);
});

describe('database connector on PostgreSQL: sync()', () => {
  it('lands every row as plain JSON, then only the rows added since', async () => {
    await db.client.query('CREATE TABLE sales_orders AS SELECT * FROM orders ORDER BY id');
    const source = dbSource(db.url, { table: 'public.sales_orders', cursor_column: 'id' });
    const first = await drain(connector.sync(source, undefined, dbContext()));
    expect(ids(first)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(first.every((b) => b.records.length <= 4)).toBe(true);
    expect(first.at(-1)!.state).toMatchObject({ cursor_column: 'id', cursor: '10' });
    expect(first[0]!.records[0]).toEqual({
      id: 1,
      name: 'order 1',
      amount: '1.25',
      big: '9007199254740994',
      created_at: '2024-01-01T00:00:00.123457Z',
      day: '2024-01-02',
      payload: 'AP8=',
      tags: { g: 1 },
    });
    const again = await drain(connector.sync(source, first.at(-1)!.state, dbContext()));
    expect(again).toEqual([]);
    await db.client.query(
      `INSERT INTO sales_orders (id, name, created_at) VALUES (11, 'late', now()), (12, 'later', now())`,
    );
    const second = await drain(connector.sync(source, first.at(-1)!.state, dbContext()));
    expect(ids(second)).toEqual([11, 12]);
    expect(second.at(-1)!.state).toMatchObject({ cursor_column: 'id', cursor: '12' });
  });

  it('each row carries its provenance: the table, and with cursor_column its cursor value', async () => {
    await db.client.query(`CREATE TABLE prov_items (id int, at timestamptz NOT NULL)`);
    await db.client.query(
      `INSERT INTO prov_items VALUES (1, '2024-05-01 10:00:00+00'), (2, '2024-05-02 10:00:00+00')`,
    );
    const incremental = await drain(
      connector.sync(dbSource(db.url, { table: 'prov_items', cursor_column: 'at' }), undefined, dbContext()),
    );
    expect(provenanceOf(incremental)).toEqual([
      { table: 'prov_items', cursor: '2024-05-01T10:00:00Z' },
      { table: 'prov_items', cursor: '2024-05-02T10:00:00Z' },
    ]);
    const full = await drain(
      connector.sync(dbSource(db.url, { query: 'SELECT 1 AS one' }), undefined, dbContext()),
    );
    expect(full.map((b) => [b.provenance, b.recordProvenance])).toEqual([[{ query: true }, undefined]]);
  });

  it('keeps microsecond timestamps exact as a cursor', async () => {
    await db.client.query(`CREATE TABLE ticks (id int, at timestamptz NOT NULL)`);
    await db.client.query(`INSERT INTO ticks VALUES
      (1, '2024-05-01 10:00:00.123456+00'), (2, '2024-05-01 10:00:00.123457+00'), (3, '2024-05-01 10:00:00.123458+00')`);
    const source = dbSource(db.url, { table: 'ticks', cursor_column: 'at' });
    const first = await drain(connector.sync(source, undefined, dbContext()));
    expect(first.at(-1)!.state).toMatchObject({
      cursor_column: 'at',
      cursor: '2024-05-01 10:00:00.123458+00',
    });
    await db.client.query(`INSERT INTO ticks VALUES (4, '2024-05-01 10:00:00.123459+00')`);
    const second = await drain(connector.sync(source, first.at(-1)!.state, dbContext()));
    expect(ids(second)).toEqual([4]);
    expect(second[0]!.records[0]).toEqual({ id: 4, at: '2024-05-01T10:00:00.123459Z' });
  });

  it('resuming from any landed batch loses and repeats nothing, even inside a run of equal cursor values', async () => {
    await db.client.query(`CREATE TABLE events (id int PRIMARY KEY, ts int NOT NULL)`);
    // Runs of equal ts longer than the batch size (4), at batch boundaries.
    const ts = [1, 1, 1, 2, 2, 2, 2, 2, 3, 4, 4, 4, 4, 4, 4, 5, 6, 7, 7, 8];
    await db.client.query(`INSERT INTO events SELECT i, ($1::int[])[i] FROM generate_series(1, $2::int) i`, [
      ts,
      ts.length,
    ]);
    const source = dbSource(db.url, { table: 'events', cursor_column: 'ts' });
    const all = await drain(connector.sync(source, undefined, dbContext()));
    expect(ids(all).sort((a, b) => a - b)).toEqual(ts.map((_, i) => i + 1));
    for (const batch of all) {
      const values = batch.records.map((r) => (r as { ts: number }).ts);
      expect(String(Math.max(...values))).toBe((batch.state as { cursor: string }).cursor);
    }
    // A worker killed after batch k: the retry starts from the state landed with batch k.
    for (let k = 0; k < all.length; k++) {
      const resumed = await drain(connector.sync(source, all[k]!.state, dbContext()));
      const landed = [...ids(all.slice(0, k + 1)), ...ids(resumed)].sort((a, b) => a - b);
      expect(landed).toEqual(ts.map((_, i) => i + 1));
    }
  });

  it('incremental batches are cut by bytes too, each with the state that covers exactly it', async () => {
    await db.client.query(
      `CREATE TABLE wide_events (id int PRIMARY KEY, ts int NOT NULL, pad text NOT NULL)`,
    );
    const ts = [1, 1, 2, 2, 2, 3, 4, 4, 5, 6, 6, 6];
    await db.client.query(
      `INSERT INTO wide_events SELECT i, ($1::int[])[i], repeat('p', 300) FROM generate_series(1, $2::int) i`,
      [ts, ts.length],
    );
    // Batches of up to 1,000 rows, but about 1 KB each: two or three rows a batch.
    const narrow = new DatabaseConnector({
      batchSize: 1000,
      limits: { ...DEFAULT_BYTE_LIMITS, batchMaxBytes: 1000 },
    });
    const source = dbSource(db.url, { table: 'wide_events', cursor_column: 'ts' });
    const all = await drain(narrow.sync(source, undefined, dbContext()));
    expect(all.length).toBeGreaterThanOrEqual(4);
    for (const batch of all.slice(0, -1)) expect(JSON.stringify(batch.records).length).toBeLessThan(2000);
    for (let k = 0; k < all.length; k++) {
      const resumed = await drain(narrow.sync(source, all[k]!.state, dbContext()));
      const landed = [...ids(all.slice(0, k + 1)), ...ids(resumed)].sort((a, b) => a - b);
      expect(landed).toEqual(ts.map((_, i) => i + 1));
    }
  });

  it('without cursor_column every sync is a full refresh with no state', async () => {
    const source = dbSource(db.url, { query: 'SELECT id, name FROM orders WHERE id <= 6' });
    const first = await drain(connector.sync(source, undefined, dbContext()));
    expect(ids(first).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(first.every((b) => b.state === undefined)).toBe(true);
    const second = await drain(connector.sync(source, undefined, dbContext()));
    expect(ids(second).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reads a query source incrementally too', async () => {
    const source = dbSource(db.url, {
      query: "SELECT id, name FROM orders WHERE name LIKE 'order %'",
      cursor_column: 'id',
    });
    const batches = await drain(connector.sync(source, { cursor_column: 'id', cursor: '7' }, dbContext()));
    expect(ids(batches)).toEqual([8, 9, 10]);
  });

  it('lands a row inserted later with a value equal to the stored cursor, once; a second sync lands only new rows', async () => {
    await db.client.query(`CREATE TABLE ties (id int PRIMARY KEY, updated_at timestamptz NOT NULL)`);
    await db.client.query(
      `INSERT INTO ties VALUES (1, '2024-06-01 10:00:00+00'), (2, '2024-06-01 10:00:05+00')`,
    );
    const source = dbSource(db.url, { table: 'ties', cursor_column: 'updated_at' });
    const first = await drain(connector.sync(source, undefined, dbContext()));
    expect(ids(first)).toEqual([1, 2]);
    const state1 = first.at(-1)!.state;
    expect(state1).toMatchObject({ cursor: '2024-06-01 10:00:05+00', from: '2024-06-01 09:55:05.000000' });
    // Same value as the stored cursor: a strict `>` would never read it.
    await db.client.query(`INSERT INTO ties VALUES (3, '2024-06-01 10:00:05+00')`);
    const second = await drain(connector.sync(source, state1, dbContext()));
    expect(ids(second)).toEqual([3]);
    const state2 = second.at(-1)!.state;
    expect(await drain(connector.sync(source, state2, dbContext()))).toEqual([]);
    await db.client.query(`INSERT INTO ties VALUES (4, '2024-06-01 10:00:06+00')`);
    expect(ids(await drain(connector.sync(source, state2, dbContext())))).toEqual([4]);
  });

  it('lands a transaction that commits after a sync with an earlier timestamp, once (two real connections)', async () => {
    await db.client.query(
      `CREATE TABLE feed (id int PRIMARY KEY, note text, updated_at timestamptz NOT NULL DEFAULT now())`,
    );
    await db.client.query(`INSERT INTO feed (id, note) VALUES (1, 'before')`);
    const source = dbSource(db.url, { table: 'feed', cursor_column: 'updated_at' });
    let state = (await drain(connector.sync(source, undefined, dbContext()))).at(-1)!.state;
    const early = new pg.Client({ connectionString: db.url });
    const late = new pg.Client({ connectionString: db.url });
    await early.connect();
    await late.connect();
    try {
      // now() is the transaction's start: `early` gets the earlier timestamp but commits last.
      await early.query('BEGIN');
      await early.query(`INSERT INTO feed (id, note) VALUES (2, 'early')`);
      await late.query('BEGIN');
      await late.query(`INSERT INTO feed (id, note) VALUES (3, 'late')`);
      await late.query('COMMIT');
      const during = await drain(connector.sync(source, state, dbContext()));
      expect(ids(during)).toEqual([3]);
      state = during.at(-1)!.state;
      await early.query('COMMIT');
    } finally {
      await early.end();
      await late.end();
    }
    const { rows } = await db.client.query(`SELECT id FROM feed ORDER BY updated_at`);
    expect(rows.map((r: { id: number }) => r.id)).toEqual([1, 2, 3]);
    const after = await drain(connector.sync(source, state, dbContext()));
    expect(ids(after)).toEqual([2]);
    state = after.at(-1)!.state;
    expect(await drain(connector.sync(source, state, dbContext()))).toEqual([]);
    await db.client.query(`INSERT INTO feed (id, note) VALUES (4, 'next')`);
    expect(ids(await drain(connector.sync(source, state, dbContext())))).toEqual([4]);
  });

  it('a row committed later than the lookback with an earlier value is not read (the stated limit)', async () => {
    await db.client.query(`CREATE TABLE slow (id int PRIMARY KEY, at timestamptz NOT NULL)`);
    await db.client.query(`INSERT INTO slow VALUES (1, '2024-06-01 10:00:00+00')`);
    const source = dbSource(db.url, { table: 'slow', cursor_column: 'at', cursor_lookback: 60 });
    const state = (await drain(connector.sync(source, undefined, dbContext()))).at(-1)!.state;
    await db.client.query(
      `INSERT INTO slow VALUES (2, '2024-06-01 09:59:30+00'), (3, '2024-06-01 09:58:00+00')`,
    );
    expect(ids(await drain(connector.sync(source, state, dbContext())))).toEqual([2]);
  });

  it('an updated row whose cursor value did not change lands again as a new version', async () => {
    await db.client.query(`CREATE TABLE edits (id int PRIMARY KEY, v text, seq bigint NOT NULL)`);
    await db.client.query(`INSERT INTO edits VALUES (1, 'a', 5)`);
    const source = dbSource(db.url, { table: 'edits', cursor_column: 'seq' });
    const state = (await drain(connector.sync(source, undefined, dbContext()))).at(-1)!.state;
    await db.client.query(`UPDATE edits SET v = 'b'`);
    const again = await drain(connector.sync(source, state, dbContext()));
    expect(again.flatMap((b) => b.records)).toEqual([{ id: 1, v: 'b', seq: 5 }]);
  });

  it('a run of equal values longer than the fingerprint bound lands once, then is left behind (stated limit)', async () => {
    const small = new DatabaseConnector({ batchSize: 2, maxWindowKeys: 3 });
    await db.client.query(`CREATE TABLE crowd (id int PRIMARY KEY, n int NOT NULL)`);
    await db.client.query(
      `INSERT INTO crowd SELECT g, CASE WHEN g = 1 THEN 1 ELSE 2 END FROM generate_series(1, 8) g`,
    );
    const source = dbSource(db.url, { table: 'crowd', cursor_column: 'n' });
    const first = await drain(small.sync(source, undefined, dbContext()));
    expect(ids(first).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const state = first.at(-1)!.state;
    expect(state).toEqual({ cursor_column: 'n', cursor: '2' });
    await db.client.query(`INSERT INTO crowd VALUES (9, 2), (10, 3)`);
    expect(ids(await drain(small.sync(source, state, dbContext())))).toEqual([10]);
  });

  it('starts over when the stored state belongs to another cursor_column', async () => {
    const source = dbSource(db.url, { table: 'orders', cursor_column: 'id' });
    const batches = await drain(
      connector.sync(source, { cursor_column: 'created_at', cursor: 'x' }, dbContext()),
    );
    expect(ids(batches).slice(0, 3)).toEqual([1, 2, 3]);
  });

  it('fails permanently for a missing table and transiently for a refused port', async () => {
    const missing = drain(connector.sync(dbSource(db.url, { table: 'nope' }), undefined, dbContext()));
    await expect(missing).rejects.toBeInstanceOf(PermanentSyncError);
    await expect(missing).rejects.toMatchObject({ code: 'not_found' });
    const port = await freePort();
    const refused = drain(
      connector.sync(dbSource(url({ port }), { table: 'orders' }), undefined, dbContext()),
    );
    await expect(refused).rejects.toBeInstanceOf(ConnectorError);
    await expect(refused).rejects.toMatchObject({ code: 'refused' });
  });

  it('stops promptly when cancelled and leaves no session open', async () => {
    await db.client.query(`CREATE TABLE wide AS SELECT g AS id FROM generate_series(1, 5000) g`);
    const abort = new AbortController();
    const source = dbSource(db.url, { table: 'wide', cursor_column: 'id' });
    let seen = 0;
    const run = (async () => {
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
          const { rows } = await db.client.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'sluice'`,
            [db.name],
          );
          return rows[0].n;
        },
        { timeout: 5000 },
      )
      .toBe(0);
  });

  it('streams a 200k-row table with bounded memory', async () => {
    await db.client.query(
      `CREATE TABLE big AS SELECT g AS id, repeat('x', 400) || g AS body FROM generate_series(1, 200000) g`,
    );
    const big = new DatabaseConnector({ batchSize: 1000 });
    const probe = new HeapProbe();
    let rows = 0;
    let batches = 0;
    let largest = 0;
    let last = 0;
    let ordered = true;
    for await (const batch of big.sync(
      dbSource(db.url, { table: 'big', cursor_column: 'id' }),
      undefined,
      dbContext(),
    )) {
      for (const r of batch.records) {
        const id = (r as { id: number }).id;
        if (id !== last + 1) ordered = false;
        last = id;
      }
      rows += batch.records.length;
      largest = Math.max(largest, batch.records.length);
      batches += 1;
      probe.sample();
      if (batches % 40 === 0) probe.checkpoint();
    }
    probe.checkpoint();
    const memory = probe.report();
    console.log(`postgres 200k rows (~80 MB of text) in ${batches} batches:`, memory);
    expect(rows).toBe(200_000);
    expect(ordered).toBe(true);
    expect(largest).toBeLessThanOrEqual(1000);
    // Holding the table would keep > 80 MB reachable; a stream keeps about one batch.
    expect(memory.retainedMB).toBeLessThan(24);
  }, 60_000);
});

describe('database connector on PostgreSQL: describe()', () => {
  it('returns the columns with JSON types', async () => {
    const schema = await connector.describe(dbSource(db.url, { table: 'orders' }), dbContext());
    expect(schema).toMatchObject({
      type: 'object',
      properties: {
        id: { type: ['integer', 'string', 'null'], 'x-db-type': 'bigint' },
        name: { type: ['string', 'null'], 'x-db-type': 'text' },
        amount: { type: ['string', 'null'], 'x-db-type': 'numeric' },
        tags: { 'x-db-type': 'jsonb' },
      },
    });
  });
});
