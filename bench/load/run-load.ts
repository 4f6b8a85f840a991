/**
 * `make load` / `npm run load`: the API and two workers as deployed (`src/main.ts api`,
 * `workers/worker.ts`, NODE_ENV=production, auth and rate limiting on), over their own database of
 * 10k sources and their own queue prefix, driven by a realistic mix (filtered lists, gets,
 * creates, updates, syncs) from 200 keep-alive connections: a closed-loop saturation phase, then
 * 60 s paced at half that throughput (two identical phases), then GET-by-id beside a minimal
 * Koa + knex handler. Prints per-kind throughput, latency and statuses, each process's RSS over
 * time with a no-growth check, and exits 1 when a target is missed or any 5xx (or unexpected
 * status, error, timeout) is seen.
 *
 * Why paced: with N connections in a closed loop, latency = N ÷ throughput (Little's law): at
 * 200 connections a p99 under 100 ms would need well over 2,000 req/s from one API process on
 * two shared cores. The latency target means "200 clients at a realistic rate", so it is checked
 * at an offered rate, and the closed loop is reported for the throughput ceiling.
 *
 * Knobs: LOAD_DURATION (60 s of paced mix, as two equal phases), LOAD_CONNECTIONS (200),
 * LOAD_SATURATION (15 s closed loop), LOAD_RATE (req/s offered; default LOAD_RATE_FRACTION, 0.5,
 * of the saturation throughput), LOAD_SOURCES (10000), LOAD_WARMUP (5 s), LOAD_COMPARE_ROUNDS (6),
 * LOAD_COMPARE_SECONDS (4), LOAD_COMPARE_CONNECTIONS (10), LOAD_SAMPLE_MS (2000),
 * LOAD_READ_P99_MS (100), LOAD_RSS_GROWTH (0.10), LOAD_HEAP_GROWTH (0.10), LOAD_RATE_LIMIT (1000000 a minute for every RATE_LIMIT_*; 0 turns the limiter off), LOAD_LOG_LEVEL (info), LOAD_CPU_PROF (a directory for V8 CPU profiles), LOAD_NODE_FLAGS (more node flags for the Sluice processes, e.g. --trace-gc), LOAD_API_NODE_FLAGS (node flags for the API process only, e.g. --max-semi-space-size=2),
 * LOAD_AB_NODE_FLAGS (node flags to compare: a second API process with them, started after the load,
 * against the API without them, GET by id in alternating rounds, e.g. --max-semi-space-size=1),
 * LOAD_COMPILED=1 (run the compiled build, dist/ from `npm run build`, as production does, instead of tsx), LOAD_KEEP_DATABASE=1
 * (keep the database `sluice_load`, the temp dir with the logs and the Redis keys), LOAD_REDIS_URL
 * (else BENCH_REDIS_URL, else redis://127.0.0.1:6379/0; Postgres as the benchmarks: BENCH_ADMIN_DATABASE_URL). Loopback only.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { SecretBox } from '../../src/crypto/secret-box';
import { QUEUES } from '../../src/queue/queue-names';
import { assertLoopback, createBenchDatabase, type BenchDatabase } from '../lib/bench-database';
import { startChildServer } from '../lib/child-server';
import { deleteKeys } from '../lib/redis-keys';
import { compareGetById, type CompareResult } from './get-by-id-compare';
import { freePort, RssSampler, startSluiceProcess, waitFor, type SluiceProcess } from './load-processes';
import { mergeMixStats, mixRequest, runMix, throughput, type MixStats } from './load-mix';
import {
  compareTable,
  memoryReport,
  mixFailures,
  mixTable,
  rateFailures,
  readP99,
  serverTimes,
} from './load-report';
import { seedLoadSources, writeDataFiles } from './seed-load-sources';

const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const S = {
  duration: num('LOAD_DURATION', 60),
  connections: num('LOAD_CONNECTIONS', 200),
  sources: num('LOAD_SOURCES', 10_000),
  warmup: num('LOAD_WARMUP', 5),
  compareRounds: num('LOAD_COMPARE_ROUNDS', 6),
  compareSeconds: num('LOAD_COMPARE_SECONDS', 4),
  compareConnections: num('LOAD_COMPARE_CONNECTIONS', 10),
  sampleMs: num('LOAD_SAMPLE_MS', 2000),
  saturation: num('LOAD_SATURATION', 15),
  rate: process.env.LOAD_RATE ? Number(process.env.LOAD_RATE) : undefined,
  rateFraction: num('LOAD_RATE_FRACTION', 0.5),
  readP99Ms: num('LOAD_READ_P99_MS', 100),
  rssGrowth: num('LOAD_RSS_GROWTH', 0.1),
  heapGrowth: num('LOAD_HEAP_GROWTH', 0.1),
  /** RATE_LIMIT_ALL/SYNC/TEST of the processes: raised, not off (0 switches the limiter off). */
  rateLimit: process.env.LOAD_RATE_LIMIT ?? '1000000',
  keep: process.env.LOAD_KEEP_DATABASE === '1',
  redisUrl: process.env.LOAD_REDIS_URL ?? process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/0',
};
/** GET by id: Sluice's req/s over the minimal handler's, at least. */
const GET_RATIO = 0.8;
/** Hard bound on the whole run: past it, everything is stopped and the run fails. */
const DEADLINE_MS = 280_000 + Math.max(0, S.duration - 60) * 1000;
/** Most a queue backlog gets to drain after the load before its size is reported as is. */
const DRAIN_MS = 30_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const log = (line: string) => process.stderr.write(`${line}\n`);

const stopping: Array<() => Promise<unknown>> = [];
let cleaned: Promise<void> | undefined;
/** Stops every process this run started and removes what it created; safe to call twice. */
function cleanup(failed: boolean): Promise<void> {
  return (cleaned ??= (async () => {
    for (const stop of stopping.reverse()) await stop().catch((err) => log(`cleanup: ${String(err)}`));
    if (failed) log('(logs kept, see above)');
  })());
}

async function main(): Promise<boolean> {
  assertLoopback(S.redisUrl);
  const failures: string[] = [];
  const token = `slc_${randomBytes(32).toString('base64url')}`;
  const prefix = `sluice_load_${randomBytes(4).toString('hex')}`;
  const tmp = await mkdtemp(join(tmpdir(), 'sluice-load-'));
  const dataDir = join(tmp, 'data');
  stopping.push(async () => {
    if (!S.keep && !process.exitCode) await rm(tmp, { recursive: true, force: true });
    else log(`kept ${tmp}`);
  });

  const cpu = cpus();
  console.log(
    `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
      `node ${process.version}, load ${load()}`,
  );

  // --- database, data files, seed ---
  await writeDataFiles(dataDir);
  const db: BenchDatabase = await createBenchDatabase('sluice_load');
  stopping.push(() => (S.keep ? db.knex.destroy() : db.drop()));
  const encryptionKeys = `load:${randomBytes(32).toString('base64')}`;
  const seedStarted = performance.now();
  const seeded = await seedLoadSources(db.knex, new SecretBox(encryptionKeys), S.sources, dataDir);
  const version = (await db.knex.raw<{ rows: Array<{ server_version: string }> }>('SHOW server_version'))
    .rows[0]?.server_version;
  console.log(
    `data: PostgreSQL ${version}, ${S.sources} sources seeded in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s ` +
      `(${seeded.activeFileIds.length} active file sources on NDJSON files in FILE_ROOTS=${dataDir})`,
  );

  // --- Redis (own prefix, removed afterwards) ---
  const redis = new Redis(S.redisUrl, { maxRetriesPerRequest: 1 });
  stopping.push(async () => {
    if (!S.keep) log(`removed ${await deleteKeys(redis, `${prefix}:*`)} Redis keys under ${prefix}:`);
    redis.disconnect();
  });
  const queueConnection = redis.duplicate();
  const syncQueue = new Queue(QUEUES.sync, { connection: queueConnection, prefix });
  // BullMQ leaves a connection it was given open: close both.
  stopping.push(async () => {
    await syncQueue.close();
    queueConnection.disconnect();
  });

  // --- processes ---
  const port = await freePort();
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: db.url,
    REDIS_URL: S.redisUrl,
    ENCRYPTION_KEYS: encryptionKeys,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: process.env.LOAD_LOG_LEVEL ?? 'info',
    API_KEYS: `admin:${token}`,
    // Raised to the most the config takes (per key per minute) for this run's one key, so the
    // limiter still runs on every request (its cost is measured) but never answers 429 to the load.
    RATE_LIMIT_ALL: S.rateLimit,
    RATE_LIMIT_SYNC: S.rateLimit,
    RATE_LIMIT_TEST: S.rateLimit,
    FILE_ROOTS: dataDir,
    // Production policy: no loopback or private address for database/api/stream sources.
    OUTBOUND_ALLOW: '',
    OUTBOUND_DENY: '',
  };
  const procs: SluiceProcess[] = [];
  const compiled = process.env.LOAD_COMPILED === '1';
  const start = (name: string, script: string, args: string[]) => {
    // LOAD_CPU_PROF=dir: each process writes a V8 CPU profile there when it stops.
    // LOAD_NODE_FLAGS: more node flags for the Sluice processes (--trace-gc, heap sizes...).
    const prof = [
      ...(process.env.LOAD_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.LOAD_CPU_PROF}`] : []),
      ...(process.env.LOAD_NODE_FLAGS ?? '').split(' ').filter(Boolean),
      ...(name === 'api' ? (process.env.LOAD_API_NODE_FLAGS ?? '').split(' ').filter(Boolean) : []),
    ];
    const entry = compiled ? `dist/${script.replace(/\.ts$/, '.js')}` : script;
    const p = startSluiceProcess(name, entry, args, env, join(tmp, `${name}.log`), prof);
    procs.push(p);
    return p;
  };
  // Stopped together (SIGTERM, then SIGKILL after a grace): workers hand their jobs back at once.
  stopping.push(() => Promise.all(procs.map((p) => p.stop())));
  const api = start('api', 'src/main.ts', ['api']);
  const workers = [start('worker-1', 'workers/worker.ts', []), start('worker-2', 'workers/worker.ts', [])];
  const baseUrl = `http://127.0.0.1:${port}`;
  const started = performance.now();
  await waitFor('the API', async () => (await fetch(`${baseUrl}/readyz`)).status === 200, 60_000, procs);
  for (const w of workers)
    await waitFor(
      `${w.name}`,
      async () => (await readFile(w.logFile, 'utf8')).includes('"worker started"'),
      60_000,
      procs,
    );
  await waitFor(
    'the schedule reconcile',
    async () => (await redis.exists(`${prefix}:meta:schedules-reconciled`)) === 1,
    60_000,
    procs,
  );
  const probe = await fetch(`${baseUrl}/raw-data-sources?limit=1`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (probe.status !== 200)
    throw new Error(`GET /raw-data-sources with the run's token answered ${probe.status}`);
  const anonymous = await fetch(`${baseUrl}/raw-data-sources?limit=1`);
  const noToken = anonymous.status;
  void anonymous.body?.cancel();
  console.log(
    `processes: api pid ${api.pid}, workers ${workers.map((w) => w.pid).join(', ')} ` +
      `(${compiled ? 'node dist/, compiled' : 'node --import tsx'}` +
      `${process.env.LOAD_NODE_FLAGS ? ` ${process.env.LOAD_NODE_FLAGS}` : ''}` +
      `${process.env.LOAD_API_NODE_FLAGS ? `, api ${process.env.LOAD_API_NODE_FLAGS}` : ''}, ` +
      `NODE_ENV=production, LOG_LEVEL=${env.LOG_LEVEL}, logs in ${tmp}); ready in ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s with ${await syncQueue.count()} scheduled syncs; ` +
      `auth: ${noToken === 401 ? 'on (401 without the token)' : `OFF? (${noToken} without the token)`}`,
  );
  void probe.body?.cancel();

  // --- load ---
  const sampler = new RssSampler(procs, S.sampleMs);
  sampler.start();
  stopping.push(async () => sampler.stop());
  await sleep(S.sampleMs * 3);
  // Retained memory (heap after a forced full GC) before the load and after each measured phase.
  const heaps = new Map<string, NodeJS.MemoryUsage[]>();
  const measureHeaps = async () => {
    const measured = await Promise.all(procs.map((p) => p.collectAndMeasure()));
    procs.forEach((p, i) => heaps.set(p.name, [...(heaps.get(p.name) ?? []), measured[i]!]));
  };
  await measureHeaps();
  const request = mixRequest({ ...seeded, dataDir, tag: prefix }, token);
  const mix = (seconds: number, rate?: number) =>
    runMix({ baseUrl, connections: S.connections, seconds, request, rate });
  log(`warm-up ${S.warmup} s (load ${load()})`);
  sampler.phase = 'warmup';
  const warmup = await mix(S.warmup);
  log(`saturation: ${S.saturation} s closed loop at ${S.connections} connections (load ${load()})`);
  sampler.phase = 'saturation';
  const saturation = await mix(S.saturation);
  const rate = S.rate ?? Math.max(S.connections, Math.round(S.rateFraction * throughput(saturation)));
  const phases: MixStats[] = [];
  const pacedWindow = { from: Date.now(), to: 0 };
  for (const phase of ['phase-1', 'phase-2']) {
    log(`${phase}: ${S.duration / 2} s at ${rate} req/s over ${S.connections} connections (load ${load()})`);
    sampler.phase = phase;
    phases.push(await mix(S.duration / 2, rate));
    await measureHeaps();
  }
  pacedWindow.to = Date.now();
  const paced = mergeMixStats(phases[0]!, phases[1]!);

  sampler.phase = 'drain';
  const backlog = async () => {
    const c = await syncQueue.getJobCounts('waiting', 'active', 'prioritized', 'waiting-children');
    return Object.values(c).reduce((sum, n) => sum + n, 0);
  };
  const backlogAtEnd = await backlog();
  const drainStarted = performance.now();
  await waitFor('the sync backlog', async () => (await backlog()) === 0, DRAIN_MS).catch(() => undefined);
  const backlogLeft = await backlog();
  const drainSeconds = (performance.now() - drainStarted) / 1000;

  sampler.phase = 'compare';
  log(`GET by id beside the minimal Koa + knex handler (load ${load()})`);
  let compared: CompareResult | undefined;
  try {
    const baseline = await startChildServer('bench/servers/baseline-server.ts', { DATABASE_URL: db.url });
    stopping.push(() => baseline.stop());
    compared = await compareGetById(
      { url: baseUrl, cpuMicros: () => api.cpuMicros() },
      baseline,
      seeded.ids.slice(0, 2000).map((id) => `/raw-data-sources/${id}`),
      token,
      {
        rounds: S.compareRounds,
        roundSeconds: S.compareSeconds,
        warmupSeconds: 3,
        connections: S.compareConnections,
      },
    );
  } catch (err) {
    failures.push(`GET by id comparison: ${(err as Error).message}`);
  }

  // The cost of node flags (LOAD_AB_NODE_FLAGS) on GET by id, in one run on this machine as it is:
  // a second API process with them beside the load's API (which ran the mix) in alternating rounds.
  let ab: CompareResult | undefined;
  const abFlags = (process.env.LOAD_AB_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  if (abFlags.length)
    try {
      const abPort = await freePort();
      const script = compiled ? 'dist/src/main.js' : 'src/main.ts';
      const flagged = startSluiceProcess(
        'api-ab',
        script,
        ['api'],
        { ...env, PORT: String(abPort) },
        join(tmp, 'api-ab.log'),
        abFlags,
      );
      stopping.push(() => flagged.stop());
      const abUrl = `http://127.0.0.1:${abPort}`;
      await waitFor('the A/B API', async () => (await fetch(`${abUrl}/readyz`)).status === 200, 60_000, [
        flagged,
      ]);
      log(`GET by id: API with ${abFlags.join(' ')} beside the API without (load ${load()})`);
      ab = await compareGetById(
        { url: abUrl, cpuMicros: () => flagged.cpuMicros() },
        { url: baseUrl, cpuMicros: () => api.cpuMicros() },
        seeded.ids.slice(0, 2000).map((id) => `/raw-data-sources/${id}`),
        token,
        {
          rounds: S.compareRounds,
          roundSeconds: S.compareSeconds,
          warmupSeconds: 3,
          connections: S.compareConnections,
        },
      );
      ab.sluice.rss = await flagged.rss();
      ab.baseline.rss = await api.rss();
    } catch (err) {
      failures.push(`A/B of ${abFlags.join(' ')}: ${(err as Error).message}`);
    }

  sampler.phase = 'after';
  await sleep(S.sampleMs * 3 + 100);
  sampler.stop();

  // --- what the workers did ---
  const runs = (await db
    .knex('sync_runs')
    .select('trigger', 'status')
    .count({ n: '*' })
    .groupBy('trigger', 'status')
    .orderBy(['trigger', 'status'])) as Array<{ trigger: string; status: string; n: string }>;
  const failedBecause = (await db
    .knex('sync_runs')
    .where({ status: 'failed' })
    .select(db.knex.raw('left(error, 90) AS error'))
    .count({ n: '*' })
    .groupByRaw('1')
    .orderBy('n', 'desc')
    .limit(3)) as Array<{ error: string | null; n: string }>;
  const landed = Number(
    ((await db.knex('raw_records').count({ n: '*' })) as Array<{ n: string }>)[0]?.n ?? 0,
  );

  // --- report ---
  console.log(
    `\nsaturation: ${S.saturation} s, closed loop (each connection sends again as soon as it is ` +
      `answered, so latency ≈ connections ÷ throughput), ${S.connections} connections\n${mixTable(saturation)}`,
  );
  console.log(
    `\nmix: ${S.duration} s (two phases of ${S.duration / 2} s) at ${paced.offered.toFixed(0)} req/s offered ` +
      `(${S.rate ? 'LOAD_RATE' : `${S.rateFraction} × saturation`}) over ${S.connections} connections, ` +
      `load ${load()}\n${mixTable(paced)}`,
  );
  console.log(
    phases
      .map(
        (p, i) => `phase ${i + 1}: ${throughput(p).toFixed(0)} req/s, reads p99 ${readP99(p).toFixed(1)} ms`,
      )
      .join('; ') +
      `\nAPI-side time in the paced phases (from its request log, so without queueing in the kernel ` +
      `or the load generator): ${await serverTimes(api.logFile, pacedWindow)}`,
  );
  failures.push(
    ...mixFailures('warm-up', warmup),
    ...mixFailures('saturation', saturation),
    ...mixFailures('mix', paced, S.readP99Ms),
    ...phases.flatMap((p, i) => rateFailures(`mix phase ${i + 1}`, p)),
  );
  console.log(
    `workers: sync runs ${runs.map((r) => `${r.trigger}/${r.status} ${r.n}`).join(', ')}; ` +
      `${landed} records landed; sync backlog ${backlogAtEnd} at the end of the load, ` +
      `${backlogLeft} after ${drainSeconds.toFixed(1)} s; failed runs because: ` +
      failedBecause.map((r) => `${r.n}× "${r.error ?? ''}"`).join(', '),
  );

  if (compared) {
    console.log(
      `\nGET /raw-data-sources/{id}: ${S.compareConnections} connections, ${S.compareRounds} alternating ` +
        `rounds of ${S.compareSeconds} s per side (medians)\n${compareTable(compared, GET_RATIO)}`,
    );
    if (compared.ratio < GET_RATIO)
      failures.push(`GET by id: ${compared.ratio.toFixed(2)}× of the baseline, target ≥ ${GET_RATIO}×`);
  }
  if (ab) {
    const mib = (bytes?: number) => (bytes === undefined ? '?' : (bytes / 2 ** 20).toFixed(1));
    console.log(
      `\nGET /raw-data-sources/{id}, API with ${abFlags.join(' ')} (a fresh process) beside the load's API ` +
        `without: ${ab.sluice.rps.toFixed(0)} vs ${ab.baseline.rps.toFixed(0)} req/s = ${ab.ratio.toFixed(2)}× ` +
        `(rounds ${ab.sluice.rounds.map((r) => r.toFixed(0)).join(' ')} vs ${ab.baseline.rounds.map((r) => r.toFixed(0)).join(' ')}); ` +
        `CPU per request ${ab.sluice.cpuPerRequest.toFixed(0)} vs ${ab.baseline.cpuPerRequest.toFixed(0)} µs ` +
        `(${(ab.baseline.cpuPerRequest / ab.sluice.cpuPerRequest).toFixed(2)}×); RSS after ${mib(ab.sluice.rss)} vs ${mib(ab.baseline.rss)} MiB`,
    );
  }

  const memory = memoryReport(
    sampler,
    procs.map((p) => p.name),
    S.rssGrowth,
    heaps,
    S.heapGrowth,
  );
  console.log(
    `\nmemory: RSS every ${S.sampleMs / 1000} s; phase columns are medians of each phase's second ` +
      `half; heap = V8 heap used after a full GC forced through the inspector, before the load and ` +
      `after each phase. No growth: phase 2 ≤ phase 1 + ${(S.rssGrowth * 100).toFixed(0)} % (RSS) and ` +
      `+ ${(S.heapGrowth * 100).toFixed(0)} % (heap); the forced GC after phase 1 also lowers ` +
      `phase 2's RSS\n${memory.text}`,
  );
  failures.push(...memory.failures);

  for (const p of procs) {
    const lines = (await readFile(p.logFile, 'utf8')).split('\n').filter((l) => /"level":(50|60)/.test(l));
    if (lines.length)
      console.log(`${p.name}: ${lines.length} error log lines; first: ${lines[0]!.slice(0, 300)}`);
    if (p.exited()) failures.push(`${p.name} exited during the run`);
  }

  console.log(failures.length ? `\nFAIL:\n- ${failures.join('\n- ')}` : '\nall targets met');
  return failures.length === 0;
}

const deadline = setTimeout(() => {
  log(`load run passed its ${DEADLINE_MS / 1000} s bound: stopping everything`);
  process.exitCode = 1;
  void cleanup(true).finally(() => process.exit(1));
}, DEADLINE_MS);
deadline.unref();
// Interrupted (Ctrl-C, a CI timeout): the API and workers are not in our process group's lifetime
// when only this process is signalled, so stop them before leaving.
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    log(`${signal}: stopping everything`);
    process.exitCode = 1;
    void cleanup(true).finally(() => process.exit(1));
  });
let ok = false;
try {
  ok = await main();
} catch (err) {
  log(`load run failed: ${(err as Error).stack ?? String(err)}`);
} finally {
  process.exitCode = ok ? 0 : 1;
  await cleanup(!ok);
  clearTimeout(deadline);
  // Whatever a library may still hold open (a socket, a timer), the run is over.
  process.exit(ok ? 0 : 1);
}
