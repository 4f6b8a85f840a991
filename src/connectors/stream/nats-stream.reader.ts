import { DEFAULT_BYTE_LIMITS, splitByBytes } from '../kit/byte-limits';
import { isIP } from 'node:net';
import { connect, type NatsConnection, type TlsOptions } from '@nats-io/transport-node';
import {
  RetentionPolicy,
  jetstream,
  jetstreamManager,
  type Consumer,
  type JsMsg,
  type StreamInfo,
} from '@nats-io/jetstream';
import type { ConnectorContext, SyncBatch } from '../connector';
import type { ResolvedTarget } from '../outbound';
import { abortError, withDeadline } from '../kit/deadline';
import { probeNats, type NatsServerInfo } from './nats-probe';
import type { StepRunner } from '../kit/step-runner';
import { classifyError, hostPort, SourceFailure, toConnectorError } from '../kit/classify-error';
import { DEFAULT_MAX_RUN_RECORDS, type NatsSettings } from './stream-settings';

/** Incremental state of a JetStream source: the stream sequence of the last message landed. */
export interface NatsStreamState {
  last_seq: number;
}

const SAMPLE_SIZE = 3;
// The client's floor for a pull request's expiry.
const MIN_EXPIRES_MS = 1000;

/**
 * NATS JetStream: test steps and the incremental read. Messages are read with an ordered consumer
 * (ephemeral, no acks, deleted afterwards) from the stored sequence on: nothing on the server
 * records our position, so the state we land with the records is the only source of truth.
 */
export class NatsStreamReader {
  constructor(
    private readonly settings: NatsSettings,
    private readonly ctx: ConnectorContext,
    /** A pull is landed in pieces of about this many bytes (BATCH_MAX_BYTES), each with its own state. */
    private readonly batchMaxBytes = DEFAULT_BYTE_LIMITS.batchMaxBytes,
    /** STREAM_MAX_RUN_RECORDS: a run ends (successfully, state advanced) once it landed this many. */
    private readonly maxRunRecords = DEFAULT_MAX_RUN_RECORDS,
  ) {}

  async test(steps: StepRunner, target: ResolvedTarget): Promise<void> {
    const { settings, ctx } = this;
    let nc: NatsConnection | undefined;
    let opening: Promise<NatsConnection> | undefined;
    try {
      const server = await steps.run('connect', async () => {
        const info = await this.probe(target);
        const notes = [
          info.tlsRequired ? 'TLS required' : '',
          info.jetstream ? '' : 'JetStream not advertised',
        ];
        return {
          value: info,
          message: `NATS server ${info.version} at ${target.address}:${settings.port}${suffix(notes)}`,
        };
      });
      if (!server) return;
      nc = await steps.run('authenticate', async () => {
        opening = this.open(target, server);
        const opened = await opening;
        const how = settings.user
          ? `logged in as ${settings.user}`
          : settings.token
            ? 'token accepted'
            : 'no credentials';
        return {
          value: opened,
          message: `${how}${server.tlsRequired || server.tlsAvailable ? '; over TLS' : ''}`,
        };
      });
      const conn = nc;
      if (!conn) return;
      const info = await steps.run('stream', async () => {
        const jsm = await jetstreamManager(conn, { timeout: ctx.timeoutMs });
        const found = readable(await jsm.streams.info(settings.stream));
        const { messages, first_seq, last_seq } = found.state;
        const interest = found.config.retention === RetentionPolicy.Interest;
        return {
          value: found,
          message:
            `stream "${settings.stream}" holds ${messages} messages (seq ${first_seq}..${last_seq}); ` +
            `subjects: ${found.config.subjects?.join(', ') || '-'}` +
            (interest
              ? '; interest retention: messages every consumer acknowledged are gone before a sync'
              : ''),
          ...(interest && { status: 'warning' as const }),
        };
      });
      if (!info) return;
      await steps.run('read_sample', async () => {
        let sample: JsMsg[] = [];
        let pending = 0;
        for await (const pull of this.pulls(conn, 1, SAMPLE_SIZE, info.state.last_seq)) {
          ({ messages: sample, pending } = pull);
          break;
        }
        if (!sample.length)
          return {
            value: true,
            message: `no message${settings.subject ? ` on "${settings.subject}"` : ''} to sample`,
            status: 'warning',
          };
        const fields = [...new Set(sample.flatMap((m) => Object.keys(decode(m))))];
        return {
          value: true,
          message: `read ${sample.length} of ${pending} messages from seq ${sample[0]?.seq}; fields: ${fields.slice(0, 20).join(', ')}`,
        };
      });
    } finally {
      await close(nc, opening);
    }
  }

  async *sync(state: unknown, target: ResolvedTarget): AsyncGenerator<SyncBatch> {
    const { settings, ctx } = this;
    let nc: NatsConnection | undefined;
    let opening: Promise<NatsConnection> | undefined;
    // Closing the connection is what ends a pull that is waiting on the server.
    const onAbort = () => void nc?.close().catch(() => undefined);
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      try {
        const server = await this.probe(target);
        opening = this.open(target, server);
        nc = await withDeadline(opening, ctx.timeoutMs, 'authenticate', { signal: ctx.signal });
      } catch (err) {
        throw toConnectorError(err, 'connect', settings.secrets, hostPort(target.address, settings.port));
      }
      let info: StreamInfo;
      try {
        const jsm = await jetstreamManager(nc, { timeout: ctx.timeoutMs });
        info = readable(await jsm.streams.info(settings.stream));
      } catch (err) {
        throw toConnectorError(
          err,
          `stream "${settings.stream}"`,
          settings.secrets,
          hostPort(target.address, settings.port),
        );
      }
      const end = info.state.last_seq;
      let last = readState(state)?.last_seq;
      if (last === undefined && settings.start === 'latest') {
        // First sync from the end: remember where the stream is, land nothing.
        yield { records: [], state: { last_seq: end } satisfies NatsStreamState };
        return;
      }
      if (last !== undefined && last > end) {
        // Sequences never go back in a stream that lives on: this one was deleted and created again.
        ctx.logger.warn(
          { stream: settings.stream, stored: last, last: end },
          'stored sequence is past the stream end (stream recreated?); reading it from the start',
        );
        last = 0;
      }
      if ((last ?? 0) >= end) return;
      if (last && last + 1 < info.state.first_seq && info.state.messages > 0)
        // Limits (age, count, size) removed messages before this source read them: say so, then go on.
        ctx.logger.warn(
          { stream: settings.stream, after: last, first: info.state.first_seq },
          'messages were removed from the stream before they were read',
        );
      // Each pull is complete before it is yielded: nothing is in flight while the batch lands.
      let landed = 0;
      try {
        for await (const { messages } of this.pulls(nc, (last ?? 0) + 1, settings.batch, end)) {
          if (ctx.signal.aborted) break;
          landed += messages.length;
          for (const piece of splitByBytes(
            messages,
            settings.batch,
            this.batchMaxBytes,
            (m) => m.data.length,
          )) {
            const tail = piece[piece.length - 1]!;
            yield {
              records: piece.map(decode),
              state: { last_seq: tail.seq } satisfies NatsStreamState,
              provenance: { stream: settings.stream },
              recordProvenance: { subject: piece.map((m) => m.subject), seq: piece.map((m) => m.seq) },
            };
          }
          // A backlog beyond the per-run bound waits for the next sync (it starts from last_seq).
          if (landed >= this.maxRunRecords) {
            ctx.logger.info(
              { stream: settings.stream, records: landed, max_run_records: this.maxRunRecords },
              'stream source: per-run record bound reached; the rest is read by the next sync',
            );
            break;
          }
        }
      } catch (err) {
        if (!ctx.signal.aborted)
          throw toConnectorError(
            err,
            `read stream "${settings.stream}"`,
            settings.secrets,
            hostPort(target.address, settings.port),
          );
      }
      if (ctx.signal.aborted) throw abortError(ctx.signal);
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      await close(nc, opening);
    }
  }

  /**
   * Pulls messages with sequence from `from` up to `end` (those matching the subject filter), `size`
   * at a time, and stops at `end` or when the server says nothing more is pending, so a sync drains
   * what was there when it started and ends. `pending` is the count matching when reading began.
   */
  private async *pulls(
    nc: NatsConnection,
    from: number,
    size: number,
    end: number,
  ): AsyncGenerator<{ messages: JsMsg[]; pending: number }> {
    const { settings, ctx } = this;
    const js = jetstream(nc, { timeout: ctx.timeoutMs });
    const consumer: Consumer = await js.consumers.get(settings.stream, {
      opt_start_seq: from,
      ...(settings.subject ? { filter_subjects: settings.subject } : {}),
    });
    try {
      const pending = (await consumer.info(true)).num_pending;
      let left = pending;
      while (left > 0) {
        const messages: JsMsg[] = [];
        let done = false;
        const pull = await consumer.fetch({
          max_messages: Math.min(size, left),
          expires: Math.max(MIN_EXPIRES_MS, ctx.timeoutMs),
        });
        for await (const m of pull) {
          // Arrived after the sync started: the next sync takes it.
          if (m.seq > end) {
            done = true;
            break;
          }
          messages.push(m);
          if (m.seq >= end || m.info.pending === 0) {
            done = true;
            break;
          }
        }
        if (!messages.length) {
          if (nc.isClosed() && !ctx.signal.aborted)
            throw new SourceFailure('the connection closed during a read', 'unknown');
          // The pending count was stale (messages removed meanwhile): nothing more to read.
          return;
        }
        left -= messages.length;
        yield { messages, pending };
        if (done) return;
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }

  /**
   * The server's INFO, its first answer: read in a pending slot toward it (Outbound.claim), so a
   * black-holed server cannot hold more than its share of attempts for a whole timeout each.
   */
  private probe(target: ResolvedTarget): Promise<NatsServerInfo> {
    const { settings, ctx } = this;
    return ctx.outbound.pending(
      target.address,
      settings.port,
      () => probeNats(target, settings.port, ctx.timeoutMs, ctx.signal),
      classifyError,
    );
  }

  private async open(target: ResolvedTarget, server: NatsServerInfo): Promise<NatsConnection> {
    const { settings, ctx } = this;
    // Connect to the resolved address; for TLS, name the host so SNI and the certificate check use it.
    const tls: (TlsOptions & { servername?: string }) | null =
      server.tlsRequired || server.tlsAvailable
        ? isIP(target.host)
          ? {}
          : { servername: target.host }
        : null;
    const host = target.family === 6 ? `[${target.address}]` : target.address;
    return connect({
      servers: `${host}:${settings.port}`,
      name: 'sluice',
      timeout: ctx.timeoutMs,
      reconnect: false,
      maxReconnectAttempts: 0,
      // Never follow a server's hint to other cluster members: only the resolved address is allowed.
      ignoreClusterUpdates: true,
      noRandomize: true,
      user: settings.user,
      pass: settings.pass,
      token: settings.token,
      tls,
    });
  }
}

/**
 * Closes the connection; one that was still being opened when its step gave up is closed when it
 * arrives (not waited for), so a slow server cannot leave a connection behind.
 */
async function close(
  nc: NatsConnection | undefined,
  opening: Promise<NatsConnection> | undefined,
): Promise<void> {
  if (nc) await nc.close().catch(() => undefined);
  else if (opening) void opening.then((late) => late.close()).catch(() => undefined);
}

/**
 * A work-queue stream hands each message to one worker and deletes it once acknowledged; the server
 * refuses the unacknowledged reader this connector uses, and an acknowledging one would take the
 * messages away from their workers. Refused up front, with a clear reason.
 */
function readable(info: StreamInfo): StreamInfo {
  if (info.config.retention === RetentionPolicy.Workqueue)
    throw new SourceFailure(
      `stream "${info.config.name}" is a work queue: reading it would take messages from its workers`,
      'invalid_config',
    );
  return info;
}

function readState(state: unknown): NatsStreamState | undefined {
  const seq = (state as { last_seq?: unknown } | null | undefined)?.last_seq;
  return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? { last_seq: seq } : undefined;
}

/** A message's JSON object as is; anything else (other JSON, text, bytes) as {data: <text>}. */
export function decode(m: JsMsg): Record<string, unknown> {
  const text = m.string();
  try {
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === 'object' && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // not JSON: kept as text
  }
  return { data: text };
}

function suffix(notes: string[]): string {
  const kept = notes.filter(Boolean);
  return kept.length ? ` (${kept.join('; ')})` : '';
}
