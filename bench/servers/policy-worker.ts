/**
 * A real Sluice worker with its real connectors (the concurrency-gate benchmark's sources are api
 * sources on loopback HTTP peers), as `npm run start:worker` builds it. Ready over IPC.
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
