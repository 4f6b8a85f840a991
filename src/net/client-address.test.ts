import { describe, expect, it } from 'vitest';
import { clientAddress, limitKeyOf, trustedRanges } from './client-address';

describe('clientAddress', () => {
  const proxies = trustedRanges(['10.0.0.0/8', 'fd00::/8']);

  it('without trusted proxies the socket address is the client, whatever the header says', () => {
    expect(clientAddress('203.0.113.9', '1.2.3.4', [])).toBe('203.0.113.9');
    expect(clientAddress('::ffff:127.0.0.1', undefined, [])).toBe('127.0.0.1');
  });

  it('reads X-Forwarded-For only from a trusted peer, from the right, up to the first untrusted hop', () => {
    // An untrusted peer sending the header: ignored.
    expect(clientAddress('203.0.113.9', '10.0.0.1', proxies)).toBe('203.0.113.9');
    // Through one trusted proxy.
    expect(clientAddress('10.0.0.2', '198.51.100.7', proxies)).toBe('198.51.100.7');
    // The client's own spoofed entry on the left is not believed.
    expect(clientAddress('10.0.0.2', '1.1.1.1, 198.51.100.7', proxies)).toBe('198.51.100.7');
    // Two trusted hops are skipped.
    expect(clientAddress('10.0.0.2', '198.51.100.7, 10.0.0.3', proxies)).toBe('198.51.100.7');
    expect(clientAddress('fd00::2', '2001:db8::1', proxies)).toBe('2001:db8::1');
    // Garbage stops the walk at the last trusted hop.
    expect(clientAddress('10.0.0.2', 'nonsense, 10.0.0.3', proxies)).toBe('10.0.0.3');
    expect(clientAddress('10.0.0.2', '', proxies)).toBe('10.0.0.2');
  });

  it('limits IPv6 by /64 and IPv4 by address', () => {
    expect(limitKeyOf('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(limitKeyOf('2001:db8:1:2:bbbb::9')).toBe('2001:db8:1:2::/64');
    expect(limitKeyOf('127.0.0.1')).toBe('127.0.0.1');
  });
});
