import { createServer } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectInvalid, startTestApi, type ApiResponse, type TestApi } from '../helpers/api-harness';

/** The HTTP contract's error cases (README: "The API at a glance"), one explicit request each. */
const P = '/raw-data-sources';
const ONE_MB = 1024 * 1024;

let seq = 0;
const validBody = (): Record<string, unknown> => ({
  name: `errors-${process.pid}-${++seq}`,
  source_type: 'database',
  connection_string: 'postgres://loader:Err0r-S3cret@127.0.0.1:5432/warehouse',
  schema_definition: { type: 'object', properties: { id: { type: 'integer' } } },
  refresh_interval: 900,
  is_active: true,
  metadata: { table: 'orders' },
});

function expectProblem(res: ApiResponse, status: number, type?: string): void {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, title: expect.any(String), detail: expect.any(String) });
  expect(res.body.type).toMatch(/^\/problems\//);
  if (type) expect(res.body.type).toBe(`/problems/${type}`);
  expect(res.text).not.toMatch(/\n\s+at |node_modules|\/work\//);
}

/** A JSON body of exactly `bytes` bytes: a valid source whose metadata is padded to size. */
function bodyOfSize(bytes: number, name: string): string {
  const shell = JSON.stringify({ name, metadata: { pad: '' } });
  return shell.replace('"pad":""', `"pad":"${'p'.repeat(bytes - Buffer.byteLength(shell))}"`);
}

/** A loopback port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('HTTP errors', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(() => api?.close());

  describe('bodies', () => {
    it.each([
      ['an unterminated object', '{"name":'],
      ['a trailing comma', '{"name":"a",}'],
      ['single quotes', "{'name':'a'}"],
      ['trailing garbage', '{"name":"a"} x'],
      ['a bare string (only objects and arrays are JSON bodies)', '"name"'],
      ['null', 'null'],
    ])('malformed JSON (%s) is a 400', async (_what, raw) => {
      for (const [method, path] of [
        ['POST', P],
        ['PUT', `${P}/00000000-0000-4000-8000-000000000000`],
      ] as const) {
        const res = await api.request(method, path, { raw, headers: { 'content-type': 'application/json' } });
        expectProblem(res, 400, 'malformed-body');
      }
    });

    it('a compressed body that does not inflate is a 400, not a 500', async () => {
      for (const encoding of ['gzip', 'deflate', 'br']) {
        const res = await api.request('POST', P, {
          raw: 'this is not compressed',
          headers: { 'content-type': 'application/json', 'content-encoding': encoding },
        });
        expectProblem(res, 400, 'malformed-body');
      }
      const good = await api.request('POST', P, {
        raw: gzipSync(JSON.stringify(validBody())),
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      });
      expect(good.status, good.text).toBe(201);
    });

    it('a body over 1 MB is a 413; exactly 1 MB is read and validated', async () => {
      const atLimit = bodyOfSize(ONE_MB, `limit-${seq++}`);
      expect(Buffer.byteLength(atLimit)).toBe(ONE_MB);
      const ok = await api.request('POST', P, {
        raw: atLimit,
        headers: { 'content-type': 'application/json' },
      });
      expect(ok.status, ok.text.slice(0, 300)).toBe(201);

      const over = bodyOfSize(ONE_MB + 1, `limit-${seq++}`);
      expectProblem(
        await api.request('POST', P, { raw: over, headers: { 'content-type': 'application/json' } }),
        413,
        'payload-too-large',
      );
      expectProblem(
        await api.request('PUT', `${P}/${ok.body.id}`, {
          raw: over,
          headers: { 'content-type': 'application/json' },
        }),
        413,
      );
    });

    it('a body just under 1 MB that is invalid is a 400 naming the field, never a 413', async () => {
      const raw = JSON.stringify({ name: 'n'.repeat(ONE_MB - 100) });
      const res = await api.request('POST', P, { raw, headers: { 'content-type': 'application/json' } });
      expectInvalid(res, '/name');
    });

    it('a body that inflates past 1 MB is a 413 and leaves the connection usable', async () => {
      const raw = gzipSync(bodyOfSize(2 * ONE_MB, 'zip-bomb'));
      expect(raw.length).toBeLessThan(ONE_MB / 10);
      const res = await api.request('POST', P, {
        raw,
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      });
      expectProblem(res, 413, 'payload-too-large');
      expect((await api.get('/healthz')).status).toBe(200);
    });

    it.each([
      ['text/plain', 'name=x'],
      ['application/x-www-form-urlencoded', 'name=x'],
      [
        'multipart/form-data; boundary=b',
        '--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--b--',
      ],
      ['application/xml', '<name>x</name>'],
    ])('a %s body is a 415', async (type, raw) => {
      expectProblem(
        await api.request('POST', P, { raw, headers: { 'content-type': type } }),
        415,
        'unsupported-media-type',
      );
    });

    it('a JSON body without a content type is a 415 (we never guess)', async () => {
      const res = await api.request('POST', P, { raw: Buffer.from(JSON.stringify(validBody())) });
      expectProblem(res, 415);
    });

    it('JSON under a +json media type is parsed like application/json, not silently dropped', async () => {
      const res = await api.request('POST', P, {
        raw: JSON.stringify(validBody()),
        headers: { 'content-type': 'application/merge-patch+json' },
      });
      expect(res.status, res.text).toBe(201);
    });
  });

  describe('routing', () => {
    it('a method the route does not have is a 405 with Allow', async () => {
      const created = (await api.post(P, validBody())).body;
      for (const [method, path, allowed] of [
        ['PATCH', P, ['GET', 'POST']],
        ['DELETE', P, ['GET', 'POST']],
        ['POST', `${P}/${created.id}`, ['DELETE', 'GET', 'PUT']],
        ['PATCH', `${P}/${created.id}`, ['DELETE', 'GET', 'PUT']],
        ['POST', '/healthz', ['GET']],
        // Methods the router has never heard of get the same answer, not a 501.
        ['PROPFIND', P, ['GET', 'POST']],
        ['PURGE', '/readyz', ['GET']],
      ] as const) {
        const res = await api.request(method, path);
        expectProblem(res, 405, 'method-not-allowed');
        const allow = (res.headers.get('allow') ?? '').split(/,\s*/);
        for (const m of allowed) expect(allow, `${method} ${path}`).toContain(m);
        expect(allow).not.toContain(method);
      }
    });

    it('an unknown route is a 404 problem, whatever the method', async () => {
      for (const [method, path] of [
        ['GET', '/nope'],
        ['POST', '/raw-data-source'],
        ['GET', `${P}/00000000-0000-4000-8000-000000000000/nope`],
        ['PROPFIND', '/nope'],
      ] as const)
        expectProblem(await api.request(method, path), 404, 'not-found');
    });

    it('OPTIONS lists the methods of a route', async () => {
      const res = await api.request('OPTIONS', P);
      expect(res.status).toBe(200);
      expect(res.headers.get('allow')).toMatch(/GET/);
    });
  });

  describe('validation', () => {
    it('several invalid fields give one 400 with exactly one entry per field', async () => {
      const res = await api.post(P, {
        name: 'x'.repeat(101),
        source_type: 'ftp',
        refresh_interval: '90',
        is_active: 'yes',
        metadata: [],
        schema_definition: 'not an object',
        surprise: true,
      });
      expect(res.status).toBe(400);
      const pointers = res.body.errors.map((e: { pointer: string }) => e.pointer).sort();
      expect(pointers).toEqual([
        '/is_active',
        '/metadata',
        '/name',
        '/refresh_interval',
        '/schema_definition',
        '/source_type',
        '/surprise',
      ]);
      for (const e of res.body.errors)
        expect(e).toEqual({ pointer: expect.any(String), message: expect.any(String), in: 'body' });
      expect(res.body.errors.find((e: { pointer: string }) => e.pointer === '/source_type').message).toBe(
        'must be one of: database, api, file, stream, webhook',
      );
    });

    it('every read-only field is refused as read-only, in POST and in PUT', async () => {
      const created = (await api.post(P, validBody())).body;
      const readOnly = {
        id: '00000000-0000-4000-8000-000000000000',
        sync_status: 'success',
        last_sync_at: '2026-01-01T00:00:00.000Z',
        error_message: 'none',
        created_at: '2026-01-01T00:00:00.000Z',
        updated_at: '2026-01-01T00:00:00.000Z',
      };
      for (const res of [
        await api.post(P, { ...validBody(), ...readOnly }),
        await api.put(`${P}/${created.id}`, readOnly),
      ]) {
        expect(res.status).toBe(400);
        for (const field of Object.keys(readOnly)) expectInvalid(res, `/${field}`, 'is read-only');
      }
      expect((await api.get(`${P}/${created.id}`)).body).toEqual(created);
    });

    it('has_connection_string is output only, not a field to send', async () => {
      expectInvalid(
        await api.post(P, { ...validBody(), has_connection_string: false }),
        '/has_connection_string',
      );
    });

    it('a schema_definition that is not a compilable JSON Schema is a 400 at the bad place in /schema_definition', async () => {
      for (const [schema, pointer] of [
        [{ type: 'nope' }, '/type'],
        [{ type: 'object', properties: { a: { minimum: 'ten' } } }, '/properties/a/minimum'],
        [{ pattern: '(' }, '/pattern'],
        [{ $ref: '#/definitions/missing' }, '/$ref'],
        [{ $schema: 'https://json-schema.org/draft/2020-12/schema', prefixItems: 'x' }, '/prefixItems'],
        [{ properties: { a: { $ref: 'elsewhere.json' } } }, ''],
      ] as const) {
        const res = await api.post(P, { ...validBody(), schema_definition: schema });
        expectInvalid(res, `/schema_definition${pointer}`, 'is not a valid');
      }
      const updated = (await api.post(P, validBody())).body;
      expectInvalid(
        await api.put(`${P}/${updated.id}`, { schema_definition: { type: 'nope' } }),
        '/schema_definition/type',
      );
      for (const schema of [
        { type: 'object', required: ['id'] },
        {
          $schema: 'https://json-schema.org/draft/2020-12/schema',
          type: 'array',
          prefixItems: [{ type: 'string' }],
        },
      ])
        expect((await api.post(P, { ...validBody(), schema_definition: schema })).status).toBe(201);
    });

    it('PUT null clears every nullable field; null on a required field is a 400', async () => {
      const created = (await api.post(P, validBody())).body;
      expect(created.has_connection_string).toBe(true);
      const res = await api.put(`${P}/${created.id}`, {
        source_type: null,
        connection_string: null,
        schema_definition: null,
        metadata: null,
      });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({
        source_type: null,
        connection_string: null,
        has_connection_string: false,
        schema_definition: null,
        metadata: null,
        name: created.name,
        refresh_interval: created.refresh_interval,
      });
      for (const field of ['name', 'refresh_interval', 'is_active'])
        expectInvalid(await api.put(`${P}/${created.id}`, { [field]: null }), `/${field}`);
    });

    it('bodies are not coerced: "90", "true" and "3600" are not numbers or booleans', async () => {
      expectInvalid(
        await api.post(P, { ...validBody(), refresh_interval: '90' }),
        '/refresh_interval',
        'must be integer',
      );
      expectInvalid(await api.post(P, { ...validBody(), refresh_interval: '3600' }), '/refresh_interval');
      expectInvalid(
        await api.post(P, { ...validBody(), is_active: 'true' }),
        '/is_active',
        'must be boolean',
      );
      expectInvalid(await api.post(P, { ...validBody(), refresh_interval: 90.5 }), '/refresh_interval');
      expectInvalid(await api.post(P, { ...validBody(), refresh_interval: 2147483648 }), '/refresh_interval');
    });

    it('text Postgres cannot store faithfully is a 400: NUL anywhere, unpaired surrogates anywhere', async () => {
      expectInvalid(await api.post(P, { ...validBody(), name: 'a\u0000b' }), '/name', 'U+0000');
      expectInvalid(await api.post(P, { ...validBody(), name: 'a\ud800b' }), '/name', 'surrogates');
      expectInvalid(await api.post(P, { ...validBody(), metadata: { k: 'a\u0000' } }), '/metadata', 'U+0000');
      expectInvalid(
        await api.post(P, { ...validBody(), metadata: { k: ['\udc00'] } }),
        '/metadata',
        'surrogates',
      );
      expectInvalid(
        await api.post(P, { ...validBody(), metadata: { '\ud800': 1 } }),
        '/metadata',
        'surrogates',
      );
      // A well-formed astral character is fine, and counts as one character towards max_length.
      const emoji = await api.post(P, {
        ...validBody(),
        name: '\u{1F600}'.repeat(100),
        metadata: { k: '\u{1F600}' },
      });
      expect(emoji.status, emoji.text).toBe(201);
      expect(emoji.body.name).toBe('\u{1F600}'.repeat(100));
    });

    it('prototype keys are ordinary unknown fields, and pollute nothing', async () => {
      const res = await api.request('POST', P, {
        raw: `{"name":"proto-${seq++}","constructor":{"prototype":{"polluted":true}}}`,
        headers: { 'content-type': 'application/json' },
      });
      expectInvalid(res, '/constructor', 'is not a known field');
      const proto = await api.request('POST', P, {
        raw: '{"name":"proto","__proto__":{"polluted":true}}',
        headers: { 'content-type': 'application/json' },
      });
      expect(proto.status).toBe(400);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  });

  describe('query and path parameters', () => {
    it('active=true and active=false filter; active=yes is a 400 naming the parameter', async () => {
      const on = (await api.post(P, { ...validBody(), is_active: true })).body;
      const off = (await api.post(P, { ...validBody(), is_active: false })).body;
      const active = await api.get(`${P}?active=true&limit=100`);
      const inactive = await api.get(`${P}?active=false&limit=100`);
      expect(active.status).toBe(200);
      expect(active.body.data.every((s: { is_active: boolean }) => s.is_active)).toBe(true);
      expect(inactive.body.data.every((s: { is_active: boolean }) => !s.is_active)).toBe(true);
      expect(active.body.data.map((s: { id: string }) => s.id)).toContain(on.id);
      expect(inactive.body.data.map((s: { id: string }) => s.id)).toContain(off.id);
      const all = await api.get(`${P}?limit=1`);
      expect(active.body.pagination.total + inactive.body.pagination.total).toBe(all.body.pagination.total);
      for (const bad of ['yes', '1', 'TRUE', ''])
        expectInvalid(await api.get(`${P}?active=${bad}`), 'active');
      const res = await api.get(`${P}?active=yes`);
      expect(res.body.errors).toEqual([{ pointer: 'active', message: 'must be boolean', in: 'query' }]);
    });

    it('invalid and repeated query values are a 400 naming each parameter', async () => {
      const res = await api.get(`${P}?limit=0&offset=-1&type=ftp&status=done&nope=1`);
      expect(res.status).toBe(400);
      expect(res.body.errors.map((e: { pointer: string }) => e.pointer).sort()).toEqual([
        'limit',
        'nope',
        'offset',
        'status',
        'type',
      ]);
      expectInvalid(await api.get(`${P}?limit=10&limit=20`), 'limit');
      expectInvalid(await api.get(`${P}?limit=1.5`), 'limit');
      expectInvalid(await api.get(`${P}?offset=2147483648`), 'offset');
      expectInvalid(await api.get(`${P}?type=%00`), 'type');
    });

    it('an uppercase UUID in the path finds the same source, for GET, PUT and DELETE', async () => {
      const created = (await api.post(P, validBody())).body;
      const upper = created.id.toUpperCase();
      expect(upper).not.toBe(created.id);
      expect((await api.get(`${P}/${upper}`)).body).toEqual(created);
      const updated = await api.put(`${P}/${upper}`, { refresh_interval: 120 });
      expect(updated.status).toBe(200);
      expect(updated.body).toMatchObject({ id: created.id, refresh_interval: 120 });
      expect((await api.del(`${P}/${upper}`)).status).toBe(204);
      expect((await api.get(`${P}/${created.id}`)).status).toBe(404);
    });

    it('a malformed id is a 400 naming the parameter; a well-formed unknown one is a 404', async () => {
      for (const id of [
        'nope',
        '123',
        'abc%2Fdef',
        '%00',
        '6f1c2d4e-0000-4000-8000-00000000000g',
        '{6f1c2d4e-0000-4000-8000-000000000000}',
      ])
        for (const method of ['GET', 'PUT', 'DELETE']) {
          const res = await api.request(method, `${P}/${id}`, method === 'PUT' ? { body: {} } : {});
          expectInvalid(res, 'id', 'must be a UUID');
        }
      for (const method of ['GET', 'PUT', 'DELETE'])
        expectProblem(
          await api.request(
            method,
            `${P}/ffffffff-ffff-ffff-ffff-ffffffffffff`,
            method === 'PUT' ? { body: {} } : {},
          ),
          404,
          'not-found',
        );
    });
  });

  describe('health', () => {
    it('/healthz and /readyz answer 200 when Postgres and Redis are up', async () => {
      expect((await api.get('/healthz')).body).toEqual({ status: 'ok' });
      const ready = await api.get('/readyz');
      expect(ready.status).toBe(200);
      expect(ready.body).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'ok' } });
    });
  });
});

describe('/readyz with Redis unreachable', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({
      env: { REDIS_URL: `redis://127.0.0.1:${await closedPort()}/0`, READY_TIMEOUT_MS: '500' },
    });
  });
  afterAll(() => api?.close());

  it('is a 503 problem naming redis, while /healthz stays 200', async () => {
    const res = await api.get('/readyz');
    expectProblem(res, 503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(res.body.detail).toMatch(/redis/);
    expect(res.body.detail).not.toMatch(/postgres/);
    expect(res.body.checks).toMatchObject({ postgres: 'ok' });
    expect(res.body.checks.redis).not.toBe('ok');
    expect((await api.get('/healthz')).status).toBe(200);
  });
});
