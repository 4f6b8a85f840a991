import type { Context } from 'koa';
import { JSON_TYPES } from './body-parser';
import { ValidationError, UnsupportedMediaTypeError } from './errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The `{name}` path parameter as a UUID, or a 400 naming it. */
export function uuidParam(ctx: Context, name = 'id'): string {
  const value = (ctx as Context & { params?: Record<string, string> }).params?.[name] ?? '';
  if (!UUID.test(value))
    throw new ValidationError([{ pointer: name, in: 'path', message: 'must be a UUID' }]);
  return value.toLowerCase();
}

/** The parsed JSON body; anything but application/json is a 415 (an empty body counts as `{}`). */
export function jsonBody(ctx: Context): unknown {
  const hasBody = Number(ctx.get('content-length') || 0) > 0 || ctx.get('transfer-encoding') !== '';
  if (hasBody && !ctx.is(JSON_TYPES)) throw new UnsupportedMediaTypeError();
  return (ctx.request as { body?: unknown }).body ?? {};
}
