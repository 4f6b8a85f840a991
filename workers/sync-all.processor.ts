import type { Job, JobsOptions, Queue } from 'bullmq';
import type { SyncAllJobResult } from '../src/runs/sync.contracts';
import type { Queues } from '../src/queue/queue-factory';
import type { RunLifecycle } from '../src/runs/run-lifecycle';
import type { OpenedPage } from '../src/runs/sync-run.repository';
import { syncDedupId, syncJobName, type SyncAllJobData, type SyncJobData } from '../src/queue/queue-names';

export const FAN_OUT_PAGE = 2000;

/**
 * Fans a sync-all out in pages: each page opens runs for the active sources that have none
 * (one INSERT … SELECT, the partial unique index skipping busy ones) and enqueues them with one
 * addBulk. Keyset paging by id keeps every page as cheap as the first. Postgres opens the next
 * page while Redis takes the current one, and a page's events go out while the next is enqueued,
 * so the fan-out costs little more than the enqueue itself (bench/sync-all.bench.ts). If an
 * enqueue fails, the runs of the page read ahead are left queued without a job, like those of the
 * failed page: the run reconciler closes them.
 */
export class SyncAllProcessor {
  constructor(
    private readonly deps: {
      queues: Queues;
      lifecycle: RunLifecycle;
      /** Retry options of the page's sources that set their own (runs/run-policy); the rest take the queue's. */
      retryOverrides?: (sourceIds: string[]) => Promise<Map<string, JobsOptions>>;
    },
  ) {}

  private openPage(batchId: string, afterId: string): Promise<OpenedPage> {
    return this.deps.lifecycle.runs.openSyncAllPage(batchId, afterId, FAN_OUT_PAGE);
  }

  async process(job: Job<SyncAllJobData>): Promise<SyncAllJobResult> {
    const { batchId } = job.data;
    // The API answered 503 for this batch (its enqueue timed out, then Redis took it anyway).
    if (!(await this.deps.lifecycle.runs.claimBatch(batchId)))
      return { batch_id: batchId, queued: 0, cancelled: true };
    let queued = 0;
    let next: Promise<OpenedPage> | undefined = this.openPage(
      batchId,
      '00000000-0000-0000-0000-000000000000',
    );
    let publishing: Promise<void> = Promise.resolve();
    try {
      while (next) {
        const page: OpenedPage = await next;
        const more = page.last_id !== null && page.scanned >= FAN_OUT_PAGE;
        next = more ? this.openPage(batchId, page.last_id!) : undefined;
        // Should this page fail, the one read ahead must not become an unhandled rejection.
        next?.catch(() => undefined);
        if (!page.runs.length) continue;
        const retry =
          (await this.deps.retryOverrides?.(page.runs.map(([, sourceId]) => sourceId))) ?? new Map();
        // One addBulk per shard (each queue is its own slot on a cluster), side by side.
        const byShard = new Map<Queue, OpenedPage['runs']>();
        for (const entry of page.runs) {
          const queue = this.deps.queues.syncFor(entry[1]);
          byShard.set(queue, [...(byShard.get(queue) ?? []), entry]);
        }
        await Promise.all(
          [...byShard].map(([queue, runs]) =>
            queue.addBulk(
              runs.map(([runId, sourceId, name]) => ({
                name: syncJobName(name),
                data: { sourceId, runId, trigger: 'sync_all' } satisfies SyncJobData,
                opts: { jobId: runId, deduplication: { id: syncDedupId(sourceId) }, ...retry.get(sourceId) },
              })),
            ),
          ),
        );
        // Events in page order, each page's after its jobs exist; best-effort, as publishing is.
        await publishing;
        publishing = this.deps.lifecycle.queued(
          page.runs.map(([runId, sourceId]) => ({ runId, sourceId, trigger: 'sync_all', batchId })),
        );
        queued += page.runs.length;
        await job.updateProgress({ queued });
      }
    } finally {
      await publishing;
    }
    return { batch_id: batchId, queued };
  }
}
