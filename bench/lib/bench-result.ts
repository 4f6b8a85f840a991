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

/** A bound on a row: on its ratio to the baseline, or on the measured value itself (a time, a size). */
export interface Target {
  on: 'ratio' | 'value';
  op: '≥' | '≤';
  value: number;
}

/** One row of the report: a Sluice measurement (median of rounds), beside its baseline when it has one. */
export interface BenchResult {
  name: string;
  /** Unit of `sluice` and `baseline`: req/s, syncs/s, s, B/schedule. */
  unit: string;
  sluice: number;
  baseline?: number;
  /** Throughputs: higher is better. Times and sizes: lower is. Orients the ratio so > 1 favours Sluice. */
  higherIsBetter: boolean;
  targets: Target[];
  /** Per-round values, in run order. */
  rounds?: { sluice: number[]; baseline?: number[] };
  /** HTTP rows: latency and server CPU of each side. */
  http?: { sluice: SideStats; baseline: SideStats };
  /** How the row was measured, printed under the tables. */
  note?: string;
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

/** Sluice against its baseline, > 1 when Sluice does better; undefined for a row without baseline. */
export function ratio(r: BenchResult): number | undefined {
  if (r.baseline === undefined) return undefined;
  return r.higherIsBetter ? r.sluice / r.baseline : r.baseline / r.sluice;
}

export function meets(r: BenchResult, t: Target): boolean {
  const x = t.on === 'ratio' ? ratio(r) : r.sluice;
  if (x === undefined || !Number.isFinite(x)) return false;
  return t.op === '≥' ? x >= t.value : x <= t.value;
}

export const passes = (r: BenchResult) => r.targets.every((t) => meets(r, t));
