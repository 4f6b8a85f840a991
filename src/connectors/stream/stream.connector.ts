import { DEFAULT_BYTE_LIMITS } from '../kit/byte-limits';
import type { Connector, ConnectorContext, ConnectorSource, SyncBatch, TestStep } from '../connector';
import type { ResolvedTarget } from '../outbound';
import type { NatsStreamReader } from './nats-stream.reader';
import { RedisStreamReader } from './redis-stream.reader';
import { StepRunner } from '../kit/step-runner';
import { hostPort, toConnectorError } from '../kit/classify-error';
import { hideSecrets } from '../kit/secret-scrubber';
import {
  STREAM_METADATA_SCHEMA,
  checkStreamConnectionString,
  DEFAULT_MAX_RUN_RECORDS,
  parseStreamSettings,
  type StreamSettings,
} from './stream-settings';

const STEPS = ['configuration', 'resolve', 'connect', 'authenticate', 'stream', 'read_sample'] as const;

/**
 * `stream` sources: Redis Streams (`redis://`, `rediss://`) and NATS JetStream (`nats://`), chosen
 * by the connection string's scheme. A sync reads from the stored offset (a Redis entry id or a
 * JetStream sequence) up to the stream's end at sync start, or STREAM_MAX_RUN_RECORDS records,
 * whichever is first (a producer faster than Sluice must not make one run endless: the run ends
 * `success` and the next continues), and each batch carries the offset of its own last record, so
 * the state advances only together with the records it covers.
 */
export class StreamConnector implements Connector {
  readonly type = 'stream';
  readonly metadataSchema = STREAM_METADATA_SCHEMA;

  /** `batchMaxBytes`: config BATCH_MAX_BYTES; a read of `metadata.batch` messages is landed in pieces of at most that. */
  constructor(
    private readonly batchMaxBytes = DEFAULT_BYTE_LIMITS.batchMaxBytes,
    /** STREAM_MAX_RUN_RECORDS: records one run lands at most; the next run continues from its state. */
    private readonly maxRunRecords = DEFAULT_MAX_RUN_RECORDS,
  ) {}

  /** A stream resumes after the last entry landed: never a full refresh. */
  fullRefresh(): boolean {
    return false;
  }

  checkConnectionString(value: string): string | undefined {
    return checkStreamConnectionString(value);
  }

  async test(source: ConnectorSource, ctx: ConnectorContext): Promise<TestStep[]> {
    const steps = new StepRunner(ctx, STEPS);
    const settings = await steps.run('configuration', async () => {
      const parsed = parseStreamSettings(source);
      steps.hide(parsed.secrets);
      return { value: parsed, message: describe(parsed) };
    });
    if (!settings) return steps.finish();
    const target = await steps.run('resolve', async () => {
      const found = await ctx.outbound.resolve(settings.host, 'service', ctx.timeoutMs, settings.port);
      return { value: found, message: `${settings.host} is ${found.address}` };
    });
    if (target) steps.target(hostPort(target.address, settings.port));
    if (target) await (await this.reader(settings, ctx)).test(steps, target);
    return steps.finish();
  }

  async *sync(source: ConnectorSource, state: unknown, ctx: ConnectorContext): AsyncGenerator<SyncBatch> {
    const settings = parseStreamSettings(source);
    let target: ResolvedTarget;
    try {
      target = await ctx.outbound.resolve(settings.host, 'service', ctx.timeoutMs, settings.port);
    } catch (err) {
      throw toConnectorError(err, `resolve ${settings.host}`, settings.secrets);
    }
    yield* (await this.reader(settings, ctx)).sync(state, target);
  }

  /** The NATS client is imported on the first NATS source: the API process never reads a stream. */
  private async reader(
    settings: StreamSettings,
    ctx: ConnectorContext,
  ): Promise<RedisStreamReader | NatsStreamReader> {
    if (settings.kind === 'redis')
      return new RedisStreamReader(settings, ctx, this.batchMaxBytes, this.maxRunRecords);
    const { NatsStreamReader } = await import('./nats-stream.reader');
    return new NatsStreamReader(settings, ctx, this.batchMaxBytes, this.maxRunRecords);
  }
}

function describe(s: StreamSettings): string {
  const where = `${s.host}:${s.port}`;
  const text =
    s.kind === 'redis'
      ? `Redis stream "${s.stream}" on ${where}, database ${s.db}${s.tls ? ', TLS' : ''}`
      : `JetStream stream "${s.stream}"${s.subject ? ` (subject ${s.subject})` : ''} on ${where}`;
  return hideSecrets(
    `${text}; batches of ${s.batch}; first sync from the ${s.start === 'latest' ? 'end' : 'start'}`,
    s.secrets,
  );
}
