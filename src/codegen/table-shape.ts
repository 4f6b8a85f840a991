import type { EntityInfo, FieldInfo } from './entity-info';
import { indexName, uniqueConstraintName } from './entity-info';
import { fieldChecks, tableConstraints } from './migration-template';

/**
 * The part of an entity that a migration has to build: columns (type, nullability, default,
 * checks), unique constraints and indexes, each by the name the generated migrations give it.
 * Everything else in the spec (API paths, filters, read-only, sensitivity masks) changes code only.
 * Column definitions are SQL-like strings so that comparing two shapes is comparing strings and a
 * diff of the snapshot file reads like the migration it asks for.
 */
export interface TableShape {
  columns: Record<string, string>;
  unique: Record<string, string[]>;
  indexes: Record<string, string[]>;
}

function sqlType(f: FieldInfo): string {
  switch (f.type) {
    case 'uuid':
      return 'uuid';
    case 'string':
      return f.max_length ? `varchar(${f.max_length})` : 'text';
    case 'text':
    case 'enum':
      return 'text';
    case 'integer':
      return 'integer';
    case 'number':
      return 'double precision';
    case 'boolean':
      return 'boolean';
    case 'datetime':
      return 'timestamptz';
    case 'json':
      return 'jsonb';
  }
}

/** Column → definition for one field, mirroring what `columnLines` builds. */
export function fieldColumns(e: EntityInfo, f: FieldInfo): [column: string, definition: string][] {
  // Stored as ciphertext plus its masked form, both nullable text (see columnLines).
  if (f.sensitive) return f.columns.map((c) => [c, 'text']);
  const parts = [sqlType(f)];
  if (f.primary_key) parts.push('primary key');
  if (!f.nullable) parts.push('not null');
  if (f.primary_key) parts.push('default gen_random_uuid()');
  else if (f.auto_now || f.auto_now_add) parts.push('default now()');
  else if (f.dbDefault !== undefined)
    parts.push(
      `default ${typeof f.dbDefault === 'string' ? `'${f.dbDefault.replace(/'/g, "''")}'` : f.dbDefault}`,
    );
  for (const [, condition] of fieldChecks(e, f)) parts.push(`check (${condition})`);
  return [[f.name, parts.join(' ')]];
}

export function tableShape(e: EntityInfo): TableShape {
  const { uniques, indexes } = tableConstraints(e);
  return {
    columns: Object.fromEntries(e.fields.flatMap((f) => fieldColumns(e, f))),
    unique: Object.fromEntries(uniques.map((fields) => [uniqueConstraintName(e, fields), fields])),
    indexes: Object.fromEntries(indexes.map((fields) => [indexName(e, fields), fields])),
  };
}

/** What a generated migration adds to bring a table from its recorded shape to the spec's. */
export interface ShapeAdditions {
  fields: FieldInfo[];
  unique: string[][];
  indexes: string[][];
}

export interface ShapeDiff {
  additions: ShapeAdditions;
  /** Differences no additive migration can make (drops, renames, type and constraint changes). */
  problems: string[];
}

export const isEmpty = (a: ShapeAdditions) => !a.fields.length && !a.unique.length && !a.indexes.length;

/** Compares a table's recorded shape with the one its entity now implies. */
export function diffTableShape(recorded: TableShape, e: EntityInfo): ShapeDiff {
  const current = tableShape(e);
  const problems: string[] = [];
  const additions: ShapeAdditions = { fields: [], unique: [], indexes: [] };
  const t = e.table;

  for (const [column, was] of Object.entries(recorded.columns)) {
    const now = current.columns[column];
    if (now === undefined) problems.push(`${t}.${column}: column would be dropped (or renamed)`);
    else if (now !== was) problems.push(`${t}.${column}: column would change from "${was}" to "${now}"`);
  }
  for (const f of e.fields) {
    const columns = fieldColumns(e, f);
    const fresh = columns.filter(([c]) => recorded.columns[c] === undefined);
    if (!fresh.length) continue;
    if (fresh.length < columns.length) continue; // part of a changed field, reported above
    if (!f.nullable && f.dbDefault === undefined && !f.auto_now && !f.auto_now_add)
      problems.push(
        `${t}.${f.name}: a new required field without a default cannot be added to a table that has rows ` +
          '(add it optional or with a default, backfill, then make it required)',
      );
    else additions.fields.push(f);
  }
  for (const kind of ['unique', 'indexes'] as const) {
    const what = kind === 'unique' ? 'unique constraint' : 'index';
    for (const [name, was] of Object.entries(recorded[kind])) {
      const now = current[kind][name];
      if (now === undefined) problems.push(`${t}: ${what} ${name} would be dropped`);
      else if (now.join() !== was.join()) problems.push(`${t}: ${what} ${name} would change columns`);
    }
    for (const [name, fields] of Object.entries(current[kind]))
      if (recorded[kind][name] === undefined) additions[kind].push(fields);
  }
  return { additions, problems };
}

/** The additions in words, naming every column and index, for `make generate` and `--check`. */
export function describeAdditions(e: EntityInfo, a: ShapeAdditions): string[] {
  return [
    ...a.fields.map((f) => `${e.table}: new column ${f.name} (field ${e.pascal}.${f.name}, ${f.type})`),
    ...a.unique.map((fields) => `${e.table}: new unique constraint ${uniqueConstraintName(e, fields)}`),
    ...a.indexes.map((fields) => `${e.table}: new index ${indexName(e, fields)}`),
  ];
}
