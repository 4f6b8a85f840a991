import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { SluiceEvent } from '../events/event-bus';
import type { AttemptOutcome, DeliveryAttempt } from './notification.contracts';

const DELIVERIES = 'notification_deliveries';
const ATTEMPTS = 'notification_delivery_attempts';
/** First key of the per-subscription advisory lock around a log write (any constant of ours). */
const LOG_LOCK_SPACE = 0x6e6f7469;

/** A delivery as its sender needs it: the event as it will be sent and who it goes to. */
export interface PendingDelivery {
  id: string;
  subscriptionId: string;
  payload: SluiceEvent;
}

export interface AttemptRecord {
  deliveryId: string;
  subscriptionId: string;
  attempt: number;
  outcome: AttemptOutcome;
  statusCode: number | null;
  durationMs: number;
  error: string | null;
}

/**
 * notification_deliveries (one per event and subscription, unique, so an event read twice from
 * the stream is delivered once) and notification_delivery_attempts, the log each subscription's
 * GET …/deliveries serves, trimmed to `logMax` attempts per subscription as it is written.
 */
export class DeliveryRepository {
  constructor(
    private readonly knex: Knex,
    private readonly logMax: number,
  ) {}

  /**
   * The pending deliveries of `event` to `subscriptionIds`, created if new: the ids of every one
   * still pending (created now or by an earlier read of the same event), to enqueue.
   */
  async open(event: SluiceEvent, subscriptionIds: readonly string[]): Promise<string[]> {
    if (!subscriptionIds.length) return [];
    await this.knex(DELIVERIES)
      .insert(
        subscriptionIds.map((subscriptionId) => ({
          id: randomUUID(),
          subscription_id: subscriptionId,
          event_id: event.id,
          event_type: event.type,
          payload: JSON.stringify(event),
        })),
      )
      .onConflict(['subscription_id', 'event_id'])
      .ignore();
    const rows = await this.knex(DELIVERIES)
      .select<{ id: string }[]>('id')
      .where({ event_id: event.id, status: 'pending' })
      .whereIn('subscription_id', subscriptionIds);
    return rows.map((r) => r.id);
  }

  /** The delivery while it is pending; undefined once it succeeded, failed, or its subscription went. */
  async pending(id: string): Promise<PendingDelivery | undefined> {
    const row = await this.knex(DELIVERIES)
      .select<{ id: string; subscription_id: string; payload: SluiceEvent }[]>(
        'id',
        'subscription_id',
        'payload',
      )
      .where({ id, status: 'pending' })
      .first();
    return row ? { id: row.id, subscriptionId: row.subscription_id, payload: row.payload } : undefined;
  }

  /** Closes a delivery that will not be attempted (its subscription was disabled meanwhile). */
  async abandon(id: string): Promise<void> {
    await this.knex(DELIVERIES)
      .where({ id, status: 'pending' })
      .update({ status: 'failed', finished_at: this.knex.fn.now() });
  }

  /**
   * Logs one attempt and, when it ends the delivery (succeeded or failed), closes the delivery;
   * then trims the subscription's log to its newest `logMax` attempts (and drops the deliveries
   * that no longer have one, unless still pending).
   */
  async record(attempt: AttemptRecord): Promise<void> {
    await this.knex.transaction(async (trx) => {
      // One writer per subscription's log at a time, so the trim below sees every attempt and
      // the cap holds exactly (attempts of two deliveries are often recorded at once).
      await trx.raw('SELECT pg_advisory_xact_lock(?, hashtext(?))', [LOG_LOCK_SPACE, attempt.subscriptionId]);
      await trx(ATTEMPTS).insert({
        subscription_id: attempt.subscriptionId,
        delivery_id: attempt.deliveryId,
        attempt: attempt.attempt,
        outcome: attempt.outcome,
        status_code: attempt.statusCode,
        duration_ms: Math.max(0, Math.round(attempt.durationMs)),
        error: attempt.error?.slice(0, 1000) ?? null,
      });
      const closing = attempt.outcome !== 'retrying';
      await trx(DELIVERIES)
        .where({ id: attempt.deliveryId })
        .update({
          attempts: attempt.attempt,
          ...(closing ? { status: attempt.outcome, finished_at: trx.fn.now() } : {}),
        });
      await this.trim(trx, attempt.subscriptionId);
    });
  }

  private async trim(trx: Knex.Transaction, subscriptionId: string): Promise<void> {
    // The log index finds the newest logMax entries; whatever is older goes.
    const removed = await trx.raw<{ rowCount: number }>(
      `DELETE FROM ${ATTEMPTS} a USING (
         SELECT id FROM ${ATTEMPTS} WHERE subscription_id = ? ORDER BY id DESC OFFSET ? LIMIT 1
       ) oldest_kept
       WHERE a.subscription_id = ? AND a.id < oldest_kept.id`,
      [subscriptionId, this.logMax - 1, subscriptionId],
    );
    if (!removed.rowCount) return;
    // Finished deliveries with no attempt left in the log hold only their payload: drop them too.
    await trx.raw(
      `DELETE FROM ${DELIVERIES} d WHERE d.subscription_id = ? AND d.status <> 'pending'
          AND NOT EXISTS (SELECT 1 FROM ${ATTEMPTS} a WHERE a.delivery_id = d.id)`,
      [subscriptionId],
    );
  }

  /** A subscription's log, newest attempt first. */
  async log(
    subscriptionId: string,
    limit: number,
    offset: number,
  ): Promise<{ data: DeliveryAttempt[]; total: number }> {
    const [rows, counted] = await Promise.all([
      this.knex(`${ATTEMPTS} as a`)
        .join(`${DELIVERIES} as d`, 'd.id', 'a.delivery_id')
        .select<
          {
            id: string;
            delivery_id: string;
            event_id: string;
            event_type: string;
            attempt: number;
            outcome: AttemptOutcome;
            status_code: number | null;
            duration_ms: number;
            error: string | null;
            at: Date;
          }[]
        >(
          'a.id',
          'a.delivery_id',
          'd.event_id',
          'd.event_type',
          'a.attempt',
          'a.outcome',
          'a.status_code',
          'a.duration_ms',
          'a.error',
          'a.at',
        )
        .where('a.subscription_id', subscriptionId)
        .orderBy('a.id', 'desc')
        .limit(limit)
        .offset(offset),
      this.knex(ATTEMPTS)
        .where({ subscription_id: subscriptionId })
        .count<{ count: string }[]>({ count: '*' }),
    ]);
    return {
      data: rows.map((r) => ({ ...r, id: String(r.id), at: r.at.toISOString() })),
      total: Number(counted[0]?.count ?? 0),
    };
  }
}
