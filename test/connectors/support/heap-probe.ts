import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// The test runner starts workers without --expose-gc; this turns it on for this process only, so a
// memory check can measure what stays reachable rather than garbage not yet collected.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

/**
 * Tracks memory while something streams: `retained` is the growth of the heap that survives a full
 * GC (what a reader keeps hold of), `peak*` the raw high-water marks (printed, not asserted).
 */
export class HeapProbe {
  private readonly baseHeap: number;
  private readonly baseRss: number;
  private peakHeap: number;
  private peakRss: number;
  private retained = 0;

  constructor() {
    gc();
    const m = process.memoryUsage();
    this.baseHeap = this.peakHeap = m.heapUsed;
    this.baseRss = this.peakRss = m.rss;
  }

  /** Samples the raw usage (cheap; call often). */
  sample(): void {
    const m = process.memoryUsage();
    this.peakHeap = Math.max(this.peakHeap, m.heapUsed);
    this.peakRss = Math.max(this.peakRss, m.rss);
  }

  /** Collects garbage and records what is still reachable (call now and then). */
  checkpoint(): void {
    this.sample();
    gc();
    this.retained = Math.max(this.retained, process.memoryUsage().heapUsed - this.baseHeap);
  }

  report(): { retainedMB: number; peakHeapDeltaMB: number; peakRssDeltaMB: number } {
    return {
      retainedMB: mb(this.retained),
      peakHeapDeltaMB: mb(this.peakHeap - this.baseHeap),
      peakRssDeltaMB: mb(this.peakRss - this.baseRss),
    };
  }
}
