import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  RetentionPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ConnectorSource, SyncBatch, TestStep } from '../../src/connectors/connector';
import { PermanentSyncError } from '../../src/connectors/connector';
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
  startPrivateNats,
  type PrivateServer,
} from './support/stream-peers';
import { provenanceOf } from './support/http-source';

const NATS = 'nats://127.0.0.1:4222';
const base = `sluice_test_${uniqueSuffix()}`;
let streamSeq = 0;
const connector = new StreamConnector();

function source(metadata: Record<string, unknown>, connection_string = NATS): ConnectorSource {
  return {
    id: '00000000-0000-4000-8000-000000000002',
    name: 'jetstream under test',
    source_type: 'stream',
    connection_string,
    metadata,
    schema_definition: null,
  };
}

const byName = (steps: TestStep[]) => Object.fromEntries(steps.map((s) => [s.name, s]));
const numbers = (batches: SyncBatch[]) => recordsOf(batches).map((r) => (r as { n: number }).n);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('stream connector on NATS JetStream', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let js: JetStreamClient;
  let stream: string;
  const created: string[] = [];

  /** Publishes {n} messages numbered from `from` on `<stream>.<suffix>`, each acknowledged by JetStream. */
  async function publish(count: number, from = 0, suffix = 'orders'): Promise<void> {
    for (let i = from; i < from + count; i++)
      await js.publish(`${stream}.${suffix}`, JSON.stringify({ n: i }));
  }

  beforeAll(async () => {
    nc = await connect({ servers: '127.0.0.1:4222' });
    jsm = await jetstreamManager(nc);
    js = jetstream(nc);
  });
  beforeEach(async () => {
    stream = `${base}_${++streamSeq}`;
    created.push(stream);
    await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
  });
  afterAll(async () => {
    for (const name of created) await jsm.streams.delete(name).catch(() => undefined);
    await nc?.close();
  });

  it('test passes every step against a real stream and reads a sample', async () => {
    await publish(5);
    const steps = await connector.test(source({ stream }), connectorContext());
    expect(steps.map((s) => [s.name, s.status])).toEqual([
      ['configuration', 'passed'],
      ['resolve', 'passed'],
      ['connect', 'passed'],
      ['authenticate', 'passed'],
      ['stream', 'passed'],
      ['read_sample', 'passed'],
    ]);
    expect(byName(steps).stream?.message).toContain('5 messages');
    expect(byName(steps).read_sample?.message).toContain('read 3 of 5 messages from seq 1; fields: n');
    // Testing moves nothing and leaves no consumer behind.
    const info = await jsm.streams.info(stream);
    expect(info.state.messages).toBe(5);
    expect(info.state.consumer_count).toBe(0);
  });

  it('an empty stream (or subject) is a warning, not a failure', async () => {
    const steps = byName(await connector.test(source({ stream }), connectorContext()));
    expect(steps.read_sample).toMatchObject({ status: 'warning' });
    await publish(2);
    const filtered = byName(
      await connector.test(source({ stream, subject: `${stream}.other` }), connectorContext()),
    );
    expect(filtered.read_sample).toMatchObject({ status: 'warning' });
  });

  it('a missing stream fails the stream step with not_found', async () => {
    const steps = byName(await connector.test(source({ stream: `${stream}_nope` }), connectorContext()));
    expect(steps.stream).toMatchObject({ status: 'failed', code: 'not_found' });
    expect(steps.read_sample).toMatchObject({ status: 'skipped' });
    const sync = drain(connector.sync(source({ stream: `${stream}_nope` }), undefined, connectorContext()));
    await expect(sync).rejects.toBeInstanceOf(PermanentSyncError);
    await expect(sync).rejects.toMatchObject({ code: 'not_found' });
  });

  it('a work-queue stream is refused (reading would take messages from its workers); interest is a warning', async () => {
    const queue = `${stream}_wq`;
    const interest = `${stream}_int`;
    created.push(queue, interest);
    await jsm.streams.add({ name: queue, subjects: [`${queue}.>`], retention: RetentionPolicy.Workqueue });
    await jsm.streams.add({
      name: interest,
      subjects: [`${interest}.>`],
      retention: RetentionPolicy.Interest,
    });
    await js.publish(`${queue}.job`, JSON.stringify({ n: 1 }));
    const refused = byName(await connector.test(source({ stream: queue }), connectorContext()));
    expect(refused.stream).toMatchObject({ status: 'failed', code: 'invalid_config' });
    const sync = drain(connector.sync(source({ stream: queue }), undefined, connectorContext()));
    await expect(sync).rejects.toMatchObject({ code: 'invalid_config' });
    expect((await jsm.streams.info(queue)).state.messages).toBe(1);
    const warned = byName(await connector.test(source({ stream: interest }), connectorContext()));
    expect(warned.stream).toMatchObject({ status: 'warning' });
  });

  it('a port with nothing listening fails connect with refused', async () => {
    const port = await freePort();
    const steps = await connector.test(source({ stream }, `nats://127.0.0.1:${port}`), connectorContext());
    expect(byName(steps).connect).toMatchObject({ status: 'failed', code: 'refused' });
    expect(steps.slice(3).map((s) => s.status)).toEqual(['skipped', 'skipped', 'skipped']);
  });

  it('a black-holed host fails connect with timeout within the step timeout', async () => {
    const hole = await startBlackHole();
    try {
      const timeoutMs = 600;
      const started = Date.now();
      const url = `nats://127.0.0.1:${hole.port}`;
      const steps = byName(await connector.test(source({ stream }, url), connectorContext(timeoutMs)));
      const elapsed = Date.now() - started;
      // The TCP handshake succeeds; the server greeting never comes.
      expect(steps.connect).toMatchObject({ status: 'failed', code: 'timeout' });
      expect(steps.connect?.duration_ms).toBeGreaterThanOrEqual(timeoutMs - 50);
      console.log(`black hole: test returned after ${elapsed} ms (timeout ${timeoutMs} ms)`);
      expect(elapsed).toBeLessThan(timeoutMs * 8);
      await expect(
        drain(connector.sync(source({ stream }, url), undefined, connectorContext(timeoutMs))),
      ).rejects.toMatchObject({
        code: 'timeout',
      });
    } finally {
      await hole.close();
    }
  });

  it('a sync lands every message payload, in bounded batches, with the last sequence as state', async () => {
    await publish(10);
    const batches = await drain(connector.sync(source({ stream, batch: 4 }), undefined, connectorContext()));
    expect(batches.map((b) => b.records.length)).toEqual([4, 4, 2]);
    expect(recordsOf(batches)[0]).toEqual({ n: 0 });
    expect(numbers(batches)).toEqual(range(0, 10));
    expect(batches.map((b) => b.state)).toEqual([{ last_seq: 4 }, { last_seq: 8 }, { last_seq: 10 }]);
    // Nothing on the server remembers the read: no consumer left, every message still there.
    const info = await jsm.streams.info(stream);
    expect(info.state).toMatchObject({ messages: 10, consumer_count: 0 });
  });

  it('a pull is landed in pieces under BATCH_MAX_BYTES, each with the sequence of its own last message', async () => {
    for (let i = 0; i < 30; i++)
      await js.publish(`${stream}.orders`, JSON.stringify({ n: i, pad: 'p'.repeat(1000) }));
    const small = new StreamConnector(4 * 1024);
    const batches = await drain(small.sync(source({ stream, batch: 100 }), undefined, connectorContext()));
    expect(numbers(batches)).toEqual(range(0, 30));
    for (const b of batches) expect(JSON.stringify(b.records).length).toBeLessThanOrEqual(4 * 1024 + 100);
    expect(batches.length).toBeGreaterThanOrEqual(7);
    let seen = 0;
    for (const b of batches) {
      seen += b.records.length;
      expect(b.state).toEqual({ last_seq: seen });
    }
  });

  it('each message carries its provenance: the stream, its subject and its sequence', async () => {
    await publish(2);
    await publish(1, 2, 'refunds');
    const batches = await drain(connector.sync(source({ stream, batch: 2 }), undefined, connectorContext()));
    expect(provenanceOf(batches)).toEqual([
      { stream, subject: `${stream}.orders`, seq: 1 },
      { stream, subject: `${stream}.orders`, seq: 2 },
      { stream, subject: `${stream}.refunds`, seq: 3 },
    ]);
  });

  it('STREAM_MAX_RUN_RECORDS ends a run at its bound with the state advanced; the next run goes on', async () => {
    await publish(10);
    const bounded = new StreamConnector(undefined, 4);
    const first = await drain(bounded.sync(source({ stream, batch: 3 }), undefined, connectorContext()));
    expect(numbers(first)).toEqual(range(0, 6));
    const second = await drain(
      bounded.sync(source({ stream, batch: 3 }), lastState(first), connectorContext()),
    );
    expect(numbers(second)).toEqual(range(6, 10));
  });

  it('a second sync lands only the messages published since; a third finds nothing', async () => {
    await publish(6);
    const first = await drain(connector.sync(source({ stream }), undefined, connectorContext()));
    expect(numbers(first)).toEqual(range(0, 6));
    await publish(3, 6);
    const second = await drain(connector.sync(source({ stream }), lastState(first), connectorContext()));
    expect(numbers(second)).toEqual([6, 7, 8]);
    const third = await drain(connector.sync(source({ stream }), lastState(second), connectorContext()));
    expect(third).toEqual([]);
  });

  it('a crash after a landed batch resumes at the next one: no loss, no duplicate', async () => {
    await publish(10);
    const meta = { stream, batch: 3 };
    const run = connector.sync(source(meta), undefined, connectorContext())[Symbol.asyncIterator]();
    const landed = (await run.next()).value as SyncBatch;
    await run.return?.(undefined);
    expect(landed.state).toEqual({ last_seq: 3 });
    const retry = await drain(connector.sync(source(meta), landed.state, connectorContext()));
    expect([...numbers([landed]), ...numbers(retry)]).toEqual(range(0, 10));
    expect((await jsm.streams.info(stream)).state.consumer_count).toBe(0);
  });

  it('a subject filter lands only matching messages, and resumes past the others', async () => {
    for (let i = 0; i < 8; i++)
      await js.publish(`${stream}.${i % 2 ? 'odd' : 'even'}`, JSON.stringify({ n: i }));
    const meta = { stream, subject: `${stream}.odd`, batch: 3 };
    const first = await drain(connector.sync(source(meta), undefined, connectorContext()));
    expect(numbers(first)).toEqual([1, 3, 5, 7]);
    expect(lastState(first)).toEqual({ last_seq: 8 });
    await js.publish(`${stream}.even`, JSON.stringify({ n: 8 }));
    await js.publish(`${stream}.odd`, JSON.stringify({ n: 9 }));
    const second = await drain(connector.sync(source(meta), lastState(first), connectorContext()));
    expect(numbers(second)).toEqual([9]);
  });

  it('a payload that is not a JSON object lands as {data: text}', async () => {
    await js.publish(`${stream}.raw`, 'plain text');
    await js.publish(`${stream}.raw`, '[1,2]');
    await js.publish(`${stream}.raw`, JSON.stringify({ ok: true }));
    const records = recordsOf(await drain(connector.sync(source({ stream }), undefined, connectorContext())));
    expect(records).toEqual([{ data: 'plain text' }, { data: '[1,2]' }, { ok: true }]);
  });

  it('a sync drains what was there when it started and ends, even while messages keep arriving', async () => {
    await publish(5);
    const meta = { stream, batch: 2 };
    const seen: SyncBatch[] = [];
    for await (const batch of connector.sync(source(meta), undefined, connectorContext())) {
      seen.push(batch);
      if (seen.length === 1) await publish(3, 5);
    }
    expect(numbers(seen)).toEqual(range(0, 5));
    const next = await drain(connector.sync(source(meta), lastState(seen), connectorContext()));
    expect(numbers(next)).toEqual([5, 6, 7]);
  });

  it("start 'latest' skips what is there at the first sync and lands what comes after", async () => {
    await publish(4);
    const meta = { stream, start: 'latest' };
    const first = await drain(connector.sync(source(meta), undefined, connectorContext()));
    expect(recordsOf(first)).toEqual([]);
    expect(lastState(first)).toEqual({ last_seq: 4 });
    await publish(2, 4);
    const second = await drain(connector.sync(source(meta), lastState(first), connectorContext()));
    expect(numbers(second)).toEqual([4, 5]);
  });

  it('a stored sequence past the end (the stream was recreated) reads the new stream from its start', async () => {
    await publish(3);
    const batches = await drain(connector.sync(source({ stream }), { last_seq: 500 }, connectorContext()));
    expect(numbers(batches)).toEqual([0, 1, 2]);
  });

  it('a cancelled sync stops promptly', async () => {
    await publish(30);
    const abort = new AbortController();
    const seen: SyncBatch[] = [];
    const run = (async () => {
      const ctx = connectorContext(5000, abort.signal);
      for await (const batch of connector.sync(source({ stream, batch: 10 }), undefined, ctx)) {
        seen.push(batch);
        abort.abort();
      }
    })();
    await expect(run).rejects.toThrow();
    expect(seen).toHaveLength(1);
  });

  it('streams 100k messages with flat memory', async () => {
    const total = 100_000;
    const filler = 'x'.repeat(400);
    // Core publishes (no per-message ack) are captured by the stream; wait until all are stored.
    for (let i = 0; i < total; i++) {
      nc.publish(`${stream}.bulk`, JSON.stringify({ n: i, filler }));
      if (i % 5000 === 4999) await nc.flush();
    }
    await nc.flush();
    for (let tries = 0; (await jsm.streams.info(stream)).state.messages < total; tries++) {
      if (tries > 200) throw new Error('the stream did not store every message');
      await new Promise((r) => setTimeout(r, 50));
    }
    collectGarbage();
    const before = process.memoryUsage().heapUsed;
    let peak = before;
    let count = 0;
    let bytes = 0;
    let expected = 0;
    let ordered = true;
    const started = Date.now();
    for await (const batch of connector.sync(source({ stream }), undefined, connectorContext())) {
      expect(batch.records.length).toBeLessThanOrEqual(1000);
      for (const r of batch.records) {
        ordered &&= (r as { n: number }).n === expected++;
        bytes += JSON.stringify(r).length;
      }
      count += batch.records.length;
      if (count % 10_000 === 0) {
        collectGarbage();
        peak = Math.max(peak, process.memoryUsage().heapUsed);
      }
    }
    const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
    console.log(
      `nats 100k: ${count} records, ${mb(bytes)} MB of payload in ${Date.now() - started} ms; ` +
        `retained heap delta peak ${mb(peak - before)} MB`,
    );
    expect(count).toBe(total);
    expect(ordered).toBe(true);
    expect(peak - before).toBeLessThan(bytes / 4);
  }, 120_000);

  describe('with credentials (a private nats-server)', () => {
    const USER = 'loader';
    const PASS = 'Jet-Secret-Pw';
    let server: PrivateServer;
    beforeAll(async () => {
      server = await startPrivateNats(USER, PASS);
    });
    afterAll(() => server?.close());

    it('a wrong password fails authenticate with auth, and no message shows it', async () => {
      const wrong = 'Wr0ng-Jet-Pw';
      const url = `nats://${USER}:${wrong}@127.0.0.1:${server.port}`;
      const steps = await connector.test(source({ stream }, url), connectorContext());
      expect(byName(steps).connect).toMatchObject({ status: 'passed' });
      expect(byName(steps).authenticate).toMatchObject({ status: 'failed', code: 'auth' });
      expect(JSON.stringify(steps)).not.toContain(wrong);
      const token = byName(
        await connector.test(
          source({ stream }, `nats://${wrong}@127.0.0.1:${server.port}`),
          connectorContext(),
        ),
      );
      expect(token.authenticate).toMatchObject({ status: 'failed', code: 'auth' });
      const denied = drain(connector.sync(source({ stream }, url), undefined, connectorContext()));
      await expect(denied).rejects.toMatchObject({ code: 'auth' });
      await expect(denied).rejects.toBeInstanceOf(PermanentSyncError);
    });

    it('the right credentials pass authenticate and sync a stream there', async () => {
      const url = `nats://${USER}:${PASS}@127.0.0.1:${server.port}`;
      const own = await connect({ servers: `127.0.0.1:${server.port}`, user: USER, pass: PASS });
      try {
        const ownJsm = await jetstreamManager(own);
        await ownJsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
        const ownJs = jetstream(own);
        for (let i = 0; i < 3; i++) await ownJs.publish(`${stream}.x`, JSON.stringify({ n: i }));
        const steps = await connector.test(source({ stream }, url), connectorContext());
        expect(steps.every((s) => s.status === 'passed')).toBe(true);
        expect(byName(steps).authenticate?.message).toContain(`logged in as ${USER}`);
        expect(JSON.stringify(steps)).not.toContain(PASS);
        const batches = await drain(connector.sync(source({ stream }, url), undefined, connectorContext()));
        expect(numbers(batches)).toEqual([0, 1, 2]);
      } finally {
        await own.close();
      }
    });
  });
});
