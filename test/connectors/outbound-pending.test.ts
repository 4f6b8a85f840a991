import { createLogger } from '../../src/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiConnector } from '../../src/connectors/api/api.connector';
import { StreamConnector } from '../../src/connectors/stream/stream.connector';
import type { ConnectorContext } from '../../src/connectors/connector';
import { Outbound, OutboundBusyError } from '../../src/connectors/outbound';
import {
  drain,
  recordsOf,
  sendJson,
  source,
  startBlackHole,
  startHttpServer,
  type TestServer,
} from './support/http-source';

/** A connector context with a 1 s timeout on `outbound`. */
const ctx = (outbound: Outbound): ConnectorContext => ({
  signal: new AbortController().signal,
  logger: createLogger('silent'),
  outbound,
  timeoutMs: 1000,
});

/**
 * The per-destination cap on attempts waiting for a first answer (OUTBOUND_MAX_PENDING, `make chaos`
 * case 8): a black-holed destination cannot hold every worker slot for a whole timeout each.
 */
describe('Outbound.claim: attempts pending on a destination', () => {
  it('caps a destination that has not answered, per address and port; 0 means no cap', async () => {
    const outbound = new Outbound(undefined, undefined, 2);
    const a = await outbound.claim('10.0.0.1', 80);
    await outbound.claim('10.0.0.1', 80);
    const started = performance.now();
    await expect(outbound.claim('10.0.0.1', 80)).rejects.toBeInstanceOf(OutboundBusyError);
    // It waited only briefly for a slot, not a timeout.
    expect(performance.now() - started).toBeLessThan(1000);
    // Another port, another destination.
    await outbound.claim('10.0.0.1', 443);
    // A slot freed while waiting admits the waiter.
    const waiting = outbound.claim('10.0.0.1', 80);
    a(false);
    await expect(waiting).resolves.toBeTypeOf('function');

    const open = new Outbound(undefined, undefined, 0);
    for (let i = 0; i < 50; i += 1) await open.claim('10.0.0.1', 80);
  });

  it('does not cap a destination that answers, until it stops answering', async () => {
    const outbound = new Outbound(undefined, undefined, 1);
    (await outbound.claim('10.0.0.2', 5432))(true);
    const held = await Promise.all(Array.from({ length: 5 }, () => outbound.claim('10.0.0.2', 5432)));
    expect(held).toHaveLength(5);
    held[0]!(false); // an attempt timed out: capped again
    await expect(outbound.claim('10.0.0.2', 5432)).rejects.toThrow(/already waiting for an answer/);
  });
});

describe('api connector syncs with a black-holed source and a healthy one', () => {
  let healthy: TestServer;
  let hole: { port: number; close(): Promise<void> };
  const connector = new ApiConnector({ http: { retry: { retries: 0 } } });

  beforeAll(async () => {
    healthy = await startHttpServer((_req, res) => sendJson(res, [{ n: 1 }, { n: 2 }]));
    hole = await startBlackHole();
  });
  afterAll(async () => {
    await healthy.close();
    await hole.close();
  });

  it('gives up on the black hole within its timeout, fails the excess fast, and keeps the healthy one fast', async () => {
    const outbound = new Outbound(undefined, undefined, 2);
    const timed = async (url: string) => {
      const started = performance.now();
      try {
        const batches = await drain(connector, source('api', url), undefined, ctx(outbound));
        return { ok: true, ms: performance.now() - started, records: recordsOf(batches).length, error: '' };
      } catch (err) {
        return { ok: false, ms: performance.now() - started, records: 0, error: (err as Error).message };
      }
    };
    // The cap spares a destination once it has answered (see 'does not cap a destination that
    // answers'): one sync first, or ten first contacts at once race the cap on a loaded machine,
    // where none has had its answer before the third connects.
    expect((await timed(`${healthy.url}/items`)).ok).toBe(true);
    const holes = Array.from({ length: 6 }, () => timed(`http://127.0.0.1:${hole.port}/items`));
    // Ten healthy syncs at once: the healthy destination is not held back by the cap.
    const fine = await Promise.all(Array.from({ length: 10 }, () => timed(`${healthy.url}/items`)));
    expect(
      fine.every((r) => r.ok && r.records === 2),
      JSON.stringify(fine),
    ).toBe(true);
    expect(Math.max(...fine.map((r) => r.ms))).toBeLessThan(900);
    const results = await Promise.all(holes);
    const timedOut = results.filter((r) => !r.ok && !/already waiting/.test(r.error));
    const busy = results.filter((r) => /already waiting/.test(r.error));
    expect(timedOut).toHaveLength(2);
    expect(busy).toHaveLength(4);
    for (const r of timedOut) expect(r.ms).toBeLessThan(2500);
    for (const r of busy) expect(r.ms).toBeLessThan(500);
  });
});

describe('stream connectors (Redis, NATS) against a black-holed server', () => {
  let hole: { port: number; close(): Promise<void> };
  const connector = new StreamConnector();

  beforeAll(async () => {
    hole = await startBlackHole();
  });
  afterAll(() => hole.close());

  it.each([
    ['redis', (port: number) => `redis://127.0.0.1:${port}/0`],
    ['nats', (port: number) => `nats://127.0.0.1:${port}`],
  ])(
    '%s: the attempts beyond the cap fail fast, the others give up within the timeout',
    async (_kind, url) => {
      const outbound = new Outbound(undefined, undefined, 2);
      const timed = async (run: () => Promise<unknown>) => {
        const started = performance.now();
        const error = await run().then(
          () => '',
          (err: unknown) => (err as Error).message,
        );
        return { ms: performance.now() - started, error };
      };
      const target = source('stream', url(hole.port), { stream: 'events' });
      const results = await Promise.all([
        ...Array.from({ length: 3 }, () => timed(() => drain(connector, target, undefined, ctx(outbound)))),
        // A test of the same host counts against the same cap.
        timed(async () => {
          const steps = await connector.test(target, ctx(outbound));
          const failed = steps.find((s) => s.status === 'failed');
          if (failed) throw new Error(failed.message);
        }),
      ]);
      const busy = results.filter((r) => /already waiting/.test(r.error));
      const timedOut = results.filter((r) => r.error && !/already waiting/.test(r.error));
      expect(busy, JSON.stringify(results)).toHaveLength(2);
      expect(timedOut, JSON.stringify(results)).toHaveLength(2);
      for (const r of busy) expect(r.ms).toBeLessThan(500);
      for (const r of timedOut) expect(r.ms).toBeLessThan(3500);
    },
  );
});
