import { randomUUID } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import type { Logger } from '../logger';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Told of every finished request with its duration (the HTTP metrics). */
export type RequestObserver = (ctx: Context, seconds: number) => void;

/**
 * Gives each request an id (the caller's X-Request-Id when sane) and, when it ends, logs one line
 * and tells `observe`. Outermost, so both see the status the client gets, errors included; one
 * middleware times the request for both.
 */
export function requestContext(logger: Logger, observe?: RequestObserver): Middleware {
  return async (ctx, next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    try {
      await next();
    } finally {
      const ms = performance.now() - started;
      observe?.(ctx, ms / 1000);
      const level = ctx.status >= 500 ? 'error' : 'info';
      logger[level](
        { requestId, method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(ms) },
        'request',
      );
    }
  };
}
