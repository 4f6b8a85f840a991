import type Router from '@koa/router';
import type { Knex } from 'knex';
import type Koa from 'koa';
import pg from 'pg';
import type { Middleware } from 'koa';
import { adminBoard, refuseCrossSite } from './admin/admin-board';
import { buildApiDocument } from './api-document';
import { createApp } from './app';
import { ApiKeyRepository } from './auth/api-key.repository';
import { apiKeysRoutes } from './auth/api-keys.routes';
import { AuditLog } from './auth/audit-log';
import { auditWrites } from './auth/audit.middleware';
import { authenticate } from './auth/auth.middleware';
import { KeyVerifier } from './auth/key-verifier';
import { AnonymousLimits } from './auth/anonymous-limits';
import { RateLimits } from './auth/rate-limits';
import { RejectedTally } from './auth/rejected-tally';
import { clientAddress, limitKeyOf, trustedRanges } from './net/client-address';
import type { Config } from './config';
import type { Connector } from './connectors/connector';
import { ConnectorRegistry } from './connectors/connector-registry';
import { createConnectors } from './connectors/connectors';
import { SecretBox } from './crypto/secret-box';
import { CrudRepository } from './db/crud.repository';
import { createKnex } from './db/create-knex';
import { docsRoutes } from './docs/docs.routes';
import { EventBus } from './events/event-bus';
import { eventsRoutes } from './events/events.routes';
import { rawDataSourceResource, resources, type RawDataSource } from './generated';
import { rawDataSourceSchema } from './generated/raw-data-source.schemas';
import { healthRoutes } from './health/health.routes';
import { crudRoutes } from './http/crud/crud.routes';
import type { AnyResource, Row } from './http/crud/resource';
import { corsFor, securityHeaders } from './http/security-headers';
import { bodyValidator } from './http/validation';
import { createLogger, type Logger } from './logger';
import { Metrics } from './metrics/metrics';
import { metricsRoutes } from './metrics/metrics.routes';
import { queueDepthReader } from './metrics/queue-depth';
import { createQueues, type Queues } from './queue/queue-factory';
import { createRedis, isCluster, type RedisClient } from './redis/redis-client';
import { RecordsRepository } from './records/records.repository';
import { recordsRoutes } from './records/records.routes';
import { RunCancel } from './runs/run-cancel';
import { RunLifecycle } from './runs/run-lifecycle';
import { ScheduleService } from './runs/schedule.service';
import { AutoDeactivation } from './runs/auto-deactivation';
import { SyncRunRepository } from './runs/sync-run.repository';
import { RunLogs } from './runs/run-log';
import { runLogRoutes } from './runs/run-log.routes';
import { syncRoutes } from './runs/sync.routes';
import { SyncService } from './runs/sync.service';
import { SourceCounts } from './sources/source-counts';
import { draftValidator, SourceDrafts } from './sources/source-drafts';
import { sourceLifecycle } from './sources/source-lifecycle';
import { sourceSecretMask } from './sources/source-secret-mask';
import { SourceStore } from './sources/source-store';
import { sourceHooks } from './sources/source.hooks';
import { sourceDeleteHooks } from './sources/source-delete.hooks';
import { SourcePurges } from './sources/source-purges';
import { clearWhatNoLongerApplies } from './sources/sync-mode-change';
import { webhookRoutes } from './sources/webhook.routes';
import { WebhookReplayGuard } from './sources/webhook-replay-guard';
import { closeInOrder } from './close-in-order';
import { DeliveryRepository } from './notifications/delivery.repository';
import { notificationRoutes } from './notifications/notification.routes';
import { SubscriptionRepository } from './notifications/subscription.repository';
import { SourceFreshness, staleListFilter } from './sources/source-freshness';
import { registerStalenessMetric } from './sources/source-staleness-metric';

export { VERSION } from './api-document';
/** Exports streaming at once; one more waits up to 5 s for a free connection, then gets a 503. */
const EXPORT_CONNECTIONS = 4;

/** Every source_type the spec allows; each must have a connector. */
const SOURCE_TYPES = rawDataSourceSchema.properties.source_type.enum.filter(
  (t): t is NonNullable<typeof t> => t !== null,
);

export interface Container {
  config: Config;
  logger: Logger;
  knex: Knex;
  /** Sluice's own Redis: one server or a cluster (REDIS_CLUSTER_NODES). */
  redis: RedisClient;
  secrets: SecretBox;
  repositories: Map<AnyResource, CrudRepository<object>>;
  /** The generated CRUD repository of raw_data_sources. */
  sources: CrudRepository<RawDataSource>;
  /** Every other statement on raw_data_sources (connector loads, schedule pages, activity). */
  sourceStore: SourceStore;
  counts: SourceCounts;
  drafts: SourceDrafts;
  connectors: ConnectorRegistry;
  queues: Queues;
  events: EventBus;
  runs: SyncRunRepository;
  /** Landed and quarantined records as the read API serves them. */
  records: RecordsRepository;
  /** Run transitions: each writes its rows and publishes its event in one place. */
  lifecycle: RunLifecycle;
  /** Each run's own log lines (written by the worker, read by GET …/runs/{run_id}/logs). */
  runLogs: RunLogs;
  schedules: ScheduleService;
  sync: SyncService;
  /** This container's Prometheus registry and series (API and worker alike). */
  metrics: Metrics;
  /** Webhook subscriptions and their deliveries (src/notifications). */
  notifications: { subscriptions: SubscriptionRepository; deliveries: DeliveryRepository };
  /** Sources against their freshness_target_seconds: the worker's check, the list filter, the metric. */
  freshness: SourceFreshness;
  routers: Router[];
  /** Middleware that is not a router (the Bull dashboard). */
  middleware: Middleware[];
  apiKeys: ApiKeyRepository;
  keyVerifier: KeyVerifier;
  audit: AuditLog;
  /** Refused requests, written to the audit log in aggregate per window (flush() writes now). */
  rejected: RejectedTally;
  /** For createApp: the audit recorder (outside the error handler) and helmet → cors → auth → rate limit. */
  security: { audit: Middleware; guards: Middleware[] };
  openapi: object;
  /** The HTTP application over these collaborators, wired as every entry point serves it. */
  createHttpApp(): Koa;
  /**
   * Closes everything long-lived, in reverse order of creation; every step runs even when an
   * earlier one fails (their errors are collected and thrown together); safe to call twice.
   */
  close(): Promise<void>;
}

export interface ContainerOverrides {
  logger?: Logger;
  /** Resources to serve; defaults to every generated one. */
  resources?: AnyResource[];
  /** Connectors by source type; a type without one fails its jobs as not implemented. */
  connectors?: Connector[];
}

/**
 * The composition root of the API side and of everything both roles share: the only place
 * collaborators are constructed and wired together. The worker role adds its own pieces on top
 * (workers/worker-container.ts).
 */
export function createContainer(config: Config, overrides: ContainerOverrides = {}): Container {
  const logger = overrides.logger ?? createLogger(config.logLevel, undefined, config.logFormat);
  const knex = createKnex({
    url: config.databaseUrl,
    poolMax: config.databasePoolMax,
    logger,
    preparedStatements: config.databasePreparedStatements,
  });
  // The API's connection (producers, events, readiness). Commands may wait while it reconnects,
  // but every caller checks `status` first and bounds its wait, so HTTP gets a 503 in bounded time.
  const redis = createRedis(config, {
    maxRetriesPerRequest: 1,
    connectTimeout: Math.max(config.readyTimeoutMs, 1000),
  });
  redis.on('error', (err) => logger.debug({ err: err.message }, 'redis connection error'));
  const secrets = new SecretBox(config.encryptionKeys);
  const queues = createQueues({
    connection: redis,
    prefix: config.queuePrefix,
    cluster: isCluster(config),
    syncShards: config.syncShards,
    logger,
    attempts: config.syncAttempts,
    backoffMs: config.syncBackoffMs,
    notify: config.notify,
  });
  const events = new EventBus(redis, config.queuePrefix, config.eventsMaxLen, logger);
  const metrics = new Metrics({
    sourceTypes: SOURCE_TYPES,
    queueDepth: queueDepthReader({
      queues: queues.all(),
      scheduled: queues.syncShards,
      redis,
      timeoutMs: config.readyTimeoutMs,
    }),
  });

  // The source.
  const sources = new CrudRepository<RawDataSource>(
    rawDataSourceResource,
    knex,
    secrets,
    sourceSecretMask,
    clearWhatNoLongerApplies,
  );
  const sourceStore = new SourceStore(sources, knex, secrets);
  const counts = new SourceCounts(knex, logger);
  // Overrides (test doubles) replace the built-in connector of their type.
  const connectors = new ConnectorRegistry([
    ...createConnectors({
      knex,
      fileRoots: config.fileRoots,
      limits: config.byteLimits,
      httpRequestMaxMs: config.httpRequestMaxMs,
      streamMaxRunRecords: config.streamMaxRunRecords,
      savedSource: (id, timeoutMs) => sourceStore.activity(id, timeoutMs),
    }),
    ...(overrides.connectors ?? []),
  ]);
  connectors.assertComplete(SOURCE_TYPES);

  const drafts = new SourceDrafts(knex, secrets);
  const schedules = new ScheduleService(queues, redis, config, logger);
  const rules = sourceHooks({
    counts,
    rules: new Map(connectors.all().map((c) => [c.type, c] as const)),
    stored: (id) => sources.get(id),
    schemaLimits: config.schemaLimits,
  });
  // A delete never destroys data silently: refused with counts unless ?purge=true (then purged later).
  // Deactivating or deleting a source cancels its active run (runCancel is built with the run, below).
  const sourceRuns = { cancelActive: (id: string, reason: string) => runCancel.cancelActive(id, reason) };
  const deleteGuard = sourceDeleteHooks({
    purges: new SourcePurges(knex),
    store: sourceStore,
    runs: sourceRuns,
  });
  const freshness = new SourceFreshness(knex, events, logger);
  registerStalenessMetric(metrics.registry, freshness, { timeoutMs: config.readyTimeoutMs, logger });
  const lifecycle = sourceLifecycle({
    events,
    schedules,
    queues,
    logger,
    redisReady: () => redis.status === 'ready',
    runs: sourceRuns,
  });

  // The run.
  const runs = new SyncRunRepository(knex);
  const deactivation = new AutoDeactivation({
    sources: sourceStore,
    events,
    schedules,
    logger,
    defaultFailures: config.deactivateAfterFailures,
  });
  const runLifecycle = new RunLifecycle(runs, events, (sourceId, runId, error) =>
    deactivation.afterFailure(sourceId, runId, error),
  );
  const runCancel = new RunCancel({
    lifecycle: runLifecycle,
    queues,
    redis,
    prefix: config.queuePrefix,
    logger,
    syncStatusOf: async (id) => (await sources.get(id))?.sync_status ?? undefined,
  });
  const runLogs = new RunLogs(knex);
  const sync = new SyncService({
    redis,
    queues,
    lifecycle: runLifecycle,
    sources,
    logger,
    testWaitMs: config.testWaitMs,
    drafts,
    retryDefaults: config,
  });

  // The records. Exports stream for as long as the client reads: they get connections of their own,
  // so a few long ones never starve the API's pool.
  const exportPool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: EXPORT_CONNECTIONS,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 10_000,
  });
  exportPool.on('error', (err) => logger.warn({ err: err.message }, 'export connection error'));
  const records = new RecordsRepository(knex, exportPool, async (id) => (await sources.get(id))?.sync_mode);

  // The HTTP side.
  const apiKeys = new ApiKeyRepository(knex);
  const keyVerifier = new KeyVerifier(config.apiKeys, apiKeys, logger);
  const audit = new AuditLog(knex);
  const rejected = new RejectedTally(audit, logger, config.auditRejectedWindowMs);
  const rateLimits = new RateLimits(redis, config, logger);
  const anonymousLimits = new AnonymousLimits(
    redis,
    {
      points: config.rateLimitAnonymous,
      prefix: config.queuePrefix,
      redisWaitMs: config.rateLimitRedisWaitMs,
    },
    logger,
  );
  const proxies = trustedRanges(config.trustedProxies);
  const anonymous = {
    limits: anonymousLimits,
    keyOf: (ctx: Koa.Context) =>
      limitKeyOf(clientAddress(ctx.req.socket.remoteAddress, ctx.get('x-forwarded-for'), proxies)),
  };
  const cors = corsFor(config.corsOrigins);
  const security = {
    audit: auditWrites(audit, logger, rejected),
    guards: [
      securityHeaders(),
      ...(cors ? [cors] : []),
      refuseCrossSite(),
      authenticate(keyVerifier, anonymous),
      rateLimits.middleware(),
    ],
  };
  const notifications = {
    subscriptions: new SubscriptionRepository(knex, secrets),
    deliveries: new DeliveryRepository(knex, config.notify.logMax),
  };
  const routers: Router[] = [
    apiKeysRoutes({ keys: apiKeys, verifier: keyVerifier, audit }),
    notificationRoutes(notifications),
    healthRoutes({ knex, redis, timeoutMs: config.readyTimeoutMs }),
    metricsRoutes(metrics),
  ];
  const served = overrides.resources ?? resources;
  // A deployment (or a test) may serve other resources without sources: then none of the routes
  // that act on sources is mounted either.
  const servesSources = served.includes(rawDataSourceResource);
  const repositories = new Map<AnyResource, CrudRepository<object>>();
  for (const resource of served) {
    if (resource === rawDataSourceResource) {
      repositories.set(resource, sources as CrudRepository<object>);
      routers.push(
        crudRoutes(sources, { ...rules, ...lifecycle, ...deleteGuard, listFilters: [staleListFilter] }),
      );
      continue;
    }
    const repository = new CrudRepository<object>(resource, knex, secrets);
    repositories.set(resource, repository);
    routers.push(crudRoutes(repository));
  }
  if (servesSources)
    routers.push(
      syncRoutes({
        sync,
        runs,
        validateDraft: draftValidator(
          bodyValidator<Row>(rawDataSourceResource.schemas.create, rawDataSourceResource.readOnly),
          rules,
        ),
        sourceExists: async (id) => Boolean(await sources.get(id)),
        cancel: runCancel,
      }),
      runLogRoutes({ runs, logs: runLogs }),
      recordsRoutes({ records, sourceExists: async (id) => Boolean(await sources.get(id)) }),
      webhookRoutes({
        knex,
        sources,
        logger,
        bodyLimit: config.bodyLimit,
        signatures: {
          toleranceSeconds: config.webhookToleranceSeconds,
          legacy: config.webhookLegacySignatures,
        },
        replays: new WebhookReplayGuard(redis, config.queuePrefix, config.webhookToleranceSeconds),
        anonymous,
      }),
      eventsRoutes({
        redis,
        key: events.key,
        logger,
        maxClients: config.eventsMaxClients,
        maxClientsPerKey: config.eventsMaxClientsPerKey,
      }),
    );
  // Built on first use (GET /openapi.json): most processes never serve it, and it is a big object.
  // From code alone (api-document.ts), so scripts/generate.ts builds the same document offline.
  let openapi: object | undefined;
  const openapiDocument = () => (openapi ??= buildApiDocument({ served, connectors: connectors.all() }));
  routers.push(docsRoutes(openapiDocument));
  const middleware = [
    adminBoard(queues.all(), {
      syncQueues: queues.syncShards.map((q) => q.name),
      cancelJob: (queueName, jobId) => runCancel.cancelJob(jobId, 'removed from the dashboard', queueName),
      cancelWaiting: (queueName) =>
        runCancel.cancelWaiting('removed from the dashboard (queue emptied)', queueName),
    }),
  ];

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= closeInOrder(logger, [
      ['queues', () => queues.close()],
      ['refused-request audit rows', () => rejected.flush()],
      ['rate limits', () => rateLimits.close()],
      ['anonymous limits', () => anonymousLimits.close()],
      ['redis', () => redis.disconnect()],
      ['record exports', () => exportPool.end()],
      ['postgres', () => knex.destroy()],
    ]));

  return {
    config,
    logger,
    knex,
    redis,
    secrets,
    repositories,
    sources,
    sourceStore,
    counts,
    drafts,
    connectors,
    queues,
    events,
    runs,
    records,
    lifecycle: runLifecycle,
    runLogs,
    schedules,
    sync,
    metrics,
    notifications,
    freshness,
    routers,
    middleware,
    apiKeys,
    keyVerifier,
    audit,
    rejected,
    security,
    get openapi() {
      return openapiDocument();
    },
    createHttpApp: () =>
      createApp({ logger, bodyLimit: config.bodyLimit, routers, middleware, metrics, security }),
    close,
  };
}
