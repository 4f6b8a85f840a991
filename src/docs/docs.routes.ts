import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import Router from '@koa/router';
import type { Middleware } from 'koa';
import { SWAGGER_ASSETS } from './swagger-assets';

const require = createRequire(import.meta.url);
const SWAGGER_DIST = join(require.resolve('swagger-ui-dist/package.json'), '..');

/** The Swagger UI page's handler: koa2-swagger-ui (and its template engine) loaded when first asked for. */
async function loadPage(): Promise<Middleware> {
  const { koaSwagger } = await import('koa2-swagger-ui');
  return koaSwagger({
    routePrefix: '/docs',
    title: 'Sluice API',
    swaggerCdnUrl: '/docs',
    swaggerVersion: 'assets',
    favicon: '/docs/assets/favicon-32x32.png',
    hideTopbar: true,
    swaggerOptions: {
      url: '/openapi.json',
      dom_id: '#swagger-ui',
      layout: 'StandaloneLayout',
      // Off: Swagger UI would otherwise send the spec's URL to validator.swagger.io from any
      // non-localhost host, which is both a leak and a request to the internet.
      validatorUrl: null,
    },
  }) as Middleware;
}

/**
 * /openapi.json and Swagger UI at /docs, served entirely from this process: the page's scripts and
 * styles come from swagger-ui-dist in node_modules, so the docs work with no internet. The document
 * and the page are made on their first request and kept: most API processes never serve either, and
 * both sat on the heap of every one (docs/RESULTS.md, start-up memory).
 */
export function docsRoutes(buildSpec: () => object): Router {
  const router = new Router();
  let spec: object | undefined;
  let page: Promise<Middleware> | undefined;

  router.get('/openapi.json', (ctx) => {
    ctx.body = spec ??= buildSpec();
  });
  // '/docs' also matches '/docs/' (the router is not strict about trailing slashes).
  router.get('/docs', async (ctx, next) => {
    page ??= loadPage().catch((err: unknown) => {
      page = undefined; // the next request tries again
      throw err;
    });
    await (
      await page
    )(ctx, next);
    // The template also links web fonts from a CDN; the UI falls back to system fonts without them.
    if (typeof ctx.body === 'string')
      ctx.body = ctx.body.replace(/<link[^>]+fonts\.googleapis\.com[^>]*>/g, '');
    ctx.set('Cache-Control', 'no-cache');
  });
  router.get('/docs/assets/:name', (ctx) => {
    const name = ctx.params.name ?? '';
    // Own keys only: "constructor" or "__proto__" must be a 404, not a 500.
    const asset = Object.hasOwn(SWAGGER_ASSETS, name) ? SWAGGER_ASSETS[name] : undefined;
    if (!asset) return; // falls through to the 404 problem
    ctx.type = asset.type;
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.body = createReadStream(join(SWAGGER_DIST, asset.file));
  });
  return router;
}
