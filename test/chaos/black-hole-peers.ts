import { spawn } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { startBlackHole } from '../connectors/support/http-source';
import { kill, track } from '../process/process-kit';
import { atCleanup } from './chaos-kit';

/**
 * Loopback peers for the black-hole case: a healthy JSON API, a listener that accepts and never
 * answers, and one that never accepts (a listen backlog of 0, filled: further SYNs are dropped, so
 * a connect hangs exactly as towards a host that black-holes packets). All closed at cleanup.
 */
export async function healthyApi(records: number): Promise<number> {
  const body = JSON.stringify(Array.from({ length: records }, (_, n) => ({ n })));
  const server = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  atCleanup(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as AddressInfo).port;
}

/** Accepts every connection and never writes a byte (the connector tests' black hole). */
export async function silentListener(): Promise<number> {
  const hole = await startBlackHole();
  atCleanup(() => hole.close());
  return hole.port;
}

/** Listens with backlog 0 and never accepts; one filler connection fills the queue. */
export async function neverAccepting(): Promise<number> {
  const script =
    'import socket,sys,time\n' +
    's=socket.socket();s.bind(("127.0.0.1",0));s.listen(0)\n' +
    'print(s.getsockname()[1],flush=True)\n' +
    'sys.stdin.read()\n'; // until our end of stdin closes (or we are killed)
  const proc = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  const child = track('never-accepting', proc);
  atCleanup(() => kill(child));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the never-accepting listener did not start')), 10_000);
    proc.stdout!.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      resolve(Number(chunk.toString().trim()));
    });
  });
  const filler = connect(port, '127.0.0.1');
  filler.on('error', () => undefined);
  await new Promise<void>((resolve) => filler.once('connect', () => resolve()));
  atCleanup(async () => {
    filler.destroy();
  });
  return port;
}
