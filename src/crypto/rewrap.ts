import type { Knex } from 'knex';
import { resources as generatedResources } from '../generated';
import type { ResourceDescriptor } from '../http/crud/resource';
import { MASK_BY_SHAPE, type SecretMask } from './mask-secret';
import { DecryptionError, type SecretBox } from './secret-box';

/** A table holding sealed values: `<field>_ciphertext` columns keyed by a uuid `id`. */
interface SealedTable {
  table: string;
  fields: string[];
}

/**
 * Sealed tables the spec does not generate: unsaved configurations under test (SourceDrafts) and
 * webhook notification signing secrets (SubscriptionRepository).
 */
const HAND_WRITTEN: SealedTable[] = [
  { table: 'source_drafts', fields: ['connection_string'] },
  { table: 'notification_subscriptions', fields: ['secret'] },
];

/** Failures kept by id in the report; all are counted, but a broken keyring must not fill memory. */
const MAX_REPORTED = 1000;

export interface RewrapFailure {
  table: string;
  field: string;
  id: string;
  /** Why it could not be opened (DecryptionError's reason); never the value. */
  reason: string;
}

export interface RewrapCounts {
  /** Sealed values examined (nulls are not secrets). */
  scanned: number;
  /** Re-encrypted with the primary key. */
  rewrapped: number;
  /** Changed by someone else between our read and our write: left as they are (run again to check). */
  skipped: number;
  /** Could not be decrypted with the keyring: left as they are. */
  failed: number;
  failures: RewrapFailure[];
}

export interface RewrapOptions {
  batchSize?: number;
  /** Generated resources whose sensitive fields are sealed; every generated one by default. */
  resources?: readonly ResourceDescriptor[];
  /** Called after each batch is written, for progress output. */
  onBatch?(table: string, counts: Readonly<RewrapCounts>): void;
}

/**
 * The binding SecretBox's associated data uses for a stored secret: CrudRepository.associatedData
 * and SourceDrafts seal with exactly this, so a value rewrapped here opens there.
 */
export function associatedData(table: string, field: string, id: string): string {
  return `${table}.${field}:${id}`;
}

/**
 * Key rotation: re-encrypts every sealed value that the primary key (the first of ENCRYPTION_KEYS)
 * did not seal, so the old keys can then be dropped. Rows are paged by id (keyset, so the cost
 * of a page does not grow with the table) and each batch is written in one transaction, each
 * update guarded by the ciphertext it read: a value the API rewrote meanwhile is left alone.
 * A value that does not decrypt is counted and reported by id, and the run goes on.
 */
export async function rewrapSecrets(
  knex: Knex,
  secrets: SecretBox,
  options: RewrapOptions = {},
): Promise<RewrapCounts> {
  const batchSize = options.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error('batchSize must be a positive integer');
  const counts: RewrapCounts = { scanned: 0, rewrapped: 0, skipped: 0, failed: 0, failures: [] };
  for (const target of sealedTables(options.resources ?? generatedResources)) {
    if (!(await knex.schema.hasTable(target.table))) continue;
    for await (const rows of pages(knex, target, batchSize)) {
      await rewrapBatch(knex, secrets, target, rows, counts);
      options.onBatch?.(target.table, counts);
    }
  }
  return counts;
}

function sealedTables(resources: readonly ResourceDescriptor[]): SealedTable[] {
  const generated = resources
    .map((r) => ({ table: r.table, fields: r.fields.filter((f) => f.sensitive).map((f) => f.name) }))
    .filter((t) => t.fields.length > 0);
  return [...generated, ...HAND_WRITTEN];
}

type SealedRow = { id: string } & Record<string, string | null>;

async function* pages(
  knex: Knex,
  target: SealedTable,
  batchSize: number,
  extra: readonly string[] = [],
): AsyncGenerator<SealedRow[]> {
  const columns = target.fields.map((f) => `${f}_ciphertext`);
  let after: string | undefined;
  for (;;) {
    const query = knex(target.table)
      .select('id', ...columns, ...extra)
      .where((q) => {
        for (const c of columns) void q.orWhereNotNull(c);
      })
      .orderBy('id')
      .limit(batchSize);
    if (after !== undefined) void query.where('id', '>', after);
    const rows = (await query) as SealedRow[];
    if (rows.length) yield rows;
    if (rows.length < batchSize) return;
    after = rows[rows.length - 1]!.id;
  }
}

async function rewrapBatch(
  knex: Knex,
  secrets: SecretBox,
  target: SealedTable,
  rows: SealedRow[],
  counts: RewrapCounts,
): Promise<void> {
  // Per column: [id, ciphertext read, ciphertext under the primary key].
  const changes = new Map<string, [string, string, string][]>();
  for (const field of target.fields) {
    const column = `${field}_ciphertext`;
    const list: [string, string, string][] = [];
    for (const row of rows) {
      const sealed = row[column];
      if (typeof sealed !== 'string') continue;
      counts.scanned++;
      if (secrets.keyIdOf(sealed) === secrets.primaryKeyId) continue;
      const aad = associatedData(target.table, field, row.id);
      try {
        list.push([row.id, sealed, secrets.encrypt(secrets.decrypt(sealed, aad), aad)]);
      } catch (err) {
        if (!(err instanceof DecryptionError)) throw err;
        counts.failed++;
        if (counts.failures.length < MAX_REPORTED)
          counts.failures.push({
            table: target.table,
            field,
            id: row.id,
            reason: err.message,
          });
      }
    }
    if (list.length) changes.set(column, list);
  }
  if (!changes.size) return;
  await knex.transaction(async (trx) => {
    for (const [column, list] of changes) {
      // One statement per column and batch; the guard on the old ciphertext makes a concurrent
      // rewrite (a PUT, another rewrap) win instead of being overwritten with the older secret.
      const values = list.map(() => '(?::uuid, ?, ?)').join(', ');
      const result = await trx.raw(
        `UPDATE ?? AS t SET ?? = v.sealed
         FROM (VALUES ${values}) AS v(id, old, sealed)
         WHERE t.id = v.id AND ?? = v.old`,
        [target.table, column, ...list.flat(), `t.${column}`],
      );
      const updated = (result as { rowCount: number }).rowCount;
      counts.rewrapped += updated;
      counts.skipped += list.length - updated;
    }
  });
}

export interface RemaskCounts {
  /** Sealed values examined. */
  scanned: number;
  /** Whose stored masked form changed (masked by the rules of an older version). */
  remasked: number;
  /** Changed by someone else between our read and our write: left as they are (already current). */
  skipped: number;
  /** Could not be decrypted with the keyring: left as they are. */
  failed: number;
  failures: RewrapFailure[];
}

export interface RemaskOptions {
  batchSize?: number;
  resources?: readonly ResourceDescriptor[];
  /** Per table, the masking its repository uses (CrudRepository's SecretMask); by URL shape otherwise. */
  masks?: ReadonlyMap<string, SecretMask>;
  onBatch?(table: string, counts: Readonly<RemaskCounts>): void;
}

/**
 * Recomputes every stored `<field>_masked` with today's masking rules: the masked form is computed
 * when a secret is written, so values written under older, looser rules keep showing what those
 * rules left visible until rewritten. Decrypts each secret only to mask it, writes only masks that
 * change, each guarded by the ciphertext it read (a PUT meanwhile wrote its own, current mask).
 */
export async function remaskSecrets(
  knex: Knex,
  secrets: SecretBox,
  options: RemaskOptions = {},
): Promise<RemaskCounts> {
  const batchSize = options.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error('batchSize must be a positive integer');
  const counts: RemaskCounts = { scanned: 0, remasked: 0, skipped: 0, failed: 0, failures: [] };
  const resources = options.resources ?? generatedResources;
  for (const resource of resources) {
    const fields = resource.fields.filter((f) => f.sensitive).map((f) => f.name);
    if (!fields.length || !(await knex.schema.hasTable(resource.table))) continue;
    const masks = options.masks?.get(resource.table) ?? MASK_BY_SHAPE;
    const target = { table: resource.table, fields };
    const extra = [...masks.inputs, ...fields.map((f) => `${f}_masked`)];
    for await (const rows of pages(knex, target, batchSize, extra)) {
      await remaskBatch(knex, secrets, target, masks, rows, counts);
      options.onBatch?.(resource.table, counts);
    }
  }
  return counts;
}

async function remaskBatch(
  knex: Knex,
  secrets: SecretBox,
  target: SealedTable,
  masks: SecretMask,
  rows: SealedRow[],
  counts: RemaskCounts,
): Promise<void> {
  // Per field: [id, ciphertext read, new masked form].
  const changes = new Map<string, [string, string, string][]>();
  for (const field of target.fields) {
    const list: [string, string, string][] = [];
    for (const row of rows) {
      const sealed = row[`${field}_ciphertext`];
      if (typeof sealed !== 'string') continue;
      counts.scanned++;
      let masked: string;
      try {
        masked = masks.mask(field, secrets.decrypt(sealed, associatedData(target.table, field, row.id)), row);
      } catch (err) {
        if (!(err instanceof DecryptionError)) throw err;
        counts.failed++;
        if (counts.failures.length < MAX_REPORTED)
          counts.failures.push({ table: target.table, field, id: row.id, reason: err.message });
        continue;
      }
      if (masked !== row[`${field}_masked`]) list.push([row.id, sealed, masked]);
    }
    if (list.length) changes.set(field, list);
  }
  if (!changes.size) return;
  await knex.transaction(async (trx) => {
    for (const [field, list] of changes) {
      const values = list.map(() => '(?::uuid, ?, ?)').join(', ');
      const result = await trx.raw(
        `UPDATE ?? AS t SET ?? = v.masked
         FROM (VALUES ${values}) AS v(id, old, masked)
         WHERE t.id = v.id AND ?? = v.old`,
        [target.table, `${field}_masked`, ...list.flat(), `t.${field}_ciphertext`],
      );
      const updated = (result as { rowCount: number }).rowCount;
      counts.remasked += updated;
      counts.skipped += list.length - updated;
    }
  });
}
