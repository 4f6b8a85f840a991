import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'bullmq';
import type { Config } from '../config';

/**
 * Sluice's own Redis: one server (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES). Both speak
 * every command Sluice sends; what differs is that a cluster refuses a script or a transaction
 * whose keys hash to different slots, so such keys carry a hash tag (queue/queue-names.ts,
 * runs/concurrency-gate.ts) — and only in cluster mode, so a single Redis keeps its key names.
 */
export type RedisClient = Redis | Cluster;

export type RedisTarget = Pick<Config, 'redisUrl' | 'redisClusterNodes'>;

export const isCluster = (target: RedisTarget): boolean => target.redisClusterNodes.length > 0;

/**
 * What every cluster node is connected with: the credentials and TLS of REDIS_URL when it has them
 * (a managed cluster shares one password), never its host, port or database (a cluster has db 0).
 */
function nodeOptions(target: RedisTarget): RedisOptions {
  let url: URL;
  try {
    url = new URL(target.redisUrl);
  } catch {
    return {};
  }
  return {
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/**
 * A connection to Sluice's own Redis with `options` (those of one server; on a cluster, of each
 * node). A cluster client learns the other nodes from the seeds and follows MOVED/ASK and failovers.
 */
export function createRedis(target: RedisTarget, options: RedisOptions = {}): RedisClient {
  if (!isCluster(target)) return new Redis(target.redisUrl, options);
  const { enableAutoPipelining, enableOfflineQueue, ...perNode } = options;
  return new Cluster(target.redisClusterNodes as ClusterNode[], {
    enableAutoPipelining,
    enableOfflineQueue,
    // A failover takes the cluster a few seconds: commands wait for the new master meanwhile.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 200,
    slotsRefreshTimeout: 2000,
    redisOptions: { ...nodeOptions(target), ...perNode },
  });
}

/** Another connection like `client`, with `overrides` (Redis#duplicate, or Cluster#duplicate's node options). */
export function duplicateRedis(client: RedisClient, overrides: RedisOptions = {}): RedisClient {
  if (!(client instanceof Cluster)) return client.duplicate(overrides);
  const { enableAutoPipelining, enableOfflineQueue, ...perNode } = overrides;
  return client.duplicate([], {
    ...client.options,
    ...(enableAutoPipelining !== undefined ? { enableAutoPipelining } : {}),
    ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
    redisOptions: { ...client.options.redisOptions, ...perNode },
  });
}

/**
 * host:port of every node of the cluster `client` is connected to, replicas included (the client's
 * own pool holds only the masters it sends to): from CLUSTER NODES, which lists every node the
 * cluster has met, a replica as soon as it joined (CLUSTER SLOTS lists it only once it replicates),
 * plus the pool. None for one Redis.
 */
export async function clusterNodeAddresses(client: RedisClient): Promise<{ host: string; port: number }[]> {
  if (!(client instanceof Cluster)) return [];
  const found = new Map<string, { host: string; port: number }>();
  const add = (host: unknown, port: unknown) => {
    if (typeof host === 'string' && host && Number(port) > 0)
      found.set(`${host}:${Number(port)}`, { host, port: Number(port) });
  };
  for (const node of client.nodes('all')) add(node.options.host, node.options.port);
  // One line per node: `<id> <ip>:<port>@<bus port>[,<hostname>] <flags> …`; unanswered, the pool remains.
  const text = String((await client.cluster('NODES').catch(() => '')) ?? '');
  for (const line of text.split('\n')) {
    const address = line.split(' ')[1]?.split('@')[0];
    const colon = address?.lastIndexOf(':') ?? -1;
    if (address && colon > 0) add(address.slice(0, colon).replace(/^\[|\]$/g, ''), address.slice(colon + 1));
  }
  return [...found.values()];
}

/**
 * What a BullMQ Worker of `name` connects with, and its prefix (queue/queue-names.ts bullPrefix).
 * On one Redis: connection options, so BullMQ opens and closes its connections itself, as before.
 * On a cluster: a cluster client of its own (BullMQ needs maxRetriesPerRequest null on a worker's
 * connections, and duplicates it for the blocking one); BullMQ never closes a client it was
 * handed, so `close()` does, after the worker closed.
 */
export function workerConnection(target: Partial<RedisTarget> & Pick<RedisTarget, 'redisUrl'>): {
  connection: ConnectionOptions;
  close(): void;
} {
  const full: RedisTarget = { redisClusterNodes: [], ...target };
  if (!isCluster(full))
    return { connection: { url: full.redisUrl, maxRetriesPerRequest: null }, close: () => undefined };
  const client = createRedis(full, { maxRetriesPerRequest: null });
  return { connection: client, close: () => client.disconnect() };
}
