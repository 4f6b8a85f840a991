import Router from '@koa/router';
import type { Knex } from 'knex';
import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { DecryptionError } from '../crypto/secret-box';
import type { RawDataSource } from '../generated';
import { JSON_TYPES } from '../http/body-parser';
import type { CrudRepository } from '../db/crud.repository';
import {
  ConflictError,
  HttpError,
  TooManyRequestsError,
  MalformedBodyError,
  NotFoundError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  UnsupportedMediaTypeError,
} from '../http/errors';
import type { Logger } from '../logger';
import { InvalidSignatureError, ReplayedSignatureError } from './invalid-signature-error';
import { WebhookBuffer } from '../connectors/webhook/webhook-buffer';
import { WEBHOOK_PATH_PREFIX } from '../connectors/webhook/webhook-path';
import { parseWebhookRecords } from './webhook-payload';
import {
  checkWebhookSignature,
  SIGNATURE_FORMAT,
  SIGNATURE_HEADER,
  type SignatureCheck,
} from '../connectors/webhook/webhook-signature';
import type { WebhookAccepted } from './webhook.openapi';
import type { WebhookReplayGuard } from './webhook-replay-guard';

export interface WebhookRoutesDeps {
  knex: Knex;
  sources: CrudRepository<RawDataSource>;
  logger: Logger;
  /** The app's BODY_LIMIT ("1mb"): the same limit as every other body. */
  bodyLimit: string;
  /** WEBHOOK_TOLERANCE_SECONDS and WEBHOOK_LEGACY_SIGNATURES. */
  signatures: { toleranceSeconds: number; legacy: boolean };
  /** Refuses a stamped signature seen before within the window. */
  replays: WebhookReplayGuard;
  /**
   * The per-address budget of requests without a credential (RATE_LIMIT_ANONYMOUS): unknown ids
   * and wrong signatures count against it, and an address over it is refused before any lookup.
   */
  anonymous?: {
    limits: { blockedFor(key: string): number; charge(key: string): Promise<number> };
    keyOf(ctx: Context): string;
  };
}

const tooMany = (seconds: number) =>
  new TooManyRequestsError(
    `Too many webhook deliveries with an unknown id or a wrong signature from this address; retry in ${seconds} s.`,
    seconds,
  );

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * POST /webhooks/{source_id}: no token, the HMAC signature is the credential. Order matters: only
 * a sender holding the secret learns anything beyond "no such webhook" (unknown, malformed and
 * non-webhook ids all answer 404), and nothing is stored before the signature checks out.
 */
export function webhookRoutes({
  knex,
  sources,
  logger,
  bodyLimit,
  signatures,
  replays,
  anonymous,
}: WebhookRoutesDeps): Router {
  const buffer = new WebhookBuffer(knex);
  const router = new Router();
  const notFound = () => new NotFoundError('No such webhook.');

  router.post(`${WEBHOOK_PATH_PREFIX}:source_id`, async (ctx) => {
    const client = anonymous?.keyOf(ctx);
    const held = client ? anonymous!.limits.blockedFor(client) : 0;
    if (held) throw tooMany(held);
    /** A delivery without a credential that holds: counted against the address (429 once over). */
    const refuse = async (err: HttpError): Promise<never> => {
      const wait = client ? await anonymous!.limits.charge(client).catch(() => 0) : 0;
      throw wait ? tooMany(wait) : err;
    };
    const id = String(ctx.params.source_id ?? '').toLowerCase();
    const source = UUID.test(id) ? await sources.get(id) : undefined;
    if (!source || source.source_type !== 'webhook') return refuse(notFound());

    const raw = await readRawBody(ctx, bodyLimit);
    const secret = await revealSecret(sources, id, logger);
    if (!secret) return refuse(new InvalidSignatureError());
    const check = checkWebhookSignature(secret, raw, ctx.get(SIGNATURE_HEADER), {
      ...signatures,
      now: Date.now(),
    });
    // Only a wrong HMAC counts: a stale or legacy signature comes from a holder of the secret.
    if (!check.valid && check.reason === 'invalid') return refuse(new InvalidSignatureError());
    if (!check.valid) throw signatureError(check.reason, signatures.toleranceSeconds);
    if (!source.is_active)
      throw new ConflictError('This webhook source is inactive; activate it to accept payloads again.');
    if (!raw.length) throw new MalformedBodyError('The request body is empty: send a JSON object or array.');
    if (!ctx.is(JSON_TYPES)) throw new UnsupportedMediaTypeError();

    const records = parseWebhookRecords(raw);
    // Claimed last, once the receipt can only fail on storage: a refused body does not burn the
    // signature, and a failed store gives it back (the sender's retry of it is then no replay).
    const stamped = check.form === 'v1' ? check : undefined;
    if (stamped && !(await replays.claim(id, stamped.digest, stamped.timestamp)))
      throw new ReplayedSignatureError();
    const received = await buffer.append(id, records).catch(async (err: unknown) => {
      if (stamped) await replays.release(id, stamped.digest);
      throw storageError(err, notFound);
    });
    ctx.status = 202;
    ctx.body = { received } satisfies WebhookAccepted;
  });
  return router;
}

/** The 401 for a signature that does not hold; only a correct HMAC learns why its timestamp failed. */
function signatureError(
  reason: Extract<SignatureCheck, { valid: false }>['reason'],
  toleranceSeconds: number,
): InvalidSignatureError {
  if (reason === 'expired' || reason === 'future')
    return new InvalidSignatureError(
      `The signature's timestamp is more than ${toleranceSeconds} s ${reason === 'expired' ? 'in the past' : 'in the future'}: sign each delivery when sending it (check the sender's clock).`,
    );
  if (reason === 'legacy-disabled')
    return new InvalidSignatureError(
      `The unstamped sha256= signature is not accepted here: send ${SIGNATURE_HEADER}: ${SIGNATURE_FORMAT}.`,
    );
  return new InvalidSignatureError();
}

/** The body's bytes as sent, within the app's limit; the rest of an oversize body is drained. */
async function readRawBody(ctx: Context, limit: string): Promise<Buffer> {
  const coding = (ctx.get('content-encoding') || 'identity').trim().toLowerCase();
  // Someone parsed it first (createApp must skip isWebhookPath): the bytes as sent are gone.
  if ((ctx.request as { body?: unknown }).body !== undefined)
    throw new Error('webhook body was consumed before the route: the JSON parser must skip /webhooks/');
  try {
    if (coding !== 'identity')
      throw new HttpError(
        415,
        'unsupported-media-type',
        'Unsupported media type',
        'Send the body without Content-Encoding: the signature covers the bytes as sent.',
      );
    const length = ctx.get('content-length');
    return await getRawBody(ctx.req, { limit, length: length === '' ? undefined : length });
  } catch (err) {
    // Unread bytes would be taken for the next request on this keep-alive connection.
    ctx.req.unpipe();
    ctx.req.resume();
    if (err instanceof HttpError) throw err;
    const status = (err as { status?: unknown } | null)?.status;
    if (status === 413) throw new PayloadTooLargeError(limit);
    if (typeof status === 'number' && status >= 400 && status < 500)
      throw new MalformedBodyError('The request body could not be read.');
    throw err;
  }
}

/** The source's shared secret, decrypted for this request only. */
async function revealSecret(
  sources: CrudRepository<RawDataSource>,
  id: string,
  logger: Logger,
): Promise<string | null> {
  try {
    return await sources.revealSecret(id, 'connection_string');
  } catch (err) {
    if (!(err instanceof DecryptionError)) throw err;
    // Our fault, not the sender's: a retry may succeed once ENCRYPTION_KEYS is fixed.
    logger.error({ sourceId: id }, 'webhook secret cannot be decrypted (key missing or data altered)');
    throw new ServiceUnavailableError('This webhook cannot verify signatures right now.');
  }
}

/** Maps a failed insert: the source deleted meanwhile is a 404, a value jsonb refuses a 400. */
function storageError(err: unknown, notFound: () => HttpError): unknown {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  if (code === '23503') return notFound();
  if (code.startsWith('22')) return new MalformedBodyError('The body holds a value that cannot be stored.');
  return err;
}
