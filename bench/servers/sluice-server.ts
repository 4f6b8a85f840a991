/**
 * The real Sluice API for the benchmarks, as src/main.ts builds it (same container, same app and
 * middleware), on an ephemeral loopback port reported to the parent over IPC.
 */
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/app';
import { loadConfig } from '../../src/config';
import { createContainer } from '../../src/container';
import { applyHttpTimeouts } from '../../src/http/server-timeouts';

const config = loadConfig();
const container = createContainer(config);
// Exactly as src/main.ts serves it (auth with a stored, cached key, rate limits, audit, helmet,
// metrics). BENCH_SECURITY=off leaves the security layer out, to measure what it costs.
const app =
  process.env.BENCH_SECURITY === 'off'
    ? createApp({
        logger: container.logger,
        bodyLimit: config.bodyLimit,
        routers: container.routers,
        middleware: container.middleware,
        metrics: container.metrics,
      })
    : container.createHttpApp();
const server = applyHttpTimeouts(
  app.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port })),
  config,
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
