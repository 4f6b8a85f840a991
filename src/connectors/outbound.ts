import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/**
 * Every outbound connection a connector opens starts here: resolve the host once, then connect to
 * the returned address (never the name again), so a DNS answer cannot change between the check
 * and the connect. The address policy (allowed and refused ranges) plugs in at `check`.
 */
export interface OutboundPolicy {
  /** Throws OutboundRefusedError when `address` may not be reached by a connector of `kind`. */
  check(address: string, kind: OutboundKind): void;
}

/** http: api and file-by-URL sources; service: database and stream sources. */
export type OutboundKind = 'http' | 'service';

export class OutboundRefusedError extends Error {
  readonly code = 'forbidden_address';
  constructor(readonly address: string) {
    super('the address is not allowed by the outbound policy');
    this.name = 'OutboundRefusedError';
  }
}

export interface ResolvedTarget {
  host: string;
  address: string;
  family: 4 | 6;
}

export type Resolver = (host: string) => Promise<{ address: string; family: number }>;

export const systemResolver: Resolver = (host) => lookup(host, { verbatim: true });

/** Allows everything: the default until the security policy is configured (issue: outbound policy). */
export const allowAll: OutboundPolicy = { check: () => undefined };

export class Outbound {
  constructor(
    private readonly policy: OutboundPolicy = allowAll,
    private readonly resolver: Resolver = systemResolver,
  ) {}

  /** Resolves `host` once (within `timeoutMs`) and checks the address against the policy. */
  async resolve(host: string, kind: OutboundKind, timeoutMs: number): Promise<ResolvedTarget> {
    const bare = host.replace(/^\[|\]$/g, '');
    let address = bare;
    let family = isIP(bare);
    if (!family) {
      let timer: NodeJS.Timeout | undefined;
      try {
        const answer = await Promise.race([
          this.resolver(bare),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () =>
                reject(
                  Object.assign(new Error(`DNS lookup timed out after ${timeoutMs} ms`), {
                    code: 'ETIMEOUT',
                  }),
                ),
              timeoutMs,
            );
          }),
        ]);
        address = answer.address;
        family = answer.family;
      } finally {
        clearTimeout(timer);
      }
    }
    this.policy.check(address, kind);
    return { host: bare, address, family: family === 6 ? 6 : 4 };
  }
}
