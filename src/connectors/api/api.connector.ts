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
  splitCredentials,
  type UrlCredentials,
} from '../kit/http/url-credentials';
import { extractRecords, fetchPages, firstPageUrl, nextPageUrl } from './api-pager';
import { apiMetadataSchema, readApiSettings, type ApiSettings } from './api-settings';
import { keepNewer, readWatermark, type ApiState } from './incremental-watermark';

export interface ApiConnectorOptions {
  http?: HttpClientOptions;
  /** Records per landed batch (a large page is split). */
  batchSize?: number;
  /** Batch and decompression bounds (config BATCH_MAX_BYTES, ...): a large page is split by bytes too. */
  limits?: ByteLimits;
}

const SAMPLE_KEYS = 10;
const STEPS = ['configuration', 'resolve', 'connect', 'request', 'parse', 'read_sample'];

/**
 * HTTP JSON APIs, paginated (next_url, cursor, page). Records are the elements of the array at
 * `records_path`.
 *
 * State: only with `incremental` is anything stored, `{field, watermark}` (the largest value of
 * `field` landed), written once, with the run's last batch; the next sync sends it as the
 * `incremental.param` query parameter and keeps only records above it. A retry of a run that failed
 * mid-way therefore finds the state unmoved, the landing removes that run's earlier records, and the
 * run starts over from the old watermark: nothing lost, nothing twice, whatever order the pages come
 * in. Page links and cursors are not kept (they may expire). Without `incremental` a sync is a full
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
    const since = field ? readWatermark(state, field) : undefined;
    let max = since;
    const http = new HttpClient(ctx, this.http);
    try {
      for await (const page of fetchPages(http, creds.url, settings, init, since)) {
        let records = page.records;
        if (field) ({ records, max } = keepNewer(records, field, since, max));
        for (const piece of splitByBytes(records, this.batchSize, this.limits.batchMaxBytes))
          yield { records: piece };
      }
    } finally {
      await http.close();
    }
    // Written only once everything landed: see the class comment for why not per page.
    if (field && max !== undefined) {
      const next: ApiState = { field, watermark: max };
      yield { records: [], state: next };
    }
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
