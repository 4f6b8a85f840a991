/**
 * The real Sluice worker for the benchmarks, as `npm run start:worker` builds it (same container,
 * same SyncWorker): with the no-op connector registered for every source type (sync-e2e), or with
 * the real connectors when BENCH_CONNECTORS=real (cancel and concurrency-gate, whose sources are
 * `api` sources on loopback peers). Tells the parent it is ready over IPC once its BullMQ workers
 * (and its cancel listener) are.
 */
import { loadConfig } from '../../src/config';
import { createContainer } from '../../src/container';
import { NOOP_TYPES, NoopConnector } from '../lib/noop-connector';
import { createWorker } from '../../workers/worker-container';

const container = createContainer(
  loadConfig(),
  process.env.BENCH_CONNECTORS === 'real' ? {} : { connectors: NOOP_TYPES.map((t) => new NoopConnector(t)) },
);
const worker = createWorker(container);
await worker.start();
process.send?.({ ready: true });

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await worker.close();
  await container.close();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('message', (message) => {
  if (message !== 'cpu') return;
  const { user, system } = process.cpuUsage();
  process.send?.({ cpuMicros: user + system });
});
process.on('disconnect', () => void stop());
