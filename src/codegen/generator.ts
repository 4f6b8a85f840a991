import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { codeTemplatesFor } from './templates';
import { describeEntity, type EntityInfo } from './entity-info';
import { HEADER } from './header';
import type { SpecFile } from './spec';

export interface GenerateOptions {
  /** Root the files are written under (src/generated, migrations, test/contract). */
  outDir: string;
  /** Root of the Sluice runtime the generated code imports (the project root). */
  projectRoot: string;
  /** Timestamp of a new entity's migration; now by default. */
  now?: Date;
}

export const GENERATED_DIR = 'src/generated';
export const CONTRACT_DIR = 'test/contract';
export const MIGRATIONS_DIR = 'migrations';

function importPath(fromDir: string, target: string): string {
  const rel = relative(fromDir, target);
  return rel.startsWith('.') ? rel : `./${rel}`;
}

const stamp = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(0, 14);

async function existingMigrationFor(dir: string, table: string): Promise<string | undefined> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.find((n) => n.endsWith(`_create_${table}.ts`));
}

/**
 * Renders every file the spec implies, as path (relative to outDir) → content. Pure apart from
 * looking up which entities already have their initial migration: those are never rewritten.
 */
export async function render(spec: SpecFile, options: GenerateOptions): Promise<Map<string, string>> {
  const entities: EntityInfo[] = spec.entities.map(describeEntity);
  const files = new Map<string, string>();
  const generatedAbs = join(options.outDir, GENERATED_DIR);
  const contractAbs = join(options.outDir, CONTRACT_DIR);
  const runtime = importPath(generatedAbs, join(options.projectRoot, 'src'));
  const harness = importPath(contractAbs, join(options.projectRoot, 'test/helpers/api-harness'));
  const generated = importPath(contractAbs, generatedAbs);
  const migrationsAbs = join(options.outDir, MIGRATIONS_DIR);

  for (const [i, e] of entities.entries()) {
    for (const [suffix, content] of codeTemplatesFor(e, runtime))
      files.set(join(GENERATED_DIR, `${e.kebab}.${suffix}.ts`), content);
    files.set(
      join(CONTRACT_DIR, `${e.kebab}.contract.test.ts`),
      codeTemplatesFor.contract(e, { harness, generated }),
    );
    if (!(await existingMigrationFor(migrationsAbs, e.table))) {
      // Entities added in one run get consecutive seconds, so their order is the spec's.
      const at = new Date((options.now ?? new Date()).getTime() + i * 1000);
      files.set(join(MIGRATIONS_DIR, `${stamp(at)}_create_${e.table}.ts`), codeTemplatesFor.migration(e));
    }
  }
  files.set(join(GENERATED_DIR, 'index.ts'), codeTemplatesFor.index(entities, runtime));

  const prettierOptions = (await resolveConfig(join(options.projectRoot, 'package.json'))) ?? {};
  for (const [path, content] of files)
    files.set(path, await format(content, { ...prettierOptions, parser: 'typescript' }));
  return files;
}

export interface GenerateResult {
  written: string[];
  removed: string[];
  unchanged: string[];
}

async function generatedFilesIn(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const content = await readFile(join(dir, name), 'utf8').catch(() => '');
    if (content.startsWith(HEADER)) out.push(name);
  }
  return out;
}

/**
 * Writes what `render` produced. With `check`, writes nothing and reports what would change, so
 * CI can fail on stale output. Generated files no longer produced (an entity removed) are deleted;
 * migrations never are.
 */
export async function generate(
  spec: SpecFile,
  options: GenerateOptions & { check?: boolean },
): Promise<GenerateResult> {
  const files = await render(spec, options);
  const result: GenerateResult = { written: [], removed: [], unchanged: [] };
  for (const [path, content] of files) {
    const abs = join(options.outDir, path);
    const current = await readFile(abs, 'utf8').catch(() => undefined);
    if (current === content) {
      result.unchanged.push(path);
      continue;
    }
    result.written.push(path);
    if (!options.check) {
      await mkdir(dirname(abs), { recursive: true });
      await writeFile(abs, content);
    }
  }
  for (const dir of [GENERATED_DIR, CONTRACT_DIR]) {
    for (const name of await generatedFilesIn(join(options.outDir, dir))) {
      const path = join(dir, name);
      if (files.has(path)) continue;
      result.removed.push(path);
      if (!options.check) await rm(join(options.outDir, path));
    }
  }
  return result;
}
