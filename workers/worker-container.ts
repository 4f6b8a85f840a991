import { Outbound } from '../src/connectors/outbound';
import { clusterNodeAddresses, duplicateRedis, isCluster } from '../src/redis/redis-client';
import { AddressPolicy } from '../src/connectors/outbound-policy';
import { OwnServices, ownService } from '../src/connectors/own-services';
import type { Container } from '../src/container';
import { RecordRetention } from '../src/records/record-retention';
import { Landing } from '../src/runs/landing';
import { RunReconciler } from '../src/runs/run-reconciler';
import { ConcurrencyGate } from '../src/runs/concurrency-gate';
import { retryOverrides, RunPolicies } from '../src/runs/run-policy';
import { SourcePurges } from '../src/sources/source-purges';
import { PurgeProcessor } from './purge.processor';
import { RunCancelListener } from './run-cancel-listener';
import { SyncAllProcessor } from './sync-all.processor';
import { SyncWorker } from './sync-worker';
import { SyncProcessor } from './sync.processor';
import { TestProcessor } from './test.processor';
import { DeliverySender } from '../src/notifications/delivery-sender';
import { NotificationDelivery } from '../src/notifications/notification-delivery';
import { NotificationDispatcher } from '../src/notifications/notification-dispatcher';
import { NotifyWorker } from './notify-worker';

/**
 * The worker role's composition: its processors, landing and reconciler over the collaborators the
 * container already built. The caller starts the worker and closes it before the container.
 */
export function createWorker(container: Container): SyncWorker {
  const { config, knex, redis, logger, lifecycle, queues, schedules, counts, drafts, connectors, metrics } =
    container;
  const sources = container.sourceStore;
  const purges = new SourcePurges(knex);
  const reach = {
    outbound: new Outbound(
      new AddressPolicy(config.outboundAllow, config.outboundDeny, {
        private: config.outboundPrivate,
        // Handed as values: connectors never read the configuration themselves.
        // On a cluster every node counts: the seeds and those the client learned since (failovers
        // and resharding move masters; the list is read again at each refresh).
        own: new OwnServices(async () => [
          ownService("Sluice's own database", config.databaseUrl, 5432),
          ...(isCluster(config)
            ? [...config.redisClusterNodes, ...(await clusterNodeAddresses(redis))].map((node) => ({
                label: "Sluice's own Redis",
                ...node,
              }))
            : [ownService("Sluice's own Redis", config.redisUrl, 6379)]),
        ]),
      }),
      undefined,
      config.outboundMaxPending,
    ),
    timeoutMs: config.connectTimeoutMs,
  };
  const { subscriptions, deliveries } = container.notifications;
  const notify = new NotifyWorker(
    {
      redis,
      logger,
      // XREADGROUP BLOCK holds its connection: the dispatcher gets one of its own (closed with it).
      dispatcher: new NotificationDispatcher(
        { redis: duplicateRedis(redis), subscriptions, deliveries, queue: queues.notify, logger },
        { key: container.events.key },
      ),
      delivery: new NotificationDelivery({
        deliveries,
        subscriptions,
        // The same outbound policy as api sources: a subscription URL reaches no more than a source can.
        sender: new DeliverySender(reach.outbound, config.notify.timeoutMs),
        logger,
      }),
      freshness: container.freshness,
      metrics,
    },
    {
      redisUrl: config.redisUrl,
      redisClusterNodes: config.redisClusterNodes,
      prefix: config.queuePrefix,
      concurrency: config.notify.concurrency,
      attempts: config.notify.attempts,
      freshnessIntervalMs: config.notify.freshnessIntervalMs,
    },
  );
  return new SyncWorker(
    {
      redis,
      logger,
      lifecycle,
      schedules,
      sources,
      reconciler: new RunReconciler({ lifecycle, queues, logger, graceMs: config.lockDurationMs }),
      counts,
      drafts,
      runLogs: container.runLogs,
      sync: new SyncProcessor({
        lifecycle,
        runLogs: container.runLogs,
        landing: new Landing(knex),
        sources,
        connectors,
        logger,
        ...reach,
        ...runPolicy(container),
      }),
      test: new TestProcessor({ sources, drafts, connectors, events: container.events, logger, ...reach }),
      syncAll: new SyncAllProcessor({
        queues,
        lifecycle,
        retryOverrides: (ids) => retryOverrides(sources, config, ids),
      }),
      purge: {
        processor: new PurgeProcessor(
          { purges, sources, runLogs: container.runLogs, logger },
          { batchSize: config.purgeBatchSize, pauseMs: config.purgePauseMs },
        ),
        purges,
        queue: queues.purge,
      },
      metrics,
      retention: new RecordRetention(knex, { retentionDays: config.retentionDays, logger }),
      cancels: new RunCancelListener(redis, config.queuePrefix, logger),
      services: [notify],
    },
    {
      redisUrl: config.redisUrl,
      redisClusterNodes: config.redisClusterNodes,
      prefix: config.queuePrefix,
      syncShards: config.syncShardsConsume,
      concurrency: config.workerConcurrency,
      lockDurationMs: config.lockDurationMs,
      stalledIntervalMs: config.stalledIntervalMs,
      maxStalledCount: config.workerMaxStalled,
      shutdownGraceMs: config.shutdownGraceMs,
      reconcileIntervalMs: config.reconcileIntervalMs,
    },
  );
}

/** Per-source run policy and the concurrency gate over all workers (one Redis, the queue's prefix). */
function runPolicy(container: Container) {
  const { config, redis, logger, queues } = container;
  const gate = new ConcurrencyGate(redis, {
    prefix: config.queuePrefix,
    cluster: isCluster(config),
    leaseMs: config.concurrency.leaseMs,
    logger,
    // A freed slot wakes the oldest waiting job of its group now rather than at its next retry.
    wake: async (jobId) => {
      const job = (await queues.findSyncJob(jobId))?.job;
      if (!job || !(await job.isDelayed())) return false;
      await job.promote();
      return true;
    },
  });
  return {
    policies: new RunPolicies(container.sourceStore, config),
    gate,
    gateWaitMs: config.concurrency.waitMs,
  };
}
