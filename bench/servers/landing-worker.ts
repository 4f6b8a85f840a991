/**
 * The real Sluice worker for the landing benchmark, as `npm run start:worker` builds it: the same
 * container with its built-in connectors (database, file, ...) and the same SyncWorker. Tells the
 * parent it is ready over IPC once its BullMQ workers are; answers 'cpu' with its CPU time.
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
