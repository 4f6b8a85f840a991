import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { publishMany, type EventBus } from '../events/event-bus';
import type { Queues } from '../queue/queue-factory';
import { syncDedupId, type SyncAllJobData, type SyncJobData } from '../queue/queue-names';

export const FAN_OUT_PAGE = 2000;

/**
 * Fans a sync-all out in pages: each page opens runs for the active sources that have none
 * (one INSERT … SELECT, the partial unique index skipping busy ones) and enqueues them with one
 * addBulk. Keyset paging by id keeps every page as cheap as the first.
 */
export class SyncAllProcessor {
  constructor(private readonly deps: { knex: Knex; queues: Queues; events: EventBus; redis: Redis }) {}

  async process(job: Job<SyncAllJobData>): Promise<{ batch_id: string; queued: number }> {
    const { batchId } = job.data;
    let lastId = '00000000-0000-0000-0000-000000000000';
    let queued = 0;
    for (;;) {
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
        [lastId, FAN_OUT_PAGE, batchId],
      );
      const row = result.rows[0] as { last_id: string | null; scanned: number; runs: [string, string][] };
      if (row.runs.length) {
        await this.deps.queues.sync.addBulk(
          row.runs.map(([runId, sourceId]) => ({
            name: 'sync',
            data: { sourceId, runId, trigger: 'sync_all' } satisfies SyncJobData,
            opts: { jobId: runId, deduplication: { id: syncDedupId(sourceId) } },
          })),
        );
        await publishMany(
          this.deps.events,
          this.deps.redis,
          row.runs.map(([runId, sourceId]) => [
            'sync.queued',
            { source_id: sourceId, run_id: runId, data: { trigger: 'sync_all', batch_id: batchId } },
          ]),
        );
        queued += row.runs.length;
        await job.updateProgress({ queued });
      }
      if (!row.last_id || row.scanned < FAN_OUT_PAGE) break;
      lastId = row.last_id;
    }
    return { batch_id: batchId, queued };
  }
}
