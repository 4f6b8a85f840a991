import { createHash } from 'node:crypto';

/** The queues Sluice runs; job payloads carry ids only, never a secret. */
export const QUEUES = {
  sync: 'sync',
  test: 'test',
  syncAll: 'sync-all',
  purge: 'source-purge',
  /** Webhook notification deliveries (src/notifications): `{deliveryId}`. */
  notify: 'notify',
} as const;
/** A queue's name: one of QUEUES, or a sync shard beyond the first (`sync-<n>`, syncQueueName). */
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES] | `sync-${number}`;

/**
 * Shard `shard`'s sync queue: shard 0 is `sync`, today's queue, so SYNC_SHARDS=1 changes nothing
 * and growing the shard count keeps the jobs and schedulers of `sync` where workers still read.
 */
export const syncQueueName = (shard: number): QueueName => (shard === 0 ? QUEUES.sync : `sync-${shard}`);

/** Whether `name` is a sync queue (any shard). */
export const isSyncQueue = (name: string): boolean => name === QUEUES.sync || /^sync-\d+$/.test(name);

/**
 * The shard of a source: a stable hash of its id (the same on every process and restart), so one
 * source's manual syncs, ticks, dedup id and scheduler always live in one queue. Not the hash
 * ScheduleService.offsetFor uses (bytes 0-3): these are bytes 4-7 of the id's SHA-1.
 */
export function syncShardOf(sourceId: string, shards: number): number {
  if (shards <= 1) return 0;
  return createHash('sha1').update(sourceId).digest().readUInt32BE(4) % shards;
}

/**
 * The BullMQ prefix of queue `name`: QUEUE_PREFIX on one Redis (keys `<prefix>:<name>:…`, as
 * always); on a cluster, a hash tag of its own per queue (`{<prefix>.<name>}:<name>:…`), since
 * BullMQ's scripts touch many keys of one queue at once (they must share a slot) and distinct
 * tags spread the queues over the cluster's masters. Every Queue and Worker of `name` must use it.
 */
export function bullPrefix(prefix: string, name: string, cluster: boolean): string {
  return cluster ? `{${prefix}.${name}}` : prefix;
}

export type SyncTrigger = 'manual' | 'schedule' | 'sync_all';

export interface SyncJobData {
  sourceId: string;
  /** Absent on jobs a scheduler made: the worker opens the run when the tick fires. */
  runId?: string;
  /**
   * Absent on jobs a scheduler made too (a tick is a job without runId): `{"sourceId":"<uuid>"}`
   * alone keeps the scheduler's stored template within Redis's compact-hash limit (ScheduleService).
   */
  trigger?: SyncTrigger;
  /** The HTTP request that queued the job (an id, never a secret): its worker's log lines carry it. */
  requestId?: string;
  /** Times the job waited for a concurrency slot (runs/concurrency-gate): not attempts of its run. */
  gateWaits?: number;
}

/** A saved source by id, or an unsaved configuration sealed in source_drafts by draft id. */
export type TestJobData = (
  { sourceId: string; draftId?: undefined } | { draftId: string; sourceId?: undefined }
) & {
  requestId?: string;
  /** The whole test's time, so it ends before the API stops waiting (runs/test-budget.ts). */
  budgetMs?: number;
};

export interface SyncAllJobData {
  batchId: string;
  requestId?: string;
}

/** Removes the records of a deleted source (source_purges names it). */
export interface PurgeJobData {
  sourceId: string;
  requestId?: string;
}

/**
 * The longest sync job name: a scheduler's template is a Redis hash that stays compact (listpack)
 * only while every value is at most 64 bytes (hash-max-listpack-value; see ScheduleService).
 */
export const SYNC_JOB_NAME_MAX_BYTES = 64;

/**
 * A sync job's name as the dashboard lists it, `sync: <source name>` (cut to
 * SYNC_JOB_NAME_MAX_BYTES, whole characters only). A name, not an id: nothing looks jobs up by
 * it (ids are the run id, dedup keys and scheduler ids below), so a renamed source's jobs need no
 * migration; a scheduler's template takes the new name on the rename's upsert.
 */
export function syncJobName(sourceName?: string | null): string {
  if (!sourceName) return 'sync';
  let name = 'sync: ';
  let bytes = Buffer.byteLength(name);
  for (const ch of sourceName) {
    const size = Buffer.byteLength(ch);
    if (bytes + size > SYNC_JOB_NAME_MAX_BYTES) break;
    name += ch;
    bytes += size;
  }
  return name;
}

/** Ids of jobs and schedulers, kept stable (never the name); BullMQ 6 forbids ':' in ids we choose. */
export const schedulerId = (sourceId: string) => `source-${sourceId}`;
export const syncDedupId = (sourceId: string) => `sync-${sourceId}`;
/** One purge job at a time per source: a repeated delete or the repair's re-queue joins it. */
export const purgeDedupId = (sourceId: string) => `purge-${sourceId}`;
