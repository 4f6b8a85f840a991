/**
 * Process entry: `npm run start:api` (role api). Reads and validates the configuration, builds the
 * container, serves HTTP, and shuts down in order on SIGTERM/SIGINT.
 */
import type { Server } from 'node:http';
import { createApp } from './app';
import { ConfigError, loadConfig, type Config } from './config';
import { createContainer } from './container';

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

const config = configOrExit();
const container = createContainer(config);
const { logger } = container;
const app = createApp({ logger, bodyLimit: config.bodyLimit, routers: container.routers });
const server: Server = app.listen(config.port, config.host, () =>
  logger.info({ host: config.host, port: config.port }, 'api listening'),
);
server.on('error', (err) => {
  logger.fatal({ err }, 'api could not listen');
  process.exit(1);
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  // Order: stop taking requests, let in-flight ones finish, then close the pools they use.
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await container.close();
  logger.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
