import type { BeforeHook } from '@bull-board/api/typings/app';
import type { Context, Middleware } from 'koa';
import type { Queue } from 'bullmq';
import { ForbiddenError } from '../http/errors';

export const ADMIN_QUEUES_PATH = '/admin/queues';

/**
 * The job-schedulers view reads every scheduler of a queue, plus a job lookup for each, in one
 * response: measured at ~3 s and 2 MB for 5,000 schedulers, so about a minute and 40 MB at 100k.
 * Beyond this many it is refused with a message; the queue views still page the delayed ticks.
 */
export const MAX_LISTED_SCHEDULERS = 1000;
/** The UI asks for small pages; a hand-made URL must not ask for 100k jobs at once. */
export const MAX_JOBS_PER_PAGE = 1000;

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** What an HTML form (or a no-cors fetch) can send without a preflight: never what the board's own UI sends. */
const FORM_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']);

/** Why a state-changing dashboard request looks cross-site, or undefined when it does not. */
function crossSiteProblem(ctx: Context): string | undefined {
  const site = ctx.get('sec-fetch-site').toLowerCase();
  if (site && site !== 'same-origin' && site !== 'none')
    return `the browser marks it ${site} (Sec-Fetch-Site)`;
  const origin = ctx.get('origin');
  if (origin) {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (!host || host.toLowerCase() !== ctx.get('host').toLowerCase())
      return `its Origin (${origin.slice(0, 100)}) is not this server (${ctx.get('host').slice(0, 100)})`;
  }
  const type = ctx.get('content-type').split(';')[0]!.trim().toLowerCase();
  if (FORM_TYPES.has(type)) return `its body is ${type}, which any web page can send`;
  return undefined;
}

/**
 * The dashboard is behind HTTP Basic, which a browser keeps sending once entered: any web page
 * could then post a form to it with the admin's credentials. State-changing requests (anything
 * but GET/HEAD/OPTIONS) under /admin/queues are refused (403) when the browser says they come
 * from another site (Sec-Fetch-Site, Origin not this Host) or carry a form content type; the
 * board's own UI sends JSON or no body from the same origin. Reads stay open (a cross-site page
 * cannot read their answers).
 */
export function refuseCrossSite(): Middleware {
  return (ctx, next) => {
    if (SAFE_METHODS.has(ctx.method) || !ctx.path.toLowerCase().startsWith(ADMIN_QUEUES_PATH)) return next();
    const problem = crossSiteProblem(ctx);
    if (problem)
      throw new ForbiddenError(
        `Refused a state-changing dashboard request that may come from another site: ${problem}. Use the dashboard itself, or send JSON with an Authorization header.`,
      );
    return next();
  };
}

/** Keeps the board's two unbounded reads bounded (bull-board's `handlerHooks` option). */
const boundReads: BeforeHook = async ({ route, request }) => {
  if (route === '/api/queues') {
    const perPage = Number(request.query.jobsPerPage);
    if (Number.isInteger(perPage) && perPage > MAX_JOBS_PER_PAGE)
      request.query.jobsPerPage = String(MAX_JOBS_PER_PAGE);
    return;
  }
  if (route !== '/api/job-schedulers') return;
  const wanted =
    typeof request.query.queueName === 'string' ? decodeURIComponent(request.query.queueName) : undefined;
  let total = 0;
  for (const [name, queue] of request.queues)
    if (!wanted || wanted === name) total += await queue.getJobSchedulersCount();
  if (total <= MAX_LISTED_SCHEDULERS) return;
  return {
    allow: false,
    status: 403,
    errorKey: 'ERRORS.FORBIDDEN',
    message: `${total} job schedulers are too many to list at once (limit ${MAX_LISTED_SCHEDULERS}); each queue's delayed jobs show the pending ticks page by page.`,
  };
};

/** What the dashboard's removals of sync jobs do to their runs (runs/run-cancel.ts). */
export interface BoardCancels {
  /** The sync queues' names (one per shard), as the board's routes carry them. */
  syncQueues: string[];
  /** Cancels the job's run (if still active) and waits, bounded, for a worker holding it to let go. */
  cancelJob(queueName: string, jobId: string): Promise<unknown>;
  /** Cancels the runs of every job `empty` is about to remove from that queue (waiting, delayed, prioritized). */
  cancelWaiting?(queueName: string): Promise<unknown>;
}

/**
 * Removing a sync job on the board (its "Remove"/clean action, bull-board's
 * `PUT /api/queues/:queueName/:jobId/clean`; "Empty" on the whole queue) is a cancel of its run:
 * the run ends `cancelled` with its event and its source goes back to its status before the run,
 * instead of the run sitting `queued` until the reconciler fails it as lost. An active job is
 * first stopped by its worker, so the board's removal then succeeds instead of answering "active".
 */
function cancelOnRemove(cancels: BoardCancels): BeforeHook {
  return async ({ route, request }) => {
    const params = request.params as { queueName?: string; jobId?: string };
    // The router has decoded the path parameters already.
    const queueName = params.queueName;
    if (!queueName || !cancels.syncQueues.includes(queueName)) return;
    if (route === '/api/queues/:queueName/:jobId/clean' && params.jobId)
      await cancels.cancelJob(queueName, params.jobId);
    else if (route === '/api/queues/:queueName/empty') await cancels.cancelWaiting?.(queueName);
  };
}

/** Builds the board: bull-board's packages are imported here, on the first dashboard request. */
async function loadBoard(queues: Queue[], cancels?: BoardCancels): Promise<Middleware> {
  const [{ createBullBoard }, { BullMQAdapter }, { KoaAdapter }] = await Promise.all([
    import('@bull-board/api'),
    import('@bull-board/api/bullMQAdapter'),
    import('@bull-board/koa'),
  ]);
  const serverAdapter = new KoaAdapter();
  serverAdapter.setBasePath(ADMIN_QUEUES_PATH);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: false })),
    serverAdapter,
    options: {
      uiConfig: { boardTitle: 'Sluice jobs' },
      handlerHooks: {
        before: async (context) => {
          if (cancels) await cancelOnRemove(cancels)(context);
          return boundReads(context);
        },
      },
    },
  });
  return serverAdapter.registerPlugin() as Middleware;
}

/**
 * The Bull dashboard for our queues. Counts are per-state cardinalities and job lists are pages,
 * so 100k scheduler-delayed jobs cost no more than a few; the two reads that would load them all
 * are bounded by `boundReads`. Built on the first request under /admin/queues: bull-board, its UI
 * and their routes weigh on the heap (and on every garbage collection) of an API that may never
 * show the dashboard (docs/RESULTS.md, start-up memory).
 */
export function adminBoard(queues: Queue[], cancels?: BoardCancels): Middleware {
  let board: Promise<Middleware> | undefined;
  return async (ctx, next) => {
    // The board's router is not case-sensitive either: /Admin/Queues reaches it too.
    if (!ctx.path.toLowerCase().startsWith(ADMIN_QUEUES_PATH)) return next();
    board ??= loadBoard(queues, cancels).catch((err: unknown) => {
      board = undefined; // the next request tries again
      throw err;
    });
    return (await board)(ctx, next);
  };
}
