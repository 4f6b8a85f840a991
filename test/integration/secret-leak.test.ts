import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import type { RedisClient } from '../../src/redis/redis-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type ApiResponse, type TestApi } from '../helpers/api-harness';
import { ADMIN_DATABASE_URL } from '../helpers/test-env';

/**
 * Secret hygiene, proven: one recognisable secret in the connection_string of a source of every
 * type, every endpoint driven (syncs and tests that fail against real connectors), then every
 * response body, log line, Redis key of the test's prefix and database row is searched for it.
 */
const PARTS = [randomBytes(6).toString('hex'), randomBytes(6).toString('hex')] as const;
// The slash must be percent-encoded inside a URL: the secret has a raw and an encoded form, and
// drivers see the decoded one. The random parts alone find any piece of it, in any encoding.
const CANARY = `Leak-Canary-${PARTS[0]}/${PARTS[1]}`;
const ENCODED = encodeURIComponent(CANARY);
const NEEDLES = [
  CANARY,
  ENCODED,
  ...PARTS,
  ...[CANARY, `:${CANARY}`, `user:${CANARY}`].map((s) => Buffer.from(s).toString('base64')),
];
const P = '/raw-data-sources';

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function listen(server: Server | HttpServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, ms = 60000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Hit {
  where: string;
  needle: string;
  context: string;
}

/** Every entry of every key under `prefix:`, read the way its type allows. */
async function dumpRedis(redis: RedisClient, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      let value: unknown;
      if (type === 'string') value = await redis.get(key);
      else if (type === 'hash') value = await redis.hgetall(key);
      else if (type === 'list') value = await redis.lrange(key, 0, -1);
      else if (type === 'set') value = await redis.smembers(key);
      else if (type === 'zset') value = await redis.zrange(key, '0', '-1', 'WITHSCORES');
      else if (type === 'stream') value = await redis.xrange(key, '-', '+');
      else value = `unread type ${type}`;
      out.set(`${type} ${key}`, `${key} ${JSON.stringify(value)}`);
    }
  } while (cursor !== '0');
  return out;
}

describe('a secret on sources of every type appears nowhere', () => {
  let api: TestApi;
  const hits: Hit[] = [];
  const endpoints = new Set<string>();
  const bodies: { where: string; text: string }[] = [];
  const jobIds = new Set<string>();
  const ids: Record<string, string> = {};

  /** API tokens: searched everywhere but the one response that shows a new key's token. */
  const tokens: string[] = [];
  const scan = (where: string, text: string) => {
    for (const needle of [...NEEDLES, ...tokens]) {
      const at = text.indexOf(needle);
      if (at >= 0) hits.push({ where, needle, context: text.slice(Math.max(0, at - 120), at + 120) });
    }
  };
  /** Sends a request, names the endpoint it drove, and keeps the body for the scan. */
  const call = async (
    endpoint: string,
    method: string,
    path: string,
    init?: Parameters<TestApi['request']>[2],
  ): Promise<ApiResponse> => {
    const res = await api.request(method, path, init);
    endpoints.add(endpoint);
    bodies.push({
      where: `${method} ${path} → ${res.status}`,
      text: `${JSON.stringify([...res.headers])}${res.text}`,
    });
    return res;
  };

  let echo: HttpServer;
  let echoPort: number;
  let fakeRedis: Server;
  let redisPort: number;

  beforeAll(async () => {
    echo = createHttpServer((req, res) => {
      if (req.url?.startsWith('/redirect')) {
        res.writeHead(302, { location: `http://user:${ENCODED}@127.0.0.1:${echoPort}/x?token=${ENCODED}` });
        res.end();
        return;
      }
      const told = JSON.stringify({ error: 'not you', url: req.url, headers: req.headers });
      res.writeHead(req.url?.includes('.csv') ? 500 : 401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer error="invalid_token", sent="${req.headers.authorization ?? ''}"`,
      });
      res.end(told);
    });
    echoPort = await listen(echo);
    fakeRedis = createServer((socket) => {
      socket.on('error', () => undefined);
      let buffered = '';
      socket.on('data', (chunk) => {
        buffered += chunk.toString('latin1');
        let command: string[] | undefined;
        while ((command = nextCommand())) {
          const args = command.map((a) => `'${a}'`).join(' ');
          socket.write(`-ERR unknown command '${command[0]}', with args beginning with: ${args}\r\n`);
        }
      });
      /** One RESP array of bulk strings off the front of the buffer, if complete. */
      const nextCommand = (): string[] | undefined => {
        const lines = buffered.split('\r\n');
        if (!lines[0]?.startsWith('*')) return undefined;
        const n = Number(lines[0].slice(1));
        if (lines.length < 1 + 2 * n + 1) return undefined;
        const args: string[] = [];
        for (let i = 0; i < n; i++) args.push(lines[2 + 2 * i]!);
        buffered = lines.slice(1 + 2 * n).join('\r\n');
        return args;
      };
    });
    redisPort = await listen(fakeRedis);
    api = await startTestApi({
      env: {
        SYNC_ATTEMPTS: '2',
        // Every line any code writes, debug and trace included.
        LOG_LEVEL: 'trace',
        CONNECT_TIMEOUT_MS: '3000',
        // Loopback must be reachable for the connectors to try (and fail) for real.
        OUTBOUND_ALLOW: '127.0.0.0/8',
      },
    });
    await api.startWorker();
  });
  afterAll(async () => {
    await api?.close();
    echo?.closeAllConnections();
    await new Promise((resolve) => echo?.close(resolve));
    await new Promise((resolve) => fakeRedis?.close(resolve));
  });

  it('through every endpoint, a sync, a failing sync and a failing test', { timeout: 180_000 }, async () => {
    const port = await closedPort();
    const pg = new URL(ADMIN_DATABASE_URL);
    const sources: { type: string; label: string; connection_string: string; metadata: object }[] = [
      // Nothing listens: connect fails.
      {
        type: 'database',
        label: 'refused',
        connection_string: `postgres://loader:${ENCODED}@127.0.0.1:${port}/warehouse`,
        metadata: { table: 'items' },
      },
      // A real server that refuses the login (no such role).
      {
        type: 'database',
        label: 'auth',
        connection_string: `postgres://leak_no_such_role:${ENCODED}@127.0.0.1:${pg.port || 5432}/postgres`,
        metadata: { table: 'items' },
      },
      {
        type: 'api',
        label: 'refused',
        connection_string: `https://:${ENCODED}@127.0.0.1:${port}/x`,
        metadata: {},
      },
      // MariaDB refuses the password (a real server, when it runs here; refused otherwise).
      {
        type: 'database',
        label: 'mysql',
        connection_string: `mysql://leak_user:${ENCODED}@127.0.0.1:3306/leak`,
        metadata: { table: 'items' },
      },
      // A server that answers 401 quoting the credentials it was sent.
      {
        type: 'api',
        label: 'echo',
        connection_string: `http://:${ENCODED}@127.0.0.1:${echoPort}/x`,
        metadata: {},
      },
      // A redirect to a URL with the credentials in it.
      {
        type: 'api',
        label: 'redirect',
        connection_string: `http://:${ENCODED}@127.0.0.1:${echoPort}/redirect`,
        metadata: {},
      },
      // The secret as a query parameter, as many HTTP APIs take their key.
      {
        type: 'api',
        label: 'query',
        connection_string: `http://127.0.0.1:${echoPort}/x?api_key=${ENCODED}&page=1`,
        metadata: {},
      },
      {
        type: 'file',
        label: 'query',
        connection_string: `http://127.0.0.1:${echoPort}/f.csv?token=${ENCODED}`,
        metadata: {},
      },
      {
        type: 'file',
        label: 'refused',
        connection_string: `https://user:${ENCODED}@127.0.0.1:${port}/f.csv`,
        metadata: {},
      },
      // 500 quoting the credentials: a transient failure, retried.
      {
        type: 'file',
        label: 'echo',
        connection_string: `http://user:${ENCODED}@127.0.0.1:${echoPort}/f.csv`,
        metadata: {},
      },
      {
        type: 'stream',
        label: 'refused',
        connection_string: `redis://:${ENCODED}@127.0.0.1:${port}/0`,
        metadata: { stream: 'events' },
      },
      {
        type: 'stream',
        label: 'nats',
        connection_string: `nats://leak:${ENCODED}@127.0.0.1:${port}`,
        metadata: { stream: 'events' },
      },
      // A Redis that, like a real one, quotes the arguments of a command it refuses (AUTH here).
      {
        type: 'stream',
        label: 'echo',
        connection_string: `redis://:${ENCODED}@127.0.0.1:${redisPort}/0`,
        metadata: { stream: 'events' },
      },
      { type: 'webhook', label: 'secret', connection_string: CANARY, metadata: {} },
    ];
    expect(new Set(sources.map((s) => s.type)).size).toBe(5);

    // Create, read, list, update: every type holds the secret.
    for (const { type, label, ...settings } of sources) {
      const name = `leak-${type}-${label}`;
      const res = await call('POST /raw-data-sources', 'POST', P, {
        body: { name, source_type: type, ...settings },
      });
      expect(res.status, res.text).toBe(201);
      ids[name] = res.body.id;
      expect((await call('GET /raw-data-sources/{id}', 'GET', `${P}/${res.body.id}`)).status).toBe(200);
      const put = await call('PUT /raw-data-sources/{id}', 'PUT', `${P}/${res.body.id}`, {
        body: { ...settings, name: `${name}-renamed` },
      });
      expect(put.status, put.text).toBe(200);
    }
    // Extra source to delete.
    const doomed = await call('POST /raw-data-sources', 'POST', P, {
      body: { name: 'leak-doomed', source_type: 'webhook', connection_string: CANARY },
    });
    expect((await call('DELETE /raw-data-sources/{id}', 'DELETE', `${P}/${doomed.body.id}`)).status).toBe(
      204,
    );
    expect((await call('GET /raw-data-sources', 'GET', `${P}?limit=100`)).status).toBe(200);
    await call('GET /raw-data-sources', 'GET', `${P}?type=database&active=true`);

    // 400s with the secret in the body: wrong types, a bad enum, a refused connection string, bad JSON.
    const invalid: Record<string, unknown>[] = [
      { name: 'leak-bad-1', refresh_interval: CANARY, connection_string: CANARY },
      { name: 'leak-bad-2', source_type: CANARY },
      { name: 'leak-bad-3', metadata: CANARY, is_active: CANARY },
      {
        name: 'leak-bad-4',
        source_type: 'database',
        connection_string: `mysqlx://u:${ENCODED}@127.0.0.1/db`,
      },
      { name: 'leak-bad-5', source_type: 'webhook', connection_string: PARTS[0] },
      { name: 'leak-bad-6', source_type: 'file', connection_string: `ftp://u:${ENCODED}@127.0.0.1/f.csv` },
      { name: 'leak-bad-7', source_type: 'stream', connection_string: `kafka://u:${ENCODED}@127.0.0.1/t` },
      { name: 'leak-bad-8', source_type: 'api', connection_string: `gopher://u:${ENCODED}@127.0.0.1/x` },
      { name: CANARY.repeat(10), connection_string: CANARY },
    ];
    for (const body of invalid) {
      const res = await call('POST /raw-data-sources (400)', 'POST', P, { body });
      expect(res.status, res.text).toBe(400);
    }
    const put400 = await call(
      'PUT /raw-data-sources/{id} (400)',
      'PUT',
      `${P}/${ids['leak-database-refused']}`,
      {
        body: { connection_string: `oracle://u:${ENCODED}@127.0.0.1/db`, refresh_interval: CANARY },
      },
    );
    expect(put400.status).toBe(400);
    const draft400 = await call('POST /raw-data-sources/test (400)', 'POST', `${P}/test`, {
      body: {
        name: 'leak-draft-bad',
        source_type: 'database',
        connection_string: `mssql://u:${ENCODED}@127.0.0.1/db`,
      },
    });
    expect(draft400.status).toBe(400);
    const malformed = await call('POST /raw-data-sources (malformed JSON)', 'POST', P, {
      raw: `{"name":"x","connection_string":"${CANARY}"`,
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed.status).toBe(400);

    // Failing tests: saved sources of every type, and an unsaved configuration.
    for (const [name, id] of Object.entries(ids)) {
      const res = await call('POST /raw-data-sources/{id}/test', 'POST', `${P}/${id}/test`);
      expect([200, 202], res.text).toContain(res.status);
      if (res.status === 202) jobIds.add(res.body.job_id);
      else if (!name.includes('webhook')) expect(res.body.ok, `${name}: ${res.text}`).toBe(false);
    }
    for (const { type, label, ...settings } of sources) {
      const res = await call('POST /raw-data-sources/test', 'POST', `${P}/test`, {
        body: { name: `leak-draft-${type}-${label}`, source_type: type, ...settings },
      });
      expect([200, 202], res.text).toContain(res.status);
      if (res.status === 202) jobIds.add(res.body.job_id);
    }

    // A webhook delivery with a wrong signature.
    const hook = await call(
      'POST /webhooks/{id} (bad signature)',
      'POST',
      `/webhooks/${ids['leak-webhook-secret']}`,
      {
        raw: JSON.stringify({ hello: CANARY }),
        headers: {
          'content-type': 'application/json',
          'x-sluice-signature': `t=${Math.floor(Date.now() / 1000)},v1=${'0'.repeat(64)}`,
        },
      },
    );
    expect(hook.status).toBe(401);

    // Syncs that fail (nothing listens) and one that succeeds (the webhook drains its buffer).
    const settled = () =>
      until(
        async () =>
          (await api.knex('sync_runs').whereIn('status', ['queued', 'running']).count({ n: '*' }).first())?.n,
        (n) => Number(n) === 0,
      );
    for (const id of Object.values(ids)) {
      const res = await call('POST /raw-data-sources/{id}/sync', 'POST', `${P}/${id}/sync`);
      expect(res.status, res.text).toBe(202);
      jobIds.add(res.body.job_id);
    }
    await settled();
    const all = await call('POST /raw-data-sources/sync-all', 'POST', `${P}/sync-all`);
    expect(all.status).toBe(202);
    jobIds.add(all.body.batch_id);
    await until(
      async () => (await api.get(`/jobs/${all.body.batch_id}`)).body?.state,
      (s) => s === 'completed',
    );
    await settled();

    const statuses = await api.knex('raw_data_sources').select('source_type', 'sync_status', 'error_message');
    for (const s of statuses)
      if (s.source_type !== 'webhook') expect(s.sync_status, s.source_type).toBe('failed');
    // The runs this test started (manual and sync-all): a source's schedule may also tick while it
    // runs (its first tick falls anywhere from 10 s into its hour), and that run is not counted.
    const runs = await api.knex('sync_runs').select('status').whereNot({ trigger: 'schedule' });
    expect(runs.filter((r) => r.status === 'failed').length).toBe(2 * (sources.length - 1));

    // Reads of what happened: runs, jobs, events, the dashboard, docs, health.
    for (const id of Object.values(ids)) {
      const runsRes = await call('GET /raw-data-sources/{id}/runs', 'GET', `${P}/${id}/runs?limit=100`);
      expect(runsRes.status).toBe(200);
      // Each run's own log (the failures quote what the drivers said).
      for (const run of runsRes.body.data as { id: string }[])
        expect(
          (
            await call(
              'GET /raw-data-sources/{id}/runs/{run_id}/logs',
              'GET',
              `${P}/${id}/runs/${run.id}/logs`,
            )
          ).status,
        ).toBe(200);
    }
    for (const jobId of jobIds) {
      const res = await call('GET /jobs/{id}', 'GET', `/jobs/${jobId}`);
      expect(res.status, res.text).toBe(200);
    }
    for (const query of [
      'activeQueue=sync&status=failed&page=1&jobsPerPage=50',
      'activeQueue=sync&status=completed&page=1&jobsPerPage=50',
      'activeQueue=test&status=completed&page=1&jobsPerPage=50',
      'activeQueue=test&status=failed&page=1&jobsPerPage=50',
      'activeQueue=sync-all&status=completed&page=1&jobsPerPage=50',
    ])
      await call('GET /admin/queues/api/queues', 'GET', `/admin/queues/api/queues?${query}`);
    await call('GET /admin/queues/api/job-schedulers', 'GET', '/admin/queues/api/job-schedulers');
    // API keys: the token is in its creation response (shown once, not scanned for it) and nowhere else.
    const key = await api.post('/api-keys', { name: 'leak-check', scope: 'read' });
    expect(key.status).toBe(201);
    endpoints.add('POST /api-keys');
    tokens.push(key.body.token, key.body.token.slice(8), api.adminToken);
    expect((await call('GET /raw-data-sources (read key)', 'GET', P, { token: key.body.token })).status).toBe(
      200,
    );
    expect(
      (await call('POST /raw-data-sources (read key, 403)', 'POST', P, { token: key.body.token, body: {} }))
        .status,
    ).toBe(403);
    await call('GET /api-keys', 'GET', '/api-keys');
    expect((await call('DELETE /api-keys/{id}', 'DELETE', `/api-keys/${key.body.id}`)).status).toBe(204);
    await call('GET /audit', 'GET', '/audit?limit=100');
    for (const path of ['/openapi.json', '/docs', '/healthz', '/readyz', '/metrics'])
      expect((await call(`GET ${path}`, 'GET', path)).status).toBe(200);

    // The event stream from its beginning, read for a second.
    const abort = new AbortController();
    const stream = await fetch(`${api.baseUrl}/events?last_event_id=0-0`, {
      signal: abort.signal,
      headers: { authorization: `Bearer ${api.adminToken}` },
    });
    expect(stream.status).toBe(200);
    endpoints.add('GET /events');
    let sse = '';
    const reader = stream.body!.getReader();
    const stop = setTimeout(() => abort.abort(), 1000);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        sse += Buffer.from(value).toString('utf8');
      }
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    } finally {
      clearTimeout(stop);
    }
    expect(sse).toContain('sync.failed');
    expect(sse).toContain('connection.tested');
    bodies.push({ where: 'GET /events (SSE)', text: sse });

    // --- the scan ---
    for (const b of bodies) scan(`response ${b.where}`, b.text);
    for (const [i, line] of api.logs.entries()) scan(`log line ${i}`, line);
    const redis = await dumpRedis(api.container.redis, api.container.config.queuePrefix);
    for (const [key, text] of redis) scan(`redis ${key}`, text);
    const tables = await api
      .knex('information_schema.tables')
      .where({ table_schema: 'public', table_type: 'BASE TABLE' })
      .pluck('table_name');
    let rows = 0;
    for (const table of tables) {
      const texts = (await api.knex.raw(`SELECT row_to_json(t)::text AS j FROM ?? t`, [table])).rows as {
        j: string;
      }[];
      rows += texts.length;
      for (const { j } of texts) scan(`table ${table}`, j);
    }
    const errors = [
      ...(await api.knex('sync_runs').whereNotNull('error').pluck('error')),
      ...(await api.knex('raw_data_sources').whereNotNull('error_message').pluck('error_message')),
    ] as string[];
    for (const e of errors) scan('stored error message', e);

    const redisTypes = [...redis.keys()].reduce<Record<string, number>>((acc, k) => {
      const type = k.split(' ')[0]!;
      acc[type] = (acc[type] ?? 0) + 1;
      return acc;
    }, {});
    console.log(
      [
        'secret-leak coverage:',
        `  endpoints driven: ${endpoints.size} (${[...endpoints].sort().join('; ')})`,
        `  responses scanned: ${bodies.length}`,
        `  log lines scanned: ${api.logs.length}`,
        `  Redis keys scanned: ${redis.size} (${JSON.stringify(redisTypes)})`,
        `  database: ${tables.length} tables, ${rows} rows; ${errors.length} stored error messages`,
        `  sync runs: ${runs.length} (${runs.filter((r) => r.status === 'failed').length} failed); jobs read: ${jobIds.size}`,
        `  occurrences of the secret: ${hits.length}`,
      ].join('\n'),
    );
    // The scan can see what it looks for: every source holds the secret in a form it searches,
    // and the dump reads job hashes, failure reasons and event streams.
    for (const source of sources)
      expect(NEEDLES.some((n) => source.connection_string.includes(n))).toBe(true);
    const dumped = [...redis.values()].join('\n');
    for (const seen of ['sourceId', 'draftId', 'failedReason', 'ECONNREFUSED', 'sync.failed'])
      expect(dumped).toContain(seen);
    // Enough happened for the scan to mean something.
    expect(api.logs.length).toBeGreaterThan(50);
    expect(redis.size).toBeGreaterThan(20);
    expect(errors.length).toBeGreaterThanOrEqual(2 * (sources.length - 1));
    expect(hits).toEqual([]);
  });
});
