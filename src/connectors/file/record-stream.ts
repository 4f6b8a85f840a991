import type { Readable, Transform } from 'node:stream';
import { parse as csvParser } from 'csv-parse';
import { parser as jsonParser } from 'stream-json';
import { pick } from 'stream-json/filters/pick.js';
import { streamArray } from 'stream-json/streamers/stream-array.js';
import { ConnectorError } from '../kit/classify-error';
import { chain } from '../kit/http/body-decoding';
import type { CsvOptions, FileFormat } from './file-settings';
import { ndjsonRecords } from './ndjson-records';

/** One record may not exceed this (a file without line breaks must not fill the memory). */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;

export interface RecordStreamOptions {
  format: FileFormat;
  csv: CsvOptions & { delimiter: string };
  recordsPath?: string;
  /**
   * Where the record just yielded sits, updated before each yield: its line (NDJSON, and CSV: the
   * line it ends on) or its index in the array (JSON). One object for the whole read, not one per record.
   */
  position?: RecordPosition;
}

export interface RecordPosition {
  key: 'line' | 'index';
  value: number;
}

/**
 * Streams the records of an (already decompressed) file: memory holds one record and the parsers'
 * buffers, whatever the size. CSV rows are keyed by header (values stay strings), JSON must be an
 * array (at `recordsPath`), NDJSON is one value per non-blank line.
 */
export function readRecords(input: Readable, options: RecordStreamOptions): AsyncIterable<unknown> {
  switch (options.format) {
    case 'ndjson':
      return ndjsonRecords(input, MAX_RECORD_BYTES, options.position);
    case 'json':
      return jsonRecords(input, options.recordsPath, options.position);
    case 'csv':
      return csvRecords(input, options.csv, options.position);
  }
}

async function* jsonRecords(
  input: Readable,
  recordsPath: string | undefined,
  position?: RecordPosition,
): AsyncGenerator<unknown> {
  if (position) position.key = 'index';
  // Packed tokens only: a value arrives whole, not also in pieces (less than half the tokens).
  const stages: Transform[] = [jsonParser.asStream({ streamValues: false }) as Transform];
  if (recordsPath) {
    const parts = recordsPath.split('.');
    // Exactly that path (a string filter would also match deeper paths that start with it).
    stages.push(
      pick.asStream({
        filter: (stack) => stack.length === parts.length && stack.every((k, i) => String(k) === parts[i]),
      }) as Transform,
    );
  }
  stages.push(streamArray.asStream() as Transform);
  const items = chain(input, stages);
  try {
    for await (const item of items as AsyncIterable<{ key: number; value: unknown }>) {
      if (position) position.value = item.key;
      yield item.value;
    }
  } catch (err) {
    if (!isParseError(err)) throw err;
    throw new ConnectorError(
      `not a readable JSON array${recordsPath ? ` at "${recordsPath}"` : ''}: ${messageOf(err)}`,
      'protocol',
    );
  } finally {
    items.destroy();
  }
}

async function* csvRecords(
  input: Readable,
  csv: CsvOptions & { delimiter: string },
  position?: RecordPosition,
): AsyncGenerator<unknown> {
  if (position) position.key = 'line';
  const parser = csvParser({
    info: true,
    delimiter: csv.delimiter,
    quote: csv.quote === '' ? false : (csv.quote ?? '"'),
    escape: csv.escape ?? '"',
    // A header row names the columns unless `columns` renames them; without one, `columns` does.
    columns: csv.columns ?? (csv.header ? true : false),
    from_line: csv.header && csv.columns ? 2 : 1,
    bom: true,
    skip_empty_lines: true,
    max_record_size: MAX_RECORD_BYTES,
  });
  const rows = chain(input, [parser]);
  try {
    for await (const { record: row, info } of rows as AsyncIterable<{
      record: unknown;
      info: { lines: number };
    }>) {
      if (position) position.value = info.lines;
      // No header and no names: key the values column_1, column_2... so a record is still an object.
      yield Array.isArray(row) ? Object.fromEntries(row.map((v, i) => [`column_${i + 1}`, v])) : row;
    }
  } catch (err) {
    if (!isParseError(err)) throw err;
    throw new ConnectorError(`not readable as CSV: ${messageOf(err)}`, 'protocol');
  } finally {
    rows.destroy();
  }
}

/** A parser's complaint about the content, as opposed to a read that failed (timeout, abort, I/O). */
function isParseError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string') return code.startsWith('CSV_');
  return (err as { name?: unknown })?.name !== 'AbortError';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
