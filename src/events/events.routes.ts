import type { PassThrough } from 'node:stream';
import { PassThrough as Pass } from 'node:stream';
import Router from '@koa/router';
import { duplicateRedis, type RedisClient } from '../redis/redis-client';
import { principalOf } from '../auth/auth.middleware';
import { ServiceUnavailableError, TooManyRequestsError, ValidationError } from '../http/errors';
import { queryValidator } from '../http/validation';
import type { Logger } from '../logger';
import { toEvent, type SluiceEvent } from './event-bus';

export const eventsQuerySchema = {
  $id: 'EventStreamQuery',
  type: 'object',
  additionalProperties: false,
  properties: {
    source_id: { type: 'string', format: 'uuid' },
    type: {
      type: 'string',
      pattern: '^[a-z_]+(\\.[a-z_*]+)?(,[a-z_]+(\\.[a-z_*]+)?)*$',
      maxLength: 500,
      description: 'Comma-separated event types; `sync.*` matches a family.',
    },
    last_event_id: { type: 'string', pattern: '^\\d{1,20}-\\d{1,20}$' },
  },
} as const;

const STREAM_ID = /^\d{1,20}-\d{1,20}$/;
const BLOCK_MS = 15_000;
const BATCH = 100;

/**
 * How long a client may leave a full buffer unread before its stream is closed: it reconnects
 * with Last-Event-ID and gets the events it had not read (as long as the stream still holds them).
 */
const SLOW_CLIENT_MS = 30_000;

export interface EventsRoutesDeps {
  redis: RedisClient;
  key: string;
  logger: Logger;
  /** Streams open at once in this process. */
  maxClients: number;
  /** Streams one key may hold at once (so one key cannot take every slot); default maxClients. */
  maxClientsPerKey?: number;
  /** Default SLOW_CLIENT_MS. */
  slowClientMs?: number;
}

/** The newest entry's id, or 0-0 for an empty stream (then every entry is new). */
async function latestId(redis: RedisClient, key: string): Promise<string> {
  const [newest] = await redis.xrevrange(key, '+', '-', 'COUNT', 1);
  return newest?.[0] ?? '0-0';
}

function matcher(types?: string): (e: SluiceEvent) => boolean {
  if (!types) return () => true;
  const wanted = types.split(',');
  return (e) => wanted.some((t) => (t.endsWith('.*') ? e.type.startsWith(t.slice(0, -1)) : e.type === t));
}

/**
 * GET /events: Server-Sent Events from the Redis stream. Each client reads with its own blocking
 * connection (XREAD BLOCK) from Last-Event-ID, or from now; a comment line every block keeps
 * proxies from closing an idle stream. Clients are capped, each holds one Redis connection.
 */
export function eventsRoutes(deps: EventsRoutesDeps): Router {
  const router = new Router();
  const validate = queryValidator<{ source_id?: string; type?: string; last_event_id?: string }>(
    eventsQuerySchema,
  );
  let clients = 0;
  /** Open streams per key (principal name); entries leave at zero, so it holds only live keys. */
  const perKey = new Map<string, number>();
  const maxPerKey = deps.maxClientsPerKey ?? deps.maxClients;

  router.get('/events', async (ctx) => {
    const query = validate(ctx.query);
    const header = ctx.get('last-event-id');
    if (header && !STREAM_ID.test(header))
      throw new ValidationError([{ pointer: 'Last-Event-ID', in: 'query', message: 'is not an event id' }]);
    // Requests reach here authenticated; without a principal (a router mounted alone) all share one slot set.
    const holder = principalOf(ctx.state)?.name ?? '';
    if ((perKey.get(holder) ?? 0) >= maxPerKey)
      throw new TooManyRequestsError(
        `This key already holds ${maxPerKey} open event streams (the limit per key); close one or reuse it.`,
        5,
      );
    if (clients >= deps.maxClients)
      throw new ServiceUnavailableError(
        `All ${deps.maxClients} event stream slots of this server are taken; retry later.`,
      );
    if (deps.redis.status !== 'ready')
      throw new ServiceUnavailableError('The event stream (Redis) is unavailable.');
    // The slot is taken before the first await: concurrent requests must not all pass the checks above.
    clients += 1;
    perKey.set(holder, (perKey.get(holder) ?? 0) + 1);
    let open = true;
    const release = () => {
      clients -= 1;
      const held = (perKey.get(holder) ?? 1) - 1;
      if (held > 0) perKey.set(holder, held);
      else perKey.delete(holder);
    };

    const wants = matcher(query.type);
    // "From now" is pinned to the newest id before the response starts. Reading from '$' instead
    // would mean "after whatever is newest when the reader's first XREAD reaches Redis", and the
    // reader connects after the client already holds the open stream: events it caused meanwhile
    // (a POST right after connecting) were lost.
    let cursor = header || query.last_event_id;
    try {
      cursor ||= await latestId(deps.redis, deps.key);
    } catch (err) {
      open = false;
      release();
      throw err;
    }
    // Named so an operator (and the tests) can tell stream readers apart in CLIENT LIST.
    const reader = duplicateRedis(deps.redis, {
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      connectionName: `events-reader:${deps.key}`,
    });
    reader.on('error', (err) => deps.logger.debug({ err: err.message }, 'event reader error'));
    const stream: PassThrough = new Pass();
    const stop = () => {
      if (!open) return;
      open = false;
      release();
      reader.disconnect();
      stream.end();
    };
    ctx.req.on('close', stop);
    // Backpressure: once the client's buffer is full, read nothing more from Redis until it has
    // taken it (a slow client costs a bounded buffer, not everything published meanwhile), and
    // close a stream left unread for slowClientMs.
    const drained = () =>
      new Promise<void>((resolve) => {
        if (!stream.writableNeedDrain) return resolve();
        const done = () => {
          clearTimeout(timer);
          stream.off('drain', done);
          stream.off('close', done);
          resolve();
        };
        const timer = setTimeout(() => {
          deps.logger.info({ lastEventId: cursor }, 'event stream client too slow; closed');
          stop();
          // What it has not read would otherwise keep the connection open for ever.
          ctx.res.destroy();
          done();
        }, deps.slowClientMs ?? SLOW_CLIENT_MS);
        stream.once('drain', done);
        stream.once('close', done);
      });

    ctx.request.socket.setTimeout(0);
    ctx.status = 200;
    ctx.set({
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    ctx.body = stream;
    stream.write(': connected\n\n');

    void (async () => {
      while (open) {
        try {
          const result = (await reader.xread(
            'COUNT',
            BATCH,
            'BLOCK',
            BLOCK_MS,
            'STREAMS',
            deps.key,
            cursor,
          )) as [string, [string, string[]][]][] | null;
          if (!open) break;
          if (!result) {
            stream.write(': keep-alive\n\n');
            continue;
          }
          for (const [id, fields] of result[0]?.[1] ?? []) {
            cursor = id;
            const event = toEvent(id, fields);
            if (query.source_id && event.source_id !== query.source_id) continue;
            if (!wants(event)) continue;
            stream.write(`id: ${id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
          }
          await drained();
        } catch (err) {
          if (!open) break;
          deps.logger.warn({ err: (err as Error).message }, 'event stream read failed');
          stream.write(
            `event: error\ndata: ${JSON.stringify({ message: 'event stream interrupted; reconnect with Last-Event-ID' })}\n\n`,
          );
          stop();
        }
      }
    })();
  });

  return router;
}
