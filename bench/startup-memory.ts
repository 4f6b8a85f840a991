/**
 * `npm run bench:startup` (after `npm run build`): start-up time and idle memory of the real API and
 * worker processes, run through tsx (development) beside compiled JavaScript (`npm run build`, what
 * production runs), in alternating rounds. Per round and side: spawn `node` on the entry, time until
 * it answers (the API's /healthz; the worker's bare /metrics server, which starts once the worker
 * has), send WARM_REQUESTS reads (API), let it idle IDLE_SECONDS, then sample its RSS from
 * /proc/<pid>/status every 250 ms for SAMPLE_SECONDS (median) and read its V8 heap from /metrics.
 * Prints medians over the rounds and the compiled/tsx ratio. Loopback only, own database and prefix.
 * Knobs: BENCH_ROUNDS (5), BENCH_IDLE_SECONDS (5), BENCH_SAMPLE_SECONDS (5), BENCH_WARM_REQUESTS (200),
 * BENCH_ROLES (api,worker), BENCH_SIDES: what is compared, `label=node arguments` separated by `;`,
 * the role appended to each and ratios taken to the first side (default
 * `tsx=--import tsx src/main.ts;compiled=dist/src/main.js`). E.g. another build beside this one, or
 * V8 flags: `before=/tmp/main/dist/src/main.js;after=dist/src/main.js;semi2=--max-semi-space-size=2 dist/src/main.js`.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { createBenchDatabase } from './lib/bench-database';
import { BENCH_REDIS_URL, benchEnv } from './lib/bench-env';
import { median } from './lib/bench-result';
import { rssOf } from './lib/landing-rss';
import { deletePrefixKeys } from './lib/redis-keys';

const ROOT = new URL('../', import.meta.url).pathname;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 5);
const SAMPLE_SECONDS = Number(process.env.BENCH_SAMPLE_SECONDS ?? 5);
const WARM_REQUESTS = Number(process.env.BENCH_WARM_REQUESTS ?? 200);
const READY_WITHIN_MS = 120_000;
const MIB = 2 ** 20;

type Role = 'api' | 'worker';
/** A side of the comparison: its label and the node arguments before the role. */
type Mode = string;
const SIDES = new Map(
  (process.env.BENCH_SIDES ?? 'tsx=--import tsx src/main.ts;compiled=dist/src/main.js')
    .split(';')
    .filter(Boolean)
    .map((side) => {
      const at = side.indexOf('=');
      return [
        side.slice(0, at).trim(),
        side
          .slice(at + 1)
          .trim()
          .split(/\s+/),
      ] as const;
    }),
);
const ROLES = (process.env.BENCH_ROLES ?? 'api,worker').split(',') as Role[];
interface Sample {
  startupMs: number;
  rss: number;
  heapUsed: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function get(url: string, token?: string): Promise<{ status: number; body: string } | undefined> {
  try {
    const res = await fetch(url, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(5_000),
    });
    return { status: res.status, body: await res.text() };
  } catch {
    return undefined;
  }
}

/** A gauge of prom-client's default metrics, from the text exposition. */
function gauge(text: string, name: string): number {
  const value = new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1];
  if (value === undefined) throw new Error(`${name} missing from /metrics`);
  return Number(value);
}

async function measure(role: Role, mode: Mode, env: Record<string, string>, token: string): Promise<Sample> {
  const port = await freePort();
  const metricsPort = await freePort();
  const args = [...SIDES.get(mode)!, role];
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...env, PORT: String(port), METRICS_PORT: String(metricsPort), HOST: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  try {
    const readyUrl =
      role === 'api' ? `http://127.0.0.1:${port}/healthz` : `http://127.0.0.1:${metricsPort}/metrics`;
    const deadline = Date.now() + READY_WITHIN_MS;
    while ((await get(readyUrl))?.status !== 200) {
      if (child.exitCode !== null) throw new Error(`${role} (${mode}) exited: ${stderr.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`${role} (${mode}) not ready within ${READY_WITHIN_MS} ms`);
      await sleep(20);
    }
    const startupMs = performance.now() - started;
    if (role === 'api')
      for (let i = 0; i < WARM_REQUESTS; i += 1) {
        const res = await get(`http://127.0.0.1:${port}/raw-data-sources?limit=10`, token);
        if (res?.status !== 200) throw new Error(`GET /raw-data-sources answered ${res?.status}`);
      }
    await sleep(IDLE_SECONDS * 1000);
    const rss: number[] = [];
    for (let i = 0; i < SAMPLE_SECONDS * 4; i += 1) {
      const value = await rssOf(child.pid!);
      if (value !== undefined) rss.push(value);
      await sleep(250);
    }
    const metrics = await get(`http://127.0.0.1:${metricsPort}/metrics`);
    if (metrics?.status !== 200) throw new Error('/metrics did not answer');
    return { startupMs, rss: median(rss), heapUsed: gauge(metrics.body, 'nodejs_heap_size_used_bytes') };
  } finally {
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(30_000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

if (!existsSync(`${ROOT}dist/src/main.js`)) {
  console.error('bench:startup compares with the compiled build: run `npm run build` first');
  process.exit(1);
}
const prefix = `bench-startup-${randomBytes(3).toString('hex')}`;
const database = await createBenchDatabase(`sluice_bench_startup_${process.pid}`);
const token = `slc_${randomBytes(20).toString('hex')}`;
const env = {
  ...benchEnv(database.url, prefix),
  API_KEYS: `admin:${token}`,
  RATE_LIMIT_ALL: '0',
  PATH: process.env.PATH ?? '/usr/bin:/bin',
};
const cpu = cpus();
console.log(
  `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
    `node ${process.version}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
);
console.log(
  `sides: ${[...SIDES].map(([label, args]) => `${label} = node ${args.join(' ')}`).join('; ')}\n` +
    `settings: ${ROUNDS} rounds per side (alternating); idle ${IDLE_SECONDS} s then RSS sampled for ${SAMPLE_SECONDS} s; ` +
    `API warmed with ${WARM_REQUESTS} GET /raw-data-sources\n`,
);
const results = new Map<string, Sample[]>();
try {
  for (const role of ROLES)
    for (let round = 0; round < ROUNDS; round += 1)
      for (const mode of round % 2 ? [...SIDES.keys()].reverse() : [...SIDES.keys()]) {
        const sample = await measure(role, mode, env, token);
        const key = `${role} ${mode}`;
        results.set(key, [...(results.get(key) ?? []), sample]);
      }
} finally {
  await deletePrefixKeys(BENCH_REDIS_URL, prefix);
  await database.drop();
}

const rows = [['process', 'start-up ms', 'idle RSS MiB', 'heap used MiB']];
for (const [key, samples] of results)
  rows.push([
    key,
    median(samples.map((s) => s.startupMs)).toFixed(0),
    (median(samples.map((s) => s.rss)) / MIB).toFixed(1),
    (median(samples.map((s) => s.heapUsed)) / MIB).toFixed(1),
  ]);
const [first, ...others] = [...SIDES.keys()];
for (const role of ROLES)
  for (const mode of others) {
    const m = (side: Mode, pick: (s: Sample) => number) =>
      median((results.get(`${role} ${side}`) ?? []).map(pick));
    rows.push([
      `${role} ${mode}/${first}`,
      (m(mode, (s) => s.startupMs) / m(first!, (s) => s.startupMs)).toFixed(2),
      (m(mode, (s) => s.rss) / m(first!, (s) => s.rss)).toFixed(2),
      (m(mode, (s) => s.heapUsed) / m(first!, (s) => s.heapUsed)).toFixed(2),
    ]);
  }
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const row of rows)
  console.log(row.map((cell, i) => (i ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  '));
