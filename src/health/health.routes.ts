import Router from '@koa/router';
import type { Knex } from 'knex';
import type { RedisClient } from '../redis/redis-client';
import { PROBLEM_TYPE_BASE } from '../http/problem';

async function probe(check: () => Promise<unknown>, timeoutMs: number): Promise<'ok' | string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return 'ok';
  } catch (err) {
    return (err as Error).message?.includes('no answer') ? (err as Error).message : 'unreachable';
  } finally {
    clearTimeout(timer);
  }
}

/** /healthz: the process is up. /readyz: Postgres and Redis answer; 503 names the one that does not. */
export function healthRoutes(deps: { knex: Knex; redis: RedisClient; timeoutMs: number }): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    const [postgres, redis] = await Promise.all([
      probe(() => deps.knex.raw('select 1'), deps.timeoutMs),
      probe(() => deps.redis.ping(), deps.timeoutMs),
    ]);
    const checks = { postgres, redis };
    if (postgres === 'ok' && redis === 'ok') {
      ctx.body = { status: 'ready', checks };
      return;
    }
    ctx.status = 503;
    ctx.set('Retry-After', '5');
    ctx.type = 'application/problem+json';
    const down = Object.keys(checks).filter((k) => checks[k as keyof typeof checks] !== 'ok');
    ctx.body = {
      type: `${PROBLEM_TYPE_BASE}not-ready`,
      title: 'Not ready',
      status: 503,
      detail: `Not reachable: ${down.join(', ')}.`,
      checks,
    };
  });
  return router;
}

const checksSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['postgres', 'redis'],
  properties: {
    postgres: { type: 'string', description: '"ok", or why not (unreachable, no answer within N ms).' },
    redis: { type: 'string', description: '"ok", or why not (unreachable, no answer within N ms).' },
  },
} as const;

export const healthSchemas = {
  Liveness: {
    type: 'object',
    additionalProperties: false,
    required: ['status'],
    properties: { status: { const: 'ok' } },
  },
  Readiness: {
    type: 'object',
    additionalProperties: false,
    required: ['status', 'checks'],
    properties: { status: { const: 'ready' }, checks: checksSchema },
  },
};

const json = (name: string) => ({ 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } });

export const healthPaths = {
  '/healthz': {
    get: {
      tags: ['Health'],
      operationId: 'healthz',
      summary: 'The process is up',
      description: 'Liveness: answers as long as the process serves HTTP; checks no dependency.',
      responses: { '200': { description: 'Up', content: json('Liveness') } },
    },
  },
  '/readyz': {
    get: {
      tags: ['Health'],
      operationId: 'readyz',
      summary: 'Postgres and Redis are reachable',
      description:
        'Readiness: pings Postgres and Redis, each bounded by READY_TIMEOUT_MS; 503 names the one that does not answer.',
      responses: {
        '200': { description: 'Ready', content: json('Readiness') },
        '503': {
          description: 'A dependency is unreachable: the problem adds `checks`, each "ok" or why not',
          headers: { 'Retry-After': { $ref: '#/components/headers/Retry-After' } },
          content: {
            'application/problem+json': {
              schema: { $ref: '#/components/schemas/Problem' },
              example: {
                type: `${PROBLEM_TYPE_BASE}not-ready`,
                title: 'Not ready',
                status: 503,
                detail: 'Not reachable: redis.',
                checks: { postgres: 'ok', redis: 'unreachable' },
              },
            },
          },
        },
      },
    },
  },
};
