import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ConnectorContext, SyncBatch } from '../../../src/connectors/connector';
import { Outbound } from '../../../src/connectors/outbound';
import { createLogger } from '../../../src/logger';

/** A connector context for direct calls: real outbound resolution, a silent logger, a fresh signal. */
export function connectorContext(timeoutMs = 5000, signal = new AbortController().signal): ConnectorContext {
  return { signal, logger: createLogger('silent'), outbound: new Outbound(), timeoutMs };
}

/** A loopback port with nothing listening (bound, read, released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A loopback TCP server that accepts connections and never says a word: a black-holed peer. */
export async function startBlackHole(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export interface PrivateServer {
  port: number;
  close(): Promise<void>;
}

/** Starts `command` on a free loopback port in its own temp dir; close() kills that pid only. */
async function startPrivate(
  command: string,
  args: (port: number, dir: string) => string[],
  name: string,
): Promise<PrivateServer> {
  const dir = await mkdtemp(join(tmpdir(), `sluice-${name}-`));
  const port = await freePort();
  const child: ChildProcess = spawn(command, args(port, dir), { cwd: dir, stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(port, 10_000);
  } catch (err) {
    await close();
    throw err;
  }
  return { port, close };
}

/** A private redis-server demanding `password`, no persistence. */
export function startPrivateRedis(password: string): Promise<PrivateServer> {
  return startPrivate(
    'redis-server',
    (port, dir) => [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--requirepass',
      password,
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    'redis',
  );
}

/** A private nats-server with JetStream, demanding user/pass. */
export function startPrivateNats(user: string, pass: string): Promise<PrivateServer> {
  return startPrivate(
    'nats-server',
    (port, dir) => ['-a', '127.0.0.1', '-p', String(port), '--user', user, '--pass', pass, '-js', '-sd', dir],
    'nats',
  );
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on 127.0.0.1:${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every batch of a sync, in order. */
export async function drain(batches: AsyncIterable<SyncBatch>): Promise<SyncBatch[]> {
  const out: SyncBatch[] = [];
  for await (const batch of batches) out.push(batch);
  return out;
}

export const recordsOf = (batches: SyncBatch[]): unknown[] => batches.flatMap((b) => b.records);
export const lastState = (batches: SyncBatch[]): unknown => batches.at(-1)?.state;

/**
 * A full garbage collection, so heap readings show what is still held rather than garbage that
 * has not been collected yet (the usual trick when the process did not start with --expose-gc).
 */
export function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}
