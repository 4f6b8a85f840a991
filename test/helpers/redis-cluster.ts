import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** How long the cluster may take to form (or to settle after a failover) on a loaded machine. */
const SETTLE_MS = 30_000;

export interface ClusterNodeInfo {
  port: number;
  role: 'master' | 'slave';
  /** The node id (CLUSTER MYID). */
  id: string;
  /** A replica's master's id. */
  masterId?: string;
}

export interface TestRedisCluster {
  ports: number[];
  /** REDIS_CLUSTER_NODES for them: every node as a seed. */
  seeds: string;
  /** redis-cli against one node; the reply as text. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** Every node's role and id, as that node sees itself. */
  topology(): Promise<ClusterNodeInfo[]>;
  /** Waits (bounded) until every node says cluster_state:ok and every replica's link to its master is up. */
  settled(): Promise<void>;
  /** Kills one node's server (SIGKILL, by PID) as a crash would; settled() then leaves it out. */
  kill(port: number): Promise<void>;
  /** Kills the private servers (by PID) and removes their directory; safe to call twice. */
  stop(): Promise<void>;
}

async function until(what: string, check: () => Promise<boolean>, ms = SETTLE_MS): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`redis cluster: ${what} not reached within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * A private Redis Cluster on loopback: `ports.length` redis-server processes (cluster-enabled, no
 * persistence) in a temp dir, joined by `redis-cli --cluster create` with `replicas` replicas per
 * master. Started by this process and killed by PID in stop(); never touches another server.
 */
export async function startRedisCluster(ports: number[], replicas = 1): Promise<TestRedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-redis-cluster-'));
  const children: ChildProcess[] = [];
  const byPort = new Map<number, ChildProcess>();
  const killed = new Set<number>();
  const cli = async (port: number, ...args: string[]) =>
    (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 })).stdout;
  let stopped: Promise<void> | undefined;
  // Whatever ends this process (a hook timing out before stop(), a crash), its nodes go with it:
  // a node left behind would hold its port and fail the next run.
  const onExit = () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  };
  process.once('exit', onExit);
  const stop = () =>
    (stopped ??= (async () => {
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
      await Promise.all(
        children.map((child) =>
          child.exitCode !== null || child.signalCode !== null
            ? undefined
            : new Promise((resolve) => child.once('exit', resolve)),
        ),
      );
      await rm(dir, { recursive: true, force: true });
    })());

  const info = async (port: number) => {
    const text = await cli(port, 'cluster', 'info');
    return Object.fromEntries(
      text
        .split('\n')
        .map((l) => l.trim().split(':'))
        .filter((kv) => kv.length === 2),
    ) as Record<string, string>;
  };
  const topology = async (): Promise<ClusterNodeInfo[]> =>
    Promise.all(
      ports
        .filter((p) => !killed.has(p))
        .map(async (port) => {
          const myself = (await cli(port, 'cluster', 'nodes')).split('\n').find((l) => l.includes('myself'));
          const [id, , flags, master] = (myself ?? '').split(' ');
          return {
            port,
            id: id ?? '',
            role: flags?.includes('master') ? 'master' : 'slave',
            masterId: master && master !== '-' ? master : undefined,
          } as ClusterNodeInfo;
        }),
    );
  const settled = () =>
    until('cluster_state:ok on every node with every replica in sync', async () => {
      for (const port of ports.filter((p) => !killed.has(p))) {
        const i = await info(port);
        if (i.cluster_state !== 'ok' || i.cluster_slots_ok !== '16384') return false;
        if (Number(i.cluster_known_nodes) !== ports.length) return false;
        const replication = await cli(port, 'info', 'replication');
        if (replication.includes('role:slave') && !replication.includes('master_link_status:up'))
          return false;
      }
      return true;
    });

  try {
    // A server already there (another run of this file, a leftover) would be joined by mistake.
    for (const port of ports)
      if (
        await cli(port, 'ping').then(
          (reply) => reply.trim().length > 0,
          () => false,
        )
      )
        throw new Error(
          `redis cluster: port ${port} is already in use (another test run, or a leftover server)`,
        );
    for (const port of ports) {
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          // A dead master is noticed (and its replica promoted) within a few seconds.
          '--cluster-node-timeout',
          '2000',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
          '--logfile',
          join(dir, `redis-${port}.log`),
        ],
        { stdio: 'ignore' },
      );
      children.push(child);
      byPort.set(port, child);
    }
    for (const port of ports)
      await until(`node ${port} answering`, async () => (await cli(port, 'ping')).trim() === 'PONG', 10_000);
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...ports.map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    );
    await settled();
  } catch (err) {
    await stop();
    throw err;
  }
  const kill = async (port: number) => {
    const child = byPort.get(port);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    killed.add(port);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
  return { ports, seeds: ports.map((p) => `127.0.0.1:${p}`).join(','), cli, topology, settled, kill, stop };
}
