import type Router from '@koa/router';
import { Redis } from 'ioredis';
import type { Knex } from 'knex';
import type Koa from 'koa';
import type { Middleware } from 'koa';
import { adminBoard } from './admin/admin-board';
import { createApp } from './app';
import { ApiKeyRepository } from './auth/api-key.repository';
import { apiKeysRoutes } from './auth/api-keys.routes';
import { AuditLog } from './auth/audit-log';
import { auditWrites } from './auth/audit.middleware';
import { authenticate } from './auth/auth.middleware';
import { authPaths, authSchemas } from './auth/auth.openapi';
import { KeyVerifier } from './auth/key-verifier';
import { RateLimits } from './auth/rate-limits';
import { isPublicPath } from './auth/scopes';
import type { Config } from './config';
import type { Connector } from './connectors/connector';
import { ConnectorRegistry } from './connectors/connector-registry';
import { createConnectors } from './connectors/connectors';
import { webhookPaths, webhookSchemas } from './sources/webhook.openapi';
import { webhookRoutes } from './sources/webhook.routes';
import { Outbound } from './connectors/outbound';
import { AddressPolicy } from './connectors/outbound-policy';
import { SecretBox } from './crypto/secret-box';
import { createKnex } from './db/create-knex';
import { docsRoutes } from './docs/docs.routes';
import { buildOpenApi } from './docs/openapi';
import { EventBus } from './events/event-bus';
import { eventsRoutes } from './events/events.routes';
import { rawDataSourceResource, resources, type RawDataSource } from './generated';
import { rawDataSourceSchema } from './generated/raw-data-source.schemas';
import { healthPaths, healthRoutes } from './health/health.routes';
import { CrudRepository } from './db/crud.repository';
import { crudRoutes } from './http/crud/crud.routes';
import type { AnyResource, ResourceHooks, Row } from './http/crud/resource';
import { ValidationError } from './http/errors';
import { corsFor, securityHeaders } from './http/security-headers';
import { bodyValidator } from './http/validation';
import { createLogger, type Logger } from './logger';
import { Metrics } from './metrics/metrics';
import { metricsPaths, metricsRoutes } from './metrics/metrics.routes';
import { queueDepthReader } from './metrics/queue-depth';
import { createQueues, type Queues } from './queue/queue-factory';
import { SourceCounts } from './sources/source-counts';
import { sourceHooks } from './sources/source.hooks';
import { Landing } from './runs/landing';
import { RunReconciler } from './runs/run-reconciler';
import { ScheduleService } from './runs/schedule.service';
import { SourceDrafts, type DraftInput } from './sources/source-drafts';
import { SourceReader } from './sources/source-store';
import { sourceLifecycle } from './sources/source-lifecycle';
import { SyncAllProcessor } from '../workers/sync-all.processor';
import { SyncRunRepository } from './runs/sync-run.repository';
import { syncPaths, syncSchemas } from './runs/sync.openapi';
import { SyncProcessor } from '../workers/sync.processor';
import { syncRoutes } from './runs/sync.routes';
import { SyncService } from './runs/sync.service';
import { SyncWorker } from '../workers/sync-worker';
import { TestProcessor } from '../workers/test.processor';

export const VERSION = '0.1.0';

/** Every source_type the spec allows; each must have a connector. */
const SOURCE_TYPES = rawDataSourceSchema.properties.source_type.enum.filter(
  (t): t is NonNullable<typeof t> => t !== null,
);

export interface Container {
  config: Config;
  logger: Logger;
  knex: Knex;
  redis: Redis;
  secrets: SecretBox;
  repositories: Map<AnyResource, CrudRepository<object>>;
  sources: CrudRepository<RawDataSource>;
  queues: Queues;
  events: EventBus;
  runs: SyncRunRepository;
  schedules: ScheduleService;
  sync: SyncService;
  /** This container's Prometheus registry and series (API and worker alike). */
  metrics: Metrics;
  routers: Router[];
  /** Middleware that is not a router (the Bull dashboard). */
  middleware: Middleware[];
  apiKeys: ApiKeyRepository;
  keyVerifier: KeyVerifier;
  audit: AuditLog;
  /** For createApp: the audit recorder (outside the error handler) and helmet → cors → auth → rate limit. */
  security: { audit: Middleware; guards: Middleware[] };
  openapi: object;
  /** The HTTP application over these collaborators, wired as every entry point serves it. */
  createHttpApp(): Koa;
  /** Builds the worker role on the same collaborators; the caller starts it. */
  createWorker(): SyncWorker;
  /** Closes everything long-lived, in reverse order of creation; safe to call twice. */
  close(): Promise<void>;
}

export interface ContainerOverrides {
  logger?: Logger;
  /** Resources to serve; defaults to every generated one. */
  resources?: AnyResource[];
  /** Connectors by source type; a type without one fails its jobs as not implemented. */
  connectors?: Connector[];
}

/** The composition root: the only place collaborators are constructed and wired together. */
export function createContainer(config: Config, overrides: ContainerOverrides = {}): Container {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const knex = createKnex({ url: config.databaseUrl, poolMax: config.databasePoolMax });
  // The API's connection (producers, events, readiness). Commands may wait while it reconnects,
  // but every caller checks `status` first and bounds its wait, so HTTP gets a 503 in bounded time.
  const redis = new Redis(config.redisUrl, {
    maxRetriesPerRequest: 1,
    connectTimeout: Math.max(config.readyTimeoutMs, 1000),
  });
  redis.on('error', (err) => logger.debug({ err: err.message }, 'redis connection error'));
  const secrets = new SecretBox(config.encryptionKeys);
  const drafts = new SourceDrafts(knex, secrets);
  const queues = createQueues({
    connection: redis,
    prefix: config.queuePrefix,
    logger,
    attempts: config.syncAttempts,
  });
  const events = new EventBus(redis, config.queuePrefix, config.eventsMaxLen, logger);
  const metrics = new Metrics({
    sourceTypes: SOURCE_TYPES,
    queueDepth: queueDepthReader({
      queues: queues.all(),
      scheduled: queues.sync,
      redis,
      timeoutMs: config.readyTimeoutMs,
    }),
  });
  const runs = new SyncRunRepository(knex);
  const schedules = new ScheduleService(queues.sync, redis, { attempts: config.syncAttempts }, logger);
  // Overrides (test doubles) replace the built-in connector of their type.
  const connectors = new ConnectorRegistry([
    ...createConnectors({ knex, fileRoots: config.fileRoots }),
    ...(overrides.connectors ?? []),
  ]);
  connectors.assertComplete(SOURCE_TYPES);

  const served = overrides.resources ?? resources;
  const sources = new CrudRepository<RawDataSource>(rawDataSourceResource, knex, secrets);
  const rules = new Map(connectors.all().map((c) => [c.type, c] as const));
  const counts = new SourceCounts(knex, logger);
  const sourceRules = sourceHooks({
    counts,
    rules,
    storedType: async (id) => (await sources.get(id))?.source_type,
  });
  const hooks = new Map<AnyResource, ResourceHooks<object>>([
    [
      rawDataSourceResource,
      {
        ...sourceRules,
        ...sourceLifecycle({ events, schedules, queues, logger, redisReady: () => redis.status === 'ready' }),
      } as ResourceHooks<object>,
    ],
  ]);
  const repositories = new Map<AnyResource, CrudRepository<object>>();
  const apiKeys = new ApiKeyRepository(knex);
  const keyVerifier = new KeyVerifier(config.apiKeys, apiKeys, logger);
  const audit = new AuditLog(knex);
  const rateLimits = new RateLimits(redis, config, logger);
  const cors = corsFor(config.corsOrigins);
  const security = {
    audit: auditWrites(audit, logger),
    guards: [securityHeaders(), ...(cors ? [cors] : []), authenticate(keyVerifier), rateLimits.middleware()],
  };
  const routers: Router[] = [
    apiKeysRoutes({ keys: apiKeys, verifier: keyVerifier, audit }),
    healthRoutes({ knex, redis, timeoutMs: config.readyTimeoutMs }),
    metricsRoutes(metrics),
  ];
  for (const resource of served) {
    const repository: CrudRepository<object> =
      resource === rawDataSourceResource ? sources : new CrudRepository<object>(resource, knex, secrets);
    repositories.set(resource, repository);
    routers.push(crudRoutes(repository, hooks.get(resource)));
  }

  const sync = new SyncService({
    knex,
    redis,
    queues,
    runs,
    sources,
    events,
    logger,
    testWaitMs: config.testWaitMs,
    drafts,
  });
  const servesSources = served.includes(rawDataSourceResource);
  if (servesSources) {
    const validateCreate = bodyValidator<Row>(
      rawDataSourceResource.schemas.create,
      rawDataSourceResource.readOnly,
    );
    const validateDraft = async (body: unknown): Promise<DraftInput> => {
      const input = validateCreate(body);
      const errors = (await sourceRules.validate?.(input, 'create')) ?? [];
      if (errors.length) throw new ValidationError(errors);
      return input as unknown as DraftInput;
    };
    routers.push(
      syncRoutes({ sync, runs, validateDraft, sourceExists: async (id) => Boolean(await sources.get(id)) }),
    );
    routers.push(webhookRoutes({ knex, sources, logger, bodyLimit: config.bodyLimit }));
    routers.push(eventsRoutes({ redis, key: events.key, logger, maxClients: 100 }));
  }
  const openapi = buildOpenApi({
    resources: served,
    paths: {
      ...healthPaths,
      ...authPaths,
      ...metricsPaths,
      ...(servesSources ? { ...syncPaths, ...webhookPaths } : {}),
    },
    schemas: { ...authSchemas, ...(servesSources ? { ...syncSchemas, ...webhookSchemas } : {}) },
    version: VERSION,
    isPublic: isPublicPath,
  });
  routers.push(docsRoutes(openapi));
  const middleware = [adminBoard(queues.all())];

  const reach = {
    outbound: new Outbound(
      new AddressPolicy(config.outboundAllow, config.outboundDeny),
      undefined,
      config.outboundMaxPending,
    ),
    timeoutMs: config.connectTimeoutMs,
  };
  const createWorker = () => {
    const reader = new SourceReader(sources, knex, secrets);
    const landing = new Landing(knex);
    return new SyncWorker(
      {
        knex,
        redis,
        logger,
        events,
        runs,
        schedules,
        reconciler: new RunReconciler({ runs, queues, events, logger, graceMs: config.lockDurationMs }),
        counts,
        sync: new SyncProcessor({ runs, landing, sources: reader, connectors, events, logger, ...reach }),
        test: new TestProcessor({ sources: reader, drafts, connectors, events, logger, ...reach }),
        syncAll: new SyncAllProcessor({ knex, queues, events, redis }),
        metrics,
      },
      {
        redisUrl: config.redisUrl,
        prefix: config.queuePrefix,
        concurrency: config.workerConcurrency,
        lockDurationMs: config.lockDurationMs,
        stalledIntervalMs: config.stalledIntervalMs,
        shutdownGraceMs: config.shutdownGraceMs,
        reconcileIntervalMs: config.reconcileIntervalMs,
      },
    );
  };

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await queues.close();
      rateLimits.close();
      redis.disconnect();
      await knex.destroy();
    })());

  return {
    config,
    logger,
    knex,
    redis,
    secrets,
    repositories,
    sources,
    queues,
    events,
    runs,
    schedules,
    sync,
    metrics,
    routers,
    middleware,
    apiKeys,
    keyVerifier,
    audit,
    security,
    openapi,
    createHttpApp: () =>
      createApp({ logger, bodyLimit: config.bodyLimit, routers, middleware, metrics, security }),
    createWorker,
    close,
  };
}
