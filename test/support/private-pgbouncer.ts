import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * A private PgBouncer for one test file: its own loopback port, temp dir, ini and userlist, in
 * transaction mode in front of the test Postgres. Only this process is ever killed (by its pid),
 * and its dir removed, by close(). CI installs Debian's pgbouncer (scripts/pgbouncer.sh); a
 * missing binary is an error, not a skip.
 */
export interface PrivatePgBouncer {
  port: number;
  /** e.g. "1.18.0". */
  version: string;
  /** Whether this PgBouncer knows max_prepared_statements (1.21 and later). */
  supportsPreparedStatements: boolean;
  /** `directUrl` (a database on the test Postgres) as reached through this PgBouncer. */
  url(directUrl: string): string;
  /** Rows of an admin console command (SHOW POOLS, SHOW STATS...). */
  show(what: string): Promise<Record<string, unknown>[]>;
  /** What the PgBouncer wrote (stderr: its log), for a failing test's message. */
  log(): string;
  close(): Promise<void>;
}

export interface PgBouncerOptions {
  /** Server connections per database and user (default_pool_size). */
  poolSize: number;
  /** Where the test Postgres listens and who connects (from the test's admin URL). */
  upstream: string;
  /** max_prepared_statements, set only where the PgBouncer knows it (1.21+); 0 turns it off. */
  maxPreparedStatements?: number;
}

export const PGBOUNCER_PATH = process.env.PGBOUNCER_PATH ?? '/usr/sbin/pgbouncer';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const exited = (proc: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else proc.once('exit', () => resolve());
  });

/** The installed PgBouncer's version ("1.18.0"), or undefined when it is missing. */
export function pgbouncerVersion(): string | undefined {
  if (!existsSync(PGBOUNCER_PATH)) return undefined;
  return /PgBouncer (\d+\.\d+(?:\.\d+)?)/.exec(
    execFileSync(PGBOUNCER_PATH, ['--version'], { encoding: 'utf8' }),
  )?.[1];
}

/** Whether `version` knows max_prepared_statements (PgBouncer 1.21 and later). */
export function knowsPreparedStatements(version: string | undefined): boolean {
  const [major = 0, minor = 0] = (version ?? '0.0').split('.').map(Number);
  return major > 1 || (major === 1 && minor >= 21);
}

export async function startPgBouncer(options: PgBouncerOptions): Promise<PrivatePgBouncer> {
  if (!existsSync(PGBOUNCER_PATH))
    throw new Error(
      `pgbouncer is missing at ${PGBOUNCER_PATH}: run \`bash scripts/pgbouncer.sh\` (installs Debian's ` +
        'pgbouncer as root) or set PGBOUNCER_PATH',
    );
  const version = pgbouncerVersion();
  if (!version) throw new Error(`could not read the version of ${PGBOUNCER_PATH}`);
  const supportsPreparedStatements = knowsPreparedStatements(version);

  const upstream = new URL(options.upstream);
  const user = decodeURIComponent(upstream.username) || 'postgres';
  const dir = mkdtempSync(join(tmpdir(), 'sluice-pgbouncer-'));
  // PgBouncer refuses to run as root: it switches to `user`, which must read the files here.
  const root = process.getuid?.() === 0;
  if (root) chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'userlist.txt'), `"${user}" ""\n`, { mode: 0o644 });

  let stderr = '';
  const start = async (port: number) => {
    const ini = [
      '[databases]',
      // Any database name goes to the test Postgres: each test file has its own database.
      `* = host=${upstream.hostname} port=${upstream.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${options.poolSize}`,
      'min_pool_size = 0',
      'reserve_pool_size = 0',
      'max_client_conn = 1000',
      'server_reset_query =',
      'server_check_delay = 0',
      `admin_users = ${user}`,
      'log_connections = 0',
      'log_disconnections = 0',
      ...(supportsPreparedStatements
        ? [`max_prepared_statements = ${options.maxPreparedStatements ?? 0}`]
        : []),
      ...(root ? ['user = nobody'] : []),
      '',
    ].join('\n');
    writeFileSync(join(dir, 'pgbouncer.ini'), ini, { mode: 0o644 });
    const proc = spawn(PGBOUNCER_PATH, [join(dir, 'pgbouncer.ini')], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    proc.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + String(chunk)).slice(-20_000)));
    return proc;
  };

  const stop = async (proc: ChildProcess) => {
    if (proc.exitCode === null && proc.signalCode === null) {
      // SIGINT: PgBouncer's immediate shutdown (SIGTERM would wait for clients to leave).
      proc.kill('SIGINT');
      const killed = await Promise.race([exited(proc).then(() => true), delay(5000).then(() => false)]);
      if (!killed) proc.kill('SIGKILL');
      await exited(proc);
    }
  };

  // A free port can be taken between probing and binding (other test files run at once): retry.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const proc = await start(port);
    const ready = await answers(port, user, proc);
    if (ready) {
      return {
        port,
        version,
        supportsPreparedStatements,
        url(directUrl) {
          const url = new URL(directUrl);
          url.hostname = '127.0.0.1';
          url.port = String(port);
          return url.toString();
        },
        async show(what) {
          const client = new pg.Client({ host: '127.0.0.1', port, user, database: 'pgbouncer' });
          client.on('error', () => undefined);
          await client.connect();
          try {
            // The admin console speaks the simple protocol only: no parameters.
            return (await client.query(`SHOW ${what}`)).rows as Record<string, unknown>[];
          } finally {
            await client.end().catch(() => undefined);
          }
        },
        log: () => stderr,
        async close() {
          await stop(proc);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await stop(proc);
    if (attempt >= 3) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`pgbouncer did not start on 127.0.0.1; its log:\n${stderr}`);
    }
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether `SELECT 1` through the PgBouncer answers within 10 s (false at once if it exited). */
async function answers(port: number, user: string, proc: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) return false;
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user,
      database: 'postgres',
      connectionTimeoutMillis: 1000,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      await delay(100);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return false;
}
