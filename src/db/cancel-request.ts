import { connect } from 'node:net';
import type pg from 'pg';

/** pg sets these at connect (from BackendKeyData); its type declarations omit them. */
interface Keyed {
  host: string;
  port: number;
  processID?: number;
  secretKey?: number;
}

const CANCEL_REQUEST_CODE = 80877102;

/**
 * Cancels what `client` is running with the protocol's CancelRequest, sent on a new connection
 * to where the client connected, like libpq's PQcancel. Unlike `SELECT pg_cancel_backend(pid)`
 * this also works behind PgBouncer: the process id a pooler hands its clients is its own key, not a
 * server pid (cancelling by it could hit an unrelated backend), and it forwards this request to
 * whichever server connection the client's query runs on. Best effort: resolves either way,
 * within `timeoutMs`.
 */
export function sendCancelRequest(client: pg.ClientBase, timeoutMs = 2000): Promise<void> {
  const { host, port, processID, secretKey } = client as unknown as Keyed;
  if (processID === undefined || secretKey === undefined) return Promise.resolve();
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  packet.writeInt32BE(processID, 8);
  packet.writeInt32BE(secretKey, 12);
  return new Promise((resolve) => {
    const socket = host.startsWith('/') ? connect(`${host}/.s.PGSQL.${port}`) : connect(port, host);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    // Written, not ended: like libpq, wait for the other side to close. PgBouncer drops a cancel
    // whose sender hung up before it was forwarded (it forwards on a connection of its own).
    socket.once('connect', () => socket.write(packet));
    // The server closes the connection once it has acted on the request; it never answers.
    socket.once('end', done);
    socket.once('close', done);
    socket.once('error', done);
  });
}
