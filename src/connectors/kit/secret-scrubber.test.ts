import { describe, expect, it } from 'vitest';
import { hideSecrets, scrubSecret } from './secret-scrubber';

describe('hideSecrets', () => {
  it('masks a short secret only where it stands as a whole token (row 12)', () => {
    expect(hideSecrets('Unknown RESP type 72 "H"', ['p'])).toBe('Unknown RESP type 72 "H"');
    expect(hideSecrets('WRONGPASS for p: invalid', ['p'])).toBe('WRONGPASS for ****: invalid');
    expect(hideSecrets('password "ab" rejected; table abc', ['ab'])).toBe(
      'password "****" rejected; table abc',
    );
  });

  it('masks a long secret wherever it occurs, glued to other text or not', () => {
    expect(hideSecrets('auth xxS3cretPassyy failed', ['S3cretPass'])).toBe('auth xx****yy failed');
  });

  it('escapes regular expression characters of short secrets', () => {
    expect(hideSecrets('got a.b and axb', ['a.b'])).toBe('got **** and axb');
  });

  it('masks the longest first, so one secret inside another is masked whole', () => {
    expect(hideSecrets('token abcdefghij', ['abc', 'abcdefghij'])).toBe('token ****');
  });
});

describe('scrubSecret', () => {
  it('masks the password of a connection string even when it is one character, as a token only', () => {
    const secret = 'redis://:p@127.0.0.1:6379/0';
    expect(scrubSecret('Unknown RESP type', secret)).toBe('Unknown RESP type');
    expect(scrubSecret('bad password p', secret)).toBe('bad password ****');
  });

  it('does not mask short values of ordinary parameters', () => {
    expect(scrubSecret('read 1 row', 'postgres://u:longpassword@h/db?connect_timeout=1')).toBe('read 1 row');
    expect(scrubSecret('read 1 row', 'https://h/x?token=1')).toBe('read **** row');
  });
});
