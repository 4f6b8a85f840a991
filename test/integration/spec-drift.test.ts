import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntitySpec, FieldSpec, SpecFile } from '../../src/codegen/spec';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * The drift guard end to end, on a copy of the project's spec, migrations and shape snapshot:
 * what CI runs (`scripts/generate.ts --check`) fails while the spec has a table change no
 * migration makes, `make generate` writes that migration, and it applies to a real database.
 */
const ROOT = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
const run = promisify(execFile);

let dir: string;
let projectSpec: SpecFile;

async function script(...args: string[]): Promise<{ code: number; out: string }> {
  return run(
    process.execPath,
    ['--import', 'tsx', 'scripts/generate.ts', '--spec', join(dir, 'entities.json'), '--out', dir, ...args],
    { cwd: ROOT, timeout: 60_000 },
  ).then(
    (r) => ({ code: 0, out: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
  );
}

/** Writes the project spec with RawDataSource changed by `change`. */
async function writeSpec(change: (e: EntitySpec) => EntitySpec): Promise<void> {
  const [source, ...rest] = projectSpec.entities;
  await writeFile(join(dir, 'entities.json'), JSON.stringify({ entities: [change(source!), ...rest] }));
}

const migrations = async () => (await readdir(join(dir, 'migrations'))).sort();
const columnsOf = async (knex: Knex) =>
  (
    await knex('information_schema.columns')
      .where({ table_name: 'raw_data_sources' })
      .select<{ column_name: string; column_default: string | null }[]>('column_name', 'column_default')
  ).reduce<Record<string, string | null>>((acc, c) => ({ ...acc, [c.column_name]: c.column_default }), {});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-drift-'));
  projectSpec = JSON.parse(await readFile(join(ROOT, 'specs/entities.json'), 'utf8')) as SpecFile;
  await cp(join(ROOT, 'migrations'), join(dir, 'migrations'), { recursive: true });
  await mkdir(join(dir, 'specs'));
  await cp(join(ROOT, 'specs/entities.snapshot.json'), join(dir, 'specs/entities.snapshot.json'));
  await writeSpec((e) => e);
  // The copy has no generated code yet; writing it first leaves the migrations the only subject.
  expect((await script()).code).toBe(0);
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('spec–database drift guard', () => {
  it('the project spec needs no migration the project does not have', async () => {
    expect(await migrations()).toEqual((await readdir(join(ROOT, 'migrations'))).sort());
    expect(await script('--check')).toMatchObject({ code: 0 });
  }, 60_000);

  describe('a field added to the spec', () => {
    const priority: FieldSpec = { name: 'priority', type: 'integer', min: 0, max: 10, default: 5 };
    let before: string[];
    let added: string;
    let db: TestDatabase | undefined;

    beforeAll(async () => {
      before = await migrations();
      await writeSpec((e) => ({
        ...e,
        fields: [...e.fields, priority],
        indexes: [...(e.indexes ?? []), { fields: ['priority'] }],
      }));
    });

    afterAll(async () => {
      await db?.drop();
    });

    it('fails the check, naming the field', async () => {
      const check = await script('--check');
      expect(check.code).toBe(1);
      expect(check.out).toContain('raw_data_sources: new column priority (field RawDataSource.priority');
      expect(check.out).toContain('new index raw_data_sources_priority_index');
      expect(check.out).toMatch(/write {2}migrations\/\d{14}_add_raw_data_sources_priority\.ts/);
      expect(await migrations()).toEqual(before);
    }, 60_000);

    it('makes generate write one new additive migration, after the landed ones; a second run changes nothing', async () => {
      expect((await script()).code).toBe(0);
      const now = await migrations();
      const fresh = now.filter((n) => !before.includes(n));
      expect(fresh).toEqual([expect.stringMatching(/^\d{14}_add_raw_data_sources_priority\.ts$/)]);
      added = fresh[0]!;
      expect(now.at(-1)).toBe(added);
      // Landed migrations are untouched.
      for (const name of before)
        expect(await readFile(join(dir, 'migrations', name), 'utf8'), name).toBe(
          await readFile(join(ROOT, 'migrations', name), 'utf8'),
        );
      const again = await script();
      expect(again).toMatchObject({ code: 0 });
      expect(again.out).toContain('nothing to do');
      expect(await migrations()).toEqual(now);
    }, 60_000);

    it('applies to a real database: column, default, check and index exist; down removes them', async () => {
      // The test database already has every project migration; apply only the new one on top.
      const only = join(dir, 'new-migration');
      await mkdir(only);
      await cp(join(dir, 'migrations', added), join(only, added));
      db = await createTestDatabase(only);
      expect((await columnsOf(db.knex)).priority).toBe('5');
      const indexes = await db.knex('pg_indexes').where({ tablename: 'raw_data_sources' }).pluck('indexname');
      expect(indexes).toContain('raw_data_sources_priority_index');
      const [row] = await db.knex('raw_data_sources').insert({ name: 'p' }).returning(['id', 'priority']);
      expect(row.priority).toBe(5);
      await expect(
        db.knex('raw_data_sources').where({ id: row.id }).update({ priority: 11 }),
      ).rejects.toThrow(/raw_data_sources_priority_max_check/);

      const migration = (await import(pathToFileURL(join(only, added)).href)) as {
        down(knex: Knex): Promise<void>;
      };
      await migration.down(db.knex);
      expect(await columnsOf(db.knex)).not.toHaveProperty('priority');
    }, 60_000);

    it('passes the check once the migration is there', async () => {
      expect(await script('--check')).toMatchObject({ code: 0 });
    }, 60_000);
  });

  describe('a change no additive migration can make', () => {
    it('fails check and generate for a type change, a drop and a required field without default, writing nothing', async () => {
      const before = await migrations();
      await writeSpec((e) => ({
        ...e,
        fields: [
          ...e.fields
            .filter((f) => f.name !== 'metadata')
            .map((f): FieldSpec => (f.name === 'is_active' ? { name: 'is_active', type: 'string' } : f)),
          { name: 'owner', type: 'string', required: true },
        ],
      }));
      for (const args of [['--check'], []]) {
        const result = await script(...args);
        expect(result.code, args.join(' ')).toBe(2);
        expect(result.out).toContain(
          'raw_data_sources.is_active: column would change from "boolean not null default true" to "text"',
        );
        expect(result.out).toContain('raw_data_sources.metadata: column would be dropped (or renamed)');
        expect(result.out).toContain('raw_data_sources.owner: a new required field without a default');
        expect(result.out).toContain('expand/contract');
        expect(result.out).toContain('--shaped-by');
      }
      expect(await migrations()).toEqual(before);
    }, 120_000);

    it('is recorded, not generated, once a hand-written migration is named with --shaped-by', async () => {
      await writeSpec((e) => ({ ...e, fields: e.fields.filter((f) => f.name !== 'metadata') }));
      expect((await script('--check')).code).toBe(2);
      const byHand = '20991231000000_drop_raw_data_sources_metadata.ts';
      expect((await script('--shaped-by', `migrations/${byHand}`)).out).toContain('no such migration');
      await writeFile(join(dir, 'migrations', byHand), '// written by hand\n');
      expect(await script('--shaped-by', `migrations/${byHand}`)).toMatchObject({ code: 0 });
      expect(await script('--check')).toMatchObject({ code: 0 });
      const snapshot = JSON.parse(await readFile(join(dir, 'specs/entities.snapshot.json'), 'utf8')) as {
        tables: Record<string, { migrations: string[]; columns: Record<string, string> }>;
      };
      expect(snapshot.tables.raw_data_sources!.migrations.at(-1)).toBe(byHand);
      expect(snapshot.tables.raw_data_sources!.columns).not.toHaveProperty('metadata');
    }, 120_000);
  });
});
