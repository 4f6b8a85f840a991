/**
 * Process entry. Roles: `api` (HTTP only), `worker` (jobs only), `all` (both, the default for a
 * single machine). Reads and validates the configuration, builds the container, starts the role,
 * and shuts down in order on SIGTERM/SIGINT: stop taking work, finish or hand back what is in
 * flight, then close queues, Redis and Postgres.
 */
import type { Server } from 'node:http';
import { ensureUsableKey, NoApiKeyError, type BootstrapKey } from './auth/bootstrap-key';
import { ConfigError, loadConfig, type Config } from './config';
import { createContainer, type ContainerOverrides } from './container';
import { devBanner } from './dev-banner';
import { applyHttpTimeouts } from './http/server-timeouts';
import { startMetricsServer } from './metrics/metrics-server';
import type { SyncWorker } from '../workers/sync-worker';

/** How long in-flight HTTP requests get to finish on shutdown before connections are closed. */
const HTTP_DRAIN_MS = 3000;

export type Role = 'api' | 'worker' | 'all';

/** After the shutdown grace, how long cancelled jobs get to hand themselves back before the process exits anyway. */
const HAND_BACK_MS = 5000;

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
}

export async function run(role: Role, overrides: ContainerOverrides = {}): Promise<void> {
  const config = configOrExit();
  const container = createContainer(config, overrides);
  const { logger } = container;
  let server: Server | undefined;
  let worker: SyncWorker | undefined;
  let metricsServer: Server | undefined;

  // Before anything starts: an API nobody can call (or everybody could) is not started at all.
  let created: BootstrapKey | undefined;
  if (role !== 'worker')
    created = await ensureUsableKey(config, container.apiKeys, logger).catch((err: unknown) => {
      if (!(err instanceof NoApiKeyError)) throw err;
      console.error(err.message);
      process.exit(78); // EX_CONFIG, like a configuration error
    });

  if (role !== 'api') {
    // Imported here, not at the top: the API role never runs jobs, and the worker's modules (its
    // processors, notification delivery, undici) would only sit in its memory.
    const { createWorker } = await import('../workers/worker-container');
    worker = createWorker(container);
    await worker.start();
  }
  // The worker role has no API to serve /metrics: METRICS_PORT gives it (or any role) a bare one.
  if (config.metricsPort)
    metricsServer = await startMetricsServer({
      metrics: container.metrics,
      host: config.metricsHost,
      port: config.metricsPort,
      logger,
    }).catch((err: Error) => {
      logger.fatal({ err }, 'metrics server could not listen');
      process.exit(1);
    });
  if (role !== 'worker') {
    const app = container.createHttpApp();
    server = app.listen(config.port, config.host, () => {
      logger.info({ host: config.host, port: config.port, role }, 'api listening');
      if (config.env !== 'development') return;
      // Last on the screen: the batched log lines first, then where to go and which key to use.
      logger.flush();
      const address = server?.address();
      const port = address && typeof address === 'object' ? address.port : config.port;
      process.stderr.write(`${devBanner({ config, host: config.host, port, role, created })}\n`);
    });
    applyHttpTimeouts(server, config);
    server.on('error', (err) => {
      logger.fatal({ err }, 'api could not listen');
      process.exit(1);
    });
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, role }, 'shutting down');
    // A job that ignores the cancel at the end of the grace would keep this process, and the lock
    // it renews for that job, alive for ever: exit anyway. The lock then expires and another
    // worker retries the job (its batches are fenced, so nothing lands twice).
    setTimeout(() => {
      logger.error({ signal, role }, 'shutdown deadline passed with work in flight; exiting');
      process.exit(1);
    }, config.shutdownGraceMs + HAND_BACK_MS).unref();
    // Stop accepting and drop idle keep-alive sockets; in-flight requests finish. SSE clients hold
    // their connections open forever, so whatever is still open after a short grace is closed.
    server?.closeIdleConnections();
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    setTimeout(() => server?.closeAllConnections(), HTTP_DRAIN_MS).unref();
    await Promise.all([
      server ? new Promise<void>((resolve) => server.close(() => resolve())) : undefined,
      worker?.close(),
    ]);
    await container.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

const arg = process.argv[2] ?? 'all';
if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('src/main.ts')) {
  if (!['api', 'worker', 'all'].includes(arg)) {
    console.error(`unknown role "${arg}": use api, worker or all`);
    process.exit(64);
  }
  void run(arg as Role);
}
