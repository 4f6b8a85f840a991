import { median, type BenchResult, type BenchSettings, type SideStats } from './bench-result';
import type { ChildServer } from './child-server';
import { loadRound, type RoundStats } from './load';

export interface Comparison {
  name: string;
  /** Minimum Sluice/baseline ratio of median req/s. */
  target: number;
  sluice: ChildServer;
  baseline: ChildServer;
  paths: readonly string[];
  /** Sent to both servers alike (the API key Sluice needs; the baseline ignores it). */
  headers?: Record<string, string>;
}

interface MeasuredRound extends RoundStats {
  cpuMicros: number;
}

function summarize(rounds: MeasuredRound[]): SideStats {
  const sum = (f: (r: MeasuredRound) => number) => rounds.reduce((acc, r) => acc + f(r), 0);
  return {
    cpuPerRequest: sum((r) => r.cpuMicros) / sum((r) => r.requests),
    rps: median(rounds.map((r) => r.rps)),
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
    rounds: rounds.map((r) => r.rps),
  };
}

/**
 * Alternating rounds, Sluice and baseline one after the other (the order flips every round so
 * neither always runs on a machine just warmed or disturbed by the other), after one warm-up round
 * each. Only one server is under load at a time; the idle one costs nothing.
 */
export async function compare(c: Comparison, s: BenchSettings): Promise<BenchResult> {
  const round = async (server: ChildServer, seconds: number): Promise<MeasuredRound> => {
    const cpuBefore = await server.cpuMicros();
    const stats = await loadRound({
      baseUrl: server.url,
      paths: c.paths,
      seconds,
      connections: s.connections,
      headers: c.headers,
    });
    return { ...stats, cpuMicros: (await server.cpuMicros()) - cpuBefore };
  };
  await round(c.sluice, s.warmupSeconds);
  await round(c.baseline, s.warmupSeconds);
  const sluice: MeasuredRound[] = [];
  const baseline: MeasuredRound[] = [];
  for (let i = 0; i < s.rounds; i++) {
    if (i % 2 === 0) {
      sluice.push(await round(c.sluice, s.roundSeconds));
      baseline.push(await round(c.baseline, s.roundSeconds));
    } else {
      baseline.push(await round(c.baseline, s.roundSeconds));
      sluice.push(await round(c.sluice, s.roundSeconds));
    }
    process.stderr.write(
      `  ${c.name} round ${i + 1}/${s.rounds}: sluice ${sluice[i]!.rps.toFixed(0)} req/s, ` +
        `baseline ${baseline[i]!.rps.toFixed(0)} req/s\n`,
    );
  }
  const stats = { sluice: summarize(sluice), baseline: summarize(baseline) };
  return {
    name: c.name,
    unit: 'req/s',
    sluice: stats.sluice.rps,
    baseline: stats.baseline.rps,
    higherIsBetter: true,
    targets: [{ on: 'ratio', op: '≥', value: c.target }],
    rounds: { sluice: stats.sluice.rounds, baseline: stats.baseline.rounds },
    http: stats,
  };
}
