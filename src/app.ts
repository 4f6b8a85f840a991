import Koa from 'koa';
import type Router from '@koa/router';
import { koaBody } from 'koa-body';
import { errorHandler } from './http/error-handler';
import { requestContext } from './http/request-context';
import type { Logger } from './logger';

export interface AppOptions {
  logger: Logger;
  bodyLimit: string;
  routers: Router[];
}

/** The HTTP application: cross-cutting middleware in a fixed order, then the feature routers. */
export function createApp({ logger, bodyLimit, routers }: AppOptions): Koa {
  const app = new Koa();
  app.proxy = false;
  // Errors are answered by errorHandler; Koa's default handler would print stacks to stderr.
  app.silent = true;
  app.use(requestContext(logger));
  app.use(errorHandler(logger, bodyLimit));
  app.use(
    koaBody({
      json: true,
      jsonLimit: bodyLimit,
      jsonStrict: true,
      urlencoded: false,
      text: false,
      multipart: false,
    }),
  );
  for (const router of routers) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  return app;
}
