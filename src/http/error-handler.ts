import type { Middleware } from 'koa';
import { isDatabaseUnavailable } from '../db/database-unavailable';
import type { Logger } from '../logger';
import {
  HttpError,
  InternalError,
  MalformedBodyError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  UnsupportedMediaTypeError,
} from './errors';
import { sendProblem } from './problem';

interface StatusError {
  status?: number;
  statusCode?: number;
  expose?: boolean;
  type?: string;
  headers?: Record<string, string>;
}

/** Errors thrown by Koa, the router and the body parser carry a status; map the ones we know. */
function fromStatusError(err: StatusError, bodyLimit: string): HttpError | undefined {
  const status = err.status ?? err.statusCode;
  if (status === 413) return new PayloadTooLargeError(bodyLimit);
  if (status === 415) return new UnsupportedMediaTypeError();
  if (status === 405) return new MethodNotAllowedError(err.headers?.Allow ?? err.headers?.allow ?? '');
  if (status === 404) return new NotFoundError();
  if (status === 400) return new MalformedBodyError();
  if (status && status > 400 && status < 500 && err.expose)
    return new HttpError(status, 'client-error', 'Bad request', 'The request could not be processed.');
  return undefined;
}

/**
 * The one place errors become responses: known errors map to problem+json, everything else is
 * logged with the request id and answered as a generic 500 without internals.
 */
export function errorHandler(logger: Logger, bodyLimit: string): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.body === undefined || ctx.body === null) {
        if (ctx.status === 404) throw new NotFoundError(`No route for ${ctx.method} ${ctx.path}.`);
        // The router's allowedMethods() sets these without a body.
        if (ctx.status === 405) throw new MethodNotAllowedError(ctx.response.get('Allow'));
        // The router answers a method it has never heard of (PROPFIND, PURGE...) with 501. That is a
        // client error like any other wrong method: 405 where the path exists, else 404.
        if (ctx.status === 501) {
          const allowed = ctx.response.get('Allow');
          if (allowed) throw new MethodNotAllowedError(allowed);
          ctx.remove('Allow');
          throw new NotFoundError(`No route for ${ctx.method} ${ctx.path}.`);
        }
      }
    } catch (err) {
      let problem: HttpError;
      if (err instanceof HttpError) problem = err;
      else {
        const mapped =
          err && typeof err === 'object' ? fromStatusError(err as StatusError, bodyLimit) : undefined;
        if (mapped) problem = mapped;
        else if (isDatabaseUnavailable(err)) {
          // An outage, not a bug: 503 with Retry-After, logged without the stack of a 500.
          logger.warn({ err: (err as Error).message, path: ctx.path }, 'database unavailable');
          problem = new ServiceUnavailableError('The database is unavailable.');
        } else {
          const requestId = String(ctx.state.requestId ?? 'unknown');
          logger.error({ err, requestId, method: ctx.method, path: ctx.path }, 'unhandled error');
          problem = new InternalError(requestId);
        }
      }
      sendProblem(ctx, problem);
    }
  };
}
