import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';
import { canonicalIPv6, type Address } from '../net/cidr';
import { withDeadline } from './kit/deadline';

/** A service Sluice itself depends on (its database, its Redis): never a source's destination. */
export interface OwnService {
  /** For the refusal message: "Sluice's own database". */
  label: string;
  /** As configured: a name, an address, or '' for a local socket. */
  host: string;
  port: number;
}

/** Every address `host` resolves to (the policy must know them all, not the first). */
export type AllAddressesResolver = (host: string) => Promise<string[]>;

export const systemAllResolver: AllAddressesResolver = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** This machine's own interface addresses: a server bound to 0.0.0.0 answers on each of them. */
export const localInterfaceAddresses = (): string[] =>
  Object.values(networkInterfaces())
    .flat()
    .flatMap((i) => (i ? [i.address] : []));

export interface OwnServicesOptions {
  resolveAll?: AllAddressesResolver;
  localAddresses?: () => string[];
  /** How long resolved addresses are trusted before they are looked up again. */
  ttlMs?: number;
}

interface Resolved {
  label: string;
  /** As configured (a cluster has several nodes of one label and port). */
  host: string;
  port: number;
  /** Canonical texts of the addresses the service is reached at. */
  addresses: Set<string>;
  /** On this machine: then every loopback and local interface address reaches it too. */
  local: boolean;
}

/**
 * The address:port pairs of Sluice's own database and Redis, as the worker reaches them, so the
 * outbound policy can refuse them whatever OUTBOUND_ALLOW says: a source pointed at them would
 * read (or write) Sluice's own state with whatever access they grant. Host names are resolved
 * with every address they have and looked up again after `ttlMs`; a service on this machine
 * (loopback, a local interface, a socket path) is matched on every loopback and local address,
 * since a server bound to 0.0.0.0 answers on all of them.
 */
export class OwnServices {
  private resolved: Resolved[] = [];
  private resolvedAt = -Infinity;
  private refreshing?: Promise<void>;
  private readonly resolveAll: AllAddressesResolver;
  private readonly localAddresses: () => string[];
  private readonly ttlMs: number;

  constructor(
    /** The services, or how to list them now (a Redis Cluster's nodes change): read at each lookup. */
    private readonly services: readonly OwnService[] | (() => Promise<readonly OwnService[]>),
    options: OwnServicesOptions = {},
  ) {
    this.resolveAll = options.resolveAll ?? systemAllResolver;
    this.localAddresses = options.localAddresses ?? localInterfaceAddresses;
    this.ttlMs = options.ttlMs ?? 60_000;
  }

  /**
   * Looks the services up again when the last lookup is older than the TTL. A failed lookup keeps
   * the addresses found before (the worker could not reach its own service by that name either).
   */
  async refresh(timeoutMs: number): Promise<void> {
    if (performance.now() - this.resolvedAt < this.ttlMs) return;
    this.refreshing ??= this.lookUp(timeoutMs).finally(() => {
      this.refreshing = undefined;
    });
    await this.refreshing;
  }

  /** The label of the own service at `address`:`port` (effective: an embedded IPv4 it reaches), if any. */
  match(address: Address, effective: Address, port: number): string | undefined {
    const texts = [canonical(address), canonical(effective)];
    for (const service of this.resolved) {
      if (service.port !== port) continue;
      if (texts.some((t) => service.addresses.has(t))) return service.label;
      if (service.local && [address, effective].some((a) => this.isLocal(a))) return service.label;
    }
    return undefined;
  }

  private isLocal(addr: Address): boolean {
    if (addr.range() === 'loopback' || addr.range() === 'unspecified') return true;
    const text = canonical(addr);
    return this.localAddresses().some((a) => isIP(a) && canonical(parse(a)) === text);
  }

  private async lookUp(timeoutMs: number): Promise<void> {
    const local = new Set(
      this.localAddresses()
        .filter((a) => isIP(a))
        .map((a) => canonical(parse(a))),
    );
    const next: Resolved[] = [];
    let services: readonly OwnService[];
    try {
      services =
        typeof this.services === 'function'
          ? await withDeadline(this.services(), timeoutMs, 'listing own services')
          : this.services;
    } catch {
      // Keep what was found before; the next refresh asks again.
      return;
    }
    for (const service of services) {
      const previous = this.resolved.find(
        (r) => r.label === service.label && r.port === service.port && r.host === service.host,
      );
      let found: string[];
      const host = service.host.replace(/^\[|\]$/g, '');
      if (!host) found = ['127.0.0.1', '::1'];
      else if (isIP(host)) found = [host];
      else {
        try {
          found = await withDeadline(this.resolveAll(host), timeoutMs, 'DNS lookup');
        } catch {
          if (previous) next.push(previous);
          continue;
        }
      }
      const addresses = new Set(found.filter((a) => isIP(a)).map((a) => canonical(parse(a))));
      const isLocal = [...addresses].some(
        (a) => local.has(a) || ['loopback', 'unspecified'].includes(ipaddr.parse(a).range()),
      );
      next.push({ label: service.label, host: service.host, port: service.port, addresses, local: isLocal });
    }
    this.resolved = next;
    this.resolvedAt = performance.now();
  }
}

function parse(text: string): Address {
  return ipaddr.process(isIP(text) === 6 ? canonicalIPv6(text.split('%')[0]!) : text);
}

function canonical(addr: Address): string {
  return addr.toNormalizedString();
}

/**
 * The host and port of a DATABASE_URL or REDIS_URL, for OwnServices. A URL without a host (a
 * socket path) counts as this machine: the same server usually listens on its TCP port too.
 */
export function ownService(label: string, url: string, defaultPort: number): OwnService {
  try {
    const parsed = new URL(url);
    return { label, host: parsed.hostname, port: parsed.port ? Number(parsed.port) : defaultPort };
  } catch {
    return { label, host: '', port: defaultPort };
  }
}
