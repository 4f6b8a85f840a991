import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, TEST_ADMIN_TOKEN, type TestApi } from '../helpers/api-harness';

const READ_TOKEN = `slc_test_read_${'r'.repeat(40)}`;
const SECRET = 'Audit-S3cret-Never-Logged';

interface Row {
  actor: string;
  action: string;
  target_type: string;
  target_id: string | null;
  outcome: string;
  status: number;
  request_id: string | null;
  detail: Record<string, unknown>;
}

describe('audit log', () => {
  let api: TestApi;
  const newest = async (query = ''): Promise<Row[]> => {
    const res = await api.get(`/audit${query}`);
    expect(res.status, res.text).toBe(200);
    return res.body.data as Row[];
  };

  beforeAll(async () => {
    api = await startTestApi({
      env: { API_KEYS: `admin:${TEST_ADMIN_TOKEN},read:${READ_TOKEN}`, TEST_WAIT_MS: '0' },
    });
  });
  afterAll(() => api?.close());

  it('records every write with actor, action, target, outcome and request id; reads are not recorded', async () => {
    const created = await api.request('POST', '/raw-data-sources', {
      body: {
        name: 'audited',
        source_type: 'database',
        connection_string: `postgres://reader:${SECRET}@127.0.0.1:5432/warehouse`,
        metadata: { table: 'events' },
      },
      headers: { 'x-request-id': 'audit-create-1' },
    });
    expect(created.status, created.text).toBe(201);
    const id: string = created.body.id;
    await api.get(`/raw-data-sources/${id}`);
    expect((await api.put(`/raw-data-sources/${id}`, { name: 'audited-renamed' })).status).toBe(200);
    expect((await api.post(`/raw-data-sources/${id}/sync`)).status).toBe(202);
    expect((await api.post(`/raw-data-sources/${id}/test`)).status).toBe(202);
    expect((await api.post('/raw-data-sources/sync-all')).status).toBe(202);
    expect((await api.del(`/raw-data-sources/${id}`)).status).toBe(204);

    const rows = await newest();
    expect(rows.map((r) => r.action)).toEqual([
      'source.delete',
      'source.sync_all',
      'source.test',
      'source.sync',
      'source.update',
      'source.create',
    ]);
    for (const row of rows)
      expect(row).toMatchObject({ actor: 'env:admin#1', outcome: 'success', target_type: 'source' });
    expect(rows.at(-1)).toMatchObject({ target_id: id, status: 201, request_id: 'audit-create-1' });
    expect(rows[0]).toMatchObject({ target_id: id, status: 204 });
    expect(rows[3]!.detail.job_id).toEqual(expect.any(String));
  });

  it('records failures per request (400, 404) and refusals (401 without a key, 403 for a read key) per window', async () => {
    expect((await api.post('/raw-data-sources', { name: '' })).status).toBe(400);
    const missing = randomUUID();
    expect((await api.del(`/raw-data-sources/${missing}`)).status).toBe(404);
    expect((await api.request('POST', '/raw-data-sources/sync-all', { token: null })).status).toBe(401);
    expect((await api.request('DELETE', `/raw-data-sources/${missing}`, { token: READ_TOKEN })).status).toBe(
      403,
    );

    // Refusals are counted, and written as one row per status and actor when the window ends.
    expect((await newest('?limit=2'))[0]).toMatchObject({ status: 404 });
    await api.container.rejected.flush();
    const [forbidden, anonymous, notFound, invalid] = await newest('?limit=4');
    expect(forbidden).toMatchObject({
      actor: 'env:read#2',
      action: 'request.rejected',
      outcome: 'denied',
      status: 403,
      detail: { count: 1, samples: [`DELETE /raw-data-sources/${missing}`] },
    });
    expect(anonymous).toMatchObject({
      actor: 'anonymous',
      action: 'request.rejected',
      outcome: 'denied',
      status: 401,
      detail: { count: 1, samples: ['POST /raw-data-sources/sync-all'] },
    });
    expect(notFound).toMatchObject({ action: 'source.delete', outcome: 'failed', status: 404 });
    expect(invalid).toMatchObject({
      action: 'source.create',
      outcome: 'failed',
      status: 400,
      target_id: null,
    });
    expect(invalid!.detail.problem).toBe('/problems/validation-error');
  });

  it('records key changes without the token', async () => {
    const created = await api.post('/api-keys', { name: 'audited-key', scope: 'write' });
    expect(created.status).toBe(201);
    expect((await api.del(`/api-keys/${created.body.id}`)).status).toBe(204);
    const [revoke, create] = await newest('?limit=2');
    expect(create).toMatchObject({
      action: 'api_key.create',
      target_id: created.body.id,
      outcome: 'success',
    });
    expect(create!.detail).toMatchObject({
      name: 'audited-key',
      scope: 'write',
      prefix: created.body.prefix,
    });
    expect(revoke).toMatchObject({ action: 'api_key.revoke', target_id: created.body.id });
    const all = JSON.stringify(await api.knex('audit_log').select());
    expect(all).not.toContain(created.body.token.slice(8));
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(TEST_ADMIN_TOKEN);
  });

  it('filters by actor, action and target, pages newest first, and is admin-only', async () => {
    const byAction = await api.get('/audit?action=source.delete&limit=1');
    expect(byAction.body.pagination).toEqual({ total: 2, limit: 1, offset: 0 });
    expect(byAction.body.data[0].status).toBe(404);
    expect((await api.get('/audit?action=source.delete&limit=1&offset=1')).body.data[0].status).toBe(204);
    expect((await api.get('/audit?actor=anonymous')).body.pagination.total).toBe(1);
    const first = (await newest()).at(-1)!;
    expect((await api.get(`/audit?target_id=${first.target_id}`)).body.pagination.total).toBe(5); // all but sync-all, which has no single target
    for (const bad of ['limit=101', 'limit=0', 'offset=-1', 'colour=red', `actor=${'x'.repeat(200)}`]) {
      const res = await api.get(`/audit?${bad}`);
      expect(res.status, bad).toBe(400);
      expect(res.body.errors[0].pointer).toBe(bad.split('=')[0]);
    }
    expect((await api.request('GET', '/audit', { token: READ_TOKEN })).status).toBe(403);
  });

  it('is append-only: the database refuses UPDATE, DELETE and TRUNCATE', async () => {
    await expect(api.knex('audit_log').update({ actor: 'someone-else' })).rejects.toThrow(/append-only/);
    await expect(api.knex('audit_log').delete()).rejects.toThrow(/append-only/);
    await expect(api.knex.raw('TRUNCATE audit_log')).rejects.toThrow(/append-only/);
    expect((await api.get('/audit')).body.pagination.total).toBeGreaterThan(10);
  });
});
