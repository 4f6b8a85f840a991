import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { withDeadline } from './kit/deadline';

/**
 * Every outbound connection a connector opens starts here: resolve the host once, then connect to
 * the returned address (never the name again), so a DNS answer cannot change between the check
 * and the connect. The address policy (allowed and refused ranges) plugs in at `check`.
 */
export interface OutboundPolicy {
  /**
   * Throws OutboundRefusedError when `address` (and `port`, when the caller knows it) may not be
   * reached by a connector of `kind`.
   */
  check(address: string, kind: OutboundKind, port?: number): void;
  /** Brings what `check` relies on up to date (looks Sluice's own services up again); bounded by `timeoutMs`. */
  prepare?(timeoutMs: number): Promise<void>;
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

/**
 * A destination already has the most attempts allowed waiting for its first answer: it is not
 * answering (black-holed, overloaded). Transient: the job retries with backoff.
 */
export class OutboundBusyError extends Error {
  readonly code = 'busy';
  constructor(destination: string, pending: number) {
    super(
      `${pending} connection attempts to ${destination} are already waiting for an answer; not adding another`,
    );
    this.name = 'OutboundBusyError';
  }
}

/** How long an attempt at the cap waits for a slot: a destination that answers frees one in far less. */
const PENDING_WAIT_MS = 100;

interface Destination {
  pending: number;
  waiters: (() => void)[];
  /**
   * Whether the attempt that ended last got an answer (false: timed out, refused); undefined
   * before any ended. The order of endings, not their clock times: two in the same millisecond
   * must not leave a destination trusted after its latest attempt failed.
   */
  lastAnswered: boolean | undefined;
}

/** Failure codes (kit/classify-error.ts) after which a destination counts as not having answered. */
export const UNANSWERED: ReadonlySet<string> = new Set(['timeout', 'refused', 'dns', 'unknown']);

/** Ends a claimed attempt: `answered` when the destination answered (connected, sent headers). */
export type ReleasePending = (answered: boolean) => void;

export class Outbound {
  /** One small entry per destination ever claimed: bounded by the sources' distinct hosts. */
  private readonly destinations = new Map<string, Destination>();

  /**
   * `maxPending`: attempts that may wait at once for the first answer of a destination that has
   * not answered lately (OUTBOUND_MAX_PENDING); 0 = no cap.
   */
  constructor(
    private readonly policy: OutboundPolicy = allowAll,
    private readonly resolver: Resolver = systemResolver,
    private readonly maxPending = 0,
  ) {}

  /**
   * Claims a pending slot toward `address`:`port` for an attempt that has no answer yet (connecting,
   * or waiting for a response's first bytes); release it once it has one, or failed. Why: an attempt
   * towards a host that black-holes packets holds a worker slot for the whole timeout, and a few such
   * sources would occupy every slot and starve the healthy ones. So a destination whose last attempt
   * got no answer (or that never answered yet) gets at most `maxPending` attempts in flight; one
   * more waits briefly for a slot, then fails at once with OutboundBusyError (transient: retried
   * with backoff) instead of waiting out a timeout. A destination that answers is not capped.
   */
  async claim(address: string, port: number | string): Promise<ReleasePending> {
    if (!this.maxPending) return () => undefined;
    const key = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
    let d = this.destinations.get(key);
    if (!d) {
      d = { pending: 0, waiters: [], lastAnswered: undefined };
      this.destinations.set(key, d);
    }
    const dest = d;
    const trusted = () => dest.lastAnswered === true;
    if (!trusted() && dest.pending >= this.maxPending) {
      const admitted = await new Promise<boolean>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          const at = dest.waiters.indexOf(wake);
          if (at >= 0) dest.waiters.splice(at, 1);
          resolve(false);
        }, PENDING_WAIT_MS);
        dest.waiters.push(wake);
      });
      if (!admitted && !trusted() && dest.pending >= this.maxPending)
        throw new OutboundBusyError(key, dest.pending);
    }
    dest.pending += 1;
    let released = false;
    return (answered) => {
      if (released) return;
      released = true;
      dest.pending -= 1;
      dest.lastAnswered = answered;
      dest.waiters.shift()?.();
    };
  }

  /**
   * Runs `attempt`, which lasts until the destination's first answer, in a pending slot toward
   * `address`:`port` (claim()). The slot ends answered when the attempt succeeds or fails with
   * something the destination said (auth, protocol...), unanswered when `classify` names a
   * failure in UNANSWERED (timed out, refused, nothing known).
   */
  async pending<T>(
    address: string,
    port: number | string,
    attempt: () => Promise<T>,
    classify: (err: unknown) => string,
  ): Promise<T> {
    const release = await this.claim(address, port);
    try {
      const value = await attempt();
      release(true);
      return value;
    } catch (err) {
      release(!UNANSWERED.has(classify(err)));
      throw err;
    }
  }

  /**
   * Resolves `host` once (within `timeoutMs`) and checks the address, with the `port` about to be
   * dialled, against the policy.
   */
  async resolve(host: string, kind: OutboundKind, timeoutMs: number, port?: number): Promise<ResolvedTarget> {
    const bare = host.replace(/^\[|\]$/g, '');
    let address = bare;
    let family = isIP(bare);
    if (!family) {
      const answer = await withDeadline(this.resolver(bare), timeoutMs, 'DNS lookup', {
        timeoutError: () =>
          Object.assign(new Error(`DNS lookup timed out after ${timeoutMs} ms`), { code: 'ETIMEOUT' }),
      });
      address = answer.address;
      family = answer.family;
    }
    await this.policy.prepare?.(timeoutMs);
    this.policy.check(address, kind, port);
    return { host: bare, address, family: family === 6 ? 6 : 4 };
  }
}
