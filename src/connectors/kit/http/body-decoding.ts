import { pipeline, Readable, type Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { ConnectorError } from '../classify-error';

/** Undoes a Content-Encoding (gzip, deflate, br, in the order they were applied). */
export function decodeContentEncoding(body: Readable, encoding: string | string[] | undefined): Readable {
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
  return chain(body, decoders);
}

/**
 * Gunzips a stream that starts with the gzip magic bytes and passes anything else through, so a
 * compressed file is read whatever its name or Content-Type says.
 */
export async function gunzipIfMagic(stream: Readable): Promise<{ stream: Readable; gzip: boolean }> {
  const { head, rest } = await peekBytes(stream, 2);
  const gzip = head[0] === 0x1f && head[1] === 0x8b;
  return { stream: gzip ? chain(rest, [createGunzip()]) : rest, gzip };
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
