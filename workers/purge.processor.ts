import type { Job } from 'bullmq';
import type { Logger } from '../src/logger';
import type { PurgeJobData } from '../src/queue/queue-names';
import type { SourcePurges } from '../src/sources/source-purges';
import type { SourceStore } from '../src/sources/source-store';
import type { RunLogs } from '../src/runs/run-log';

export interface PurgeOptions {
  /** Rows deleted per statement and table (default 5000). */
  batchSize?: number;
  /** Pause between batches, so a purge leaves room to the landing of other sources (default 50 ms). */
  pauseMs?: number;
}

/**
 * Removes the records of a deleted source, `batchSize` rows per statement with a pause between
 * batches: each statement is short, locks only the deleted source's rows, and commits on its own,
 * so other sources keep landing and a retry (or a second worker) simply continues with what is
 * left. A purge whose source still exists was recorded by a delete that then failed: dropped.
 */
export class PurgeProcessor {
  private readonly batchSize: number;
  private readonly pauseMs: number;

  constructor(
    private readonly deps: {
      purges: SourcePurges;
      sources: Pick<SourceStore, 'nameOf'>;
      /** The runs' log chunks go with the records (they do not cascade with the source either). */
      runLogs?: Pick<RunLogs, 'deleteBatch'>;
      logger: Logger;
    },
    options: PurgeOptions = {},
  ) {
    this.batchSize = Math.max(1, options.batchSize ?? 5000);
    this.pauseMs = Math.max(0, options.pauseMs ?? 50);
  }

  async process(
    job: Job<PurgeJobData>,
    signal?: AbortSignal,
  ): Promise<{ records: number; quarantined: number; log_chunks: number; batches: number }> {
    const { sourceId } = job.data;
    if ((await this.deps.sources.nameOf(sourceId)) !== undefined) {
      await this.deps.purges.cancel(sourceId);
      this.deps.logger.warn({ sourceId }, 'purge dropped: the source still exists (its delete failed)');
      return { records: 0, quarantined: 0, log_chunks: 0, batches: 0 };
    }
    const total = { records: 0, quarantined: 0, log_chunks: 0, batches: 0 };
    for (;;) {
      signal?.throwIfAborted();
      const removed = await this.deps.purges.deleteBatch(sourceId, this.batchSize);
      total.records += removed.records;
      total.quarantined += removed.quarantined;
      const logChunks = (await this.deps.runLogs?.deleteBatch(sourceId, this.batchSize)) ?? 0;
      total.log_chunks += logChunks;
      total.batches += 1;
      if (Math.max(removed.records, removed.quarantined, logChunks) < this.batchSize) break;
      await job.updateProgress(total).catch(() => undefined);
      if (this.pauseMs) await new Promise((resolve) => setTimeout(resolve, this.pauseMs));
    }
    await this.deps.purges.finish(sourceId);
    this.deps.logger.info({ sourceId, ...total }, 'source data purged');
    return total;
  }
}
