import { UnrecoverableError } from 'bullmq';
import type { Logger } from '../logger';
import type { DeliveryRepository } from './delivery.repository';
import type { DeliverySender } from './delivery-sender';
import type { SubscriptionRepository } from './subscription.repository';

/** A delivery attempt that failed and may succeed later: BullMQ retries the job with backoff. */
export class DeliveryAttemptFailed extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'DeliveryAttemptFailed';
  }
}

export type DeliveryOutcome = 'succeeded' | 'skipped';

/**
 * One attempt of one delivery, as the `notify` job runs it (its data: the delivery id only). The
 * secret is decrypted here, used to sign, and dropped; the attempt is logged whatever happens.
 * Idempotent: a delivery that is no longer pending (done, failed, or its subscription deleted or
 * disabled) is skipped, so a job run twice sends nothing more.
 */
export class NotificationDelivery {
  constructor(
    private readonly deps: {
      deliveries: DeliveryRepository;
      subscriptions: SubscriptionRepository;
      sender: DeliverySender;
      logger: Logger;
    },
  ) {}

  /** `attempt` counts from 1; `attempts` is how many the job has in all. */
  async deliver(deliveryId: string, attempt: number, attempts: number): Promise<DeliveryOutcome> {
    const { deliveries, subscriptions, sender, logger } = this.deps;
    const delivery = await deliveries.pending(deliveryId);
    if (!delivery) return 'skipped';
    const target = await subscriptions.target(delivery.subscriptionId);
    if (!target) {
      // Disabled since the event: nothing is sent, and the delivery is not left pending forever.
      await deliveries.abandon(deliveryId);
      return 'skipped';
    }
    const result = await sender.send({
      url: target.url,
      secret: target.secret,
      deliveryId,
      eventType: delivery.payload.type,
      body: JSON.stringify(delivery.payload),
    });
    const ok = result.error === null;
    const last = attempt >= attempts || !result.retryable;
    const outcome = ok ? 'succeeded' : last ? 'failed' : 'retrying';
    await deliveries.record({
      deliveryId,
      subscriptionId: delivery.subscriptionId,
      attempt,
      outcome,
      statusCode: result.statusCode,
      durationMs: result.durationMs,
      error: result.error,
    });
    if (ok) return 'succeeded';
    logger.info(
      {
        deliveryId,
        subscriptionId: delivery.subscriptionId,
        attempt,
        outcome,
        statusCode: result.statusCode,
      },
      'notification delivery attempt failed',
    );
    if (outcome === 'failed') throw new UnrecoverableError(result.error ?? 'delivery failed');
    throw new DeliveryAttemptFailed(result.error ?? 'delivery failed');
  }
}
