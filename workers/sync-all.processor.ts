import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { publishMany, type EventBus } from '../src/events/event-bus';
import type { Queues } from '../src/queue/queue-factory';
import { syncDedupId, type SyncAllJobData, type SyncJobData } from '../src/queue/queue-names';

export const FAN_OUT_PAGE = 2000;

interface OpenedPage {
  last_id: string | null;
  scanned: number;
  runs: [string, string][];
}

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
  constructor(private readonly deps: { knex: Knex; queues: Queues; events: EventBus; redis: Redis }) {}

  private async openPage(batchId: string, afterId: string): Promise<OpenedPage> {
    const result = await this.deps.knex.raw(
      `WITH page AS (
         SELECT id FROM raw_data_sources WHERE is_active AND id > ? ORDER BY id LIMIT ?
       ), opened AS (
         INSERT INTO sync_runs (id, source_id, trigger, job_id, batch_id)
         SELECT n.run_id, n.id, 'sync_all', n.run_id::text, ? FROM (SELECT gen_random_uuid() AS run_id, id FROM page) n
         ON CONFLICT (source_id) WHERE status IN ('queued', 'running') DO NOTHING
         RETURNING id, source_id
       )
       SELECT (SELECT max(id::text) FROM page) AS last_id, (SELECT count(*) FROM page)::int AS scanned,
              coalesce((SELECT json_agg(json_build_array(id, source_id)) FROM opened), '[]') AS runs`,
      [afterId, FAN_OUT_PAGE, batchId],
    );
    return result.rows[0] as OpenedPage;
  }

  async process(job: Job<SyncAllJobData>): Promise<{ batch_id: string; queued: number }> {
    const { batchId } = job.data;
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
        await this.deps.queues.sync.addBulk(
          page.runs.map(([runId, sourceId]) => ({
            name: 'sync',
            data: { sourceId, runId, trigger: 'sync_all' } satisfies SyncJobData,
            opts: { jobId: runId, deduplication: { id: syncDedupId(sourceId) } },
          })),
        );
        // Events in page order, each page's after its jobs exist; best-effort, as publishMany is.
        await publishing;
        publishing = publishMany(
          this.deps.events,
          this.deps.redis,
          page.runs.map(([runId, sourceId]) => [
            'sync.queued',
            { source_id: sourceId, run_id: runId, data: { trigger: 'sync_all', batch_id: batchId } },
          ]),
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
