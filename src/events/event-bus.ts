import type { FromSchema } from 'json-schema-to-ts';
import type { RedisClient } from '../redis/redis-client';
import type { Logger } from '../logger';

/** Every event type, in the order docs/ARCHITECTURE.md's catalogue lists them. */
export const EVENT_TYPES = [
  'source.created',
  'source.updated',
  'source.deleted',
  'source.deactivated',
  'sync.queued',
  'sync.started',
  'sync.succeeded',
  'sync.partial',
  'sync.failed',
  'sync.retrying',
  'sync.cancelled',
  'sync.repaired',
  'connection.tested',
  'schema.drift_detected',
  'freshness.breached',
  'freshness.recovered',
] as const;

/** One event as the stream carries it: one schema for the type here and the OpenAPI component. */
export const sluiceEventSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'type', 'source_id', 'run_id', 'at', 'data'],
  properties: {
    id: { type: 'string', description: 'The stream entry id; resume after it with Last-Event-ID.' },
    type: { enum: EVENT_TYPES },
    source_id: { type: ['string', 'null'], format: 'uuid' },
    run_id: { type: ['string', 'null'], format: 'uuid' },
    at: { type: 'string', format: 'date-time' },
    data: {
      type: 'object',
      additionalProperties: true,
      description: 'Ids, statuses, counts and sanitised messages; never a secret.',
    },
  },
} as const;
export type SluiceEvent = FromSchema<typeof sluiceEventSchema>;
export type EventType = SluiceEvent['type'];

export interface EventInput {
  source_id?: string | null;
  run_id?: string | null;
  data?: Record<string, unknown>;
}

export const eventsKey = (prefix: string) => `${prefix}:events`;

/**
 * Publishes to one capped Redis stream. Events describe; they never carry a secret (callers pass
 * ids, statuses, counts and sanitised messages only). Publishing is best-effort: a Redis outage
 * must not fail the write that caused the event.
 */
export class EventBus {
  readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    readonly maxLen: number,
    private readonly logger: Logger,
  ) {
    this.key = eventsKey(prefix);
  }

  async publish(type: EventType, input: EventInput = {}): Promise<string | undefined> {
    if (this.redis.status !== 'ready') {
      this.logger.warn({ type }, 'event not published: Redis unavailable');
      return undefined;
    }
    try {
      return (await this.redis.xadd(...this.entry(type, input, new Date().toISOString()))) ?? undefined;
    } catch (err) {
      this.logger.warn({ type, err: (err as Error).message }, 'event not published');
      return undefined;
    }
  }

  /** The XADD arguments of one event: the capped stream, a new id, and its fields. */
  private entry(type: EventType, input: EventInput, at: string) {
    return [
      this.key,
      'MAXLEN',
      '~',
      this.maxLen,
      '*',
      'type',
      type,
      'source_id',
      input.source_id ?? '',
      'run_id',
      input.run_id ?? '',
      'at',
      at,
      'data',
      JSON.stringify(input.data ?? {}),
    ] as const;
  }

  /** Publishes many events in one round trip (a sync-all page); best-effort like publish(). */
  async publishMany(events: [EventType, EventInput][]): Promise<void> {
    if (!events.length) return;
    if (this.redis.status !== 'ready') {
      this.logger.warn({ events: events.length }, 'events not published: Redis unavailable');
      return;
    }
    const at = new Date().toISOString();
    const pipeline = this.redis.pipeline();
    for (const [type, input] of events) pipeline.xadd(...this.entry(type, input, at));
    await pipeline
      .exec()
      .catch((err: Error) => this.logger.warn({ err: err.message }, 'events not published'));
  }
}

/** A stream entry (`[id, [field, value, ...]]`) as the API shows it. */
export function toEvent(id: string, fields: string[]): SluiceEvent {
  const map: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) map[fields[i]!] = fields[i + 1]!;
  let data: Record<string, unknown> = {};
  try {
    data = JSON.parse(map.data ?? '{}') as Record<string, unknown>;
  } catch {
    data = {};
  }
  return {
    id,
    type: map.type as EventType,
    source_id: map.source_id || null,
    run_id: map.run_id || null,
    at: map.at ?? '',
    data,
  };
}
