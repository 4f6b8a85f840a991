/**
 * The real Sluice API for the benchmarks, as src/main.ts builds it (same container, same app and
 * middleware), on an ephemeral loopback port reported to the parent over IPC.
 */
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createContainer } from '../../src/container';

const config = loadConfig();
const container = createContainer(config);
const app = createApp({
  logger: container.logger,
  bodyLimit: config.bodyLimit,
  routers: container.routers,
  // Auth (a stored key, cached), rate limits, audit and helmet on, as in src/main.ts.
  // BENCH_SECURITY=off leaves them out, to measure what they cost.
  security: process.env.BENCH_SECURITY === 'off' ? undefined : container.security,
});
const server = app.listen(0, '127.0.0.1', () =>
  process.send?.({ port: (server.address() as AddressInfo).port }),
);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await container.close();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('message', (message) => {
  if (message !== 'cpu') return;
  const { user, system } = process.cpuUsage();
  process.send?.({ cpuMicros: user + system });
});
// The parent went away: do not outlive it.
process.on('disconnect', () => void stop());
