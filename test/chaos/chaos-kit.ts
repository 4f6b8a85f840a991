import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { TEST_ENCRYPTION_KEYS, TEST_REDIS_URL, uniqueSuffix } from '../helpers/test-env';
import {
  deletePrefix,
  freePort,
  kill,
  sleep,
  track,
  waitForLog,
  WORKER_READY_MS,
  type Child,
} from '../process/process-kit';

/**
 * What every chaos case builds on: a stack of real processes (an API process and scripted worker
 * processes, test/support/scripted-worker.ts) over a database of its own and a queue prefix of its
 * own, an HTTP client that bounds every call, and the checks shared by several cases.
 */
const ROOT = new URL('../../', import.meta.url).pathname;

/** Figures a case measured: printed in the table whether it passed or not. */
export type Figures = Record<string, string | number>;

export interface ChaosCase {
  id: string;
  title: string;
  /** The pass criterion, as the table prints it; `run` checks it in code. */
  criterion: string;
  /** Hard bound: the runner fails the case and kills its processes after this. */
  timeoutMs: number;
  run(figures: Figures): Promise<void>;
}

export class CheckFailed extends Error {}

const cleanups: (() => Promise<void>)[] = [];

/** Registers teardown that runs after the case, passed, failed or timed out (processes, dirs, databases). */
export function atCleanup(fn: () => Promise<void>): void {
  cleanups.push(fn);
}

/** Runs (last first) and forgets every registered teardown; each is bounded and never throws. */
export async function runCleanups(): Promise<void> {
  while (cleanups.length) {
    const fn = cleanups.pop()!;
    await Promise.race([fn().catch(() => undefined), sleep(30_000)]);
  }
}

/** Throws (failing the case) unless `ok`. */
export function check(ok: unknown, message: string): asserts ok {
  if (!ok) throw new CheckFailed(message);
}

export const median = (xs: number[]) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
};

export interface HttpAnswer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- cases read arbitrary response shapes
  body: any;
  text: string;
  ms: number;
}

/** Status 0: no answer at all (refused, reset, or over the bound). */
export async function http(
  baseUrl: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  boundMs = 10_000,
): Promise<HttpAnswer> {
  const started = performance.now();
  try {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(boundMs),
    });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed, text, ms: Math.round(performance.now() - started) };
  } catch (err) {
    return { status: 0, body: undefined, text: String(err), ms: Math.round(performance.now() - started) };
  }
}

export interface StackOptions {
  /** Defaults to a fresh copy of the template database on the shared Postgres. */
  databaseUrl?: string;
  redisUrl?: string;
  /** Environment for every process of the stack (worker tuning, timeouts). */
  env?: Record<string, string>;
  /**
   * `scripted` (default): test/support/scripted-worker.ts, whose database/api/file connectors are
   * ScriptedConnector doubles; `real`: src/main.ts and workers/worker.ts, the real connectors.
   */
  entry?: 'scripted' | 'real';
}

/** An API process plus worker processes sharing one database and one queue prefix. */
export class Stack {
  readonly token = `slc_${randomBytes(20).toString('hex')}`;
  readonly prefix = `chaos_${uniqueSuffix()}`;
  readonly workers: Child[] = [];
  api?: Child;
  baseUrl = '';
  databaseUrl = '';
  redisUrl: string;
  private database?: TestDatabase;
  private ownKnex?: Knex;
  private seq = 0;

  constructor(private readonly options: StackOptions = {}) {
    this.redisUrl = options.redisUrl ?? TEST_REDIS_URL;
    atCleanup(() => this.close());
  }

  get knex(): Knex {
    const k = this.database?.knex ?? this.ownKnex;
    if (!k) throw new Error('stack not started');
    return k;
  }

  /** Database ready; processes are started by startApi/startWorker. */
  async prepare(knex?: Knex): Promise<void> {
    if (this.options.databaseUrl) {
      this.databaseUrl = this.options.databaseUrl;
      this.ownKnex = knex;
    } else {
      this.database = await createTestDatabase();
      this.databaseUrl = this.database.url;
    }
  }

  private env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      API_KEYS: `admin:${this.token}`,
      SYNC_ATTEMPTS: '3',
      RATE_LIMIT_ALL: '0',
      RATE_LIMIT_SYNC: '0',
      RATE_LIMIT_TEST: '0',
      ...this.options.env,
      ...extra,
    };
  }

  /** The API role of the scripted entry (same validation rules as the workers' connectors). */
  async startApi(extra: Record<string, string> = {}): Promise<Child> {
    const port = await freePort();
    const child = this.spawn('api', 'api', { PORT: String(port), HOST: '127.0.0.1', ...extra });
    await waitForLog(child, (l) => l.msg === 'api listening', WORKER_READY_MS);
    this.api = child;
    this.baseUrl = `http://127.0.0.1:${port}`;
    return child;
  }

  /** A scripted worker process; resolves once it logged `worker started`. */
  async startWorker(name: string, extra: Record<string, string> = {}): Promise<Child> {
    const child = this.spawn(name, 'worker', extra);
    this.workers.push(child);
    await waitForLog(child, (l) => l.msg === 'worker started', WORKER_READY_MS);
    return child;
  }

  /** A process of the stack with a clean environment: nothing of the runner's own leaks in. */
  private spawn(name: string, role: 'api' | 'worker', extra: Record<string, string>): Child {
    const script =
      this.options.entry === 'real'
        ? [role === 'api' ? 'src/main.ts' : 'workers/worker.ts', ...(role === 'api' ? ['api'] : [])]
        : ['test/support/scripted-worker.ts', role];
    const proc = spawn(process.execPath, ['--import', 'tsx', ...script], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        NODE_ENV: 'test',
        DATABASE_URL: this.databaseUrl,
        DATABASE_POOL_MAX: '6',
        REDIS_URL: this.redisUrl,
        ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
        QUEUE_PREFIX: this.prefix,
        LOG_LEVEL: 'info',
        WORKER_LOCK_DURATION_MS: '3000',
        WORKER_STALLED_INTERVAL_MS: '2000',
        ...this.env(extra),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return track(name, proc);
  }

  liveWorkers(): Child[] {
    return this.workers.filter((w) => w.running());
  }

  call(method: string, path: string, body?: unknown, boundMs?: number): Promise<HttpAnswer> {
    return http(this.baseUrl, this.token, method, path, body, boundMs);
  }

  /** Creates a database-type source run by the scripted connector with `metadata` as its script. */
  async createSource(metadata: Record<string, unknown>, name = 'src'): Promise<string> {
    const res = await this.call('POST', '/raw-data-sources', {
      name: `${name}-${this.prefix}-${++this.seq}`,
      source_type: 'database',
      connection_string: 'postgres://loader:pw@127.0.0.1:5432/warehouse',
      metadata,
    });
    check(res.status === 201, `create source: ${res.status} ${res.text.slice(0, 300)}`);
    return res.body.id as string;
  }

  /** POST /sync → the run id; a 409 "just finishing" (the previous job's last moments) is retried, as a client would. */
  async sync(sourceId: string): Promise<string> {
    for (let tries = 1; ; tries += 1) {
      const res = await this.call('POST', `/raw-data-sources/${sourceId}/sync`);
      if (res.status === 409 && /finishing/.test(res.text) && tries < 20) {
        await sleep(100);
        continue;
      }
      check(res.status === 202, `sync ${sourceId}: ${res.status} ${res.text.slice(0, 300)}`);
      return res.body.run_id as string;
    }
  }

  /** Every process of the stack is SIGKILLed (by pid); the database and queue keys are removed. */
  private closing?: Promise<void>;
  close(): Promise<void> {
    return (this.closing ??= this.teardown());
  }

  private async teardown(): Promise<void> {
    await Promise.all([...this.workers, ...(this.api ? [this.api] : [])].map((c) => kill(c)));
    await this.database?.drop().catch(() => undefined);
    await deletePrefix(this.redisUrl, this.prefix);
  }
}

export interface SourceState {
  id: string;
  sync_status: string;
  error_message: string | null;
}

export const sourceStates = (knex: Knex, ids: string[]): Promise<SourceState[]> =>
  knex('raw_data_sources').select('id', 'sync_status', 'error_message').whereIn('id', ids);

/**
 * Landing integrity per source (the scripted connector is incremental: a run resumes from the
 * committed offset, so a later run lands only what is new): no record `n` twice, each run's
 * `records` equals what it landed, and a source with a successful run holds exactly 0..expected-1.
 */
export async function checkLanded(
  knex: Knex,
  expected: Map<string, number>,
): Promise<{ runs: number; success: number; failed: number; records: number }> {
  const ids = [...expected.keys()];
  const runs: { id: string; source_id: string; status: string; records: number | null }[] = await knex(
    'sync_runs',
  )
    .select('id', 'source_id', 'status', 'records')
    .whereIn('source_id', ids);
  const rows: { source_id: string; n: string; c: string }[] = await knex('raw_records')
    .select('source_id', knex.raw("payload->>'n' as n"), knex.raw('count(*) as c'))
    .whereIn('source_id', ids)
    .groupBy('source_id', knex.raw("payload->>'n'"));
  const perRun: { run_id: string; c: string }[] = await knex('raw_records')
    .select('run_id', knex.raw('count(*) as c'))
    .whereIn('source_id', ids)
    .groupBy('run_id');
  const landedByRun = new Map(perRun.map((r) => [r.run_id, Number(r.c)]));
  const bySource = new Map<string, number[]>();
  for (const r of rows) {
    check(Number(r.c) === 1, `source ${r.source_id}: record n=${r.n} landed ${r.c} times`);
    const list = bySource.get(r.source_id) ?? [];
    list.push(Number(r.n));
    bySource.set(r.source_id, list);
  }
  let records = 0;
  for (const run of runs) {
    const got = landedByRun.get(run.id) ?? 0;
    records += got;
    if (run.status === 'success')
      check(Number(run.records) === got, `run ${run.id}: records=${run.records} but ${got} landed`);
  }
  for (const id of ids) {
    if (!runs.some((r) => r.source_id === id && r.status === 'success')) continue;
    const ns = (bySource.get(id) ?? []).sort((a, b) => a - b);
    const want = expected.get(id)!;
    check(
      ns.length === want && ns.every((n, i) => n === i),
      `source ${id}: ${ns.length} distinct records landed, expected 0..${want - 1}`,
    );
  }
  return {
    runs: runs.length,
    success: runs.filter((r) => r.status === 'success').length,
    failed: runs.filter((r) => r.status === 'failed').length,
    records,
  };
}

/** Polls until every source is success|failed; returns when and the last states. */
export async function untilSettled(
  knex: Knex,
  ids: string[],
  boundMs: number,
): Promise<{ ms: number; states: SourceState[] }> {
  const started = Date.now();
  for (;;) {
    const states = await sourceStates(knex, ids);
    if (states.length === ids.length && states.every((s) => ['success', 'failed'].includes(s.sync_status)))
      return { ms: Date.now() - started, states };
    if (Date.now() - started > boundMs) {
      const open = states.filter((s) => !['success', 'failed'].includes(s.sync_status));
      throw new CheckFailed(
        `${open.length} of ${ids.length} sources not settled within ${boundMs} ms: ${JSON.stringify(open.slice(0, 3))}`,
      );
    }
    await sleep(250);
  }
}

/** Open (queued/running) runs of these sources: after a case settles there must be none. */
export const openRuns = async (knex: Knex, ids: string[]) =>
  Number(
    (
      await knex('sync_runs')
        .whereIn('source_id', ids)
        .whereIn('status', ['queued', 'running'])
        .count({ n: '*' })
        .first()
    )?.n ?? 0,
  );
