import Router from '@koa/router';
import { problems } from '../docs/openapi';
import type { Metrics } from './metrics';

/** GET /metrics: the Prometheus text exposition (the read scope is enough, like every GET). */
export function metricsRoutes(metrics: Metrics): Router {
  const router = new Router();
  router.get('/metrics', async (ctx) => {
    const text = await metrics.render();
    ctx.type = metrics.contentType;
    ctx.body = text;
  });
  return router;
}

export const metricsPaths = {
  '/metrics': {
    get: {
      tags: ['Health'],
      operationId: 'getMetrics',
      summary:
        'Prometheus metrics: HTTP requests, jobs, records landed, queue depth, schedules, reconciler repairs, process',
      description:
        'Text exposition format 0.0.4. Labels hold only route templates, statuses, queue names, states, source types, outcomes and kinds: never an id, a name or a secret. Redis down: still 200, with sluice_redis_up 0.',
      responses: {
        '200': {
          description: 'The metrics',
          content: { 'text/plain': { schema: { type: 'string' } } },
        },
        ...problems(),
      },
    },
  },
};
