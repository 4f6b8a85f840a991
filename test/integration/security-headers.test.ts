import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from '../helpers/api-harness';

const ALLOWED = 'https://app.example.com';

describe('security headers and CORS', () => {
  let api: TestApi;
  let withCors: TestApi;
  beforeAll(async () => {
    [api, withCors] = await Promise.all([
      startTestApi(),
      startTestApi({ env: { CORS_ORIGINS: `${ALLOWED},http://localhost:5173` } }),
    ]);
  });
  afterAll(() => Promise.all([api?.close(), withCors?.close()]));

  it('sends helmet headers on every response: JSON, problems (401, 404) and pages', async () => {
    for (const res of [
      await api.get('/raw-data-sources'),
      await api.request('GET', '/raw-data-sources', { token: null }),
      await api.get('/nowhere'),
      await api.get('/healthz'),
      await api.get('/docs'),
      await api.get('/admin/queues'),
    ]) {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(res.headers.get('strict-transport-security')).toContain('max-age=');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-powered-by')).toBeNull();
    }
    expect((await api.get('/raw-data-sources')).headers.get('content-security-policy')).toContain(
      "default-src 'none'",
    );
    const docs = (await api.get('/docs')).headers.get('content-security-policy')!;
    expect(docs).toContain("default-src 'self'");
    expect(docs).not.toContain('https:');
    expect(docs).not.toContain('upgrade-insecure-requests');
  });

  it('sends no CORS header unless CORS_ORIGINS is configured', async () => {
    const res = await api.request('GET', '/raw-data-sources', { headers: { origin: ALLOWED } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await api.request('OPTIONS', '/raw-data-sources', {
      token: null,
      headers: { origin: ALLOWED, 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('with CORS_ORIGINS, answers exactly those origins, preflights included, and nobody else', async () => {
    const ok = await withCors.request('GET', '/raw-data-sources', { headers: { origin: ALLOWED } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(ok.headers.get('access-control-expose-headers')).toContain('Retry-After');
    expect(ok.headers.get('vary')).toContain('Origin');
    const preflight = await withCors.request('OPTIONS', '/raw-data-sources', {
      token: null,
      headers: {
        origin: ALLOWED,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('Authorization');
    for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.com', 'null']) {
      const res = await withCors.request('GET', '/raw-data-sources', { headers: { origin } });
      expect(res.headers.get('access-control-allow-origin'), origin).toBeNull();
    }
    // CORS does not replace the key: a cross-origin request without one is still a 401.
    const anonymous = await withCors.request('GET', '/raw-data-sources', {
      token: null,
      headers: { origin: ALLOWED },
    });
    expect(anonymous.status).toBe(401);
  });
});
