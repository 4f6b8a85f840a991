import { urlPeer } from '../kit/classify-error';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import {
  PermanentSyncError,
  type Connector,
  type ConnectorContext,
  type ConnectorSource,
  type Provenance,
  type SyncBatch,
  type TestStep,
} from '../connector';
import { gunzipIfMagic } from '../kit/http/body-decoding';
import { HttpClient, type HttpClientOptions } from '../kit/http/http-client';
import { toHttpSyncError } from '../kit/http/http-status-error';
import { StepRunner } from '../kit/step-runner';
import { credentialHeaders, describeUrl, type UrlCredentials } from '../kit/http/url-credentials';
import {
  csvDelimiter,
  detectFormat,
  fileMetadataSchema,
  readFileSettings,
  readLocation,
  type FileFormat,
  type FileSettings,
} from './file-settings';
import { isBelowRoots, locateLocalFile, openLocalFile } from './local-file';
import { readRecords, type RecordPosition } from './record-stream';
import { abortError } from '../kit/deadline';
import { ByteBatcher, DEFAULT_BYTE_LIMITS, type ByteLimits } from '../kit/byte-limits';

export interface FileConnectorOptions {
  http?: HttpClientOptions;
  /** Records per landed batch. */
  batchSize?: number;
  /** Record, batch and decompression bounds (config RECORD_MAX_BYTES, ...). */
  limits?: ByteLimits;
}

/** An open file, local or downloaded: its bytes (still possibly gzipped) and what names its format. */
interface OpenedSource {
  stream: Readable;
  name: string;
  contentType?: string;
  close(): Promise<void>;
}

const SAMPLE_SIZE = 20;
const LOCAL_STEPS = ['configuration', 'locate', 'open', 'format', 'read_sample'];
const URL_STEPS = ['configuration', 'resolve', 'connect', 'request', 'format', 'read_sample'];

/**
 * CSV, JSON (an array) and NDJSON files, plain or gzipped, from a local path below FILE_ROOTS or
 * an http(s) URL. Parsed as a stream: memory stays flat however large the file.
 *
 * State: none. Every sync is a full refresh (a file has no cursor to resume from) and its batches carry no state, so a
 * retry of a failed attempt finds the state unmoved and the landing removes what that attempt
 * landed before reading the file again from the start: no record twice.
 */
export class FileConnector implements Connector {
  readonly type = 'file';
  readonly metadataSchema = fileMetadataSchema;
  private readonly batchSize: number;
  private readonly limits: ByteLimits;
  private readonly http: HttpClientOptions;

  /** `fileRoots`: directories local files may be read below (config FILE_ROOTS); none means no local file. */
  constructor(
    private readonly fileRoots: string[],
    private readonly options: FileConnectorOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 1000;
    this.limits = options.limits ?? DEFAULT_BYTE_LIMITS;
    this.http = { decodeLimits: this.limits, ...options.http };
  }

  /** A file is read whole on every sync. */
  fullRefresh(): boolean {
    return true;
  }

  /** The form, and for a local file that it is below FILE_ROOTS (as written: links are followed when it is read). */
  checkConnectionString(value: string): string | undefined {
    try {
      const location = readLocation(value);
      if (location.kind === 'url') return undefined;
      if (!this.fileRoots.length)
        return 'no local file may be read: FILE_ROOTS is not set on this server (an http(s) URL works)';
      if (!isBelowRoots(location.path, this.fileRoots))
        return `a local file must be below FILE_ROOTS (${this.fileRoots.join(', ')})`;
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  async test(source: ConnectorSource, ctx: ConnectorContext): Promise<TestStep[]> {
    const steps = new StepRunner(ctx, LOCAL_STEPS);
    const http = new HttpClient(ctx, this.http);
    let opened: OpenedSource | undefined;
    try {
      const settings = await steps.run('configuration', async () => {
        const s = readFileSettings(source);
        const where =
          s.location.kind === 'local'
            ? `local file ${basename(s.location.path)}`
            : `GET ${describeUrl(s.location.creds.url)}`;
        return { value: s, message: `${where}, format ${s.format ?? 'from the file name'}` };
      });
      if (settings?.location.kind === 'local') {
        const path = settings.location.path;
        await steps.run('locate', async () => {
          const found = await locateLocalFile(path, this.fileRoots);
          return { value: found, message: `${found.name} exists below FILE_ROOTS (${found.size} bytes)` };
        });
        opened = await steps.run('open', async () => {
          const file = await this.openLocal(path);
          return { value: file, message: `${file.name} opened for reading` };
        });
      } else if (settings) {
        steps.replan(URL_STEPS);
        const creds = (settings.location as { creds: UrlCredentials }).creds;
        steps.target(urlPeer(creds.url));
        const target = await steps.run('resolve', async () => {
          const resolved = await http.resolve(creds.url);
          return {
            value: resolved,
            message: `${resolved.host} is ${resolved.address}, allowed by the outbound policy`,
          };
        });
        await steps.run('connect', async () => {
          await http.probe(creds.url, target!);
          return {
            value: true,
            message: `connected to ${target!.address}${creds.url.protocol === 'https:' ? ' (TLS verified)' : ''}`,
          };
        });
        opened = await steps.run('request', async () => {
          const file = await this.openUrl(http, creds, false);
          return { value: file, message: `HTTP 200${file.contentType ? `, ${file.contentType}` : ''}` };
        });
      }
      const parsing = await steps.run('format', async () => {
        const { stream, gzip } = await gunzipIfMagic(opened!.stream, this.limits);
        const format = this.formatOf(settings!, opened!);
        return {
          value: { stream, format },
          message: `${format}${gzip ? ', gzip-compressed' : ''}${format === 'csv' ? `, delimiter ${JSON.stringify(csvDelimiter(settings!, opened!.name))}` : ''}`,
        };
      });
      await steps.run('read_sample', async (signal) => {
        const sample: unknown[] = [];
        const stop = () => parsing!.stream.destroy(signal.reason as Error);
        signal.addEventListener('abort', stop, { once: true });
        try {
          for await (const record of readRecords(
            parsing!.stream,
            this.recordOptions(settings!, opened!.name, parsing!.format),
          )) {
            sample.push(record);
            if (sample.length >= SAMPLE_SIZE) break;
          }
        } finally {
          signal.removeEventListener('abort', stop);
        }
        if (!sample.length) return { value: true, status: 'warning', message: 'the file has no records' };
        return { value: true, message: `read ${sample.length} records; ${describeRecord(sample[0])}` };
      });
      return steps.finish();
    } finally {
      await opened?.close();
      await http.close();
    }
  }

  async *sync(source: ConnectorSource, _state: unknown, ctx: ConnectorContext): AsyncIterable<SyncBatch> {
    const settings = readFileSettings(source);
    const http = new HttpClient(ctx, this.http);
    let opened: OpenedSource | undefined;
    const stop = () => opened?.stream.destroy(abortError(ctx.signal));
    ctx.signal.addEventListener('abort', stop, { once: true });
    try {
      opened =
        settings.location.kind === 'local'
          ? await this.openLocal(settings.location.path)
          : await this.openUrl(http, settings.location.creds, true);
      const { stream } = await gunzipIfMagic(opened.stream, this.limits);
      const sizes = { last: 0 };
      const position: RecordPosition = { key: 'line', value: 0 };
      const records = readRecords(stream, {
        ...this.recordOptions(settings, opened.name, this.formatOf(settings, opened)),
        sizes,
        position,
      });
      // Provenance: the file (a URL without credentials or query) and each record's line or index.
      const { location } = settings;
      const provenance: Provenance =
        location.kind === 'local' ? { file: location.path } : { url: describeUrl(location.creds.url) };
      // Records and their places are batched together, bounded by count and bytes.
      const batcher = new ByteBatcher<[unknown, number]>(this.batchSize, this.limits.batchMaxBytes);
      const emit = (full: [unknown, number][]): SyncBatch => ({
        records: full.map(([record]) => record),
        provenance,
        recordProvenance: { [position.key]: full.map(([, place]) => place) },
      });
      for await (const record of records) {
        const full = batcher.add([record, position.value], sizes.last);
        if (full) {
          if (ctx.signal.aborted) throw abortError(ctx.signal);
          yield emit(full);
        }
      }
      if (ctx.signal.aborted) throw abortError(ctx.signal);
      const rest = batcher.flush();
      if (rest) yield emit(rest);
    } catch (err) {
      throw toHttpSyncError(
        err,
        `read ${opened?.name ?? 'the file'}`,
        settings.location.kind === 'url' ? settings.location.creds.url : undefined,
      );
    } finally {
      ctx.signal.removeEventListener('abort', stop);
      await opened?.close();
      await http.close();
    }
  }

  private async openLocal(path: string): Promise<OpenedSource> {
    const file = await openLocalFile(path, this.fileRoots);
    const stream = file.stream();
    return {
      stream,
      name: file.name,
      close: async () => {
        stream.destroy();
        await file.handle.close().catch(() => undefined);
      },
    };
  }

  private async openUrl(http: HttpClient, creds: UrlCredentials, retry: boolean): Promise<OpenedSource> {
    const res = await http.get(creds.url, {
      credentials: { origin: creds.url.origin, headers: credentialHeaders(creds) },
      retry,
    });
    const contentType = res.headers['content-type'];
    return {
      stream: res.body,
      name: basename(res.url.pathname) || basename(creds.url.pathname),
      contentType: Array.isArray(contentType) ? contentType[0] : contentType,
      close: async () => {
        res.body.destroy();
      },
    };
  }

  private formatOf(settings: FileSettings, opened: OpenedSource): FileFormat {
    const format = detectFormat(settings, opened.name, opened.contentType);
    if (!format)
      throw new PermanentSyncError(
        `cannot tell the format of ${opened.name || 'the file'}: set metadata.format to csv, json or ndjson`,
        'invalid_config',
      );
    return format;
  }

  private recordOptions(settings: FileSettings, name: string, format: FileFormat) {
    return {
      format,
      csv: { ...settings.csv, delimiter: csvDelimiter(settings, name) },
      recordsPath: settings.recordsPath,
      recordMaxBytes: this.limits.recordMaxBytes,
    };
  }
}

function describeRecord(record: unknown): string {
  if (record === null || typeof record !== 'object' || Array.isArray(record))
    return `the first is ${record === null ? 'null' : Array.isArray(record) ? 'an array' : `a ${typeof record}`}`;
  const keys = Object.keys(record);
  return `the first has ${keys.length} fields: ${keys.slice(0, 10).join(', ')}${keys.length > 10 ? ', ...' : ''}`;
}
