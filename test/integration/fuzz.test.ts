import { Agent, request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, TEST_ADMIN_TOKEN, type TestApi } from '../helpers/api-harness';

/**
 * No request, however malformed, gets a 5xx or a stack trace. fast-check generates a fixed number
 * of hostile requests per endpoint from a fixed seed (so a failure reproduces), they are sent
 * over raw HTTP/1.1 (fetch would refuse or repair many of them), and every answer must be 2xx or
 * 4xx, every 4xx a problem+json document without internals.
 */
const SEED = 20261126;
const RUNS_PER_ENDPOINT = 300;
const CONCURRENCY = 6;
const SECRET = 'Fuzz-S3cret-9q7';
const COLLECTION = '/raw-data-sources';

interface FuzzRequest {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

interface FuzzResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

// --- values -------------------------------------------------------------------------------------

const nastyStrings = fc.constantFrom(
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udfffy',
  '\u{1F600}'.repeat(60),
  '\u202eevil',
  'ｆｕｌｌｗｉｄｔｈ',
  "'; drop table raw_data_sources; --",
  '../../../etc/passwd',
  '<script>alert(1)</script>',
  '%00%ZZ%E0%A4%A',
  'x'.repeat(100),
  'x'.repeat(101),
  'true',
  '90',
  'null',
  '__proto__',
  'postgres://someone:not-the-secret@127.0.0.1:5432/db',
);

const text = fc.oneof(
  { weight: 3, arbitrary: nastyStrings },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  // Lone surrogates and NULs mixed into ordinary text.
  {
    weight: 1,
    arbitrary: fc.string({ unit: fc.constantFrom('a', '\ud800', '\udc00', '\u0000', 'é'), maxLength: 12 }),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 20_000 }).map((n) => 'y'.repeat(n)) },
);

const numbers = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 59, 60, 61, 2147483647, 2147483648, -2147483649, 2 ** 53 + 2, 1e308, -1e308, 0.5),
);

/** JSON nested `depth` levels deep, built as text: JSON.stringify itself overflows on such input. */
const deepJson = fc
  .tuple(fc.integer({ min: 20, max: 5_000 }), fc.boolean())
  .map(([depth, arrays]) =>
    arrays ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
  );

const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: text },
  { weight: 2, arbitrary: numbers },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.array(text, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.dictionary(text, text, { maxKeys: 4 }) },
);

const writable = [
  'name',
  'source_type',
  'connection_string',
  'schema_definition',
  'refresh_interval',
  'is_active',
  'metadata',
];
const readOnly = [
  'id',
  'sync_status',
  'last_sync_at',
  'error_message',
  'created_at',
  'updated_at',
  'has_connection_string',
];
const fieldName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...writable) },
  { weight: 2, arbitrary: fc.constantFrom(...readOnly) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'),
  },
  { weight: 1, arbitrary: text },
);

let seq = 0;
const validBody = () => ({
  name: `fuzz-${++seq}`,
  source_type: 'database',
  connection_string: `postgres://fuzz:${SECRET}@127.0.0.1:5432/db`,
  schema_definition: { type: 'object' },
  refresh_interval: 3600,
  is_active: true,
  metadata: { table: 'orders' },
});

const json = (value: unknown) => Buffer.from(JSON.stringify(value) ?? 'null');

/** Bodies: mostly "almost valid", so validation (not just parsing) is what gets exercised. */
const body: fc.Arbitrary<{ kind: string; bytes: Buffer }> = fc.oneof(
  // Valid ones too, so odd headers and encodings are also tried on the success path.
  { weight: 2, arbitrary: fc.constant(null).map(() => ({ kind: 'valid', bytes: json(validBody()) })) },
  {
    weight: 6,
    arbitrary: fc.array(fc.tuple(fieldName, anyValue), { minLength: 1, maxLength: 4 }).map((changes) => ({
      kind: 'wrong-field-values',
      bytes: json({ ...validBody(), ...Object.fromEntries(changes) }),
    })),
  },
  {
    weight: 2,
    arbitrary: fc
      .dictionary(fieldName, anyValue, { maxKeys: 6 })
      .map((d) => ({ kind: 'random-object', bytes: json(d) })),
  },
  {
    weight: 2,
    arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => ({ kind: 'random-json', bytes: json(v) })),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        '{"__proto__":{"polluted":true},"name":"p1"}',
        '{"name":"p2","constructor":{"prototype":{"polluted":true}}}',
        '{"name":"p3","metadata":{"__proto__":{"isAdmin":true}}}',
        '{"name":"p4","schema_definition":{"properties":{"__proto__":{"type":"string"}}}}',
        '{"name":"p5","metadata":{"constructor":{"prototype":{"x":1}}}}',
        '{"name":"p6","refresh_interval":1e400}',
        '{"name":"p7","refresh_interval":-1e400}',
        '{"name":"p8","metadata":{"n":123456789012345678901234567890}}',
        '{"name":"p9","metadata":{"k\\u0000":"v"}}',
        '{"name":"p10","metadata":{"\\ud800":"v"}}',
        '{"name":"p11","name":"p11-twice"}',
        '{"name":"p12","schema_definition":{"$ref":"http://127.0.0.1:1/schema.json"}}',
        '{"name":"p13","schema_definition":{"type":"nope"}}',
        '{"name":"p14","schema_definition":{"$schema":"https://json-schema.org/draft/2020-12/schema","$dynamicRef":"#x"}}',
        '{"name":"p15","schema_definition":{"$id":"dup","$defs":{"a":{"$id":"dup"}}}}',
        '{"name":"p16","schema_definition":{"pattern":"("}}',
        'null',
        'true',
        '42',
        '"just a string"',
        '[]',
        '[{"name":"in-an-array"}]',
      )
      .map((s) => ({ kind: 'prototype-and-edge-json', bytes: Buffer.from(s) })),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.nat()).map(([v, cut]) => {
      const whole = JSON.stringify({ ...validBody(), extra: v });
      return { kind: 'truncated-json', bytes: Buffer.from(whole.slice(0, cut % whole.length)) };
    }),
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
        fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
        fc
          .constantFrom(
            '<xml/>',
            'a=1&b=2',
            "{'single':'quotes'}",
            '{"a":1,}',
            '{a:1}',
            '\ufeff{"name":"bom"}',
            '{"name":"x"}garbage',
          )
          .map((s) => Buffer.from(s)),
      )
      .map((bytes) => ({ kind: 'non-json', bytes })),
  },
  {
    weight: 1,
    arbitrary: deepJson.map((nested) => ({
      kind: 'deep-json',
      bytes: Buffer.from(
        `{"name":"deep","metadata":{"x":${nested}},"schema_definition":{"items":${nested}}}`,
      ),
    })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(0, 1).map((extra) => ({
      kind: 'oversized',
      // Just past 1 MB, in a field value so the JSON is otherwise valid.
      bytes: Buffer.from(`{"name":"big","metadata":{"pad":"${'z'.repeat(1024 * 1024 + extra)}"}}`),
    })),
  },
);

// --- headers ------------------------------------------------------------------------------------

const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constant('application/json') },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/merge-patch+json',
      'application/problem+json',
      'application/json; charset=latin1',
      'application/json; charset=nonsense',
      'text/plain',
      'text/html',
      'application/xml',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=zzz',
      'application/octet-stream',
      '*/*',
      'application/',
      'a/b/c',
      ';;;',
      '',
    ),
  },
  { weight: 2, arbitrary: fc.constant(undefined) },
  {
    weight: 1,
    arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 30 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
  },
);

const extraHeaders = fc.record(
  {
    accept: fc.constantFrom('*/*', 'text/html', 'application/xml', 'application/json;q=0', 'garbage'),
    'x-request-id': fc.oneof(fc.constantFrom('abc', 'x'.repeat(200), '../..', 'a b c'), fc.uuid()),
    'accept-encoding': fc.constantFrom('gzip', 'br', 'identity;q=0', 'nonsense'),
    // Mostly the admin key (what lies behind auth is the point), sometimes a wrong or broken one.
    authorization: fc.oneof(
      { weight: 3, arbitrary: fc.constant(`Bearer ${TEST_ADMIN_TOKEN}`) },
      { weight: 1, arbitrary: fc.constantFrom(`Bearer ${SECRET}`, 'Basic Og==', 'garbage') },
    ),
  },
  { requiredKeys: [] },
);

/** Content-Encoding and what to send with it: a real gzip of the body, or garbage claiming to be one. */
function encode(bytes: Buffer, mode: number): { bytes: Buffer; encoding?: string } {
  switch (mode % 8) {
    case 0:
      return { bytes: gzipSync(bytes), encoding: 'gzip' };
    case 1:
      return { bytes, encoding: 'gzip' };
    case 2:
      return { bytes, encoding: 'deflate' };
    case 3:
      return { bytes, encoding: 'br' };
    case 4:
      return { bytes, encoding: 'bogus' };
    default:
      return { bytes };
  }
}

// --- URLs ---------------------------------------------------------------------------------------

/**
 * Percent-encodes what Node's client refuses to send raw and leaves the rest, garbage included, as
 * is. A lone surrogate becomes the bytes UTF-8 would give it, which are themselves invalid UTF-8.
 */
const urlSafe = (s: string) =>
  s.replace(/[^\x21-\x7e]|[#?]/gu, (c) =>
    /^[\uD800-\uDFFF]$/u.test(c) ? '%ED%A0%80' : encodeURIComponent(c),
  );

const queryKey = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom('type', 'status', 'active', 'limit', 'offset') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '__proto__',
      'constructor',
      'limit[]',
      'active[0]',
      '',
      'LIMIT',
      'name',
      'id',
      '%ZZ',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 10 }).map(encodeURIComponent) },
);
const queryValue = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      '',
      'true',
      'false',
      'yes',
      'TRUE',
      '1',
      '0',
      '-1',
      '20',
      '100',
      '101',
      '2147483647',
      '2147483648',
      '99999999999999999999',
      '1e2',
      '1.5',
      '0x10',
      'NaN',
      'Infinity',
      'database',
      'webhook',
      'pending',
      'failed',
      '%00',
      '%ZZ',
      '%',
      '%E0%A4%A',
      '%F0%9F%98',
      '%2F%2E%2E',
      'a%26b%3Dc',
    ),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }).map((s) => urlSafe(s)) },
);
const queryString = fc
  .tuple(
    fc.array(fc.tuple(queryKey, queryValue, fc.constantFrom('=', '', '==')), { maxLength: 6 }),
    fc.constantFrom('&', '&&', ';', '&='),
  )
  .map(([pairs, sep]) => (pairs.length ? `?${pairs.map(([k, v, eq]) => `${k}${eq}${v}`).join(sep)}` : ''));

let knownIds: string[] = [];
const itemId = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(0, 1, 2, 3).map((i) => knownIds[i % knownIds.length]!) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(0, 1, 2, 3).map((i) => knownIds[i % knownIds.length]!.toUpperCase()),
  },
  { weight: 2, arbitrary: fc.uuid() },
  { weight: 1, arbitrary: fc.uuid().map((u) => u.toUpperCase()) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'not-a-uuid',
      '00000000-0000-0000-0000-000000000000',
      'ffffffff-ffff-ffff-ffff-ffffffffffff',
      '{6f1c2d4e-0000-4000-8000-000000000000}',
      '6f1c2d4e000040008000000000000000',
      '6f1c2d4e-0000-4000-8000-00000000000',
      '6f1c2d4e-0000-4000-8000-0000000000000',
      '6f1c2d4e-0000-4000-8000-00000000000g',
      'abc%2Fdef',
      '..%2F..%2Fetc%2Fpasswd',
      '%2E%2E',
      '%00',
      '%ZZ',
      '%',
      '%E0%A4%A',
      '6f1c2d4e-0000-4000-8000-000000000000%20',
      '6f1c2d4e-0000-4000-8000-000000000000%00',
      "1'%20OR%20'1'='1",
      '-1',
      '0',
      'x'.repeat(5_000),
    ),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).map((s) => urlSafe(s)) },
);

// --- requests -----------------------------------------------------------------------------------

interface Endpoint {
  name: string;
  requests: fc.Arbitrary<FuzzRequest>;
}

function withBody(method: string, kind: string, path: fc.Arbitrary<string>): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(path, body, contentType, extraHeaders, fc.nat(), fc.boolean())
    .map(([p, b, type, headers, encodingMode, chunked]) => {
      const { bytes, encoding } = encode(b.bytes, encodingMode);
      const h: Record<string, string> = { ...headers };
      if (type !== undefined) h['content-type'] = type;
      if (encoding) h['content-encoding'] = encoding;
      if (chunked && bytes.length < 100_000) h['transfer-encoding'] = 'chunked';
      else h['content-length'] = String(bytes.length);
      return {
        kind: `${kind}:${b.kind}${encoding ? `+${encoding}` : ''}`,
        method,
        path: p,
        headers: h,
        body: bytes,
      };
    });
}

function withoutBody(method: string, kind: string, path: fc.Arbitrary<string>): fc.Arbitrary<FuzzRequest> {
  return fc
    .tuple(path, extraHeaders, fc.option(body, { freq: 4 }), contentType)
    .map(([p, headers, maybeBody, type]) => {
      const h: Record<string, string> = { ...headers };
      // Now and then a body where none belongs, with a correct length so the framing stays valid.
      if (!maybeBody) return { kind: `${kind}:no-body`, method, path: p, headers: h };
      if (type !== undefined) h['content-type'] = type;
      h['content-length'] = String(maybeBody.bytes.length);
      return {
        kind: `${kind}:unexpected-${maybeBody.kind}`,
        method,
        path: p,
        headers: h,
        body: maybeBody.bytes,
      };
    });
}

const collectionPath = queryString.map((q) => `${COLLECTION}${q}`);
const itemPath = fc
  .tuple(itemId, fc.constantFrom('', '', '', '/', '//', '/x'))
  .map(([id, tail]) => `${COLLECTION}/${id}${tail}`);
const fixedPath = (path: string) => queryString.map((q) => `${path}${q}`);

const oddMethod = fc.constantFrom(
  'PATCH',
  'OPTIONS',
  'HEAD',
  'PROPFIND',
  'PURGE',
  'LOCK',
  'SEARCH',
  'MKCOL',
  'POST',
  'PUT',
  'DELETE',
);
const anyPath = fc.oneof(
  collectionPath,
  itemPath,
  fixedPath('/healthz'),
  fixedPath('/readyz'),
  fixedPath('/openapi.json'),
  fc.constantFrom(
    '/',
    '/nope',
    '/raw-data-sources-x',
    '/RAW-DATA-SOURCES',
    '/%2e%2e/%2e%2e/etc/passwd',
    '//healthz',
    '/healthz/',
  ),
);

const endpoints: Endpoint[] = [
  { name: 'GET /raw-data-sources', requests: withoutBody('GET', 'list', collectionPath) },
  { name: 'POST /raw-data-sources', requests: withBody('POST', 'create', collectionPath) },
  { name: 'GET /raw-data-sources/{id}', requests: withoutBody('GET', 'get', itemPath) },
  { name: 'PUT /raw-data-sources/{id}', requests: withBody('PUT', 'update', itemPath) },
  { name: 'DELETE /raw-data-sources/{id}', requests: withoutBody('DELETE', 'delete', itemPath) },
  { name: 'GET /healthz', requests: withoutBody('GET', 'healthz', fixedPath('/healthz')) },
  { name: 'GET /readyz', requests: withoutBody('GET', 'readyz', fixedPath('/readyz')) },
  { name: 'GET /openapi.json', requests: withoutBody('GET', 'openapi', fixedPath('/openapi.json')) },
  {
    name: 'other methods on every path',
    requests: fc
      .tuple(oddMethod, anyPath, fc.boolean())
      .chain(([method, path, sendBody]) =>
        sendBody && method !== 'HEAD'
          ? withBody(method, `method-${method}`, fc.constant(path))
          : withoutBody(method, `method-${method}`, fc.constant(path)),
      ),
  },
];

// --- transport and checks -----------------------------------------------------------------------

// Keep-alive on purpose: an error answered before the body was fully read must not leave the
// connection out of step for the next request on it.
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function send(baseUrl: string, r: FuzzRequest): Promise<FuzzResponse> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        agent,
        host: hostname,
        port,
        method: r.method,
        path: r.path,
        // With the admin key: the fuzz is about what lies behind authentication.
        headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, ...r.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.end(r.body);
  });
}

const STACK_FRAME = /\n\s+at | {4}at /;
const FILE_PATH = /\/work\/|node_modules|\.[cm]?[jt]s:\d+|file:\/\/\/|\/src\//;

/** What is wrong with this answer, or undefined. */
function problemWith(r: FuzzRequest, res: FuzzResponse): string | undefined {
  const ok = (res.status >= 200 && res.status < 300) || (res.status >= 400 && res.status < 500);
  if (!ok) return `status ${res.status}`;
  if (STACK_FRAME.test(res.text)) return 'a stack trace in the body';
  if (FILE_PATH.test(res.text) && !r.path.startsWith('/openapi.json')) return 'a file path in the body';
  if (res.text.includes(SECRET)) return 'the secret in the body';
  if (res.status < 400) return undefined;
  const type = String(res.headers['content-type'] ?? '');
  if (!type.startsWith('application/problem+json')) return `4xx with content-type "${type}"`;
  if (r.method === 'HEAD') return undefined;
  let problem: Record<string, unknown>;
  try {
    problem = JSON.parse(res.text) as Record<string, unknown>;
  } catch {
    return '4xx body is not JSON';
  }
  for (const key of ['type', 'title', 'detail'])
    if (typeof problem[key] !== 'string') return `problem without a string "${key}"`;
  if (problem.status !== res.status) return `problem status ${String(problem.status)} ≠ ${res.status}`;
  if (res.status === 405 && !res.headers.allow) return '405 without Allow';
  return undefined;
}

/** Runs `task` over `items` with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: limit }, async () => {
    while (next < items.length) await task(items[next++]!);
  });
  await Promise.all(workers);
}

// --- the test -----------------------------------------------------------------------------------

describe('fuzz: malformed requests never get a 5xx or a stack trace', () => {
  let api: TestApi;
  const kinds = new Map<string, number>();
  const statuses = new Map<number, number>();
  let total = 0;

  beforeAll(async () => {
    api = await startTestApi();
    const created = await Promise.all([1, 2, 3, 4].map(() => api.post(COLLECTION, validBody())));
    knownIds = created.map((res) => {
      expect(res.status, res.text).toBe(201);
      return res.body.id as string;
    });
    console.log(
      `fuzz: seed ${SEED}, ${RUNS_PER_ENDPOINT} requests per endpoint, ${endpoints.length} endpoints`,
    );
  });

  afterAll(async () => {
    agent.destroy();
    await api?.close();
    const byStatus = [...statuses.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`);
    console.log(`fuzz: ${total} requests sent (seed ${SEED}); statuses ${byStatus.join(' ')}`);
    const families = new Map<string, number>();
    for (const [kind, n] of kinds) {
      const family = kind.split(':').slice(1).join(':').replace(/\+.*$/, '') || kind;
      families.set(family, (families.get(family) ?? 0) + n);
    }
    console.log(`fuzz: request kinds ${[...families.entries()].map(([k, n]) => `${k}×${n}`).join(', ')}`);
  });

  it.each(endpoints.map((e, i) => [e.name, i] as const))(
    `%s: ${RUNS_PER_ENDPOINT} generated requests, every answer 2xx/4xx and every 4xx problem+json`,
    async (_name, index) => {
      const endpoint = endpoints[index]!;
      const requests = fc.sample(endpoint.requests, { seed: SEED + index, numRuns: RUNS_PER_ENDPOINT });
      const failures: string[] = [];
      await pool(requests, CONCURRENCY, async (r) => {
        total++;
        kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
        let res: FuzzResponse;
        try {
          res = await send(api.baseUrl, r);
        } catch (err) {
          failures.push(`${r.method} ${r.path.slice(0, 120)} [${r.kind}]: ${(err as Error).message}`);
          return;
        }
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const problem = problemWith(r, res);
        if (problem)
          failures.push(
            `${r.method} ${r.path.slice(0, 120)} [${r.kind}] ${JSON.stringify(r.headers)} body=${JSON.stringify(
              r.body?.subarray(0, 200).toString() ?? null,
            )} → ${problem}: ${res.text.slice(0, 300)}`,
          );
      });
      expect(requests).toHaveLength(RUNS_PER_ENDPOINT);
      expect(failures.slice(0, 10), `${failures.length} bad answers`).toEqual([]);
    },
    120_000,
  );

  it('the API still works afterwards, logged no unhandled error and no secret', async () => {
    const res = await api.post(COLLECTION, validBody());
    expect(res.status, res.text).toBe(201);
    expect((await api.get(`${COLLECTION}/${res.body.id}`)).status).toBe(200);
    const unhandled = api.logs.filter((line) => line.includes('unhandled error'));
    expect(unhandled.slice(0, 3)).toEqual([]);
    expect(api.logs.filter((line) => line.includes(SECRET)).slice(0, 3)).toEqual([]);
    // Prototype pollution through a body or query would show up on every object.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });
});
