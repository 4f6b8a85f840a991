import type { Readable, Transform } from 'node:stream';
import { recordTooLarge, TooLargeError } from '../kit/byte-limits';
import { ConnectorError } from '../kit/classify-error';
import { chain } from '../kit/http/body-decoding';
import type { CsvOptions, FileFormat } from './file-settings';
import { ndjsonRecords } from './ndjson-records';

export interface RecordStreamOptions {
  format: FileFormat;
  csv: CsvOptions & { delimiter: string };
  recordsPath?: string;
  /** One record may not exceed this, as read (a file without line breaks must not fill the memory). */
  recordMaxBytes: number;
  /** Set to about the size of each record just before it is yielded (for cutting batches by bytes). */
  sizes?: { last: number };
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
      return ndjsonRecords(input, options.recordMaxBytes, options.sizes, options.position);
    case 'json':
      return jsonRecords(input, options);
    case 'csv':
      return csvRecords(input, options);
  }
}

async function* jsonRecords(input: Readable, options: RecordStreamOptions): AsyncGenerator<unknown> {
  const { recordsPath, sizes, position } = options;
  if (position) position.key = 'index';
  // The parsers are imported on the first JSON (or CSV) file: only workers read files, and the
  // API process, which builds the file connector for its rules, would carry them for nothing.
  const [{ parser: jsonParser }, { pick }, { JsonRecordBudget }] = await Promise.all([
    import('stream-json'),
    import('stream-json/filters/pick.js'),
    import('./json-record-budget'),
  ]);
  const budget = new JsonRecordBudget(options.recordMaxBytes);
  // Packed tokens only: a value arrives whole, not also in pieces (less than half the tokens). The
  // budget counts the raw bytes too, so one giant string token cannot grow unseen inside the parser.
  const stages: Transform[] = [
    budget.rawCounter(),
    jsonParser.asStream({ streamValues: false }) as Transform,
  ];
  if (recordsPath) {
    const parts = recordsPath.split('.');
    // Exactly that path (a string filter would also match deeper paths that start with it).
    stages.push(
      pick.asStream({
        filter: (stack) => stack.length === parts.length && stack.every((k, i) => String(k) === parts[i]),
      }) as Transform,
    );
  }
  // Counts each element's tokens as it is assembled: over the limit, the read fails before the
  // huge object exists.
  stages.push(budget.arrayStreamer());
  const items = chain(input, stages);
  try {
    let index = 0;
    for await (const item of items as AsyncIterable<{ value: unknown; size: number }>) {
      if (sizes) sizes.last = item.size;
      if (position) position.value = index++;
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

async function* csvRecords(input: Readable, options: RecordStreamOptions): AsyncGenerator<unknown> {
  const { csv, sizes, position } = options;
  if (position) position.key = 'line';
  const { parse: csvParser } = await import('csv-parse');
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
    max_record_size: options.recordMaxBytes,
  });
  const rows = chain(input, [parser]);
  try {
    for await (const { record: row, info } of rows as AsyncIterable<{
      record: unknown;
      info: { lines: number };
    }>) {
      if (sizes) sizes.last = rowSize(row);
      if (position) position.value = info.lines;
      // No header and no names: key the values column_1, column_2... so a record is still an object.
      yield Array.isArray(row) ? Object.fromEntries(row.map((v, i) => [`column_${i + 1}`, v])) : row;
    }
  } catch (err) {
    if ((err as { code?: unknown })?.code === 'CSV_MAX_RECORD_SIZE')
      throw recordTooLarge(
        `CSV row at line ${(err as { lines?: number }).lines ?? '?'}`,
        options.recordMaxBytes,
      );
    if (!isParseError(err)) throw err;
    throw new ConnectorError(`not readable as CSV: ${messageOf(err)}`, 'protocol');
  } finally {
    rows.destroy();
  }
}

/** About the JSON size of a parsed CSV row (its values; keys repeat in every row alike). */
function rowSize(row: unknown): number {
  let n = 2;
  for (const value of Object.values(row as Record<string, string>)) n += value.length + 8;
  return n;
}

/** A parser's complaint about the content, as opposed to a read that failed (timeout, abort, I/O). */
function isParseError(err: unknown): boolean {
  if (err instanceof TooLargeError) return false;
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string') return code.startsWith('CSV_');
  return (err as { name?: unknown })?.name !== 'AbortError';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
