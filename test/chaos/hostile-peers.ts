import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { createGzip } from 'node:zlib';
import { atCleanup } from './chaos-kit';

/**
 * Loopback peers for the hostile-sources case, all closed at cleanup; every timer a peer starts is
 * bounded in count and stops when its connection closes.
 *  /ok       5 records (the healthy sources)
 *  /bomb     a gzip body of 48 MiB of one JSON string (about 50 KB on the wire)
 *  /slow     headers at once, then the body a byte a second
 *  /loop     a page whose next link is itself
 *  /million  page p links to p+1, up to 10^6
 *  /redos    records whose string backtracks catastrophically against ^(a+)+$
 */
export interface HostilePeer {
  port: number;
}

const BOMB_BYTES = 48 * 1024 * 1024;

async function gzipBomb(): Promise<Buffer> {
  const gzip = createGzip({ level: 9 });
  const out: Buffer[] = [];
  gzip.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise((resolve) => gzip.on('end', resolve));
  const piece = Buffer.alloc(1024 * 1024, 'a');
  gzip.write('{"data":[{"pad":"');
  for (let i = 0; i < BOMB_BYTES / piece.length; i += 1) gzip.write(piece);
  gzip.end('"}]}');
  await ended;
  return Buffer.concat(out);
}

/** Writes `text` a byte every `everyMs` (at most `text.length` writes) until the socket closes. */
function dribble(write: (chunk: string) => void, closed: () => boolean, text: string, everyMs = 1000) {
  let i = 0;
  const timer = setInterval(() => {
    if (closed() || i >= text.length) return clearInterval(timer);
    write(text[i++]!);
  }, everyMs);
  return () => clearInterval(timer);
}

export async function hostileApi(): Promise<HostilePeer> {
  const bomb = await gzipBomb();
  const ok = JSON.stringify(Array.from({ length: 5 }, (_, n) => ({ n })));
  const redos = JSON.stringify(Array.from({ length: 200 }, () => ({ s: `${'a'.repeat(31)}!` })));
  const json = (res: ServerResponse, body: string) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  };
  const server = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    switch (url.pathname) {
      case '/ok':
        return json(res, ok);
      case '/redos':
        return json(res, redos);
      case '/bomb':
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        return res.end(bomb);
      case '/loop':
        return json(res, JSON.stringify({ data: [{ n: 1 }], next: '/loop' }));
      case '/million': {
        const p = Number(url.searchParams.get('p') ?? 1);
        return json(
          res,
          JSON.stringify({ data: [{ n: p }], next: p < 1_000_000 ? `/million?p=${p + 1}` : null }),
        );
      }
      case '/slow': {
        res.writeHead(200, { 'content-type': 'application/json' });
        const stop = dribble(
          (c) => res.write(c),
          () => res.destroyed,
          JSON.stringify(Array.from({ length: 100 }, (_, n) => ({ n }))),
        );
        res.on('close', stop);
        return;
      }
      default:
        res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  atCleanup(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as AddressInfo).port };
}

/** A raw server that sends its status line and headers a byte a second (never reaching the body). */
export async function headerDribbler(): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    const stop = dribble(
      (c) => socket.write(c),
      () => socket.destroyed,
      `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n${'x-pad: slow\r\n'.repeat(50)}\r\n[]`,
    );
    socket.on('close', () => {
      stop();
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  atCleanup(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as AddressInfo).port;
}
