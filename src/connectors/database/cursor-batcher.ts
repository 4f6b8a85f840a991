import type { Row } from './json-row';

export interface CursorBatch {
  records: Row[];
  /** The cursor value that holds once these records have landed (undefined: none yet). */
  cursor: string | undefined;
  /** Part of one long run of equal cursor values, landed before the run ended (see below). */
  partialRun: boolean;
}

/**
 * Cuts rows that arrive in cursor order into batches that end only where the cursor value changes.
 * State is "every row with cursor <= value has landed", and the next sync (or a retry after a
 * crash) reads `cursor > value`: a batch ending inside a run of equal values would make a retry
 * skip the rest of that run. A run longer than `maxBuffered` rows cannot be held back whole (memory
 * stays bounded); it is landed in parts carrying the state from before the run, so a crash inside
 * it re-reads the run: some of its rows may land twice, none is lost.
 */
export class CursorBatcher {
  private rows: Row[] = [];
  /** Index in `rows` where the run of `last` starts. */
  private runStart = 0;
  private last: string | undefined;
  /** The cursor value before the current run (what holds when only earlier runs have landed). */
  private beforeRun: string | undefined;
  /** About the JSON bytes of `rows`, and of the current run's part of them. */
  private bytes = 0;
  private runBytes = 0;

  /**
   * A batch ends at a cursor change once it holds `batchSize` rows or `batchBytes` bytes; at most
   * `maxBuffered` rows or `maxBufferedBytes` bytes are held back (infinite bytes: count only).
   */
  constructor(
    private readonly batchSize: number,
    private readonly maxBuffered: number,
    start: string | undefined,
    private readonly batchBytes = Infinity,
    private readonly maxBufferedBytes = Infinity,
  ) {
    this.last = start;
    this.beforeRun = start;
  }

  /** Adds the next row in cursor order (about `size` JSON bytes); returns a batch when one is ready to land. */
  push(record: Row, cursor: string, size = 0): CursorBatch | undefined {
    let out: CursorBatch | undefined;
    if (cursor !== this.last) {
      if (this.rows.length >= this.batchSize || (this.rows.length && this.bytes + size > this.batchBytes)) {
        out = { records: this.rows, cursor: this.last, partialRun: false };
        this.rows = [];
        this.bytes = 0;
      }
      this.beforeRun = this.last;
      this.runStart = this.rows.length;
      this.runBytes = 0;
      this.last = cursor;
    }
    this.rows.push(record);
    this.bytes += size;
    this.runBytes += size;
    if (!out && (this.rows.length >= this.maxBuffered || this.bytes >= this.maxBufferedBytes))
      out = this.release();
    return out;
  }

  /** The rows still held at the end of the read. */
  flush(): CursorBatch | undefined {
    if (!this.rows.length) return undefined;
    const out = { records: this.rows, cursor: this.last, partialRun: false };
    this.rows = [];
    this.runStart = 0;
    this.bytes = 0;
    this.runBytes = 0;
    return out;
  }

  /** The buffer is full: land the complete runs, or, when one run fills it, that run's first part. */
  private release(): CursorBatch {
    if (this.runStart > 0) {
      const out = { records: this.rows.slice(0, this.runStart), cursor: this.beforeRun, partialRun: false };
      this.rows = this.rows.slice(this.runStart);
      this.runStart = 0;
      this.bytes = this.runBytes;
      return out;
    }
    const out = { records: this.rows, cursor: this.beforeRun, partialRun: true };
    this.rows = [];
    this.bytes = 0;
    this.runBytes = 0;
    return out;
  }
}
