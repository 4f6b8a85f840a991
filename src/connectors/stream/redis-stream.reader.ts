import { DEFAULT_BYTE_LIMITS, splitByBytes } from '../kit/byte-limits';
import { isIP } from 'node:net';
import { Redis } from 'ioredis';
import type { ConnectorContext, SyncBatch } from '../connector';
import { UNANSWERED, type ReleasePending, type ResolvedTarget } from '../outbound';
import { abortError, withDeadline } from '../kit/deadline';
import type { StepRunner } from '../kit/step-runner';
import { classifyError, hostPort, isOwnError, SourceFailure, toConnectorError } from '../kit/classify-error';
import { DEFAULT_MAX_RUN_RECORDS, type RedisSettings } from './stream-settings';

/** Incremental state of a Redis stream source: the id of the last entry landed. */
export interface RedisStreamState {
  last_id: string;
}

const STREAM_ID = /^(\d+)-(\d+)$/;
const SAMPLE_SIZE = 3;

/** Redis Streams: test steps and the incremental read (XRANGE from the stored id, exclusive). */
export class RedisStreamReader {
  /** ioredis reports a socket's real failure (ECONNREFUSED, WRONGPASS) as an event, then rejects vaguely. */
  private lastError?: Error;

  constructor(
    private readonly settings: RedisSettings,
    private readonly ctx: ConnectorContext,
    /** A read is landed in pieces of about this many bytes (BATCH_MAX_BYTES), each with its own state. */
    private readonly batchMaxBytes = DEFAULT_BYTE_LIMITS.batchMaxBytes,
    /** STREAM_MAX_RUN_RECORDS: a run ends (successfully, state advanced) once it landed this many. */
    private readonly maxRunRecords = DEFAULT_MAX_RUN_RECORDS,
  ) {}

  async test(steps: StepRunner, target: ResolvedTarget): Promise<void> {
    const { settings, ctx } = this;
    const redis = this.client(target);
    // Pending from before connecting until PING answers (see Outbound.claim): a silent server
    // cannot hold more than its share of attempts for a whole timeout each.
    let release: ReleasePending | undefined;
    const settle = (err?: unknown) => {
      release?.(err === undefined || !UNANSWERED.has(classifyError(err)));
      release = undefined;
    };
    try {
      const connected = await steps.run('connect', async () => {
        release = await ctx.outbound.claim(target.address, settings.port);
        await this.connect(redis).catch((err: unknown) => {
          settle(err);
          return Promise.reject(err);
        });
        return {
          value: true,
          message: `connected to ${target.address}:${settings.port}${settings.tls ? ' over TLS' : ''}`,
        };
      });
      if (!connected) return;
      const authed = await steps.run('authenticate', async () => {
        await this.authenticate(redis).then(
          () => settle(),
          (err: unknown) => {
            settle(this.explain(err));
            return Promise.reject(this.explain(err));
          },
        );
        const how = settings.password
          ? `logged in${settings.username ? ` as ${settings.username}` : ''}`
          : 'no credentials';
        return { value: true, message: `${how}; PING answered; database ${settings.db}` };
      });
      if (!authed) return;
      const info = await steps.run('stream', async () => {
        const found = await this.info(redis).catch((err: unknown) => Promise.reject(this.explain(err)));
        return {
          value: found,
          message: `stream "${settings.stream}" holds ${found.length} entries (last id ${found.lastId})`,
        };
      });
      if (!info) return;
      await steps.run('read_sample', async () => {
        const entries = await redis.xrange(settings.stream, '-', '+', 'COUNT', SAMPLE_SIZE);
        if (!entries.length)
          return { value: true, message: 'the stream is empty: nothing to sample', status: 'warning' };
        const fields = [...new Set(entries.flatMap(([, f]) => f.filter((_, i) => i % 2 === 0)))];
        return {
          value: true,
          message: `read ${entries.length} entries from ${entries[0]?.[0]}; fields: ${fields.slice(0, 20).join(', ')}`,
        };
      });
    } finally {
      settle(new Error('no answer'));
      redis.disconnect();
    }
  }

  async *sync(state: unknown, target: ResolvedTarget): AsyncGenerator<SyncBatch> {
    const { settings, ctx } = this;
    const redis = this.client(target);
    const step = <T>(work: Promise<T>, what: string) =>
      withDeadline(work, ctx.timeoutMs, what, { signal: ctx.signal });
    try {
      try {
        // Pending until PING answers (see test()).
        await ctx.outbound.pending(
          target.address,
          settings.port,
          async () => {
            await step(this.connect(redis), 'connect');
            await step(this.authenticate(redis), 'authenticate');
          },
          (err) => classifyError(this.explain(err)),
        );
      } catch (err) {
        throw toConnectorError(
          this.explain(err),
          'connect',
          settings.secrets,
          hostPort(target.address, settings.port),
        );
      }
      let info: StreamInfo;
      try {
        info = await step(this.info(redis), 'stream');
      } catch (err) {
        throw toConnectorError(
          this.explain(err),
          `stream "${settings.stream}"`,
          settings.secrets,
          hostPort(target.address, settings.port),
        );
      }
      let after = readState(state)?.last_id;
      if (after === undefined && settings.start === 'latest') {
        // First sync from the end: remember where the stream is, land nothing.
        yield { records: [], state: { last_id: info.lastId } satisfies RedisStreamState };
        return;
      }
      if (after !== undefined && compareIds(after, info.lastId) > 0)
        ctx.logger.warn(
          { stream: settings.stream, stored: after, last: info.lastId },
          'stored stream offset is past the stream end (was the stream recreated?); waiting for newer ids',
        );
      // Drain what is there now, up to the last id at sync start, then end: new entries wait for the next
      // sync. A backlog beyond maxRunRecords waits too: each run is bounded, the next one goes on.
      let landed = 0;
      for (;;) {
        if (landed >= this.maxRunRecords) {
          ctx.logger.info(
            { stream: settings.stream, records: landed, max_run_records: this.maxRunRecords, last_id: after },
            'stream source: per-run record bound reached; the rest is read by the next sync',
          );
          return;
        }
        if (ctx.signal.aborted) throw abortError(ctx.signal);
        const from = after === undefined ? '-' : nextId(after);
        if (after !== undefined && compareIds(after, info.lastId) >= 0) return;
        let entries: [string, string[]][];
        try {
          entries = await step(
            redis.xrange(settings.stream, from, info.lastId, 'COUNT', settings.batch),
            `read after ${after ?? 'the start'}`,
          );
        } catch (err) {
          throw toConnectorError(
            this.explain(err),
            `read stream "${settings.stream}"`,
            settings.secrets,
            hostPort(target.address, settings.port),
          );
        }
        const last = entries[entries.length - 1];
        if (!last) return;
        after = last[0];
        landed += entries.length;
        for (const piece of splitByBytes(entries, settings.batch, this.batchMaxBytes, entryBytes))
          yield {
            records: piece.map(([, fields]) => fieldMap(fields)),
            state: { last_id: piece[piece.length - 1]![0] } satisfies RedisStreamState,
            provenance: { stream: settings.stream },
            recordProvenance: { entry_id: piece.map(([id]) => id) },
          };
        if (entries.length < settings.batch) return;
      }
    } finally {
      redis.disconnect();
    }
  }

  /** One connection to the resolved address, never reconnecting (a retry is the sync's business). */
  private client(target: ResolvedTarget): Redis {
    const { settings, ctx } = this;
    const redis = new Redis({
      host: target.address,
      port: settings.port,
      family: target.family,
      // Credentials and database are sent by authenticate(), so connecting and logging in are separate steps.
      lazyConnect: true,
      protocol: 2,
      enableReadyCheck: false,
      // CLIENT SETINFO would be a handshake command, and the connect step must not wait for an answer.
      disableClientInfo: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: ctx.timeoutMs,
      tls: settings.tls ? (isIP(target.host) ? {} : { servername: target.host }) : undefined,
    });
    // Without a listener ioredis would print these; they surface through explain() instead.
    redis.on('error', (err: Error) => {
      this.lastError = err;
    });
    return redis;
  }

  private async connect(redis: Redis): Promise<void> {
    try {
      await redis.connect();
    } catch (err) {
      throw this.explain(err);
    }
  }

  /**
   * "Connection is closed." says nothing: the socket's own error (refused, reset, TLS) does. A
   * peer that is not a Redis server is named as such, without its bytes.
   */
  private explain(err: unknown): unknown {
    const vague = /Connection is closed/i.test(String((err as Error)?.message ?? ''));
    const real = vague && this.lastError ? this.lastError : err;
    // The parser's message quotes the peer's first byte: said in our words instead.
    return !isOwnError(real) && classifyError(real) === 'protocol'
      ? new SourceFailure('the peer did not answer as a Redis server', 'protocol')
      : real;
  }

  private async authenticate(redis: Redis): Promise<void> {
    const { username, password, db } = this.settings;
    if (password) {
      if (username) await redis.auth(username, password);
      else await redis.auth(password);
    }
    // Without credentials, a server that wants them answers NOAUTH here: an auth failure.
    await redis.ping();
    if (db) await redis.select(db);
  }

  private async info(redis: Redis): Promise<StreamInfo> {
    const reply = (await redis.xinfo('STREAM', this.settings.stream)) as unknown[];
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), reply[i + 1]);
    const lastId = String(fields.get('last-generated-id') ?? '');
    if (!STREAM_ID.test(lastId)) throw new SourceFailure('unexpected XINFO STREAM reply', 'protocol');
    return { length: Number(fields.get('length') ?? 0), lastId };
  }
}

interface StreamInfo {
  length: number;
  lastId: string;
}

function readState(state: unknown): RedisStreamState | undefined {
  const id = (state as { last_id?: unknown } | null | undefined)?.last_id;
  return typeof id === 'string' && STREAM_ID.test(id) ? { last_id: id } : undefined;
}

/** A stream entry's field map; Object.fromEntries keeps a field named __proto__ as plain data. */
function fieldMap(flat: string[]): Record<string, string> {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) pairs.push([flat[i] ?? '', flat[i + 1] ?? '']);
  return Object.fromEntries(pairs);
}

function parseId(id: string): [bigint, bigint] {
  const m = STREAM_ID.exec(id);
  if (!m?.[1] || !m[2]) throw new SourceFailure(`not a stream id: ${id}`, 'invalid_config');
  return [BigInt(m[1]), BigInt(m[2])];
}

const MAX_SEQ = 2n ** 64n - 1n;

/** The smallest id after `id` (an exclusive start that works before Redis 6.2's "(" syntax). */
export function nextId(id: string): string {
  const [ms, seq] = parseId(id);
  return seq === MAX_SEQ ? `${ms + 1n}-0` : `${ms}-${seq + 1n}`;
}

export function compareIds(a: string, b: string): number {
  const [am, as] = parseId(a);
  const [bm, bs] = parseId(b);
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

/** About the JSON bytes of one entry: its field names and values. */
function entryBytes([, fields]: [string, string[]]): number {
  let n = 2;
  for (const f of fields) n += f.length + 3;
  return n;
}
