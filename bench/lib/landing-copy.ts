import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { FIELD_SEPARATOR, SOURCE_TABLE, VERBATIM } from './landing-data';

const NEWLINE = 0x0a;

const copyIn = (table = 'raw_records') =>
  copyFrom(`COPY ${table} (source_id, run_id, payload) FROM STDIN ${VERBATIM}`);

/**
 * Puts `prefix` before every line: NDJSON lines become `source_id␂run_id␂payload` rows of COPY.
 * Byte work only (no JSON parsing), one concat per chunk.
 */
class LinePrefixer extends Transform {
  private rest: Buffer | undefined;

  constructor(private readonly prefix: Buffer) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const data = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    const parts: Buffer[] = [];
    let start = 0;
    for (let nl = data.indexOf(NEWLINE, start); nl !== -1; nl = data.indexOf(NEWLINE, start)) {
      if (nl > start) parts.push(this.prefix, data.subarray(start, nl + 1));
      start = nl + 1;
    }
    this.rest = start < data.length ? data.subarray(start) : undefined;
    done(null, parts.length ? Buffer.concat(parts) : undefined);
  }

  override _flush(done: TransformCallback): void {
    done(null, this.rest ? Buffer.concat([this.prefix, this.rest, Buffer.from('\n')]) : undefined);
  }
}

/**
 * Baseline for a file source: the NDJSON file streamed into `COPY raw_records (source_id, run_id,
 * payload) FROM STDIN` on `bench` (or into `table`), each line prefixed with the ids. Returns the
 * rows COPY reported.
 */
export async function copyFileIn(
  bench: pg.Client,
  file: string,
  sourceId: string,
  runId: string,
  table = 'raw_records',
) {
  const prefix = Buffer.from(`${sourceId}${FIELD_SEPARATOR}${runId}${FIELD_SEPARATOR}`);
  const sink = bench.query(copyIn(table));
  await pipeline(createReadStream(file, { highWaterMark: 256 * 1024 }), new LinePrefixer(prefix), sink);
  return sink.rowCount;
}

/**
 * Baseline for a database source: `COPY (SELECT source_id, run_id, row_to_json(t) FROM orders t
 * ORDER BY id) TO STDOUT` on the source database piped, as it streams, into `COPY raw_records
 * (source_id, run_id, payload) FROM STDIN` on `bench`. Rows become JSON inside Postgres.
 */
export async function copyTableIn(source: pg.Client, bench: pg.Client, sourceId: string, runId: string) {
  // The ids are written into the statement (COPY takes no parameters): uuids only.
  for (const id of [sourceId, runId])
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id))
      throw new Error(`not a uuid: ${id}`);
  await source.query("SET TIME ZONE 'UTC'");
  const out = source.query(
    copyTo(
      `COPY (SELECT '${sourceId}'::uuid, '${runId}'::uuid, row_to_json(t) FROM ${SOURCE_TABLE} t ` +
        `ORDER BY id) TO STDOUT ${VERBATIM}`,
    ),
  );
  const sink = bench.query(copyIn());
  await pipeline(out, sink);
  return sink.rowCount;
}
