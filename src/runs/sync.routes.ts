import Router from '@koa/router';
import { NotFoundError, ValidationError } from '../http/errors';
import type { Context } from 'koa';
import { jsonBody, uuidParam } from '../http/request';
import type { DraftInput } from '../sources/source-drafts';
import { queryValidator } from '../http/validation';
import type { SyncRunRepository } from './sync-run.repository';
import { runsQuerySchema, type JobAccepted } from './sync.contracts';
import type { SyncService, TestOutcome } from './sync.service';
import type { RunCancel } from './run-cancel';

const JOB_ID = /^[A-Za-z0-9:_-]{1,200}$/;

/** The request's id (set by requestContext), carried into the jobs it queues so logs connect. */
const requestIdOf = (ctx: Context): string | undefined =>
  typeof ctx.state.requestId === 'string' ? ctx.state.requestId : undefined;

/** Custom actions on sources (sync, test, sync-all, run history) and job polling. */
export function syncRoutes(deps: {
  /** Validates a create body (schema and the source rules) for testing an unsaved configuration. */
  validateDraft(body: unknown): Promise<DraftInput>;
  sync: SyncService;
  runs: SyncRunRepository;
  sourceExists(id: string): Promise<boolean>;
  cancel: Pick<RunCancel, 'cancelSource'>;
}): Router {
  const router = new Router();
  const validateRunsQuery = queryValidator<{ limit: number; offset: number }>(runsQuerySchema);

  // Every 202 says where its job is read (Location), as the test's does.
  router.post('/raw-data-sources/sync-all', async (ctx) => {
    const accepted = await deps.sync.syncAll(requestIdOf(ctx));
    ctx.status = 202;
    ctx.set('Location', `/jobs/${accepted.batch_id}`);
    ctx.body = accepted;
  });

  router.post('/raw-data-sources/:id/sync', async (ctx) => {
    const accepted = await deps.sync.requestSync(uuidParam(ctx), requestIdOf(ctx));
    ctx.status = 202;
    ctx.set('Location', `/jobs/${accepted.job_id}`);
    ctx.body = accepted;
  });

  router.post('/raw-data-sources/:id/cancel', async (ctx) => {
    const reason = `cancelled by request${requestIdOf(ctx) ? ` ${requestIdOf(ctx)}` : ''}`;
    ctx.body = await deps.cancel.cancelSource(uuidParam(ctx), reason);
  });

  const answerTest = (ctx: Context, outcome: TestOutcome) => {
    if (outcome.done) ctx.body = outcome.result;
    else {
      ctx.status = 202;
      ctx.set('Location', `/jobs/${outcome.job_id}`);
      ctx.body = { job_id: outcome.job_id, status: 'queued' } satisfies JobAccepted;
    }
  };

  router.post('/raw-data-sources/test', async (ctx) => {
    answerTest(ctx, await deps.sync.testDraft(await deps.validateDraft(jsonBody(ctx)), requestIdOf(ctx)));
  });

  router.post('/raw-data-sources/:id/test', async (ctx) => {
    answerTest(ctx, await deps.sync.test(uuidParam(ctx), requestIdOf(ctx)));
  });

  router.get('/raw-data-sources/:id/runs', async (ctx) => {
    const id = uuidParam(ctx);
    const query = validateRunsQuery(ctx.query);
    if (!(await deps.sourceExists(id))) throw new NotFoundError('RawDataSource not found.');
    const page = await deps.runs.list(id, query.limit, query.offset);
    ctx.body = {
      data: page.data,
      pagination: { total: page.total, limit: query.limit, offset: query.offset },
    };
  });

  router.get('/jobs/:id', async (ctx) => {
    const id = ctx.params.id ?? '';
    if (!JOB_ID.test(id))
      throw new ValidationError([{ pointer: 'id', in: 'path', message: 'is not a job id' }]);
    const job = await deps.sync.getJob(id);
    if (!job) throw new NotFoundError('No such job (finished jobs are kept for 24 hours).');
    ctx.body = job;
  });

  return router;
}
