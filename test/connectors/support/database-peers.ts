import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { ConnectorContext, ConnectorSource, SyncBatch } from '../../../src/connectors/connector';
import { Outbound, type Resolver } from '../../../src/connectors/outbound';
import { createLogger } from '../../../src/logger';
import { ADMIN_DATABASE_URL } from '../../helpers/test-env';

const run = promisify(execFile);

/** Where the tests find MariaDB/MySQL as an administrator (root, no password on the dev and CI machines). */
export const MYSQL_ADMIN = {
  host: process.env.TEST_MYSQL_HOST ?? '127.0.0.1',
  port: Number(process.env.TEST_MYSQL_PORT ?? 3306),
  user: process.env.TEST_MYSQL_USER ?? 'root',
  password: process.env.TEST_MYSQL_PASSWORD ?? '',
};

export const suffix = () => `${process.pid}_${randomBytes(3).toString('hex')}`;

/** A connector context for direct calls: real resolution (or `resolver`), a silent logger. */
export function dbContext(
  options: { timeoutMs?: number; signal?: AbortSignal; resolver?: Resolver } = {},
): ConnectorContext {
  return {
    signal: options.signal ?? new AbortController().signal,
    logger: createLogger('silent'),
    outbound: options.resolver ? new Outbound(undefined, options.resolver) : new Outbound(),
    timeoutMs: options.timeoutMs ?? 5000,
  };
}

export function dbSource(connection_string: string, metadata: Record<string, unknown>): ConnectorSource {
  return {
    id: '00000000-0000-4000-8000-000000000001',
    name: 'database-test',
    source_type: 'database',
    connection_string,
    metadata,
    schema_definition: null,
  };
}

/** Every batch of a sync, in order. */
export async function drain(iterable: AsyncIterable<SyncBatch>): Promise<SyncBatch[]> {
  const out: SyncBatch[] = [];
  for await (const batch of iterable) out.push(batch);
  return out;
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

export interface PgScratch {
  name: string;
  /** A connection string for the scratch database (the shared server trusts loopback). */
  url: string;
  client: pg.Client;
  drop(): Promise<void>;
}

/** A fresh PostgreSQL database `sluice_conn_<random>` on the shared server, dropped by drop(). */
export async function createPgScratch(): Promise<PgScratch> {
  const name = `sluice_conn_${suffix()}`;
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  return {
    name,
    url: url.toString(),
    client,
    async drop() {
      await client.end().catch(() => undefined);
      const a = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}

export interface MysqlScratch {
  name: string;
  /** root@loopback connection string for the scratch database. */
  url: string;
  conn: mysql.Connection;
  drop(): Promise<void>;
}

/** A fresh MariaDB/MySQL database `sluice_conn_<random>`, dropped by drop(). */
export async function createMysqlScratch(): Promise<MysqlScratch> {
  const name = `sluice_conn_${suffix()}`;
  const conn = await mysql.createConnection({ ...MYSQL_ADMIN, multipleStatements: true });
  await conn.query(`CREATE DATABASE \`${name}\``);
  await conn.query(`USE \`${name}\``);
  const auth = MYSQL_ADMIN.password
    ? `${encodeURIComponent(MYSQL_ADMIN.user)}:${encodeURIComponent(MYSQL_ADMIN.password)}`
    : encodeURIComponent(MYSQL_ADMIN.user);
  return {
    name,
    url: `mysql://${auth}@${MYSQL_ADMIN.host}:${MYSQL_ADMIN.port}/${name}`,
    conn,
    async drop() {
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await conn.end();
    },
  };
}

export interface PrivatePostgres {
  port: number;
  password: string;
  stop(): Promise<void>;
}

/**
 * A private PostgreSQL cluster with password (scram-sha-256) authentication on a free loopback port,
 * in a temp dir: the shared server trusts loopback, so a wrong password would pass there. As root
 * the cluster runs as the `postgres` system user (PostgreSQL refuses to run as root).
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const { stdout } = await run('pg_config', ['--bindir']);
  const bin = stdout.trim();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-pg-auth-'));
  const password = `Pw-${randomBytes(6).toString('hex')}`;
  await writeFile(join(dir, 'pw'), password);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout);
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout);
    await chown(dir, uid, gid);
    await chown(join(dir, 'pw'), uid, gid);
  }
  const as = (cmd: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args);
  const data = join(dir, 'data');
  await as(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=scram-sha-256',
    `--pwfile=${join(dir, 'pw')}`,
    '--encoding=UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  const port = await freePort();
  const opts = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off`;
  await as(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-o', opts, '-w', '-t', '60', 'start']);
  return {
    port,
    password,
    async stop() {
      await as(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A throwaway self-signed certificate for `host` (openssl), for TLS tests against local fakes. */
export async function selfSignedCert(host: string): Promise<{ key: string; cert: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-cert-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${host}`,
      '-keyout',
      key,
      '-out',
      cert,
    ]);
    return { key: await readFile(key, 'utf8'), cert: await readFile(cert, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A loopback stand-in for a TLS PostgreSQL server: answers the SSLRequest with 'S', completes the
 * TLS handshake recording the SNI name the client sent, then hangs up (it knows no more protocol).
 */
export async function startTlsPostgresFake(credentials: {
  key: string;
  cert: string;
}): Promise<{ port: number; sniNames: string[]; close(): Promise<void> }> {
  const { TLSSocket, createSecureContext } = await import('node:tls');
  const context = createSecureContext(credentials);
  const sniNames: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.once('data', () => {
      socket.write('S');
      const secure = new TLSSocket(socket, {
        isServer: true,
        secureContext: context,
        SNICallback: (name, done) => {
          sniNames.push(name);
          done(null, context);
        },
      });
      secure.on('error', () => undefined);
      secure.once('secure', () => secure.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    sniNames,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
