import Router from '@koa/router';
import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
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
export function healthRoutes(deps: { knex: Knex; redis: Redis; timeoutMs: number }): Router {
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

export const healthPaths = {
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
