import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import Router from '@koa/router';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app';
import { startTestApi, type TestApi } from '../helpers/api-harness';

/**
 * connection_string never reaches a log line: not through the API's own logging, and not when
 * code logs a request body or an error that carries it, at any depth.
 */
const SECRET = 'Redact-Me-7f3Kq';
const OTHER_SECRET = 'Second-S3cret-x9';
const P = '/raw-data-sources';
const connection = (secret: string) => `postgres://loader:${secret}@127.0.0.1:5432/warehouse`;

describe('secrets stay out of the logs', () => {
  let api: TestApi;
  let side: Server;
  let sideUrl: string;

  beforeAll(async () => {
    api = await startTestApi();
    // A route that does what careless code would: log the body it got, then fail with the source
    // (and its connection string) in the error. It runs inside the real app, on the API's logger.
    const careless = new Router();
    careless.post('/careless', (ctx) => {
      const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
      const logger = api.container.logger;
      logger.info({ body }, 'received');
      logger.info({ job: { source: body } }, 'queued');
      logger.info({ batch: [{ sources: [{ item: { body } }] }] }, 'deeply nested');
      logger.child({ source: body }).info('child logger');
      logger.warn(`connecting to ${String(body.connection_string)}`);
      throw Object.assign(new Error(`could not connect to ${String(body.connection_string)}`), {
        source: body,
        cause: new Error(`dial ${String(body.connection_string)}`),
      });
    });
    const app = createApp({ logger: api.container.logger, bodyLimit: '1mb', routers: [careless] });
    side = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    sideUrl = `http://127.0.0.1:${(side.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => side?.close(resolve));
    await api?.close();
  });

  it('a full CRUD round with a secret in connection_string logs requests but never the secret', async () => {
    const before = api.logs.length;
    const created = await api.post(P, { name: 'redaction-a', connection_string: connection(SECRET) });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    await api.get(`${P}/${id}`);
    await api.get(`${P}?limit=100`);
    await api.put(`${P}/${id}`, { connection_string: connection(OTHER_SECRET) });
    // Failures with the secret in the body: duplicate name (409), invalid field (400), bad JSON (400).
    expect((await api.post(P, { name: 'redaction-a', connection_string: connection(SECRET) })).status).toBe(
      409,
    );
    expect(
      (await api.post(P, { name: 'b', connection_string: connection(SECRET), refresh_interval: '9' })).status,
    ).toBe(400);
    const truncated = `{"name":"c","connection_string":"${connection(SECRET)}"`;
    const bad = await api.request('POST', P, {
      raw: truncated,
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.status).toBe(400);
    expect((await api.del(`${P}/${id}`)).status).toBe(204);

    const lines = api.logs.slice(before);
    expect(lines.length).toBeGreaterThanOrEqual(8);
    for (const line of lines) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain(OTHER_SECRET);
    }
    // No response carried it either.
    expect(created.text).not.toContain(SECRET);
  });

  it('code that logs the request body or throws an error holding it leaks nothing', async () => {
    const before = api.logs.length;
    const res = await fetch(`${sideUrl}/careless`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRET}` },
      body: JSON.stringify({
        name: 'careless',
        connection_string: connection(SECRET),
        nested: { connection_string: SECRET },
      }),
    });
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain(SECRET);
    expect(text).not.toMatch(/could not connect|\n\s+at /);

    const lines = api.logs.slice(before);
    const messages = lines.map((l) => JSON.parse(l) as { msg: string });
    expect(messages.map((m) => m.msg)).toEqual(
      expect.arrayContaining(['received', 'queued', 'deeply nested', 'child logger', 'unhandled error']),
    );
    for (const line of lines) expect(line, line).not.toContain(SECRET);
    // The error is still useful: its message, stack and the source's other fields are kept.
    const unhandled = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'unhandled error');
    expect(unhandled.err.message).toBe('could not connect to postgres://****@127.0.0.1:5432/warehouse');
    expect(unhandled.err.source).toMatchObject({ name: 'careless', connection_string: '[REDACTED]' });
    expect(unhandled.err.source.nested.connection_string).toBe('[REDACTED]');
  });

  it('the whole file left no secret anywhere in the logs', () => {
    expect(api.logs.length).toBeGreaterThan(0);
    expect(api.logs.filter((l) => l.includes(SECRET) || l.includes(OTHER_SECRET))).toEqual([]);
  });
});
