import type { Logger } from '../src/logger';

/**
 * One job as its worker tracks it: made by SyncWorker when the job starts, filled in by the
 * processor, read back when the job ends. `logger` carries the job's ids (queue, jobId, sourceId,
 * runId, the requestId that queued it) on every line the job writes, the connector's included.
 */
export interface JobScope {
  logger: Logger;
  /** The source's type once the processor has loaded it (a metrics label). */
  sourceType?: string;
  /** What a successful sync run landed, from the run's own counters. */
  landed?: { records: number; bytes: number; invalid: number };
}
