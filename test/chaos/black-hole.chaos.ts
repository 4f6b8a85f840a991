import { sleep } from '../process/process-kit';
import { check, median, Stack, type ChaosCase } from './chaos-kit';
import { healthyApi, neverAccepting, silentListener } from './black-hole-peers';

/**
 * Black-holed source hosts, with the real api connector (real API and worker processes): one
 * loopback listener accepts and never answers, one never accepts (full backlog: a connect hangs).
 *  1. give up: a test and a sync against each end within the connect/read timeout
 *     (CONNECT_TIMEOUT_MS 2 s here) plus slack;
 *  2. no starvation: while 24 black-holed syncs and 6 tests are being tried, healthy api sources
 *     keep syncing with their normal latency, because attempts that wait on an unanswering
 *     destination are capped per destination (OUTBOUND_MAX_PENDING, src/connectors/outbound.ts):
 *     the rest fail fast instead of holding worker slots.
 */
const TIMEOUT_MS = 2000;
const GIVE_UP_SLACK_MS = 1500;
const HEALTHY = 4;
const BLACK_HOLED = 24;
const ROUNDS = 3;
/** Per destination: 2 black holes hold at most 4 of the worker's 6 slots. */
const MAX_PENDING = 2;

export const chaosCase: ChaosCase = {
  id: '8-black-hole',
  title: `black-holed source hosts (accepts-silent, never-accepts), ${BLACK_HOLED} syncs + 6 tests vs ${HEALTHY} healthy`,
  criterion: `test and sync give up ≤ timeout ${TIMEOUT_MS / 1000} s + ${GIVE_UP_SLACK_MS / 1000} s; OUTBOUND_MAX_PENDING=${MAX_PENDING}: healthy sync latency under load (max) < alone (max) + one timeout; every healthy sync succeeds`,
  timeoutMs: 180_000,
  async run(figures) {
    const [okPort, silentPort, closedPort] = await Promise.all([
      healthyApi(5),
      silentListener(),
      neverAccepting(),
    ]);
    const stack = new Stack({
      entry: 'real',
      env: {
        CONNECT_TIMEOUT_MS: String(TIMEOUT_MS),
        WORKER_CONCURRENCY: '6',
        SYNC_ATTEMPTS: '1',
        TEST_WAIT_MS: '15000',
        OUTBOUND_MAX_PENDING: process.env.CHAOS_OUTBOUND_MAX_PENDING ?? String(MAX_PENDING),
      },
    });
    await stack.prepare();
    await Promise.all([stack.startApi(), stack.startWorker('w1')]);
    let seq = 0;
    const apiSource = async (port: number, kind: string) => {
      const res = await stack.call('POST', '/raw-data-sources', {
        name: `${kind}-${stack.prefix}-${++seq}`,
        source_type: 'api',
        connection_string: `http://127.0.0.1:${port}/items`,
        metadata: {},
      });
      check(res.status === 201, `create ${kind}: ${res.status} ${res.text.slice(0, 300)}`);
      return res.body.id as string;
    };
    const healthy: string[] = [];
    for (let i = 0; i < HEALTHY; i += 1) healthy.push(await apiSource(okPort, 'healthy'));
    const silent: string[] = [];
    const closed: string[] = [];
    for (let i = 0; i < BLACK_HOLED / 2; i += 1) {
      silent.push(await apiSource(silentPort, 'silent'));
      closed.push(await apiSource(closedPort, 'closed'));
    }

    /** Queued → finished of one round of healthy syncs, every one successful. */
    const healthyRound = async (): Promise<number[]> => {
      const runIds = await Promise.all(healthy.map((id) => stack.sync(id)));
      const runs = await finished(stack, runIds, 60_000);
      check(
        runs.every((r) => r.status === 'success'),
        `healthy runs: ${JSON.stringify(runs.map((r) => [r.status, r.error]))}`,
      );
      return runs.map((r) => r.finished_at.getTime() - r.queued_at.getTime());
    };

    // Baseline: the healthy sources alone.
    const baseline: number[] = [];
    for (let r = 0; r < ROUNDS; r += 1) baseline.push(...(await healthyRound()));

    // 1. Give up: one test and one sync against each black hole, alone.
    const tests = await Promise.all(
      [silent[0]!, closed[0]!].map((id) =>
        stack.call('POST', `/raw-data-sources/${id}/test`, undefined, 30_000),
      ),
    );
    for (const t of tests) {
      check(
        t.status === 200 && t.body?.ok === false,
        `test of a black hole: ${t.status} ${t.text.slice(0, 300)}`,
      );
      check(t.ms <= TIMEOUT_MS + GIVE_UP_SLACK_MS, `a test of a black hole took ${t.ms} ms`);
    }
    const alone = await finished(
      stack,
      await Promise.all([silent[0]!, closed[0]!].map((id) => stack.sync(id))),
      30_000,
    );
    const attemptMs = alone.map((r) => r.finished_at.getTime() - r.started_at.getTime());
    check(
      alone.every((r) => r.status === 'failed'),
      `black-holed syncs: ${alone.map((r) => r.status)}`,
    );
    check(
      Math.max(...attemptMs) <= TIMEOUT_MS + GIVE_UP_SLACK_MS,
      `a black-holed sync took ${Math.max(...attemptMs)} ms`,
    );

    // 2. Load: every black-holed source syncs and 6 are tested while healthy rounds go on.
    const loadStarted = Date.now();
    const blackRuns = await Promise.all([...silent, ...closed].map((id) => stack.sync(id)));
    const loadTests = Promise.all(
      [...silent.slice(1, 4), ...closed.slice(1, 4)].map((id) =>
        stack.call('POST', `/raw-data-sources/${id}/test`, undefined, 60_000),
      ),
    );
    const underLoad: number[] = [];
    for (let r = 0; r < ROUNDS; r += 1) underLoad.push(...(await healthyRound()));
    const blackDone = await finished(stack, blackRuns, 120_000);
    const testAnswers = await loadTests;
    const blackMs = Date.now() - loadStarted;
    const reasons = new Map<string, number>();
    for (const r of blackDone) {
      const key = /busy|waiting for an answer/i.test(String(r.error))
        ? 'capped'
        : /time/i.test(String(r.error))
          ? 'timeout'
          : 'other';
      reasons.set(key, (reasons.get(key) ?? 0) + 1);
    }
    Object.assign(figures, {
      timeout_ms: TIMEOUT_MS,
      test_give_up_ms: tests.map((t) => t.ms).join('/'),
      sync_give_up_ms: attemptMs.join('/'),
      max_pending: process.env.CHAOS_OUTBOUND_MAX_PENDING ?? MAX_PENDING,
      healthy_p50_alone_ms: median(baseline),
      healthy_max_alone_ms: Math.max(...baseline),
      healthy_p50_load_ms: median(underLoad),
      healthy_max_load_ms: Math.max(...underLoad),
      black_synced: blackDone.length,
      black_failed_timeout: reasons.get('timeout') ?? 0,
      black_failed_capped: reasons.get('capped') ?? 0,
      black_other: reasons.get('other') ?? 0,
      black_all_done_ms: blackMs,
      load_tests_max_ms: Math.max(...testAnswers.map((t) => t.ms)),
    });
    check(
      blackDone.every((r) => r.status === 'failed'),
      'a black-holed sync did not fail',
    );
    check(
      testAnswers.every((t) => t.status === 200 && t.body?.ok === false),
      'a test under load did not answer ok=false',
    );
    // Not starved: no healthy sync waited as long as a single black-holed attempt (without the cap
    // they waited for the whole black-holed backlog: ~10 s here).
    check(
      Math.max(...underLoad) < Math.max(...baseline) + TIMEOUT_MS,
      `healthy latency under load up to ${Math.max(...underLoad)} ms vs ${Math.max(...baseline)} ms alone`,
    );
  },
};

interface RunRow {
  id: string;
  status: string;
  error: string | null;
  queued_at: Date;
  started_at: Date;
  finished_at: Date;
}

async function finished(stack: Stack, runIds: string[], boundMs: number): Promise<RunRow[]> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const rows: RunRow[] = await stack
      .knex('sync_runs')
      .whereIn('id', runIds)
      .select('id', 'status', 'error', 'queued_at', 'started_at', 'finished_at');
    if (rows.length === runIds.length && rows.every((r) => r.finished_at)) return rows;
    check(Date.now() < deadline, `runs not finished within ${boundMs} ms`);
    await sleep(100);
  }
}
