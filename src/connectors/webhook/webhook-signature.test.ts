import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkWebhookSignature, signWebhookBody, signWebhookBodyLegacy } from './webhook-signature';

const SECRET = 'whsec-unit-test-secret';
const BODY = Buffer.from('{"a":1}');
const NOW = 1_765_112_400_000;
const opts = { toleranceSeconds: 300, legacy: false, now: NOW };
const t = NOW / 1000;

describe('webhook signatures', () => {
  it('signs "t.body" with HMAC-SHA256, as a sender computes it by hand', () => {
    const hex = createHmac('sha256', SECRET).update(`${t}.{"a":1}`).digest('hex');
    expect(signWebhookBody(SECRET, BODY, t)).toBe(`t=${t},v1=${hex}`);
    expect(checkWebhookSignature(SECRET, BODY, `t=${t},v1=${hex}`, opts)).toEqual({
      valid: true,
      form: 'v1',
      timestamp: t,
      digest: hex,
    });
  });

  it('holds the window both ways, inclusive', () => {
    const at = (ts: number) => checkWebhookSignature(SECRET, BODY, signWebhookBody(SECRET, BODY, ts), opts);
    expect(at(t - 300).valid).toBe(true);
    expect(at(t + 300).valid).toBe(true);
    expect(at(t - 301)).toEqual({ valid: false, reason: 'expired' });
    expect(at(t + 301)).toEqual({ valid: false, reason: 'future' });
  });

  it('judges the time only once the HMAC holds, and the legacy form only when switched on', () => {
    const old = signWebhookBody('another-secret', BODY, t - 10_000);
    expect(checkWebhookSignature(SECRET, BODY, old, opts)).toEqual({ valid: false, reason: 'invalid' });
    const legacy = signWebhookBodyLegacy(SECRET, BODY);
    expect(checkWebhookSignature(SECRET, BODY, legacy, opts)).toEqual({
      valid: false,
      reason: 'legacy-disabled',
    });
    expect(checkWebhookSignature(SECRET, BODY, legacy, { ...opts, legacy: true })).toEqual({
      valid: true,
      form: 'legacy',
    });
    expect(
      checkWebhookSignature(SECRET, BODY, signWebhookBodyLegacy('x', BODY), { ...opts, legacy: true }),
    ).toEqual({ valid: false, reason: 'invalid' });
  });

  it('refuses oversized and malformed headers without throwing', () => {
    for (const header of [
      '',
      't=1',
      'v1=00',
      `t=${t},t=${t},v1=${'0'.repeat(64)}`,
      'x'.repeat(5000),
      't=1,v1',
    ]) {
      expect(checkWebhookSignature(SECRET, BODY, header, opts).valid, header.slice(0, 40)).toBe(false);
    }
  });
});
