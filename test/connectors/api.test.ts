import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SyncBatch } from '../../src/connectors/connector';
import { ApiConnector } from '../../src/connectors/api/api.connector';
import { PermanentSyncError } from '../../src/connectors/connector';
import { ConnectorError } from '../../src/connectors/kit/classify-error';
import { compareWatermarks } from '../../src/connectors/api/incremental-watermark';
import { readDotPath } from '../../src/connectors/api/dot-path';
import { parseRetryAfter, retryDelay, DEFAULT_RETRY } from '../../src/connectors/kit/http/retry-policy';
import { OutboundRefusedError } from '../../src/connectors/outbound';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import {
  connectorContext,
  drain,
  freePort,
  recordsOf,
  sendJson,
  source,
  startBlackHole,
  startHttpServer,
  type Handler,
  type TestServer,
} from './support/http-source';
import { createPgScratch, type PgScratch } from './support/database-peers';

const PASSWORD = 'Sup3r-Secret-Pw';
const TOKEN = 'tok_live_5ecret';
const items = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ id: from + i }));
const fast = new ApiConnector({ http: { retry: { baseDelayMs: 10 } } });

let servers: TestServer[] = [];
async function serve(handler: Handler): Promise<TestServer> {
  const server = await startHttpServer(handler);
  servers.push(server);
  return server;
}
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function syncError(promise: Promise<unknown>): Promise<PermanentSyncError | ConnectorError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the sync should have failed').toBeInstanceOf(Error);
  return err as PermanentSyncError | ConnectorError;
}

describe('api connector: helpers', () => {
  it('reads Retry-After as seconds or an HTTP date, and stops retrying past the budget', () => {
    const now = Date.parse('2024-05-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('Wed, 01 May 2024 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Tue, 30 Apr 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(retryDelay(0, '2', 0, DEFAULT_RETRY)).toBe(2000);
    expect(retryDelay(0, '2', DEFAULT_RETRY.maxWaitMs - 1000, DEFAULT_RETRY)).toBeUndefined();
    expect(retryDelay(DEFAULT_RETRY.retries, undefined, 0, DEFAULT_RETRY)).toBeUndefined();
  });

  it('orders watermarks by number, by instant, or as text; dot paths never reach the prototype', () => {
    expect(compareWatermarks(9, 10)).toBeLessThan(0);
    expect(compareWatermarks('9', '10')).toBeLessThan(0);
    expect(compareWatermarks('2024-01-01T10:00:00+02:00', '2024-01-01T09:00:00Z')).toBeLessThan(0);
    expect(compareWatermarks('b', 'a')).toBeGreaterThan(0);
    expect(readDotPath({ a: { b: [1, { c: 2 }] } }, 'a.b.1.c')).toBe(2);
    expect(readDotPath({}, 'constructor')).toBeUndefined();
    expect(readDotPath({ a: 1 }, 'a.toString')).toBeUndefined();
  });
});

describe('api connector: pagination', () => {
  it('follows absolute next_url links at records_path until the link is null', async () => {
    const server = await serve((_req, res, url) => {
      const page = Number(url.searchParams.get('p') ?? 1);
      const next = page < 3 ? `http://127.0.0.1:${server.port}/items?p=${page + 1}` : null;
      sendJson(res, { data: items(page * 10, page * 10 + 1), next });
    });
    const src = source('api', `${server.url}/items`, {
      records_path: 'data',
      pagination: { type: 'next_url', path: 'next' },
    });
    const batches = await drain(fast, src, undefined, connectorContext());
    expect(recordsOf(batches)).toEqual([...items(10, 11), ...items(20, 21), ...items(30, 31)]);
    expect(batches.every((b) => b.state === undefined)).toBe(true);
    expect(server.requests.map((r) => r.path)).toEqual(['/items', '/items?p=2', '/items?p=3']);
  });

  it('resolves relative next links against the page that carried them and stops at a missing one', async () => {
    const server = await serve((_req, res, url) => {
      if (url.pathname === '/v1/list')
        return sendJson(res, { items: items(1, 2), links: { next: 'list/second' } });
      if (url.pathname === '/v1/list/second')
        return sendJson(res, { items: items(3, 3), links: { next: '/v1/third?x=1' } });
      if (url.pathname === '/v1/third') return sendJson(res, { items: items(4, 4), links: {} });
      sendJson(res, { error: 'unexpected' }, 404);
    });
    const src = source('api', `${server.url}/v1/list`, {
      records_path: 'items',
      pagination: { type: 'next_url', path: 'links.next' },
    });
    expect(recordsOf(await drain(fast, src, undefined, connectorContext()))).toEqual(items(1, 4));
    expect(server.requests.map((r) => r.path)).toEqual(['/v1/list', '/v1/list/second', '/v1/third?x=1']);
  });

  it('pages by cursor until the cursor is null', async () => {
    const server = await serve((_req, res, url) => {
      const cursor = url.searchParams.get('cursor');
      if (!cursor) return sendJson(res, { results: items(1, 2), meta: { next_cursor: 'c2' } });
      if (cursor === 'c2') return sendJson(res, { results: items(3, 4), meta: { next_cursor: 'c3' } });
      sendJson(res, { results: items(5, 5), meta: { next_cursor: null } });
    });
    const src = source('api', `${server.url}/r?kind=a`, {
      records_path: 'results',
      pagination: { type: 'cursor', param: 'cursor', path: 'meta.next_cursor' },
    });
    expect(recordsOf(await drain(fast, src, undefined, connectorContext()))).toEqual(items(1, 5));
    expect(server.requests.map((r) => r.path)).toEqual([
      '/r?kind=a',
      '/r?kind=a&cursor=c2',
      '/r?kind=a&cursor=c3',
    ]);
  });

  it('pages by number until an empty page (or a short one when the size is known)', async () => {
    const all = items(1, 7);
    const server = await serve((_req, res, url) => {
      const page = Number(url.searchParams.get('page'));
      const size = Number(url.searchParams.get('per_page') ?? 3);
      sendJson(res, all.slice((page - 1) * size, page * size));
    });
    const plain = source('api', `${server.url}/all`, {
      pagination: { type: 'page', param: 'page', start: 1 },
    });
    expect(recordsOf(await drain(fast, plain, undefined, connectorContext()))).toEqual(all);
    expect(server.requests.map((r) => r.path)).toEqual([
      '/all?page=1',
      '/all?page=2',
      '/all?page=3',
      '/all?page=4',
    ]);
    server.requests.length = 0;
    const sized = source('api', `${server.url}/all`, {
      pagination: { type: 'page', param: 'page', start: 1, size_param: 'per_page', size: 3 },
    });
    expect(recordsOf(await drain(fast, sized, undefined, connectorContext()))).toEqual(all);
    expect(server.requests).toHaveLength(3);
  });

  it('each batch carries its request as provenance: page number and URL, credentials and secret parameters masked', async () => {
    const all = items(1, 5);
    const server = await serve((_req, res, url) => {
      const page = Number(url.searchParams.get('page'));
      sendJson(res, all.slice((page - 1) * 2, page * 2));
    });
    const src = source('api', `http://:${TOKEN}@127.0.0.1:${server.port}/all?api_key=${TOKEN}&kind=a`, {
      pagination: { type: 'page', param: 'page', start: 1 },
    });
    const batches = await drain(fast, src, undefined, connectorContext());
    const at = (page: number) => `${server.url}/all?api_key=****&kind=a&page=${page}`;
    expect(batches.filter((b) => b.records.length).map((b) => b.provenance)).toEqual([
      { url: at(1), page: 1 },
      { url: at(2), page: 2 },
      { url: at(3), page: 3 },
    ]);
    expect(JSON.stringify(batches.map((b) => b.provenance))).not.toContain(TOKEN);
  });

  it('fails a listing longer than max_pages, and a next link or cursor that loops, naming the bound', async () => {
    const server = await serve((_req, res, url) => {
      const page = Number(url.searchParams.get('p') ?? 1);
      sendJson(res, {
        data: items(page, page),
        next:
          url.pathname === '/loop'
            ? '/loop'
            : url.pathname === '/cycle'
              ? `/cycle?p=${(page % 3) + 1}`
              : `/endless?p=${page + 1}`,
      });
    });
    const capped = source('api', `${server.url}/endless`, {
      records_path: 'data',
      max_pages: 4,
      pagination: { type: 'next_url', path: 'next' },
    });
    const cap = await syncError(drain(fast, capped, undefined, connectorContext()));
    expect(cap).toBeInstanceOf(PermanentSyncError);
    expect(cap).toMatchObject({ code: 'too_large' });
    expect(cap.message).toMatch(/more than max_pages \(4\) pages/);
    expect(server.requests).toHaveLength(4);
    for (const [path, where] of [
      ['/loop', 'itself'],
      ['/cycle?p=1', 'page 1'],
    ] as const) {
      const loop = source('api', `${server.url}${path}`, {
        records_path: 'data',
        pagination: { type: 'next_url', path: 'next' },
      });
      const err = await syncError(drain(fast, loop, undefined, connectorContext()));
      expect(err).toBeInstanceOf(PermanentSyncError);
      expect(err).toMatchObject({ code: 'protocol' });
      expect(err.message).toContain(`pagination loop`);
      expect(err.message).toContain(where);
    }
  });

  it('bounds one whole request: a server sending a byte at a time fails with timeout', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const body = JSON.stringify(items(1, 50));
      let i = 0;
      const timer = setInterval(() => {
        if (i >= body.length || res.destroyed) return clearInterval(timer);
        res.write(body[i++]!);
      }, 50);
      res.on('close', () => clearInterval(timer));
    });
    const dribble = new ApiConnector({ http: { requestMaxMs: 1000, retry: { retries: 0 } } });
    const started = Date.now();
    const err = await syncError(
      drain(dribble, source('api', `${server.url}/slow`), undefined, connectorContext()),
    );
    expect(Date.now() - started).toBeLessThan(5000);
    expect(err).toMatchObject({ code: 'timeout' });
    expect(err.message).toMatch(/did not complete within 1000 ms \(HTTP_REQUEST_MAX_MS\)/);
  });

  it('splits a large page into bounded batches', async () => {
    const server = await serve((_req, res) => sendJson(res, items(1, 2500)));
    const batches = await drain(fast, source('api', `${server.url}/big`), undefined, connectorContext());
    expect(batches.map((b) => b.records.length)).toEqual([1000, 1000, 500]);
  });

  it('decodes a gzip-encoded response', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(JSON.stringify({ data: items(1, 3) })));
    });
    const src = source('api', `${server.url}/gz`, { records_path: 'data' });
    expect(recordsOf(await drain(fast, src, undefined, connectorContext()))).toEqual(items(1, 3));
  });

  it('fails clearly when records_path is not there, and caps the size of a page', async () => {
    const server = await serve((_req, res) => sendJson(res, { rows: items(1, 500) }));
    const wrongPath = source('api', `${server.url}/x`, { records_path: 'data' });
    const err = await syncError(drain(fast, wrongPath, undefined, connectorContext()));
    expect(err).toBeInstanceOf(PermanentSyncError);
    expect(err).toMatchObject({ code: 'invalid_config' });
    const steps = await fast.test(wrongPath, connectorContext());
    expect(steps.find((s) => s.name === 'parse')).toMatchObject({ status: 'failed', code: 'invalid_config' });
    const small = new ApiConnector({ http: { maxBodyBytes: 1000 } });
    const tooBig = await syncError(
      drain(small, source('api', `${server.url}/x`, { records_path: 'rows' }), undefined, connectorContext()),
    );
    // Permanent: the same page is as large on every retry.
    expect(tooBig).toBeInstanceOf(PermanentSyncError);
    expect(tooBig).toMatchObject({ code: 'too_large' });
    expect(tooBig.message).toContain('larger than 1000 bytes');
  });
});

describe('api connector: credentials', () => {
  const checkAuth =
    (expected: Record<string, string>): Handler =>
    (req, res) => {
      const ok = Object.entries(expected).every(([k, v]) => req.headers[k] === v);
      if (!ok) return sendJson(res, { error: 'unauthorized' }, 401);
      sendJson(res, [{ id: 1 }]);
    };

  it('sends user:pass as basic, :token as bearer, and a token in a named header', async () => {
    const basic = await serve(
      checkAuth({ authorization: `Basic ${Buffer.from(`loader:${PASSWORD}`).toString('base64')}` }),
    );
    const url = (s: TestServer, userinfo: string) => `http://${userinfo}@127.0.0.1:${s.port}/items`;
    expect(
      recordsOf(
        await drain(fast, source('api', url(basic, `loader:${PASSWORD}`)), undefined, connectorContext()),
      ),
    ).toHaveLength(1);
    const explicit = source('api', url(basic, `loader:${PASSWORD}`), { auth: { type: 'basic' } });
    expect(recordsOf(await drain(fast, explicit, undefined, connectorContext()))).toHaveLength(1);

    const bearer = await serve(checkAuth({ authorization: `Bearer ${TOKEN}` }));
    expect(
      recordsOf(await drain(fast, source('api', url(bearer, `:${TOKEN}`)), undefined, connectorContext())),
    ).toHaveLength(1);
    const asBearer = source('api', url(bearer, `:${TOKEN}`), { auth: { type: 'bearer' } });
    expect(recordsOf(await drain(fast, asBearer, undefined, connectorContext()))).toHaveLength(1);

    const header = await serve(checkAuth({ 'x-api-key': TOKEN }));
    const keyed = source('api', url(header, `:${TOKEN}`), { auth: { type: 'header', name: 'X-Api-Key' } });
    expect(recordsOf(await drain(fast, keyed, undefined, connectorContext()))).toHaveLength(1);
    expect(header.requests[0]?.headers.authorization).toBeUndefined();
    // The user info never reaches the wire as part of the URL.
    expect(header.requests[0]?.path).toBe('/items');
  });

  it('a wrong password is a failed request step with code auth, a permanent sync error, and no secret anywhere', async () => {
    const server = await serve(
      checkAuth({ authorization: `Basic ${Buffer.from('loader:right').toString('base64')}` }),
    );
    const src = source('api', `http://loader:${PASSWORD}@127.0.0.1:${server.port}/items`);
    const steps = await fast.test(src, connectorContext());
    expect(steps.map((s) => [s.name, s.status])).toEqual([
      ['configuration', 'passed'],
      ['resolve', 'passed'],
      ['connect', 'passed'],
      ['request', 'failed'],
      ['parse', 'skipped'],
      ['read_sample', 'skipped'],
    ]);
    expect(steps[3]).toMatchObject({ code: 'auth' });
    expect(steps[3]?.message).toContain('401');
    const err = await syncError(drain(fast, src, undefined, connectorContext()));
    expect(err).toBeInstanceOf(PermanentSyncError);
    expect(err).toMatchObject({ code: 'auth' });
    expect(server.requests).toHaveLength(2); // no retry of a 401
    expect(JSON.stringify(steps) + err.message).not.toContain(PASSWORD);
  });

  it('403 is permission, 404 not_found', async () => {
    const server = await serve((_req, res, url) => sendJson(res, {}, url.pathname === '/denied' ? 403 : 404));
    const denied = await fast.test(
      source('api', `http://:${TOKEN}@127.0.0.1:${server.port}/denied`),
      connectorContext(),
    );
    expect(denied.find((s) => s.status === 'failed')).toMatchObject({ name: 'request', code: 'permission' });
    const missing = await syncError(
      drain(fast, source('api', `${server.url}/nope`), undefined, connectorContext()),
    );
    expect(missing).toMatchObject({ code: 'not_found' });
    expect(missing).toBeInstanceOf(PermanentSyncError);
    expect(JSON.stringify(denied)).not.toContain(TOKEN);
  });

  it('credentials go only to the source origin: a redirect elsewhere does not carry them', async () => {
    const other = await serve((_req, res) => sendJson(res, [{ id: 'elsewhere' }]));
    const server = await serve((_req, res) => {
      res.writeHead(302, { location: `${other.url}/landing` });
      res.end();
    });
    const src = source('api', `http://:${TOKEN}@127.0.0.1:${server.port}/start`);
    expect(recordsOf(await drain(fast, src, undefined, connectorContext()))).toEqual([{ id: 'elsewhere' }]);
    expect(server.requests[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(other.requests[0]?.headers.authorization).toBeUndefined();
  });
});

describe('api connector: retries, redirects, timeouts', () => {
  it('honours Retry-After on 429 and then reads the page', async () => {
    let calls = 0;
    const server = await serve((_req, res) => {
      if (++calls === 1) return sendJson(res, { error: 'slow down' }, 429, { 'retry-after': '1' });
      sendJson(res, items(1, 2));
    });
    const started = Date.now();
    expect(
      recordsOf(await drain(fast, source('api', `${server.url}/rl`), undefined, connectorContext())),
    ).toEqual(items(1, 2));
    expect(calls).toBe(2);
    // Waited as asked (a lower bound: timers never fire early by more than a tick).
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('retries 5xx with backoff and succeeds; gives up (transient) when they keep coming', async () => {
    let calls = 0;
    const flaky = await serve((_req, res) =>
      ++calls <= 2 ? sendJson(res, {}, 503) : sendJson(res, items(1, 1)),
    );
    expect(
      recordsOf(await drain(fast, source('api', `${flaky.url}/f`), undefined, connectorContext())),
    ).toEqual(items(1, 1));
    expect(calls).toBe(3);
    const down = await serve((_req, res) => sendJson(res, {}, 500));
    const err = await syncError(drain(fast, source('api', `${down.url}/d`), undefined, connectorContext()));
    expect(err).toBeInstanceOf(ConnectorError);
    expect(err.message).toContain('HTTP 500');
    expect(down.requests).toHaveLength(4); // first try + 3 retries
  });

  it('does not wait beyond its budget: a Retry-After of an hour fails at once', async () => {
    const server = await serve((_req, res) => sendJson(res, {}, 429, { 'retry-after': '3600' }));
    const err = await syncError(drain(fast, source('api', `${server.url}/x`), undefined, connectorContext()));
    expect(err).toBeInstanceOf(ConnectorError);
    expect(err.message).toContain('429');
    expect(server.requests).toHaveLength(1);
  });

  it('a backoff wait ends when the sync is aborted', async () => {
    const server = await serve((_req, res) => sendJson(res, {}, 503, { 'retry-after': '20' }));
    const abort = new AbortController();
    const slow = new ApiConnector({ http: { retry: { maxDelayMs: 60_000 } } });
    const pending = syncError(
      drain(slow, source('api', `${server.url}/x`), undefined, connectorContext({ signal: abort.signal })),
    );
    // Bounded: a request that never comes fails here, not at the test timeout.
    for (let i = 0; server.requests.length === 0; i += 1) {
      if (i >= 1000) throw new Error('the connector sent no request within 10 s');
      await new Promise((r) => setTimeout(r, 10));
    }
    abort.abort(new Error('shutting down'));
    const err = await pending;
    expect(err.message).toContain('shutting down');
  });

  it('follows a redirect to another local path, but at most 5 hops', async () => {
    const server = await serve((_req, res, url) => {
      if (url.pathname === '/old') {
        res.writeHead(301, { location: '/new' });
        return res.end();
      }
      if (url.pathname.startsWith('/loop')) {
        res.writeHead(307, { location: `/loop${Number(url.pathname.slice(5) || 0) + 1}` });
        return res.end();
      }
      sendJson(res, items(1, 1));
    });
    expect(
      recordsOf(await drain(fast, source('api', `${server.url}/old`), undefined, connectorContext())),
    ).toEqual(items(1, 1));
    const err = await syncError(
      drain(fast, source('api', `${server.url}/loop`), undefined, connectorContext()),
    );
    expect(err.message).toContain('more than 5 redirects');
    expect(server.requests.filter((r) => r.path.startsWith('/loop'))).toHaveLength(6);
  });

  it('a redirect to an address the outbound policy refuses fails, without connecting there', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(302, { location: 'http://internal.sluice.test/secret' });
      res.end();
    });
    const ctx = connectorContext({
      // A fake resolver: *.sluice.test names never reach DNS.
      resolver: async (host) => ({
        address: host === 'internal.sluice.test' ? '127.0.0.9' : '127.0.0.1',
        family: 4,
      }),
      policy: {
        check: (address) => {
          if (address === '127.0.0.9') throw new OutboundRefusedError(address);
        },
      },
    });
    const err = await syncError(drain(fast, source('api', `${server.url}/go`), undefined, ctx));
    expect(err).toBeInstanceOf(PermanentSyncError);
    expect(err).toMatchObject({ code: 'forbidden_address' });
    const steps = await fast.test(source('api', `${server.url}/go`), ctx);
    expect(steps.find((s) => s.status === 'failed')).toMatchObject({
      name: 'request',
      code: 'forbidden_address',
    });
  });

  it('connects to the address outbound resolved, not to the name', async () => {
    const server = await serve((_req, res) => sendJson(res, [{ id: 1 }]));
    const looked: string[] = [];
    const ctx = connectorContext({
      resolver: async (host) => {
        looked.push(host);
        return { address: '127.0.0.1', family: 4 };
      },
    });
    const src = source('api', `http://api.sluice.test:${server.port}/items`);
    expect(recordsOf(await drain(fast, src, undefined, ctx))).toEqual([{ id: 1 }]);
    expect(server.requests[0]?.headers.host).toBe(`api.sluice.test:${server.port}`);
    expect(looked).toEqual(['api.sluice.test']);
    const dnsFails = connectorContext({
      resolver: async () => {
        throw Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.sluice.test'), { code: 'ENOTFOUND' });
      },
    });
    const steps = await fast.test(src, dnsFails);
    expect(steps.find((s) => s.status === 'failed')).toMatchObject({ name: 'resolve', code: 'dns' });
  });

  it('a black-holed host fails the request step with code timeout, within the timeout', async () => {
    const hole = await startBlackHole();
    try {
      const src = source('api', `http://127.0.0.1:${hole.port}/items`);
      const started = Date.now();
      const steps = await fast.test(src, connectorContext({ timeoutMs: 500 }));
      expect(steps.find((s) => s.status === 'failed')).toMatchObject({ name: 'request', code: 'timeout' });
      // Bounded by the step timeout (generous margin for a loaded machine; unbounded would hang).
      expect(Date.now() - started).toBeLessThan(5000);
      const err = await syncError(drain(fast, src, undefined, connectorContext({ timeoutMs: 500 })));
      expect(err).toMatchObject({ code: 'timeout' });
      expect(err).toBeInstanceOf(ConnectorError);
    } finally {
      await hole.close();
    }
  });

  it('a port with nothing listening fails the connect step with code refused', async () => {
    const port = await freePort();
    const steps = await fast.test(
      source('api', `http://127.0.0.1:${port}/items`),
      connectorContext({ timeoutMs: 1000 }),
    );
    expect(steps.map((s) => s.status)).toEqual([
      'passed',
      'passed',
      'failed',
      'skipped',
      'skipped',
      'skipped',
    ]);
    expect(steps[2]).toMatchObject({ name: 'connect', code: 'refused' });
  });
});

describe('api connector: TLS', () => {
  let dir: string | undefined;
  let tls: { port: number; sni: string[]; close(): Promise<void> } | undefined;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-tls-'));
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=secure.sluice.test',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      );
    } catch {
      return; // no openssl: the test below is skipped
    }
    const sni: string[] = [];
    const context = createSecureContext({
      key: readFileSync(join(dir, 'key.pem')),
      cert: readFileSync(join(dir, 'cert.pem')),
    });
    const server = createHttpsServer(
      {
        // SNI arrives in the ClientHello, before the client rejects the certificate.
        SNICallback: (servername, cb) => {
          sni.push(servername);
          cb(null, context);
        },
      },
      (_req, res) => res.end('[]'),
    );
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    tls = {
      port: (server.address() as AddressInfo).port,
      sni,
      close: async () => {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      },
    };
  });
  afterAll(async () => {
    await tls?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('verifies the certificate against the host name (a self-signed one fails with code tls)', async (t) => {
    if (!tls) return t.skip();
    const ctx = connectorContext({ resolver: async () => ({ address: '127.0.0.1', family: 4 }) });
    const steps = await fast.test(source('api', `https://secure.sluice.test:${tls.port}/items`), ctx);
    expect(steps.find((s) => s.status === 'failed')).toMatchObject({ name: 'connect', code: 'tls' });
    expect(tls.sni).toContain('secure.sluice.test');
  });
});

describe('api connector: incremental', () => {
  it('sends the watermark, keeps only newer records, and a second sync lands only what is new', async () => {
    const rows = [
      { id: 1, updated_at: '2024-01-01T00:00:00Z' },
      { id: 3, updated_at: '2024-01-03T00:00:00Z' },
      { id: 2, updated_at: '2024-01-02T00:00:00Z' },
    ];
    // Honours ?since= (strictly newer), unsorted, two per page.
    const server = await serve((_req, res, url) => {
      const since = url.searchParams.get('since');
      const page = Number(url.searchParams.get('page'));
      const fresh = rows.filter((r) => !since || r.updated_at > since);
      sendJson(res, { data: fresh.slice((page - 1) * 2, page * 2) });
    });
    const src = source('api', `${server.url}/changes`, {
      records_path: 'data',
      pagination: { type: 'page', param: 'page', start: 1 },
      incremental: { param: 'since', field: 'updated_at' },
    });
    const first = await drain(fast, src, undefined, connectorContext());
    expect(recordsOf(first).map((r) => (r as { id: number }).id)).toEqual([1, 3, 2]);
    // State only at the end, with no records: a failed attempt leaves the old state for the retry.
    expect(first.slice(0, -1).every((b) => b.state === undefined)).toBe(true);
    const state = first.at(-1)?.state;
    expect(first.at(-1)?.records).toEqual([]);
    expect(state).toMatchObject({
      field: 'updated_at',
      watermark: '2024-01-03T00:00:00Z',
      from: '2024-01-02T23:55:00Z',
    });

    rows.push({ id: 4, updated_at: '2024-01-04T00:00:00Z' }, { id: 5, updated_at: '2024-01-05T00:00:00Z' });
    server.requests.length = 0;
    const second = await drain(fast, src, state, connectorContext());
    expect(recordsOf(second).map((r) => (r as { id: number }).id)).toEqual([4, 5]);
    expect(second.at(-1)?.state).toMatchObject({ field: 'updated_at', watermark: '2024-01-05T00:00:00Z' });
    // The lookback (300 s by default for dates) is asked for again; records landed already do not land.
    expect(server.requests[0]?.path).toBe('/changes?since=2024-01-02T23%3A55%3A00Z&page=1');

    const third = await drain(fast, src, second.at(-1)?.state, connectorContext());
    expect(recordsOf(third)).toEqual([]);
  });

  it('filters by the watermark even when the source ignores the parameter', async () => {
    const server = await serve((_req, res) =>
      sendJson(res, [{ id: 1, v: 5 }, { id: 2, v: 9 }, { id: 3, v: 12 }, { id: 4 }]),
    );
    const src = source('api', `${server.url}/all`, { incremental: { param: 'after', field: 'v' } });
    const batches = await drain(fast, src, { field: 'v', watermark: 9 }, connectorContext());
    expect(recordsOf(batches)).toEqual([{ id: 3, v: 12 }, { id: 4 }]);
    expect(batches.at(-1)?.state).toMatchObject({ field: 'v', watermark: 12, from: 12 });
  });
});

describe('api connector: records at and behind the watermark', () => {
  let pgdb: PgScratch;
  let server: TestServer;
  beforeAll(async () => {
    pgdb = await createPgScratch();
    await pgdb.client.query(
      `CREATE TABLE feed (id int PRIMARY KEY, note text, updated_at timestamptz NOT NULL DEFAULT now())`,
    );
    // An API over a real table: ?since= is inclusive (>=), the usual contract of "changes since".
    server = await startHttpServer(async (_req, res, url) => {
      const since = url.searchParams.get('since');
      const { rows } = await pgdb.client.query(
        `SELECT id, note, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS updated_at
         FROM feed WHERE $1::timestamptz IS NULL OR updated_at >= $1::timestamptz ORDER BY updated_at`,
        [since],
      );
      sendJson(res, { data: rows });
    });
  });
  afterAll(async () => {
    await server?.close();
    await pgdb?.drop();
  });
  const src = (lookback?: number) =>
    source('api', `${server.url}/feed`, {
      records_path: 'data',
      incremental: { param: 'since', field: 'updated_at', ...(lookback !== undefined && { lookback }) },
    });
  const idsOf = (batches: SyncBatch[]) => recordsOf(batches).map((r) => (r as { id: number }).id);
  const finalState = (batches: SyncBatch[]) => batches.at(-1)?.state;

  it('a record with the same value as the watermark lands once; a second sync lands only new records', async () => {
    await pgdb.client.query(`TRUNCATE feed`);
    await pgdb.client.query(
      `INSERT INTO feed VALUES (1, 'a', '2024-06-01 10:00:00+00'), (2, 'b', '2024-06-01 10:00:05+00')`,
    );
    const first = await drain(fast, src(0), undefined, connectorContext());
    expect(idsOf(first)).toEqual([1, 2]);
    await pgdb.client.query(`INSERT INTO feed VALUES (3, 'tie', '2024-06-01 10:00:05+00')`);
    const second = await drain(fast, src(0), finalState(first), connectorContext());
    expect(idsOf(second)).toEqual([3]);
    expect(idsOf(await drain(fast, src(0), finalState(second), connectorContext()))).toEqual([]);
    await pgdb.client.query(`INSERT INTO feed VALUES (4, 'new', '2024-06-01 10:00:06+00')`);
    expect(idsOf(await drain(fast, src(0), finalState(second), connectorContext()))).toEqual([4]);
  });

  it('a transaction committing after a sync with an earlier timestamp lands once (two real connections)', async () => {
    await pgdb.client.query(`TRUNCATE feed`);
    await pgdb.client.query(`INSERT INTO feed (id, note) VALUES (1, 'before')`);
    let state = finalState(await drain(fast, src(), undefined, connectorContext()));
    const early = new pg.Client({ connectionString: pgdb.url });
    const late = new pg.Client({ connectionString: pgdb.url });
    await early.connect();
    await late.connect();
    try {
      await early.query('BEGIN');
      await early.query(`INSERT INTO feed (id, note) VALUES (2, 'early')`);
      await late.query('BEGIN');
      await late.query(`INSERT INTO feed (id, note) VALUES (3, 'late')`);
      await late.query('COMMIT');
      const during = await drain(fast, src(), state, connectorContext());
      expect(idsOf(during)).toEqual([3]);
      state = finalState(during);
      await early.query('COMMIT');
    } finally {
      await early.end();
      await late.end();
    }
    const after = await drain(fast, src(), state, connectorContext());
    expect(idsOf(after)).toEqual([2]);
    state = finalState(after);
    expect(idsOf(await drain(fast, src(), state, connectorContext()))).toEqual([]);
    await pgdb.client.query(`INSERT INTO feed (id, note) VALUES (4, 'next')`);
    expect(idsOf(await drain(fast, src(), state, connectorContext()))).toEqual([4]);
  });

  it('a record appearing later than the lookback with an earlier value is not asked for (the stated limit)', async () => {
    await pgdb.client.query(`TRUNCATE feed`);
    await pgdb.client.query(`INSERT INTO feed VALUES (1, 'a', '2024-06-01 10:00:00+00')`);
    const state = finalState(await drain(fast, src(60), undefined, connectorContext()));
    expect(state).toMatchObject({ from: '2024-06-01T09:59:00Z' });
    await pgdb.client.query(
      `INSERT INTO feed VALUES (2, 'inside', '2024-06-01 09:59:30+00'), (3, 'outside', '2024-06-01 09:58:00+00')`,
    );
    expect(idsOf(await drain(fast, src(60), state, connectorContext()))).toEqual([2]);
  });
});

describe('api connector end to end (API + worker)', () => {
  let api: TestApi;
  let server: TestServer;
  let failures = 0;
  const rows = [
    { id: 1, name: 'a', updated_at: '2024-02-01T00:00:00Z' },
    { id: 2, name: 'b', updated_at: '2024-02-02T00:00:00Z' },
    { id: 3, name: 'c', updated_at: '2024-02-03T00:00:00Z' },
  ];
  beforeAll(async () => {
    server = await startHttpServer((req, res, url) => {
      if (req.headers.authorization !== `Basic ${Buffer.from(`e2e:${PASSWORD}`).toString('base64')}`)
        return sendJson(res, { error: 'no' }, 401);
      const since = url.searchParams.get('since');
      const fresh = rows.filter((r) => !since || r.updated_at > since);
      const offset = Number(url.searchParams.get('offset') ?? 0);
      // /e2e/flaky: the second page fails `failures` times, so the first attempt dies mid-run.
      if (url.pathname === '/e2e/flaky') {
        if (offset > 0 && failures-- > 0) return sendJson(res, { error: 'overloaded' }, 503);
        const more = offset + 2 < rows.length ? `/e2e/flaky?offset=${offset + 2}` : null;
        return sendJson(res, { data: rows.slice(offset, offset + 2), next: more });
      }
      const next =
        offset + 2 < fresh.length
          ? `/e2e/items?offset=${offset + 2}${since ? `&since=${encodeURIComponent(since)}` : ''}`
          : null;
      sendJson(res, { data: fresh.slice(offset, offset + 2), next });
    });
    api = await startTestApi({
      connectors: [new ApiConnector()],
      env: { TEST_WAIT_MS: '10000', SYNC_ATTEMPTS: '2', OUTBOUND_ALLOW: '127.0.0.0/8' },
    });
    await api.startWorker();
  });
  afterAll(async () => {
    await api?.close();
    await server?.close();
  });

  const until = async <T>(read: () => Promise<T>, done: (v: T) => boolean, ms = 20000): Promise<T> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await read();
      if (done(value)) return value;
      if (Date.now() > deadline) throw new Error(`not met within ${ms} ms: ${JSON.stringify(value)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const syncOnce = async (id: string) => {
    const queued = (await api.post(`/raw-data-sources/${id}/sync`)).body;
    return until(
      async () =>
        (await api.get(`/raw-data-sources/${id}/runs`)).body.data.find(
          (r: { id: string }) => r.id === queued.run_id,
        ),
      (r) => r?.status === 'success' || r?.status === 'failed',
    );
  };

  it('tests, syncs, and a second sync lands only the new records', async () => {
    const created = await api.post('/raw-data-sources', {
      name: `api-e2e-${process.pid}`,
      source_type: 'api',
      connection_string: `http://e2e:${PASSWORD}@127.0.0.1:${server.port}/e2e/items`,
      metadata: {
        records_path: 'data',
        pagination: { type: 'next_url', path: 'next' },
        incremental: { param: 'since', field: 'updated_at' },
      },
    });
    expect(created.status, created.text).toBe(201);
    const id = created.body.id;
    const tested = await api.post(`/raw-data-sources/${id}/test`);
    expect(tested.status, tested.text).toBe(200);
    expect(tested.body.ok).toBe(true);
    expect(tested.body.steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`)).toEqual([
      'configuration:passed',
      'resolve:passed',
      'connect:passed',
      'request:passed',
      'parse:passed',
      'read_sample:passed',
    ]);

    const run1 = await syncOnce(id);
    expect(run1).toMatchObject({ status: 'success', records: 3 });
    rows.push({ id: 4, name: 'd', updated_at: '2024-02-04T00:00:00Z' });
    const run2 = await syncOnce(id);
    expect(run2).toMatchObject({ status: 'success', records: 1 });
    const landed = await api
      .knex('raw_records')
      .where({ source_id: id })
      .orderBy('id')
      .select('payload', 'run_id');
    expect(landed.map((r: { payload: { id: number } }) => r.payload.id).sort()).toEqual([1, 2, 3, 4]);
    expect(
      landed
        .filter((r: { run_id: string }) => r.run_id === run2.id)
        .map((r: { payload: unknown }) => r.payload),
    ).toEqual([rows[3]]);
    expect(JSON.stringify(api.logs)).not.toContain(PASSWORD);
  });

  it('an attempt that fails mid-run is retried without duplicating what it had landed', async () => {
    failures = 4; // first try + 3 retries of page 2 in attempt 1
    const created = await api.post('/raw-data-sources', {
      name: `api-e2e-flaky-${process.pid}`,
      source_type: 'api',
      connection_string: `http://e2e:${PASSWORD}@127.0.0.1:${server.port}/e2e/flaky`,
      metadata: {
        records_path: 'data',
        pagination: { type: 'next_url', path: 'next' },
        incremental: { param: 'since', field: 'updated_at' },
      },
    });
    const run = await syncOnce(created.body.id);
    expect(run).toMatchObject({ status: 'success', attempt: 2, records: rows.length });
    const ids = await api.knex('raw_records').where({ source_id: created.body.id }).pluck('payload');
    expect(ids.map((p: { id: number }) => p.id).sort()).toEqual(rows.map((r) => r.id).sort());
    const state = await api.knex('source_sync_state').where({ source_id: created.body.id }).first();
    expect(state?.state).toMatchObject({ field: 'updated_at', watermark: rows.at(-1)?.updated_at });
  });

  it('a wrong password fails the test at the request step with code auth, without the secret', async () => {
    const created = await api.post('/raw-data-sources', {
      name: `api-e2e-bad-${process.pid}`,
      source_type: 'api',
      connection_string: `http://e2e:wrong-${PASSWORD}@127.0.0.1:${server.port}/e2e/items`,
      metadata: { records_path: 'data' },
    });
    const tested = await api.post(`/raw-data-sources/${created.body.id}/test`);
    expect(tested.body.ok).toBe(false);
    expect(tested.body.steps.find((s: { status: string }) => s.status === 'failed')).toMatchObject({
      name: 'request',
      code: 'auth',
    });
    expect(tested.text).not.toContain(PASSWORD);
    const run = await syncOnce(created.body.id);
    expect(run).toMatchObject({ status: 'failed', attempt: 1 });
    expect(JSON.stringify(run)).not.toContain(PASSWORD);
  });
});
