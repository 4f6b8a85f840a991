import { Transform, type TransformCallback } from 'node:stream';
import { streamArray } from 'stream-json/streamers/stream-array.js';
import { MIB, recordTooLarge } from '../kit/byte-limits';

interface Token {
  name: string;
  value?: unknown;
}

/** What stream-chain functions return for "nothing to emit". */
const NONE = Symbol.for('object-stream.none');

/**
 * Room for what sits in the stream buffers between the raw counter and the streamer: the raw count
 * since the last complete element may include that much of the elements after it.
 */
const RAW_SLACK_BYTES = MIB;

/**
 * Tokens between turns of the event loop: the parser hands over a chunk's tokens in one go, and
 * tens of thousands of them (a record with millions of keys) would keep /healthz and every other
 * sync waiting.
 */
const TOKENS_PER_TURN = 2048;

/**
 * Bounds each element of a streamed JSON array by RECORD_MAX_BYTES, twice over:
 * - `arrayStreamer()` assembles the elements (as stream-json's streamArray) and counts each token's
 *   bytes on the way in, so an element with 30 million keys fails after a few MiB of them, before
 *   the object holds them all;
 * - `rawCounter()` (before the parser) counts input bytes since the last complete element, so one
 *   giant string, which the parser gathers whole before it emits a token, fails as well.
 */
export class JsonRecordBudget {
  private raw = 0;
  private rawAtLastElement = 0;
  private elements = 0;

  constructor(private readonly maxBytes: number) {}

  rawCounter(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) => {
        this.raw += chunk.length;
        if (this.raw - this.rawAtLastElement > this.maxBytes + RAW_SLACK_BYTES) return done(this.tooLarge());
        done(null, chunk);
      },
    });
  }

  /**
   * stream-json's streamArray (top level is an array) with the count: emits each element as
   * `{ value, size }` (size: about its JSON bytes), since the stream runs ahead of its reader.
   */
  arrayStreamer(): Transform {
    const assemble = streamArray() as unknown as (token: Token) => unknown;
    let depth = 0;
    let size = 0;
    let tokens = 0;
    const step = (token: Token, done: TransformCallback): void => {
      size += tokenBytes(token);
      if (size > this.maxBytes) return done(this.tooLarge());
      if (token.name === 'startObject' || token.name === 'startArray') depth += 1;
      else if (token.name === 'endObject' || token.name === 'endArray') depth -= 1;
      let out: unknown;
      try {
        out = assemble(token);
      } catch (err) {
        return done(err as Error);
      }
      // Back at the array's own level: an element is complete (or the array just opened).
      if (depth <= 1) {
        if (out !== NONE) {
          this.elements += 1;
          this.rawAtLastElement = this.raw;
          const item = { value: (out as { value: unknown }).value, size };
          // Before done(): it may run the next token's step at once.
          size = 0;
          return done(null, item);
        }
        size = 0;
      }
      done();
    };
    return new Transform({
      objectMode: true,
      transform: (token: Token, _enc: BufferEncoding, done: TransformCallback) => {
        if (++tokens % TOKENS_PER_TURN === 0) setImmediate(() => step(token, done));
        else step(token, done);
      },
    });
  }

  private tooLarge() {
    return recordTooLarge(`JSON array element ${this.elements + 1}`, this.maxBytes);
  }
}

function tokenBytes(token: Token): number {
  switch (token.name) {
    case 'keyValue':
      return (token.value as string).length + 4;
    case 'stringValue':
      return (token.value as string).length + 3;
    case 'numberValue':
      return (token.value as string).length + 1;
    default:
      return 5;
  }
}
