import type { Server } from 'node:http';
import type { Config } from '../config';

/**
 * Keeps idle keep-alive connections longer than the load balancer in front does (HTTP_KEEP_ALIVE_TIMEOUT_MS,
 * 65 s against the common 60 s): Node's default of 5 s closes a connection the balancer still
 * thinks open, and the balancer's next request on it fails (an intermittent 502). headersTimeout
 * must be longer still, or Node cuts the idle connection on that timer instead.
 */
export function applyHttpTimeouts(
  server: Server,
  config: Pick<Config, 'httpKeepAliveTimeoutMs' | 'httpHeadersTimeoutMs'>,
): Server {
  server.keepAliveTimeout = config.httpKeepAliveTimeoutMs;
  server.headersTimeout = config.httpHeadersTimeoutMs;
  return server;
}
