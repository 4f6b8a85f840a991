import type { Middleware } from 'koa';
import { koaBody } from 'koa-body';
import { HttpError, MalformedBodyError } from './errors';

/** Media types parsed as JSON; `jsonBody()` accepts exactly these, so nothing is silently ignored. */
export const JSON_TYPES = ['application/json', 'application/*+json'];

/** The methods koa-body parses by default (its `parsedMethods`). */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Parses JSON bodies up to `limit`. A body the parser cannot read (broken gzip or deflate framing,
 * invalid JSON, an aborted upload) is the client's fault: errors without a client status become a
 * 400 here instead of a 500 in the error handler. Errors from later middleware pass untouched.
 */
export function jsonBodyParser(limit: string): Middleware {
  const parse = koaBody({
    json: true,
    jsonLimit: limit,
    jsonStrict: true,
    jsonTypes: JSON_TYPES,
    urlencoded: false,
    text: false,
    multipart: false,
  });
  return async (ctx, next) => {
    // The parser reads bodies of these methods only; the rest (every GET) skip its promise.
    if (!BODY_METHODS.has(ctx.method)) return next();
    try {
      await parse(ctx, async () => undefined);
    } catch (err) {
      // The parser can stop mid-body (inflated size over the limit, broken compression) and leave
      // the request paused. Read the rest and drop it: unread bytes would otherwise be taken for the
      // next request on this keep-alive connection, and the client's next call would be reset.
      ctx.req.unpipe();
      ctx.req.resume();
      throw toClientError(err);
    }
    await next();
  };
}

function toClientError(err: unknown): unknown {
  if (err instanceof HttpError) return err;
  const status = (err as { status?: unknown; statusCode?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) return err;
  return new MalformedBodyError('The request body could not be read.');
}
