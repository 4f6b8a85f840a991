import { pipeline, Readable, type Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { ByteCounter, DecompressionGuard, type ByteLimits } from '../byte-limits';
import { ConnectorError } from '../classify-error';

export type DecodeLimits = Pick<ByteLimits, 'decompressedMaxBytes' | 'maxCompressionRatio'>;

/**
 * Undoes a Content-Encoding (gzip, deflate, br, in the order they were applied). With `limits`,
 * the decoded bytes are bounded in total and relative to the bytes on the wire.
 */
export function decodeContentEncoding(
  body: Readable,
  encoding: string | string[] | undefined,
  limits?: DecodeLimits,
): Readable {
  const codings = String(encoding ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c && c !== 'identity')
    .reverse();
  if (!codings.length) return body;
  const decoders = codings.map((coding): Transform => {
    if (coding === 'gzip' || coding === 'x-gzip') return createGunzip();
    if (coding === 'deflate') return createInflate();
    if (coding === 'br') return createBrotliDecompress();
    body.destroy();
    throw new ConnectorError(`unsupported Content-Encoding "${coding}"`, 'protocol');
  });
  return chain(body, guarded(decoders, limits, `the response body (Content-Encoding ${codings.join(', ')})`));
}

/** `decoders` between a counter of their input and a guard on their output (none without limits). */
function guarded(decoders: Transform[], limits: DecodeLimits | undefined, what: string): Transform[] {
  if (!limits) return decoders;
  const wire = new ByteCounter();
  return [wire, ...decoders, new DecompressionGuard(limits, () => wire.bytes, what)];
}

/**
 * Gunzips a stream that starts with the gzip magic bytes and passes anything else through, so a
 * compressed file is read whatever its name or Content-Type says.
 */
export async function gunzipIfMagic(
  stream: Readable,
  limits?: DecodeLimits,
): Promise<{ stream: Readable; gzip: boolean }> {
  const { head, rest } = await peekBytes(stream, 2);
  const gzip = head[0] === 0x1f && head[1] === 0x8b;
  return { stream: gzip ? chain(rest, guarded([createGunzip()], limits, 'the gzipped file')) : rest, gzip };
}

/** Reads the first `n` bytes without consuming them: `rest` yields the whole stream again. */
export async function peekBytes(stream: Readable, n: number): Promise<{ head: Buffer; rest: Readable }> {
  const chunks: Buffer[] = [];
  let length = 0;
  while (length < n) {
    const chunk = stream.read() as Buffer | null;
    if (chunk !== null) {
      chunks.push(chunk);
      length += chunk.length;
      continue;
    }
    if (stream.readableEnded || stream.destroyed) break;
    await nextEvent(stream);
  }
  const head = Buffer.concat(chunks);
  if (stream.readableEnded || stream.destroyed) {
    // Nothing left to unshift into: replay what was read (a stream shorter than n, or an error).
    const failure = stream.errored;
    if (failure) throw failure;
    return { head, rest: Readable.from(head.length ? [head] : []) };
  }
  if (head.length) stream.unshift(head);
  return { head, rest: stream };
}

function nextEvent(stream: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      cleanup();
      resolve();
    };
    const fail = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      stream.off('readable', done).off('end', done).off('close', done).off('error', fail);
    };
    stream.on('readable', done).on('end', done).on('close', done).on('error', fail);
  });
}

/** Pipes `source` through `transforms`; an error anywhere destroys them all and surfaces at the end. */
export function chain(source: Readable, transforms: Transform[]): Readable {
  if (!transforms.length) return source;
  // The last stream is destroyed with the error, so whoever reads it sees the failure.
  return pipeline([source, ...transforms], () => undefined) as unknown as Readable;
}
