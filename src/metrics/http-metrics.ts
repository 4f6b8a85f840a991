import type Router from '@koa/router';
import type { Context } from 'koa';
import type { RequestObserver } from '../http/request-context';
import type { Metrics } from './metrics';

/** The Bull dashboard routes itself (no router template): its pages count under this one label. */
const DASHBOARD = '/admin/queues';

/**
 * The route template a request is counted under: the one the router matched, or, for a request
 * answered before it reached the routers (401, 403, 429), the one it would have reached. Never the
 * raw path: what nothing matches is `unmatched`, so the series stay a fixed set whatever is asked.
 */
function routeOf(ctx: Context, routers: readonly Router[]): string {
  const matched = (ctx as { _matchedRoute?: unknown })._matchedRoute;
  if (typeof matched === 'string') return matched;
  for (const router of routers) {
    const layer = router.match(ctx.path, ctx.method).pathAndMethod.findLast((l) => l.methods.length > 0);
    if (layer && typeof layer.path === 'string') return layer.path;
  }
  return ctx.path === DASHBOARD || ctx.path.startsWith(`${DASHBOARD}/`) ? DASHBOARD : 'unmatched';
}

/**
 * Counts and times every request under its route template (`/raw-data-sources/:id`): the observer
 * requestContext calls as each request ends, so it sees the status the client gets.
 */
export function httpMetrics(metrics: Metrics, routers: readonly Router[]): RequestObserver {
  return (ctx, seconds) => metrics.httpRequest(ctx.method, routeOf(ctx, routers), ctx.status, seconds);
}
