import { createServer, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseConnector } from '../../src/connectors/database/database.connector';
import { guardPgStream } from '../../src/connectors/database/pg-message-guard';
import { dbContext, dbSource } from './support/database-peers';

// A peer on a "postgres" source's port that is not a PostgreSQL server must not hurt the worker:
// pg-protocol loops forever on a string field without its NUL (the event loop, and with it every
// run on the worker, would stop) and throws in the socket's data listener on some short bodies
// (the process would crash). Both arrive here as the connect attempt's protocol failure.
const msg = (type: string, body: Buffer) => {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
};

const HOSTILE: [string, Buffer][] = [
  [
    'a NoticeResponse whose field has no NUL (an endless loop before)',
    msg('N', Buffer.from([0x21, 0x0a, 0x84, 0xca])),
  ],
  ['an ErrorResponse without its closing zero', msg('E', Buffer.from('SFATAL\0', 'latin1'))],
  ['a CommandComplete without a NUL', msg('C', Buffer.from('SELECT 1', 'latin1'))],
  ['a ParameterStatus with one string', msg('S', Buffer.from('server_version\0', 'latin1'))],
  [
    'a RowDescription announcing more fields than it has',
    msg('T', Buffer.from([0, 2, 0x61, 0, ...Array(18).fill(0)])),
  ],
  [
    'an AuthenticationSASL list without its end',
    msg('R', Buffer.from('\0\0\0\x0aSCRAM-SHA-256\0', 'latin1')),
  ],
  ['a short CopyOutResponse (a crash before)', Buffer.from([0x48, 0, 0, 0, 8, 0x41, 0x42, 0x43, 0x44])],
  ['a length below 4', Buffer.from([0x5a, 0, 0, 0, 1])],
];

describe('a hostile peer on a PostgreSQL port', () => {
  let server: Server;
  let answer: Buffer = Buffer.alloc(0);
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.once('data', () => socket.end(answer));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it.each(HOSTILE)('%s: the test fails with code protocol, and the worker goes on', async (_what, bytes) => {
    answer = bytes;
    const port = (server.address() as { port: number }).port;
    const url = `postgres://u:pw@127.0.0.1:${port}/db?sslmode=disable`;
    const steps = await new DatabaseConnector().test(
      dbSource(url, { table: 't' }),
      dbContext({ timeoutMs: 2000 }),
    );
    const failed = steps.find((s) => s.status === 'failed');
    // connect when the guard refused the first bytes before anything read them, else authenticate.
    expect(failed?.code).toBe('protocol');
    expect(['connect', 'authenticate']).toContain(failed?.name);
    expect(failed?.message).not.toMatch(/SFATAL|SELECT|server_version|SCRAM/);
    // The event loop still turns: timers fire.
    await new Promise((resolve) => setTimeout(resolve, 1));
  });
});

describe('guardPgStream', () => {
  const feed = (chunks: Buffer[]) => {
    const stream = guardPgStream(new PassThrough());
    const seen: Buffer[] = [];
    stream.on('data', (c: Buffer) => seen.push(c));
    let failure: Error | undefined;
    stream.on('error', (err) => (failure = err));
    for (const c of chunks) stream.emit('data', c);
    return { seen, failure: () => failure, destroyed: stream.destroyed };
  };

  it('passes well-formed messages through, split at any byte', () => {
    const good = Buffer.concat([
      msg('R', Buffer.from([0, 0, 0, 0])),
      msg('S', Buffer.from('client_encoding\0UTF8\0', 'latin1')),
      msg('E', Buffer.from('SFATAL\0C28P01\0Mno\0\0', 'latin1')),
      msg('T', Buffer.from([0, 1, 0x61, 0, ...Array(18).fill(0)])),
      msg('D', Buffer.from([0, 1, 0, 0, 0, 1, 0x31])),
      msg('C', Buffer.from('SELECT 1\0', 'latin1')),
      msg('Z', Buffer.from('I', 'latin1')),
    ]);
    for (let cut = 1; cut < good.length; cut += 3) {
      const out = feed([good.subarray(0, cut), good.subarray(cut)]);
      expect(out.destroyed, `cut at ${cut}`).toBe(false);
      expect(Buffer.concat(out.seen)).toEqual(good);
    }
  });

  it.each(HOSTILE)('refuses %s, without handing it to the parser', (_what, bytes) => {
    const out = feed([bytes.subarray(0, 3), bytes.subarray(3)]);
    if (bytes[0] === 0x48) return; // well framed: the parser's own throw is what the guard catches
    expect(out.destroyed).toBe(true);
    expect(Buffer.concat(out.seen).length).toBeLessThan(bytes.length);
  });
});
