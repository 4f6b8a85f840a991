import type { Readable } from 'node:stream';
import { recordTooLarge } from '../kit/byte-limits';
import { ConnectorError } from '../kit/classify-error';
import type { RecordPosition } from './record-stream';

const NEWLINE = 0x0a;

/**
 * Splits a byte stream into lines and parses each non-blank line as JSON. Lines are cut as bytes
 * (a newline byte never occurs inside a UTF-8 character) and decoded one by one; a line longer than
 * `maxLineBytes` fails rather than growing without end.
 */
export async function* ndjsonRecords(
  input: Readable,
  maxLineBytes: number,
  sizes?: { last: number },
  position?: RecordPosition,
): AsyncGenerator<unknown> {
  if (position) position.key = 'line';
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let lineNumber = 0;
  const parse = (line: Buffer): unknown => {
    lineNumber += 1;
    if (line.length > maxLineBytes) throw recordTooLarge(`line ${lineNumber}`, maxLineBytes);
    if (sizes) sizes.last = line.length;
    if (position) position.value = lineNumber;
    const text = line.toString('utf8').trim();
    if (!text) return SKIP;
    try {
      return JSON.parse(text);
    } catch {
      throw new ConnectorError(`line ${lineNumber} is not valid JSON`, 'protocol');
    }
  };
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      let start = 0;
      for (let nl = chunk.indexOf(NEWLINE, start); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
        const piece = chunk.subarray(start, nl);
        const line = pending.length ? Buffer.concat([...pending, piece]) : piece;
        pending = [];
        pendingBytes = 0;
        start = nl + 1;
        const record = parse(line);
        if (record !== SKIP) yield record;
      }
      if (start < chunk.length) {
        pending.push(chunk.subarray(start));
        pendingBytes += chunk.length - start;
        if (pendingBytes > maxLineBytes) throw recordTooLarge(`line ${lineNumber + 1}`, maxLineBytes);
      }
    }
    if (pending.length) {
      const record = parse(Buffer.concat(pending));
      if (record !== SKIP) yield record;
    }
  } finally {
    input.destroy();
  }
}

const SKIP = Symbol('blank line');
