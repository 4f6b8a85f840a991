/**
 * The real Sluice worker with its real connectors, for bench/cancel.bench.ts (the `api` connector
 * against the benchmark's own loopback peer). Tells the parent it is ready over IPC once its
 * BullMQ workers (and its cancel listener) are.
 */
import { loadConfig } from '../../src/config';
import { createContainer } from '../../src/container';
import { createWorker } from '../../workers/worker-container';

const container = createContainer(loadConfig());
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
