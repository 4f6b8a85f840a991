import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const srcDir = new URL('..', import.meta.url).pathname;

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await tsFiles(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Module specifiers of every import and re-export in a file (static and dynamic). */
const specifiers = (source: string) =>
  [...source.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)].map((m) => m[1]!);

describe('dependency direction', () => {
  // The generator is build tooling (templates, prettier, the spec's own schema): the running
  // service must not load it. What both need lives in src/schema.
  it('no runtime module under src/ imports src/codegen', async () => {
    const offenders: string[] = [];
    for (const file of await tsFiles(srcDir)) {
      const rel = relative(srcDir, file);
      if (rel.startsWith('codegen/')) continue;
      for (const spec of specifiers(await readFile(file, 'utf8')))
        if (/(^|\/)codegen(\/|$)/.test(spec)) offenders.push(`${rel} → ${spec}`);
    }
    expect(offenders).toEqual([]);
  });
});
