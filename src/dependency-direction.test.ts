import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The dependency rules of docs/ARCHITECTURE.md ("Dependency direction"), checked on every import
 * of every runtime module, so a wrong arrow fails `make test` instead of waiting for a reviewer.
 */

const root = resolve(new URL('..', import.meta.url).pathname);

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await tsFiles(path)));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

/** Module specifiers of every import and re-export in a file (static and dynamic). */
const specifiers = (source: string) =>
  [...source.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)].map((m) => m[1]!);

/** Every relative import of the runtime code, as [importing file, imported file], root-relative. */
async function edges(): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for (const dir of ['src', 'workers'])
    for (const file of await tsFiles(join(root, dir)))
      for (const spec of specifiers(await readFile(file, 'utf8')))
        if (spec.startsWith('.'))
          out.push([relative(root, file), relative(root, resolve(dirname(file), spec))]);
  return out;
}

const offending = async (rule: (from: string, to: string) => boolean) =>
  (await edges()).filter(([from, to]) => rule(from, to)).map(([from, to]) => `${from} → ${to}`);

const inside = (path: string, folder: string) => path === folder || path.startsWith(`${folder}/`);

describe('dependency direction', () => {
  // The generator is build tooling (templates, prettier, the spec's own schema): the running
  // service must not load it. What both need lives in src/schema.
  it('no runtime module imports src/codegen', async () => {
    expect(await offending((from, to) => !inside(from, 'src/codegen') && inside(to, 'src/codegen'))).toEqual(
      [],
    );
  });

  it('only the process entry (src/main.ts) imports the worker side (workers/)', async () => {
    expect(
      await offending((from, to) => inside(from, 'src') && from !== 'src/main.ts' && inside(to, 'workers')),
    ).toEqual([]);
  });

  it('sources/ never imports runs/ or workers/ (a schedule follows a source through a listener)', async () => {
    expect(
      await offending(
        (from, to) => inside(from, 'src/sources') && (inside(to, 'src/runs') || inside(to, 'workers')),
      ),
    ).toEqual([]);
  });

  it('connectors use the kit, the outbound policy and shared leaves (logger, net, crypto) only', async () => {
    const allowed = ['src/connectors', 'src/logger', 'src/net', 'src/crypto'];
    expect(
      await offending(
        (from, to) => inside(from, 'src/connectors') && !allowed.some((folder) => inside(to, folder)),
      ),
    ).toEqual([]);
  });

  it('config.ts imports no feature (only the neutral leaves net/ and schema/), and crypto/ does not import config.ts', async () => {
    expect(
      await offending(
        (from, to) =>
          (from === 'src/config.ts' && !inside(to, 'src/net') && !inside(to, 'src/schema')) ||
          (inside(from, 'src/crypto') && to === 'src/config'),
      ),
    ).toEqual([]);
  });
});
