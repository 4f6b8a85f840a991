/** The queues Sluice runs; job payloads carry ids only, never a secret. */
export const QUEUES = { sync: 'sync', test: 'test', syncAll: 'sync-all' } as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

export type SyncTrigger = 'manual' | 'schedule' | 'sync_all';

export interface SyncJobData {
  sourceId: string;
  /** Absent on jobs a scheduler made: the worker opens the run when the tick fires. */
  runId?: string;
  trigger: SyncTrigger;
}

export interface TestJobData {
  sourceId: string;
}

export interface SyncAllJobData {
  batchId: string;
}

/** Names of jobs and schedulers; BullMQ 6 forbids ':' in ids we choose. */
export const schedulerId = (sourceId: string) => `source-${sourceId}`;
export const syncDedupId = (sourceId: string) => `sync-${sourceId}`;
