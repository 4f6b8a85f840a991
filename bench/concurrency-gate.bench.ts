/**
 * Issue 14 item 3: the concurrency gate. Two real worker processes (bench/servers/sluice-worker.ts with BENCH_CONNECTORS=real,
 * real api connector, BENCH_WORKER_CONCURRENCY 10 each) sync api sources on two loopback HTTP
 * peers that hold every request BENCH_GATE_HOLD_MS (100) before answering two records.
 * - Throughput: BENCH_GATE_SOURCES (30) sources on host A synced at once, with concurrency_limit
 *   2 on each (the gate on) against the same sources with concurrency_limit 0 (no gate), in
 *   alternating rounds; syncs/s from the first enqueue to the last sync.succeeded. The peer records
 *   the most requests it held at once (must be ≤ 2 with the gate). The ideal under the limit is
 *   2 / hold = 20 syncs/s: the note gives the gate's efficiency against it.
 * - Second host: 5 sources on host B (no limit) synced right after host A's 30 are queued with the
 *   gate on, against the same with host A ungated (the same work on the same machine, no gate);
 *   median latency from enqueue to sync.succeeded. The waiting jobs are delayed in Redis, not
 *   parked in worker slots, so the gate must not slow B (target ≥ 0.8×). B alone is in the note.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { median, type BenchResult, type BenchSettings } from './lib/bench-result';
import { createBenchDatabase } from './lib/bench-database';
import { BENCH_REDIS_URL, benchContainer, benchEnv } from './lib/bench-env';
import { startChild, type ChildProcess } from './lib/child-server';
import { deleteKeys } from './lib/redis-keys';

const SOURCES = Number(process.env.BENCH_GATE_SOURCES ?? 30);
const HOLD_MS = Number(process.env.BENCH_GATE_HOLD_MS ?? 100);
const CONCURRENCY = Number(process.env.BENCH_WORKER_CONCURRENCY ?? 10);
const LIMIT = 2;
const ON_B = 5;
const PREFIX = 'sluice_bench_gate';
const ROUND_TIMEOUT_MS = 120_000;

interface Peer {
  port: number;
  max: number;
  inFlight: number;
  server: Server;
}

/** A loopback HTTP peer that holds each request HOLD_MS and counts the requests it holds at once. */
async function peer(): Promise<Peer> {
  const p = { port: 0, max: 0, inFlight: 0 } as Peer;
  p.server = createServer((_req, res) => {
    p.inFlight += 1;
    p.max = Math.max(p.max, p.inFlight);
    setTimeout(() => {
      p.inFlight -= 1;
      res.setHeader('content-type', 'application/json');
      res.end('[{"n":1},{"n":2}]');
    }, HOLD_MS);
  });
  await new Promise<void>((resolve) => p.server.listen(0, '127.0.0.1', resolve));
  p.port = (p.server.address() as AddressInfo).port;
  return p;
}

/** Reads the events stream after `from` until every source in `waiting` succeeded; returns when each did. */
async function succeeded(
  reader: Redis,
  key: string,
  from: string,
  waiting: Set<string>,
): Promise<Map<string, number>> {
  const at = new Map<string, number>();
  let last = from;
  const deadline = Date.now() + ROUND_TIMEOUT_MS;
  while (at.size < waiting.size) {
    if (Date.now() > deadline) throw new Error(`${at.size}/${waiting.size} syncs succeeded in time`);
    const reply = (await reader.xread('COUNT', 1000, 'BLOCK', 200, 'STREAMS', key, last)) as
      [string, [string, string[]][]][] | null;
    for (const [id, fields] of reply?.[0]?.[1] ?? []) {
      last = id;
      const type = fields[fields.indexOf('type') + 1];
      const source = fields[fields.indexOf('source_id') + 1]!;
      if (!waiting.has(source)) continue;
      if (type === 'sync.succeeded') at.set(source, performance.now());
      if (type === 'sync.failed' || type === 'sync.retrying')
        throw new Error(`${type} ${fields[fields.indexOf('data') + 1]}`);
    }
  }
  return at;
}

export default async function concurrencyGate(settings: BenchSettings): Promise<BenchResult[]> {
  const db = await createBenchDatabase('sluice_bench_gate');
  const env = {
    ...benchEnv(db.url, PREFIX),
    WORKER_CONCURRENCY: String(CONCURRENCY),
    // The peers are on loopback, which production refuses by default.
    OUTBOUND_ALLOW: '127.0.0.0/8',
    CONCURRENCY_WAIT_MS: '1000',
  };
  const container = benchContainer(env);
  const redis = new Redis(BENCH_REDIS_URL);
  const reader = new Redis(BENCH_REDIS_URL);
  const a = await peer();
  const b = await peer();
  const workers: ChildProcess[] = [];
  try {
    await deleteKeys(redis, `${PREFIX}:*`);
    const create = async (p: Peer, i: number) =>
      (
        await container.sources.create({
          name: `gate-${p.port}-${i}`,
          source_type: 'api',
          connection_string: `http://127.0.0.1:${p.port}/items?i=${i}`,
          refresh_interval: 86400,
          is_active: true,
        })
      ).id;
    const onA: string[] = [];
    for (let i = 0; i < SOURCES; i++) onA.push(await create(a, i));
    const onB: string[] = [];
    for (let i = 0; i < ON_B; i++) onB.push(await create(b, i));
    for (let i = 0; i < 2; i++)
      workers.push(await startChild('bench/servers/sluice-worker.ts', { ...env, BENCH_CONNECTORS: 'real' }));
    // Only the benchmark's syncs: the schedules the workers reconciled go.
    for (const id of [...onA, ...onB]) await container.schedules.remove(id);

    const limitA = (limit: number) =>
      container.knex('raw_data_sources').whereIn('id', onA).update({ concurrency_limit: limit });
    const lastId = async () =>
      (await redis.xrevrange(container.events.key, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
    /** Syncs `ids` at once; the time of the whole, and each source's latency from its enqueue. */
    const round = async (ids: string[]) => {
      const from = await lastId();
      const done = succeeded(reader, container.events.key, from, new Set(ids));
      const started = performance.now();
      const queuedAt = new Map<string, number>();
      for (const id of ids) {
        queuedAt.set(id, performance.now());
        await container.sync.requestSync(id);
      }
      const at = await done;
      return {
        seconds: (performance.now() - started) / 1000,
        latency: (id: string) => at.get(id)! - queuedAt.get(id)!,
      };
    };

    const rates = { gated: [] as number[], open: [] as number[] };
    const bLatency = { gated: [] as number[], open: [] as number[], alone: [] as number[] };
    const maxGated: number[] = [];
    // Warm-up: both sides once.
    await limitA(0);
    await round([...onA, ...onB]);
    for (let i = 0; i < settings.rounds; i++) {
      for (const gated of i % 2 ? [false, true] : [true, false]) {
        await limitA(gated ? LIMIT : 0);
        a.max = 0;
        const r = await round(onA);
        (gated ? rates.gated : rates.open).push(SOURCES / r.seconds);
        if (gated) maxGated.push(a.max);
      }
      // Host B alone, then while host A's syncs wait on the gate (A first in the queue).
      const alone = await round(onB);
      bLatency.alone.push(median(onB.map(alone.latency)));
      for (const gated of i % 2 ? [false, true] : [true, false]) {
        await limitA(gated ? LIMIT : 0);
        const loaded = await round([...onA, ...onB]);
        (gated ? bLatency.gated : bLatency.open).push(median(onB.map(loaded.latency)));
      }
      process.stderr.write(
        `  round ${i + 1}/${settings.rounds}: gated ${rates.gated[i]!.toFixed(1)} syncs/s (peak ${maxGated[i]}), ` +
          `open ${rates.open[i]!.toFixed(1)} syncs/s; host B ${bLatency.gated[i]!.toFixed(0)} ms beside A gated, ` +
          `${bLatency.open[i]!.toFixed(0)} ms beside A ungated, ${bLatency.alone[i]!.toFixed(0)} ms alone\n`,
      );
    }
    const peak = Math.max(...maxGated);
    if (peak > LIMIT) throw new Error(`host A held ${peak} requests at once with the gate at ${LIMIT}`);
    const ideal = (LIMIT * 1000) / HOLD_MS;
    return [
      {
        name: `gated host, ${SOURCES} syncs at concurrency_limit ${LIMIT} vs no limit (${HOLD_MS} ms peer)`,
        unit: 'syncs/s',
        sluice: median(rates.gated),
        baseline: median(rates.open),
        higherIsBetter: true,
        targets: [],
        rounds: { sluice: rates.gated, baseline: rates.open },
        note:
          `peak requests held by the gated peer: ${peak} (limit ${LIMIT}); ideal under the limit ` +
          `${ideal.toFixed(0)} syncs/s, gate efficiency ${((median(rates.gated) / ideal) * 100).toFixed(0)}%; ` +
          `2 worker processes × concurrency ${CONCURRENCY}`,
      },
      {
        name: `second host's sync latency beside ${SOURCES} gated syncs on host A, vs A ungated`,
        unit: 'ms',
        sluice: median(bLatency.gated),
        baseline: median(bLatency.open),
        higherIsBetter: false,
        targets: [{ on: 'ratio', op: '≥', value: 0.8 }],
        rounds: { sluice: bLatency.gated, baseline: bLatency.open },
        note:
          `${ON_B} sources on host B (no limit); median of each round's per-sync latency, enqueue to ` +
          `sync.succeeded; host B alone: ${median(bLatency.alone).toFixed(0)} ms`,
      },
    ];
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await deleteKeys(redis, `${PREFIX}:*`);
    redis.disconnect();
    reader.disconnect();
    a.server.closeAllConnections();
    b.server.closeAllConnections();
    a.server.close();
    b.server.close();
    await container.close();
    await db.drop();
  }
}
