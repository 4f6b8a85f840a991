/**
 * `npm run bench [name-filter ...]`: runs every bench/*.bench.ts (or those whose name contains one
 * of the filters) and prints one table. A row is Sluice beside its baseline measured in the same
 * run (ratio of medians over alternating rounds, > 1 favouring Sluice), or a time or size against
 * its target. Exits 1 when a target is missed or a benchmark fails to run.
 * Knobs: BENCH_ROUNDS (5), BENCH_ROUND_SECONDS (5), BENCH_WARMUP_SECONDS (3), BENCH_CONNECTIONS
 * (10), BENCH_SOURCES (100000), BENCH_LOG_LEVEL (info), BENCH_KEEP_DATABASE, BENCH_REDIS_URL;
 * each file documents its own.
 */
import { readdir } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import {
  meets,
  passes,
  ratio,
  type Benchmark,
  type BenchResult,
  type BenchSettings,
} from './lib/bench-result';

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

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
/** Three significant digits or so: 1234, 123, 12.3, 1.23. */
const num = (n: number) => n.toFixed(Math.abs(n) >= 100 ? 0 : Math.abs(n) >= 10 ? 1 : 2);
const fmt = (n: number, digits = 0) => n.toFixed(digits);

// `npm run bench reconcile sync`: the files whose name contains any of the words (all without one).
const filters = process.argv.slice(2);
const dir = new URL('./', import.meta.url);
const files = (await readdir(dir))
  .filter((f) => f.endsWith('.bench.ts') && (!filters.length || filters.some((w) => f.includes(w))))
  .sort();
const cpu = cpus();
console.log(
  `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
    `node ${process.version}, load ${load()}`,
);
console.log(
  `settings: ${settings.rounds} rounds per side (alternating) after a warm-up; HTTP rounds ` +
    `${settings.roundSeconds} s after ${settings.warmupSeconds} s warm-up, ${settings.connections} connections\n`,
);

const started = performance.now();
const results: BenchResult[] = [];
const failed: string[] = [];
for (const file of files) {
  process.stderr.write(`${file} (load ${load()})\n`);
  const run = ((await import(new URL(file, dir).href)) as { default: Benchmark }).default;
  try {
    results.push(...(await run(settings)));
  } catch (err) {
    // One broken benchmark does not hide the others' results; it fails the run all the same.
    process.stderr.write(`${file} failed: ${(err as Error).stack ?? String(err)}\n`);
    failed.push(file);
  }
}

const target = (r: BenchResult) =>
  r.targets
    .map((t) => `${t.op} ${t.on === 'ratio' ? `${fmt(t.value, 2)}×` : `${num(t.value)} ${r.unit}`}`)
    .join(', ');
console.log(
  table([
    ['benchmark', 'sluice', 'baseline', 'ratio', 'target', 'result'],
    ...results.map((r) => {
      const x = ratio(r);
      return [
        r.name,
        `${num(r.sluice)} ${r.unit}`,
        r.baseline === undefined ? '—' : `${num(r.baseline)} ${r.unit}`,
        x === undefined ? '—' : `${fmt(x, 2)}×`,
        target(r),
        passes(r)
          ? 'pass'
          : `FAIL (${r.targets
              .filter((t) => !meets(r, t))
              .map((t) => t.on)
              .join(', ')})`,
      ];
    }),
  ]),
);

const http = results.filter((r) => r.http);
if (http.length)
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
      ],
      ...http.map((r) => [
        r.name,
        fmt(r.http!.sluice.p50, 1),
        fmt(r.http!.sluice.p99, 1),
        fmt(r.http!.sluice.cpuPerRequest),
        fmt(r.http!.baseline.p50, 1),
        fmt(r.http!.baseline.p99, 1),
        fmt(r.http!.baseline.cpuPerRequest),
      ]),
    ])}`,
  );

const withRounds = results.filter((r) => r.rounds);
if (withRounds.length)
  console.log(
    `\n${table([
      ['rounds, in run order', 'sluice', 'baseline'],
      ...withRounds.map((r) => [
        `${r.name} (${r.unit})`,
        r.rounds!.sluice.map(num).join(' '),
        r.rounds!.baseline?.map(num).join(' ') ?? '—',
      ]),
    ])}`,
  );

const notes = results.filter((r) => r.note);
if (notes.length) console.log(`\n${notes.map((r) => `- ${r.name}: ${r.note}`).join('\n')}`);
if (failed.length) console.log(`\nFAILED to run: ${failed.join(', ')}`);
console.log(`\ntotal ${fmt((performance.now() - started) / 1000, 0)} s, load ${load()}`);
process.exitCode = failed.length === 0 && results.every(passes) ? 0 : 1;
