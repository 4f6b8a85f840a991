import { Agent, request } from 'undici';
import type { Outbound } from '../connectors/outbound';
import { pinnedConnector } from '../connectors/kit/http/pinned-connector';
import { signDelivery, SIGNATURE_HEADER } from './delivery-signature';

/** What one POST came to: a status when the receiver answered, an error when it did not (or said no). */
export interface SendResult {
  statusCode: number | null;
  durationMs: number;
  /** Set unless the answer was 2xx: what went wrong, never a secret, a URL or a response body. */
  error: string | null;
  /** Whether trying again later could help (5xx, 408, 429, network trouble), or never (4xx, refused address). */
  retryable: boolean;
}

export interface SendInput {
  url: string;
  secret: string;
  deliveryId: string;
  eventType: string;
  body: string;
}

/** Bytes of an answer read before the connection is dropped: only its status matters. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * POSTs one signed delivery. The receiver's host is resolved once and the address passes the same
 * outbound policy as api sources (kind `http`: no loopback or private ranges unless OUTBOUND_ALLOW
 * opens them, never metadata or Sluice's own database and Redis), then that address is dialled
 * (pinned: DNS rebinding cannot redirect it). Redirects are not followed: a 3xx is a failure.
 */
export class DeliverySender {
  constructor(
    private readonly outbound: Outbound,
    private readonly timeoutMs: number,
  ) {}

  async send(input: SendInput): Promise<SendResult> {
    const started = performance.now();
    const elapsed = () => performance.now() - started;
    let url: URL;
    try {
      url = new URL(input.url);
    } catch {
      return { statusCode: null, durationMs: elapsed(), error: 'the URL does not parse', retryable: false };
    }
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    let agent: Agent | undefined;
    const deadline = AbortSignal.timeout(this.timeoutMs);
    try {
      const target = await this.outbound.resolve(url.hostname, 'http', this.timeoutMs, port);
      agent = new Agent({ connect: pinnedConnector(target, this.timeoutMs), pipelining: 0 });
      const timestamp = Math.floor(Date.now() / 1000);
      const res = await request(url, {
        method: 'POST',
        dispatcher: agent,
        signal: deadline,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Sluice-Notifications/1',
          'sluice-delivery': input.deliveryId,
          'sluice-event': input.eventType,
          [SIGNATURE_HEADER.toLowerCase()]: signDelivery(input.secret, input.body, timestamp),
        },
        body: input.body,
      });
      await drain(res.body);
      const code = res.statusCode;
      if (code >= 200 && code < 300)
        return { statusCode: code, durationMs: elapsed(), error: null, retryable: false };
      return {
        statusCode: code,
        durationMs: elapsed(),
        error:
          code >= 300 && code < 400
            ? `the receiver answered ${code}: redirects are not followed`
            : `the receiver answered ${code}`,
        retryable: code >= 500 || code === 408 || code === 429,
      };
    } catch (err) {
      const e = err as Error & { code?: string };
      const refused = e.code === 'forbidden_address';
      const message = deadline.aborted
        ? `no answer within ${this.timeoutMs} ms (NOTIFY_TIMEOUT_MS)`
        : `${e.code ? `${e.code}: ` : ''}${e.message}`;
      return { statusCode: null, durationMs: elapsed(), error: message, retryable: !refused };
    } finally {
      await agent?.destroy().catch(() => undefined);
    }
  }
}

/** Reads (and drops) up to MAX_ANSWER_BYTES of an answer, then lets the connection go. */
async function drain(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<void> {
  let read = 0;
  for await (const chunk of body) {
    read += chunk.length;
    if (read > MAX_ANSWER_BYTES) {
      body.destroy();
      return;
    }
  }
}
