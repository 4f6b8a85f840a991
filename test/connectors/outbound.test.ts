import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Socket, type AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiConnector } from '../../src/connectors/api/api.connector';
import { PermanentSyncError, type Connector, type TestStep } from '../../src/connectors/connector';
import { DatabaseConnector } from '../../src/connectors/database/database.connector';
import { FileConnector } from '../../src/connectors/file/file.connector';
import { Outbound, OutboundRefusedError, type Resolver } from '../../src/connectors/outbound';
import { AddressPolicy } from '../../src/connectors/outbound-policy';
import { StreamConnector } from '../../src/connectors/stream/stream.connector';
import { startTestApi, type TestApi } from '../helpers/api-harness';
import { connectorContext, drain, recordsOf, sendJson, source } from './support/http-source';

/*
 * The outbound policy, proven without a packet leaving this machine:
 * - on loopback itself: only 127.0.0.2 is allowed; a trap server on 127.0.0.1 (same port) counts
 *   every connection and must see none, whatever spelling or redirect points at it;
 * - for private, link-local and metadata addresses: names resolve through an injected resolver
 *   (never DNS), and Socket.prototype.connect is replaced by a recorder that lets only the
 *   loopback peers of this file through and blocks everything else before any syscall.
 */

const ONLY_127_0_0_2 = new AddressPolicy(['127.0.0.2/32']);
const api = new ApiConnector({ http: { retry: { retries: 0 } } });

interface Peer {
  port: number;
  connections: number;
  requests: string[];
  close(): Promise<void>;
}

function listen(host: string, port: number, handler: (req: IncomingMessage, res: ServerResponse) => void) {
  return new Promise<Peer>((resolve, reject) => {
    const server: Server = createServer((req, res) => {
      peer.requests.push(req.url ?? '');
      handler(req, res);
    });
    const peer: Peer = {
      port: 0,
      connections: 0,
      requests: [],
      close: async () => {
        server.closeAllConnections();
        await new Promise((done) => server.close(done));
      },
    };
    server.on('connection', () => peer.connections++);
    server.once('error', reject);
    server.listen(port, host, () => {
      peer.port = (server.address() as AddressInfo).port;
      resolve(peer);
    });
  });
}

let good: Peer;
let trap: Peer;
/** Where each path of the good server redirects (the trap's port is the good server's). */
const redirects: Record<string, (port: number) => string> = {
  '/to-127.0.0.1': (port) => `http://127.0.0.1:${port}/items`,
  '/to-localhost': (port) => `http://localhost:${port}/items`,
  '/to-mapped': (port) => `http://[::ffff:127.0.0.1]:${port}/items`,
  '/to-decimal': (port) => `http://2130706433:${port}/items`,
  '/to-unspecified': (port) => `http://0.0.0.0:${port}/items`,
  '/to-metadata': () => 'http://metadata.sluice.test/latest/meta-data/iam/security-credentials/',
  '/to-private': () => 'http://10.0.0.1/admin',
  '/to-metadata-v6': () => 'http://[fd00:ec2::254]/latest/meta-data/',
};

beforeAll(async () => {
  // Same port on both addresses, so only the address decides which server a request reaches.
  for (let tries = 0; !trap; tries++) {
    good = await listen('127.0.0.2', 0, (req, res) => {
      const to = redirects[req.url ?? ''];
      if (to) {
        res.writeHead(302, { location: to(good.port) });
        return res.end();
      }
      if (req.url === '/paged')
        return sendJson(res, { data: [{ id: 1 }], next: `http://127.0.0.1:${good.port}/items` });
      sendJson(res, [{ id: 1, from: 'allowed' }]);
    });
    try {
      trap = await listen('127.0.0.1', good.port, (_req, res) => sendJson(res, [{ id: 666, from: 'trap' }]));
    } catch (err) {
      await good.close();
      if (tries >= 20) throw err;
    }
  }
});
afterAll(async () => {
  await trap?.close();
  await good?.close();
});

const failedStep = (steps: TestStep[]) => steps.find((s) => s.status === 'failed');

async function syncFailure(connector: Connector, src: ReturnType<typeof source>, ctx = loopbackCtx()) {
  const err = await drain(connector, src, undefined, ctx).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the sync should have failed').toBeInstanceOf(PermanentSyncError);
  return err as PermanentSyncError;
}

function loopbackCtx(resolver?: Resolver) {
  return connectorContext({ policy: ONLY_127_0_0_2, resolver, timeoutMs: 5000 });
}

describe('outbound policy on loopback: only 127.0.0.2/32 allowed', () => {
  afterEach(() => {
    // Nothing may have reached 127.0.0.1, not even a TCP handshake.
    expect(trap.connections).toBe(0);
    expect(trap.requests).toEqual([]);
  });

  it('the allowed address is reached (the policy does not just refuse everything)', async () => {
    const src = source('api', `http://127.0.0.2:${good.port}/items`);
    const steps = await api.test(src, loopbackCtx());
    expect(steps.map((s) => s.status)).toEqual(['passed', 'passed', 'passed', 'passed', 'passed', 'passed']);
    expect(recordsOf(await drain(api, src, undefined, loopbackCtx()))).toEqual([{ id: 1, from: 'allowed' }]);
  });

  it.each([
    '127.0.0.1',
    'localhost',
    '[::ffff:127.0.0.1]',
    '[::ffff:7f00:1]',
    '2130706433',
    '0x7f000001',
    '0177.0.0.1',
    '127.1',
    '[::1]',
    '0.0.0.0',
    '0',
    '[::]',
  ])(
    'http://%s:<trap> fails the resolve step as forbidden_address, and the sync permanently',
    async (host) => {
      const src = source('api', `http://${host}:${trap.port}/items`);
      const steps = await api.test(src, loopbackCtx());
      expect(failedStep(steps)).toMatchObject({ name: 'resolve', code: 'forbidden_address' });
      expect(failedStep(steps)?.message).toContain('not allowed by the outbound policy');
      expect(steps.slice(2).map((s) => s.status)).toEqual(['skipped', 'skipped', 'skipped', 'skipped']);
      const err = await syncFailure(api, src);
      expect(err.code).toBe('forbidden_address');
    },
  );

  it.each(['/to-127.0.0.1', '/to-localhost', '/to-mapped', '/to-decimal', '/to-unspecified'])(
    'a redirect from 127.0.0.2 (%s) is refused at the next hop',
    async (path) => {
      const src = source('api', `http://127.0.0.2:${good.port}${path}`);
      const steps = await api.test(src, loopbackCtx());
      expect(failedStep(steps)).toMatchObject({ name: 'request', code: 'forbidden_address' });
      expect((await syncFailure(api, src)).code).toBe('forbidden_address');
      expect(good.requests.filter((p) => p === path)).toHaveLength(2);
    },
  );

  it('a next_url page link to 127.0.0.1 is refused', async () => {
    const src = source('api', `http://127.0.0.2:${good.port}/paged`, {
      records_path: 'data',
      pagination: { type: 'next_url', path: 'next' },
    });
    expect((await syncFailure(api, src)).code).toBe('forbidden_address');
  });

  it('a DNS answer that changes after the check (rebinding) is checked again before it is dialled', async () => {
    const answers: string[] = [];
    // First answer allowed, every later one the trap's address: the second lookup must be refused.
    const rebinding: Resolver = async () => {
      answers.push(answers.length ? '127.0.0.1' : '127.0.0.2');
      return { address: answers.at(-1)!, family: 4 };
    };
    const src = source('api', `http://rebind.sluice.test:${good.port}/items`);
    const steps = await api.test(src, loopbackCtx(rebinding));
    expect(steps.slice(0, 3).map((s) => s.status)).toEqual(['passed', 'passed', 'passed']);
    expect(failedStep(steps)).toMatchObject({ name: 'request', code: 'forbidden_address' });
    expect(answers).toEqual(['127.0.0.2', '127.0.0.1']);
  });

  describe('through the app (container wiring, OUTBOUND_ALLOW=127.0.0.2/32)', () => {
    let app: TestApi;
    beforeAll(async () => {
      app = await startTestApi({
        connectors: [new ApiConnector()],
        env: { OUTBOUND_ALLOW: '127.0.0.2/32', SYNC_ATTEMPTS: '3', TEST_WAIT_MS: '10000' },
      });
      await app.startWorker();
    });
    afterAll(async () => {
      await app?.close();
    });

    const create = async (source_type: string, connection_string: string, metadata = {}) => {
      const created = await app.post('/raw-data-sources', {
        name: `outbound-${source_type}-${Math.random().toString(36).slice(2)}`,
        source_type,
        connection_string,
        metadata,
      });
      expect(created.status, created.text).toBe(201);
      return created.body.id as string;
    };
    const syncOnce = async (id: string) => {
      const queued = (await app.post(`/raw-data-sources/${id}/sync`)).body;
      for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
        const runs = (await app.get(`/raw-data-sources/${id}/runs`)).body.data;
        const run = runs.find((r: { id: string }) => r.id === queued.run_id);
        if (run?.status === 'success' || run?.status === 'failed') return run;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('the run did not finish');
    };

    it('an api source on 127.0.0.2 tests ok and syncs', async () => {
      const id = await create('api', `http://127.0.0.2:${good.port}/items`);
      const tested = await app.post(`/raw-data-sources/${id}/test`);
      expect(tested.body.ok, tested.text).toBe(true);
      expect(await syncOnce(id)).toMatchObject({ status: 'success', records: 1 });
    });

    it('an api source on the trap fails its test and its sync at once (no retry)', async () => {
      const id = await create('api', `http://localhost:${trap.port}/items`);
      const tested = await app.post(`/raw-data-sources/${id}/test`);
      expect(tested.body.ok).toBe(false);
      expect(failedStep(tested.body.steps)).toMatchObject({ name: 'resolve', code: 'forbidden_address' });
      const run = await syncOnce(id);
      expect(run).toMatchObject({ status: 'failed', attempt: 1 });
      expect(run.error).toContain('not allowed by the outbound policy');
    });

    it("a database source pointed at Sluice's own Postgres on 127.0.0.1 is refused", async () => {
      const app2db = new URL(app.database.url);
      app2db.hostname = '127.0.0.1';
      const id = await create('database', app2db.toString(), { table: 'raw_data_sources' });
      const tested = await app.post(`/raw-data-sources/${id}/test`);
      expect(failedStep(tested.body.steps)).toMatchObject({ name: 'resolve', code: 'forbidden_address' });
      expect(tested.body.steps.find((s: TestStep) => s.name === 'connect')?.status).toBe('skipped');
    });
  });
});

/** Where a Socket.prototype.connect call was going, from any of its argument forms. */
function connectTarget(args: unknown[]): string {
  const first: unknown = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
  if (first && typeof first === 'object') {
    const o = first as { host?: string; port?: number | string; path?: string };
    return o.path ?? `${o.host ?? 'localhost'}:${o.port}`;
  }
  return `${typeof args[1] === 'string' ? args[1] : 'localhost'}:${String(first)}`;
}

describe('addresses never dialled: injected resolver, recording connect', () => {
  /** Every blocked connect attempt; only this file's 127.0.0.2 server is let through. */
  const attempts: string[] = [];
  const looked: string[] = [];
  const NAMES: Record<string, [string, 4 | 6]> = {
    'internal.sluice.test': ['10.0.0.1', 4],
    'metadata.sluice.test': ['169.254.169.254', 4],
    'metadata-v6.sluice.test': ['fd00:ec2::254', 6],
    'mapped.sluice.test': ['::ffff:169.254.169.254', 6],
    'nat64.sluice.test': ['64:ff9b::a9fe:a9fe', 6],
    'control.sluice.test': ['127.0.0.3', 4],
  };
  // Never falls back to DNS: an unknown name is a test bug, reported as such.
  const resolver: Resolver = async (host) => {
    looked.push(host);
    const found = NAMES[host];
    if (!found) throw Object.assign(new Error(`test resolver: unknown name ${host}`), { code: 'ENOTFOUND' });
    return { address: found[0], family: found[1] };
  };
  const ctx = (policy = ONLY_127_0_0_2) => connectorContext({ policy, resolver, timeoutMs: 5000 });

  beforeEach(() => {
    attempts.length = 0;
    looked.length = 0;
    const realConnect = Socket.prototype.connect;
    // Every TCP client (net.connect, tls.connect, undici, pg, mysql2, ioredis, nats) ends here.
    vi.spyOn(Socket.prototype, 'connect').mockImplementation(function (this: Socket, ...args: unknown[]) {
      const target = connectTarget(args);
      if (target === `127.0.0.2:${good.port}`)
        return (realConnect as (...a: unknown[]) => Socket).apply(this, args);
      attempts.push(target);
      process.nextTick(() =>
        this.destroy(
          Object.assign(new Error(`connect to ${target} blocked by the test`), { code: 'ECONNREFUSED' }),
        ),
      );
      return this;
    } as unknown as Socket['connect']);
  });
  afterEach(() => {
    vi.restoreAllMocks();
    expect(trap.connections).toBe(0);
  });

  it('the recorder sees and blocks a connect the policy lets through (control, on 127.0.0.3)', async () => {
    const steps = await api.test(
      source('api', 'http://control.sluice.test/items'),
      ctx(new AddressPolicy(['127.0.0.0/8'])),
    );
    expect(steps.slice(0, 3).map((s) => [s.name, s.status])).toEqual([
      ['configuration', 'passed'],
      ['resolve', 'passed'],
      ['connect', 'failed'],
    ]);
    expect(attempts).toEqual(['127.0.0.3:80']);
  });

  it.each([
    ['database', 'postgres://reader:pw@control.sluice.test:5432/app', { table: 'items' }, '127.0.0.3:5432'],
    ['database', 'mysql://reader:pw@control.sluice.test:3306/app', { table: 'items' }, '127.0.0.3:3306'],
    ['stream', 'redis://control.sluice.test:6379/0', { stream: 'events' }, '127.0.0.3:6379'],
    ['stream', 'nats://control.sluice.test:4222', { stream: 'EVENTS', subject: 'e.>' }, '127.0.0.3:4222'],
  ])('the recorder also sees the %s client connect to %s (control)', async (type, url, metadata, target) => {
    const connector = type === 'database' ? new DatabaseConnector() : new StreamConnector();
    const steps = await connector.test(source(type, url, metadata), ctx(new AddressPolicy(['127.0.0.0/8'])));
    expect(steps.find((s) => s.name === 'resolve')?.status).toBe('passed');
    expect(failedStep(steps)).toMatchObject({ name: 'connect' });
    expect(attempts.length).toBeGreaterThan(0);
    expect(new Set(attempts)).toEqual(new Set([target]));
  });

  it('Outbound.resolve throws before anything could connect, for every kind that refuses', async () => {
    const outbound = new Outbound(ONLY_127_0_0_2, resolver);
    const refused: [string, 'http' | 'service'][] = [
      ['internal.sluice.test', 'http'],
      ['metadata.sluice.test', 'http'],
      ['metadata.sluice.test', 'service'],
      ['metadata-v6.sluice.test', 'http'],
      ['metadata-v6.sluice.test', 'service'],
      ['mapped.sluice.test', 'service'],
      ['nat64.sluice.test', 'service'],
      ['169.254.169.254', 'service'],
      ['[fd00:ec2::254]', 'http'],
      ['::ffff:10.0.0.1', 'http'],
    ];
    for (const [host, kind] of refused)
      await expect(outbound.resolve(host, kind, 1000), `${host} (${kind})`).rejects.toBeInstanceOf(
        OutboundRefusedError,
      );
    // Database and stream sources may reach private ranges (nothing is dialled here).
    await expect(outbound.resolve('internal.sluice.test', 'service', 1000)).resolves.toMatchObject({
      address: '10.0.0.1',
    });
    // Names were looked up once each, through the injected resolver; literals not at all.
    expect(looked).toEqual([
      'internal.sluice.test',
      'metadata.sluice.test',
      'metadata.sluice.test',
      'metadata-v6.sluice.test',
      'metadata-v6.sluice.test',
      'mapped.sluice.test',
      'nat64.sluice.test',
      'internal.sluice.test',
    ]);
    expect(attempts).toEqual([]);
  });

  it.each([
    'http://metadata.sluice.test/latest/meta-data/iam/security-credentials/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[::ffff:169.254.169.254]/latest/meta-data/',
    'http://[fd00:ec2::254]/latest/meta-data/',
    'http://metadata-v6.sluice.test/',
    'http://nat64.sluice.test/',
    'http://internal.sluice.test/admin',
    'http://10.0.0.1/admin',
    'https://172.16.0.1/',
    'http://192.168.1.1/',
  ])('api source %s: refused at resolve, sync permanent, no connect', async (url) => {
    const src = source('api', url);
    expect(failedStep(await api.test(src, ctx()))).toMatchObject({
      name: 'resolve',
      code: 'forbidden_address',
    });
    expect((await syncFailure(api, src, ctx())).code).toBe('forbidden_address');
    expect(attempts).toEqual([]);
  });

  it.each(['/to-metadata', '/to-private', '/to-metadata-v6'])(
    'a redirect from 127.0.0.2 (%s) is refused without a connect',
    async (path) => {
      const src = source('api', `http://127.0.0.2:${good.port}${path}`);
      expect(failedStep(await api.test(src, ctx()))).toMatchObject({
        name: 'request',
        code: 'forbidden_address',
      });
      expect((await syncFailure(api, src, ctx())).code).toBe('forbidden_address');
      expect(good.requests.filter((p) => p === path)).toHaveLength(2);
      expect(attempts).toEqual([]);
    },
  );

  it('a file source by URL on a private address is refused', async () => {
    const file = new FileConnector([]);
    const src = source('file', 'https://internal.sluice.test/export.csv');
    expect(failedStep(await file.test(src, ctx()))).toMatchObject({
      name: 'resolve',
      code: 'forbidden_address',
    });
    expect((await syncFailure(file, src, ctx())).code).toBe('forbidden_address');
    expect(attempts).toEqual([]);
  });

  it.each([
    'postgres://reader:pw@metadata.sluice.test:5432/app',
    'postgres://reader:pw@169.254.169.254:5432/app',
    'mysql://reader:pw@metadata-v6.sluice.test:3306/app',
    'mysql://reader:pw@[::ffff:169.254.169.254]:3306/app',
  ])('database source %s: refused at resolve, sync permanent, no connect', async (url) => {
    const db = new DatabaseConnector();
    const src = { ...source('database', url, { table: 'items' }) };
    const steps = await db.test(src, ctx());
    expect(failedStep(steps)).toMatchObject({ name: 'resolve', code: 'forbidden_address' });
    expect(steps.slice(2).every((s) => s.status === 'skipped')).toBe(true);
    expect((await syncFailure(db, src, ctx())).code).toBe('forbidden_address');
    expect(attempts).toEqual([]);
  });

  it.each([
    ['redis://metadata-v6.sluice.test:6379/0', { stream: 'events' }],
    ['redis://[::ffff:169.254.169.254]:6379/0', { stream: 'events' }],
    ['nats://metadata.sluice.test:4222', { stream: 'EVENTS', subject: 'events.>' }],
  ])('stream source %s: refused at resolve, no connect', async (url, metadata) => {
    const stream = new StreamConnector();
    const src = source('stream', url, metadata);
    expect(failedStep(await stream.test(src, ctx()))).toMatchObject({
      name: 'resolve',
      code: 'forbidden_address',
    });
    await expect(drain(stream, src, undefined, ctx())).rejects.toMatchObject({ code: 'forbidden_address' });
    expect(attempts).toEqual([]);
  });
});
