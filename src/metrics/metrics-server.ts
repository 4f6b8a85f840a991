import { createServer, type Server } from 'node:http';
import type { Logger } from '../logger';
import type { Metrics } from './metrics';

/**
 * A bare HTTP server answering GET /metrics only, for processes without the API (the worker role).
 * It has no auth: bind it to loopback or a private interface (METRICS_HOST) and let Prometheus in.
 */
export async function startMetricsServer(options: {
  metrics: Metrics;
  host: string;
  port: number;
  logger: Logger;
}): Promise<Server> {
  const { metrics, logger } = options;
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.render().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: Error) => {
        logger.error({ err }, 'metrics scrape failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  logger.info({ host: options.host, port: options.port }, 'metrics listening');
  return server;
}
