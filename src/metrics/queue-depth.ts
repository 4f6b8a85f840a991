import type { Queue } from 'bullmq';

/** Jobs per queue and state, and the number of job schedulers, as read at one scrape. */
export interface QueueDepth {
  queues: Record<string, Record<string, number>>;
  schedules: number;
}

export interface QueueDepthDeps {
  queues: Queue[];
  /** The queues whose job schedulers are counted, summed (the sync shards: one per active source). */
  scheduled: Queue[];
  /** The connection the queues share; its status tells whether asking is worth it at all. */
  redis: { status: string };
  timeoutMs: number;
}

/**
 * A reader of queue depths for /metrics: one counting script per queue and one ZCARD per sync
 * shard for the schedulers, sent side by side, so a scrape costs Redis a handful of calls whatever the queue
 * sizes. Answers undefined at once when Redis is not connected, and after `timeoutMs` when it is
 * slow, so a scrape always answers quickly and reports `sluice_redis_up 0` instead.
 */
export function queueDepthReader(deps: QueueDepthDeps): () => Promise<QueueDepth | undefined> {
  return async () => {
    if (deps.redis.status !== 'ready') return undefined;
    let timer: NodeJS.Timeout | undefined;
    const read = Promise.all([
      Promise.all(deps.queues.map(async (q) => [q.name, await q.getJobCounts()] as const)),
      Promise.all(deps.scheduled.map((q) => q.getJobSchedulersCount())).then((n) =>
        n.reduce((a, b) => a + b, 0),
      ),
    ]);
    // Abandoned on timeout; its late answer or error must not surface as an unhandled rejection.
    read.catch(() => undefined);
    try {
      const [counts, schedules] = await Promise.race([
        read,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('queue depth: Redis too slow')), deps.timeoutMs);
        }),
      ]);
      return { queues: Object.fromEntries(counts), schedules };
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  };
}
