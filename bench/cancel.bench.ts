/**
 * Issue 14 item 1: cancel latency, p50 and p99 over BENCH_CANCELS (100) cancels of running syncs.
 * Target: both ≤ 2 s (the worker holding the job stops within 2 s).
 * - Each cancel: a sync of an `api` source is requested (SyncService.requestSync, as the API runs
 *   it); the real worker (bench/servers/sluice-worker.ts with BENCH_CONNECTORS=real, its own process, real connectors) starts
 *   it and asks this benchmark's loopback peer for page 1, which the peer holds unanswered. Then
 *   the clock starts and the run is cancelled exactly as POST /raw-data-sources/{id}/cancel does
 *   (RunCancel.cancelSource: run → cancelled and source restored in Postgres, sync.cancelled,
 *   the signal published); the clock stops when the peer sees the worker drop the held request.
 * - Baseline, alternating with it: the signal alone (a bare PUBLISH of the job id on the cancel
 *   channel, no Postgres, no event): the floor of a cross-process stop. Its run is closed
 *   afterwards, off the clock.
 * Medians are not the point here: the rows are the p50 and p99 of each side's 100 latencies.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cancelChannel, RunCancel } from '../src/runs/run-cancel';
import type { BenchResult } from './lib/bench-result';
import { createBenchDatabase } from './lib/bench-database';
import { benchContainer, benchEnv } from './lib/bench-env';
import { startChild } from './lib/child-server';
import { deleteKeys } from './lib/redis-keys';

const CANCELS = Number(process.env.BENCH_CANCELS ?? 100);
const PREFIX = 'sluice_bench_cancel';
const TARGET_MS = 2000;
const WAIT_MS = 30_000;

/** The p-th percentile (nearest rank) of `values`. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Polls `check` every 2 ms until it holds; throws after WAIT_MS. */
async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export default async function cancel(): Promise<BenchResult[]> {
  const db = await createBenchDatabase('sluice_bench_cancel');
  // Loopback is refused to connectors in production unless allowed: the peer is on 127.0.0.1.
  const env = {
    ...benchEnv(db.url, PREFIX),
    OUTBOUND_ALLOW: '127.0.0.1/32',
    CONNECT_TIMEOUT_MS: '60000',
    WORKER_CONCURRENCY: '4',
  };
  const container = benchContainer(env);
  const { redis, lifecycle, queues, logger } = container;
  // The peer: every request is held until the client drops it; `held` maps a source name to it.
  const held = new Map<string, { closedAt?: number }>();
  const peer: Server = createServer((req, res) => {
    const name = (req.url ?? '').split('/')[2]?.split('?')[0] ?? '';
    const entry: { closedAt?: number } = {};
    held.set(name, entry);
    const timer = setTimeout(() => res.destroy(), WAIT_MS);
    req.socket.once('close', () => {
      entry.closedAt = performance.now();
      clearTimeout(timer);
    });
  });
  await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
  const peerUrl = `http://127.0.0.1:${(peer.address() as AddressInfo).port}`;
  let worker: Awaited<ReturnType<typeof startChild>> | undefined;
  try {
    await deleteKeys(redis, `${PREFIX}:*`);
    const runCancel = new RunCancel({
      lifecycle,
      queues,
      redis,
      prefix: container.config.queuePrefix,
      logger,
      syncStatusOf: async (id) => (await container.sources.get(id))?.sync_status,
    });
    const sources: string[] = [];
    for (let i = 0; i < 2 * CANCELS; i++) {
      const source = await container.sources.create({
        name: `cancel-${i}`,
        source_type: 'api',
        connection_string: `${peerUrl}/src/cancel-${i}`,
        refresh_interval: 86400,
        is_active: true,
        metadata: {},
      });
      sources.push(source.id);
    }
    // No scheduler tick inside the benchmark.
    for (const id of sources) await container.schedules.remove(id);
    worker = await startChild('bench/servers/sluice-worker.ts', { ...env, BENCH_CONNECTORS: 'real' });

    /** One cancel: sync `i`, wait until the worker holds the peer's request, time `stop` until it is dropped. */
    const once = async (i: number, stop: (sourceId: string, jobId: string) => Promise<unknown>) => {
      const sourceId = sources[i]!;
      const { job_id: jobId } = await container.sync.requestSync(sourceId);
      await until(`source ${i}'s request reached the peer`, () => held.has(`cancel-${i}`));
      const entry = held.get(`cancel-${i}`)!;
      const started = performance.now();
      await stop(sourceId, jobId);
      await until(`source ${i}'s request dropped`, () => entry.closedAt !== undefined);
      return entry.closedAt! - started;
    };
    const sluice: number[] = [];
    const baseline: number[] = [];
    for (let i = 0; i < CANCELS; i++) {
      sluice.push(await once(2 * i, (sourceId) => runCancel.cancelSource(sourceId, 'bench')));
      baseline.push(
        await once(2 * i + 1, (_sourceId, jobId) =>
          redis.publish(cancelChannel(container.config.queuePrefix), jobId),
        ),
      );
      // Off the clock: the baseline's run is still open in Postgres.
      await runCancel.cancelActive(sources[2 * i + 1]!, 'bench baseline');
    }
    const row = (p: number): BenchResult => ({
      name: `cancel latency p${p} (${CANCELS} running syncs; baseline: bare PUBLISH)`,
      unit: 'ms',
      sluice: percentile(sluice, p),
      baseline: percentile(baseline, p),
      higherIsBetter: false,
      targets: [{ on: 'value', op: '≤', value: TARGET_MS }],
      // Each cancel's latency, once (under the p50 row).
      ...(p === 50 ? { rounds: { sluice, baseline } } : {}),
      note: 'cancel → the worker process holding the job drops its held request (seen by the loopback peer)',
    });
    process.stderr.write(
      `  cancel: sluice p50 ${percentile(sluice, 50).toFixed(1)} ms, p99 ${percentile(sluice, 99).toFixed(1)} ms, ` +
        `max ${Math.max(...sluice).toFixed(1)} ms; bare publish p50 ${percentile(baseline, 50).toFixed(1)} ms, ` +
        `p99 ${percentile(baseline, 99).toFixed(1)} ms\n`,
    );
    return [row(50), row(99)];
  } finally {
    await worker?.stop();
    peer.closeAllConnections();
    await new Promise((resolve) => peer.close(resolve));
    await deleteKeys(redis, `${PREFIX}:*`);
    await container.close();
    if (process.env.BENCH_KEEP_DATABASE !== '1') await db.drop();
  }
}
