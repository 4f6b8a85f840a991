import cors from '@koa/cors';
import type { Context, Middleware } from 'koa';
import helmet from 'koa-helmet';
import { ADMIN_QUEUES_PATH } from '../admin/admin-board';

/** JSON answers load nothing and are framed nowhere. */
const API_CSP = {
  defaultSrc: ["'none'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'none'"],
};

/**
 * Swagger UI (/docs) and the job dashboard (/admin/queues) load only their own assets; both pages
 * start from an inline script and inline styles, hence 'unsafe-inline' there and only there. No
 * upgrade-insecure-requests: on a plain-http loopback install it would break every asset.
 */
const UI_CSP = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'", "'unsafe-inline'"],
  styleSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", 'data:'],
  fontSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  frameAncestors: ["'none'"],
  baseUri: ["'self'"],
  formAction: ["'self'"],
};

const isUiPath = (path: string) => {
  const p = path.toLowerCase();
  return p === '/docs' || p.startsWith('/docs/') || p.startsWith(ADMIN_QUEUES_PATH);
};

/**
 * helmet's headers, captured once from koa-helmet: with these options they depend on nothing in
 * the request (no CSP nonces), and replaying them skips helmet's thirteen middleware calls and
 * the promise koa-helmet makes per request.
 */
function captured(options: Parameters<typeof helmet>[0]): { set: [string, string][]; remove: string[] } {
  const set = new Map<string, string>();
  const remove = new Set<string>();
  const res = {
    setHeader: (name: string, value: unknown) => {
      remove.delete(name.toLowerCase());
      set.set(name, String(value));
    },
    removeHeader: (name: string) => remove.add(name.toLowerCase()),
    getHeader: () => undefined,
  };
  // helmet sets its headers synchronously, before it calls next.
  void helmet(options)({ req: {}, res } as unknown as Context, async () => undefined);
  return { set: [...set], remove: [...remove] };
}

/** helmet's headers on every response, with the page CSP on the two HTML UIs and a closed one elsewhere. */
export function securityHeaders(): Middleware {
  const api = captured({ contentSecurityPolicy: { useDefaults: false, directives: API_CSP } });
  const ui = captured({ contentSecurityPolicy: { useDefaults: false, directives: UI_CSP } });
  if (!api.set.length || !ui.set.length) throw new Error('helmet set no headers');
  return (ctx, next) => {
    const headers = isUiPath(ctx.path) ? ui : api;
    for (const name of headers.remove) ctx.res.removeHeader(name);
    for (const [name, value] of headers.set) ctx.res.setHeader(name, value);
    return next();
  };
}

/** CORS only for the configured origins; without any, no Access-Control-* header is ever sent. */
export function corsFor(origins: string[]): Middleware | undefined {
  if (!origins.length) return undefined;
  const allowed = new Set(origins);
  return cors({
    origin: (ctx) => {
      const origin = ctx.get('origin');
      return allowed.has(origin) ? origin : '';
    },
    allowHeaders: ['Authorization', 'Content-Type', 'X-Request-Id', 'Last-Event-ID'],
    exposeHeaders: [
      'Location',
      'Retry-After',
      'RateLimit-Limit',
      'RateLimit-Remaining',
      'RateLimit-Reset',
      'X-Request-Id',
    ],
    keepHeadersOnError: false,
    maxAge: 600,
  });
}
