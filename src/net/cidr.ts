import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** A parsed address, IPv4 or IPv6. */
export type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** A parsed range: its network address and prefix length. */
export type Cidr = [Address, number];

/**
 * IPv6 text as the dialler reads it (inet_pton; WHATWG URL agrees), in plain hex. ipaddr.js alone
 * reads ::1.2.3.4 as ::ffff:1.2.3.4 (IPv4-mapped), while the socket dials ::102:304: judge what is dialled.
 */
export function canonicalIPv6(text: string): string {
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

/**
 * Parses one CIDR as written in OUTBOUND_ALLOW / OUTBOUND_DENY. The address part must be in
 * canonical form (ipaddr.js reads 010.0.0.0 as octal 8.0.0.0: no surprises in a security list);
 * an IPv4-mapped IPv6 range (::ffff:10.0.0.0/104) becomes its IPv4 range, as addresses do.
 */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const prefix = slash < 0 ? '' : text.slice(slash + 1);
  if (!isIP(address) || address.includes('%') || !/^\d{1,3}$/.test(prefix) || !ipaddr.isValidCIDR(text))
    throw new Error(
      `"${text}" is not a CIDR range like 10.0.0.0/8 or fd00::/8 (a single address is /32 or /128)`,
    );
  const [net, bits] = ipaddr.parseCIDR(`${isIP(address) === 6 ? canonicalIPv6(address) : address}/${prefix}`);
  if (net.kind() === 'ipv6' && (net as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96)
    return [(net as ipaddr.IPv6).toIPv4Address(), bits - 96];
  return [net, bits];
}

/** The problem with a CIDR entry, or undefined: for config validation. */
export function cidrProblem(text: string): string | undefined {
  try {
    parseCidr(text);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
