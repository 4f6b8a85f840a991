import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseConnector } from '../../src/connectors/database/database.connector';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { ADMIN_DATABASE_URL } from '../helpers/test-env';
import { startTcpForward } from './support/tcp-forward';
import {
  createMysqlScratch,
  createPgScratch,
  freePort,
  type MysqlScratch,
  type PgScratch,
} from './support/database-peers';
import { until } from '../helpers/until';

let api: TestApi;
let pgDb: PgScratch;
// The shared Postgres is Sluice's own database here, which the worker refuses as a source: the
// scratch database is read through a forwarder on another loopback port instead.
let pgForward: { port: number; close(): Promise<void> };
let myDb: MysqlScratch;
let seq = 0;

beforeAll(async () => {
  [pgDb, myDb, pgForward] = await Promise.all([
    createPgScratch(),
    createMysqlScratch(),
    startTcpForward(Number(new URL(ADMIN_DATABASE_URL).port || 5432)),
  ]);
  await pgDb.client.query(
    `CREATE TABLE orders (id int PRIMARY KEY, name text NOT NULL, placed_at timestamptz NOT NULL)`,
  );
  await pgDb.client.query(
    `INSERT INTO orders SELECT g, 'pg order ' || g, timestamptz '2024-03-01 12:00:00+00' + g * interval '1 minute' FROM generate_series(1, 7) g`,
  );
  await myDb.conn.query(
    `CREATE TABLE orders (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, placed_at DATETIME(6) NOT NULL)`,
  );
  await myDb.conn.query(
    `INSERT INTO orders SELECT seq, CONCAT('my order ', seq), TIMESTAMP'2024-03-01 12:00:00' + INTERVAL seq MINUTE FROM seq_1_to_7`,
  );
  // Small batches: a sync of 7 rows lands in several transactions, each with its state.
  api = await startTestApi({ connectors: [new DatabaseConnector({ batchSize: 3 })] });
  await api.startWorker();
}, 60_000);

afterAll(async () => {
  await api?.close();
  await Promise.all([pgDb?.drop(), myDb?.drop(), pgForward?.close()]);
});

function forwarded(url: string, port: number): string {
  const u = new URL(url);
  u.port = String(port);
  return u.toString();
}

async function createSource(connection_string: string, metadata: Record<string, unknown>): Promise<string> {
  const res = await api.post('/raw-data-sources', {
    name: `database-e2e-${process.pid}-${++seq}`,
    source_type: 'database',
    connection_string,
    metadata,
  });
  expect(res.status, res.text).toBe(201);
  return res.body.id as string;
}

async function syncAndWait(id: string): Promise<{ id: string; status: string; records: number }> {
  const queued = await api.post(`/raw-data-sources/${id}/sync`);
  expect(queued.status, queued.text).toBe(202);
  return until(
    async () => (await api.get(`/raw-data-sources/${id}/runs`)).body.data[0],
    (run) => run?.id === queued.body.run_id && ['success', 'failed'].includes(run.status),
  );
}

async function landed(sourceId: string, runId: string): Promise<Record<string, unknown>[]> {
  const rows = await api.knex('raw_records').where({ source_id: sourceId, run_id: runId }).select('payload');
  return rows.map((r) => r.payload as Record<string, unknown>).sort((a, b) => Number(a.id) - Number(b.id));
}

const dialects = [
  {
    name: 'PostgreSQL',
    url: () => forwarded(pgDb.url, pgForward.port),
    insert: (sql: string) => pgDb.client.query(sql),
    prefix: 'pg',
  },
  { name: 'MariaDB', url: () => myDb.url, insert: (sql: string) => myDb.conn.query(sql), prefix: 'my' },
];

describe.each(dialects)('database source through the API and a worker ($name)', (dialect) => {
  it('tests with passed steps, syncs every row, then only the new ones', async () => {
    const id = await createSource(dialect.url(), { table: 'orders', cursor_column: 'id' });
    const tested = await api.post(`/raw-data-sources/${id}/test`);
    expect(tested.status).toBe(200);
    expect(tested.body.ok, tested.text).toBe(true);
    expect(tested.body.steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`)).toEqual([
      'configuration:passed',
      'resolve:passed',
      'connect:passed',
      'authenticate:passed',
      'read_sample:passed',
      'schema:passed',
    ]);

    const first = await syncAndWait(id);
    expect(first).toMatchObject({ status: 'success', records: 7 });
    const firstRows = await landed(id, first.id);
    expect(firstRows.map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(firstRows[0]).toMatchObject({ id: 1, name: `${dialect.prefix} order 1` });
    expect(String(firstRows[0]!.placed_at)).toMatch(/^2024-03-01T12:01:00/);
    const state = await api.knex('source_sync_state').where({ source_id: id }).first();
    expect(state?.state).toMatchObject({ cursor_column: 'id', cursor: '7', from: '7' });

    await dialect.insert(
      `INSERT INTO orders VALUES (8, '${dialect.prefix} order 8', '2024-03-02 00:00:00'), (9, '${dialect.prefix} order 9', '2024-03-02 00:00:01')`,
    );
    const second = await syncAndWait(id);
    expect(second).toMatchObject({ status: 'success', records: 2 });
    expect((await landed(id, second.id)).map((r) => r.id)).toEqual([8, 9]);
    const total = await api.knex('raw_records').where({ source_id: id }).count({ n: '*' }).first();
    expect(Number(total?.n)).toBe(9);
  });

  it('a wrong port tests as a failed connect step with code refused', async () => {
    const url = new URL(dialect.url());
    url.port = String(await freePort());
    const id = await createSource(url.toString(), { table: 'orders' });
    const tested = await api.post(`/raw-data-sources/${id}/test`);
    expect(tested.body.ok).toBe(false);
    expect(tested.body.steps.find((s: { name: string }) => s.name === 'connect')).toMatchObject({
      status: 'failed',
      code: 'refused',
    });
  });

  it('a missing table fails the sync at once (permanent) with a clear message', async () => {
    const id = await createSource(dialect.url(), { table: 'no_such_table' });
    const run = await syncAndWait(id);
    expect(run).toMatchObject({ status: 'failed', attempt: 1 });
    const source = (await api.get(`/raw-data-sources/${id}`)).body;
    expect(source.error_message).toContain('no_such_table');
  });
});
