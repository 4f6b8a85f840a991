import autocannon from 'autocannon';

export interface LoadOptions {
  baseUrl: string;
  /** Paths requested in turn, shared by every connection: both sides get the same sequence. */
  paths: readonly string[];
  seconds: number;
  connections: number;
  /** Sent with every request (an API key), to both sides alike. */
  headers?: Record<string, string>;
}

export interface RoundStats {
  /** Completed requests per second over the round. */
  rps: number;
  requests: number;
  /** Latency percentiles in milliseconds. */
  p50: number;
  p99: number;
}

/** One closed-loop load round with autocannon; any error or non-2xx answer fails the benchmark. */
export async function loadRound({
  baseUrl,
  paths,
  seconds,
  connections,
  headers,
}: LoadOptions): Promise<RoundStats> {
  let next = 0;
  const result = await autocannon({
    url: baseUrl,
    connections,
    pipelining: 1,
    duration: seconds,
    timeout: 10,
    headers,
    requests: [
      {
        method: 'GET',
        setupRequest: (request) => ({ ...request, path: paths[next++ % paths.length] }),
      },
    ],
  });
  if (result.errors || result.timeouts || result.non2xx)
    throw new Error(
      `${baseUrl}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx ` +
        `(${JSON.stringify(result.statusCodeStats)})`,
    );
  return {
    rps: result.requests.total / result.duration,
    requests: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
  };
}
