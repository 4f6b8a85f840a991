import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach } from 'vitest';
import { TEST_ENCRYPTION_KEYS } from '../helpers/test-env';

/**
 * Real processes for the process-level tests: scripted worker processes (test/support/scripted-worker.ts)
 * and private redis-server instances. Every wait is bounded; `killAll()` (call it in afterAll) kills
 * every child this module started, by pid, pass or fail.
 */
const ROOT = new URL('../../', import.meta.url).pathname;

export interface LogLine {
  msg: string;
  time?: string;
  [key: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  stdout: () => string;
  stderr: () => string;
  logs: LogLine[];
  exited: Promise<Exit>;
  running(): boolean;
}

const children: Child[] = [];

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `read` until `done` holds; throws with the last value (and `what`) after `ms`. */
export async function until<T>(
  what: string,
  read: () => Promise<T>,
  done: (v: T) => boolean,
  ms: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`${what}: not met within ${ms} ms; last value ${JSON.stringify(value)}`);
    await sleep(everyMs);
  }
}

/** `work`, or an error after `ms`: an HTTP call into a process under test must never hang a test. */
export async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Registers an afterEach that prints the log tails of every child when a test failed, to see why. */
export function logTailsOnFailure(): void {
  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const c of children)
      console.error(
        `--- ${c.name} (pid ${c.pid}) stdout tail:\n${c.stdout().slice(-4000)}\n--- stderr tail:\n${c.stderr().slice(-1500)}`,
      );
  });
}

/** A port nothing listens on right now: bind to 0, read the port, let it go. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export function track(name: string, proc: ChildProcess): Child {
  let out = '';
  let err = '';
  let partial = '';
  const logs: LogLine[] = [];
  proc.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line });
      }
    }
  });
  proc.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  // 'close', not 'exit': a child writes its batched log lines as it exits (src/logger.ts), and 'exit'
  // can come before the last of them has been read from the pipe. 'close' waits for the end of its
  // output, so once `exited` resolves, `logs`, `stdout()` and `stderr()` hold everything.
  const exited = new Promise<Exit>((resolve) =>
    proc.once('close', (code, signal) => resolve({ code, signal })),
  );
  const child: Child = {
    name,
    proc,
    pid: proc.pid ?? -1,
    stdout: () => out,
    stderr: () => err,
    logs,
    exited,
    running: () => proc.exitCode === null && proc.signalCode === null,
  };
  children.push(child);
  return child;
}

/** The exit, or undefined when the child is still running after `ms`. */
export async function exitWithin(child: Child, ms: number): Promise<Exit | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([child.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits for a log line matching `match`; fails early when the child exits. A child's stdout is
 * batched for up to 200 ms (src/logger.ts): a line it logged is not in `logs` until then, so any
 * assertion on what a child logged goes through here (or `settledRunLogs`), never `logs` directly.
 */
export async function waitForLog(
  child: Child,
  match: (line: LogLine) => boolean,
  ms: number,
): Promise<LogLine> {
  const deadline = Date.now() + ms;
  for (;;) {
    const line = child.logs.find(match);
    if (line) return line;
    if (!child.running()) {
      // Gone: the lines it wrote as it exited may still be in the pipe. Read to the end first.
      await exitWithin(child, 5_000);
      const last = child.logs.find(match);
      if (last) return last;
      throw new Error(
        `${child.name} exited before the expected log line; stderr: ${child.stderr().slice(-2000)}`,
      );
    }
    if (Date.now() > deadline)
      throw new Error(
        `${child.name}: expected log line not seen within ${ms} ms; stdout tail: ${child.stdout().slice(-2000)}`,
      );
    await sleep(50);
  }
}

export interface WorkerEnv {
  databaseUrl: string;
  redisUrl: string;
  queuePrefix: string;
  extra?: Record<string, string>;
}

/** Starts are slow on a loaded 2-core machine (tsx compiles the project): allow for it. */
export const WORKER_READY_MS = 90_000;

/**
 * A scripted worker process (`tsx test/support/scripted-worker.ts worker`) with a clean
 * environment: nothing of the runner's own environment leaks in.
 */
export function startWorker(name: string, env: WorkerEnv): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'test/support/scripted-worker.ts', 'worker'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      NODE_ENV: 'test',
      DATABASE_URL: env.databaseUrl,
      DATABASE_POOL_MAX: '4',
      REDIS_URL: env.redisUrl,
      ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
      QUEUE_PREFIX: env.queuePrefix,
      WORKER_LOCK_DURATION_MS: '3000',
      WORKER_STALLED_INTERVAL_MS: '2000',
      SYNC_ATTEMPTS: '3',
      LOG_LEVEL: 'info',
      ...env.extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return track(name, proc);
}

export const workerReady = (child: Child) =>
  waitForLog(child, (l) => l.msg === 'worker started', WORKER_READY_MS);

/** SIGKILLs one child (by its pid) and waits for it to be gone. */
export async function kill(child: Child, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!child.running()) return;
  child.proc.kill(signal);
  await exitWithin(child, 10_000);
}

/** afterAll: every child this module started, still running, is SIGKILLed by pid. */
export async function killAll(): Promise<void> {
  await Promise.all(children.filter((c) => c.running()).map((c) => kill(c)));
}

/** PING a loopback redis-server once, without retrying: 'PONG', or 'down' when nothing answers. */
export async function pingRedis(port: number): Promise<string> {
  const probe = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return await probe.ping();
  } catch {
    return 'down';
  } finally {
    probe.disconnect();
  }
}

export interface PrivateRedis {
  port: number;
  url: string;
  child: Child;
  /** A client for the test itself (FLUSHALL, inspection) on this instance only. */
  client(): Redis;
  /** SIGKILL: the data goes with it (no persistence). */
  stop(): Promise<void>;
}

/** The process id of the redis-server answering on `port`. */
async function redisPid(port: number): Promise<number | undefined> {
  const probe = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return Number(/process_id:(\d+)/.exec(await probe.info('server'))?.[1]);
  } catch {
    return undefined;
  } finally {
    probe.disconnect();
  }
}

/**
 * A redis-server of our own on a free loopback port, no persistence, in a temp dir: the only
 * Redis these tests stop, freeze or wipe.
 */
export async function startPrivateRedis(port?: number): Promise<PrivateRedis> {
  // A port from freePort() is free when chosen, not necessarily when redis-server binds it: files
  // run in parallel, and another process may take it in between. Then ours exits (address in use)
  // or another server answers there: start again on another port, a bounded number of times.
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startRedisOn(port ?? (await freePort()));
    } catch (err) {
      if (port !== undefined || attempt >= 3) throw err;
    }
  }
}

async function startRedisOn(p: number): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-'));
  const proc = spawn(
    'redis-server',
    ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const child = track(`redis:${p}`, proc);
  void child.exited.then(() => rmSync(dir, { recursive: true, force: true }));
  const url = `redis://127.0.0.1:${p}/0`;
  await until(
    `redis-server on ${p} answers PING`,
    async () => {
      if (!child.running()) throw new Error(`redis-server exited: ${child.stdout().slice(-1000)}`);
      return pingRedis(p);
    },
    (v) => v === 'PONG',
    15_000,
  );
  if ((await redisPid(p)) !== child.pid) {
    await kill(child);
    throw new Error(`another redis-server answers on port ${p}`);
  }
  let client: Redis | undefined;
  return {
    port: p,
    url,
    child,
    client() {
      client ??= new Redis(p, '127.0.0.1', { maxRetriesPerRequest: 1 });
      client.on('error', () => undefined);
      return client;
    },
    async stop() {
      client?.disconnect();
      client = undefined;
      await kill(child);
    },
  };
}

/** Deletes every key of `prefix` in the shared Redis (each test file owns one prefix). */
export async function deletePrefix(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } catch {
    // best effort: the prefix is unique to this run
  } finally {
    redis.disconnect();
  }
}

/** Log lines of `child` about `runId` with message `msg`, as far as they have arrived. */
export const runLogs = (child: Child, runId: string, msg: string) =>
  child.logs.filter((l) => l.msg === msg && l.runId === runId);

/**
 * Longer than the periodic flush of a process's batched stdout (200 ms, src/logger.ts): a line a
 * running child logged this long before has usually reached its stdout. Only ever waited on top of
 * a line that did arrive, to give a duplicate logged beside it time to show: never instead of
 * waiting for a line.
 */
export const LOG_FLUSH_WAIT_MS = 600;

/**
 * The lines of `children` about `runId` with message `msg`, for counting them: polls (bounded by
 * `ms`) until at least `atLeast` have arrived, then, while any of them runs, waits one more flush
 * period so that a line logged beside them (a duplicate start, say) has arrived too. Fails with the
 * children's stdout tails when too few arrive in time. A child that has exited (`exited` resolved)
 * has nothing more to write: with `atLeast` 0 and only exited children, nothing is waited.
 */
export async function settledRunLogs(
  of: Child | Child[],
  runId: string,
  msg: string,
  atLeast = 1,
  ms = 15_000,
): Promise<LogLine[]> {
  const list = Array.isArray(of) ? of : [of];
  const all = () => list.flatMap((c) => runLogs(c, runId, msg));
  const deadline = Date.now() + ms;
  while (all().length < atLeast) {
    if (Date.now() > deadline)
      throw new Error(
        `${atLeast} "${msg}" line(s) of run ${runId} expected within ${ms} ms, got ${all().length}; ` +
          list.map((c) => `--- ${c.name}: ${c.stdout().slice(-1500)}`).join('\n'),
      );
    if (!list.some((c) => c.running())) {
      // All gone: read their pipes to the end, then count once more.
      await Promise.all(list.map((c) => exitWithin(c, 5_000)));
      if (all().length >= atLeast) break;
      throw new Error(
        `${atLeast} "${msg}" line(s) of run ${runId} expected; the processes exited with ${all().length}`,
      );
    }
    await sleep(50);
  }
  if (list.some((c) => c.running())) await sleep(LOG_FLUSH_WAIT_MS);
  return all();
}
