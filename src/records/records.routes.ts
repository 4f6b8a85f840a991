import Router from '@koa/router';
import type { Context } from 'koa';
import type { Knex } from 'knex';
import { NotAcceptableError, NotFoundError, ServiceUnavailableError, ValidationError } from '../http/errors';
import { uuidParam } from '../http/request';
import { queryValidator } from '../http/validation';
import {
  quarantineQuerySchema,
  RECORD_MEDIA_TYPES,
  recordsQuerySchema,
  type CursorPagination,
  type QuarantineQuery,
  type RecordMediaType,
  type RecordsQuery,
} from './records.contracts';
import type { ExportFormat, RecordFilter, RecordsRepository } from './records.repository';

const CURSOR_ID = /^[1-9]\d{0,17}$/;
const FORMATS: Partial<Record<RecordMediaType, ExportFormat>> = {
  'application/x-ndjson': 'ndjson',
  'text/csv': 'csv',
};

/** Cursors are opaque (base64url of the last id) so that their form may change without breaking clients. */
export const encodeCursor = (id: number): string => Buffer.from(String(id)).toString('base64url');

function decodeCursor(after: string | undefined): number | undefined {
  if (after === undefined) return undefined;
  const id = Buffer.from(after, 'base64url').toString();
  if (!CURSOR_ID.test(id))
    throw new ValidationError([{ pointer: 'after', in: 'query', message: 'is not a cursor from this API' }]);
  return Number(id);
}

const pagination = (limit: number, lastId: number | undefined): CursorPagination => ({
  limit,
  next_cursor: lastId === undefined ? null : encodeCursor(lastId),
});

/** The media type the client accepts (JSON when it says nothing), or a 406. */
function negotiate(ctx: Context): RecordMediaType {
  const type = ctx.accepts(...RECORD_MEDIA_TYPES);
  if (!type) throw new NotAcceptableError(RECORD_MEDIA_TYPES);
  return type as RecordMediaType;
}

/** Every export connection busy: the pool's wait ran out. */
const isPoolTimeout = (err: unknown) =>
  err instanceof Error && /timeout exceeded when trying to connect/i.test(err.message);

/** Landed and quarantined records of a source: JSON pages by cursor, or one NDJSON / CSV stream. */
export function recordsRoutes(deps: {
  records: RecordsRepository;
  sourceExists(id: string): Promise<boolean>;
}): Router {
  const router = new Router();
  const validateRecords = queryValidator<RecordsQuery>(recordsQuerySchema);
  const validateQuarantine = queryValidator<QuarantineQuery>(quarantineQuerySchema);

  const filterOf = (id: string, query: QuarantineQuery): RecordFilter => ({
    sourceId: id,
    afterId: decodeCursor(query.after),
    runId: query.run_id?.toLowerCase(),
    since: query.since,
  });

  const stream = async (ctx: Context, format: ExportFormat, open: () => Promise<NodeJS.ReadableStream>) => {
    try {
      const body = await open();
      ctx.type = format === 'ndjson' ? 'application/x-ndjson; charset=utf-8' : 'text/csv; charset=utf-8';
      ctx.set('Cache-Control', 'no-store');
      ctx.body = body;
    } catch (err) {
      if (isPoolTimeout(err))
        throw new ServiceUnavailableError('Every export connection is busy; try again shortly.');
      throw err;
    }
  };

  router.get('/raw-data-sources/:id/records', async (ctx) => {
    const id = uuidParam(ctx);
    const query = validateRecords(ctx.query);
    const type = negotiate(ctx);
    if (!(await deps.sourceExists(id))) throw new NotFoundError('RawDataSource not found.');
    const filter = filterOf(id, query);
    let view: Knex.QueryBuilder | undefined;
    if (query.view === 'current') {
      view = (await deps.records.currentView(id))?.from;
      if (!view)
        throw new ValidationError([
          { pointer: 'view', in: 'query', message: "current is not available for this source's sync mode" },
        ]);
    }
    const format = FORMATS[type];
    if (format) return stream(ctx, format, () => deps.records.exportLanded(filter, format, view));
    const page = await deps.records.landed(filter, query.limit, view);
    ctx.body = { data: page.data, pagination: pagination(query.limit, page.lastId) };
  });

  router.get('/raw-data-sources/:id/quarantine', async (ctx) => {
    const id = uuidParam(ctx);
    const query = validateQuarantine(ctx.query);
    const type = negotiate(ctx);
    if (!(await deps.sourceExists(id))) throw new NotFoundError('RawDataSource not found.');
    const filter = filterOf(id, query);
    const format = FORMATS[type];
    if (format) return stream(ctx, format, () => deps.records.exportQuarantined(filter, format));
    const page = await deps.records.quarantined(filter, query.limit);
    ctx.body = { data: page.data, pagination: pagination(query.limit, page.lastId) };
  });

  return router;
}
