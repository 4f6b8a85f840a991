import { Queue } from 'bullmq';
import { QUEUES, type SyncJobData } from '../../src/queue/queue-names';
import { settledRunLogs, sleep } from '../process/process-kit';
import { check, checkLanded, Stack, untilSettled, type ChaosCase } from './chaos-kit';

/**
 * The same sync delivered twice at once, three ways:
 *  a. 20 concurrent POST /sync for one source (a double click, two API replicas): one run;
 *  b. two copies of one job (same run id, two BullMQ job ids: a producer retried after a timeout
 *     that had in fact succeeded), released together to two workers: one run, records once;
 *  c. two scheduler ticks of one source at once (overlapping ticks): one run.
 * Both workers are frozen (SIGSTOP) while the copies are queued and thawed together, so both copies
 * are taken at the same moment.
 */
const SCRIPT = { records: 30, batch: 2, delay_ms: 40 };

export const chaosCase: ChaosCase = {
  id: '6-double-delivery',
  title: 'the same sync delivered twice at once (API burst, duplicated job, overlapping ticks)',
  criterion: 'each way: exactly one run executes; every record landed exactly once',
  timeoutMs: 120_000,
  async run(figures) {
    const stack = new Stack({ env: { WORKER_CONCURRENCY: '4' } });
    await stack.prepare();
    await Promise.all([stack.startApi(), stack.startWorker('w1'), stack.startWorker('w2')]);
    const queue = new Queue<SyncJobData>(QUEUES.sync, {
      connection: { url: stack.redisUrl, maxRetriesPerRequest: 1 },
      prefix: stack.prefix,
    });
    try {
      const frozen = () => stack.liveWorkers().forEach((w) => w.proc.kill('SIGSTOP'));
      const thaw = () => stack.liveWorkers().forEach((w) => w.proc.kill('SIGCONT'));
      const startedCount = (runId: string) =>
        stack.workers.reduce(
          (n, w) => n + w.logs.filter((l) => l.msg === 'sync started' && l.runId === runId).length,
          0,
        );

      // a. a burst of 20 concurrent sync requests.
      const a = await stack.createSource(SCRIPT, 'burst');
      const answers = await Promise.all(
        // Bounded generously: the criterion is one run, not latency (20 at once on a busy machine).
        Array.from({ length: 20 }, () =>
          stack.call('POST', `/raw-data-sources/${a}/sync`, undefined, 30_000),
        ),
      );
      const accepted = answers.filter((r) => r.status === 202);
      const runIdsA = new Set(accepted.map((r) => r.body.run_id as string));
      check(
        answers.every((r) => r.status === 202 || r.status === 409),
        `burst answers: ${answers.map((r) => r.status).join(',')}`,
      );

      // b. one job, two copies, released together.
      const b = await stack.createSource(SCRIPT, 'dup');
      frozen();
      let runB: string;
      try {
        runB = await stack.sync(b);
        await queue.add('sync', { sourceId: b, runId: runB, trigger: 'manual' }, { jobId: `${runB}-copy` });
        check((await queue.getWaitingCount()) >= 2, 'the two copies are not both waiting');
      } finally {
        thaw();
      }

      // c. two ticks of one source's scheduler at once (jobs without a run id, as a tick makes them).
      const c = await stack.createSource(SCRIPT, 'ticks');
      frozen();
      try {
        await queue.add('sync', { sourceId: c }, { jobId: `tick-${c}-1` });
        await queue.add('sync', { sourceId: c }, { jobId: `tick-${c}-2` });
      } finally {
        thaw();
      }

      await sleep(500);
      await untilSettled(stack.knex, [a, b, c], 60_000);
      await until(async () => (await queue.getJobCounts('active', 'wait')).active === 0, 30_000);
      const runs = async (id: string) =>
        stack
          .knex('sync_runs')
          .where({ source_id: id })
          .whereNot({ status: 'cancelled' })
          .select('id', 'status');
      // The workers' starts of run b have reached stdout (it is written in batches): waited for,
      // bounded, then one flush period more for a second start to show.
      await settledRunLogs(stack.workers, runB, 'sync started');
      const [ra, rb, rc] = await Promise.all([runs(a), runs(b), runs(c)]);
      const landed = await checkLanded(stack.knex, new Map([a, b, c].map((id) => [id, SCRIPT.records])));
      Object.assign(figures, {
        burst_202: accepted.length,
        burst_409: answers.filter((r) => r.status === 409).length,
        burst_run_ids: runIdsA.size,
        burst_runs: ra.length,
        copies_runs: rb.length,
        copies_started: startedCount(runB),
        ticks_runs: rc.length,
        records_landed: landed.records,
      });
      check(runIdsA.size === 1 && ra.length === 1, `burst: ${runIdsA.size} run ids, ${ra.length} runs`);
      check(
        rb.length === 1 && startedCount(runB) === 1,
        `copies: ${rb.length} runs, started ${startedCount(runB)}×`,
      );
      check(rc.length === 1, `ticks: ${rc.length} runs`);
      check(
        [ra, rb, rc].every((r) => r[0]?.status === 'success'),
        `outcomes: ${JSON.stringify([ra, rb, rc])}`,
      );
      check(
        landed.records === 3 * SCRIPT.records,
        `landed ${landed.records}, expected ${3 * SCRIPT.records}`,
      );
    } finally {
      await queue.close();
    }
  },
};

async function until(cond: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    check(Date.now() < deadline, `condition not met within ${ms} ms`);
    await sleep(200);
  }
}
