import { createRequire } from 'node:module';
import type coBody from 'co-body';
import type { Middleware } from 'koa';
import { HttpError, MalformedBodyError } from './errors';

/**
 * co-body's JSON parser alone (its `json` export): the package's index also loads its form and text
 * parsers, with qs and a second copy of mime-db, which the API never uses. Required, as the file has
 * no types of its own (the package's types describe `json` on the index).
 */
const parseJson = createRequire(import.meta.url)('co-body/lib/json.js') as (typeof coBody)['json'];

/** Media types parsed as JSON; `jsonBody()` accepts exactly these, so nothing is silently ignored. */
export const JSON_TYPES = ['application/json', 'application/*+json'];

/** The methods whose bodies are parsed (koa-body's default `parsedMethods`, which this replaced). */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Parses JSON bodies up to `limit` with co-body's JSON parser, as koa-body did with these options
 * (JSON only, strict, utf-8), without koa-body's option schema library and multipart parser, which
 * were most of the API's body-parsing code in memory. Another media type leaves `ctx.request.body`
 * unset. A body the parser cannot read (broken gzip or deflate framing, invalid JSON, an aborted
 * upload) is the client's fault: errors without a client status become a 400 here instead of a 500
 * in the error handler. Errors from later middleware pass untouched.
 */
export function jsonBodyParser(limit: string): Middleware {
  return async (ctx, next) => {
    // The parser reads bodies of these methods only; the rest (every GET) skip its promise.
    if (!BODY_METHODS.has(ctx.method) || !ctx.is(JSON_TYPES)) return next();
    try {
      (ctx.request as { body?: unknown }).body = await parseJson(ctx, {
        encoding: 'utf-8',
        limit,
        strict: true,
      });
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
