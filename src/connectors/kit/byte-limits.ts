import { Transform, type TransformCallback } from 'node:stream';
import { PermanentSyncError } from '../connector';

/**
 * What one sync may hold in memory, in bytes: a source that sends one enormous record, a batch of
 * large ones or a compression bomb must fail its run, not the worker process that runs every other
 * source too. Values come from config (RECORD_MAX_BYTES, BATCH_MAX_BYTES, DECOMPRESSED_MAX_BYTES,
 * MAX_COMPRESSION_RATIO) through the composition root; connectors never read config themselves.
 */
export interface ByteLimits {
  /** One record, as read from the source (a CSV row, an NDJSON line, a JSON array element). */
  recordMaxBytes: number;
  /** One landed batch (JSON text, about); a single record larger than this is still one batch. */
  batchMaxBytes: number;
  /** Bytes one body or file may decompress to (gzip, deflate, br). */
  decompressedMaxBytes: number;
  /** Decompressed bytes per compressed byte, checked once past RATIO_GRACE_BYTES. */
  maxCompressionRatio: number;
}

export const MIB = 1024 * 1024;

export const DEFAULT_BYTE_LIMITS: Readonly<ByteLimits> = {
  recordMaxBytes: 4 * MIB,
  batchMaxBytes: 8 * MIB,
  decompressedMaxBytes: 2048 * MIB,
  maxCompressionRatio: 100,
};

/** Decompressed bytes before the ratio is checked: a small body compresses extremely well honestly. */
export const RATIO_GRACE_BYTES = 8 * MIB;

/**
 * A source sent more than a byte limit allows. Permanent (code `too_large`): the same data would be
 * too large on every retry, and a retry would only spend the memory again.
 */
export class TooLargeError extends PermanentSyncError {
  constructor(message: string) {
    super(message, 'too_large');
    this.name = 'TooLargeError';
  }
}

export function formatBytes(n: number): string {
  if (n >= MIB && n % MIB === 0) return `${n / MIB} MiB`;
  if (n >= MIB) return `${(n / MIB).toFixed(1)} MiB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KiB`;
  return `${n} bytes`;
}

/** The error for one record over RECORD_MAX_BYTES; `where` says which (line 3, element 12). */
export function recordTooLarge(where: string, limit: number): TooLargeError {
  return new TooLargeError(
    `${where} is larger than the per-record limit of ${formatBytes(limit)} (RECORD_MAX_BYTES)`,
  );
}

/**
 * About the length of `value` as JSON text, without building it: a cheap walk for cutting batches
 * by bytes (exact enough: it counts characters, not UTF-8 bytes, and 8 for every number).
 */
export function approxJsonBytes(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return value.length + 2;
    case 'number':
      return 8;
    case 'boolean':
      return 5;
    case 'object': {
      if (value === null) return 4;
      let n = 2;
      if (Array.isArray(value)) {
        for (const item of value) n += approxJsonBytes(item) + 1;
        return n;
      }
      for (const key in value) n += key.length + 4 + approxJsonBytes((value as Record<string, unknown>)[key]);
      return n;
    }
    default:
      return 4;
  }
}

/**
 * Cuts `items` into consecutive pieces of at most `maxCount` items and about `maxBytes` bytes each
 * (a piece always takes at least one item, so one item larger than maxBytes is a piece of its own).
 */
export function splitByBytes<T>(
  items: readonly T[],
  maxCount: number,
  maxBytes: number,
  sizeOf: (item: T) => number = approxJsonBytes,
): T[][] {
  const pieces: T[][] = [];
  let piece: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (piece.length && (piece.length >= maxCount || bytes + size > maxBytes)) {
      pieces.push(piece);
      piece = [];
      bytes = 0;
    }
    piece.push(item);
    bytes += size;
  }
  if (piece.length) pieces.push(piece);
  return pieces;
}

/**
 * Collects records one by one into batches bounded by count and bytes: `add` returns a full batch
 * to yield when the next record would overflow it.
 */
export class ByteBatcher<T = unknown> {
  private records: T[] = [];
  private bytes = 0;

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {}

  /** Adds a record of about `size` bytes; returns the batch it closed, if any. */
  add(record: T, size: number): T[] | undefined {
    let full: T[] | undefined;
    if (this.records.length && this.bytes + size > this.maxBytes) full = this.take();
    this.records.push(record);
    this.bytes += size;
    if (!full && this.records.length >= this.maxCount) full = this.take();
    return full;
  }

  /** What is left at the end (undefined when nothing). */
  flush(): T[] | undefined {
    return this.records.length ? this.take() : undefined;
  }

  private take(): T[] {
    const out = this.records;
    this.records = [];
    this.bytes = 0;
    return out;
  }
}

/**
 * Counts what a decompressor writes against DECOMPRESSED_MAX_BYTES and, past RATIO_GRACE_BYTES,
 * against MAX_COMPRESSION_RATIO × the compressed bytes read (`compressed()`): a bomb fails after a
 * few MiB, not after it filled the memory.
 */
export class DecompressionGuard extends Transform {
  private out = 0;

  constructor(
    private readonly limits: Pick<ByteLimits, 'decompressedMaxBytes' | 'maxCompressionRatio'>,
    private readonly compressed: () => number,
    private readonly what: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.out += chunk.length;
    const { decompressedMaxBytes, maxCompressionRatio } = this.limits;
    if (this.out > decompressedMaxBytes)
      return done(
        new TooLargeError(
          `${this.what} decompresses to more than ${formatBytes(decompressedMaxBytes)} (DECOMPRESSED_MAX_BYTES)`,
        ),
      );
    const read = Math.max(1, this.compressed());
    if (this.out > RATIO_GRACE_BYTES && this.out / read > maxCompressionRatio)
      return done(
        new TooLargeError(
          `${this.what} decompresses more than ${maxCompressionRatio}:1 (${formatBytes(this.out)} from ${formatBytes(read)}; MAX_COMPRESSION_RATIO): refused as a compression bomb`,
        ),
      );
    done(null, chunk);
  }
}

/** A pass-through that counts the bytes flowing through it (the compressed side of a decoder). */
export class ByteCounter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    done(null, chunk);
  }
}
