import Router from '@koa/router';
import { NotFoundError } from '../http/errors';
import { uuidParam } from '../http/request';
import type { RunLogView } from './run-log.contracts';
import type { RunLogs } from './run-log';
import type { SyncRunRepository } from './sync-run.repository';

/** GET a run's own log: thin, the run is looked up under its source so another source's run is a 404. */
export function runLogRoutes(deps: { runs: Pick<SyncRunRepository, 'get'>; logs: RunLogs }): Router {
  const router = new Router();
  router.get('/raw-data-sources/:id/runs/:run_id/logs', async (ctx) => {
    const sourceId = uuidParam(ctx);
    const runId = uuidParam(ctx, 'run_id');
    const run = await deps.runs.get(runId);
    if (!run || run.source_id !== sourceId) throw new NotFoundError('No such run of this source.');
    ctx.body = {
      run_id: run.id,
      source_id: run.source_id,
      status: run.status,
      lines: await deps.logs.lines(runId),
    } satisfies RunLogView;
  });
  return router;
}
