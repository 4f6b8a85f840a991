import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { canonicalIPv6, parseCidr, type Address, type Cidr } from '../net/cidr';
import { OutboundRefusedError, type OutboundKind, type OutboundPolicy } from './outbound';
import type { OwnServices } from './own-services';

/**
 * How the policy treats a range, strictest first:
 * - forbidden: refused for every kind, and OUTBOUND_ALLOW cannot open it (metadata, link-local, ...);
 * - loopback: refused for every kind unless OUTBOUND_ALLOW covers it (a source must not read
 *   Sluice's own database or Redis on the same machine);
 * - private: refused for http (api, file by URL); for service (database, stream: those usually
 *   live on the private network) allowed unless OUTBOUND_PRIVATE=deny; OUTBOUND_ALLOW opens it;
 * - public: allowed.
 * OUTBOUND_DENY refuses whatever it covers, whatever the class (deny wins over allow), and so do
 * Sluice's own database and Redis (their address and port), whatever OUTBOUND_ALLOW says.
 */
export type AddressClass = 'forbidden' | 'loopback' | 'private' | 'public';

export interface Classified {
  class: AddressClass;
  /** The range's name, for the refusal message. */
  range: string;
  /** The address actually reached: the embedded IPv4 of a NAT64 or 6to4 address, else the address. */
  effective: Address;
}

export interface Decision {
  allowed: boolean;
  reason: string;
}

/** The OutboundRefusedError the policy throws: same name and code, and a message that says why. */
export class AddressRefusedError extends OutboundRefusedError {
  constructor(
    address: string,
    readonly reason: string,
  ) {
    super(address);
    this.message = `${address} is not allowed by the outbound policy: ${reason}`;
  }
}

const cidr = (text: string): Cidr => ipaddr.parseCIDR(text);

/**
 * Cloud metadata and instance services outside link-local (169.254.169.254 is link-local already):
 * AWS's IPv6 endpoints (fd00:ec2::254 metadata, ::253 DNS, ::123 NTP), Alibaba, Oracle.
 */
const METADATA: Cidr[] = [cidr('fd00:ec2::/32'), cidr('100.100.100.200/32'), cidr('192.0.0.192/32')];
/** NAT64 well-known prefix: the last 32 bits are the IPv4 address the gateway dials. */
const NAT64: Cidr = cidr('64:ff9b::/96');

const V4: Record<string, [AddressClass, string]> = {
  unspecified: ['forbidden', 'unspecified'],
  broadcast: ['forbidden', 'broadcast'],
  multicast: ['forbidden', 'multicast'],
  linkLocal: ['forbidden', 'link-local'],
  // 192.0.0.0/24, documentation, benchmarking 198.18/15, the 6to4 relay anycast, 240/4.
  reserved: ['forbidden', 'reserved'],
  loopback: ['loopback', 'loopback'],
  private: ['private', 'private'],
  carrierGradeNat: ['private', 'carrier-grade NAT'],
  unicast: ['public', 'public'],
  // Public anycast services.
  as112: ['public', 'public'],
  amt: ['public', 'public'],
};

const V6: Record<string, [AddressClass, string]> = {
  unspecified: ['forbidden', 'unspecified'],
  linkLocal: ['forbidden', 'link-local'],
  multicast: ['forbidden', 'multicast'],
  discard: ['forbidden', 'discard-only'],
  reserved: ['forbidden', 'reserved'],
  teredo: ['forbidden', 'Teredo'],
  benchmarking: ['forbidden', 'benchmarking'],
  deprecatedOrchid: ['forbidden', 'ORCHID'],
  orchid2: ['forbidden', 'ORCHID'],
  droneRemoteIdProtocolEntityTags: ['forbidden', 'reserved'],
  segmentRouting: ['forbidden', 'segment routing'],
  loopback: ['loopback', 'loopback'],
  uniqueLocal: ['private', 'unique local'],
  deprecatedSiteLocal: ['private', 'site-local'],
  unicast: ['public', 'public'],
  amt: ['public', 'public'],
  as112v6: ['public', 'public'],
};

/** Classifies a parsed address (IPv4-mapped IPv6 already turned into IPv4). Unknown ranges are forbidden. */
export function classify(addr: Address): Classified {
  if (METADATA.some((range) => matches(addr, range)))
    return { class: 'forbidden', range: 'cloud metadata', effective: addr };
  if (addr.kind() === 'ipv4') {
    const [cls, range] = V4[addr.range()] ?? ['forbidden', addr.range()];
    return { class: cls, range, effective: addr };
  }
  const v6 = addr as ipaddr.IPv6;
  const embedded = embeddedIPv4(v6);
  if (embedded) {
    // Judged as the IPv4 address a translator would dial: 64:ff9b::a9fe:a9fe is 169.254.169.254.
    const inner = classify(embedded);
    return { ...inner, range: `${inner.range} (embedded in ${v6.range()})` };
  }
  const range = v6.range();
  if (range === 'rfc6052')
    return { class: 'forbidden', range: 'local-use NAT64 (no fixed IPv4 position)', effective: v6 };
  if (range === 'unicast' && v6.parts.slice(0, 6).every((p) => p === 0))
    // ::a.b.c.d (IPv4-compatible, deprecated): some stacks still send it as IPv4.
    return { class: 'forbidden', range: 'IPv4-compatible', effective: v6 };
  const [cls, name] = V6[range] ?? ['forbidden', range];
  return { class: cls, range: name, effective: v6 };
}

/** The IPv4 address inside a NAT64 (64:ff9b::/96), IPv4-translated (::ffff:0:0:0/96) or 6to4 address. */
function embeddedIPv4(addr: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const p = addr.parts;
  const v4 = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  const range = addr.range();
  if (range === 'rfc6145' || (range === 'rfc6052' && addr.match(NAT64))) return v4(p[6]!, p[7]!);
  if (range === '6to4') return v4(p[1]!, p[2]!);
  return undefined;
}

/** Parses a canonical address (net.isIP-valid, no zone) exactly as the socket will read it. */
function parseAddress(text: string): Address {
  return ipaddr.process(isIP(text) === 6 ? canonicalIPv6(text) : text);
}

function matches(addr: Address, range: Cidr): boolean {
  return addr.kind() === range[0].kind() && addr.match(range);
}

const KIND_LABEL: Record<OutboundKind, string> = {
  http: 'api and file (URL) sources',
  service: 'database and stream sources',
};

/** Whether database and stream sources may reach private ranges without OUTBOUND_ALLOW (OUTBOUND_PRIVATE). */
export type PrivateRanges = 'allow' | 'deny';

export interface AddressPolicyOptions {
  /** OUTBOUND_PRIVATE: 'allow' (the default) or 'deny'. http sources never reach private ranges by default. */
  private?: PrivateRanges;
  /** Sluice's own database and Redis: refused at their address and port whatever the lists say. */
  own?: OwnServices;
}

/**
 * The outbound address policy: every address a connector is about to dial passes here after the
 * single resolve, so a source cannot make Sluice reach what it should not (cloud metadata, its own
 * database). See AddressClass for the defaults; `allow` opens loopback and private ranges (never
 * forbidden ones, never Sluice's own services), `deny` closes anything and wins over `allow`. The
 * lists are the parsed OUTBOUND_ALLOW and OUTBOUND_DENY, handed over by the composition root.
 *
 * Private ranges are refused for http fetchers, and for database and stream sources only with
 * OUTBOUND_PRIVATE=deny, since those normally sit on the private network. Loopback stays refused
 * for those too: 127.0.0.1:5432 is Sluice's own database in a single-machine set-up.
 */
export class AddressPolicy implements OutboundPolicy {
  private readonly allow: Cidr[];
  private readonly deny: Cidr[];
  private readonly privateRanges: PrivateRanges;
  private readonly own: OwnServices | undefined;

  constructor(
    allow: readonly string[] = [],
    deny: readonly string[] = [],
    options: AddressPolicyOptions = {},
  ) {
    this.allow = allow.map(parseCidr);
    this.deny = deny.map(parseCidr);
    this.privateRanges = options.private ?? 'allow';
    this.own = options.own;
  }

  async prepare(timeoutMs: number): Promise<void> {
    await this.own?.refresh(timeoutMs);
  }

  check(address: string, kind: OutboundKind, port?: number): void {
    const decision = this.decide(address, kind, port);
    if (!decision.allowed) throw new AddressRefusedError(address, decision.reason);
  }

  decide(address: string, kind: OutboundKind, port?: number): Decision {
    const refuse = (reason: string): Decision => ({ allowed: false, reason });
    // Only the canonical text forms Node dials as given; 127.1 or 2130706433 must have gone
    // through the resolver first, which answers with the canonical address.
    if (!isIP(address)) return refuse('not a canonical IP address');
    // fe80::1%eth0: a zone only makes sense on link-local and multicast, refused anyway.
    if (address.includes('%')) return refuse('scoped (zone) addresses are always refused');
    const addr = parseAddress(address);
    const found = classify(addr);
    const own = port === undefined ? undefined : this.own?.match(addr, found.effective, port);
    if (own) return refuse(`port ${port} there is ${own}, never a source (whatever OUTBOUND_ALLOW says)`);
    if (this.deny.some((range) => matches(addr, range) || matches(found.effective, range)))
      return refuse('OUTBOUND_DENY covers it');
    if (found.class === 'forbidden') return refuse(`${found.range} addresses are always refused`);
    if (
      found.class === 'public' ||
      (found.class === 'private' && kind === 'service' && this.privateRanges === 'allow')
    )
      return { allowed: true, reason: `${found.range} address` };
    if (this.allow.some((range) => matches(found.effective, range)))
      return { allowed: true, reason: `${found.range} address, in OUTBOUND_ALLOW` };
    const setting = found.class === 'private' && kind === 'service' ? ' (OUTBOUND_PRIVATE=deny)' : '';
    return refuse(
      `${found.range} address, refused for ${KIND_LABEL[kind]} unless OUTBOUND_ALLOW covers it${setting}`,
    );
  }
}
