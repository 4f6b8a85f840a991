/**
 * `npm run bench [name-filter]`: runs every bench/*.bench.ts and prints one table of Sluice beside
 * its baseline, as the ratio of median req/s over alternating rounds in the same run. Exits 1 when
 * a target is missed. Knobs: BENCH_ROUNDS (5), BENCH_ROUND_SECONDS (5), BENCH_WARMUP_SECONDS (3),
 * BENCH_CONNECTIONS (10), BENCH_SOURCES (100000), BENCH_LOG_LEVEL (info), BENCH_KEEP_DATABASE.
 */
import { readdir } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { ratio, type Benchmark, type BenchResult, type BenchSettings } from './lib/bench-result';

const settings: BenchSettings = {
  rounds: Number(process.env.BENCH_ROUNDS ?? 5),
  roundSeconds: Number(process.env.BENCH_ROUND_SECONDS ?? 5),
  warmupSeconds: Number(process.env.BENCH_WARMUP_SECONDS ?? 3),
  connections: Number(process.env.BENCH_CONNECTIONS ?? 10),
};

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r.map((cell, i) => (i ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

const filter = process.argv[2] ?? '';
const dir = new URL('./', import.meta.url);
const files = (await readdir(dir)).filter((f) => f.endsWith('.bench.ts') && f.includes(filter)).sort();
const cpu = cpus();
console.log(
  `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
    `node ${process.version}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
);
console.log(
  `settings: ${settings.rounds} rounds × ${settings.roundSeconds} s per side after ${settings.warmupSeconds} s ` +
    `warm-up, ${settings.connections} connections, medians of per-round req/s\n`,
);

const started = performance.now();
const results: BenchResult[] = [];
for (const file of files) {
  process.stderr.write(`${file}\n`);
  const run = ((await import(new URL(file, dir).href)) as { default: Benchmark }).default;
  results.push(...(await run(settings)));
}

const fmt = (n: number, digits = 0) => n.toFixed(digits);
console.log(
  table([
    ['benchmark', 'sluice req/s', 'baseline req/s', 'ratio', 'target', 'result'],
    ...results.map((r) => [
      r.name,
      fmt(r.sluice.rps),
      fmt(r.baseline.rps),
      `${fmt(ratio(r), 2)}×`,
      `≥ ${fmt(r.target, 2)}×`,
      ratio(r) >= r.target ? 'pass' : 'FAIL',
    ]),
  ]),
);
console.log(
  `\n${table([
    [
      'latency ms (median of rounds), server CPU µs/req',
      'sluice p50',
      'p99',
      'CPU',
      'baseline p50',
      'p99',
      'CPU',
      'rounds req/s (sluice | baseline)',
    ],
    ...results.map((r) => [
      r.name,
      fmt(r.sluice.p50, 1),
      fmt(r.sluice.p99, 1),
      fmt(r.sluice.cpuPerRequest),
      fmt(r.baseline.p50, 1),
      fmt(r.baseline.p99, 1),
      fmt(r.baseline.cpuPerRequest),
      `${r.sluice.rounds.map((x) => fmt(x)).join(' ')} | ${r.baseline.rounds.map((x) => fmt(x)).join(' ')}`,
    ]),
  ])}`,
);
console.log(
  `\ntotal ${fmt((performance.now() - started) / 1000, 0)} s, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
process.exitCode = results.every((r) => ratio(r) >= r.target) ? 0 : 1;
