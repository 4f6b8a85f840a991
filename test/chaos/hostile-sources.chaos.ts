import { Redis } from 'ioredis';
import { sleep } from '../process/process-kit';
import { check, Stack, type ChaosCase } from './chaos-kit';
import { PrivateRedis } from './private-services';
import { headerDribbler, hostileApi, type HostilePeer } from './hostile-peers';

/**
 * One hostile source cannot hurt the rest (real API and worker processes, real connectors): a
 * gzip bomb, a server sending its body a byte a second, one sending its headers a byte a second,
 * a next link pointing at itself, an API with 10^6 pages, a Redis stream flooded faster than it is
 * read, and a catastrophic-backtracking schema. Each hostile run must end within its bound (the
 * first five `failed`, with their stable code; the flooded stream `success` at its per-run record
 * bound, the ReDoS source `failed` as all-invalid, its records quarantined), while 10 healthy api sources
 * synced in back-to-back rounds keep their run time: p99 under attack ≤ 2 × p99 alone, or alone
 * + FLOOR_MS when that is larger (a 30 ms baseline must not make 70 ms a failure on a shared
 * 2-core machine).
 */
const HEALTHY = 10;
const REQUEST_MAX_MS = 4000;
const STREAM_MAX_RUN_RECORDS = 5000;
/** Alone and attack windows, interleaved WINDOWS times. */
const WINDOWS = 3;
const BASELINE_MS = 5000;
const ATTACK_MS = 8000;
const FLOOR_MS = 150;
const ROUND_GAP_MS = 200;
/**
 * A hostile source is synced again this long after its run ended: 60 times its fastest schedule
 * (refresh_interval ≥ 60 s). At 250 ms (CHAOS_HOSTILE_GAP_MS=250) healthy p50 holds but p99 reached
 * 2.3-2.9 × alone on the shared 2-core machine: see RESULTS.
 */
const HOSTILE_GAP_MS = Number(process.env.CHAOS_HOSTILE_GAP_MS ?? 1000);
/** Per hostile kind: the expected end, the code its error names, and how long one run may take. */
const EXPECT: Record<string, { status: string; error?: RegExp; boundMs: number }> = {
  bomb: { status: 'failed', error: /larger than|decompress|compression/i, boundMs: 10_000 },
  slow_body: { status: 'failed', error: /HTTP_REQUEST_MAX_MS/, boundMs: REQUEST_MAX_MS + 3000 },
  slow_headers: { status: 'failed', error: /HTTP_REQUEST_MAX_MS/, boundMs: REQUEST_MAX_MS + 3000 },
  loop: { status: 'failed', error: /pagination loop/, boundMs: 5000 },
  million: { status: 'failed', error: /more than max_pages \(1000\) pages/, boundMs: 60_000 },
  flood: { status: 'success', boundMs: 30_000 },
  // Every record fails the schema, at once (linear engine): an honest outcome is a failed run
  // naming the first violations, with the records kept in quarantine.
  redos: { status: 'failed', error: /all \d+ records read were invalid/, boundMs: 10_000 },
};

export const chaosCase: ChaosCase = {
  id: '13-hostile-sources',
  title: `hostile sources (gzip bomb, slowloris body+headers, next-link loop, 10^6 pages, stream flood, ReDoS schema) vs ${HEALTHY} healthy`,
  criterion: `each hostile run ends within its bound (bomb/slowloris/loop/10^6 pages failed with their code; flood success ≤ ${STREAM_MAX_RUN_RECORDS} records/run; ReDoS failed at once as all-invalid, quarantined); every healthy sync succeeds; healthy run p99 under attack ≤ max(2 × alone, alone + ${FLOOR_MS} ms)`,
  timeoutMs: 300_000,
  async run(figures) {
    const peer: HostilePeer = await hostileApi();
    const dribblePort = await headerDribbler();
    // The flooded stream lives on a Redis of its own (no AOF), as a user's stream would: the flood
    // must not be measured as load on Sluice's own queue Redis.
    const streamRedis = new PrivateRedis(false);
    await streamRedis.start();
    const floodKey = `chaos:flood:${Date.now()}:${process.pid}`;
    const stack = new Stack({
      entry: 'real',
      env: {
        SYNC_ATTEMPTS: '1',
        WORKER_CONCURRENCY: '20',
        // A pool as large as the concurrency, as a deployment runs it: healthy runs must not queue
        // for a connection behind 7 hostile ones (the kit's 6 is sized for the scripted cases).
        DATABASE_POOL_MAX: '20',
        HTTP_REQUEST_MAX_MS: String(REQUEST_MAX_MS),
        STREAM_MAX_RUN_RECORDS: String(STREAM_MAX_RUN_RECORDS),
        DECOMPRESSED_MAX_BYTES: String(16 * 1024 * 1024),
        OUTBOUND_ALLOW: '127.0.0.0/8',
      },
    });
    await stack.prepare();
    await Promise.all([stack.startApi(), stack.startWorker('w1')]);

    let seq = 0;
    const create = async (kind: string, body: Record<string, unknown>) => {
      const res = await stack.call('POST', '/raw-data-sources', {
        name: `${kind}-${stack.prefix}-${++seq}`,
        ...body,
      });
      check(res.status === 201, `create ${kind}: ${res.status} ${res.text.slice(0, 300)}`);
      return res.body.id as string;
    };
    const api = (kind: string, path: string, metadata: Record<string, unknown> = {}, extra = {}) =>
      create(kind, {
        source_type: 'api',
        connection_string: `http://127.0.0.1:${peer.port}${path}`,
        metadata,
        ...extra,
      });
    const healthy: string[] = [];
    for (let i = 0; i < HEALTHY; i += 1) healthy.push(await api('healthy', '/ok'));
    const next = { records_path: 'data', pagination: { type: 'next_url', path: 'next' } };
    const all: Record<string, string> = {
      bomb: await api('bomb', '/bomb'),
      slow_body: await api('slow_body', '/slow'),
      slow_headers: await create('slow_headers', {
        source_type: 'api',
        connection_string: `http://127.0.0.1:${dribblePort}/x`,
        metadata: {},
      }),
      loop: await api('loop', '/loop', next),
      million: await api('million', '/million', next),
      flood: await create('flood', {
        source_type: 'stream',
        connection_string: `redis://127.0.0.1:${streamRedis.port}`,
        metadata: { stream: floodKey, batch: 1000 },
      }),
      redos: await api(
        'redos',
        '/redos',
        {},
        {
          schema_definition: {
            type: 'object',
            properties: { s: { type: 'string', pattern: '^(a+)+$' } },
          },
        },
      ),
    };

    // CHAOS_HOSTILE=bomb,loop runs only those (to find which one costs the healthy sources).
    const only = process.env.CHAOS_HOSTILE?.split(',');
    const hostile = Object.fromEntries(Object.entries(all).filter(([k]) => !only || only.includes(k)));

    /** One round: every healthy source synced at once; the run times (started → finished). */
    const healthyRound = async (): Promise<number[]> => {
      const runIds = await Promise.all(healthy.map((id) => stack.sync(id)));
      const runs = await finished(stack, runIds, 60_000);
      check(
        runs.every((r) => r.status === 'success'),
        `healthy runs: ${JSON.stringify(runs.filter((r) => r.status !== 'success').map((r) => [r.status, r.error]))}`,
      );
      return runs.map((r) => r.finished_at!.getTime() - r.started_at!.getTime());
    };
    const roundsFor = async (ms: number): Promise<number[]> => {
      const out: number[] = [];
      const until = Date.now() + ms;
      for (let r = 0; r < 500 && Date.now() < until; r += 1) {
        out.push(...(await healthyRound()));
        await sleep(ROUND_GAP_MS);
      }
      return out;
    };

    // Alone and under attack, interleaved (A B A B A B): the shared machine's own load changes by
    // the minute and must weigh on both sides alike. In an attack window the flooder writes and
    // every hostile source is synced again HOSTILE_GAP_MS after its run ends; the window closes only once
    // every hostile run in flight has ended, so none spills into the next alone window.
    const flooder = new Redis(streamRedis.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    let flooded = 0;
    const hostileRuns: Record<string, string[]> = Object.fromEntries(
      Object.keys(hostile).map((k) => [k, []]),
    );
    const attackWindow = async (): Promise<number[]> => {
      let attacking = true;
      const flood = (async () => {
        const until = Date.now() + ATTACK_MS + 30_000;
        while (attacking && Date.now() < until) {
          const pipe = flooder.pipeline();
          for (let i = 0; i < 500; i += 1)
            pipe.xadd(floodKey, 'MAXLEN', '~', '50000', '*', 'n', String(flooded + i), 'pad', 'x'.repeat(64));
          await pipe.exec();
          flooded += 500;
          await sleep(20);
        }
      })();
      const attackers = Object.entries(hostile).map(async ([kind, id]) => {
        for (let n = 0; n < 200 && attacking; n += 1) {
          const runId = await stack.sync(id);
          hostileRuns[kind]!.push(runId);
          await finished(stack, [runId], EXPECT[kind]!.boundMs + 30_000);
          await sleep(HOSTILE_GAP_MS);
        }
      });
      const measured = await roundsFor(ATTACK_MS);
      attacking = false;
      await Promise.all([flood, ...attackers]);
      return measured;
    };
    const alone: number[] = [];
    const underAttack: number[] = [];
    for (let w = 0; w < WINDOWS; w += 1) {
      alone.push(...(await roundsFor(BASELINE_MS)));
      underAttack.push(...(await attackWindow()));
    }
    await flooder.del(floodKey);
    flooder.disconnect();

    // Every hostile run: its end, its code, its bound.
    const allRuns = await finished(stack, Object.values(hostileRuns).flat(), 60_000);
    const byId = new Map(allRuns.map((r) => [r.id, r]));
    const problems: string[] = [];
    for (const [kind, ids] of Object.entries(hostileRuns)) {
      const want = EXPECT[kind]!;
      const runs = ids.map((id) => byId.get(id)!);
      const ms = runs.map((r) => r.finished_at!.getTime() - (r.started_at ?? r.finished_at)!.getTime());
      figures[`${kind}_runs`] = runs.length;
      figures[`${kind}_max_ms`] = Math.max(...ms);
      for (const [i, r] of runs.entries()) {
        if (r.status !== want.status) problems.push(`${kind} run ${i + 1}: ${r.status} ${r.error ?? ''}`);
        if (want.error && !want.error.test(r.error ?? ''))
          problems.push(
            `${kind} run ${i + 1}: error "${String(r.error).slice(0, 200)}" does not match ${want.error}`,
          );
        if (ms[i]! > want.boundMs) problems.push(`${kind} run ${i + 1} took ${ms[i]} ms > ${want.boundMs}`);
      }
      if (kind === 'flood') {
        figures.flood_max_records = Math.max(...runs.map((r) => Number(r.records)));
        figures.flood_records = runs.reduce((sum, r) => sum + Number(r.records), 0);
        if (runs.some((r) => Number(r.records) > STREAM_MAX_RUN_RECORDS))
          problems.push(`a flood run landed more than ${STREAM_MAX_RUN_RECORDS} records`);
        // Stopped at the bound with the offset stored: the next run went on (more than one full run).
        if (runs.filter((r) => Number(r.records) === STREAM_MAX_RUN_RECORDS).length < 2)
          problems.push('the flooded stream never made two bounded runs in a row');
      }
      if (kind === 'redos') figures.redos_quarantined = runs.reduce((s, r) => s + Number(r.invalid), 0);
    }
    figures.flooded_entries = flooded;
    figures.bomb_error = String(byId.get(hostileRuns.bomb?.[0] ?? '')?.error ?? '').slice(0, 80);
    const p99Alone = percentile(alone, 0.99);
    const p99Attack = percentile(underAttack, 0.99);
    const bound = Math.max(2 * p99Alone, p99Alone + FLOOR_MS);
    Object.assign(figures, {
      healthy_runs_alone: alone.length,
      healthy_runs_attack: underAttack.length,
      healthy_p50_alone_ms: percentile(alone, 0.5),
      healthy_p99_alone_ms: p99Alone,
      healthy_p50_attack_ms: percentile(underAttack, 0.5),
      healthy_p99_attack_ms: p99Attack,
      healthy_p99_bound_ms: bound,
      hostile_gap_ms: HOSTILE_GAP_MS,
      healthy_p99_ratio: Math.round((p99Attack / p99Alone) * 100) / 100,
    });
    check(!problems.length, `hostile runs: ${problems.slice(0, 6).join('; ')}`);
    check(
      p99Attack <= bound,
      `healthy p99 ${p99Attack} ms under attack > bound ${bound} ms (alone ${p99Alone} ms)`,
    );
  },
};

function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
}

interface RunRow {
  id: string;
  status: string;
  error: string | null;
  records: string;
  invalid: string;
  started_at: Date | null;
  finished_at: Date | null;
}

async function finished(stack: Stack, runIds: string[], boundMs: number): Promise<RunRow[]> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const rows: RunRow[] = await stack
      .knex('sync_runs')
      .whereIn('id', runIds)
      .select('id', 'status', 'error', 'records', 'invalid', 'started_at', 'finished_at');
    if (rows.length === runIds.length && rows.every((r) => r.finished_at)) return rows;
    check(Date.now() < deadline, `runs not finished within ${boundMs} ms`);
    await sleep(100);
  }
}
