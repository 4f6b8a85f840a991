import type { EventEmitter } from 'node:events';
import autocannon from 'autocannon';
import { LIST_QUERIES } from '../api-read.bench';
import { DATA_FILES } from './seed-load-sources';

type Options = Parameters<typeof autocannon>[0];
type Request = NonNullable<Options['requests']>[number];
type Result = Awaited<ReturnType<typeof autocannon>>;

export type Kind = 'list' | 'get' | 'create' | 'update' | 'sync';
export const KINDS: readonly Kind[] = ['list', 'get', 'create', 'update', 'sync'];
export const READ_KINDS: readonly Kind[] = ['list', 'get'];

/** Statuses a kind is expected to answer; anything else fails the run. */
export const EXPECTED: Record<Kind, readonly number[]> = {
  list: [200],
  get: [200],
  create: [201],
  update: [200],
  // 202 queued, or 409: the source is inactive, or a sync of it is already queued or running.
  sync: [202, 409],
};

/**
 * The mix, as a cycle of 20 requests: 8 filtered lists, 8 gets, 1 create, 2 updates, 1 sync
 * (40/40/5/10/5 %), interleaved so writes are spread through it.
 */
const CYCLE: readonly Kind[] = [
  'list', 'get', 'get', 'update', 'list', 'get', 'list', 'sync', 'get', 'list',
  'get', 'create', 'list', 'get', 'update', 'list', 'get', 'list', 'get', 'list',
]; // prettier-ignore

const INTERVALS = [300, 900, 3600, 21600, 86400];

export interface MixTargets {
  /** Every seeded source (get, update, and one sync in four). */
  ids: readonly string[];
  /** Active `file` sources (three syncs in four: the ones that land records). */
  activeFileIds: readonly string[];
  /** Where created `file` sources point (the run's FILE_ROOTS). */
  dataDir: string;
  /** Unique per run: created names never collide with another run's. */
  tag: string;
}

export interface KindStats {
  latencies: number[];
  statuses: Map<number, number>;
}

/** What one phase of the mix measured, per kind and overall. */
export interface MixStats {
  seconds: number;
  kinds: Record<Kind, KindStats>;
  /** Requests per second offered (the sum of the groups' rates); 0 in a closed loop. */
  offered: number;
  /** Connection errors and timeouts (no HTTP answer at all). */
  errors: number;
  timeouts: number;
}

export function emptyMixStats(): MixStats {
  const kinds = {} as Record<Kind, KindStats>;
  for (const k of KINDS) kinds[k] = { latencies: [], statuses: new Map() };
  return { seconds: 0, offered: 0, kinds, errors: 0, timeouts: 0 };
}

/** Adds `b` into `a` (to report two phases as one). */
export function mergeMixStats(a: MixStats, b: MixStats): MixStats {
  const out = emptyMixStats();
  for (const k of KINDS) {
    out.kinds[k].latencies = [...a.kinds[k].latencies, ...b.kinds[k].latencies];
    for (const m of [a.kinds[k].statuses, b.kinds[k].statuses])
      for (const [s, n] of m) out.kinds[k].statuses.set(s, (out.kinds[k].statuses.get(s) ?? 0) + n);
  }
  out.seconds = a.seconds + b.seconds;
  out.offered = (a.offered * a.seconds + b.offered * b.seconds) / out.seconds;
  out.errors = a.errors + b.errors;
  out.timeouts = a.timeouts + b.timeouts;
  return out;
}

type KindRequest = Request & { kind: Kind; body?: string };
/** autocannon's per-client context: reset before each request when the cycle has one request. */
type Context = { kind?: Kind };

/**
 * The mix as one dynamic request: every request any connection sends takes the next step of the
 * shared CYCLE, so the proportions hold exactly over the run whatever the number of connections,
 * and each connection sends every kind. Ids and names come from per-kind shared counters.
 */
export function mixRequest(t: MixTargets, token: string): Request {
  const counters: Record<Kind, number> = { list: 0, get: 0, create: 0, update: 0, sync: 0 };
  let step = 0;
  const next = (k: Kind) => counters[k]++;
  const read = { authorization: `Bearer ${token}` };
  const write = { ...read, 'content-type': 'application/json' };
  // Each kind walks the ids from a different point, so a get does not always follow its update.
  const at = (ids: readonly string[], n: number, shift: number) =>
    ids[(n * 7919 + shift * 1009) % ids.length]!;
  const build: Record<Kind, (req: Request) => KindRequest> = {
    list: (req) => ({
      ...req,
      kind: 'list',
      method: 'GET',
      path: `/raw-data-sources${LIST_QUERIES[next('list') % LIST_QUERIES.length]}`,
      headers: read,
    }),
    get: (req) => ({
      ...req,
      kind: 'get',
      method: 'GET',
      path: `/raw-data-sources/${at(t.ids, next('get'), 0)}`,
      headers: read,
    }),
    create: (req) => {
      const n = next('create');
      return {
        ...req,
        kind: 'create',
        method: 'POST',
        path: '/raw-data-sources',
        headers: write,
        body: JSON.stringify({
          name: `load-${t.tag}-${n}`,
          source_type: 'file',
          connection_string: `file://${t.dataDir}/batch-${n % DATA_FILES}.ndjson`,
          metadata: { format: 'ndjson', owner: 'load' },
          refresh_interval: 3600,
          is_active: true,
        }),
      };
    },
    update: (req) => {
      const n = next('update');
      return {
        ...req,
        kind: 'update',
        method: 'PUT',
        path: `/raw-data-sources/${at(t.ids, n, 1)}`,
        headers: write,
        body: JSON.stringify({ refresh_interval: INTERVALS[n % INTERVALS.length] }),
      };
    },
    sync: (req) => {
      const n = next('sync');
      const id = n % 4 === 3 ? at(t.ids, n, 2) : at(t.activeFileIds, n, 3);
      return {
        ...req,
        kind: 'sync',
        method: 'POST',
        path: `/raw-data-sources/${id}/sync`,
        headers: read,
        body: undefined,
      };
    },
  };
  return {
    method: 'GET',
    path: '/',
    headers: read,
    setupRequest: (req: Request, context?: Context) => {
      const kind = CYCLE[step++ % CYCLE.length]!;
      // Read back by the response handler: with pipelining 1 the context belongs to the request
      // just answered until the client builds its next one.
      if (context) context.kind = kind;
      return build[kind](req);
    },
  };
}

export interface MixOptions {
  baseUrl: string;
  connections: number;
  seconds: number;
  /** From mixRequest, once per run: its counters keep created names unique across phases. */
  request: Request;
  /**
   * Requests per second offered over all connections; none for a closed loop (each connection
   * sends its next request as soon as the previous answer arrives: the saturation throughput).
   */
  rate?: number;
}

/** Groups of connections started this far apart, so paced connections do not all fire together. */
const PACED_GROUPS = 20;

/**
 * One phase of the mix over `connections` keep-alive connections for `seconds`. Latency and
 * status are recorded per kind from autocannon's per-response event.
 *
 * Paced (`rate`): autocannon's rate limit lets a connection send its quota for the second at once
 * and then waits for the next second, and connections created together share that second, which
 * makes one burst of every connection each second. So the connections are split into groups,
 * each its own autocannon instance started 1/PACED_GROUPS s after the previous one: arrivals
 * come spread over the second, as from independent clients.
 */
export async function runMix(o: MixOptions): Promise<MixStats> {
  const stats = emptyMixStats();
  const groups = o.rate ? Math.min(PACED_GROUPS, o.connections) : 1;
  const runs: Array<Promise<Result>> = [];
  let offered = 0;
  for (let g = 0; g < groups; g++) {
    const connections = Math.floor(o.connections / groups) + (g < o.connections % groups ? 1 : 0);
    const rate = o.rate ? Math.max(1, Math.round((o.rate * connections) / o.connections)) : undefined;
    offered += rate ?? 0;
    if (g) await new Promise((resolve) => setTimeout(resolve, 1000 / groups));
    const instance = autocannon({
      url: o.baseUrl,
      connections,
      pipelining: 1,
      duration: o.seconds,
      timeout: 10,
      ...(rate ? { overallRate: rate } : {}),
      requests: [o.request],
    }) as unknown as Promise<Result> & EventEmitter;
    instance.on(
      'response',
      (client: { requestIterator: { context: Context } }, status: number, _bytes: number, ms: number) => {
        const kind = client.requestIterator.context.kind;
        if (!kind) return;
        const k = stats.kinds[kind];
        k.latencies.push(ms);
        k.statuses.set(status, (k.statuses.get(status) ?? 0) + 1);
      },
    );
    runs.push(instance);
  }
  const results = await Promise.all(runs);
  for (const result of results) {
    stats.errors += result.errors - result.timeouts;
    stats.timeouts += result.timeouts;
  }
  // The groups overlap but for their stagger: each ran `seconds`, so requests ÷ the mean of their
  // durations is the rate they sustained together (wall time would count the stagger as idle).
  stats.seconds = results.reduce((sum, r) => sum + r.duration, 0) / results.length;
  stats.offered = offered;
  return stats;
}

/** Requests answered per second over the phase. */
export function throughput(stats: MixStats): number {
  return KINDS.reduce((n, k) => n + stats.kinds[k].latencies.length, 0) / stats.seconds;
}

/** The q-quantile (0..1) of `values`, nearest rank; NaN for none. */
export function quantile(values: readonly number[], q: number): number {
  if (!values.length) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function unexpected(kind: Kind, stats: KindStats): number {
  let n = 0;
  for (const [status, count] of stats.statuses) if (!EXPECTED[kind].includes(status)) n += count;
  return n;
}

export function serverErrors(stats: KindStats): number {
  let n = 0;
  for (const [status, count] of stats.statuses) if (status >= 500) n += count;
  return n;
}
