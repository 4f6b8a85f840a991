import Koa, { type Middleware } from 'koa';
import type Router from '@koa/router';
import { isWebhookPath } from './connectors/webhook/webhook-path';
import { jsonBodyParser } from './http/body-parser';
import { errorHandler } from './http/error-handler';
import { requestContext } from './http/request-context';
import type { Logger } from './logger';

export interface AppOptions {
  logger: Logger;
  bodyLimit: string;
  routers: Router[];
  /** Mounted after the routers (the Bull dashboard brings its own routing). */
  middleware?: Middleware[];
}

/** The HTTP application: cross-cutting middleware in a fixed order, then the feature routers. */
export function createApp({ logger, bodyLimit, routers, middleware = [] }: AppOptions): Koa {
  const app = new Koa();
  app.proxy = false;
  // Errors are answered by errorHandler; Koa's default handler would print stacks to stderr.
  app.silent = true;
  app.use(requestContext(logger));
  app.use(errorHandler(logger, bodyLimit));
  // Webhook receipts read their own body (same limit): the signature covers the raw bytes as sent.
  const parseJson = jsonBodyParser(bodyLimit);
  app.use((ctx, next) => (isWebhookPath(ctx.path) ? next() : parseJson(ctx, next)));
  for (const router of routers) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  for (const m of middleware) app.use(m);
  return app;
}
