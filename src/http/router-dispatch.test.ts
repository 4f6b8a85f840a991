import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routerDispatch } from './router-dispatch';

/** The routers that looked at the request, in order: the dispatch may skip only those that could not match. */
let seen: string[] = [];

function router(name: string, build: (r: Router) => void, prefix?: string): Router {
  const r = new Router(prefix ? { prefix } : {});
  // A middleware layer without a path: it runs only when a route of its router matches.
  r.use((_ctx, next) => next());
  build(r);
  const match = r.match.bind(r);
  r.match = (path, method) => {
    seen.push(name);
    return match(path, method);
  };
  return r;
}

const routers = [
  router('keys', (r) =>
    r
      .get('/api-keys', (ctx) => void (ctx.body = 'keys'))
      .delete('/api-keys/:id', (ctx) => void (ctx.body = `revoked ${ctx.params.id}`)),
  ),
  router(
    'crud',
    (r) =>
      r
        .get('/', (ctx) => void (ctx.body = 'list'))
        .get('/:id', (ctx) => void (ctx.body = `get ${ctx.params.id}`)),
    '/raw-data-sources',
  ),
  router('sync', (r) =>
    r.post('/raw-data-sources/:id/sync', (ctx) => void (ctx.body = `sync ${ctx.params.id}`)),
  ),
  // A route whose first segment is a parameter: this router may match any path.
  router('tenant', (r) =>
    r.get('/:tenant/status', (ctx) => void (ctx.body = `status of ${ctx.params.tenant}`)),
  ),
];

let base = '';
let server: ReturnType<Koa['listen']>;

beforeAll(async () => {
  const app = new Koa();
  app.use(routerDispatch(routers));
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise((resolve) => server.close(resolve)));

async function call(method: string, path: string) {
  seen = [];
  const res = await fetch(base + path, { method });
  return { status: res.status, body: await res.text(), allow: res.headers.get('allow'), seen };
}

describe('routerDispatch', () => {
  it('runs only the routers with a route under the first segment (and those that match anywhere)', async () => {
    expect(await call('GET', '/raw-data-sources/42')).toMatchObject({
      status: 200,
      body: 'get 42',
      seen: ['crud'],
    });
    expect(await call('GET', '/api-keys')).toMatchObject({ status: 200, body: 'keys', seen: ['keys'] });
    expect(await call('GET', '/eu/status')).toMatchObject({
      status: 200,
      body: 'status of eu',
      seen: ['tenant'],
    });
    // Later routers still answer under a shared segment.
    expect(await call('POST', '/raw-data-sources/42/sync')).toMatchObject({ status: 200, body: 'sync 42' });
  });

  it('matches case-insensitively and with a trailing slash, as the routers do', async () => {
    expect(await call('GET', '/RAW-Data-Sources/7/')).toMatchObject({ status: 200, body: 'get 7' });
    expect(await call('GET', '/raw-data-sources/')).toMatchObject({ status: 200, body: 'list' });
  });

  it('keeps allowedMethods(): 405 with Allow across the routers of the segment, 501 for an unknown method', async () => {
    const wrong = await call('DELETE', '/raw-data-sources/42');
    expect(wrong.status).toBe(405);
    expect(wrong.allow?.split(', ').sort()).toEqual(['GET', 'HEAD']);
    const options = await call('OPTIONS', '/raw-data-sources/42/sync');
    expect(options.status).toBe(200);
    expect(options.allow).toBe('POST');
    expect((await call('PROPFIND', '/raw-data-sources/42')).status).toBe(501);
  });

  it('leaves what no router serves to the next middleware (Koa answers 404)', async () => {
    // Only the router whose route may match any segment looked.
    expect(await call('GET', '/nowhere/at/all')).toMatchObject({ status: 404, seen: ['tenant'] });
    expect(await call('GET', '/')).toMatchObject({ status: 404 });
    expect(await call('GET', '//raw-data-sources')).toMatchObject({ status: 404 });
  });
});
