import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { codeTemplatesFor } from './templates';
import { describeEntity, type EntityInfo } from './entity-info';
import { HEADER } from './header';
import { planMigrations } from './migration-plan';
import { readSnapshot, serializeSnapshot, snapshotOf, SNAPSHOT_FILE } from './shape-snapshot';
import type { SpecFile } from './spec';

export interface GenerateOptions {
  /** Root the files are written under (src/generated, migrations, test/contract). */
  outDir: string;
  /** Root of the Sluice runtime the generated code imports (the project root). */
  projectRoot: string;
  /** Timestamp of a new migration; now by default (and always after the newest landed one). */
  now?: Date;
  /**
   * A hand-written migration (file name in migrations/) that brings the tables to the spec's
   * shape where no generated migration can: record that shape instead of refusing the change.
   */
  shapedBy?: string;
}

export const GENERATED_DIR = 'src/generated';
export const CONTRACT_DIR = 'test/contract';
export const MIGRATIONS_DIR = 'migrations';

function importPath(fromDir: string, target: string): string {
  const rel = relative(fromDir, target);
  return rel.startsWith('.') ? rel : `./${rel}`;
}

export interface Rendered {
  /** Path (relative to outDir) → content. */
  files: Map<string, string>;
  /** What the new migrations among `files` change, in words. */
  pending: string[];
}

/**
 * Renders every file the spec implies. Pure apart from reading the migrations folder and the
 * shape snapshot: a migration is rendered only for what the recorded shape lacks, so landed
 * migrations are never rewritten.
 */
export async function render(spec: SpecFile, options: GenerateOptions): Promise<Rendered> {
  const entities: EntityInfo[] = spec.entities.map(describeEntity);
  const files = new Map<string, string>();
  const generatedAbs = join(options.outDir, GENERATED_DIR);
  const contractAbs = join(options.outDir, CONTRACT_DIR);
  const runtime = importPath(generatedAbs, join(options.projectRoot, 'src'));
  const harness = importPath(contractAbs, join(options.projectRoot, 'test/helpers/api-harness'));
  const generated = importPath(contractAbs, generatedAbs);
  const prettierOptions = (await resolveConfig(join(options.projectRoot, 'package.json'))) ?? {};
  const formatTs = (source: string) => format(source, { ...prettierOptions, parser: 'typescript' });

  for (const e of entities) {
    for (const [suffix, content] of codeTemplatesFor(e, runtime))
      files.set(join(GENERATED_DIR, `${e.kebab}.${suffix}.ts`), content);
    files.set(
      join(CONTRACT_DIR, `${e.kebab}.contract.test.ts`),
      codeTemplatesFor.contract(e, { harness, generated }),
    );
  }
  files.set(join(GENERATED_DIR, 'index.ts'), codeTemplatesFor.index(entities, runtime));
  const plan = await planMigrations(entities, {
    migrationsDir: join(options.outDir, MIGRATIONS_DIR),
    recorded: await readSnapshot(join(options.outDir, SNAPSHOT_FILE)),
    now: options.now ?? new Date(),
    shapedBy: options.shapedBy,
    format: formatTs,
  });
  for (const [name, content] of plan.migrations) files.set(join(MIGRATIONS_DIR, name), content);

  for (const [path, content] of files) files.set(path, await formatTs(content));
  files.set(
    SNAPSHOT_FILE,
    await format(serializeSnapshot(snapshotOf(plan.tables)), { ...prettierOptions, parser: 'json' }),
  );
  return { files, pending: plan.pending };
}

export interface GenerateResult {
  written: string[];
  removed: string[];
  unchanged: string[];
  /** What the spec changes in the tables that the migrations do not do yet (`written` has them). */
  pending: string[];
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
  const { files, pending } = await render(spec, options);
  const result: GenerateResult = { written: [], removed: [], unchanged: [], pending };
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
