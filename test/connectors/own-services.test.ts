import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorContext, ConnectorSource, TestStep } from '../../src/connectors/connector';
import { DatabaseConnector } from '../../src/connectors/database/database.connector';
import { Outbound, OutboundRefusedError, type Resolver } from '../../src/connectors/outbound';
import { AddressPolicy } from '../../src/connectors/outbound-policy';
import { OwnServices, ownService, type AllAddressesResolver } from '../../src/connectors/own-services';
import { StreamConnector } from '../../src/connectors/stream/stream.connector';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { ADMIN_DATABASE_URL, TEST_REDIS_URL } from '../helpers/test-env';
import { startRecordingPostgres, type PgLogin, type RecordingPeer } from './support/recording-peers';

// Issue 13 row 4: Sluice's own database and Redis are never a source, whatever OUTBOUND_ALLOW says;
// private ranges follow OUTBOUND_PRIVATE; test steps never repeat the bytes a peer sent.
// Every private-address decision below goes through the policy with injected resolvers: nothing
// here connects anywhere but loopback.

const DB = "Sluice's own database";
const REDIS = "Sluice's own Redis";

/** The worker's composition, as workers/worker-container.ts builds it, for the shared test services. */
function workerPolicy(options: { private?: 'allow' | 'deny' } = {}): AddressPolicy {
  return new AddressPolicy(['127.0.0.0/8', '::1/128'], [], {
    ...options,
    own: new OwnServices([ownService(DB, ADMIN_DATABASE_URL, 5432), ownService(REDIS, TEST_REDIS_URL, 6379)]),
  });
}

const ctx = (policy: AddressPolicy, resolver?: Resolver): ConnectorContext => ({
  signal: new AbortController().signal,
  logger: createLogger('silent'),
  outbound: new Outbound(policy, resolver),
  timeoutMs: 3000,
});

const source = (source_type: string, connection_string: string, metadata: Record<string, unknown>) =>
  ({
    id: '00000000-0000-4000-8000-000000000001',
    name: 'own-services',
    source_type,
    connection_string,
    metadata,
    schema_definition: null,
  }) satisfies ConnectorSource;

const failed = (steps: TestStep[]) => steps.find((s) => s.status === 'failed');

describe('Sluice’s own database and Redis are never a source (loopback, real services)', () => {
  let peer: RecordingPeer<PgLogin>;
  beforeAll(async () => {
    peer = await startRecordingPostgres();
  });
  afterAll(() => peer.close());

  it('the test database URL is on 127.0.0.1:5432 (what the cases below assume)', () => {
    expect(new URL(ADMIN_DATABASE_URL).hostname).toBe('127.0.0.1');
    expect(new URL(ADMIN_DATABASE_URL).port || '5432').toBe('5432');
  });

  it.each([
    'postgres://postgres@127.0.0.1:5432/postgres',
    'postgres://postgres@localhost/postgres',
    'postgres://postgres@127.0.0.2:5432/postgres',
    'postgres://postgres@[::1]:5432/postgres',
    'postgres://postgres@[::ffff:127.0.0.1]:5432/postgres',
  ])('a database source at %s is refused even with OUTBOUND_ALLOW=127.0.0.0/8', async (url) => {
    const steps = await new DatabaseConnector().test(
      source('database', url, { table: 't' }),
      ctx(workerPolicy()),
    );
    expect(failed(steps)).toMatchObject({ name: 'resolve', code: 'forbidden_address' });
    expect(steps.find((s) => s.name === 'connect')?.status).toBe('skipped');
  });

  it('sync refuses it too, before connecting', async () => {
    const own = source('database', 'postgres://postgres@127.0.0.1/postgres', { table: 't' });
    const batches = new DatabaseConnector().sync(own, undefined, ctx(workerPolicy()));
    await expect(batches[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'forbidden_address' });
  });

  it('another loopback port is allowed (the recording Postgres answers)', async () => {
    const before = peer.seen.length;
    const url = `postgres://reader:pw@127.0.0.1:${peer.port}/db?sslmode=disable`;
    const steps = await new DatabaseConnector().test(
      source('database', url, { table: 't' }),
      ctx(workerPolicy()),
    );
    expect(steps.find((s) => s.name === 'resolve')?.status).toBe('passed');
    expect(failed(steps)).toMatchObject({ name: 'authenticate', code: 'auth' });
    expect(peer.seen.length).toBe(before + 1);
  });

  it.each(['redis://127.0.0.1:6379/0', 'redis://localhost:6379/1'])(
    'a stream source at %s (Sluice’s own Redis) is refused',
    async (url) => {
      const steps = await new StreamConnector().test(
        source('stream', url, { stream: 'bull:sync:events' }),
        ctx(workerPolicy()),
      );
      expect(failed(steps)).toMatchObject({ name: 'resolve', code: 'forbidden_address' });
      expect(failed(steps)?.message).toContain(REDIS);
    },
  );
});

describe('own services behind names and private addresses (injected resolvers, no connections)', () => {
  // The shipped compose file: DATABASE_URL names "postgres", REDIS_URL "redis" on a private network.
  const names: Record<string, string[]> = {
    postgres: ['172.18.0.2'],
    redis: ['172.18.0.3', 'fd00:18::3'],
  };
  const resolveAll: AllAddressesResolver = (host) =>
    names[host] ? Promise.resolve(names[host]) : Promise.reject(new Error(`unknown ${host}`));
  const sourceResolver: Resolver = (host) => {
    const found = names[host]?.[0];
    return found
      ? Promise.resolve({ address: found, family: found.includes(':') ? 6 : 4 })
      : Promise.reject(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }));
  };
  const composePolicy = (options: { private?: 'allow' | 'deny'; localAddresses?: string[] } = {}) =>
    new AddressPolicy([], [], {
      private: options.private,
      own: new OwnServices(
        [
          ownService(DB, 'postgres://postgres:x@postgres:5432/sluice', 5432),
          ownService(REDIS, 'redis://redis:6379/0', 6379),
        ],
        { resolveAll, localAddresses: () => options.localAddresses ?? ['172.18.0.9'] },
      ),
    });

  it('postgres:5432 and redis:6379 are refused by name and by address; other ports of those hosts are not', async () => {
    const policy = composePolicy();
    const outbound = new Outbound(policy, sourceResolver);
    await expect(outbound.resolve('postgres', 'service', 1000, 5432)).rejects.toThrow(
      /port 5432 there is Sluice's own database, never a source/,
    );
    await expect(outbound.resolve('172.18.0.2', 'service', 1000, 5432)).rejects.toBeInstanceOf(
      OutboundRefusedError,
    );
    await expect(outbound.resolve('redis', 'service', 1000, 6379)).rejects.toThrow(/Sluice's own Redis/);
    await expect(outbound.resolve('[fd00:18::3]', 'service', 1000, 6379)).rejects.toThrow(
      /Sluice's own Redis/,
    );
    await expect(outbound.resolve('[::ffff:172.18.0.3]', 'service', 1000, 6379)).rejects.toThrow(
      /Sluice's own Redis/,
    );
    // An api source cannot reach them either (with OUTBOUND_ALLOW opening the private range).
    const open = new AddressPolicy(['172.16.0.0/12'], [], {
      own: new OwnServices([ownService(REDIS, 'redis://redis:6379/0', 6379)], { resolveAll }),
    });
    await expect(new Outbound(open, sourceResolver).resolve('redis', 'http', 1000, 6379)).rejects.toThrow(
      /Sluice's own Redis/,
    );
    await expect(
      new Outbound(open, sourceResolver).resolve('redis', 'http', 1000, 80),
    ).resolves.toMatchObject({
      address: '172.18.0.3',
    });
    await expect(outbound.resolve('postgres', 'service', 1000, 5433)).resolves.toMatchObject({
      address: '172.18.0.2',
    });
    expect(policy.decide('172.18.0.4', 'service', 5432).allowed).toBe(true);
  });

  it('a service on this machine is refused at every loopback and local interface address on its port', async () => {
    const own = new OwnServices([ownService(DB, 'postgres://postgres@10.1.2.3:5432/sluice', 5432)], {
      localAddresses: () => ['127.0.0.1', '10.1.2.3', 'fe80::1'],
    });
    const policy = new AddressPolicy(['127.0.0.0/8', '::1/128', '10.0.0.0/8'], [], { own });
    await policy.prepare(1000);
    for (const address of ['10.1.2.3', '127.0.0.1', '127.0.0.53', '::1', '::ffff:127.0.0.1'])
      expect(policy.decide(address, 'service', 5432), address).toMatchObject({ allowed: false });
    expect(policy.decide('10.1.2.4', 'service', 5432).allowed).toBe(true);
    expect(policy.decide('127.0.0.1', 'service', 5433).allowed).toBe(true);
  });

  it('a DATABASE_URL on a socket path protects this machine’s port 5432', async () => {
    const own = new OwnServices([ownService(DB, 'postgres:///sluice?host=/var/run/postgresql', 5432)], {
      localAddresses: () => [],
    });
    const policy = new AddressPolicy(['127.0.0.0/8'], [], { own });
    await policy.prepare(1000);
    expect(policy.decide('127.0.0.1', 'service', 5432).allowed).toBe(false);
  });

  it('names are looked up again after the TTL; a failed lookup keeps the addresses known before', async () => {
    let answer: string[] | undefined = ['10.9.0.1'];
    let lookups = 0;
    const own = new OwnServices([ownService(DB, 'postgres://db.internal:5432/sluice', 5432)], {
      resolveAll: () => {
        lookups++;
        return answer ? Promise.resolve(answer) : Promise.reject(new Error('SERVFAIL'));
      },
      localAddresses: () => [],
      ttlMs: 0,
    });
    const policy = new AddressPolicy([], [], { own });
    await policy.prepare(1000);
    expect(policy.decide('10.9.0.1', 'service', 5432).allowed).toBe(false);
    answer = ['10.9.0.2'];
    await policy.prepare(1000);
    expect(policy.decide('10.9.0.1', 'service', 5432).allowed).toBe(true);
    expect(policy.decide('10.9.0.2', 'service', 5432).allowed).toBe(false);
    answer = undefined;
    await policy.prepare(1000);
    expect(policy.decide('10.9.0.2', 'service', 5432).allowed).toBe(false);
    expect(lookups).toBe(3);
  });

  it('OUTBOUND_PRIVATE: allow (default) lets database and stream sources reach private ranges; deny refuses them', () => {
    const allow = composePolicy();
    const deny = composePolicy({ private: 'deny' });
    for (const address of ['10.0.0.5', '172.16.4.4', '192.168.1.10', '100.64.0.1', 'fd12::1', 'fc00::1']) {
      expect(allow.decide(address, 'service', 5432), address).toMatchObject({ allowed: true });
      expect(allow.decide(address, 'http', 443), address).toMatchObject({ allowed: false });
      const refused = deny.decide(address, 'service', 5432);
      expect(refused.allowed, address).toBe(false);
      expect(refused.reason).toMatch(/unless OUTBOUND_ALLOW covers it \(OUTBOUND_PRIVATE=deny\)/);
    }
    const listed = new AddressPolicy(['10.20.0.0/16'], [], { private: 'deny' });
    expect(listed.decide('10.20.3.4', 'service', 5432).allowed).toBe(true);
    expect(listed.decide('10.21.3.4', 'service', 5432).allowed).toBe(false);
    // Public addresses are not affected.
    expect(deny.decide('93.184.216.34', 'service', 5432).allowed).toBe(true);
  });

  it('config: OUTBOUND_PRIVATE is allow by default in every environment, and checked', () => {
    const base = {
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/sluice',
      REDIS_URL: 'redis://127.0.0.1:6379/0',
      ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
    };
    for (const NODE_ENV of ['development', 'test'])
      expect(loadConfig({ ...base, NODE_ENV }).outboundPrivate).toBe('allow');
    expect(loadConfig({ ...base, NODE_ENV: 'test', OUTBOUND_PRIVATE: 'deny' }).outboundPrivate).toBe('deny');
    expect(() => loadConfig({ ...base, NODE_ENV: 'test', OUTBOUND_PRIVATE: 'maybe' })).toThrow(
      /OUTBOUND_PRIVATE must be allow or deny/,
    );
  });
});

describe('test steps never repeat what a peer sent (row 4: no banner grabbing)', () => {
  const BANNERS = [
    'HTTP/1.1 400 Bad Request\r\nServer: internal-admin-7\r\n\r\n',
    'SSH-2.0-OpenSSH_9.0 internal-admin-7\r\n',
    '220 internal-admin-7 ESMTP\r\n',
  ];
  let server: Server;
  let banner = BANNERS[0]!;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
      // Says its piece and hangs up, as most services do to a client that speaks another protocol.
      socket.end(banner);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const port = () => (server.address() as { port: number }).port;
  const open = new AddressPolicy(['127.0.0.0/8']);

  it.each(BANNERS)('Redis: a peer greeting %j is "not a Redis server", code protocol', async (text) => {
    banner = text;
    const steps = await new StreamConnector().test(
      source('stream', `redis://127.0.0.1:${port()}/0`, { stream: 's' }),
      ctx(open),
    );
    const step = failed(steps)!;
    expect(step).toMatchObject({ name: 'authenticate', code: 'protocol' });
    expect(step.message).toBe('the peer did not answer as a Redis server');
    expect(JSON.stringify(steps)).not.toMatch(/RESP type|internal-admin|"H"|HTTP|SSH|ESMTP/);
  });

  it('a one-character stream password does not mangle the messages (row 12)', async () => {
    banner = BANNERS[0]!;
    for (const password of ['e', 'p', 't']) {
      const steps = await new StreamConnector().test(
        source('stream', `redis://:${password}@127.0.0.1:${port()}/0`, { stream: 's' }),
        ctx(open),
      );
      expect(failed(steps)?.message).toBe('the peer did not answer as a Redis server');
      expect(steps.find((s) => s.name === 'configuration')?.message).toContain('Redis stream "s"');
      expect(JSON.stringify(steps)).not.toContain('****');
    }
  });

  it.each(['postgres', 'mysql'])('%s: no step repeats the banner', async (scheme) => {
    for (const text of BANNERS) {
      banner = text;
      const tls = scheme === 'postgres' ? 'sslmode=disable' : 'ssl-mode=DISABLED';
      const steps = await new DatabaseConnector().test(
        source('database', `${scheme}://u:pw@127.0.0.1:${port()}/db?${tls}`, { table: 't' }),
        ctx(open, undefined),
      );
      expect(failed(steps)).toBeDefined();
      expect(JSON.stringify(steps)).not.toMatch(/internal-admin|HTTP\/1|SSH-2|ESMTP|invalid response/);
    }
  });
});
