/**
 * Issue 15.2: end-to-end syncs/s with 1, 2, 4 and 8 worker processes, and what saturates.
 * `npm run bench worker-scaling` (or `make bench-scale`).
 * - Workers: the real SyncWorker in child processes (bench/servers/sluice-worker.ts, the container
 *   `npm run start:worker` builds), BENCH_WORKER_CONCURRENCY (10) jobs each.
 * - Cases (BENCH_SCALE_CASES, `noop,io`): `noop`, the no-op connector (a sync is pure
 *   orchestration: run rows, source status, queue, events); `io`, the real `api` connector against a
 *   loopback HTTP peer started here that answers every page after BENCH_SCALE_HOLD_MS (50) ms
 *   (OUTBOUND_ALLOW=127.0.0.0/8, as production refuses loopback by default).
 * - Load: a closed loop in this process, as POST /raw-data-sources/{id}/sync runs it
 *   (SyncService.requestSync), keeping 2 × workers × concurrency syncs of distinct sources in
 *   flight; a round counts the syncs that succeeded in BENCH_SCALE_SECONDS (6) after
 *   BENCH_SCALE_WARMUP_SECONDS (4), then drains. The warm-up is long enough for workers just started
 *   to compile their hot paths and open their Postgres connections.
 * - Baseline: 1 worker, measured in every repetition beside the others. A repetition walks the
 *   worker counts (BENCH_SCALE_WORKERS, `1,2,4,8`) up, the next one down (starting or stopping only
 *   the difference), BENCH_SCALE_REPS (3) repetitions; medians. Scaling efficiency =
 *   syncs/s at N ÷ (N × syncs/s at 1). `NxC` entries run N workers at concurrency C (e.g.
 *   `1,1x40,2x40`); their efficiency is against the baseline scaled by job slots (N × C ÷ the baseline's).
 * - Saturation, over each measured window: machine CPU (/proc/stat), the workers' and this
 *   process's CPU (/proc/<pid>/stat), Redis CPU and commands (INFO cpu/stats deltas, every node),
 *   the CPU of this database's Postgres backends (pids from pg_stat_activity, /proc) and how many
 *   were active and on what they waited (sampled every 250 ms); worker RSS at the window's end.
 * - Sizing: Redis connections per worker (CLIENT LIST), used_memory per source (its job scheduler)
 *   and per waiting sync job (queued with no worker running).
 * Redis: a private redis-server on loopback (BENCH_SCALE_REDIS_PORT, else a free port) started and
 * stopped (by PID) here, so other clients of a shared Redis neither disturb the CPU figures nor
 * the memory ones. BENCH_SCALE_REDIS_URL uses an existing Redis instead. Every other variable of
 * this process's environment reaches the Sluice containers and workers unchanged, so the same bench
 * runs against an existing Redis Cluster with REDIS_CLUSTER_NODES / SYNC_SHARDS (the topology
 * column names them; list the masters in BENCH_SCALE_REDIS_NODES, comma-separated redis:// URLs, to
 * sample each one's CPU and memory).
 * BENCH_SCALE_TOPOLOGY=cluster: a private Redis Cluster instead (3 masters + 3 replicas, the test
 * helper test/helpers/redis-cluster.ts, on BENCH_SCALE_CLUSTER_PORT (7201) and the five ports after
 * it, cluster bus on each port + 10000), killed by PID at the end; the Sluice processes get
 * REDIS_CLUSTER_NODES and SYNC_SHARDS=BENCH_SCALE_SHARDS (1). Redis CPU, commands, memory and
 * connections are summed over the masters; the replicas' CPU (applying the masters' writes) is the
 * "Redis replicas" column, not in "Redis".
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { ConflictError } from '../src/http/errors';
import { duplicateRedis } from '../src/redis/redis-client';
import { freePort } from './load/load-processes';
import { median, type BenchResult, type BenchSettings } from './lib/bench-result';
import { assertLoopback, createBenchDatabase } from './lib/bench-database';
import { benchContainer, benchEnv } from './lib/bench-env';
import { startChild, type ChildProcess } from './lib/child-server';
import { deleteKeys, lazyFreed, redisCpuSeconds, usedMemory } from './lib/redis-keys';
import { startRedisCluster, type TestRedisCluster } from '../test/helpers/redis-cluster';

const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const S = {
  cases: (process.env.BENCH_SCALE_CASES ?? 'noop,io').split(',').map(caseName),
  configs: (process.env.BENCH_SCALE_WORKERS ?? '1,2,4,8').split(',').map(config),
  reps: num('BENCH_SCALE_REPS', 3),
  seconds: num('BENCH_SCALE_SECONDS', 6),
  warmup: num('BENCH_SCALE_WARMUP_SECONDS', 4),
  holdMs: num('BENCH_SCALE_HOLD_MS', 50),
  concurrency: num('BENCH_WORKER_CONCURRENCY', 10),
};
const PREFIX = 'sluice_bench_scale';
const DRAIN_MS = 60_000;
const STOP_MS = 20_000;
const CLOCK_TICKS = 100;
/** The schedulers exist (as in production) but never fire during the benchmark. */
const NEVER_DURING_BENCH = '0 0 1 1 *';

type CaseName = 'noop' | 'io';
function caseName(name: string): CaseName {
  if (name.trim() !== 'noop' && name.trim() !== 'io')
    throw new Error(`BENCH_SCALE_CASES: "${name}" is neither noop nor io`);
  return name.trim() as CaseName;
}

/** `N` (N workers at BENCH_WORKER_CONCURRENCY) or `NxC` (N workers at concurrency C). */
interface Config {
  label: string;
  workers: number;
  concurrency: number;
}
function config(spec: string): Config {
  const [n, c] = spec.trim().split('x').map(Number);
  const concurrency = c ?? num('BENCH_WORKER_CONCURRENCY', 10);
  if (!Number.isInteger(n) || n! < 1 || !Number.isInteger(concurrency) || concurrency < 1)
    throw new Error(`BENCH_SCALE_WORKERS: "${spec}" is not N or NxC`);
  return { label: spec.trim(), workers: n!, concurrency };
}
/** Job slots of a configuration: what the baseline's throughput is scaled by for the efficiency. */
const slots = (c: Config) => c.workers * c.concurrency;
const CASE_LABEL: Record<CaseName, string> = {
  noop: 'no-op connector',
  io: `api source, ${S.holdMs} ms loopback peer`,
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const load1 = () => loadavg()[0]!;

const TOPOLOGY = process.env.BENCH_SCALE_TOPOLOGY ?? 'single';
if (TOPOLOGY !== 'single' && TOPOLOGY !== 'cluster')
  throw new Error(`BENCH_SCALE_TOPOLOGY: "${TOPOLOGY}" is neither single nor cluster`);
/** Sync shards on the private cluster (BENCH_SCALE_TOPOLOGY=cluster). */
const CLUSTER_SHARDS = num('BENCH_SCALE_SHARDS', 1);
const CLUSTER_PORT = num('BENCH_SCALE_CLUSTER_PORT', 7201);

/** The Redis topology the Sluice processes get, from the environment they inherit (or the private cluster's). */
function topology(): string {
  const clustered = TOPOLOGY === 'cluster' || process.env.REDIS_CLUSTER_NODES;
  if (!clustered) return 'single Redis';
  const shards = TOPOLOGY === 'cluster' ? CLUSTER_SHARDS : Number(process.env.SYNC_SHARDS ?? 1);
  return `cluster, ${shards} shard${shards === 1 ? '' : 's'}`;
}

/** A redis-server of this benchmark's own on loopback: no other client disturbs its CPU or memory. */
async function privateRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = process.env.BENCH_SCALE_REDIS_PORT
    ? Number(process.env.BENCH_SCALE_REDIS_PORT)
    : await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `redis://127.0.0.1:${port}/0`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  // Refused while the server starts: the loop below retries.
  probe.on('error', () => undefined);
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited (port taken?)`);
      if (
        (await probe.connect().then(
          () => probe.ping(),
          () => null,
        )) === 'PONG'
      )
        break;
      if (i > 100) throw new Error(`redis-server on ${port} did not answer in 10 s`);
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    probe.disconnect();
  }
  return { url, stop };
}

/** CPU seconds (user + system) of a process so far, from /proc; 0 once it has gone. */
async function procCpu(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

async function procRss(pid: number): Promise<number> {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1];
    return Number(kb ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** Busy and total CPU seconds of the whole machine so far (/proc/stat; idle and iowait are not busy). */
async function machineCpu(): Promise<{ busy: number; total: number }> {
  const [, ...values] = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/);
  const ticks = values.slice(0, 8).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  return { busy: (total - ticks[3]! - ticks[4]!) / CLOCK_TICKS, total: total / CLOCK_TICKS };
}

/** Calls so far by command (INFO commandstats), to see which ones grow per sync with more workers. */
async function redisCommandCalls(redis: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const [, name, n] of (await redis.info('commandstats')).matchAll(/cmdstat_([\w|-]+):calls=(\d+)/g))
    calls.set(name!, Number(n));
  return calls;
}

async function redisCommands(redis: Redis): Promise<number> {
  return Number(/total_commands_processed:(\d+)/.exec(await redis.info('stats'))?.[1] ?? NaN);
}

interface Peer {
  server: Server;
  port: number;
  requests: number;
}

/** Loopback HTTP peer: every request answered with two records after `holdMs`. */
async function peer(holdMs: number): Promise<Peer> {
  const p = { requests: 0 } as Peer;
  p.server = createServer((_req, res) => {
    p.requests += 1;
    setTimeout(() => {
      res.setHeader('content-type', 'application/json');
      res.end('[{"n":1},{"n":2}]');
    }, holdMs);
  });
  p.server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => p.server.listen(0, '127.0.0.1', resolve));
  p.port = (p.server.address() as AddressInfo).port;
  return p;
}

/** Seconds of CPU per second of wall time: 1.0 is one core busy. */
interface Saturation {
  machine: number;
  workers: number;
  /** The busiest worker, in cores: a single Node process tops out at one. */
  busiestWorker: number;
  bench: number;
  redis: number;
  /** The private cluster's replicas (0 on a single Redis). */
  replicas: number;
  postgres: number;
  /** Machine CPU not accounted for by the above: other users of the machine. */
  other: number;
  redisCommandsPerSync: number;
  /** The commands that were called most per sync, `name n.n`. */
  topCommands: string;
  /** CPU ms per sync: of the workers, and of everything the benchmark runs (workers, producer, Redis, Postgres). */
  workerMsPerSync: number;
  ourMsPerSync: number;
  pgActive: number;
  /** Postgres connections of this database (all processes) during the window. */
  pgConnections: number;
  pgWait: string;
  workerRss: number;
  load: number;
}

function topCommands(before: Map<string, number>[], after: Map<string, number>[], syncs: number): string {
  const per = new Map<string, number>();
  after.forEach((calls, node) => {
    for (const [name, n] of calls) per.set(name, (per.get(name) ?? 0) + n - (before[node]?.get(name) ?? 0));
  });
  return [...per.entries()]
    .sort((x, y) => y[1] - x[1])
    .slice(0, 6)
    .map(([name, n]) => `${name} ${(n / Math.max(1, syncs)).toFixed(1)}`)
    .join(', ');
}

interface Round {
  rate: number;
  sat: Saturation;
}

export default async function workerScaling(_settings: BenchSettings): Promise<BenchResult[]> {
  const external = process.env.BENCH_SCALE_REDIS_URL;
  // The private cluster: its masters are the nodes sampled; the replicas' CPU is reported apart.
  let cluster: TestRedisCluster | undefined;
  let clusterEnv: Record<string, string> = {};
  let replicaUrls: string[] = [];
  let own: { url: string; stop(): Promise<void> } | undefined;
  if (TOPOLOGY === 'cluster') {
    cluster = await startRedisCluster(Array.from({ length: 6 }, (_, i) => CLUSTER_PORT + i));
    const roles = await cluster.topology();
    const url = (port: number) => `redis://127.0.0.1:${port}`;
    process.env.BENCH_SCALE_REDIS_NODES = roles
      .filter((r) => r.role === 'master')
      .map((r) => url(r.port))
      .join(',');
    replicaUrls = roles.filter((r) => r.role === 'slave').map((r) => url(r.port));
    clusterEnv = { REDIS_CLUSTER_NODES: cluster.seeds, SYNC_SHARDS: String(CLUSTER_SHARDS) };
  } else if (!external) own = await privateRedis();
  const redisUrl = external ?? own?.url ?? `redis://127.0.0.1:${CLUSTER_PORT}`;
  assertLoopback(redisUrl);
  const nodeUrls = (process.env.BENCH_SCALE_REDIS_NODES ?? redisUrl).split(',').map((u) => u.trim());
  [...nodeUrls, ...replicaUrls].forEach(assertLoopback);
  const nodes = nodeUrls.map((u) => new Redis(u));
  const replicas = replicaUrls.map((u) => new Redis(u));
  const db = await createBenchDatabase('sluice_bench_scale');
  const env = {
    ...benchEnv(db.url, PREFIX),
    REDIS_URL: redisUrl,
    ...clusterEnv,
    WORKER_CONCURRENCY: String(S.concurrency),
    OUTBOUND_ALLOW: '127.0.0.0/8',
  };
  const container = benchContainer(env);
  const reader = duplicateRedis(container.redis);
  const io = await peer(S.holdMs);
  const workers: ChildProcess[] = [];
  if (!S.configs.some((c) => c.workers === 1 && c.concurrency === S.concurrency))
    throw new Error(
      `BENCH_SCALE_WORKERS must include the baseline, 1 (one worker at concurrency ${S.concurrency})`,
    );
  const inFlight = 2 * Math.max(...S.configs.map(slots));
  // Twice the sources in flight, reused first in first out: a source rests before its next sync, so
  // the last one's deduplication key (released just after sync.succeeded) is gone by then.
  const sourceCount = 2 * inFlight;
  const sizing: string[] = [];
  const failures: string[] = [];
  /** Retried sync attempts by reason (the error with its numbers blanked, so one port or count is one reason). */
  const retries = new Map<string, number>();
  let conflicts = 0;
  /** Workers that did not exit within STOP_MS of SIGTERM (then killed). */
  let hungStops = 0;
  /**
   * Stops a worker (SIGTERM, its graceful close); one still there after STOP_MS is killed
   * (SIGKILL) and counted: a worker on a Redis Cluster was seen hanging in its close, and the
   * rounds after it must not wait on it forever.
   */
  const stopWorker = async (w: ChildProcess) => {
    const closed = await Promise.race([w.stop().then(() => true), sleep(STOP_MS).then(() => false)]);
    if (closed) return;
    hungStops += 1;
    process.kill(w.pid, 'SIGKILL');
    await w.stop();
  };
  let reading = true;
  let readLoop: Promise<void> = Promise.resolve();
  try {
    // A fresh private cluster holds nothing yet (and UNLINK of keys in several slots is refused there).
    if (!cluster) for (const node of nodes) await deleteKeys(node, `${PREFIX}:*`);
    const clients = async () =>
      (
        await Promise.all(
          nodes.map(
            async (n) =>
              String(await n.client('LIST'))
                .trim()
                .split('\n').length,
          ),
        )
      ).reduce((a, b) => a + b, 0);
    const memory = async () => {
      for (const n of nodes) await lazyFreed(n);
      return (await Promise.all(nodes.map(usedMemory))).reduce((a, b) => a + b, 0);
    };

    // Sizing 1: Redis per source (its job scheduler, and the events its creation wrote).
    const beforeSources = await memory();
    const ids: string[] = [];
    for (let i = 0; i < sourceCount; i++) {
      const source = await container.sources.create({
        name: `scale-${i}`,
        source_type: 'api',
        connection_string: `http://127.0.0.1:${io.port}/items?i=${i}`,
        refresh_interval: 86400,
        schedule_cron: NEVER_DURING_BENCH,
        is_active: true,
      });
      // What POST /raw-data-sources does after the insert (the repository alone writes only the row).
      await container.schedules.apply(source);
      ids.push(source.id);
    }
    const perSource = ((await memory()) - beforeSources) / sourceCount;
    sizing.push(
      `Redis used_memory per active source (its job scheduler and the delayed job of its next fire): ${perSource.toFixed(0)} B (${sourceCount} sources)`,
    );

    // Completions: sync.succeeded events of the runs this process asked for, by run id.
    const done = new Map<string, number>();
    const waiters = new Map<string, () => void>();
    let last = (await container.redis.xrevrange(container.events.key, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
    readLoop = (async () => {
      while (reading) {
        const reply = (await reader.xread(
          'COUNT',
          2000,
          'BLOCK',
          200,
          'STREAMS',
          container.events.key,
          last,
        )) as [string, [string, string[]][]][] | null;
        for (const [id, fields] of reply?.[0]?.[1] ?? []) {
          last = id;
          const type = fields[fields.indexOf('type') + 1];
          const runId = fields[fields.indexOf('run_id') + 1]!;
          if (type === 'sync.retrying') {
            const why =
              (JSON.parse(fields[fields.indexOf('data') + 1] ?? '{}') as { error?: string }).error ?? '?';
            const reason = why.replace(/\d+/g, 'N').slice(0, 160);
            retries.set(reason, (retries.get(reason) ?? 0) + 1);
          }
          if (type === 'sync.failed') failures.push(fields[fields.indexOf('data') + 1] ?? '');
          if (type !== 'sync.succeeded' && type !== 'sync.failed') continue;
          done.set(runId, performance.now());
          waiters.get(runId)?.();
        }
      }
    })();
    const finished = (runId: string) =>
      new Promise<void>((resolve) => {
        if (done.has(runId)) return resolve();
        waiters.set(runId, resolve);
      }).finally(() => {
        waiters.delete(runId);
        done.delete(runId);
      });

    // Sizing 2: Redis per waiting sync job (queued with no worker running); then drained.
    const beforeJobs = await memory();
    const backlog = await Promise.all(ids.map((id) => container.sync.requestSync(id)));
    const perJob = ((await memory()) - beforeJobs) / ids.length;
    sizing.push(
      `Redis used_memory per waiting sync job (job hash, wait list entry, dedup key, sync.queued event): ${perJob.toFixed(0)} B (${ids.length} jobs)`,
    );

    const baseClients = await clients();
    let running = S.concurrency;
    const setWorkers = async (n: number, kind: CaseName, concurrency = S.concurrency) => {
      const extra = {
        ...env,
        BENCH_CONNECTORS: kind === 'io' ? 'real' : 'noop',
        WORKER_CONCURRENCY: String(concurrency),
      };
      // Another concurrency: every worker starts afresh with it.
      if (concurrency !== running) await Promise.all(workers.splice(0).map(stopWorker));
      running = concurrency;
      if (workers.length < n)
        workers.push(
          ...(await Promise.all(
            Array.from({ length: n - workers.length }, () =>
              startChild('bench/servers/sluice-worker.ts', extra),
            ),
          )),
        );
      await Promise.all(workers.splice(n).map(stopWorker));
    };
    await setWorkers(1, 'noop');
    await Promise.race([
      Promise.all(backlog.map((b) => finished(b.run_id))),
      sleep(DRAIN_MS).then(() => {
        throw new Error('the sizing backlog did not drain');
      }),
    ]);
    await sleep(500);
    sizing.push(
      `Redis connections per worker process (CLIENT LIST, idle): ${(await clients()) - baseClients}`,
    );

    // One round: the closed loop for warm-up + window, saturation sampled over the window.
    const pgPids = async () =>
      (await db.knex('pg_stat_activity').where({ datname: 'sluice_bench_scale' }).select('pid')).map(
        (r: { pid: number }) => Number(r.pid),
      );
    const round = async (): Promise<Round> => {
      const free = [...ids];
      let counting = false;
      let completed = 0;
      let producing = true;
      const loop = async () => {
        while (producing) {
          const id = free.shift();
          if (!id) throw new Error('no free source: more in flight than sources');
          const accepted = await container.sync.requestSync(id).catch((err: Error) => {
            // "A sync of this source is just finishing": its last job still holds the dedup key.
            if (err instanceof ConflictError) return undefined;
            throw err;
          });
          if (accepted?.status !== 'queued') {
            conflicts += 1;
            free.push(id);
            await sleep(10);
            continue;
          }
          await finished(accepted.run_id);
          if (counting) completed += 1;
          free.push(id);
        }
      };
      const loops = Array.from({ length: Math.min(inFlight, 2 * workers.length * running) }, loop);
      const all = Promise.all(loops);
      all.catch(() => undefined);
      await Promise.race([sleep(S.warmup * 1000), all]);

      const pids = await pgPids();
      const snap = async () => ({
        at: performance.now(),
        machine: await machineCpu(),
        workers: await Promise.all(workers.map((w) => procCpu(w.pid))),
        bench: process.cpuUsage(),
        redis: (await Promise.all(nodes.map(redisCpuSeconds))).reduce((a, b) => a + b, 0),
        replicas: (await Promise.all(replicas.map(redisCpuSeconds))).reduce((a, b) => a + b, 0),
        commands: (await Promise.all(nodes.map(redisCommands))).reduce((a, b) => a + b, 0),
        byCommand: await Promise.all(nodes.map(redisCommandCalls)),
        pg: (await Promise.all(pids.map(procCpu))).reduce((a, b) => a + b, 0),
      });
      const pgSamples: { active: number; waits: string[] }[] = [];
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const rows = (await db
            .knex('pg_stat_activity')
            .where({ datname: 'sluice_bench_scale', state: 'active' })
            .whereNot('pid', db.knex.raw('pg_backend_pid()'))
            .select('wait_event_type', 'wait_event')) as {
            wait_event_type: string | null;
            wait_event: string | null;
          }[];
          pgSamples.push({
            active: rows.length,
            waits: rows.map((r) => (r.wait_event ? `${r.wait_event_type}:${r.wait_event}` : 'CPU')),
          });
          await sleep(250);
        }
      })();
      const a = await snap();
      counting = true;
      await Promise.race([sleep(S.seconds * 1000), all]);
      counting = false;
      const counted = completed;
      const b = await snap();
      const rss = await Promise.all(workers.map((w) => procRss(w.pid)));
      sampling = false;
      await sampler;
      producing = false;
      await Promise.race([
        all,
        sleep(DRAIN_MS).then(() => {
          throw new Error(`round did not drain in ${DRAIN_MS} ms (${waiters.size} syncs unfinished)`);
        }),
      ]);
      if (failures.length) throw new Error(`syncs failed: ${failures.slice(0, 3).join('; ')}`);

      const wall = (b.at - a.at) / 1000;
      const perWorker = b.workers.map((cpu, i) => (cpu - a.workers[i]!) / wall);
      const cores = {
        machine: (b.machine.busy - a.machine.busy) / wall,
        workers: perWorker.reduce((x, y) => x + y, 0),
        bench: (b.bench.user + b.bench.system - a.bench.user - a.bench.system) / 1e6 / wall,
        redis: (b.redis - a.redis) / wall,
        replicas: (b.replicas - a.replicas) / wall,
        postgres: (b.pg - a.pg) / wall,
      };
      const waits = new Map<string, number>();
      for (const s of pgSamples) for (const w of s.waits) waits.set(w, (waits.get(w) ?? 0) + 1);
      const samples = Math.max(1, pgSamples.length);
      const topWaits = [...waits.entries()]
        .sort((x, y) => y[1] - x[1])
        .slice(0, 2)
        .map(([w, n]) => `${w} ${(n / samples).toFixed(1)}`)
        .join(', ');
      return {
        rate: counted / wall,
        sat: {
          ...cores,
          busiestWorker: Math.max(...perWorker),
          other: Math.max(
            0,
            cores.machine - cores.workers - cores.bench - cores.redis - cores.replicas - cores.postgres,
          ),
          redisCommandsPerSync: counted ? (b.commands - a.commands) / counted : NaN,
          topCommands: topCommands(a.byCommand, b.byCommand, counted),
          workerMsPerSync: counted ? (cores.workers * wall * 1000) / counted : NaN,
          ourMsPerSync: counted
            ? ((cores.workers + cores.bench + cores.redis + cores.replicas + cores.postgres) * wall * 1000) /
              counted
            : NaN,
          pgConnections: pids.length,
          pgActive: pgSamples.reduce((x, s) => x + s.active, 0) / samples,
          pgWait: topWaits || '—',
          workerRss: median(rss),
          load: load1(),
        },
      };
    };

    const results: BenchResult[] = [];
    const table: string[] = [];
    const satTable: string[] = [];
    const commandLines: string[] = [];
    const loads: number[] = [load1()];
    for (const kind of S.cases) {
      // Each case starts from fresh workers of its own connector set.
      await setWorkers(0, kind);
      const rounds = new Map<Config, Round[]>(S.configs.map((c) => [c, []]));
      const baseline = S.configs.find((c) => c.workers === 1 && c.concurrency === S.concurrency)!;
      // Up by slots (workers × concurrency), the next repetition down: only the difference starts or stops.
      const ascending = [...S.configs].sort((x, y) => slots(x) - slots(y) || x.concurrency - y.concurrency);
      for (let rep = 0; rep < S.reps; rep++) {
        const order = rep % 2 ? [...ascending].reverse() : ascending;
        for (const c of order) {
          const n = c.workers;
          await setWorkers(n, kind, c.concurrency);
          if (n > 1 && rep === 0 && kind === S.cases[0] && c.concurrency === S.concurrency) {
            const connections = (await clients()) - baseClients;
            const before = await Promise.all(workers.map((w) => procCpu(w.pid)));
            const started = performance.now();
            await sleep(3000);
            const idle = (await Promise.all(workers.map((w) => procCpu(w.pid)))).reduce(
              (sum, cpu, i) => sum + cpu - before[i]!,
              0,
            );
            sizing.push(
              `${n} idle workers: ${connections} Redis connections (${(connections / n).toFixed(1)} per worker), ` +
                `CPU ${((idle / ((performance.now() - started) / 1000) / n) * 1000).toFixed(0)} ms/s per worker (3 s, just after start)`,
            );
          }
          const r = await round();
          rounds.get(c)!.push(r);
          loads.push(r.sat.load);
          process.stderr.write(
            `  ${kind} rep ${rep + 1}/${S.reps}, ${n} worker(s) × ${c.concurrency}: ${r.rate.toFixed(1)} syncs/s; CPU cores machine ` +
              `${r.sat.machine.toFixed(2)}, workers ${r.sat.workers.toFixed(2)}, bench ${r.sat.bench.toFixed(2)}, ` +
              `redis ${r.sat.redis.toFixed(2)}${cluster ? ` (+ replicas ${r.sat.replicas.toFixed(2)})` : ''}, pg ${r.sat.postgres.toFixed(2)}; load ${r.sat.load.toFixed(2)}\n`,
          );
        }
      }
      const base = median(rounds.get(baseline)!.map((r) => r.rate));
      for (const c of S.configs) {
        const rs = [...rounds.get(c)!].sort((x, y) => x.rate - y.rate);
        commandLines.push(
          `${CASE_LABEL[kind]}, ${c.workers} × ${c.concurrency}: ${rs[Math.floor(rs.length / 2)]!.sat.topCommands}`,
        );
      }
      for (const c of S.configs) {
        const n = c.workers;
        const rs = rounds.get(c)!;
        const rate = median(rs.map((r) => r.rate));
        const m = (f: (s: Saturation) => number) => median(rs.map((r) => f(r.sat)));
        const scale = slots(c) / slots(baseline);
        const eff = rate / (scale * base);
        table.push(
          `| ${CASE_LABEL[kind]} | ${topology()} | ${n} | ${c.concurrency} | ${rate.toFixed(1)} | ${base.toFixed(1)} | ` +
            `${(eff * 100).toFixed(0)}% | ${rs.map((r) => r.rate.toFixed(0)).join(' ')} | ` +
            `${Math.min(...rs.map((r) => r.sat.load)).toFixed(1)}–${Math.max(...rs.map((r) => r.sat.load)).toFixed(1)} |`,
        );
        satTable.push(
          `| ${CASE_LABEL[kind]} | ${n} × ${c.concurrency} | ${m((s) => s.machine).toFixed(2)} | ${m((s) => s.workers).toFixed(2)} ` +
            `(max ${m((s) => s.busiestWorker).toFixed(2)}) | ${m((s) => s.bench).toFixed(2)} | ` +
            `${m((s) => s.redis).toFixed(2)} | ${m((s) => s.replicas).toFixed(2)} | ${m((s) => s.postgres).toFixed(2)} | ${m((s) => s.other).toFixed(2)} | ` +
            `${m((s) => s.workerMsPerSync).toFixed(1)} | ${m((s) => s.ourMsPerSync).toFixed(1)} | ` +
            `${m((s) => s.redisCommandsPerSync).toFixed(0)} | ${m((s) => s.pgConnections).toFixed(0)} | ${m((s) => s.pgActive).toFixed(1)} | ` +
            `${rs[Math.floor(rs.length / 2)]!.sat.pgWait} | ${(m((s) => s.workerRss) / 2 ** 20).toFixed(0)} MiB |`,
        );
        if (c !== baseline)
          results.push({
            name: `${CASE_LABEL[kind]}, ${topology()}: ${n} workers × ${c.concurrency} vs 1 × ${S.concurrency}`,
            unit: 'syncs/s',
            sluice: rate,
            baseline: base,
            higherIsBetter: true,
            targets: [],
            rounds: { sluice: rs.map((r) => r.rate), baseline: rounds.get(baseline)!.map((r) => r.rate) },
            note: `scaling efficiency ${(eff * 100).toFixed(0)}% (ideal ratio ${scale}×, by job slots)`,
          });
      }
    }
    await setWorkers(0, 'noop');

    console.log(
      `\n### Worker scaling (${topology()}, baseline 1 worker × ${S.concurrency}, ${S.reps} reps × ` +
        `${S.seconds} s windows, medians; load ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)})\n\n` +
        `| case | topology | workers | concurrency | syncs/s | 1 worker, same reps | scaling efficiency | reps (syncs/s) | load (1 min) |\n` +
        `| --- | --- | --: | --: | --: | --: | --: | --- | --- |\n${table.join('\n')}\n\n` +
        `Saturation over the measured windows, CPU in cores (2 cores = 2.00), medians of the reps:\n\n` +
        `| case | workers × concurrency | machine | workers (busiest) | bench (producer) | Redis | Redis replicas | Postgres (this db) | other | worker CPU ms/sync | all ours ms/sync | Redis cmds/sync | pg conns | pg active | top pg waits (avg backends) | worker RSS |\n` +
        `| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --- | --: |\n${satTable.join('\n')}\n\n` +
        `Redis calls per sync by command (the median repetition):\n\n${commandLines.map((l) => `- ${l}`).join('\n')}\n\n` +
        `${sizing.map((s) => `- ${s}`).join('\n')}\n- sync attempts retried: ${[...retries.values()].reduce((a, b) => a + b, 0)}${retries.size ? ` (${[...retries.entries()].map(([why, n]) => `${n} × "${why}"`).join(', ')})` : ''}; sync requests that met the previous sync still finishing (re-asked): ${conflicts}; peer requests: ${io.requests}; workers that did not exit within ${STOP_MS / 1000} s of SIGTERM (then killed): ${hungStops}\n`,
    );
    return results;
  } finally {
    reading = false;
    await readLoop.catch(() => undefined);
    await Promise.all(workers.map(stopWorker));
    if (!cluster) for (const node of nodes) await deleteKeys(node, `${PREFIX}:*`).catch(() => 0);
    [...nodes, ...replicas].forEach((n) => n.disconnect());
    reader.disconnect();
    io.server.closeAllConnections();
    io.server.close();
    await container.close();
    if (process.env.BENCH_KEEP_DATABASE !== '1') await db.drop();
    else await db.knex.destroy();
    await own?.stop();
    await cluster?.stop();
  }
}
