import type Router from '@koa/router';
import { Redis } from 'ioredis';
import type { Knex } from 'knex';
import type { Config } from './config';
import { SecretBox } from './crypto/secret-box';
import { createKnex } from './db/create-knex';
import { buildOpenApi } from './docs/openapi';
import { docsRoutes } from './docs/docs.routes';
import { resources, rawDataSourceResource } from './generated';
import { healthRoutes } from './health/health.routes';
import { CrudRepository } from './http/crud/crud.repository';
import { crudRoutes } from './http/crud/crud.routes';
import type { AnyResource, ResourceHooks } from './http/crud/resource';
import { createLogger, type Logger } from './logger';
import { sourceHooks } from './sources/source.hooks';

export const VERSION = '0.1.0';

export interface Container {
  config: Config;
  logger: Logger;
  knex: Knex;
  redis: Redis;
  secrets: SecretBox;
  repositories: Map<AnyResource, CrudRepository>;
  routers: Router[];
  openapi: object;
  /** Closes everything long-lived, in reverse order of creation; safe to call twice. */
  close(): Promise<void>;
}

export interface ContainerOverrides {
  logger?: Logger;
  /** Resources to serve; defaults to every generated one. */
  resources?: AnyResource[];
}

/** The composition root: the only place collaborators are constructed and wired together. */
export function createContainer(config: Config, overrides: ContainerOverrides = {}): Container {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const knex = createKnex({ url: config.databaseUrl, poolMax: config.databasePoolMax });
  // The API's own connection: fail fast when Redis is down instead of queueing commands.
  const redis = new Redis(config.redisUrl, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: config.readyTimeoutMs,
  });
  redis.on('error', (err) => logger.debug({ err: err.message }, 'redis connection error'));
  redis.connect().catch(() => undefined);
  const secrets = new SecretBox(config.encryptionKeys);

  const served = overrides.resources ?? resources;
  const hooks = new Map<AnyResource, ResourceHooks>([
    [rawDataSourceResource, sourceHooks() as unknown as ResourceHooks],
  ]);
  const repositories = new Map<AnyResource, CrudRepository>();
  const routers: Router[] = [healthRoutes({ knex, redis, timeoutMs: config.readyTimeoutMs })];
  for (const resource of served) {
    const repository = new CrudRepository(resource, knex, secrets);
    repositories.set(resource, repository);
    routers.push(crudRoutes(repository, hooks.get(resource)));
  }
  const openapi = buildOpenApi({ resources: served, paths: healthPaths, version: VERSION });
  routers.push(docsRoutes(openapi));

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      redis.disconnect();
      await knex.destroy();
    })());

  return { config, logger, knex, redis, secrets, repositories, routers, openapi, close };
}

const healthPaths = {
  '/healthz': {
    get: {
      tags: ['Health'],
      operationId: 'healthz',
      summary: 'The process is up',
      responses: { '200': { description: 'Up' } },
    },
  },
  '/readyz': {
    get: {
      tags: ['Health'],
      operationId: 'readyz',
      summary: 'Postgres and Redis are reachable',
      responses: {
        '200': { description: 'Ready' },
        '503': {
          description: 'A dependency is unreachable',
          content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
        },
      },
    },
  },
};
