export interface SideStats {
  /** Median over the rounds of requests per second. */
  rps: number;
  /** Medians over the rounds of each round's latency percentile, in ms. */
  p50: number;
  p99: number;
  /**
   * Server CPU time (user + system) per request, in µs, over all rounds. Steadier than req/s on a
   * shared machine: it does not count time spent waiting for a core.
   */
  cpuPerRequest: number;
  rounds: number[];
}

/** One row of the report: Sluice beside its baseline, measured in the same run. */
export interface BenchResult {
  name: string;
  sluice: SideStats;
  baseline: SideStats;
  /** Minimum sluice/baseline ratio of median req/s. */
  target: number;
}

/** A benchmark file's export: runs its comparisons and returns one result per row. */
export type Benchmark = (settings: BenchSettings) => Promise<BenchResult[]>;

export interface BenchSettings {
  rounds: number;
  roundSeconds: number;
  warmupSeconds: number;
  connections: number;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export const ratio = (r: BenchResult) => r.sluice.rps / r.baseline.rps;
