import { describe, expect, it } from 'vitest';
import { isTokenLike, maskSecret } from './mask-secret';

describe('maskSecret', () => {
  it.each([
    ['postgres://loader:pw@db.internal:5432/warehouse', 'postgres://****@db.internal:5432/warehouse'],
    [
      'postgresql://db.internal/warehouse?sslmode=require',
      'postgresql://db.internal/warehouse?sslmode=require',
    ],
    [
      'mysql://root@127.0.0.1:3306/shop?ssl=true&password=pw',
      'mysql://****@127.0.0.1:3306/shop?ssl=true&password=****',
    ],
    [
      'https://user:pass@api.example.com/v1/items?page=2&api_key=abc&sig=zz',
      'https://****@api.example.com/v1/items?page=****&api_key=****&sig=****',
    ],
    ['https://:TOKEN@api.example.com/path', 'https://****@api.example.com/path'],
    ['https://TOKEN@api.example.com/path', 'https://****@api.example.com/path'],
    [
      'https://api.example.com/x?Token=1&X-Amz-Signature=abc&client_secret=s',
      'https://api.example.com/x?Token=****&X-Amz-Signature=****&client_secret=****',
    ],
    ['redis://:pw@127.0.0.1:6379/0', 'redis://****@127.0.0.1:6379/0'],
    ['rediss://default:pw@cache.example.com:6380', 'rediss://****@cache.example.com:6380'],
    ['nats://u:p@127.0.0.1:4222', 'nats://****@127.0.0.1:4222'],
    ['file:///data/in/orders.csv', 'file:///data/in/orders.csv'],
    ['postgres://u:p%40ss@h/db', 'postgres://****@h/db'],
  ])('%s → %s', (input, masked) => {
    expect(maskSecret(input)).toBe(masked);
  });

  it('masks a fragment whole: it can carry an OAuth token', () => {
    expect(maskSecret('https://api.example.com/cb#access_token=abc&state=1')).toBe(
      'https://api.example.com/cb#****',
    );
  });

  it('masks anything that is not a URL with a host as a whole', () => {
    for (const value of [
      'webhook-shared-secret',
      'not a url',
      '',
      'mailto:bob@example.com',
      'jdbc:postgresql://u:p@h/db',
      'file://user:pw@host/data.csv',
      'postgres://u:p@/db?host=/var/run',
    ])
      expect(maskSecret(value), value).toBe('****');
  });

  it('never returns the password, token or secret parameter of its input', () => {
    const secret = 'Zq9-S3cret';
    for (const value of [
      `postgres://u:${secret}@h:5432/db`,
      `https://:${secret}@h/p`,
      `https://${secret}@h/p`,
      `https://h/p?token=${secret}`,
      `https://h/p?x=1&password=${secret}&y=2`,
      `https://h/p#${secret}`,
      secret,
    ])
      expect(maskSecret(value), value).not.toContain(secret);
  });

  it('keeps only scheme, host, port, plain path segments and database settings (allow-list)', () => {
    expect(
      maskSecret(
        'https://api.example/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getUpdates?jwt=eyJhbGciOiJIUzI1NiJ9.e30.c2ln',
      ),
    ).toBe('https://api.example/****/getUpdates?jwt=****');
    expect(maskSecret('https://api.example.com/v1/items/550e8400-e29b-41d4-a716-446655440000?limit=10')).toBe(
      'https://api.example.com/v1/items/****?limit=****',
    );
    expect(maskSecret('https://h.example/hook/0123456789abcdef0123/x')).toBe('https://h.example/hook/****/x');
    expect(maskSecret('postgres://u@h/db?sslmode=verify-full&application_name=etl')).toBe(
      'postgres://****@h/db?sslmode=verify-full&application_name=etl',
    );
    // A database setting with a value that is not a plain word is masked like any other.
    expect(maskSecret('postgres://h/db?application_name=a%20b%20c')).toBe(
      'postgres://h/db?application_name=****',
    );
    expect(maskSecret('file:///data/2024-01-01-orders.csv')).toBe('file:///data/2024-01-01-orders.csv');
  });

  it.each([
    ['eyJhbGciOiJIUzI1NiJ9', true],
    ['bot1:x', true],
    ['sk_live_4eC39HqLyjWDarjtT1zdp7dc', true],
    ['0123456789abcdef0123', true],
    ['AbCdEfGhIjKlMnOpQrStUvWx', true],
    ['v1', false],
    ['getUpdates', false],
    ['getUpdatesForTheChannel', false],
    ['2024-01-01-orders.csv', false],
  ])('isTokenLike(%s) is %s', (segment, expected) => {
    expect(isTokenLike(segment)).toBe(expected);
  });

  it('masks whole when asked (a webhook secret), whatever its shape', () => {
    expect(maskSecret('https://hooks.example/path', { whole: true })).toBe('****');
  });
});
