import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Knex } from 'knex';

export const MIGRATIONS_DIR = new URL('../../migrations/', import.meta.url).pathname;

interface MigrationModule {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

/** A migration's file: TypeScript, or the JavaScript `npm run build` compiled it to (dist/migrations). */
const MIGRATION_FILE = /^\d{14}_[a-z0-9_]+\.(ts|js)$/;

/**
 * Loads migrations with the runtime's own `import()`, so TypeScript migrations run the same under
 * tsx, vitest and the CLI, and compiled ones under plain node; names sort by their timestamp prefix.
 * A migration keeps its .ts name when compiled: knex_migrations records names, and a database
 * migrated in development must read as up to date in production, and the other way round.
 */
export class DirectoryMigrationSource implements Knex.MigrationSource<string> {
  constructor(private readonly dirs: string[]) {}

  async getMigrations(): Promise<string[]> {
    const files: string[] = [];
    for (const dir of this.dirs)
      for (const name of await readdir(dir)) if (MIGRATION_FILE.test(name)) files.push(join(dir, name));
    return files.sort((a, b) => this.getMigrationName(a).localeCompare(this.getMigrationName(b)));
  }

  getMigrationName(file: string): string {
    return file.slice(file.lastIndexOf('/') + 1).replace(/\.js$/, '.ts');
  }

  async getMigration(file: string): Promise<MigrationModule> {
    return (await import(pathToFileURL(file).href)) as MigrationModule;
  }
}

export async function migrateLatest(knex: Knex, dirs: string[] = [MIGRATIONS_DIR]): Promise<string[]> {
  const [, applied] = (await knex.migrate.latest({
    migrationSource: new DirectoryMigrationSource(dirs),
  })) as [number, string[]];
  return applied;
}
