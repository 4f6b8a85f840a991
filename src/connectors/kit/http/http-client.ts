import type { Readable } from 'node:stream';
import type { Client, Dispatcher } from 'undici';
import type { ConnectorContext } from '../../connector';
import { ConnectorError } from '../classify-error';
import type { ResolvedTarget } from '../../outbound';
import { abortError } from '../deadline';
import { formatBytes, TooLargeError } from '../byte-limits';
import { decodeContentEncoding, type DecodeLimits } from './body-decoding';
import { HttpStatusError } from './http-status-error';
import { DEFAULT_RETRY, isRetryableStatus, retryDelay, sleep, type RetryPolicy } from './retry-policy';
import { describeUrl } from './url-credentials';

export interface HttpClientOptions {
  retry?: Partial<RetryPolicy>;
  /** Redirect hops followed per request. */
  maxRedirects?: number;
  /** Cap on a body read whole (JSON pages), after decompression. */
  maxBodyBytes?: number;
  /** Bounds on what a compressed body may decode to (DECOMPRESSED_MAX_BYTES, MAX_COMPRESSION_RATIO). */
  decodeLimits?: DecodeLimits;
  /**
   * Whole-request bound (HTTP_REQUEST_MAX_MS), redirects, retries and the body included: the idle
   * timeouts never fire on a server that sends one byte a second, this does.
   */
  requestMaxMs?: number;
}

export interface HttpGetInit {
  /** Sent only to `origin` (the source's own): a redirect or a next link elsewhere does not get them. */
  credentials?: { origin: string; headers: Record<string, string> };
  accept?: string;
  /** False for test steps: they answer with the first status rather than sit out a backoff. */
  retry?: boolean;
}

export interface HttpResponse {
  /** Where the answer came from (after redirects): relative links resolve against it. */
  url: URL;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Decoded from Content-Encoding; idle reads time out after timeoutMs. */
  body: Readable;
  /** Aborts (reason: a ConnectorError `timeout`) when the request outlives requestMaxMs. */
  deadline: AbortSignal;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const RETRYABLE_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);
const DEFAULT_MAX_BODY = 32 * 1024 * 1024;
/** 32 MiB (the page cap) at ~110 KB/s: generous for a real API, minutes rather than hours for a dribble. */
export const DEFAULT_REQUEST_MAX_MS = 5 * 60_000;

/**
 * GET over undici for connectors. Every request resolves its host through ctx.outbound (checked
 * by the address policy) and dials exactly that address; redirects are followed by hand so each
 * hop is resolved and checked again. Connect, headers and each body read are bounded by
 * ctx.timeoutMs; 429 and 5xx are retried within a bounded budget, honouring Retry-After.
 */
/**
 * undici and the pinned dialer, imported on the first connection: the API process builds the api
 * and file connectors for their rules and never sends, and undici is megabytes of code.
 */
let transport: Promise<[typeof import('undici'), typeof import('./pinned-connector')]> | undefined;
const loadTransport = () => (transport ??= Promise.all([import('undici'), import('./pinned-connector')]));

export class HttpClient {
  private readonly clients = new Map<string, Client>();
  private readonly retry: RetryPolicy;
  private readonly maxRedirects: number;
  private readonly maxBodyBytes: number;
  private readonly decodeLimits?: DecodeLimits;
  private readonly requestMaxMs: number;

  constructor(
    private readonly ctx: ConnectorContext,
    options: HttpClientOptions = {},
  ) {
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.maxRedirects = options.maxRedirects ?? 5;
    this.maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
    this.decodeLimits = options.decodeLimits;
    this.requestMaxMs = options.requestMaxMs ?? DEFAULT_REQUEST_MAX_MS;
  }

  /** Resolves and checks the host of `url` (the first test step). */
  resolve(url: URL): Promise<ResolvedTarget> {
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    return this.ctx.outbound.resolve(url.hostname, 'http', this.ctx.timeoutMs, port);
  }

  /** Opens one connection (TCP, and TLS for https) to `target` and closes it: the connect test step. */
  async probe(url: URL, target: ResolvedTarget): Promise<void> {
    const [, { pinnedConnector }] = await loadTransport();
    const connect = pinnedConnector(target, this.ctx.timeoutMs);
    const release = await this.ctx.outbound.claim(target.address, url.port || defaultPort(url));
    let answered = false;
    await new Promise<void>((resolve, reject) => {
      const socket = connect(
        {
          hostname: url.hostname,
          host: url.host,
          protocol: url.protocol,
          port: url.port || defaultPort(url),
        },
        (err, connected) => {
          this.ctx.signal.removeEventListener('abort', onAbort);
          if (err) return reject(err);
          answered = true;
          connected?.destroy();
          resolve();
        },
      ) as unknown as { destroy(err?: Error): void } | undefined;
      const onAbort = () => socket?.destroy(abortError(this.ctx.signal));
      this.ctx.signal.addEventListener('abort', onAbort, { once: true });
    }).finally(() => release(answered));
  }

  /**
   * GET `url` following redirects; resolves with the final 2xx answer, throws HttpStatusError
   * otherwise. From the first byte sent to the body's end the request may take requestMaxMs: past
   * that it is aborted (the body errors) with a ConnectorError `timeout`.
   */
  async get(url: URL, init: HttpGetInit = {}): Promise<HttpResponse> {
    const deadline = new AbortController();
    const timer = setTimeout(
      () =>
        deadline.abort(
          new ConnectorError(
            `GET ${describeUrl(url)}: the request did not complete within ${this.requestMaxMs} ms (HTTP_REQUEST_MAX_MS); the server sends too slowly`,
            'timeout',
          ),
        ),
      this.requestMaxMs,
    );
    const signal = AbortSignal.any([this.ctx.signal, deadline.signal]);
    try {
      const res = await this.follow(url, init, signal);
      res.body.once('close', () => clearTimeout(timer));
      return { ...res, deadline: deadline.signal };
    } catch (err) {
      clearTimeout(timer);
      if (deadline.signal.aborted && !this.ctx.signal.aborted) throw abortError(deadline.signal);
      throw err;
    }
  }

  private async follow(
    url: URL,
    init: HttpGetInit,
    signal: AbortSignal,
  ): Promise<Omit<HttpResponse, 'deadline'>> {
    let current = url;
    for (let hop = 0; ; hop++) {
      const res = await this.send(current, init, signal);
      if (REDIRECTS.has(res.statusCode)) {
        await discard(res.body);
        const location = header(res.headers.location);
        if (!location)
          throw new HttpStatusError(
            res.statusCode,
            `GET ${describeUrl(current)} (redirect without Location)`,
          );
        if (hop >= this.maxRedirects)
          throw new ConnectorError(
            `GET ${describeUrl(url)}: more than ${this.maxRedirects} redirects`,
            'protocol',
          );
        const next = new URL(location, current);
        if (next.protocol !== 'http:' && next.protocol !== 'https:')
          throw new ConnectorError(
            `GET ${describeUrl(current)}: redirect to a ${next.protocol} URL refused`,
            'protocol',
          );
        next.hash = '';
        current = next;
        continue;
      }
      if (res.statusCode < 200 || res.statusCode >= 300) {
        await discard(res.body);
        throw new HttpStatusError(res.statusCode, `GET ${describeUrl(current)}`);
      }
      return {
        url: current,
        status: res.statusCode,
        headers: res.headers,
        body: decodeContentEncoding(res.body, res.headers['content-encoding'], this.decodeLimits),
      };
    }
  }

  /** GET a body of at most maxBodyBytes (after decompression) as text. */
  async getText(
    url: URL,
    init: HttpGetInit = {},
  ): Promise<{ url: URL; status: number; text: string; bytes: number }> {
    const res = await this.get(url, init);
    const chunks: Buffer[] = [];
    let bytes = 0;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > this.maxBodyBytes) {
          res.body.destroy();
          // Permanent: the same page is as large on every retry.
          throw new TooLargeError(
            `GET ${describeUrl(res.url)}: response larger than ${formatBytes(this.maxBodyBytes)}`,
          );
        }
        chunks.push(chunk);
      }
    } catch (err) {
      // The body may die of undici's own abort error; say why it was aborted.
      if (res.deadline.aborted && !this.ctx.signal.aborted) throw abortError(res.deadline);
      throw err;
    } finally {
      res.body.destroy();
    }
    return { url: res.url, status: res.status, text: Buffer.concat(chunks).toString('utf8'), bytes };
  }

  /** GET and parse a JSON body of at most maxBodyBytes (an empty body is null). */
  async getJson(
    url: URL,
    init: HttpGetInit = {},
  ): Promise<{ url: URL; status: number; body: unknown; bytes: number }> {
    const res = await this.getText(url, { accept: 'application/json', ...init });
    return { url: res.url, status: res.status, body: parseJson(res.text, res.url), bytes: res.bytes };
  }

  /** Closes every connection; idempotent. */
  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((c) => c.destroy().catch(() => undefined)));
  }

  /** One hop: resolve (each try, so a changed answer is checked too), send, retry what may pass. */
  private async send(url: URL, init: HttpGetInit, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = {
      accept: init.accept ?? '*/*',
      'accept-encoding': 'gzip, deflate, br',
      'user-agent': 'sluice-connector',
    };
    if (init.credentials && url.origin === init.credentials.origin)
      Object.assign(headers, init.credentials.headers);
    const retries = init.retry === false ? 0 : this.retry.retries;
    let waited = 0;
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw abortError(signal);
      const target = await this.resolve(url);
      const client = await this.clientFor(url, target);
      let res: Dispatcher.ResponseData;
      // Pending until the response's headers: connect and time to first byte (see Outbound.claim).
      const release = await this.ctx.outbound.claim(target.address, url.port || defaultPort(url));
      let answered = false;
      try {
        res = await client.request({
          method: 'GET',
          path: `${url.pathname}${url.search}`,
          headers,
          signal: signal,
        });
        answered = true;
      } catch (err) {
        // A kept-alive connection the server closed as we reused it: one fresh try is safe for a GET.
        const code = String((err as { code?: unknown }).code ?? '');
        const delay = RETRYABLE_ERRORS.has(code)
          ? retryDelay(attempt, undefined, waited, { ...this.retry, retries })
          : undefined;
        if (delay === undefined || signal.aborted) throw err;
        await sleep(delay, signal);
        waited += delay;
        continue;
      } finally {
        release(answered);
      }
      if (!isRetryableStatus(res.statusCode)) return res;
      const delay = retryDelay(attempt, res.headers['retry-after'], waited, { ...this.retry, retries });
      if (delay === undefined) return res;
      await discard(res.body);
      this.ctx.logger.debug(
        { url: describeUrl(url), status: res.statusCode, delay_ms: delay, attempt: attempt + 1 },
        'http source asked to retry',
      );
      await sleep(delay, signal);
      waited += delay;
    }
  }

  /** One keep-alive client per origin and dialled address: an address change gets a new, checked connection. */
  private async clientFor(url: URL, target: ResolvedTarget): Promise<Client> {
    // Awaited before the lookup, so that the lookup and the insert stay one synchronous step.
    const [{ Client }, { pinnedConnector }] = await loadTransport();
    const key = `${url.origin}|${target.address}`;
    let client = this.clients.get(key);
    if (!client) {
      client = new Client(url.origin, {
        connect: pinnedConnector(target, this.ctx.timeoutMs),
        headersTimeout: this.ctx.timeoutMs,
        bodyTimeout: this.ctx.timeoutMs,
        pipelining: 1,
      });
      this.clients.set(key, client);
    }
    return client;
  }
}

function defaultPort(url: URL): string {
  return url.protocol === 'https:' ? '443' : '80';
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Drains a small body we do not need so its connection can be reused; a large one closes it instead. */
async function discard(body: Dispatcher.ResponseData['body']): Promise<void> {
  await body.dump({ limit: 64 * 1024 }).catch(() => undefined);
}

/** Parses a JSON body; an empty one is null (some APIs answer an exhausted listing with nothing). */
export function parseJson(text: string, url: URL): unknown {
  if (!text.trim()) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ConnectorError(`GET ${describeUrl(url)}: the response is not valid JSON`, 'protocol');
  }
}
