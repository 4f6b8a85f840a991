import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiConnector } from '../../src/connectors/api/api.connector';
import pg from 'pg';
import { sendCancelRequest } from '../../src/db/cancel-request';
import { createKnex } from '../../src/db/create-knex';
import { migrateLatest } from '../../src/db/migrator';
import { PreparedStatement } from '../../src/db/prepared-statement';
import { isLostPreparedStatement, preparedStatementPolicy } from '../../src/db/prepared-statement-mode';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { ADMIN_DATABASE_URL } from '../helpers/test-env';
import { sendJson, startHttpServer, type TestServer } from '../connectors/support/http-source';
import {
  knowsPreparedStatements,
  pgbouncerVersion,
  startPgBouncer,
  type PrivatePgBouncer,
} from '../support/private-pgbouncer';
import { until } from '../helpers/until';

/**
 * Sluice through PgBouncer in transaction mode: the Debian package (1.18: no prepared-statement
 * support), a private instance with two server connections, in front of this file's database.
 * Every query of the API and the worker goes through it; only the harness's own knex (setup and
 * checks) and the database drop go direct.
 */
const PASSWORD = 'Pgb-Source-Pw-42';
const FALLBACK = 'named prepared statements are lost between queries';
const CONCURRENT = 200;

/** Server-side statement counts of this file's database in the PgBouncer (SHOW STATS). */
const queriesThrough = async (bouncer: PrivatePgBouncer, database: string) =>
  Number((await bouncer.show('STATS')).find((row) => row.database === database)?.total_query_count ?? 0);

describe('Sluice through PgBouncer in transaction mode (default_pool_size 2)', () => {
  let bouncer: PrivatePgBouncer;
  let server: TestServer;
  let api: TestApi;
  const rows = [
    { id: 1, name: 'a', updated_at: '2024-03-01T00:00:00Z' },
    { id: 2, name: 'b', updated_at: '2024-03-02T00:00:00Z' },
    { id: 3, name: 'c', updated_at: '2024-03-03T00:00:00Z' },
  ];

  beforeAll(async () => {
    bouncer = await startPgBouncer({ poolSize: 2, upstream: ADMIN_DATABASE_URL });
    server = await startHttpServer((req, res, url) => {
      if (req.headers.authorization !== `Basic ${Buffer.from(`pgb:${PASSWORD}`).toString('base64')}`)
        return sendJson(res, { error: 'no' }, 401);
      const since = url.searchParams.get('since');
      const fresh = rows.filter((r) => !since || r.updated_at > since);
      const offset = Number(url.searchParams.get('offset') ?? 0);
      const next = offset + 2 < fresh.length ? `/items?offset=${offset + 2}` : null;
      sendJson(res, { data: fresh.slice(offset, offset + 2), next });
    });
    api = await startTestApi({
      databaseUrl: (direct) => bouncer.url(direct),
      connectors: [new ApiConnector()],
      // auto: the default, so this is what an install behind PgBouncer 1.18 gets without a setting.
      env: { TEST_WAIT_MS: '10000', SYNC_ATTEMPTS: '2', OUTBOUND_ALLOW: '127.0.0.0/8' },
    });
    await api.startWorker();
  });
  afterAll(async () => {
    await api?.close();
    await server?.close();
    await bouncer?.close();
  });

  const newSource = (suffix: string) =>
    api.post('/raw-data-sources', {
      name: `pgb-${suffix}-${process.pid}-${randomUUID().slice(0, 8)}`,
      source_type: 'api',
      connection_string: `http://pgb:${PASSWORD}@127.0.0.1:${server.port}/items`,
      metadata: {
        records_path: 'data',
        pagination: { type: 'next_url', path: 'next' },
        incremental: { param: 'since', field: 'updated_at' },
      },
    });

  it('the app is configured through the private PgBouncer, in transaction mode', async () => {
    expect(bouncer.version).toMatch(/^\d+\.\d+/);
    expect(new URL(api.container.config.databaseUrl).port).toBe(String(bouncer.port));
    const config = await bouncer.show('CONFIG');
    expect(config.find((r) => r.key === 'pool_mode')?.value).toBe('transaction');
    expect(config.find((r) => r.key === 'default_pool_size')?.value).toBe('2');
  });

  it('create, get by id (the prepared read), list, update and delete answer as they do direct', async () => {
    const before = await queriesThrough(bouncer, api.database.name);
    const created = await newSource('crud');
    expect(created.status, created.text).toBe(201);
    const id = created.body.id as string;
    expect(created.body.connection_string).not.toContain(PASSWORD);

    // Several reads by id in a row: consecutive queries of one client meet other server connections.
    for (let i = 0; i < 5; i++) {
      const got = await api.get(`/raw-data-sources/${id}`);
      expect(got.status, got.text).toBe(200);
      expect(got.body).toMatchObject({ id, source_type: 'api', has_connection_string: true });
    }
    expect((await api.get(`/raw-data-sources/${randomUUID()}`)).status).toBe(404);

    const list = await api.get(`/raw-data-sources?type=api&limit=100`);
    expect(list.status, list.text).toBe(200);
    expect(list.body.data.map((s: { id: string }) => s.id)).toContain(id);

    // An update is a transaction (SELECT ... FOR UPDATE, then UPDATE): one server connection throughout.
    const updated = await api.put(`/raw-data-sources/${id}`, { is_active: false });
    expect(updated.status, updated.text).toBe(200);
    expect((await api.get(`/raw-data-sources/${id}`)).body.is_active).toBe(false);

    const deleted = await api.del(`/raw-data-sources/${id}`);
    expect(deleted.status, deleted.text).toBe(204);
    expect((await api.get(`/raw-data-sources/${id}`)).status).toBe(404);
    // The statements really went through the PgBouncer.
    expect(await queriesThrough(bouncer, api.database.name)).toBeGreaterThan(before);
  });

  it('tests and syncs a loopback source: records land, runs and records read back', async () => {
    const created = await newSource('sync');
    expect(created.status, created.text).toBe(201);
    const id = created.body.id as string;
    const tested = await api.post(`/raw-data-sources/${id}/test`);
    expect(tested.status, tested.text).toBe(200);
    expect(tested.body.ok).toBe(true);

    const syncOnce = async () => {
      const queued = await api.post(`/raw-data-sources/${id}/sync`);
      expect(queued.status, queued.text).toBe(202);
      return until(
        async () =>
          (await api.get(`/raw-data-sources/${id}/runs`)).body.data?.find(
            (r: { id: string }) => r.id === queued.body.run_id,
          ),
        (r) => r?.status === 'success' || r?.status === 'failed',
      );
    };
    expect(await syncOnce()).toMatchObject({ status: 'success', records: 3 });
    rows.push({ id: 4, name: 'd', updated_at: '2024-03-04T00:00:00Z' });
    expect(await syncOnce()).toMatchObject({ status: 'success', records: 1 });

    const runs = await api.get(`/raw-data-sources/${id}/runs`);
    expect(runs.body.pagination.total).toBe(2);
    const records = await api.get(`/raw-data-sources/${id}/records?limit=100`);
    expect(records.status, records.text).toBe(200);
    expect(records.body.data.map((r: { payload: { id: number } }) => r.payload.id)).toEqual([1, 2, 3, 4]);
    const source = (await api.get(`/raw-data-sources/${id}`)).body;
    expect(source).toMatchObject({ sync_status: 'success' });
    // The NDJSON export (COPY on its own pool) streams through the PgBouncer too.
    const exported = await api.request('GET', `/raw-data-sources/${id}/records`, {
      headers: { accept: 'application/x-ndjson' },
    });
    expect(exported.status, exported.text).toBe(200);
    const lines = exported.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { ingested_at: string });
    expect(lines).toHaveLength(4);
    expect(lines[0]!.ingested_at).toMatch(/\+00:00$/);
  });

  it(`${CONCURRENT} concurrent GETs by id all answer: auto falls back to unnamed once, retrying`, async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await newSource(`many${i}`)).body.id as string);
    const answers = await Promise.all(
      Array.from({ length: CONCURRENT }, (_, i) => api.get(`/raw-data-sources/${ids[i % ids.length]}`)),
    );
    expect(answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.text}`)).toEqual([]);
    expect(answers.every((a, i) => a.body.id === ids[i % ids.length])).toBe(true);
    // Ten client connections over two server connections: a name prepared by one client is
    // missing (26000) or already there (42P05) for another, so auto must have fallen back, once.
    expect(preparedStatementPolicy(api.container.knex).unnamed).toBe(true);
    expect(api.logs.filter((l) => l.includes(FALLBACK))).toHaveLength(1);
  });
});

describe('the prepared by-id read through PgBouncer 1.18-style transaction pooling', () => {
  let bouncer: PrivatePgBouncer;
  let direct: Knex;
  let databaseName: string;
  const knexes: Knex[] = [];
  const through = (
    preparedStatements: 'on' | 'off' | 'auto',
    url = bouncer.url(databaseUrlOf(databaseName)),
  ) => {
    const knex = createKnex({ url, poolMax: 10, preparedStatements });
    knexes.push(knex);
    return knex;
  };
  const byName = (knex: Knex) =>
    new PreparedStatement<{ name: string; n: number }>(
      'test_pgb_things_by_name',
      knex('things').select('name', 'n').where({ name: '' }).first() as unknown as Knex.QueryBuilder,
    );
  /** CONCURRENT reads at once; the errors they met. */
  const hammer = async (knex: Knex) => {
    const statement = byName(knex);
    const results = await Promise.allSettled(
      Array.from({ length: CONCURRENT }, (_, i) => statement.rows(knex, [`t${i % 5}`])),
    );
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    const rows = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
    return { errors, rows };
  };

  beforeAll(async () => {
    bouncer = await startPgBouncer({ poolSize: 2, upstream: ADMIN_DATABASE_URL });
    databaseName = `sluice_test_pgb_${process.pid}_${randomUUID().slice(0, 8).replace(/-/g, '')}`;
    const admin = createKnex({ url: ADMIN_DATABASE_URL, poolMax: 1 });
    try {
      await admin.raw(`CREATE DATABASE ${databaseName}`);
    } finally {
      await admin.destroy();
    }
    direct = createKnex({ url: databaseUrlOf(databaseName), poolMax: 1 });
    await direct.schema.createTable('things', (t) => {
      t.text('name').primary();
      t.integer('n').notNullable();
    });
    await direct('things').insert([0, 1, 2, 3, 4].map((n) => ({ name: `t${n}`, n })));
  });
  afterAll(async () => {
    await Promise.all(knexes.map((k) => k.destroy()));
    await direct?.destroy();
    if (databaseName) {
      const admin = createKnex({ url: ADMIN_DATABASE_URL, poolMax: 1 });
      await admin.raw(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`).finally(() => admin.destroy());
    }
    await bouncer?.close();
  });

  it('on (named always) fails there: the reason the setting exists', async () => {
    const { errors } = await hammer(through('on'));
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every(isLostPreparedStatement)).toBe(true);
  });

  it('off runs unnamed: every read answers, none named on a server', async () => {
    const knex = through('off');
    const { errors, rows } = await hammer(knex);
    expect(errors).toEqual([]);
    expect(rows).toHaveLength(CONCURRENT);
    expect(rows.every((r, i) => r.n === i % 5)).toBe(true);
    expect(preparedStatementPolicy(knex).unnamed).toBe(false);
  });

  it('auto answers every read, falling back after the first lost name', async () => {
    const knex = through('auto');
    const { errors, rows } = await hammer(knex);
    expect(errors).toEqual([]);
    expect(rows).toHaveLength(CONCURRENT);
    expect(preparedStatementPolicy(knex).unnamed).toBe(true);
  });

  it('auto stays named direct (no pooler): nothing is lost, nothing falls back', async () => {
    const knex = through('auto', databaseUrlOf(databaseName));
    const { errors, rows } = await hammer(knex);
    expect(errors).toEqual([]);
    expect(rows).toHaveLength(CONCURRENT);
    expect(preparedStatementPolicy(knex).unnamed).toBe(false);
  });

  it('migrations apply through it too: no session state, so no direct URL is needed for them', async () => {
    const name = `${databaseName}_m`;
    const admin = createKnex({ url: ADMIN_DATABASE_URL, poolMax: 1 });
    try {
      await admin.raw(`CREATE DATABASE ${name}`);
      const knex = through('auto', bouncer.url(databaseUrlOf(name)));
      const applied = await migrateLatest(knex);
      expect(applied.length).toBeGreaterThan(0);
      expect(await migrateLatest(knex)).toEqual([]);
      await knex.destroy();
      knexes.splice(knexes.indexOf(knex), 1);
    } finally {
      await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => admin.destroy());
    }
  });

  it('an export is cancelled by CancelRequest, which reaches the query through the PgBouncer too', async () => {
    for (const url of [bouncer.url(databaseUrlOf(databaseName)), databaseUrlOf(databaseName)]) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const started = Date.now();
        const running = client.query('SELECT pg_sleep(30)').then(
          () => undefined,
          (err: unknown) => err,
        );
        // Cancel only once the sleep runs on a server connection (a cancel before it is lost).
        const admin = createKnex({ url: databaseUrlOf(databaseName), poolMax: 1 });
        try {
          await until(
            async () =>
              (
                await admin.raw(
                  `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active' AND datname = current_database()`,
                )
              ).rows[0].n as number,
            (n) => n > 0,
            10_000,
          );
        } finally {
          await admin.destroy();
        }
        await sendCancelRequest(client);
        expect(await running).toMatchObject({ code: '57014' });
        expect(Date.now() - started).toBeLessThan(20_000);
      } finally {
        await client.end();
      }
    }
  });

  const version = pgbouncerVersion();
  it.skipIf(!knowsPreparedStatements(version))(
    `on works behind a PgBouncer with max_prepared_statements (1.21+; this one is ${version ?? 'missing'}, which has none)`,
    async () => {
      const capable = await startPgBouncer({
        poolSize: 2,
        upstream: ADMIN_DATABASE_URL,
        maxPreparedStatements: 100,
      });
      try {
        const { errors, rows } = await hammer(through('on', capable.url(databaseUrlOf(databaseName))));
        expect(errors).toEqual([]);
        expect(rows).toHaveLength(CONCURRENT);
      } finally {
        await Promise.all(knexes.splice(0).map((k) => k.destroy()));
        await capable.close();
      }
    },
  );
});

function databaseUrlOf(name: string): string {
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}
