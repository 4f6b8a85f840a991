import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addMigrationName, addMigrationTemplate } from './add-migration-template';
import type { EntityInfo } from './entity-info';
import { migrationTemplate } from './migration-template';
import { SNAPSHOT_FILE, type RecordedTable, type ShapeSnapshot } from './shape-snapshot';
import { describeAdditions, diffTableShape, isEmpty, tableShape } from './table-shape';

/** A spec change no generated migration can make; the message says what to do instead. */
export class SchemaDriftError extends Error {
  constructor(readonly problems: string[]) {
    super(
      [
        'specs/entities.json changes tables in ways `make generate` does not write migrations for',
        '(it adds tables, columns, unique constraints and indexes; it never drops, renames or alters):',
        ...problems.map((p) => `  - ${p}`),
        'Use expand/contract in migrations you write by hand: add the new shape beside the old one,',
        'backfill, move readers and writers over, and drop the old shape in a later release. Then record',
        'that the migrations now build the spec: npm run generate -- --shaped-by <your migration file>',
      ].join('\n'),
    );
    this.name = 'SchemaDriftError';
  }
}

export interface MigrationPlanOptions {
  /** Absolute path of the migrations folder. */
  migrationsDir: string;
  recorded: ShapeSnapshot | undefined;
  now: Date;
  /** A hand-written migration (file name in migrationsDir) that brings every differing table to the spec's shape. */
  shapedBy?: string;
  /** Formats a migration the way it is written, to recognise a landed one byte for byte. */
  format(source: string): Promise<string>;
}

export interface MigrationPlan {
  /** New migrations: file name → content (unformatted). */
  migrations: Map<string, string>;
  tables: Record<string, RecordedTable>;
  /** The changes the new migrations make, in words. */
  pending: string[];
}

const MIGRATION_FILE = /^(\d{14})_[a-z0-9_]+\.ts$/;
const stamp = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
const parseStamp = (s: string) =>
  new Date(
    `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(8, 10)}:${s.slice(10, 12)}:${s.slice(12)}Z`,
  );

/**
 * Decides which migrations the spec needs: the initial one of a new table, an additive one for a
 * table whose spec gained columns or indexes since its recorded shape. Throws SchemaDriftError for
 * a change that would need a drop, rename or alteration. Landed migrations are never rewritten.
 */
export async function planMigrations(
  entities: EntityInfo[],
  options: MigrationPlanOptions,
): Promise<MigrationPlan> {
  const existing = (await readdir(options.migrationsDir).catch(() => [] as string[]))
    .filter((n) => MIGRATION_FILE.test(n))
    .sort();
  // A new migration sorts after every landed one even if this clock is behind theirs, and
  // migrations written in one run get consecutive seconds in spec order.
  const last = existing.at(-1);
  let next = Math.max(options.now.getTime(), last ? parseStamp(last.slice(0, 14)).getTime() + 1000 : 0);
  const nextStamp = () => {
    const s = stamp(new Date(next));
    next += 1000;
    return s;
  };

  const recorded = options.recorded?.tables ?? {};
  const plan: MigrationPlan = { migrations: new Map(), tables: {}, pending: [] };
  const problems: string[] = [];
  const { shapedBy } = options;
  if (shapedBy !== undefined && !existing.includes(shapedBy))
    problems.push(`--shaped-by ${shapedBy}: no such migration in migrations/`);

  for (const e of entities) {
    const shape = tableShape(e);
    const record = recorded[e.table];
    if (!record) {
      const create = existing.find((n) => n.endsWith(`_create_${e.table}.ts`));
      if (!create) {
        const name = `${nextStamp()}_create_${e.table}.ts`;
        plan.migrations.set(name, migrationTemplate(e));
        plan.tables[e.table] = { migrations: [name], ...shape };
        plan.pending.push(`${e.table}: new table (entity ${e.pascal})`);
        continue;
      }
      // No record yet (the snapshot is newer than this table): a landed initial migration that is
      // exactly what the spec renders today proves the table has the spec's shape.
      const landed = await readFile(join(options.migrationsDir, create), 'utf8');
      if (landed === (await options.format(migrationTemplate(e))))
        plan.tables[e.table] = { migrations: [create], ...shape };
      else if (shapedBy !== undefined) plan.tables[e.table] = { migrations: [create, shapedBy], ...shape };
      else
        problems.push(
          `${e.table}: ${SNAPSHOT_FILE} records no shape for it and migrations/${create} no longer matches the spec`,
        );
      continue;
    }
    for (const m of record.migrations)
      if (!existing.includes(m))
        problems.push(`${e.table}: built by ${m}, which is missing from migrations/`);
    const { additions, problems: changes } = diffTableShape(record, e);
    if (!changes.length && isEmpty(additions)) {
      plan.tables[e.table] = record;
    } else if (shapedBy !== undefined) {
      plan.tables[e.table] = { migrations: [...record.migrations, shapedBy], ...shape };
    } else if (changes.length) {
      problems.push(...changes);
    } else {
      const name = `${nextStamp()}_${addMigrationName(e, additions)}.ts`;
      plan.migrations.set(name, addMigrationTemplate(e, additions));
      plan.tables[e.table] = { migrations: [...record.migrations, name], ...shape };
      plan.pending.push(...describeAdditions(e, additions));
    }
  }
  const specTables = new Set(entities.map((e) => e.table));
  for (const table of Object.keys(recorded))
    if (!specTables.has(table) && shapedBy === undefined)
      problems.push(`${table}: no entity of the spec has this table any more (a drop)`);
  if (problems.length) throw new SchemaDriftError(problems);
  return plan;
}
