import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { RedisClient } from '../redis/redis-client';
import { toEvent } from '../events/event-bus';
import type { Logger } from '../logger';
import type { DeliveryRepository } from './delivery.repository';
import { isNotifiable } from './notification.contracts';
import type { SubscriptionRepository } from './subscription.repository';

/** The consumer group every worker joins: each event goes to one of them. */
export const DISPATCH_GROUP = 'notify';

export interface NotifyJobData {
  /** A notification_deliveries id: the payload stays in Postgres, never in the job. */
  deliveryId: string;
}

type StreamEntry = [id: string, fields: string[]];
type ReadReply = [key: string, entries: StreamEntry[]][] | null;

export interface DispatcherOptions {
  /** The events stream (EventBus.key). */
  key: string;
  /** How long one XREADGROUP waits for new events; also how soon close() is noticed at worst. */
  blockMs?: number;
  /** Entries read at once. */
  count?: number;
  /** An entry another consumer read but did not acknowledge for this long is taken over (its worker died). */
  claimIdleMs?: number;
}

/**
 * Turns events into deliveries: a consumer of the events stream in the group `notify`, so of any
 * number of workers one reads each event. For an event type some enabled subscription asked for,
 * it writes one pending delivery per subscription (unique per event: reading an event again adds
 * nothing) and enqueues a `notify` job per delivery (job id = delivery id, so the enqueue is
 * idempotent too), then acknowledges the entry. An entry read but not acknowledged (the worker
 * died in between) stays pending in the group: this consumer re-reads its own at start, and takes
 * over other consumers' after `claimIdleMs`.
 *
 * It reads on a connection of its own (`redis`, closed by close()): XREADGROUP BLOCK holds it.
 */
export class NotificationDispatcher {
  readonly consumer = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private running?: Promise<void>;
  private closed = false;
  private lastClaim = 0;
  private readonly blockMs: number;
  private readonly count: number;
  private readonly claimIdleMs: number;

  constructor(
    private readonly deps: {
      redis: RedisClient;
      subscriptions: Pick<SubscriptionRepository, 'subscribedTo'>;
      deliveries: Pick<DeliveryRepository, 'open'>;
      queue: Queue<NotifyJobData>;
      logger: Logger;
    },
    private readonly options: DispatcherOptions,
  ) {
    this.blockMs = options.blockMs ?? 2000;
    this.count = options.count ?? 100;
    this.claimIdleMs = options.claimIdleMs ?? 60_000;
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Creates the group at the stream's end (events before the first worker started are not sent). */
  private async ensureGroup(): Promise<void> {
    await this.deps.redis
      .xgroup('CREATE', this.options.key, DISPATCH_GROUP, '$', 'MKSTREAM')
      .catch((err: Error) => {
        if (!err.message.includes('BUSYGROUP')) throw err;
      });
  }

  private async loop(): Promise<void> {
    let backlog = true; // this consumer's own unacknowledged entries, read first
    let failures = 0;
    while (!this.closed) {
      try {
        if (failures || backlog) await this.ensureGroup();
        if (backlog) {
          const entries = await this.read('0', false);
          if (!entries.length) backlog = false;
          else await this.handle(entries);
        } else {
          await this.claimIdle();
          await this.handle(await this.read('>', true));
        }
        failures = 0;
      } catch (err) {
        if (this.closed) break;
        failures += 1;
        this.deps.logger.warn({ err: (err as Error).message }, 'notification dispatch failed; retrying');
        // Redis or Postgres away: wait a little longer each time, at most 5 s.
        await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** Math.min(failures, 5))));
      }
    }
  }

  private async read(from: '0' | '>', block: boolean): Promise<StreamEntry[]> {
    const { redis } = this.deps;
    const args = ['GROUP', DISPATCH_GROUP, this.consumer, 'COUNT', this.count] as const;
    const reply = (
      block
        ? await redis.xreadgroup(...args, 'BLOCK', this.blockMs, 'STREAMS', this.options.key, from)
        : await redis.xreadgroup(...args, 'STREAMS', this.options.key, from)
    ) as ReadReply;
    // A pending entry trimmed from the stream comes back with no fields: nothing to send.
    return (reply?.[0]?.[1] ?? []).filter(([, fields]) => fields !== null);
  }

  /** Takes over entries a dead consumer left unacknowledged, at most once per claimIdleMs. */
  private async claimIdle(): Promise<void> {
    if (Date.now() - this.lastClaim < this.claimIdleMs) return;
    this.lastClaim = Date.now();
    const reply = (await this.deps.redis.xautoclaim(
      this.options.key,
      DISPATCH_GROUP,
      this.consumer,
      this.claimIdleMs,
      '0-0',
      'COUNT',
      this.count,
    )) as [string, StreamEntry[]];
    const entries = (reply?.[1] ?? []).filter(([, fields]) => fields !== null);
    if (entries.length) await this.handle(entries);
  }

  private async handle(entries: StreamEntry[]): Promise<void> {
    if (!entries.length) return;
    // Most events are of types nobody subscribes to: they cost nothing but their share of one XACK.
    const subscribers = new Map<string, Promise<string[]>>();
    for (const [id, fields] of entries) {
      const event = toEvent(id, fields);
      if (!isNotifiable(event.type)) continue;
      let ids = subscribers.get(event.type);
      if (!ids) subscribers.set(event.type, (ids = this.deps.subscriptions.subscribedTo(event.type)));
      const deliveries = await this.deps.deliveries.open(event, await ids);
      if (deliveries.length)
        await this.deps.queue.addBulk(
          deliveries.map((deliveryId) => ({
            name: 'deliver',
            data: { deliveryId },
            opts: { jobId: deliveryId },
          })),
        );
    }
    // Acknowledged together once all are handled: a crash before this re-reads them, harmlessly.
    await this.deps.redis.xack(this.options.key, DISPATCH_GROUP, ...entries.map(([id]) => id));
  }

  /** Stops reading (the blocked read is cut by closing its connection); idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.deps.redis.disconnect();
    await this.running;
  }
}
