import type { Knex } from 'knex';
import type { SyncTrigger } from '../queue/queue-names';

export type RunStatus = 'queued' | 'running' | 'success' | 'failed' | 'cancelled';

export interface SyncRun {
  id: string;
  source_id: string;
  trigger: SyncTrigger;
  status: RunStatus;
  attempt: number;
  job_id: string | null;
  batch_id: string | null;
  queued_at: string;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  records: number;
  bytes: number;
  invalid: number;
  error: string | null;
}

export interface RunCounts {
  records: number;
  bytes: number;
  invalid: number;
}

const RUNS = 'sync_runs';
const SOURCES = 'raw_data_sources';
const ACTIVE = ['queued', 'running'];
const COLUMNS = [
  'id',
  'source_id',
  'trigger',
  'status',
  'attempt',
  'job_id',
  'batch_id',
  'queued_at',
  'started_at',
  'finished_at',
  'records',
  'bytes',
  'invalid',
  'error',
];

const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : ((v as string | null) ?? null));

function toRun(row: Record<string, unknown>): SyncRun {
  const started = row.started_at as Date | null;
  const finished = row.finished_at as Date | null;
  return {
    ...(row as unknown as SyncRun),
    queued_at: iso(row.queued_at)!,
    started_at: iso(started),
    finished_at: iso(finished),
    duration_ms: started && finished ? finished.getTime() - started.getTime() : null,
    records: Number(row.records),
    bytes: Number(row.bytes),
    invalid: Number(row.invalid),
  };
}

const isUniqueViolation = (err: unknown) => (err as { code?: string })?.code === '23505';

/**
 * Run history and the source status moves that go with it. Each transition is one conditional
 * statement (or one transaction), so concurrent workers and retries cannot interleave badly; the
 * partial unique index `sync_runs_one_active_per_source` makes a second active run impossible.
 */
export class SyncRunRepository {
  constructor(private readonly knex: Knex) {}

  /** Opens a queued run; undefined when the source already has an active one. */
  async createQueued(run: {
    id: string;
    sourceId: string;
    trigger: SyncTrigger;
    batchId?: string;
  }): Promise<SyncRun | undefined> {
    try {
      const [row] = await this.knex(RUNS)
        .insert({
          id: run.id,
          source_id: run.sourceId,
          trigger: run.trigger,
          job_id: run.id,
          batch_id: run.batchId ?? null,
        })
        .returning(COLUMNS);
      return toRun(row);
    } catch (err) {
      if (isUniqueViolation(err)) return undefined;
      throw err;
    }
  }

  /** A scheduler tick opens its run when it fires, if the source is still active and idle. */
  async createForTick(id: string, sourceId: string, jobId: string): Promise<SyncRun | undefined> {
    const result = await this.knex.raw(
      `INSERT INTO ${RUNS} (id, source_id, trigger, job_id)
       SELECT ?, s.id, 'schedule', ? FROM ${SOURCES} s WHERE s.id = ? AND s.is_active
       ON CONFLICT (source_id) WHERE status IN ('queued', 'running') DO NOTHING
       RETURNING ${COLUMNS.join(', ')}`,
      [id, jobId, sourceId],
    );
    const row = (result.rows as Record<string, unknown>[])[0];
    return row ? toRun(row) : undefined;
  }

  async get(id: string): Promise<SyncRun | undefined> {
    const row = await this.knex(RUNS).select(COLUMNS).where({ id }).first();
    return row ? toRun(row) : undefined;
  }

  async activeRun(sourceId: string): Promise<SyncRun | undefined> {
    const row = await this.knex(RUNS)
      .select(COLUMNS)
      .where({ source_id: sourceId })
      .whereIn('status', ACTIVE)
      .first();
    return row ? toRun(row) : undefined;
  }

  /**
   * queued|running → running, and the source → syncing, together. Undefined when the run is no
   * longer active (finished, cancelled, deleted) or its source was deactivated meanwhile.
   */
  async start(id: string, attempt: number): Promise<SyncRun | undefined> {
    return this.knex.transaction(async (trx) => {
      const [row] = await trx(RUNS)
        .update({ status: 'running', attempt, started_at: trx.raw('coalesce(started_at, now())') })
        .where({ id })
        .whereIn('status', ACTIVE)
        .returning(COLUMNS);
      if (!row) return undefined;
      const updated = await trx(SOURCES)
        .update({ sync_status: 'syncing' })
        .where({ id: row.source_id, is_active: true });
      if (!updated) {
        await trx(RUNS)
          .update({ status: 'cancelled', finished_at: trx.fn.now(), error: 'source was deactivated' })
          .where({ id });
        return undefined;
      }
      return toRun(row);
    });
  }

  /** `attempt`, when given, closes the run only if that attempt still holds it (see Landing.land). */
  async succeed(id: string, counts?: RunCounts, attempt?: number): Promise<SyncRun | undefined> {
    return this.finish(id, 'success', null, counts, attempt);
  }

  async fail(id: string, error: string, counts?: RunCounts, attempt?: number): Promise<SyncRun | undefined> {
    return this.finish(id, 'failed', error, counts, attempt);
  }

  /** Closes an active run and moves its source to the same outcome, in one transaction. */
  private async finish(
    id: string,
    status: 'success' | 'failed',
    error: string | null,
    counts?: RunCounts,
    attempt?: number,
  ) {
    return this.knex.transaction(async (trx) => {
      const [row] = await trx(RUNS)
        .update({ status, error, finished_at: trx.fn.now(), ...(counts ?? {}) })
        .where({ id, ...(attempt === undefined ? {} : { attempt }) })
        .whereIn('status', ACTIVE)
        .returning(COLUMNS);
      if (!row) return undefined;
      await trx(SOURCES)
        .update({ sync_status: status, error_message: error, last_sync_at: trx.fn.now() })
        .where({ id: row.source_id });
      return toRun(row);
    });
  }

  /** A run that never reached a worker (enqueue failed): closed without touching the source. */
  async cancel(id: string, error: string): Promise<void> {
    await this.knex(RUNS)
      .update({ status: 'cancelled', error, finished_at: this.knex.fn.now() })
      .where({ id })
      .whereIn('status', ACTIVE);
  }

  /** A failed attempt that will be retried: the run stays running, the error is kept. */
  async noteRetry(id: string, error: string, attempt: number): Promise<void> {
    await this.knex(RUNS).update({ error }).where({ id, attempt, status: 'running' });
  }

  async list(sourceId: string, limit: number, offset: number): Promise<{ data: SyncRun[]; total: number }> {
    const [rows, count] = await Promise.all([
      this.knex(RUNS)
        .select(COLUMNS)
        .where({ source_id: sourceId })
        .orderBy([
          { column: 'queued_at', order: 'desc' },
          { column: 'id', order: 'desc' },
        ])
        .limit(limit)
        .offset(offset),
      this.knex(RUNS).where({ source_id: sourceId }).count({ n: '*' }).first(),
    ]);
    return { data: rows.map(toRun), total: Number(count?.n ?? 0) };
  }

  /** Active runs queued or started before `before`: candidates for the reconciler. */
  async activeBefore(before: Date, limit: number): Promise<SyncRun[]> {
    const rows = await this.knex(RUNS)
      .select(COLUMNS)
      .whereIn('status', ACTIVE)
      .where('queued_at', '<', before)
      .orderBy('queued_at')
      .limit(limit);
    return rows.map(toRun);
  }

  /** Sources marked syncing with no active run (a crash between two statements, or a manual edit). */
  async repairOrphanedSyncing(): Promise<string[]> {
    const rows = await this.knex(SOURCES)
      .update({
        sync_status: 'failed',
        error_message: 'sync was interrupted; it will run again at its next schedule',
      })
      .where({ sync_status: 'syncing' })
      .whereNotExists(
        this.knex(RUNS)
          .select(this.knex.raw('1'))
          .whereRaw(`${RUNS}.source_id = ${SOURCES}.id`)
          .whereIn('status', ACTIVE),
      )
      .returning('id');
    return rows.map((r: { id: string }) => r.id);
  }
}
