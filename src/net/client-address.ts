import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { parseCidr, type Address, type Cidr } from './cidr';

/** Hops of X-Forwarded-For read at most: a longer header is cut, never parsed whole. */
const MAX_HOPS = 20;

function parse(text: string | undefined): Address | undefined {
  const value = text?.trim();
  if (!value || !isIP(value)) return undefined;
  const addr = ipaddr.parse(value);
  // ::ffff:10.1.2.3 (a dual-stack socket's IPv4 peer) is the IPv4 address.
  return addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()
    ? (addr as ipaddr.IPv6).toIPv4Address()
    : addr;
}

const within = (addr: Address, ranges: Cidr[]) =>
  ranges.some(([net, bits]) => addr.kind() === net.kind() && addr.match(net, bits));

/**
 * Finds a request's client address. X-Forwarded-For is believed only when the connection comes
 * from a trusted proxy, and then only from the right: each hop a trusted proxy appended is
 * skipped, and the first address that is not a trusted proxy is the client (anything left of it
 * was written by the client itself and proves nothing). Koa's `app.proxy` would instead take the
 * leftmost entry from any peer, which a client sets to whatever it likes.
 */
export function clientAddress(
  socketAddress: string | undefined,
  forwardedFor: string | undefined,
  trusted: Cidr[],
): string {
  let client = parse(socketAddress);
  if (!client) return socketAddress ?? 'unknown';
  if (!trusted.length || !forwardedFor || !within(client, trusted)) return client.toString();
  const hops = forwardedFor.split(',').slice(-MAX_HOPS).reverse();
  for (const hop of hops) {
    const addr = parse(hop);
    // A garbled hop: the last trusted proxy's peer is the best we know.
    if (!addr) break;
    client = addr;
    if (!within(addr, trusted)) break;
  }
  return client.toString();
}

/**
 * The key an address is limited under: IPv4 addresses one by one, IPv6 by /64 (one subscriber
 * usually holds a whole /64, and would otherwise get 2^64 budgets).
 */
export function limitKeyOf(address: string): string {
  const addr = parse(address);
  if (!addr || addr.kind() === 'ipv4') return address;
  const parts = (addr as ipaddr.IPv6).parts.slice(0, 4);
  return `${parts.map((p) => p.toString(16)).join(':')}::/64`;
}

/** TRUSTED_PROXIES as parsed ranges (config validated them). */
export const trustedRanges = (cidrs: string[]): Cidr[] => cidrs.map(parseCidr);
