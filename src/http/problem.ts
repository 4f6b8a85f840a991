import type { Context } from 'koa';
import type { HttpError } from './errors';

export const PROBLEM_TYPE_BASE = '/problems/';

/** Writes an RFC 9457 problem+json body for `error`. */
export function sendProblem(ctx: Context, error: HttpError): void {
  ctx.status = error.status;
  for (const [name, value] of Object.entries(error.headers ?? {})) ctx.set(name, value);
  ctx.type = 'application/problem+json';
  ctx.body = {
    ...error.extensions,
    type: `${PROBLEM_TYPE_BASE}${error.code}`,
    title: error.title,
    status: error.status,
    detail: error.message,
    ...(error.errors ? { errors: error.errors } : {}),
  };
}
