import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import Router from '@koa/router';
import { koaSwagger } from 'koa2-swagger-ui';

const require = createRequire(import.meta.url);
const SWAGGER_DIST = join(require.resolve('swagger-ui-dist/package.json'), '..');

/** Asset names the koa2-swagger-ui page asks for → files shipped in swagger-ui-dist. */
const ASSETS: Record<string, { file: string; type: string }> = {
  'swagger-ui.min.css': { file: 'swagger-ui.css', type: 'text/css' },
  'swagger-ui-bundle.js': { file: 'swagger-ui-bundle.js', type: 'application/javascript' },
  'swagger-ui-standalone-preset.js': {
    file: 'swagger-ui-standalone-preset.js',
    type: 'application/javascript',
  },
  'favicon-32x32.png': { file: 'favicon-32x32.png', type: 'image/png' },
};

/**
 * /openapi.json and Swagger UI at /docs, served entirely from this process: the page's scripts and
 * styles come from swagger-ui-dist in node_modules, so the docs work with no internet.
 */
export function docsRoutes(spec: object): Router {
  const router = new Router();
  const page = koaSwagger({
    routePrefix: '/docs',
    title: 'Sluice API',
    swaggerCdnUrl: '/docs',
    swaggerVersion: 'assets',
    favicon: '/docs/assets/favicon-32x32.png',
    hideTopbar: true,
    swaggerOptions: { url: '/openapi.json', dom_id: '#swagger-ui', layout: 'StandaloneLayout' },
  });

  router.get('/openapi.json', (ctx) => {
    ctx.body = spec;
  });
  router.get(['/docs', '/docs/'], async (ctx, next) => {
    await page(ctx, next);
    // The template also links web fonts from a CDN; the UI falls back to system fonts without them.
    if (typeof ctx.body === 'string')
      ctx.body = ctx.body.replace(/<link[^>]+fonts\.googleapis\.com[^>]*>/g, '');
    ctx.set('Cache-Control', 'no-cache');
  });
  router.get('/docs/assets/:name', (ctx) => {
    const asset = ASSETS[ctx.params.name ?? ''];
    if (!asset) return; // falls through to the 404 problem
    ctx.type = asset.type;
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.body = createReadStream(join(SWAGGER_DIST, asset.file));
  });
  return router;
}
