import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectInvalid, startTestApi, type TestApi } from '../helpers/api-harness';

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}
const nodes = (plan: PlanNode): PlanNode[] => [plan, ...(plan.Plans ?? []).flatMap(nodes)];

/** GET /raw-data-sources?name= (exact) and ?q= (prefix, ignoring case, on an index). */
describe('source list filters name and q', () => {
  let api: TestApi;
  const create = async (name: string) => {
    const res = await api.post('/raw-data-sources', {
      name,
      source_type: 'api',
      connection_string: 'https://api.example.test/items',
    });
    expect(res.status, res.text).toBe(201);
    return res.body.id as string;
  };
  const names = (res: { body: { data: { name: string }[] } }) => res.body.data.map((s) => s.name).sort();

  beforeAll(async () => {
    api = await startTestApi();
    for (const name of [
      'pg-orders',
      'pg-orders-eu',
      'PG-Customers',
      'mysql-orders',
      'pg_x',
      'pgAx',
      '100%-raw',
    ])
      await create(name);
  });
  afterAll(() => api.close());

  it('?name= selects the one source of that exact name (it was a 400)', async () => {
    const res = await api.get('/raw-data-sources?name=pg-orders');
    expect(res.status, res.text).toBe(200);
    expect(names(res)).toEqual(['pg-orders']);
    expect(res.body.pagination.total).toBe(1);
    expect((await api.get('/raw-data-sources?name=PG-ORDERS')).body.data).toEqual([]);
    expectInvalid(await api.get(`/raw-data-sources?name=${'x'.repeat(101)}`), 'name');
  });

  it('?q= selects by prefix, ignoring case, with % and _ taken literally; totals match', async () => {
    const pg = await api.get('/raw-data-sources?q=PG-');
    expect(names(pg)).toEqual(['PG-Customers', 'pg-orders', 'pg-orders-eu']);
    expect(pg.body.pagination.total).toBe(3);
    expect(names(await api.get('/raw-data-sources?q=pg_'))).toEqual(['pg_x']);
    expect(names(await api.get('/raw-data-sources?q=100%25'))).toEqual(['100%-raw']);
    expect(names(await api.get('/raw-data-sources?q=%25'))).toEqual([]);
    const both = await api.get('/raw-data-sources?q=pg-orders&name=pg-orders-eu');
    expect(names(both)).toEqual(['pg-orders-eu']);
    const page = await api.get('/raw-data-sources?q=pg&limit=2');
    expect(page.body.data).toHaveLength(2);
    expect(page.body.pagination.total).toBe(5);
    expectInvalid(await api.get('/raw-data-sources?q='), 'q');
    expectInvalid(await api.get('/raw-data-sources?q=%00'), 'q');
  });

  it('both are documented list parameters', async () => {
    const doc = (await api.get('/openapi.json')).body;
    const params = doc.paths['/raw-data-sources'].get.parameters.map((p: { name: string }) => p.name);
    expect(params).toEqual(expect.arrayContaining(['name', 'q']));
  });

  it('?q= runs on the lower(name) text_pattern_ops index (EXPLAIN of the statement the API sends)', async () => {
    // Enough rows that a sequential scan is not the cheap way: 20,000 sources in one statement.
    await api.knex.raw(
      `INSERT INTO raw_data_sources (id, name, source_type, is_active, sync_status)
       SELECT gen_random_uuid(), 'bulk-' || g, 'api', false, 'pending' FROM generate_series(1, 20000) g`,
    );
    await api.knex.raw('ANALYZE raw_data_sources');
    const seen: { sql: string; bindings: unknown[] }[] = [];
    const listen = (q: { sql: string; bindings: unknown[] }) => seen.push(q);
    api.container.knex.on('query', listen);
    try {
      const res = await api.get('/raw-data-sources?q=Bulk-1999');
      expect(res.status).toBe(200);
      expect(res.body.pagination.total).toBe(11);
    } finally {
      api.container.knex.removeListener('query', listen);
    }
    const statements = seen.filter((q) => /lower\("name"\) like/i.test(q.sql));
    expect(statements.length).toBe(2);
    for (const q of statements) {
      const explained = await api.knex.raw(
        `EXPLAIN (FORMAT JSON) ${q.sql.replace(/\$\d+/g, '?')}`,
        q.bindings as never,
      );
      const plan = (explained.rows[0]['QUERY PLAN'] as { Plan: PlanNode }[])[0]!.Plan;
      const used = nodes(plan).filter((n) => n['Index Name'] === 'raw_data_sources_name_prefix_index');
      expect(used.length, JSON.stringify(plan)).toBeGreaterThan(0);
      expect(nodes(plan).some((n) => n['Node Type'] === 'Seq Scan')).toBe(false);
    }
  });
});
