import autocannon from 'autocannon';
import { median } from '../lib/bench-result';

/** A server under comparison: where it listens and how much CPU it has used so far. */
export interface ComparedServer {
  url: string;
  cpuMicros(): Promise<number>;
}

export interface CompareSettings {
  rounds: number;
  roundSeconds: number;
  warmupSeconds: number;
  connections: number;
}

export interface SideResult {
  /** Median over the rounds. */
  rps: number;
  p50: number;
  p99: number;
  /** Server CPU per request over all rounds, µs: steadier than req/s on a shared machine. */
  cpuPerRequest: number;
  rounds: number[];
  /** The server's RSS after the rounds, bytes, when the caller measured it. */
  rss?: number;
}

export interface CompareResult {
  sluice: SideResult;
  baseline: SideResult;
  /** Sluice / baseline, of the median req/s. */
  ratio: number;
}

interface Round {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  cpuMicros: number;
}

/**
 * GET /raw-data-sources/{id} on both servers in alternating rounds (the order flips every round),
 * after a warm-up round each, as bench/lib/compare.ts does, but with the bearer token on every
 * request (the baseline ignores it; Sluice checks it). Any non-2xx answer or error throws.
 */
export async function compareGetById(
  sluice: ComparedServer,
  baseline: ComparedServer,
  paths: readonly string[],
  token: string,
  s: CompareSettings,
): Promise<CompareResult> {
  const round = async (server: ComparedServer, seconds: number): Promise<Round> => {
    const cpuBefore = await server.cpuMicros();
    let next = 0;
    const result = await autocannon({
      url: server.url,
      connections: s.connections,
      pipelining: 1,
      duration: seconds,
      timeout: 10,
      requests: [
        {
          method: 'GET',
          headers: { authorization: `Bearer ${token}` },
          setupRequest: (request) => ({ ...request, path: paths[next++ % paths.length] }),
        },
      ],
    });
    if (result.errors || result.timeouts || result.non2xx)
      throw new Error(
        `GET by id on ${server.url}: ${result.errors} errors, ${result.timeouts} timeouts, ` +
          `${result.non2xx} non-2xx (${JSON.stringify(result.statusCodeStats)})`,
      );
    return {
      rps: result.requests.total / result.duration,
      p50: result.latency.p50,
      p99: result.latency.p99,
      requests: result.requests.total,
      cpuMicros: (await server.cpuMicros()) - cpuBefore,
    };
  };
  await round(sluice, s.warmupSeconds);
  await round(baseline, s.warmupSeconds);
  const a: Round[] = [];
  const b: Round[] = [];
  for (let i = 0; i < s.rounds; i++) {
    if (i % 2 === 0) {
      a.push(await round(sluice, s.roundSeconds));
      b.push(await round(baseline, s.roundSeconds));
    } else {
      b.push(await round(baseline, s.roundSeconds));
      a.push(await round(sluice, s.roundSeconds));
    }
    process.stderr.write(
      `  GET by id round ${i + 1}/${s.rounds}: sluice ${a[i]!.rps.toFixed(0)} req/s, ` +
        `baseline ${b[i]!.rps.toFixed(0)} req/s\n`,
    );
  }
  const side = (rounds: Round[]): SideResult => ({
    rps: median(rounds.map((r) => r.rps)),
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
    cpuPerRequest:
      rounds.reduce((sum, r) => sum + r.cpuMicros, 0) / rounds.reduce((sum, r) => sum + r.requests, 0),
    rounds: rounds.map((r) => r.rps),
  });
  const result = { sluice: side(a), baseline: side(b) };
  return { ...result, ratio: result.sluice.rps / result.baseline.rps };
}
