import Koa, { type Middleware } from 'koa';
import type Router from '@koa/router';
import { isWebhookPath } from './connectors/webhook/webhook-path';
import { jsonBodyParser } from './http/body-parser';
import { errorHandler } from './http/error-handler';
import { requestContext } from './http/request-context';
import { routerDispatch } from './http/router-dispatch';
import type { Logger } from './logger';
import { httpMetrics } from './metrics/http-metrics';
import type { Metrics } from './metrics/metrics';

export interface AppOptions {
  logger: Logger;
  bodyLimit: string;
  routers: Router[];
  /** Mounted after the routers (the Bull dashboard brings its own routing). */
  middleware?: Middleware[];
  /** Audit log (outside the error handler: it records the status answered) and the guards: helmet, CORS, auth, rate limits. */
  security?: { audit: Middleware; guards: Middleware[] };
  /** Counts and times every request by route template (GET /metrics serves them). */
  metrics?: Metrics;
}

/** The HTTP application: cross-cutting middleware in a fixed order, then the feature routers. */
export function createApp({
  logger,
  bodyLimit,
  routers,
  middleware = [],
  metrics,
  security,
}: AppOptions): Koa {
  const app = new Koa();
  app.proxy = false;
  // Errors are answered by errorHandler; Koa's default handler would print stacks to stderr.
  app.silent = true;
  // Outside the error handler: the log line and the metrics see the status the client gets.
  app.use(requestContext(logger, metrics && httpMetrics(metrics, routers)));
  if (security) app.use(security.audit);
  app.use(errorHandler(logger, bodyLimit));
  for (const guard of security?.guards ?? []) app.use(guard);
  // Webhook receipts read their own body (same limit): the signature covers the raw bytes as sent.
  const parseJson = jsonBodyParser(bodyLimit);
  app.use((ctx, next) => (isWebhookPath(ctx.path) ? next() : parseJson(ctx, next)));
  app.use(routerDispatch(routers));
  for (const m of middleware) app.use(m);
  return app;
}
