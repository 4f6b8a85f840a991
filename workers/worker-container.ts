import { Outbound } from '../src/connectors/outbound';
import { AddressPolicy } from '../src/connectors/outbound-policy';
import { OwnServices, ownService } from '../src/connectors/own-services';
import type { Container } from '../src/container';
import { RecordRetention } from '../src/records/record-retention';
import { Landing } from '../src/runs/landing';
import { RunReconciler } from '../src/runs/run-reconciler';
import { SourcePurges } from '../src/sources/source-purges';
import { PurgeProcessor } from './purge.processor';
import { SyncAllProcessor } from './sync-all.processor';
import { SyncWorker } from './sync-worker';
import { SyncProcessor } from './sync.processor';
import { TestProcessor } from './test.processor';

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
        own: new OwnServices([
          ownService("Sluice's own database", config.databaseUrl, 5432),
          ownService("Sluice's own Redis", config.redisUrl, 6379),
        ]),
      }),
      undefined,
      config.outboundMaxPending,
    ),
    timeoutMs: config.connectTimeoutMs,
  };
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
      }),
      test: new TestProcessor({ sources, drafts, connectors, events: container.events, logger, ...reach }),
      syncAll: new SyncAllProcessor({ queues, lifecycle }),
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
    },
    {
      redisUrl: config.redisUrl,
      prefix: config.queuePrefix,
      concurrency: config.workerConcurrency,
      lockDurationMs: config.lockDurationMs,
      stalledIntervalMs: config.stalledIntervalMs,
      maxStalledCount: config.workerMaxStalled,
      shutdownGraceMs: config.shutdownGraceMs,
      reconcileIntervalMs: config.reconcileIntervalMs,
    },
  );
}
