import { readFile } from 'node:fs/promises';

/** Resident set size of process `pid` in bytes (VmRSS of /proc/<pid>/status); undefined once it is gone. */
export async function rssOf(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/**
 * Samples a process's RSS every `intervalMs` (100 by default) from start() until stop(), keeping
 * the peak overall and the peak since the last mark(): the worker's own memory, measured from outside.
 */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private reading = false;
  peak = 0;
  peakSinceMark = 0;
  samples = 0;

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 100,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
  }

  /** Starts a new window for peakSinceMark; returns the previous window's peak. */
  mark(): number {
    const peak = this.peakSinceMark;
    this.peakSinceMark = 0;
    return peak;
  }

  async sample(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const rss = await rssOf(this.pid);
      if (rss === undefined) return;
      this.samples += 1;
      this.peak = Math.max(this.peak, rss);
      this.peakSinceMark = Math.max(this.peakSinceMark, rss);
    } finally {
      this.reading = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
