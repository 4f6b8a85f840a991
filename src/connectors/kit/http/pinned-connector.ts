import { isIP } from 'node:net';
import { buildConnector } from 'undici';
import type { ResolvedTarget } from '../../outbound';

/**
 * An undici connector that dials the address outbound.resolve() returned and checked, never the
 * name again (a second lookup could answer differently: DNS rebinding). TLS still verifies the
 * certificate against the host name, which also goes out as SNI.
 */
export function pinnedConnector(target: ResolvedTarget, timeoutMs: number): buildConnector.connector {
  const dial = buildConnector({ timeout: timeoutMs });
  const servername = isIP(target.host) ? undefined : target.host;
  return (options, callback) =>
    dial({ ...options, hostname: target.address, servername: servername ?? options.servername }, callback);
}
