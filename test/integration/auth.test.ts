import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, TEST_ADMIN_TOKEN, type ApiResponse, type TestApi } from '../helpers/api-harness';
import { until } from '../process/process-kit';
import { KEY_CACHE_MS } from '../../src/auth/key-verifier';

/** The 401/403 matrix over every documented route (and the job dashboard), key management, Basic. */
const READ_TOKEN = `slc_test_read_${'r'.repeat(40)}`;
const WRITE_TOKEN = `slc_test_write_${'w'.repeat(40)}`;
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch'];
const PUBLIC = new Set([
  'GET /healthz',
  'GET /readyz',
  'GET /openapi.json',
  'GET /docs',
  'GET /docs/assets/{name}',
  'POST /webhooks/{source_id}',
]);
/** Not in the OpenAPI document (bull-board routes itself), guarded all the same. */
const DASHBOARD = [
  'GET /admin/queues',
  'GET /admin/queues/api/queues',
  'PUT /admin/queues/api/queues/sync/pause',
];

const basic = (token: string) => `Basic ${Buffer.from(`anyone:${token}`).toString('base64')}`;

describe('authentication and scopes', () => {
  let api: TestApi;
  let routes: string[];
  const call = (
    route: string,
    token: string | null,
    headers: Record<string, string> = {},
  ): Promise<ApiResponse> => {
    const [method, template] = route.split(' ') as [string, string];
    const path = template.replace(/\{name\}/g, 'swagger-ui.min.css').replace(/\{[a-z_]+\}/g, randomUUID());
    return api.request(method, path, { token, headers });
  };

  beforeAll(async () => {
    api = await startTestApi({
      env: { API_KEYS: `admin:${TEST_ADMIN_TOKEN},read:${READ_TOKEN},write:${WRITE_TOKEN}` },
    });
    const doc = (await api.get('/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    routes = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((m) => HTTP_METHODS.includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(routes.length).toBeGreaterThan(15);
  });
  afterAll(() => api?.close());

  it('answers 401 problem+json with a challenge on every route but health, docs and webhooks', async () => {
    const wrong: string[] = [];
    for (const route of [...routes.filter((r) => !PUBLIC.has(r)), ...DASHBOARD]) {
      for (const token of [null, `slc_${'x'.repeat(43)}`]) {
        const res = await call(route, token);
        const challenge = res.headers.get('www-authenticate') ?? '';
        const expected = route.includes('/admin/queues') ? 'Basic realm="sluice"' : 'Bearer realm="sluice"';
        if (
          res.status !== 401 ||
          challenge !== expected ||
          !res.headers.get('content-type')?.includes('problem+json')
        )
          wrong.push(`${route} (${token ? 'bad token' : 'no token'}): ${res.status} ${challenge}`);
      }
    }
    expect(wrong).toEqual([]);
    for (const route of PUBLIC) {
      if (route.startsWith('POST')) continue;
      expect((await call(route, null)).status, route).toBe(200);
    }
    // A webhook receipt is judged by its signature, not a token: 404 for an unknown source, not 401.
    expect((await call('POST /webhooks/{source_id}', null)).status).not.toBe(401);
  });

  it('lets a read key read but not write, a write key write but not administer', async () => {
    const wrong: string[] = [];
    const admin = (route: string) =>
      /\/(api-keys|audit|admin\/queues|notification-subscriptions)/.test(route);
    for (const route of [...routes.filter((r) => !PUBLIC.has(r)), ...DASHBOARD]) {
      if (route === 'GET /events') continue; // an open stream; its 401/403 is checked below
      const isRead = route.startsWith('GET');
      const read = await call(route, READ_TOKEN);
      const readAllowed = isRead && !admin(route);
      if (readAllowed ? [401, 403].includes(read.status) : read.status !== 403)
        wrong.push(`read ${route}: ${read.status}`);
      const write = await call(route, WRITE_TOKEN, { 'content-type': 'application/json' });
      if (admin(route) ? write.status !== 403 : [401, 403].includes(write.status))
        wrong.push(`write ${route}: ${write.status}`);
    }
    expect(wrong).toEqual([]);

    const denied = await api.request('POST', '/raw-data-sources', { token: READ_TOKEN, body: { name: 'x' } });
    expect(denied.status).toBe(403);
    expect(denied.body.detail).toContain('write scope');
    expect(Number((await api.knex('raw_data_sources').count({ n: '*' }))[0]?.n)).toBe(0);
    const events = await fetch(`${api.baseUrl}/events`, { signal: AbortSignal.timeout(5000) });
    expect(events.status).toBe(401);
    await events.body?.cancel();
  });

  it('shows a new key once, never lists its token or hash, and stops a revoked key at once', async () => {
    const created = await api.post('/api-keys', { name: 'ci', scope: 'read' });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ name: 'ci', scope: 'read', revoked_at: null });
    expect(created.body.token).toMatch(/^slc_[A-Za-z0-9_-]{43}$/);
    expect(created.body.prefix).toBe(created.body.token.slice(0, 8));
    expect(created.headers.get('cache-control')).toBe('no-store');
    const token: string = created.body.token;

    const listed = await api.get('/api-keys');
    expect(listed.status).toBe(200);
    expect(listed.text).not.toContain(token);
    expect(listed.text).not.toContain(token.slice(8));
    expect(listed.body.data[0]).not.toHaveProperty('token');
    expect(listed.body.data[0]).not.toHaveProperty('token_hash');
    const row = await api.knex('api_keys').where({ name: 'ci' }).first();
    expect(JSON.stringify(row)).not.toContain(token);
    expect(row.token_hash).toMatch(/^[0-9a-f]{64}$/);

    expect((await api.request('GET', '/raw-data-sources', { token })).status).toBe(200);
    expect((await api.request('POST', '/raw-data-sources', { token, body: {} })).status).toBe(403);
    expect((await api.post('/api-keys', { name: 'ci', scope: 'admin' })).status).toBe(409);
    const invalid = await api.post('/api-keys', { name: 'no spaces', scope: 'root' });
    expect(invalid.status).toBe(400);
    expect(invalid.body.errors.map((e: { pointer: string }) => e.pointer).sort()).toEqual([
      '/name',
      '/scope',
    ]);

    expect((await api.del(`/api-keys/${created.body.id}`)).status).toBe(204);
    expect((await api.request('GET', '/raw-data-sources', { token })).status).toBe(401);
    expect((await api.del(`/api-keys/${randomUUID()}`)).status).toBe(404);
    expect((await api.get('/api-keys')).body.data[0].revoked_at).not.toBeNull();
  });

  it('sees a key revoked by another process (the CLI) within 5 s', async () => {
    const { body } = await api.post('/api-keys', { name: 'elsewhere', scope: 'read' });
    expect((await api.request('GET', '/raw-data-sources', { token: body.token })).status).toBe(200);
    await api.knex('api_keys').where({ id: body.id }).update({ revoked_at: api.knex.fn.now() });
    const revokedAt = Date.now();
    // Each answer with the time its request was sent: the cached lookup (made before the revocation)
    // expires at most KEY_CACHE_MS after it, so a request sent later than that must be refused,
    // however long the answers take on a loaded machine.
    const answers: { sentMs: number; status: number }[] = [];
    await until(
      'revoked key refused',
      async () => {
        const sentMs = Date.now() - revokedAt;
        const { status } = await api.request('GET', '/raw-data-sources', { token: body.token });
        answers.push({ sentMs, status });
        return status;
      },
      (s) => s === 401,
      15_000,
      200,
    );
    expect(answers.filter((a) => a.status !== 401 && a.sentMs > KEY_CACHE_MS)).toEqual([]);
    expect(answers.filter((a) => a.status !== 200 && a.status !== 401)).toEqual([]);
  });

  it('takes the token as the password of HTTP Basic, so a browser can open the job dashboard', async () => {
    const prompt = await api.request('GET', '/admin/queues', { token: null });
    expect(prompt.status).toBe(401);
    expect(prompt.headers.get('www-authenticate')).toBe('Basic realm="sluice"');
    const board = await api.request('GET', '/admin/queues', {
      headers: { authorization: basic(api.adminToken) },
    });
    expect(board.status).toBe(200);
    expect(board.headers.get('content-type')).toContain('text/html');
    expect(
      (await api.request('GET', '/raw-data-sources', { headers: { authorization: basic(READ_TOKEN) } }))
        .status,
    ).toBe(200);
    expect(
      (await api.request('GET', '/admin/queues', { headers: { authorization: basic(READ_TOKEN) } })).status,
    ).toBe(403);
  });

  it('refuses malformed credentials with 401, never 500', async () => {
    for (const authorization of [
      'Bearer',
      'Bearer ',
      `Bearer ${'x'.repeat(5_000)}`,
      'Basic !!!',
      'Basic ' + Buffer.from('no-colon').toString('base64'),
      'Basic ' + Buffer.from('user:').toString('base64'),
      'Token abc',
      `bearer ${READ_TOKEN.slice(0, -1)}`,
      `Bearer ${READ_TOKEN}\u0000`,
    ]) {
      const res = await api
        .request('GET', '/raw-data-sources', { headers: { authorization } })
        .catch(() => undefined);
      // fetch itself refuses a NUL in a header: nothing reaches the server, which is fine too.
      if (res) expect(res.status, authorization.slice(0, 40)).toBe(401);
    }
    // The scheme is case-insensitive, as RFC 9110 says.
    expect(
      (await api.request('GET', '/raw-data-sources', { headers: { authorization: `bearer ${READ_TOKEN}` } }))
        .status,
    ).toBe(200);
  });
});
