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
// BENCH_MEMORY_TRACE=1: where the worker's memory is (V8 heap, off-heap buffers), the peak of each
// part every 50 ms, written to stderr and reset whenever the parent asks for CPU time (once before
// and once after each sync).
const MB = 2 ** 20;
const peaks = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
if (process.env.BENCH_MEMORY_TRACE === '1')
  setInterval(() => {
    const now = process.memoryUsage();
    for (const k of Object.keys(peaks) as (keyof typeof peaks)[]) peaks[k] = Math.max(peaks[k], now[k]);
  }, 50).unref();
process.on('message', (message) => {
  if (message !== 'cpu') return;
  if (process.env.BENCH_MEMORY_TRACE === '1') {
    process.stderr.write(
      `  worker memory peaks: ${Object.entries(peaks)
        .map(([k, v]) => `${k} ${(v / MB).toFixed(0)}`)
        .join(', ')} MB\n`,
    );
    for (const k of Object.keys(peaks) as (keyof typeof peaks)[]) peaks[k] = 0;
  }
  const { user, system } = process.cpuUsage();
  process.send?.({ cpuMicros: user + system });
});
process.on('disconnect', () => void stop());
