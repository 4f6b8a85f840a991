import { createServer, type Server, type Socket } from 'node:net';

/**
 * Loopback servers that speak just enough of a protocol's login to ask for credentials, record
 * what the client sends, then refuse it. They show exactly which secret would reach a source's
 * server, without a real server that might accept whatever it is given.
 */
export interface RecordingPeer<T> {
  port: number;
  /** What each connection sent, in order. */
  seen: T[];
  close(): Promise<void>;
}

async function listen<T>(
  onSocket: (socket: Socket, record: (entry: T) => void) => void,
): Promise<RecordingPeer<T>> {
  const seen: T[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onSocket(socket, (entry) => seen.push(entry));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    seen,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export interface PgLogin {
  /** The startup message's parameters (user, database, options, replication...). */
  startup: Record<string, string>;
  /** The password the client sent, or undefined when it sent none. */
  password?: string;
}

/**
 * A PostgreSQL server that answers the startup message with AuthenticationCleartextPassword, so a
 * client sends its password as is, then fails the login (28P01). Plain TCP only (sslmode=disable).
 */
export function startRecordingPostgres(): Promise<RecordingPeer<PgLogin>> {
  return listen<PgLogin>((socket, record) => {
    let buffer = Buffer.alloc(0);
    let login: PgLogin | undefined;
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (!login) {
          if (buffer.length < 4) return;
          const length = buffer.readInt32BE(0);
          if (buffer.length < length) return;
          const fields = buffer.subarray(8, length).toString('utf8').split('\0');
          buffer = buffer.subarray(length);
          const startup: Record<string, string> = {};
          for (let i = 0; i + 1 < fields.length && fields[i]; i += 2) startup[fields[i]!] = fields[i + 1]!;
          login = { startup };
          record(login);
          // 'R', length 8, code 3: AuthenticationCleartextPassword.
          socket.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3]));
          continue;
        }
        if (buffer.length < 5) return;
        const length = buffer.readInt32BE(1);
        if (buffer.length < length + 1) return;
        const type = String.fromCharCode(buffer[0]!);
        const body = buffer.subarray(5, length + 1);
        buffer = buffer.subarray(length + 1);
        if (type === 'p') {
          login.password = body.toString('utf8').replace(/\0$/, '');
          const fields = ['SFATAL', 'C28P01', 'Mpassword authentication failed'];
          const payload = Buffer.from(`${fields.join('\0')}\0\0`, 'utf8');
          const header = Buffer.alloc(5);
          header.write('E', 0);
          header.writeInt32BE(payload.length + 4, 1);
          socket.end(Buffer.concat([header, payload]));
        }
      }
    });
  });
}

export interface MysqlLogin {
  user: string;
  /** Bytes of the auth response: 0 when the client sent no password. */
  authLength: number;
}

/** A MySQL server: a HandshakeV10 greeting (no TLS), records the login packet, answers access denied. */
export function startRecordingMysql(): Promise<RecordingPeer<MysqlLogin>> {
  return listen<MysqlLogin>((socket, record) => {
    const scramble = Buffer.from('abcdefghijklmnopqrst', 'latin1');
    // LONG_PASSWORD | CONNECT_WITH_DB | PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH
    const caps = 0x1 | 0x8 | 0x200 | 0x8000 | 0x80000;
    const payload = Buffer.concat([
      Buffer.from([10]),
      Buffer.from('8.0.0-recording\0', 'latin1'),
      Buffer.from([1, 0, 0, 0]),
      scramble.subarray(0, 8),
      Buffer.from([0, caps & 0xff, (caps >> 8) & 0xff, 33, 2, 0, (caps >> 16) & 0xff, (caps >> 24) & 0xff]),
      Buffer.from([21]),
      Buffer.alloc(10),
      scramble.subarray(8),
      Buffer.from([0]),
      Buffer.from('mysql_native_password\0', 'latin1'),
    ]);
    socket.write(packet(0, payload));
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (buffer.length < 4) return;
      const length = buffer.readUIntLE(0, 3);
      if (buffer.length < length + 4) return;
      const body = buffer.subarray(4, length + 4);
      // capabilities(4) max packet(4) charset(1) filler(23), then user\0, then the auth response.
      const userEnd = body.indexOf(0, 32);
      const user = body.subarray(32, userEnd).toString('utf8');
      record({ user, authLength: body[userEnd + 1] ?? 0 });
      const denied = Buffer.concat([
        Buffer.from([0xff, 0x15, 0x04]),
        Buffer.from('#28000Access denied', 'latin1'),
      ]);
      socket.end(packet(2, denied));
    });
  });
}

function packet(sequence: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUIntLE(payload.length, 0, 3);
  header[3] = sequence;
  return Buffer.concat([header, payload]);
}

/** A NATS server that requires auth: records the CONNECT line's JSON, answers Authorization Violation. */
export function startRecordingNats(): Promise<RecordingPeer<Record<string, unknown>>> {
  return listen<Record<string, unknown>>((socket, record) => {
    const info = { server_id: 'RECORDING', version: '2.10.0', proto: 1, max_payload: 1048576, headers: true };
    socket.write(`INFO ${JSON.stringify({ ...info, auth_required: true })}\r\n`);
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const line = /^CONNECT (.*)\r\n/m.exec(text);
      if (!line) return;
      text = '';
      record(JSON.parse(line[1]!) as Record<string, unknown>);
      socket.end("-ERR 'Authorization Violation'\r\n");
    });
  });
}

/** A Redis server that records every byte it is sent and answers each command with NOAUTH. */
export function startRecordingRedis(): Promise<RecordingPeer<string>> {
  return listen<string>((socket, record) => {
    socket.on('data', (chunk: Buffer) => {
      record(chunk.toString('utf8'));
      socket.write('-NOAUTH Authentication required.\r\n');
    });
  });
}
