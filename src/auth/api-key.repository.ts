import type { Knex } from 'knex';
import type { ApiScope } from '../config';
import { generateToken, shownPrefix, tokenHash } from './api-token';

const TABLE = 'api_keys';
/** Never token_hash: it leaves this module only through findByHash's comparison. */
const COLUMNS = ['id', 'name', 'scope', 'prefix', 'created_at', 'last_used_at', 'revoked_at'] as const;

import type { ApiKey } from './auth.contracts';

export type { ApiKey };

interface ApiKeyRow extends Omit<ApiKey, 'created_at' | 'last_used_at' | 'revoked_at'> {
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const toApiKey = (row: ApiKeyRow): ApiKey => ({
  id: row.id,
  name: row.name,
  scope: row.scope,
  prefix: row.prefix,
  created_at: row.created_at.toISOString(),
  last_used_at: row.last_used_at?.toISOString() ?? null,
  revoked_at: row.revoked_at?.toISOString() ?? null,
});

export class DuplicateKeyName extends Error {
  constructor() {
    super('an API key with this name exists');
    this.name = 'DuplicateKeyName';
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The api_keys table: create (returns the token once), list, revoke, look up by hash. */
export class ApiKeyRepository {
  constructor(private readonly knex: Knex) {}

  /** Stores a new key and returns it with its token: the only time the token exists outside its holder. */
  async create(name: string, scope: ApiScope): Promise<ApiKey & { token: string; hash: string }> {
    const token = generateToken();
    const hash = tokenHash(token);
    try {
      const [row] = await this.knex(TABLE)
        .insert({ name, scope, prefix: shownPrefix(token), token_hash: hash })
        .returning<ApiKeyRow[]>([...COLUMNS]);
      return { ...toApiKey(row!), token, hash };
    } catch (err) {
      if ((err as { code?: string; constraint?: string }).constraint === 'api_keys_name_unique')
        throw new DuplicateKeyName();
      throw err;
    }
  }

  async list(limit: number, offset: number): Promise<{ data: ApiKey[]; total: number }> {
    const [rows, counted] = await Promise.all([
      this.knex(TABLE)
        .select<ApiKeyRow[]>([...COLUMNS])
        .orderBy([
          { column: 'created_at', order: 'desc' },
          { column: 'id', order: 'desc' },
        ])
        .limit(limit)
        .offset(offset),
      this.knex(TABLE).count<{ count: string }[]>({ count: '*' }),
    ]);
    return { data: rows.map(toApiKey), total: Number(counted[0]?.count ?? 0) };
  }

  /** Marks the key (by id, or by name) revoked; the hash is returned so caches can forget it at once. */
  async revoke(idOrName: string): Promise<{ key: ApiKey; hash: string } | undefined> {
    const where = UUID.test(idOrName) ? { id: idOrName.toLowerCase() } : { name: idOrName };
    const [row] = await this.knex(TABLE)
      .where(where)
      .update({ revoked_at: this.knex.raw('coalesce(revoked_at, now())') })
      .returning<(ApiKeyRow & { token_hash: string })[]>([...COLUMNS, 'token_hash']);
    return row ? { key: toApiKey(row), hash: row.token_hash } : undefined;
  }

  /** The unrevoked key with this token hash. */
  async findByHash(hash: string): Promise<Pick<ApiKey, 'id' | 'name' | 'scope'> | undefined> {
    return this.knex(TABLE)
      .select('id', 'name', 'scope')
      .where({ token_hash: hash })
      .whereNull('revoked_at')
      .first();
  }

  async countUsable(): Promise<number> {
    const counted = await this.knex(TABLE).whereNull('revoked_at').count<{ count: string }[]>({ count: '*' });
    return Number(counted[0]?.count ?? 0);
  }

  async exists(name: string): Promise<boolean> {
    return Boolean(await this.knex(TABLE).select('id').where({ name }).first());
  }

  /** Best effort: when a key was last seen (the caller throttles it). */
  async touch(id: string): Promise<void> {
    await this.knex(TABLE).where({ id }).update({ last_used_at: this.knex.fn.now() });
  }
}
