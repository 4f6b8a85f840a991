import type Router from '@koa/router';
import type { Middleware } from 'koa';
import compose from 'koa-compose';

/** The first segment of a path, lower-cased ('' for `/`); routers match paths case-insensitively. */
const firstSegment = (path: string): string => {
  const end = path.indexOf('/', 1);
  return (end < 0 ? path.slice(1) : path.slice(1, end)).toLowerCase();
};

/** A literal first segment (`/raw-data-sources/:id` → `raw-data-sources`); undefined when a parameter or pattern starts the path. */
const literalFirstSegment = (path: string | RegExp): string | undefined => {
  if (typeof path !== 'string') return undefined;
  const match = /^\/([A-Za-z0-9._~-]+)(?:\/|$)/.exec(path);
  return match?.[1]?.toLowerCase();
};

/**
 * The feature routers as one middleware, each router's routes() followed by its allowedMethods(),
 * in their order, exactly as if every router were mounted in turn — except that a request only
 * goes through the routers with a route under its first path segment. Mounted one after the
 * other, every request ran every router before its own (a match, a debug call and two promises
 * each): about a twentieth of a GET's CPU in bench/api-read.bench.ts. The skipped routers could
 * not have matched, so they would have answered nothing and allowed no method.
 */
export function routerDispatch(routers: readonly Router[]): Middleware {
  // Only routes count: a router runs its middleware layers only for a request one of its routes
  // matches. One with a route that starts with a parameter or pattern may match any first segment.
  const routes = (router: Router) => router.stack.filter((layer) => layer.methods.length > 0);
  const anywhere = (router: Router) => routes(router).some((layer) => !literalFirstSegment(layer.path));
  const segments = new Set(
    routers.flatMap((router) => routes(router).map((layer) => literalFirstSegment(layer.path) ?? '')),
  );
  segments.delete('');
  const chain = (serves: (router: Router) => boolean): Middleware => {
    const chosen = routers.filter(serves);
    return chosen.length
      ? compose(
          chosen.flatMap((router): Middleware[] => [
            router.routes() as Middleware,
            router.allowedMethods() as Middleware,
          ]),
        )
      : (_ctx, next) => next();
  };
  const bySegment = new Map<string, Middleware>();
  for (const segment of segments)
    bySegment.set(
      segment,
      chain(
        (router) =>
          anywhere(router) || routes(router).some((layer) => literalFirstSegment(layer.path) === segment),
      ),
    );
  const elsewhere = chain(anywhere);
  return (ctx, next) => (bySegment.get(firstSegment(ctx.path)) ?? elsewhere)(ctx, next);
}
