import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/events/event-bus';
import { eventsRoutes } from '../../src/events/events.routes';
import { createLogger } from '../../src/logger';
import { TEST_REDIS_URL, uniqueSuffix } from '../helpers/test-env';
import { until } from '../helpers/until';

const SLOW_CLIENT_MS = 3000;
/** About 2 KB an event: 3,000 of them are far more than the socket and stream buffers hold. */
const PAYLOAD = 'x'.repeat(2000);

/**
 * GET /events with a client that stops reading: the server stops reading the Redis stream for it
 * (its buffer stays bounded), and closes it after SLOW_CLIENT_MS; a reading client gets everything.
 */
describe('event stream backpressure', () => {
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  const prefix = `sluice_test_events_bp_${uniqueSuffix()}`;
  const logger = createLogger('silent');
  const bus = new EventBus(redis, prefix, 100_000, logger);
  let server: ReturnType<Koa['listen']>;
  let port = 0;

  beforeAll(async () => {
    await redis.ping();
    const app = new Koa();
    app.silent = true; // the stream cut off on purpose ends in a 'Premature close'
    const router = eventsRoutes({ redis, key: bus.key, logger, maxClients: 1, slowClientMs: SLOW_CLIENT_MS });
    app.use(router.routes());
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await redis.del(bus.key);
    redis.disconnect();
  });

  /** A client that sends the request, reads the response head, then stops reading (a paused socket). */
  const stalledClient = () =>
    new Promise<Socket>((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1' });
      socket.once('error', reject);
      socket.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
      socket.once('data', (head) => {
        socket.pause();
        if (String(head).startsWith('HTTP/1.1 200 ')) resolve(socket);
        else reject(new Error(`GET /events answered ${String(head).split('\r\n')[0]}`));
      });
    });

  /** The stream reader's connection in CLIENT LIST: whether it is blocked in XREAD, and for how long it has been idle. */
  const reader = async () => {
    const line = ((await redis.client('LIST')) as string)
      .split('\n')
      .find((l) => l.includes(` name=events-reader:${bus.key} `));
    return line
      ? { blocked: / flags=\S*b/.test(line), idle: Number(/ idle=(\d+)/.exec(line)?.[1]) }
      : undefined;
  };

  it('stops reading Redis for a client that does not read, then closes it; the slot is freed', async () => {
    const socket = await stalledClient();
    const published = 3000;
    // The slow-client clock starts when the server finds the client's buffer full, somewhere in the
    // flood (never before it): on a loaded machine the flood itself can take longer than
    // SLOW_CLIENT_MS, so every bound is taken from its start, and nothing waits a fixed time.
    const floodStartedAt = performance.now();
    await Promise.all(
      Array.from({ length: published }, (_, i) => bus.publish('sync.repaired', { data: { i, PAYLOAD } })),
    );
    // Paused on the client's full buffer: not waiting in XREAD, with events left unread.
    const paused = await until(reader, (r) => r === undefined || !r.blocked);
    expect(paused, 'closed before it was seen paused: the flood outlasted SLOW_CLIENT_MS').toMatchObject({
      blocked: false,
    });
    // Closed once left unread for SLOW_CLIENT_MS: its reader connection is let go.
    await until(reader, (r) => r === undefined, SLOW_CLIENT_MS + 30_000, 100);
    expect(performance.now() - floodStartedAt).toBeGreaterThanOrEqual(SLOW_CLIENT_MS);
    socket.destroy();

    // maxClients is 1: the slot is free again, and a reading client gets new events.
    const controller = new AbortController();
    const res = await fetch(`http://127.0.0.1:${port}/events`, { signal: controller.signal });
    expect(res.status).toBe(200);
    const id = await bus.publish('sync.repaired', { data: { last: true } });
    const decoder = new TextDecoder();
    let text = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true });
      if (text.includes(`id: ${id}`)) break;
    }
    controller.abort();
    expect(text).toContain(`id: ${id}`);
  }, 120_000);
});
