import { readFile } from 'node:fs/promises';
import { median } from '../lib/bench-result';
import type { CompareResult } from './get-by-id-compare';
import {
  EXPECTED,
  KINDS,
  type Kind,
  quantile,
  READ_KINDS,
  serverErrors,
  throughput,
  unexpected,
  type MixStats,
} from './load-mix';
import type { RssSampler } from './load-processes';

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r.map((cell, i) => (i ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

/** Least-squares slope of (t, y), in y units per t unit. */
export function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  const sxy = points.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0);
  const sxx = points.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
  return sxx ? sxy / sxx : NaN;
}

/** Per request kind: count, throughput, p50/p99/max, statuses; then all and reads together. */
export function mixTable(stats: MixStats): string {
  const row = (name: string, latencies: number[], statuses = '', expected = '') => [
    name,
    String(latencies.length),
    (latencies.length / stats.seconds).toFixed(0),
    quantile(latencies, 0.5).toFixed(1),
    quantile(latencies, 0.99).toFixed(1),
    quantile(latencies, 1).toFixed(0),
    statuses,
    expected,
  ];
  return table([
    ['request kind', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'statuses', 'expected'],
    ...KINDS.map((k) =>
      row(
        k,
        stats.kinds[k].latencies,
        [...stats.kinds[k].statuses]
          .sort((a, b) => a[0] - b[0])
          .map(([status, n]) => `${status}×${n}`)
          .join(' '),
        EXPECTED[k].join('|'),
      ),
    ),
    row(
      'all',
      KINDS.flatMap((k) => stats.kinds[k].latencies),
      `${stats.errors} conn. errors, ${stats.timeouts} timeouts`,
    ),
    row(
      'reads (list + get)',
      READ_KINDS.flatMap((k) => stats.kinds[k].latencies),
    ),
  ]);
}

/** What fails a phase: any 5xx, status outside EXPECTED, error or timeout; reads' p99 if bounded. */
export function mixFailures(name: string, stats: MixStats, readP99Ms?: number): string[] {
  const failures: string[] = [];
  const fiveXX = KINDS.reduce((n, k) => n + serverErrors(stats.kinds[k]), 0);
  const other = KINDS.reduce((n, k) => n + unexpected(k, stats.kinds[k]), 0) - fiveXX;
  if (fiveXX) failures.push(`${name}: ${fiveXX} 5xx answers`);
  if (other) failures.push(`${name}: ${other} answers with an unexpected status`);
  if (stats.errors || stats.timeouts)
    failures.push(`${name}: ${stats.errors} connection errors, ${stats.timeouts} timeouts`);
  if (readP99Ms !== undefined) {
    const p99 = readP99(stats);
    if (!(p99 < readP99Ms)) failures.push(`${name}: read p99 ${p99.toFixed(1)} ms, target < ${readP99Ms} ms`);
  }
  return failures;
}

export function readP99(stats: MixStats): number {
  return quantile(
    READ_KINDS.flatMap((k) => stats.kinds[k].latencies),
    0.99,
  );
}

function kindOf(method: string, path: string): Kind | undefined {
  if (method === 'GET') return /^\/raw-data-sources\/?$/.test(path) ? 'list' : 'get';
  if (method === 'POST') return path.endsWith('/sync') ? 'sync' : 'create';
  if (method === 'PUT') return 'update';
  return undefined;
}

/**
 * p50/p99 per kind of the `ms` the API logs for each request (LOG_LEVEL info) between `from` and
 * `to` (epoch ms): the time inside the server, to set beside what the clients measured.
 */
export async function serverTimes(logFile: string, window: { from: number; to: number }): Promise<string> {
  const times = new Map<Kind, number[]>();
  for (const line of (await readFile(logFile, 'utf8')).split('\n')) {
    if (!line.includes('"msg":"request"')) continue;
    let entry: { time?: string; method?: string; path?: string; ms?: number };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    const at = Date.parse(entry.time ?? '');
    if (!(at >= window.from && at <= window.to) || typeof entry.ms !== 'number') continue;
    const kind = kindOf(entry.method ?? '', (entry.path ?? '').split('?')[0]!);
    if (!kind) continue;
    const list = times.get(kind) ?? [];
    list.push(entry.ms);
    times.set(kind, list);
  }
  if (!times.size) return 'none logged (LOG_LEVEL above info?)';
  return KINDS.filter((k) => times.has(k))
    .map((k) => `${k} p50/p99 ${quantile(times.get(k)!, 0.5)}/${quantile(times.get(k)!, 0.99)} ms`)
    .join(', ');
}

/** Offered rate reached? Below 95 % the API (or the load generator) could not keep up. */
export function rateFailures(name: string, stats: MixStats): string[] {
  const achieved = throughput(stats);
  return achieved < 0.95 * stats.offered
    ? [`${name}: ${achieved.toFixed(0)} req/s answered of ${stats.offered.toFixed(0)} offered`]
    : [];
}

export function compareTable(c: CompareResult, target: number): string {
  const side = (name: string, s: CompareResult['sluice']) => [
    name,
    s.rps.toFixed(0),
    s.p50.toFixed(1),
    s.p99.toFixed(1),
    s.cpuPerRequest.toFixed(0),
    s.rounds.map((r) => r.toFixed(0)).join(' '),
  ];
  return (
    `${table([
      ['server', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'rounds req/s'],
      side('sluice API process (auth, validation, masking)', c.sluice),
      side('minimal Koa + knex handler', c.baseline),
    ])}\nratio ${c.ratio.toFixed(2)}× of the baseline's req/s (target ≥ ${target}×): ${c.ratio >= target ? 'pass' : 'FAIL'}; ` +
    `server CPU per request ${(c.baseline.cpuPerRequest / c.sluice.cpuPerRequest).toFixed(2)}× the baseline's ` +
    `(its inverse: steadier than req/s on a shared machine)`
  );
}

/**
 * RSS per process: medians before, during each measured phase (its second half, once the heap
 * has settled), after; peak; the change from phase 1 to phase 2 (same load, same length: a leak
 * shows as growth) and the least-squares slope over both phases. Then the V8 heap retained after a
 * forced full GC at the end of each phase, which a leak raises without RSS's GC sawtooth. Fails a
 * process whose phase-2 figure exceeds phase 1's by more than its limit (a fraction).
 */
export function memoryReport(
  sampler: RssSampler,
  names: string[],
  growthLimit: number,
  /** Per process: memory after a forced GC before the load, after phase 1, after phase 2. */
  heaps: ReadonlyMap<string, readonly NodeJS.MemoryUsage[]>,
  heapGrowthLimit: number,
): { text: string; failures: string[] } {
  const failures: string[] = [];
  const lastHalf = (xs: number[]) => xs.slice(Math.floor(xs.length / 2));
  const rows = [
    [
      'MB',
      'RSS before',
      'phase 1',
      'phase 2',
      'after',
      'peak',
      'growth 1→2',
      'slope MB/min',
      'heap before',
      'after p1',
      'after p2',
      'growth 1→2',
      'no growth',
    ],
  ];
  for (const name of names) {
    const p1 = median(lastHalf(sampler.of('phase-1', name)));
    const p2 = median(lastHalf(sampler.of('phase-2', name)));
    const growth = (p2 - p1) / p1;
    const under = sampler.samples.filter(
      (s) => (s.phase === 'phase-1' || s.phase === 'phase-2') && s.rss[name] !== undefined,
    );
    const perMinute = slope(under.map((s) => [s.t, s.rss[name]!])) * 60;
    const [h0, h1, h2] = (heaps.get(name) ?? []).map((m) => m.heapUsed);
    const heapGrowth = h1 && h2 ? (h2 - h1) / h1 : NaN;
    const ok = growth <= growthLimit && heapGrowth <= heapGrowthLimit;
    if (!(growth <= growthLimit))
      failures.push(`${name}: RSS grew ${(growth * 100).toFixed(1)} % from phase 1 to phase 2`);
    if (!(heapGrowth <= heapGrowthLimit))
      failures.push(`${name}: heap after GC grew ${(heapGrowth * 100).toFixed(1)} % from phase 1 to phase 2`);
    rows.push([
      name,
      mb(median(sampler.of('before', name))),
      mb(p1),
      mb(p2),
      mb(median(sampler.of('after', name))),
      mb(Math.max(...sampler.samples.map((s) => s.rss[name] ?? 0))),
      `${(growth * 100).toFixed(1)} %`,
      (perMinute / 2 ** 20).toFixed(1),
      h0 ? (h0 / 2 ** 20).toFixed(1) : '—',
      h1 ? (h1 / 2 ** 20).toFixed(1) : '—',
      h2 ? (h2 / 2 ** 20).toFixed(1) : '—',
      `${(heapGrowth * 100).toFixed(1)} %`,
      ok ? 'pass' : 'FAIL',
    ]);
  }
  const series = sampler.samples
    .map((s) => `${s.phase.replace('phase-', 'p')}:${names.map((n) => mb(s.rss[n] ?? 0)).join('/')}`)
    .join(' ');
  return {
    text: `${table(rows)}\nsamples (MB, ${names.join('/')}): ${series}`,
    failures,
  };
}
