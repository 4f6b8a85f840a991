import { describe, expect, it } from 'vitest';
import { OutboundRefusedError, type OutboundKind } from './outbound';
import { AddressPolicy, AddressRefusedError } from './outbound-policy';

// Pure decisions: nothing here opens a socket.
const none = new AddressPolicy();
const allowed = (policy: AddressPolicy, address: string, kind: OutboundKind) =>
  policy.decide(address, kind).allowed;

/** The verdict for both kinds: [http, service]. */
const verdict = (address: string, policy = none) => [
  allowed(policy, address, 'http'),
  allowed(policy, address, 'service'),
];

describe('AddressPolicy: default ranges', () => {
  it.each([
    // unspecified
    '0.0.0.0',
    '0.1.2.3',
    '::',
    // link-local and cloud metadata
    '169.254.0.1',
    '169.254.169.254',
    '169.254.169.253',
    'fe80::1',
    'febf::1',
    'fd00:ec2::254',
    'fd00:ec2::253',
    '100.100.100.200',
    '192.0.0.192',
    // broadcast, multicast, reserved, documentation, benchmarking
    '255.255.255.255',
    '224.0.0.1',
    '239.255.255.250',
    'ff02::1',
    '240.0.0.1',
    '192.0.2.1',
    '198.51.100.1',
    '203.0.113.1',
    '198.18.0.1',
    '2001:db8::1',
    '100::1',
    '2001::1',
    '2001:2::1',
    // IPv4-compatible (deprecated) and local-use NAT64
    '::a9fe:a9fe',
    '::7f00:1',
    '64:ff9b:1::a00:1',
  ])('%s is refused for every kind', (address) => {
    expect(verdict(address)).toEqual([false, false]);
  });

  it.each(['127.0.0.1', '127.0.0.2', '127.255.255.254', '::1'])(
    'loopback %s is refused for every kind by default',
    (address) => {
      expect(verdict(address)).toEqual([false, false]);
    },
  );

  it.each([
    '10.0.0.1',
    '10.255.255.255',
    '172.16.0.1',
    '172.31.255.254',
    '192.168.1.1',
    '100.64.0.1',
    '100.127.255.254',
    'fc00::1',
    'fd12:3456::1',
    'fec0::1',
  ])('private %s is refused for http, allowed for service', (address) => {
    expect(verdict(address)).toEqual([false, true]);
  });

  it.each([
    '8.8.8.8',
    '172.32.0.1',
    '172.15.255.255',
    '100.128.0.1',
    '1.1.1.1',
    '2606:4700::1111',
    '192.175.48.1',
  ])('public %s is allowed for every kind', (address) => {
    expect(verdict(address)).toEqual([true, true]);
  });
});

describe('AddressPolicy: other spellings of the same address', () => {
  it.each([
    ['::ffff:169.254.169.254', [false, false]],
    ['::ffff:a9fe:a9fe', [false, false]],
    ['::FFFF:10.0.0.1', [false, true]],
    ['::ffff:10.0.0.1', [false, true]],
    ['::ffff:127.0.0.1', [false, false]],
    ['::ffff:7f00:1', [false, false]],
    ['::ffff:0.0.0.0', [false, false]],
    ['::ffff:8.8.8.8', [true, true]],
    // NAT64 (64:ff9b::/96), IPv4-translated and 6to4 are judged by the IPv4 address inside.
    ['64:ff9b::a9fe:a9fe', [false, false]],
    ['64:ff9b::a00:1', [false, true]],
    ['64:ff9b::808:808', [true, true]],
    ['::ffff:0:a9fe:a9fe', [false, false]],
    ['2002:a9fe:a9fe::1', [false, false]],
    ['2002:7f00:1::1', [false, false]],
    ['2002:808:808::1', [true, true]],
    // ::a.b.c.d is IPv4-compatible (dialled as ::a.b:c.d), not IPv4-mapped, whatever ipaddr.js reads.
    ['::8.8.8.8', [false, false]],
    ['::127.0.0.1', [false, false]],
    ['::169.254.169.254', [false, false]],
    ['64:ff9b::169.254.169.254', [false, false]],
    ['0:0:0:0:0:ffff:a9fe:a9fe', [false, false]],
    ['FD00:EC2::254', [false, false]],
  ])('%s', (address, expected) => {
    expect(verdict(address)).toEqual(expected);
  });

  it.each([
    '2130706433',
    '0x7f000001',
    '127.1',
    '017700000001',
    '127.000.000.001',
    '010.0.0.1',
    'localhost',
    '',
  ])('a non-canonical or non-address form "%s" is refused (it must be resolved first)', (address) => {
    expect(none.decide(address, 'http')).toEqual({ allowed: false, reason: 'not a canonical IP address' });
    const open = new AddressPolicy(['0.0.0.0/0', '::/0']);
    expect(verdict(address, open)).toEqual([false, false]);
  });

  it('a scoped (zone) address is refused even when its range is allowed', () => {
    const open = new AddressPolicy(['::/0']);
    expect(verdict('fe80::1%eth0', open)).toEqual([false, false]);
    expect(verdict('fd12::1%1', open)).toEqual([false, false]);
  });
});

describe('AddressPolicy: OUTBOUND_ALLOW and OUTBOUND_DENY', () => {
  it('allow opens loopback and private ranges for the kinds that refuse them', () => {
    const policy = new AddressPolicy(['127.0.0.2/32', '10.1.0.0/16', 'fd00::/8']);
    expect(verdict('127.0.0.2', policy)).toEqual([true, true]);
    expect(verdict('::ffff:127.0.0.2', policy)).toEqual([true, true]);
    expect(verdict('127.0.0.1', policy)).toEqual([false, false]);
    expect(verdict('::1', policy)).toEqual([false, false]);
    expect(verdict('10.1.2.3', policy)).toEqual([true, true]);
    expect(verdict('10.2.0.1', policy)).toEqual([false, true]);
    expect(verdict('fd12::1', policy)).toEqual([true, true]);
  });

  it('allow never opens forbidden ranges, even 0.0.0.0/0', () => {
    const policy = new AddressPolicy(['0.0.0.0/0', '::/0', '169.254.169.254/32', 'fd00:ec2::254/128']);
    for (const address of [
      '169.254.169.254',
      '::ffff:169.254.169.254',
      'fd00:ec2::254',
      'fe80::1',
      '0.0.0.0',
      '::',
      '224.0.0.1',
      '64:ff9b::a9fe:a9fe',
    ])
      expect(verdict(address, policy), address).toEqual([false, false]);
    expect(verdict('127.0.0.1', policy)).toEqual([true, true]);
    expect(verdict('10.0.0.1', policy)).toEqual([true, true]);
  });

  it('deny refuses any class and wins over allow, in every spelling', () => {
    const policy = new AddressPolicy(
      ['127.0.0.0/8', '10.0.0.0/8'],
      ['127.0.0.9/32', '10.9.0.0/16', '8.8.8.0/24'],
    );
    expect(verdict('127.0.0.1', policy)).toEqual([true, true]);
    expect(verdict('127.0.0.9', policy)).toEqual([false, false]);
    expect(verdict('::ffff:127.0.0.9', policy)).toEqual([false, false]);
    expect(verdict('10.9.1.1', policy)).toEqual([false, false]);
    expect(verdict('64:ff9b::a09:101', policy)).toEqual([false, false]);
    expect(verdict('8.8.8.8', policy)).toEqual([false, false]);
    expect(verdict('8.8.4.4', policy)).toEqual([true, true]);
    // Deny closes private ranges for database and stream sources too.
    expect(verdict('172.16.0.1', new AddressPolicy([], ['172.16.0.0/12']))).toEqual([false, false]);
  });

  it('an IPv4-mapped range in a list means its IPv4 range', () => {
    expect(verdict('::127.0.0.1', new AddressPolicy(['127.0.0.0/8', '::127.0.0.0/104']))).toEqual([
      false,
      false,
    ]);
    const policy = new AddressPolicy([], ['::ffff:8.8.8.0/120']);
    expect(verdict('8.8.8.8', policy)).toEqual([false, false]);
  });

  it('check throws an OutboundRefusedError (code forbidden_address) that says why', () => {
    expect(() => none.check('8.8.8.8', 'http')).not.toThrow();
    let caught: unknown;
    try {
      none.check('::ffff:169.254.169.254', 'service');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(OutboundRefusedError);
    expect(caught).toBeInstanceOf(AddressRefusedError);
    expect(caught).toMatchObject({
      name: 'OutboundRefusedError',
      code: 'forbidden_address',
      address: '::ffff:169.254.169.254',
    });
    expect((caught as Error).message).toContain('link-local addresses are always refused');
    expect(() => none.check('10.0.0.1', 'http')).toThrow(/private address, refused for api and file/);
    expect(() => none.check('127.0.0.1', 'service')).toThrow(
      /loopback address, refused for database and stream/,
    );
  });

  it('a list entry that is not a canonical CIDR range is refused', () => {
    expect(() => new AddressPolicy(['10.0.0.0'])).toThrow(/is not a CIDR range/);
  });
});
