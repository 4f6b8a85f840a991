import type { Duplex } from 'node:stream';
import { SourceFailure } from '../kit/classify-error';

/** Largest message with text fields checked here: real ones are a few kilobytes at most. */
const MAX_CHECKED = 1 << 20;

/** Message types whose pg-protocol parser reads NUL-terminated strings. */
const WITH_STRINGS = new Set(['E', 'N', 'S', 'A', 'C', 'T', 'R'].map((c) => c.charCodeAt(0)));

const notPostgres = () => new SourceFailure('the peer did not answer as a PostgreSQL server', 'protocol');

/**
 * Shields the worker from a peer that is not a PostgreSQL server, on each stream pg reads (the
 * socket, and the TLS socket over it). pg-protocol trusts what it is sent:
 * - a string field without its NUL (an ErrorResponse, NoticeResponse, CommandComplete... of a few
 *   bytes) makes its parser loop forever, which blocks the whole worker process;
 * - some malformed bodies (a short CopyOutResponse) make it throw in the socket's 'data' listener,
 *   which would crash the process.
 * So every message is framed here first. One whose text fields do not end where they must, or any
 * throw while pg handles a chunk, destroys that connection with a protocol failure instead.
 */
export function guardPgStream(stream: Duplex): Duplex {
  const emit = stream.emit.bind(stream) as (event: string | symbol, ...args: unknown[]) => boolean;
  const framer = new MessageFramer();
  stream.emit = ((event: string | symbol, ...args: unknown[]) => {
    if (event !== 'data') return emit(event, ...args);
    const chunk = args[0];
    if (Buffer.isBuffer(chunk) && !framer.accept(chunk)) {
      stream.destroy(notPostgres());
      return false;
    }
    try {
      return emit(event, ...args);
    } catch {
      stream.destroy(notPostgres());
      return false;
    }
  }) as Duplex['emit'];
  return stream;
}

/** Follows the backend messages across chunks; checks those with text fields whole. */
class MessageFramer {
  private header = Buffer.alloc(0);
  /** Bytes of the current message's body still to come. */
  private remaining = 0;
  private type = 0;
  /** The body of a message with text fields, collected until complete. */
  private body: Buffer[] | undefined;

  accept(chunk: Buffer): boolean {
    let at = 0;
    while (at < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - at);
        this.body?.push(chunk.subarray(at, at + take));
        this.remaining -= take;
        at += take;
        if (this.remaining === 0 && this.body && !wellFormed(this.type, Buffer.concat(this.body)))
          return false;
        if (this.remaining === 0) this.body = undefined;
        continue;
      }
      let length: number;
      if (this.header.length === 0 && chunk.length - at >= 5) {
        // The common case, without a copy: the whole header is in this chunk.
        this.type = chunk[at]!;
        length = chunk.readUInt32BE(at + 1);
        at += 5;
      } else {
        const need = 5 - this.header.length;
        this.header = Buffer.concat([this.header, chunk.subarray(at, at + need)]);
        at += Math.min(need, chunk.length - at);
        if (this.header.length < 5) return true;
        this.type = this.header[0]!;
        length = this.header.readUInt32BE(1);
        this.header = Buffer.alloc(0);
      }
      if (length < 4) return false;
      this.remaining = length - 4;
      const checked = WITH_STRINGS.has(this.type);
      if (checked && this.remaining > MAX_CHECKED) return false;
      this.body = checked ? [] : undefined;
      if (this.remaining === 0 && checked && !wellFormed(this.type, Buffer.alloc(0))) return false;
    }
    return true;
  }
}

/** Whether pg-protocol's parser for `type` will find every string it reads inside `body`. */
function wellFormed(type: number, body: Buffer): boolean {
  const r = new Reader(body);
  switch (String.fromCharCode(type)) {
    case 'E':
    case 'N':
      // Fields: a type byte and a string each, until a zero type byte that ends the body.
      for (;;) {
        const field = r.byte();
        if (field === undefined) return false;
        if (field === 0) return r.atEnd();
        if (!r.cstring()) return false;
      }
    case 'S':
      return r.cstring() && r.cstring();
    case 'A':
      return r.skip(4) && r.cstring() && r.cstring();
    case 'C':
      return r.cstring();
    case 'T': {
      const count = r.int16();
      if (count === undefined) return false;
      for (let i = 0; i < count; i++) if (!r.cstring() || !r.skip(18)) return false;
      return true;
    }
    case 'R': {
      const code = r.int32();
      if (code === undefined) return false;
      // AuthenticationSASL: mechanism names until an empty one.
      if (code !== 10) return true;
      for (;;) {
        const start = r.offset;
        if (!r.cstring()) return false;
        if (r.offset - start === 1) return true;
      }
    }
    default:
      return true;
  }
}

class Reader {
  offset = 0;
  constructor(private readonly buffer: Buffer) {}

  atEnd(): boolean {
    return this.offset === this.buffer.length;
  }

  byte(): number | undefined {
    return this.offset < this.buffer.length ? this.buffer[this.offset++] : undefined;
  }

  skip(n: number): boolean {
    if (this.offset + n > this.buffer.length) return false;
    this.offset += n;
    return true;
  }

  int16(): number | undefined {
    if (this.offset + 2 > this.buffer.length) return undefined;
    const v = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  int32(): number | undefined {
    if (this.offset + 4 > this.buffer.length) return undefined;
    const v = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  /** Moves past a NUL-terminated string; false when there is no NUL before the end. */
  cstring(): boolean {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) return false;
    this.offset = end + 1;
    return true;
  }
}
