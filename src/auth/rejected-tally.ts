import type { Logger } from '../logger';
import type { AuditLog } from './audit-log';

/** Buckets kept per window at most (status × actor); beyond it refusals are counted under actor "other". */
const MAX_BUCKETS = 1000;
/** Example paths kept per bucket, so a row shows what was tried without growing with the flood. */
const SAMPLES = 5;
const SAMPLE_LENGTH = 200;

interface Bucket {
  actor: string;
  status: number;
  count: number;
  first: number;
  last: number;
  samples: string[];
  keyId?: string;
}

/**
 * Refused requests (401, 403, 429) are audited in aggregate: one row per status and actor per
 * window ("anonymous" for every request without a valid key), with the count and a few example
 * paths. A client without a key, or one hammering a limit, cannot grow the append-only log faster
 * than a few rows a window, however many requests it sends.
 */
export class RejectedTally {
  private buckets = new Map<string, Bucket>();
  private timer?: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly audit: AuditLog,
    private readonly logger: Logger,
    private readonly windowMs: number,
  ) {}

  /** Counts one refusal; the window's rows are written when it ends (or on flush()). */
  note(entry: { actor: string; status: number; method: string; path: string; keyId?: string }): void {
    let id = `${entry.status}|${entry.actor}`;
    if (!this.buckets.has(id) && this.buckets.size >= MAX_BUCKETS) id = `${entry.status}|other`;
    const now = Date.now();
    let bucket: Bucket | undefined = this.buckets.get(id);
    if (!bucket) {
      bucket = {
        actor: id.endsWith('|other') ? 'other' : entry.actor,
        status: entry.status,
        count: 0,
        first: now,
        last: now,
        samples: [],
        ...(entry.keyId ? { keyId: entry.keyId } : {}),
      };
      this.buckets.set(id, bucket);
    }
    bucket.count += 1;
    bucket.last = now;
    const sample = `${entry.method} ${entry.path}`.slice(0, SAMPLE_LENGTH);
    if (bucket.samples.length < SAMPLES && !bucket.samples.includes(sample)) bucket.samples.push(sample);
    if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.windowMs);
      this.timer.unref();
    }
  }

  /** Writes the current window's rows now (tests, shutdown); resolves once they are written. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const buckets = [...this.buckets.values()];
    this.buckets = new Map();
    this.flushing = this.flushing.then(() => this.write(buckets));
    return this.flushing;
  }

  private async write(buckets: Bucket[]): Promise<void> {
    for (const b of buckets) {
      try {
        await this.audit.record({
          actor: b.actor,
          action: 'request.rejected',
          target_type: 'request',
          target_id: null,
          outcome: 'denied',
          status: b.status,
          request_id: null,
          detail: {
            count: b.count,
            first_at: new Date(b.first).toISOString(),
            last_at: new Date(b.last).toISOString(),
            samples: b.samples,
            ...(b.keyId ? { key_id: b.keyId } : {}),
          },
        });
      } catch (err) {
        this.logger.error(
          { err: (err as Error).message, status: b.status, count: b.count },
          'audit row of refused requests not written',
        );
      }
    }
  }
}
