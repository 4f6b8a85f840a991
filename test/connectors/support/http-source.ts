import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import type {
  Connector,
  ConnectorContext,
  ConnectorSource,
  SyncBatch,
} from '../../../src/connectors/connector';
import { Outbound, type OutboundPolicy, type Resolver } from '../../../src/connectors/outbound';
import { createLogger } from '../../../src/logger';

/** A connector context over loopback peers: real Outbound (optionally with a policy or a fake resolver). */
export function connectorContext(
  options: { timeoutMs?: number; policy?: OutboundPolicy; resolver?: Resolver; signal?: AbortSignal } = {},
): ConnectorContext {
  return {
    signal: options.signal ?? new AbortController().signal,
    logger: createLogger('silent'),
    outbound: new Outbound(options.policy, options.resolver),
    timeoutMs: options.timeoutMs ?? 2000,
  };
}

let seq = 0;
export function source(
  source_type: string,
  connection_string: string,
  metadata: Record<string, unknown> = {},
): ConnectorSource {
  return {
    id: `s-${++seq}`,
    name: `source-${seq}`,
    source_type,
    connection_string,
    metadata,
    schema_definition: null,
  };
}

/** Runs a sync to the end: every batch, in order. */
export async function drain(
  connector: Connector,
  src: ConnectorSource,
  state: unknown,
  ctx: ConnectorContext,
): Promise<SyncBatch[]> {
  const batches: SyncBatch[] = [];
  for await (const batch of connector.sync(src, state, ctx)) batches.push(batch);
  return batches;
}

export const recordsOf = (batches: SyncBatch[]) => batches.flatMap((b) => b.records);

/** Each record's whole provenance: its batch's shared part with its own (column-wise) laid over it. */
export const provenanceOf = (batches: SyncBatch[]) =>
  batches.flatMap((b) =>
    b.records.map((_, i) => ({
      ...b.provenance,
      ...Object.fromEntries(Object.entries(b.recordProvenance ?? {}).map(([k, values]) => [k, values[i]])),
    })),
  );

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => unknown;

export interface TestServer {
  url: string;
  port: number;
  /** Every request: method, path with query, headers. */
  requests: { path: string; headers: IncomingMessage['headers'] }[];
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 and an ephemeral port, answering with `handler`. */
export async function startHttpServer(handler: Handler): Promise<TestServer> {
  const requests: TestServer['requests'] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    requests.push({ path: `${url.pathname}${url.search}`, headers: req.headers });
    Promise.resolve(handler(req, res, url)).catch((err: Error) => {
      res.statusCode = 500;
      res.end(err.message);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export function sendJson(
  res: ServerResponse,
  body: unknown,
  status = 200,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** A TCP server on 127.0.0.1 that accepts connections and never answers: a black hole. */
export async function startBlackHole(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A loopback port with nothing listening (bound, read, released). */
export async function freePort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
