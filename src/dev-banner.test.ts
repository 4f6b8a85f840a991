import { describe, expect, it } from 'vitest';
import { devBanner } from './dev-banner';

const config = { apiKeys: [], fileRoots: ['/srv/sluice/data'] };

describe('devBanner', () => {
  it('shows a key made at this start once, on a line of its own, with the docs and dashboard URLs', () => {
    const banner = devBanner({
      config,
      host: '0.0.0.0',
      port: 3000,
      role: 'all',
      created: { name: 'dev-bootstrap', token: 'slc_abc' },
    });
    expect(banner).toContain('http://127.0.0.1:3000/docs');
    expect(banner).toContain('http://127.0.0.1:3000/admin/queues');
    expect(banner).toMatch(/\n {2}slc_abc\n/);
    expect(banner).toContain('npm run keys -- revoke dev-bootstrap');
    expect(banner).toContain('below /srv/sluice/data (FILE_ROOTS)');
  });

  it('says how to get a key when none was made now, and when no file may be read', () => {
    const banner = devBanner({
      config: { apiKeys: [], fileRoots: [] },
      host: '::1',
      port: 4000,
      role: 'api',
      created: undefined,
    });
    expect(banner).toContain('http://[::1]:4000/docs');
    expect(banner).toContain('npm run keys -- create --name me --scope admin');
    expect(banner).toContain('FILE_ROOTS is empty');
    expect(banner).not.toContain('slc_');
  });

  it('points at API_KEYS when keys are configured there', () => {
    const banner = devBanner({
      config: { apiKeys: [{ scope: 'admin', hash: 'x' }] as never, fileRoots: [] },
      host: '127.0.0.1',
      port: 3000,
      role: 'api',
      created: undefined,
    });
    expect(banner).toContain('a token of API_KEYS');
  });
});
