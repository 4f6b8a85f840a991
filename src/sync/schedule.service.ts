import { createHash } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Knex } from 'knex';
import type { Logger } from '../logger';
import { schedulerId, type SyncJobData } from '../queue/queue-names';

export interface SchedulableSource {
  id: string;
  refresh_interval: number;
  is_active: boolean;
}

export interface ReconcileReport {
  sources: number;
  upserted: number;
  removed: number;
  ms: number;
}

const PAGE = 1000;
const CONCURRENCY = 200;
/** A scheduler (re)created or re-timed never fires sooner than this (or one interval, if shorter). */
export const FIRST_RUN_MIN_DELAY_MS = 10_000;

/**
 * One BullMQ Job Scheduler per active source, `every` = refresh_interval. Designed around the
 * BullMQ 6 pitfalls: each source ticks at a stable phase of its interval (`offset`, hashed from
 * its id), so a mass creation is spread over the interval instead of bursting; a scheduler that
 * is created or re-timed gets a `startDate` at the first slot of that phase at least
 * FIRST_RUN_MIN_DELAY_MS away, so it never fires at once; the template is passed whole on every
 * upsert; overlapping ticks are absorbed by the run guard in Postgres.
 */
export class ScheduleService {
  constructor(
    private readonly queue: Queue,
    private readonly template: { attempts: number },
    private readonly logger: Logger,
  ) {}

  /** Where in its interval a source's ticks fall: 1..every-1 ms, the same on every upsert. */
  static offsetFor(sourceId: string, everyMs: number): number {
    const hash = createHash('sha1').update(sourceId).digest().readUInt32BE(0);
    return 1 + (hash % (everyMs - 1));
  }

  /**
   * The first tick of a new or re-timed scheduler: the earliest slot at the source's phase that
   * is at least FIRST_RUN_MIN_DELAY_MS (at most one interval) from now. An offset alone is not
   * enough: the next slot at a phase can be 1 ms away, i.e. an immediate run.
   */
  static firstRunAt(sourceId: string, everyMs: number, now = Date.now()): number {
    const earliest = now + Math.min(FIRST_RUN_MIN_DELAY_MS, everyMs);
    const slot = Math.floor(earliest / everyMs) * everyMs + ScheduleService.offsetFor(sourceId, everyMs);
    return slot >= earliest ? slot : slot + everyMs;
  }

  async apply(source: SchedulableSource): Promise<void> {
    if (!source.is_active) return this.remove(source.id);
    const every = source.refresh_interval * 1000;
    const data: SyncJobData = { sourceId: source.id, trigger: 'schedule' };
    // BullMQ reads startDate only when the scheduler is new or its `every` changed; an upsert
    // that keeps `every` keeps the pending tick where it was.
    await this.queue.upsertJobScheduler(
      schedulerId(source.id),
      {
        every,
        offset: ScheduleService.offsetFor(source.id, every),
        startDate: ScheduleService.firstRunAt(source.id, every),
      },
      {
        name: 'sync',
        data,
        opts: {
          attempts: this.template.attempts,
          backoff: { type: 'exponential', delay: 2000 },
          removeOnComplete: { age: 24 * 3600, count: 1000 },
          removeOnFail: { age: 7 * 24 * 3600, count: 5000 },
        },
      },
    );
  }

  async remove(sourceId: string): Promise<void> {
    await this.queue.removeJobScheduler(schedulerId(sourceId));
  }

  /** Existing schedulers → their `every`, read in pages. */
  private async existing(): Promise<Map<string, number | undefined>> {
    const out = new Map<string, number | undefined>();
    for (let start = 0; ; start += PAGE) {
      const page = await this.queue.getJobSchedulers(start, start + PAGE - 1, true);
      for (const s of page) out.set(s.key ?? s.id ?? '', s.every ? Number(s.every) : undefined);
      if (page.length < PAGE) break;
    }
    return out;
  }

  /** Makes the schedulers match the table: missing or re-timed ones upserted, orphans removed. */
  async reconcile(knex: Knex): Promise<ReconcileReport> {
    const started = performance.now();
    const existing = await this.existing();
    let upserted = 0;
    let sources = 0;
    let lastId = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const page: SchedulableSource[] = await knex('raw_data_sources')
        .select('id', 'refresh_interval', 'is_active')
        .where('is_active', true)
        .where('id', '>', lastId)
        .orderBy('id')
        .limit(PAGE);
      if (!page.length) break;
      lastId = page[page.length - 1]!.id;
      sources += page.length;
      const todo = page.filter((s) => {
        const id = schedulerId(s.id);
        const every = existing.get(id);
        existing.delete(id);
        return every !== s.refresh_interval * 1000;
      });
      for (let i = 0; i < todo.length; i += CONCURRENCY)
        await Promise.all(todo.slice(i, i + CONCURRENCY).map((s) => this.apply(s)));
      upserted += todo.length;
    }
    // Whatever is left has no active source behind it.
    const orphans = [...existing.keys()];
    for (let i = 0; i < orphans.length; i += CONCURRENCY)
      await Promise.all(orphans.slice(i, i + CONCURRENCY).map((id) => this.queue.removeJobScheduler(id)));
    const report = {
      sources,
      upserted,
      removed: orphans.length,
      ms: Math.round(performance.now() - started),
    };
    this.logger.info(report, 'schedules reconciled');
    return report;
  }
}
