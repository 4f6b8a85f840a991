/**
 * The baseline: the same two reads written the plain way, a minimal Koa + @koa/router + knex
 * handler each, with no validation, no masking logic, no logging and count(*) for the total. Same
 * knex pool settings as Sluice (src/db/create-knex), so the comparison is about the code path.
 */
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa from 'koa';
import { createKnex } from '../../src/db/create-knex';

const COLUMNS = [
  'id',
  'name',
  'source_type',
  'connection_string_masked',
  'schema_definition',
  'refresh_interval',
  'is_active',
  'last_sync_at',
  'sync_status',
  'error_message',
  'metadata',
  'created_at',
  'updated_at',
];

const knex = createKnex({ url: process.env.DATABASE_URL ?? '' });
const router = new Router();

router.get('/raw-data-sources/:id', async (ctx) => {
  const row = await knex('raw_data_sources').select(COLUMNS).where({ id: ctx.params.id }).first();
  if (!row) ctx.status = 404;
  else ctx.body = row;
});

router.get('/raw-data-sources', async (ctx) => {
  const q = ctx.query;
  const where: Record<string, unknown> = {};
  if (q.type) where.source_type = q.type;
  if (q.status) where.sync_status = q.status;
  if (q.active) where.is_active = q.active === 'true';
  const limit = Number(q.limit ?? 20);
  const offset = Number(q.offset ?? 0);
  const [data, counted] = await Promise.all([
    knex('raw_data_sources')
      .select(COLUMNS)
      .where(where)
      .orderBy([
        { column: 'created_at', order: 'desc' },
        { column: 'id', order: 'desc' },
      ])
      .limit(limit)
      .offset(offset),
    knex('raw_data_sources').where(where).count({ total: '*' }),
  ]);
  ctx.body = { data, pagination: { total: counted[0]?.total ?? 0, limit, offset } };
});

const app = new Koa();
app.use(router.routes());
const server = app.listen(0, '127.0.0.1', () =>
  process.send?.({ port: (server.address() as AddressInfo).port }),
);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Requests still in flight finish first: destroying the pool under them aborts their acquire
  // (Koa printed each as an error after the last round).
  server.closeIdleConnections();
  const cut = setTimeout(() => server.closeAllConnections(), 2000);
  await new Promise((resolve) => server.close(resolve));
  clearTimeout(cut);
  await knex.destroy();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('message', (message) => {
  if (message !== 'cpu') return;
  const { user, system } = process.cpuUsage();
  process.send?.({ cpuMicros: user + system });
});
process.on('disconnect', () => void stop());
