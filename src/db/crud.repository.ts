import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { MASK_BY_SHAPE, type SecretMask } from '../crypto/mask-secret';
import type { SecretBox } from '../crypto/secret-box';
import { PreparedStatement } from './prepared-statement';
import type { ResourceDescriptor, Row } from '../http/crud/resource';

export interface Page<T> {
  data: T[];
  total: number;
}

interface PgError {
  code?: string;
  constraint?: string;
  /** Objection wraps driver errors (db-errors) and keeps the original here. */
  nativeError?: PgError;
}

/** A LIKE pattern matching `text` literally (backslash is Postgres's default LIKE escape). */
const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

export class UniqueViolation extends Error {
  constructor(readonly field: string | undefined) {
    super(`unique violation on ${field ?? 'unknown field'}`);
  }
}

/**
 * Generic persistence for a generated resource: writes encrypt sensitive fields and store their
 * masked form beside them; reads never decrypt. Rows are presented in the API's shape here.
 */
export class CrudRepository<T = Row> {
  private readonly columns: string[];
  private readonly orderBy = [
    { column: 'created_at', order: 'desc' as const },
    { column: 'id', order: 'desc' as const },
  ];

  constructor(
    readonly resource: ResourceDescriptor,
    private readonly knex: Knex,
    private readonly secrets: SecretBox,
    private readonly masks: SecretMask = MASK_BY_SHAPE,
    /**
     * Runs in an update's transaction after the row changed (the row is locked FOR UPDATE): what
     * must change with it or not at all. Rows as stored, not presented.
     */
    private readonly inUpdate?: (trx: Knex.Transaction, id: string, before: Row, after: Row) => Promise<void>,
  ) {
    this.columns = resource.fields.flatMap((f) => (f.sensitive ? [`${f.name}_masked`] : [f.name]));
    this.shown = resource.fields.map((f) =>
      f.sensitive ? { name: f.name, masked: `${f.name}_masked`, has: `has_${f.name}` } : { name: f.name },
    );
    this.byId = new PreparedStatement(
      `sluice_${resource.table}_by_id`,
      this.select().where({ id: '' }).first() as unknown as Knex.QueryBuilder,
    );
  }

  /** present()'s field names, built once: it runs for every row of every read. */
  private readonly shown: { name: string; masked?: string; has?: string }[];
  /**
   * get()'s statement, compiled once and prepared on each connection: knex compiled the same
   * select on every GET (about 4% of its CPU in bench/api-read.bench.ts), PostgreSQL parsed it.
   */
  private readonly byId: PreparedStatement<Row>;

  private query() {
    return this.resource.model.query(this.knex);
  }

  /**
   * Reads go through knex, not the Objection model: rows are presented as plain data anyway, and
   * hydrating model instances took about a tenth of a GET's CPU (profiled under bench/api-read.bench.ts).
   */
  private select() {
    return this.knex(this.resource.table).select(this.columns);
  }

  private filterWhere(filters: Row): Row {
    const where: Row = {};
    for (const [param, field] of Object.entries(this.resource.filters))
      if (filters[param] !== undefined) where[field] = filters[param];
    return where;
  }

  /**
   * Prefix filters as `lower(field) LIKE 'prefix%'`, the form an index on
   * (lower(field) text_pattern_ops) serves; the value's own % and _ match literally.
   */
  private prefixWhere(query: Row): (builder: Knex.QueryBuilder) => void {
    const matches = Object.entries(this.resource.prefixFilters ?? {}).filter(
      ([param]) => typeof query[param] === 'string',
    );
    return (builder) => {
      for (const [param, field] of matches)
        builder.whereRaw('lower(??) LIKE ?', [
          field,
          `${escapeLike((query[param] as string).toLowerCase())}%`,
        ]);
    };
  }

  /** `narrow`: hand-written filters (ResourceHooks.listFilters), applied to the page and its count. */
  async list(
    query: Row & { limit: number; offset: number },
    count?: (filters: Row) => Promise<number>,
    narrow: (builder: Knex.QueryBuilder) => void = () => undefined,
  ): Promise<Page<T>> {
    const where = this.filterWhere(query);
    const prefixed = Object.keys(this.resource.prefixFilters ?? {}).some((p) => query[p] !== undefined);
    const prefix = this.prefixWhere(query);
    const page = this.select()
      .where(where)
      .modify(prefix)
      .modify(narrow)
      .orderBy(this.orderBy)
      .limit(query.limit)
      .offset(query.offset);
    // An entity's own counter (a ledger) answers equality filters only.
    const total =
      count && !prefixed
        ? count(where)
        : this.knex(this.resource.table)
            .where(where)
            .modify(prefix)
            .modify(narrow)
            .count({ total: '*' })
            .then((rows) => Number(rows[0]?.total ?? 0));
    const [rows, n] = await Promise.all([page, total]);
    return { data: (rows as unknown as Row[]).map((r) => this.present(r)), total: n };
  }

  async get(id: string): Promise<T | undefined> {
    const [row] = await this.byId.rows(this.knex, [id]);
    return row ? this.present(row) : undefined;
  }

  async create(input: Row): Promise<T> {
    const id = randomUUID();
    const row = { id, ...this.toColumns(id, input) };
    try {
      const created = await this.query().insert(row).returning(this.columns);
      return this.present(created as unknown as Row);
    } catch (err) {
      throw this.translate(err);
    }
  }

  /** Applies `patch` (omitted fields keep their value); returns the row before and after, or undefined. */
  async update(id: string, patch: Row): Promise<{ before: T; after: T } | undefined> {
    const changes: Row = this.toColumns(id, patch);
    for (const f of this.resource.fields) if (f.autoNow) changes[f.name] = this.knex.fn.now();
    const remask = this.masks.inputs.some((name) => name in patch);
    const sealed = remask
      ? this.resource.fields.filter((f) => f.sensitive).map((f) => `${f.name}_ciphertext`)
      : [];
    try {
      return await this.knex.transaction(async (trx) => {
        const model = this.resource.model;
        const before = (await model
          .query(trx)
          .findById(id)
          .select([...this.columns, ...sealed])
          .forUpdate()) as unknown as Row | undefined;
        if (!before) return undefined;
        this.remask(id, { ...before, ...patch }, patch, changes, remask);
        const [after] = await model.query(trx).patch(changes).where({ id }).returning(this.columns);
        await this.inUpdate?.(trx, id, before, after as unknown as Row);
        return {
          before: this.present(before),
          after: this.present(after as unknown as Row),
        };
      });
    } catch (err) {
      throw this.translate(err);
    }
  }

  /**
   * The masked forms of an update, from the row as it will be: a new secret is masked in the
   * context of the other fields, and a change to a mask input (source_type) re-masks the stored
   * secret too (decrypted here, only to compute its shown form).
   */
  private remask(id: string, row: Row, patch: Row, changes: Row, inputsChanged: boolean): void {
    for (const f of this.resource.fields) {
      if (!f.sensitive || f.readOnly) continue;
      const masked = `${f.name}_masked`;
      if (f.name in patch) {
        const secret = patch[f.name] as string | null;
        changes[masked] = secret === null ? null : this.masks.mask(f.name, secret, row);
        continue;
      }
      const envelope = row[`${f.name}_ciphertext`];
      if (inputsChanged && typeof envelope === 'string') {
        const secret = this.secrets.decrypt(envelope, this.associatedData(id, f.name));
        changes[masked] = this.masks.mask(f.name, secret, row);
      }
    }
  }

  async delete(id: string): Promise<T | undefined> {
    const [row] = await this.query().delete().where({ id }).returning(this.columns);
    return row ? this.present(row as unknown as Row) : undefined;
  }

  /** The ciphertext of a sensitive field, decrypted: only the workers that connect need this. */
  async revealSecret(id: string, field: string): Promise<string | null> {
    const row = (await this.knex(this.resource.table).select(`${field}_ciphertext`).where({ id }).first()) as
      Row | undefined;
    const envelope = row?.[`${field}_ciphertext`];
    return typeof envelope === 'string'
      ? this.secrets.decrypt(envelope, this.associatedData(id, field))
      : null;
  }

  associatedData(id: string, field: string): string {
    return `${this.resource.table}.${field}:${id}`;
  }

  /** The columns of `input`; sensitive fields sealed and masked in the context of `input` itself. */
  private toColumns(id: string, input: Row): Row {
    const out: Row = {};
    for (const f of this.resource.fields) {
      if (!(f.name in input) || f.readOnly) continue;
      const value = input[f.name];
      if (f.sensitive) {
        const secret = value as string | null;
        out[`${f.name}_ciphertext`] =
          secret === null ? null : this.secrets.encrypt(secret, this.associatedData(id, f.name));
        out[`${f.name}_masked`] = secret === null ? null : this.masks.mask(f.name, secret, input);
      } else out[f.name] = value;
    }
    return out;
  }

  present(row: Row): T {
    const out: Row = {};
    for (const { name, masked, has } of this.shown) {
      if (masked && has) {
        const value = row[masked] ?? null;
        out[name] = value;
        out[has] = value !== null;
        continue;
      }
      const value = row[name] ?? null;
      out[name] = value instanceof Date ? value.toISOString() : value;
    }
    return out as T;
  }

  private translate(err: unknown): unknown {
    const pgErr = (err as PgError)?.nativeError ?? (err as PgError);
    if (pgErr?.code === '23505')
      return new UniqueViolation(this.resource.uniqueConstraints[pgErr.constraint ?? '']);
    return err;
  }
}
