import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './schema';

export type { components, paths };
export type Schemas = components['schemas'];
export type Source = Schemas['RawDataSource'];
export type SourceCreate = Schemas['RawDataSourceCreate'];
export type SourceUpdate = Schemas['RawDataSourceUpdate'];
export type SyncRun = Schemas['SyncRun'];
export type Job = Schemas['Job'];
export type TestResult = Schemas['TestResult'];
export type ApiKey = Schemas['ApiKey'];
export type ApiKeyCreated = Schemas['ApiKeyCreated'];
export type SluiceEvent = Schemas['Event'];
export type Problem = Schemas['Problem'];
export type ProblemFieldError = NonNullable<Problem['errors']>[number];

/**
 * An answer of the API that is not a success, from its problem+json body: `status`, `title`,
 * `detail`, `type` and, for invalid input, `errors` naming each field.
 */
export class SluiceApiError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string | undefined;
  readonly type: string;
  readonly errors: ProblemFieldError[];
  readonly requestId: string | undefined;
  /** The whole problem body (some problems carry members of their own, e.g. a 409's counts). */
  readonly problem: Record<string, unknown>;

  constructor(status: number, body: unknown, requestId?: string | null) {
    const problem: Record<string, unknown> =
      body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
    const title = typeof problem.title === 'string' ? problem.title : `HTTP ${status}`;
    const detail = typeof problem.detail === 'string' ? problem.detail : undefined;
    super(detail ? `${title}: ${detail}` : title);
    this.name = 'SluiceApiError';
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.type = typeof problem.type === 'string' ? problem.type : 'about:blank';
    this.errors = Array.isArray(problem.errors) ? (problem.errors as ProblemFieldError[]) : [];
    this.requestId = requestId ?? undefined;
    this.problem = problem;
  }
}

/** The API could not be reached (refused, reset, DNS, timeout): no HTTP answer at all. */
export class SluiceConnectionError extends Error {
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    super(`cannot reach ${url}: ${(cause as Error)?.cause ? String((cause as Error).cause) : String(cause)}`);
    this.name = 'SluiceConnectionError';
  }
}

/** The server ended an event stream it could not go on with; reconnect with the last event's id. */
export class SluiceStreamError extends Error {
  constructor(message = 'event stream interrupted') {
    super(message);
    this.name = 'SluiceStreamError';
  }
}

export interface SluiceClientOptions {
  /** The API's origin, e.g. http://localhost:3000 (a trailing slash is fine). */
  baseUrl: string;
  /** An API key (slc_...), sent as `Authorization: Bearer`. */
  token?: string;
  /** Another fetch (tests, proxies). */
  fetch?: typeof globalThis.fetch;
}

/** Everything an openapi-fetch call answers; `unwrap` turns it into the data or a thrown error. */
interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

export interface Page<T> {
  data: T[];
  pagination: Schemas['Pagination'];
}

/**
 * A thin typed wrapper over openapi-fetch: every method answers the response body typed by the
 * OpenAPI document or throws `SluiceApiError` (an HTTP error) / `SluiceConnectionError` (no answer).
 * `raw` is the openapi-fetch client itself, for any operation without a method here.
 */
export class SluiceClient {
  readonly raw: Client<paths>;
  readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly fetchImpl: typeof globalThis.fetch;

  constructor(options: SluiceClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.raw = createClient<paths>({
      baseUrl: this.baseUrl,
      headers: this.authHeaders(),
      fetch: (request: Request) => this.send(request),
    });
  }

  private authHeaders(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  private async send(request: Request): Promise<Response> {
    try {
      return await this.fetchImpl(request);
    } catch (err) {
      if ((err as Error)?.name === 'AbortError') throw err;
      throw new SluiceConnectionError(this.baseUrl, err);
    }
  }

  /** The data of a success; a `SluiceApiError` built from the problem body otherwise. */
  async unwrap<T>(call: Promise<FetchResult<T>>): Promise<T> {
    const { data, error, response } = await call;
    if (!response.ok || error !== undefined)
      throw new SluiceApiError(response.status, error, response.headers.get('x-request-id'));
    return data as T;
  }

  /** Every item of a paged list (limit/offset), page after page, up to `max` items. */
  async *paginate<T>(
    page: (query: { limit: number; offset: number }) => Promise<Page<T>>,
    { pageSize = 100, max = Infinity }: { pageSize?: number; max?: number } = {},
  ): AsyncGenerator<T> {
    let offset = 0;
    let yielded = 0;
    for (;;) {
      const { data, pagination } = await page({ limit: pageSize, offset });
      for (const item of data) {
        if (yielded >= max) return;
        yield item;
        yielded++;
      }
      offset += data.length;
      if (data.length === 0 || offset >= pagination.total) return;
    }
  }

  // Sources.
  listSources(query: NonNullable<paths['/raw-data-sources']['get']['parameters']['query']> = {}) {
    return this.unwrap(this.raw.GET('/raw-data-sources', { params: { query } }));
  }
  getSource(id: string) {
    return this.unwrap(this.raw.GET('/raw-data-sources/{id}', { params: { path: { id } } }));
  }
  createSource(body: SourceCreate) {
    return this.unwrap(this.raw.POST('/raw-data-sources', { body }));
  }
  updateSource(id: string, body: SourceUpdate) {
    return this.unwrap(this.raw.PUT('/raw-data-sources/{id}', { params: { path: { id } }, body }));
  }
  async deleteSource(id: string, options: { purge?: boolean } = {}): Promise<void> {
    const query = options.purge ? { purge: 'true' as const } : {};
    await this.unwrap(this.raw.DELETE('/raw-data-sources/{id}', { params: { path: { id }, query } }));
  }

  // Runs and jobs.
  sync(id: string) {
    return this.unwrap(this.raw.POST('/raw-data-sources/{id}/sync', { params: { path: { id } } }));
  }
  test(id: string) {
    return this.unwrap(this.raw.POST('/raw-data-sources/{id}/test', { params: { path: { id } } }));
  }
  job(id: string) {
    return this.unwrap(this.raw.GET('/jobs/{id}', { params: { path: { id } } }));
  }
  runs(id: string, query: { limit?: number; offset?: number } = {}) {
    return this.unwrap(this.raw.GET('/raw-data-sources/{id}/runs', { params: { path: { id }, query } }));
  }

  // Keys (admin scope).
  listKeys(query: { limit?: number; offset?: number } = {}) {
    return this.unwrap(this.raw.GET('/api-keys', { params: { query } }));
  }
  createKey(body: Schemas['ApiKeyCreate']) {
    return this.unwrap(this.raw.POST('/api-keys', { body }));
  }
  async revokeKey(id: string): Promise<void> {
    await this.unwrap(this.raw.DELETE('/api-keys/{id}', { params: { path: { id } } }));
  }

  /**
   * Every landed record of a source as a byte stream, NDJSON or CSV, read from one snapshot on the
   * server and streamed: nothing is held in memory here.
   */
  async exportRecords(
    id: string,
    format: 'ndjson' | 'csv',
    query: { run_id?: string; since?: string; view?: 'all' | 'current' } = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const accept = format === 'csv' ? 'text/csv' : 'application/x-ndjson';
    const response = await this.request(`/raw-data-sources/${encodeURIComponent(id)}/records`, query, {
      accept,
    });
    if (!response.body) throw new SluiceApiError(response.status, { title: 'Empty export body' });
    return response.body;
  }

  /**
   * The event stream (Server-Sent Events) as parsed events, until `signal` aborts or the server
   * ends it. `lastEventId` resumes after an event already seen.
   */
  async *events(
    options: { sourceId?: string; type?: string; lastEventId?: string; signal?: AbortSignal } = {},
  ): AsyncGenerator<SluiceEvent> {
    const query: Record<string, string> = {};
    if (options.sourceId) query.source_id = options.sourceId;
    if (options.type) query.type = options.type;
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (options.lastEventId) headers['last-event-id'] = options.lastEventId;
    const response = await this.request('/events', query, headers, options.signal);
    if (!response.body) return;
    yield* parseEventStream(response.body);
  }

  /** A GET outside openapi-fetch (streamed bodies), with the same auth and the same errors. */
  private async request(
    path: string,
    query: Record<string, string | undefined>,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<Response> {
    const url = new URL(`${this.baseUrl}${path}`);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
    const response = await this.send(
      new Request(url, { headers: { ...this.authHeaders(), ...headers }, signal }),
    );
    if (!response.ok) {
      const text = await response.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = { title: text || `HTTP ${response.status}` };
      }
      throw new SluiceApiError(response.status, body, response.headers.get('x-request-id'));
    }
    return response;
  }
}

/** Server-Sent Events → the JSON of each event's `data` (comments and keep-alives skipped). */
export async function* parseEventStream(body: ReadableStream<Uint8Array>): AsyncGenerator<SluiceEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  let name = 'message';
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.search(/\r?\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer[newline] === '\r' ? 2 : 1));
        if (line === '') {
          const text = data.join('\n');
          const event = name;
          data = [];
          name = 'message';
          if (!text) continue;
          // The server ends a stream it cannot go on with by an `error` event: resume with Last-Event-ID.
          if (event === 'error')
            throw new SluiceStreamError((JSON.parse(text) as { message?: string }).message);
          yield JSON.parse(text) as SluiceEvent;
        } else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        else if (line.startsWith('event:')) name = line.slice(6).trim();
      }
    }
  } finally {
    reader.releaseLock();
    await body.cancel().catch(() => undefined);
  }
}

export function createSluiceClient(options: SluiceClientOptions): SluiceClient {
  return new SluiceClient(options);
}
