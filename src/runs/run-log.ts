import type { Knex } from 'knex';
import { scrub, scrubSecret, scrubText } from '../connectors/kit/secret-scrubber';
import type { Logger } from '../logger';
import type { RunLogLine } from './run-log.contracts';

export type { RunLogLine };

const TABLE = 'sync_run_logs';

/** A run keeps at most this many ordinary lines (over all its attempts)… */
export const RUN_LOG_MAX_LINES = 500;
/** …and at most this many bytes of them (each line counted as its JSON). */
export const RUN_LOG_MAX_BYTES = 128 * 1024;
/** A running run's lines reach the table at least this often (and at every attempt's end). */
export const RUN_LOG_FLUSH_MS = 1000;
/** One message is cut to this many characters: an error that quotes a whole response stays readable. */
const MAX_MESSAGE = 1000;

export interface RunLogLimits {
  maxLines: number;
  maxBytes: number;
  flushMs: number;
}

export interface RunLogOwner {
  runId: string;
  sourceId: string;
  attempt: number;
}

type Level = RunLogLine['level'];

/** What a run landed, as the finish line reports it. */
export interface RunTotals {
  records: number;
  bytes?: number;
  invalid: number;
  duration_ms?: number | null;
}

/**
 * The lines of one attempt of a run, buffered in memory and written a chunk at a time (one INSERT
 * per flush, never one per line): at most every RUN_LOG_FLUSH_MS while batches come in, and at the
 * attempt's end. Every message is scrubbed (the source's own secret, URL credentials, secret keys
 * in data) before it is buffered. Past the cap, ordinary lines are counted instead of kept; the
 * attempt's last line and a "… K lines dropped" marker are always written, so a run's log always
 * says how it ended.
 */
export class RunLog {
  private buffer: RunLogLine[] = [];
  private bufferBytes = 0;
  private dropped = 0;
  /** Counted from the open: a short sync writes its lines once, at its end. */
  private lastFlush = performance.now();
  private batches = 0;
  private readonly opened = performance.now();
  /** The source's secret, once loaded: masked wherever a message quotes it. */
  secret: string | null = null;

  constructor(
    private readonly store: RunLogs,
    readonly owner: RunLogOwner,
    private readonly logger: Logger,
    private readonly limits: RunLogLimits,
    /** Lines and bytes the run already holds (earlier attempts). */
    private used: { lines: number; bytes: number },
  ) {}

  /** A line; past the cap it is only counted (`keep` lines are written regardless). */
  line(level: Level, event: string, message: string, data?: Record<string, unknown>, keep = false): void {
    const text = scrubText(scrubSecret(message, this.secret)).slice(0, MAX_MESSAGE);
    const line: RunLogLine = {
      at: new Date().toISOString(),
      level,
      event,
      attempt: this.owner.attempt,
      message: text,
      ...(data ? { data: this.clean(data) } : {}),
    };
    const bytes = Buffer.byteLength(JSON.stringify(line));
    const full = this.used.lines + 1 > this.limits.maxLines || this.used.bytes + bytes > this.limits.maxBytes;
    if (full && !keep) {
      this.dropped += 1;
      return;
    }
    this.used.lines += 1;
    this.used.bytes += bytes;
    this.buffer.push(line);
    this.bufferBytes += bytes;
  }

  /** Data values are ids and counts; a string among them is scrubbed like a message. */
  private clean(data: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(scrub(data) as Record<string, unknown>))
      out[key] = typeof value === 'string' ? scrubSecret(value, this.secret).slice(0, MAX_MESSAGE) : value;
    return out;
  }

  /** The attempt began (the worker's own log says so too). */
  started(trigger: string): void {
    this.line('info', 'started', `attempt ${this.owner.attempt} started (${trigger})`, { trigger });
  }

  /** What is about to be read, once the source is loaded. */
  reading(sourceType: string | null, mode: string, resumed: boolean): void {
    this.line(
      'info',
      'reading',
      `reading the ${sourceType ?? 'untyped'} source in ${mode} mode${resumed ? ', resuming from the saved state' : ''}`,
      { source_type: sourceType, sync_mode: mode, resumed },
    );
  }

  /** How many records failed schema_definition, with the first violations. */
  quarantine(
    counts: { records: number; invalid: number },
    first: { pointer: string; message: string }[],
  ): void {
    const examples = first.map((v) => `${v.pointer} ${v.message}`).join('; ');
    this.line(
      'warn',
      'quarantine',
      `${counts.invalid} of ${counts.records + counts.invalid} records quarantined${examples ? `; first: ${examples}` : ''}`,
      { invalid: counts.invalid, records: counts.records },
      true,
    );
  }

  /** A failed attempt BullMQ will retry: the attempt's last line, with the reason. */
  async retrying(error: string, code?: string): Promise<void> {
    await this.end(
      'warn',
      'retrying',
      `attempt ${this.owner.attempt} failed, the job will retry: ${error}`,
      code ? { code } : undefined,
    );
  }

  /** One landed batch, numbered within the attempt. */
  batch(landed: { records: number; bytes: number; invalid: number }, totals: RunTotals): void {
    this.batches += 1;
    const quarantined = landed.invalid ? `, ${landed.invalid} quarantined` : '';
    this.line(
      'info',
      'batch',
      `batch ${this.batches}: ${landed.records} records landed (${landed.bytes} bytes)${quarantined}; ` +
        `run total ${totals.records} records`,
      { batch: this.batches, ...landed, total_records: totals.records, total_invalid: totals.invalid },
    );
  }

  /** Writes the buffer when RUN_LOG_FLUSH_MS have passed since the last write (or the open). */
  async flushIfDue(): Promise<void> {
    if (performance.now() - this.lastFlush >= this.limits.flushMs) await this.flush();
  }

  /**
   * Writes what is buffered as one chunk. A failed write (the database away) is reported on the
   * worker's own log and the lines stay buffered for the next flush: a log must not fail a sync.
   */
  async flush(): Promise<void> {
    this.lastFlush = performance.now();
    if (!this.buffer.length) return;
    const lines = this.buffer;
    const bytes = this.bufferBytes;
    this.buffer = [];
    this.bufferBytes = 0;
    try {
      await this.store.write(this.owner, lines, bytes);
    } catch (err) {
      this.buffer = [...lines, ...this.buffer];
      this.bufferBytes += bytes;
      this.logger.warn({ err: (err as Error).message, lines: lines.length }, 'run log lines not written yet');
    }
  }

  /**
   * The attempt's last line (always kept), the dropped-lines marker when the cap was reached, and
   * the final flush.
   */
  async end(level: Level, event: string, message: string, data?: Record<string, unknown>): Promise<void> {
    this.line(level, event, message, data, true);
    if (this.dropped)
      this.line(
        'warn',
        'dropped',
        `… ${this.dropped} lines dropped (a run keeps at most ${this.limits.maxLines} lines / ${this.limits.maxBytes} bytes)`,
        { dropped: this.dropped },
        true,
      );
    this.dropped = 0;
    await this.flush();
  }

  /**
   * The run's outcome: its last run-log line and the worker's own log line with the counts,
   * duration and status (the one line an operator greps for).
   */
  async finish(status: 'success' | 'failed', totals: RunTotals, error?: string): Promise<void> {
    const duration = totals.duration_ms ?? Math.round(performance.now() - this.opened);
    const counts = {
      records: totals.records,
      bytes: totals.bytes ?? 0,
      invalid: totals.invalid,
      duration_ms: duration,
    };
    const summary = `${counts.records} records, ${counts.bytes} bytes, ${counts.invalid} quarantined in ${duration} ms`;
    if (status === 'success') await this.end('info', 'finished', `sync succeeded: ${summary}`, counts);
    else await this.end('error', 'finished', `sync failed: ${error ?? 'unknown error'} (${summary})`, counts);
    const scrubbedError = error === undefined ? {} : { error: scrubSecret(error, this.secret) };
    this.logger[status === 'success' ? 'info' : 'warn'](
      { status, attempt: this.owner.attempt, ...counts, ...scrubbedError },
      'sync finished',
    );
  }
}

/**
 * The store of run logs (table sync_run_logs, migration 20261207200000): the worker opens a RunLog
 * per attempt, the API reads a run's lines back, a source purge removes them in batches.
 */
export class RunLogs {
  private readonly limits: RunLogLimits;

  constructor(
    private readonly knex: Knex,
    limits: Partial<RunLogLimits> = {},
  ) {
    this.limits = {
      maxLines: limits.maxLines ?? RUN_LOG_MAX_LINES,
      maxBytes: limits.maxBytes ?? RUN_LOG_MAX_BYTES,
      flushMs: limits.flushMs ?? RUN_LOG_FLUSH_MS,
    };
  }

  /**
   * The log of one attempt; the run's lines so far (earlier attempts) count toward its cap. One
   * read per attempt after the first (a run's first attempt finds nothing: skipped, as it is paid
   * on every sync). A failed read opens the log as if empty (the cap is then per attempt).
   */
  async open(owner: RunLogOwner, logger: Logger): Promise<RunLog> {
    if (owner.attempt <= 1) return new RunLog(this, owner, logger, this.limits, { lines: 0, bytes: 0 });
    const used = await this.knex(TABLE)
      .where({ run_id: owner.runId })
      .select(
        this.knex.raw('coalesce(sum(line_count), 0)::int AS lines'),
        this.knex.raw('coalesce(sum(bytes), 0)::int AS bytes'),
      )
      .first()
      .then((row: { lines: number; bytes: number } | undefined) => row ?? { lines: 0, bytes: 0 })
      .catch(() => ({ lines: 0, bytes: 0 }));
    return new RunLog(this, owner, logger, this.limits, { ...used });
  }

  /** One chunk of lines. */
  async write(owner: RunLogOwner, lines: RunLogLine[], bytes: number): Promise<void> {
    await this.knex(TABLE).insert({
      run_id: owner.runId,
      source_id: owner.sourceId,
      attempt: owner.attempt,
      lines: JSON.stringify(lines),
      line_count: lines.length,
      bytes,
    });
  }

  /**
   * A line written from outside an attempt (a job that failed because its worker died): one row.
   * It is the run's last word, so it is kept even past the cap.
   */
  async append(owner: RunLogOwner, level: Level, event: string, message: string): Promise<void> {
    const line: RunLogLine = {
      at: new Date().toISOString(),
      level,
      event,
      attempt: owner.attempt,
      message: scrubText(message).slice(0, MAX_MESSAGE),
    };
    await this.write(owner, [line], Buffer.byteLength(JSON.stringify(line)));
  }

  /** A run's lines in the order they were written. */
  async lines(runId: string): Promise<RunLogLine[]> {
    const rows = (await this.knex(TABLE).select('lines').where({ run_id: runId }).orderBy('id')) as {
      lines: RunLogLine[];
    }[];
    return rows.flatMap((r) => r.lines);
  }

  /** Removes at most `limit` chunks of a deleted source (the purge's batches); answers how many went. */
  async deleteBatch(sourceId: string, limit: number): Promise<number> {
    const result = await this.knex.raw(
      `WITH doomed AS (SELECT id FROM ${TABLE} WHERE source_id = ? ORDER BY id LIMIT ?)
       DELETE FROM ${TABLE} t USING doomed WHERE t.id = doomed.id`,
      [sourceId, limit],
    );
    return result.rowCount ?? 0;
  }
}
