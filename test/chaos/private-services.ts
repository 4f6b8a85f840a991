import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { createKnex } from '../../src/db/create-knex';
import { migrateLatest } from '../../src/db/migrator';
import { exitWithin, freePort, kill, pingRedis, sleep, track, type Child } from '../process/process-kit';
import { atCleanup } from './chaos-kit';

/**
 * Services the chaos cases stop, restart and wipe: a redis-server and a Postgres cluster of their
 * own, on free loopback ports, in temp dirs. Never the shared instances. Each is stopped (by its
 * own pid or its own data dir) and its dir removed by the case's cleanup.
 */
const run = promisify(execFile);

/** A redis-server with AOF (fsync always) in a temp dir; stop() is SIGTERM (it writes the AOF and exits). */
export class PrivateRedis {
  readonly dir = mkdtempSync(join(tmpdir(), 'sluice-chaos-redis-'));
  port = 0;
  child?: Child;

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  constructor(private readonly aof = true) {
    atCleanup(async () => {
      if (this.child) await kill(this.child);
      rmSync(this.dir, { recursive: true, force: true });
    });
  }

  async start(): Promise<void> {
    this.port ||= await freePort();
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--dir', this.dir];
    args.push(...(this.aof ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']));
    const proc = spawn('redis-server', args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = track(`redis:${this.port}`, proc);
    const deadline = Date.now() + 15_000;
    while ((await pingRedis(this.port)) !== 'PONG') {
      if (!this.child.running()) throw new Error(`redis-server exited: ${this.child.stdout().slice(-800)}`);
      if (Date.now() > deadline) throw new Error('redis-server did not answer within 15 s');
      await sleep(100);
    }
  }

  /** SIGTERM to our pid: Redis flushes the AOF and exits. */
  async stop(): Promise<void> {
    if (!this.child?.running()) return;
    this.child.proc.kill('SIGTERM');
    const exit = await exitWithin(this.child, 15_000);
    if (!exit) await kill(this.child);
  }

  /** The data goes: every file in the dir is removed (the next start is empty). */
  wipe(): void {
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
  }

  client(): Redis {
    const c = new Redis(this.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    c.on('error', () => undefined);
    return c;
  }
}

const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** A Postgres cluster of our own (initdb in a temp dir, trust auth, loopback, its socket in the dir). */
export class PrivatePostgres {
  readonly dir = mkdtempSync(join(tmpdir(), 'sluice-chaos-pg-'));
  port = 0;

  constructor() {
    atCleanup(async () => {
      await this.stop().catch(() => undefined);
      rmSync(this.dir, { recursive: true, force: true });
    });
  }

  get data(): string {
    return join(this.dir, 'data');
  }

  url(database = 'sluice'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** initdb (first time), start, create the database and apply the project's migrations. */
  async init(): Promise<void> {
    this.port = await freePort();
    // initdb refuses to run as root; the cluster then belongs to whoever we are (root in CI containers
    // cannot start postgres either), so both run as the 'postgres' user when we are root.
    await this.pg('initdb', ['-D', this.data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    await this.start();
    const admin = createKnex({ url: this.url('postgres'), poolMax: 1 });
    try {
      await admin.raw('CREATE DATABASE sluice');
    } finally {
      await admin.destroy();
    }
    const db = createKnex({ url: this.url(), poolMax: 1 });
    try {
      await migrateLatest(db);
    } finally {
      await db.destroy();
    }
  }

  async start(): Promise<void> {
    await this.pg('pg_ctl', [
      '-D',
      this.data,
      '-l',
      join(this.dir, 'log'),
      '-w',
      '-t',
      '30',
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      'start',
    ]);
  }

  /** Fast shutdown of our cluster only (its own data dir): connections are cut at once. */
  async stop(): Promise<void> {
    await this.pg('pg_ctl', ['-D', this.data, '-m', 'fast', '-w', '-t', '30', 'stop']);
  }

  private async pg(bin: string, args: string[]): Promise<void> {
    const root = process.getuid?.() === 0;
    if (root) await run('chown', ['-R', 'postgres', this.dir]);
    const [cmd, argv] = root
      ? ['runuser', ['-u', 'postgres', '--', join(PG_BIN, bin), ...args]]
      : [join(PG_BIN, bin), args];
    await run(cmd as string, argv as string[], { timeout: 60_000 });
  }
}
