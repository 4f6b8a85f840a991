import { connect as tcpConnect } from 'node:net';
import type { ResolvedTarget } from '../outbound';
import { SourceFailure } from '../kit/classify-error';

/** The parts of a NATS server's greeting (its INFO line) that decide how to connect. */
export interface NatsServerInfo {
  version: string;
  jetstream: boolean;
  authRequired: boolean;
  tlsRequired: boolean;
  tlsAvailable: boolean;
}

// A greeting longer than this is not a NATS server's INFO line.
const MAX_GREETING = 64 * 1024;

/**
 * Opens a plain TCP connection and reads the server's INFO line, then closes. It makes "connect" a
 * step of its own (refused, black-holed, not NATS) and tells whether the client must switch to TLS,
 * which it then does with the source's host name for SNI and certificate checks, not the address.
 */
export function probeNats(
  target: ResolvedTarget,
  port: number,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<NatsServerInfo> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: target.address, port, family: target.family });
    let greeting = '';
    // Its own timer, so a black-holed peer's socket is closed, not just abandoned.
    const timer = setTimeout(
      () =>
        done(() =>
          reject(
            Object.assign(new Error(`connect: no greeting within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }),
          ),
        ),
      timeoutMs,
    );
    const done = (settle: () => void) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      settle();
    };
    const onAbort = () => done(() => reject(new SourceFailure('connect: cancelled', 'timeout')));
    signal.addEventListener('abort', onAbort, { once: true });
    socket.setEncoding('utf8');
    socket.on('error', (err) => done(() => reject(err)));
    socket.on('close', () =>
      done(() => reject(new SourceFailure('the server closed the connection', 'protocol'))),
    );
    socket.on('data', (chunk: string) => {
      greeting += chunk;
      const end = greeting.indexOf('\r\n');
      if (end < 0 && greeting.length < MAX_GREETING) return;
      done(() => {
        const line = end < 0 ? greeting : greeting.slice(0, end);
        try {
          resolve(parseInfo(line));
        } catch (err) {
          reject(err);
        }
      });
    });
  });
}

function parseInfo(line: string): NatsServerInfo {
  const notNats = new SourceFailure('the server did not greet like a NATS server', 'protocol');
  if (!line.startsWith('INFO ')) throw notNats;
  let info: Record<string, unknown>;
  try {
    info = JSON.parse(line.slice(5)) as Record<string, unknown>;
  } catch {
    throw notNats;
  }
  return {
    version: String(info.version ?? 'unknown'),
    jetstream: info.jetstream === true,
    authRequired: info.auth_required === true,
    tlsRequired: info.tls_required === true,
    tlsAvailable: info.tls_available === true,
  };
}
