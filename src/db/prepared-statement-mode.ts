import type { Knex } from 'knex';

/** DATABASE_PREPARED_STATEMENTS: see Config.databasePreparedStatements. */
export const PREPARED_STATEMENT_MODES = ['auto', 'on', 'off'] as const;
export type PreparedStatementMode = (typeof PREPARED_STATEMENT_MODES)[number];

/** How one pool runs PreparedStatements, and whether `auto` has given up on names there. */
export interface PreparedStatementPolicy {
  mode: PreparedStatementMode;
  /** Set once, by the first error that shows the server side lost or already held a name. */
  unnamed: boolean;
  /** Told once, when `auto` falls back (the container logs it). */
  onFallback?: (err: unknown) => void;
}

/**
 * Keyed by knex's client config: one object per createKnex() call, shared by the client and the
 * transactions knex derives from it, so a statement run on a transaction follows its pool's policy.
 */
const policies = new WeakMap<object, PreparedStatementPolicy>();

const keyOf = (knex: Knex) => (knex.client as { config: object }).config;

export function setPreparedStatementMode(
  knex: Knex,
  mode: PreparedStatementMode,
  onFallback?: (err: unknown) => void,
): void {
  policies.set(keyOf(knex), { mode, unnamed: false, onFallback });
}

/** The pool's policy; `auto` for a knex nobody configured (scripts, tests). */
export function preparedStatementPolicy(knex: Knex): PreparedStatementPolicy {
  const key = keyOf(knex);
  let policy = policies.get(key);
  if (!policy) policies.set(key, (policy = { mode: 'auto', unnamed: false }));
  return policy;
}

/**
 * The errors a pooler in transaction mode without prepared-statement support causes: the Bind of
 * a name this client prepared on another server connection (26000 "prepared statement does not
 * exist"), or the Parse of a name another client already prepared on this one (42P05).
 */
export function isLostPreparedStatement(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === '26000' || code === '42P05';
}
