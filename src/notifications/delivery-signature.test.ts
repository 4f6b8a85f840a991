import { describe, expect, it } from 'vitest';
import { signDelivery, verifyDelivery } from './delivery-signature';

const SECRET = 'a-signing-secret-of-some-length';
const BODY = '{"id":"1-0","type":"sync.failed"}';

describe('delivery signature', () => {
  const now = Date.UTC(2026, 11, 7, 12, 0, 0);
  const t = now / 1000;

  it('is t=<unix>,v1=<hex HMAC-SHA256 of "t.body">, and verifies', () => {
    const header = signDelivery(SECRET, BODY, t);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifyDelivery(SECRET, BODY, header, 300, now)).toBe(true);
  });

  it('refuses another secret, another body, a stale or future timestamp, and garbage', () => {
    const header = signDelivery(SECRET, BODY, t);
    expect(verifyDelivery('another-secret-entirely', BODY, header, 300, now)).toBe(false);
    expect(verifyDelivery(SECRET, `${BODY} `, header, 300, now)).toBe(false);
    expect(verifyDelivery(SECRET, BODY, header, 300, now + 301_000)).toBe(false);
    expect(verifyDelivery(SECRET, BODY, header, 300, now - 301_000)).toBe(false);
    // The timestamp is signed: moving it breaks the HMAC.
    expect(verifyDelivery(SECRET, BODY, header.replace(`t=${t}`, `t=${t + 1}`), 300, now)).toBe(false);
    for (const bad of ['', 't=,v1=', `t=${t}`, `t=${t},v1=zz`, 'v1=00'])
      expect(verifyDelivery(SECRET, BODY, bad, 300, now)).toBe(false);
  });

  it('accepts any of several v1 values (a receiver rotating secrets)', () => {
    const header = signDelivery(SECRET, BODY, t);
    const v1 = header.split('v1=')[1];
    expect(verifyDelivery(SECRET, BODY, `t=${t},v1=${'0'.repeat(64)},v1=${v1}`, 300, now)).toBe(true);
  });
});
