import { urlPeer } from '../kit/classify-error';
import {
  PermanentSyncError,
  type Connector,
  type ConnectorContext,
  type ConnectorSource,
  type SyncBatch,
  type TestStep,
} from '../connector';
import { DEFAULT_BYTE_LIMITS, splitByBytes, type ByteLimits } from '../kit/byte-limits';
import { HttpClient, parseJson, type HttpClientOptions, type HttpGetInit } from '../kit/http/http-client';
import { StepRunner } from '../kit/step-runner';
import {
  credentialHeaders,
  describeUrl,
  publicUrl,
  splitCredentials,
  type UrlCredentials,
} from '../kit/http/url-credentials';
import { extractRecords, fetchPages, firstPageUrl, nextPageUrl } from './api-pager';
import { apiMetadataSchema, readApiSettings, type ApiSettings } from './api-settings';
import { CursorWindow, DEFAULT_WINDOW_KEYS, fingerprint } from '../kit/cursor-window';
import {
  readWatermark,
  toApiState,
  watermarkOf,
  watermarkOrder,
  type Watermark,
} from './incremental-watermark';

export interface ApiConnectorOptions {
  http?: HttpClientOptions;
  /** Records per landed batch (a large page is split). */
  batchSize?: number;
  /** Batch and decompression bounds (config BATCH_MAX_BYTES, ...): a large page is split by bytes too. */
  limits?: ByteLimits;
  /** Most record fingerprints an incremental state keeps for its lookback (default 10,000). */
  maxWindowKeys?: number;
}

const SAMPLE_KEYS = 10;
const STEPS = ['configuration', 'resolve', 'connect', 'request', 'parse', 'read_sample'];

/**
 * HTTP JSON APIs, paginated (next_url, cursor, page). Records are the elements of the array at
 * `records_path`.
 *
 * State: only with `incremental` is anything stored (ApiState: the largest value of `field` landed,
 * the lookback start `from` and the fingerprints of the records landed at or above it), written
 * once, with the run's last batch; the next sync sends `from` as the `incremental.param` query
 * parameter and keeps the records at or above it that it has not landed before, so records sharing
 * the last value and records that appear late with an earlier value inside the lookback land once.
 * A retry of a run that failed mid-way therefore finds the state unmoved, the landing removes that
 * run's earlier records, and the run starts over from the old state: nothing lost, nothing twice,
 * whatever order the pages come in. Page links and cursors are not kept (they may expire). Without `incremental` a sync is a full
 * refresh.
 */
export class ApiConnector implements Connector {
  readonly type = 'api';
  readonly metadataSchema = apiMetadataSchema;
  private readonly batchSize: number;
  private readonly limits: ByteLimits;
  private readonly http: HttpClientOptions;

  constructor(private readonly options: ApiConnectorOptions = {}) {
    this.batchSize = options.batchSize ?? 1000;
    this.limits = options.limits ?? DEFAULT_BYTE_LIMITS;
    this.http = { decodeLimits: this.limits, ...options.http };
  }

  /** Without `incremental` every sync reads every page again. */
  fullRefresh(metadata: Record<string, unknown> | null): boolean {
    return metadata?.incremental === undefined;
  }

  checkConnectionString(value: string): string | undefined {
    try {
      splitCredentials(value);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  async test(source: ConnectorSource, ctx: ConnectorContext): Promise<TestStep[]> {
    const steps = new StepRunner(ctx, STEPS);
    const http = new HttpClient(ctx, this.http);
    try {
      const setup = await steps.run('configuration', async () => {
        const settings = readApiSettings(source);
        const creds = splitCredentials(source.connection_string);
        const init = requestInit(creds, settings);
        steps.target(urlPeer(creds.url));
        const auth =
          init.credentials && Object.keys(init.credentials.headers).length
            ? `, ${authName(settings, creds)} credentials`
            : ', no credentials';
        return {
          value: { settings, creds, init },
          message: `GET ${describeUrl(creds.url)}${auth}, pagination ${settings.pagination.type}${settings.incremental ? `, incremental on ${settings.incremental.field}` : ''}`,
        };
      });
      const target = await steps.run('resolve', async () => {
        const resolved = await http.resolve(setup!.creds.url);
        return {
          value: resolved,
          message: `${resolved.host} is ${resolved.address}, allowed by the outbound policy`,
        };
      });
      await steps.run('connect', async () => {
        await http.probe(setup!.creds.url, target!);
        const tls = setup!.creds.url.protocol === 'https:' ? ' (TLS verified)' : '';
        return {
          value: true,
          message: `connected to ${target!.address} port ${setup!.creds.url.port || (tls ? 443 : 80)}${tls}`,
        };
      });
      const page = await steps.run('request', async () => {
        const res = await http.getText(firstPageUrl(setup!.creds.url, setup!.settings, undefined), {
          ...setup!.init,
          retry: false,
        });
        return { value: res, message: `HTTP ${res.status}, ${res.bytes} bytes` };
      });
      const records = await steps.run('parse', async () => {
        const body = parseJson(page!.text, page!.url);
        const found = extractRecords(body, setup!.settings.recordsPath);
        if (!found)
          throw new PermanentSyncError(
            `records_path "${setup!.settings.recordsPath}" was not found in the response`,
            'invalid_config',
          );
        const next = nextPageUrl(
          setup!.settings,
          body,
          page!.url,
          setup!.creds.url,
          undefined,
          1,
          found.length,
        );
        const where = setup!.settings.recordsPath ? `at "${setup!.settings.recordsPath}"` : 'as the body';
        const more =
          setup!.settings.pagination.type === 'none'
            ? ''
            : next && found.length
              ? ', a next page follows'
              : ', no next page';
        return { value: found, message: `JSON with an array of ${found.length} records ${where}${more}` };
      });
      await steps.run('read_sample', async () => {
        if (!records!.length)
          return { value: true, status: 'warning', message: 'the first page has no records' };
        return { value: true, message: describeSample(records![0]) };
      });
      return steps.finish();
    } finally {
      await http.close();
    }
  }

  async *sync(source: ConnectorSource, state: unknown, ctx: ConnectorContext): AsyncIterable<SyncBatch> {
    const settings = readApiSettings(source);
    const creds = splitCredentials(source.connection_string);
    const init = requestInit(creds, settings);
    const field = settings.incremental?.field;
    const window = field
      ? new CursorWindow<Watermark>(
          watermarkOrder(settings.incremental?.lookback),
          this.options.maxWindowKeys ?? DEFAULT_WINDOW_KEYS,
          readWatermark(state, field),
        )
      : undefined;
    const bound = window?.readFrom;
    const since = bound && ('from' in bound ? bound.from : bound.after);
    const http = new HttpClient(ctx, this.http);
    try {
      for await (const page of fetchPages(http, creds.url, settings, init, since)) {
        let records = page.records;
        if (field && window)
          records = records.filter((record) => {
            const value = watermarkOf(record, field);
            // A record without a value cannot be placed: it lands every time rather than never.
            return value === undefined || window.admit(value, () => fingerprint(record));
          });
        const provenance = { url: publicUrl(page.url), page: page.number };
        for (const piece of splitByBytes(records, this.batchSize, this.limits.batchMaxBytes))
          yield { records: piece, provenance };
      }
    } finally {
      await http.close();
    }
    // Written only once everything landed: see the class comment for why not per page.
    const next = window?.state(true);
    if (field && next) yield { records: [], state: toApiState(field, next) };
  }
}

function requestInit(creds: UrlCredentials, settings: ApiSettings): HttpGetInit {
  return { credentials: { origin: creds.url.origin, headers: credentialHeaders(creds, settings.auth) } };
}

function authName(settings: ApiSettings, creds: UrlCredentials): string {
  if (settings.auth?.type === 'header') return `${settings.auth.name} header`;
  return settings.auth?.type ?? (creds.username && creds.password ? 'basic' : 'bearer');
}

function describeSample(record: unknown): string {
  if (record === null || typeof record !== 'object' || Array.isArray(record))
    return `first record is ${record === null ? 'null' : Array.isArray(record) ? 'an array' : `a ${typeof record}`}`;
  const keys = Object.keys(record);
  const shown = keys.slice(0, SAMPLE_KEYS).join(', ');
  return `first record has ${keys.length} fields: ${shown}${keys.length > SAMPLE_KEYS ? ', ...' : ''}`;
}
