import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { TEST_ENCRYPTION_KEYS, TEST_REDIS_URL, uniqueSuffix } from '../helpers/test-env';
import { freePort, killAll, logTailsOnFailure, sleep, track, waitForLog, type Child } from './process-kit';

const ROOT = new URL('../../', import.meta.url).pathname;
const TOKEN = `slc_test_admin_${'k'.repeat(40)}`;

/** Sends one GET on `socket` and resolves with the raw response head once it is complete. */
function get(socket: Socket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // Closed by the server while idle: what a load balancer reusing the connection runs into.
    if (socket.destroyed || !socket.writable || socket.readableEnded)
      return reject(new Error('other side closed'));
    let data = '';
    const onData = (chunk: Buffer) => {
      data += chunk.toString();
      const end = data.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(data)?.[1];
      if (end >= 0 && length !== undefined && data.length >= end + 4 + Number(length)) {
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.off('end', onClose);
        resolve(data);
      }
    };
    const onClose = () => reject(new Error('other side closed'));
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('end', onClose);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`);
  });
}

describe('issue 13 #14: the API keeps idle keep-alive connections longer than a load balancer does', () => {
  let database: TestDatabase;
  let api: Child;
  let port: number;
  const prefix = `test_${uniqueSuffix()}`;
  logTailsOnFailure();

  beforeAll(async () => {
    database = await createTestDatabase();
    port = await freePort();
    // The real entry point (src/main.ts), production mode, defaults for the HTTP timeouts.
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'api'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        NODE_ENV: 'production',
        HOST: '127.0.0.1',
        PORT: String(port),
        DATABASE_URL: database.url,
        REDIS_URL: TEST_REDIS_URL,
        ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
        QUEUE_PREFIX: prefix,
        API_KEYS: `admin:${TOKEN}`,
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    api = track('api', proc);
    await waitForLog(api, (l) => l.msg === 'api listening', 90_000);
  }, 120_000);
  afterAll(async () => {
    await killAll();
    await database?.drop();
    const redis = new Redis(TEST_REDIS_URL);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.unlink(...keys);
    redis.disconnect();
  });

  it('announces a 65 s keep-alive and serves a request on a connection idle for 8 s (Node’s default closes it after 5 s)', async () => {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    try {
      const first = await get(socket, '/healthz');
      expect(first).toMatch(/^HTTP\/1\.1 200/);
      expect(first).toMatch(/keep-alive: timeout=65/i);
      await sleep(8_000);
      const second = await get(socket, '/healthz');
      expect(second).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      socket.destroy();
    }
  }, 30_000);
});
