import { Ajv } from 'ajv';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ConnectorSource, SyncBatch, TestStep } from '../../src/connectors/connector';
import { PermanentSyncError } from '../../src/connectors/connector';
import { Outbound, OutboundRefusedError } from '../../src/connectors/outbound';
import { StreamConnector } from '../../src/connectors/stream/stream.connector';
import { uniqueSuffix } from '../helpers/test-env';
import {
  collectGarbage,
  connectorContext,
  drain,
  freePort,
  lastState,
  recordsOf,
  startBlackHole,
  startPrivateRedis,
  type PrivateServer,
} from './support/stream-peers';
import { provenanceOf } from './support/http-source';

const REDIS = 'redis://127.0.0.1:6379/0';
const prefix = `sluice:test:stream:${uniqueSuffix()}`;
let keySeq = 0;
const connector = new StreamConnector();
const redis = new Redis({ host: '127.0.0.1', port: 6379, db: 0, lazyConnect: true });

function source(metadata: Record<string, unknown>, connection_string = REDIS): ConnectorSource {
  return {
    id: '00000000-0000-4000-8000-000000000001',
    name: 'stream under test',
    source_type: 'stream',
    connection_string,
    metadata,
    schema_definition: null,
  };
}

/** Appends entries {n, name} numbered from `from`, in one pipeline. */
async function add(key: string, count: number, from = 0, client: Redis = redis): Promise<void> {
  const pipe = client.pipeline();
  for (let i = from; i < from + count; i++) pipe.xadd(key, '*', 'n', String(i), 'name', `item-${i}`);
  await pipe.exec();
}

const byName = (steps: TestStep[]) => Object.fromEntries(steps.map((s) => [s.name, s]));
const numbers = (batches: SyncBatch[]) => recordsOf(batches).map((r) => Number((r as { n: string }).n));
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('stream connector on Redis Streams', () => {
  let key: string;
  beforeAll(() => redis.connect());
  beforeEach(() => {
    key = `${prefix}:${++keySeq}`;
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('test passes every step against a real stream and reads a sample', async () => {
    await add(key, 5);
    const steps = await connector.test(source({ stream: key }), connectorContext());
    expect(steps.map((s) => [s.name, s.status])).toEqual([
      ['configuration', 'passed'],
      ['resolve', 'passed'],
      ['connect', 'passed'],
      ['authenticate', 'passed'],
      ['stream', 'passed'],
      ['read_sample', 'passed'],
    ]);
    expect(byName(steps).stream?.message).toContain('5 entries');
    expect(byName(steps).read_sample?.message).toContain('fields: n, name');
    for (const s of steps) expect(s.duration_ms).toBeGreaterThanOrEqual(0);
    // Testing reads nothing away: the stream is untouched.
    expect(await redis.xlen(key)).toBe(5);
  });

  it('an empty stream is a warning, not a failure', async () => {
    await redis.xgroup('CREATE', key, 'g', '$', 'MKSTREAM');
    const steps = byName(await connector.test(source({ stream: key }), connectorContext()));
    expect(steps.read_sample).toMatchObject({ status: 'warning' });
  });

  it('a missing stream fails the stream step with not_found; a key of another type is invalid_config', async () => {
    const missing = byName(await connector.test(source({ stream: `${key}:nope` }), connectorContext()));
    expect(missing.stream).toMatchObject({ status: 'failed', code: 'not_found' });
    expect(missing.read_sample).toMatchObject({ status: 'skipped' });
    await redis.set(key, 'not a stream');
    const wrongType = byName(await connector.test(source({ stream: key }), connectorContext()));
    expect(wrongType.stream).toMatchObject({ status: 'failed', code: 'invalid_config' });
  });

  it('a port with nothing listening fails connect with refused; the rest is skipped', async () => {
    const port = await freePort();
    const steps = await connector.test(
      source({ stream: key }, `redis://127.0.0.1:${port}/0`),
      connectorContext(),
    );
    expect(byName(steps).connect).toMatchObject({ status: 'failed', code: 'refused' });
    expect(steps.slice(3).map((s) => s.status)).toEqual(['skipped', 'skipped', 'skipped']);
  });

  it('an address the outbound policy refuses fails resolve, and the sync, as forbidden_address', async () => {
    const refuseAll = new Outbound({
      check: (address) => {
        throw new OutboundRefusedError(address);
      },
    });
    const ctx = { ...connectorContext(), outbound: refuseAll };
    const steps = byName(await connector.test(source({ stream: key }), ctx));
    expect(steps.resolve).toMatchObject({ status: 'failed', code: 'forbidden_address' });
    expect(steps.connect).toMatchObject({ status: 'skipped' });
    await expect(drain(connector.sync(source({ stream: key }), undefined, ctx))).rejects.toMatchObject({
      code: 'forbidden_address',
    });
  });

  it('a black-holed host fails with timeout within the step timeout', async () => {
    const hole = await startBlackHole();
    try {
      const timeoutMs = 600;
      const started = Date.now();
      const steps = byName(
        await connector.test(
          source({ stream: key }, `redis://127.0.0.1:${hole.port}/0`),
          connectorContext(timeoutMs),
        ),
      );
      const elapsed = Date.now() - started;
      // The TCP handshake succeeds; the first command never gets an answer.
      expect(steps.connect).toMatchObject({ status: 'passed' });
      expect(steps.authenticate).toMatchObject({ status: 'failed', code: 'timeout' });
      expect(steps.authenticate?.duration_ms).toBeGreaterThanOrEqual(timeoutMs - 50);
      console.log(`black hole: test returned after ${elapsed} ms (timeout ${timeoutMs} ms)`);
      // Bounded: one step timeout, not the 10 s default or forever (generous for a loaded machine).
      expect(elapsed).toBeLessThan(timeoutMs * 8);
      // A sync against it fails the same way instead of hanging.
      await expect(
        drain(
          connector.sync(
            source({ stream: key }, `redis://127.0.0.1:${hole.port}/0`),
            undefined,
            connectorContext(timeoutMs),
          ),
        ),
      ).rejects.toMatchObject({ code: 'timeout' });
    } finally {
      await hole.close();
    }
  });

  it('a sync lands every entry as its field map, in bounded batches, with the last id as state', async () => {
    await add(key, 10);
    const batches = await drain(
      connector.sync(source({ stream: key, batch: 4 }), undefined, connectorContext()),
    );
    expect(batches.map((b) => b.records.length)).toEqual([4, 4, 2]);
    expect(recordsOf(batches)[0]).toEqual({ n: '0', name: 'item-0' });
    expect(numbers(batches)).toEqual(range(0, 10));
    const [lastId] = (await redis.xrevrange(key, '+', '-', 'COUNT', 1))[0] ?? [];
    expect(lastState(batches)).toEqual({ last_id: lastId });
  });

  it('a read is landed in pieces under BATCH_MAX_BYTES, each with the id of its own last entry', async () => {
    const pipe = redis.pipeline();
    for (let i = 0; i < 40; i++) pipe.xadd(key, '*', 'n', String(i), 'pad', 'p'.repeat(1000));
    await pipe.exec();
    const small = new StreamConnector(4 * 1024);
    const batches = await drain(
      small.sync(source({ stream: key, batch: 100 }), undefined, connectorContext()),
    );
    expect(numbers(batches)).toEqual(range(0, 40));
    for (const b of batches) expect(JSON.stringify(b.records).length).toBeLessThanOrEqual(4 * 1024);
    expect(batches.length).toBeGreaterThanOrEqual(10);
    // Each piece's state is its own last entry: landing it alone resumes right after it.
    const ids = (await redis.xrange(key, '-', '+')).map(([id]) => id);
    let seen = 0;
    for (const b of batches) {
      seen += b.records.length;
      expect(b.state).toEqual({ last_id: ids[seen - 1] });
    }
  });

  it('STREAM_MAX_RUN_RECORDS ends a run at its bound with the state advanced; the next run goes on', async () => {
    await add(key, 10);
    const bounded = new StreamConnector(undefined, 4);
    const meta = { stream: key, batch: 3 };
    const first = await drain(bounded.sync(source(meta), undefined, connectorContext()));
    expect(numbers(first)).toEqual(range(0, 6));
    const second = await drain(bounded.sync(source(meta), lastState(first), connectorContext()));
    expect(numbers(second)).toEqual(range(6, 10));
  });

  it('a second sync lands only the entries added since; a third finds nothing', async () => {
    await add(key, 6);
    const first = await drain(connector.sync(source({ stream: key }), undefined, connectorContext()));
    expect(numbers(first)).toEqual(range(0, 6));
    await add(key, 3, 6);
    const second = await drain(connector.sync(source({ stream: key }), lastState(first), connectorContext()));
    expect(numbers(second)).toEqual([6, 7, 8]);
    const third = await drain(connector.sync(source({ stream: key }), lastState(second), connectorContext()));
    expect(third).toEqual([]);
  });

  it('each entry carries its provenance: the stream key and its entry id', async () => {
    await add(key, 5);
    const batches = await drain(
      connector.sync(source({ stream: key, batch: 2 }), undefined, connectorContext()),
    );
    const ids = (await redis.xrange(key, '-', '+')).map(([id]) => id);
    expect(provenanceOf(batches)).toEqual(ids.map((id) => ({ stream: key, entry_id: id })));
  });

  it('a crash after a landed batch resumes at the next one: no loss, no duplicate', async () => {
    await add(key, 10);
    const meta = { stream: key, batch: 3 };
    // The first batch lands with its state, then the worker dies (the iteration stops).
    const run = connector.sync(source(meta), undefined, connectorContext())[Symbol.asyncIterator]();
    const landed = (await run.next()).value as SyncBatch;
    await run.return?.(undefined);
    const retry = await drain(connector.sync(source(meta), landed.state, connectorContext()));
    const all = [...numbers([landed]), ...numbers(retry)];
    expect(all).toEqual(range(0, 10));
  });

  it('a sync drains what was there when it started and ends, even while entries keep arriving', async () => {
    await add(key, 5);
    const meta = { stream: key, batch: 2 };
    const seen: SyncBatch[] = [];
    for await (const batch of connector.sync(source(meta), undefined, connectorContext())) {
      seen.push(batch);
      if (seen.length === 1) await add(key, 3, 5);
    }
    expect(numbers(seen)).toEqual(range(0, 5));
    const next = await drain(connector.sync(source(meta), lastState(seen), connectorContext()));
    expect(numbers(next)).toEqual([5, 6, 7]);
  });

  it("start 'latest' skips what is there at the first sync and lands what comes after", async () => {
    await add(key, 4);
    const meta = { stream: key, start: 'latest' };
    const first = await drain(connector.sync(source(meta), undefined, connectorContext()));
    expect(recordsOf(first)).toEqual([]);
    expect(lastState(first)).toMatchObject({ last_id: expect.stringMatching(/^\d+-\d+$/) });
    await add(key, 2, 4);
    const second = await drain(connector.sync(source(meta), lastState(first), connectorContext()));
    expect(numbers(second)).toEqual([4, 5]);
  });

  it('a cancelled sync stops promptly', async () => {
    await add(key, 50);
    const abort = new AbortController();
    const seen: SyncBatch[] = [];
    const run = (async () => {
      for await (const batch of connector.sync(
        source({ stream: key, batch: 10 }),
        undefined,
        connectorContext(5000, abort.signal),
      )) {
        seen.push(batch);
        abort.abort();
      }
    })();
    await expect(run).rejects.toThrow();
    expect(seen).toHaveLength(1);
  });

  it('a field named __proto__ stays data', async () => {
    await redis.xadd(key, '*', '__proto__', 'x', 'a', '1');
    const [record] = recordsOf(
      await drain(connector.sync(source({ stream: key }), undefined, connectorContext())),
    );
    expect(JSON.parse(JSON.stringify(record))).toEqual({ ['__proto__']: 'x', a: '1' });
    expect(Object.getPrototypeOf(record)).toBe(Object.prototype);
  });

  it('streams 100k entries with flat memory', async () => {
    const total = 100_000;
    const filler = 'x'.repeat(400);
    for (let from = 0; from < total; from += 10_000) {
      const pipe = redis.pipeline();
      for (let i = from; i < from + 10_000; i++) pipe.xadd(key, '*', 'n', String(i), 'filler', filler);
      await pipe.exec();
    }
    collectGarbage();
    const before = process.memoryUsage().heapUsed;
    let peak = before;
    let count = 0;
    let bytes = 0;
    let expected = 0;
    let ordered = true;
    const started = Date.now();
    for await (const batch of connector.sync(source({ stream: key }), undefined, connectorContext())) {
      expect(batch.records.length).toBeLessThanOrEqual(1000);
      for (const r of batch.records) {
        ordered &&= Number((r as { n: string }).n) === expected++;
        bytes += JSON.stringify(r).length;
      }
      count += batch.records.length;
      // What the sync holds between two batches, garbage excluded.
      if (count % 10_000 === 0) {
        collectGarbage();
        peak = Math.max(peak, process.memoryUsage().heapUsed);
      }
    }
    const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
    console.log(
      `redis 100k: ${count} records, ${mb(bytes)} MB of payload in ${Date.now() - started} ms; ` +
        `retained heap delta peak ${mb(peak - before)} MB`,
    );
    expect(count).toBe(total);
    expect(ordered).toBe(true);
    // Holding every record would retain more than the payload itself (~42 MB); a stream holds one batch.
    expect(peak - before).toBeLessThan(bytes / 4);
    await redis.del(key);
  }, 120_000);

  describe('with a password (a private redis-server)', () => {
    const PASSWORD = 'Str3am-Secret-Pw';
    let server: PrivateServer;
    let privateRedis: Redis;
    beforeAll(async () => {
      server = await startPrivateRedis(PASSWORD);
      privateRedis = new Redis({ host: '127.0.0.1', port: server.port, password: PASSWORD, db: 3 });
    });
    afterAll(async () => {
      privateRedis?.disconnect();
      await server?.close();
    });

    it('a wrong password fails authenticate with auth, and no message shows it', async () => {
      const wrong = 'Wr0ng-Secret-Pw';
      const steps = await connector.test(
        source({ stream: key }, `redis://:${wrong}@127.0.0.1:${server.port}/3`),
        connectorContext(),
      );
      expect(byName(steps).authenticate).toMatchObject({ status: 'failed', code: 'auth' });
      expect(JSON.stringify(steps)).not.toContain(wrong);
      const none = byName(
        await connector.test(
          source({ stream: key }, `redis://127.0.0.1:${server.port}/3`),
          connectorContext(),
        ),
      );
      expect(none.authenticate).toMatchObject({ status: 'failed', code: 'auth' });
      const sync = drain(
        connector.sync(
          source({ stream: key }, `redis://:${wrong}@127.0.0.1:${server.port}/3`),
          undefined,
          connectorContext(),
        ),
      );
      await expect(sync).rejects.toBeInstanceOf(PermanentSyncError);
      await expect(sync).rejects.toMatchObject({ code: 'auth' });
      await expect(sync).rejects.not.toThrow(wrong);
    });

    it('the right password passes and a sync reads the stream in the chosen database', async () => {
      await add(key, 3, 0, privateRedis);
      const url = `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${server.port}/3`;
      const steps = await connector.test(source({ stream: key }, url), connectorContext());
      expect(steps.every((s) => s.status === 'passed')).toBe(true);
      expect(JSON.stringify(steps)).not.toContain(PASSWORD);
      const batches = await drain(
        connector.sync(source({ stream: key }, url), undefined, connectorContext()),
      );
      expect(numbers(batches)).toEqual([0, 1, 2]);
    });
  });

  describe('settings', () => {
    it('checks the connection string without repeating it', () => {
      expect(connector.checkConnectionString('redis://:pw@127.0.0.1:6379/0')).toBeUndefined();
      expect(connector.checkConnectionString('rediss://u:pw@cache.example:6380/2')).toBeUndefined();
      expect(connector.checkConnectionString('nats://tok@127.0.0.1:4222')).toBeUndefined();
      for (const bad of [
        'http://:Hidden-Pw@127.0.0.1',
        'redis://:Hidden-Pw@127.0.0.1:6379/0?host=10.0.0.1',
        'redis://:Hidden-Pw@127.0.0.1:6379/zero',
        'nats://:Hidden-Pw@127.0.0.1:4222/stream',
        'not a url Hidden-Pw',
      ]) {
        const problem = connector.checkConnectionString(bad);
        expect(problem, bad).toBeTypeOf('string');
        expect(problem).not.toContain('Hidden-Pw');
      }
    });

    it('the metadata schema requires a stream and bounds the batch', () => {
      const validate = new Ajv({ strict: false }).compile(connector.metadataSchema);
      expect(validate({ stream: 'orders', batch: 500, start: 'latest', owner: 'team-a' })).toBe(true);
      expect(validate({})).toBe(false);
      expect(validate({ stream: 'orders', batch: 0 })).toBe(false);
      expect(validate({ stream: 'orders', batch: 100_000 })).toBe(false);
      expect(validate({ stream: 'orders', start: 'middle' })).toBe(false);
    });

    it('a bad setting is a failed configuration step in test and a permanent error in sync', async () => {
      const steps = await connector.test(source({}), connectorContext());
      expect(steps[0]).toMatchObject({ name: 'configuration', status: 'failed', code: 'invalid_config' });
      expect(steps.slice(1).every((s) => s.status === 'skipped')).toBe(true);
      await expect(
        drain(connector.sync(source({ stream: key, subject: 'x' }), undefined, connectorContext())),
      ).rejects.toMatchObject({ code: 'invalid_config' });
    });
  });
});
