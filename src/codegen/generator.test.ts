import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generate, render } from './generator';
import { HEADER } from './header';
import type { SpecFile } from './spec';

const projectRoot = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const NOW = new Date('2026-01-02T03:04:05Z');

const widget = {
  name: 'Widget',
  fields: [
    { name: 'id', type: 'uuid', primary_key: true },
    { name: 'name', type: 'string', required: true, max_length: 40, unique: true },
    { name: 'size', type: 'integer', min: 1, max: 10 },
  ],
} as const;
const gadget = {
  name: 'Gadget',
  fields: [
    { name: 'id', type: 'uuid', primary_key: true },
    { name: 'label', type: 'string' },
  ],
} as const;
const spec = (...entities: unknown[]) => ({ entities }) as unknown as SpecFile;

let out: string;
beforeEach(async () => {
  out = await mkdtemp(join(tmpdir(), 'sluice-gen-'));
});
afterEach(async () => {
  await rm(out, { recursive: true, force: true });
});

const options = () => ({ outDir: out, projectRoot, now: NOW });

describe('render', () => {
  it('is deterministic: the same spec renders the same files, byte for byte', async () => {
    const first = await render(spec(widget, gadget), options());
    const second = await render(spec(widget, gadget), options());
    expect([...second.entries()]).toEqual([...first.entries()]);
  });

  it('marks every file as generated on its first line', async () => {
    const files = await render(spec(widget), options());
    expect([...files.keys()].sort()).toEqual([
      'migrations/20260102030405_create_widgets.ts',
      'src/generated/index.ts',
      'src/generated/widget.model.ts',
      'src/generated/widget.resource.ts',
      'src/generated/widget.schemas.ts',
      'src/generated/widget.types.ts',
      'test/contract/widget.contract.test.ts',
    ]);
    for (const [path, content] of files) expect(content.split('\n')[0], path).toBe(HEADER);
  });

  it('gives entities added in one run consecutive migration timestamps, in spec order', async () => {
    const files = await render(spec(widget, gadget), options());
    const migrations = [...files.keys()].filter((p) => p.startsWith('migrations/')).sort();
    expect(migrations).toEqual([
      'migrations/20260102030405_create_widgets.ts',
      'migrations/20260102030406_create_gadgets.ts',
    ]);
  });

  it('never renders a second initial migration for a table that has one', async () => {
    await mkdir(join(out, 'migrations'), { recursive: true });
    await writeFile(join(out, 'migrations/20250101000000_create_widgets.ts'), '// landed\n');
    const files = await render(spec(widget), { ...options(), now: new Date() });
    expect([...files.keys()].filter((p) => p.startsWith('migrations/'))).toEqual([]);
  });
});

describe('generate', () => {
  it('writes every file once; a second run writes nothing and touches nothing', async () => {
    const first = await generate(spec(widget), options());
    expect(first.written).toHaveLength(7);
    const mtimes = await Promise.all(first.written.map(async (p) => (await stat(join(out, p))).mtimeMs));
    const second = await generate(spec(widget), { ...options(), now: new Date() });
    expect(second).toEqual({ written: [], removed: [], unchanged: expect.any(Array) });
    // The migration is not even rendered again: its table already has one.
    expect(second.unchanged).toHaveLength(6);
    expect(await Promise.all(first.written.map(async (p) => (await stat(join(out, p))).mtimeMs))).toEqual(
      mtimes,
    );
  });

  it('--check reports a stale file and a hand edit without writing anything', async () => {
    await generate(spec(widget), options());
    const types = join(out, 'src/generated/widget.types.ts');
    const edited = `${await readFile(types, 'utf8')}// a hand edit\n`;
    await writeFile(types, edited);
    const stale = await generate(
      spec({ ...widget, fields: [...widget.fields, { name: 'colour', type: 'string' }] }),
      {
        ...options(),
        check: true,
      },
    );
    expect(stale.written).toEqual(
      expect.arrayContaining(['src/generated/widget.types.ts', 'src/generated/widget.schemas.ts']),
    );
    expect(stale.removed).toEqual([]);
    expect(await readFile(types, 'utf8')).toBe(edited);
  });

  it('--check reports generated files of a removed entity; a real run deletes them but keeps migrations', async () => {
    await generate(spec(widget, gadget), options());
    const check = await generate(spec(widget), { ...options(), check: true });
    expect(check.removed.sort()).toEqual([
      'src/generated/gadget.model.ts',
      'src/generated/gadget.resource.ts',
      'src/generated/gadget.schemas.ts',
      'src/generated/gadget.types.ts',
      'test/contract/gadget.contract.test.ts',
    ]);
    expect(await readdir(join(out, 'src/generated'))).toContain('gadget.model.ts');
    const real = await generate(spec(widget), options());
    expect(real.removed).toHaveLength(5);
    expect(await readdir(join(out, 'src/generated'))).not.toContain('gadget.model.ts');
    expect(await readdir(join(out, 'migrations'))).toContain('20260102030406_create_gadgets.ts');
  });

  it('leaves hand-written files beside generated ones alone', async () => {
    await mkdir(join(out, 'src/generated'), { recursive: true });
    await writeFile(join(out, 'src/generated/notes.ts'), 'export const mine = 1;\n');
    const result = await generate(spec(widget), options());
    expect(result.removed).toEqual([]);
    expect(await readFile(join(out, 'src/generated/notes.ts'), 'utf8')).toBe('export const mine = 1;\n');
  });
});

describe('scripts/generate.ts --check (what `make test` runs)', () => {
  const run = promisify(execFile);
  const script = (args: string[]) =>
    run(process.execPath, ['--import', 'tsx', 'scripts/generate.ts', ...args], {
      cwd: projectRoot,
      timeout: 60_000,
    }).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
    );

  it('exits 1 naming stale files, 0 once they are regenerated, 2 on an invalid spec', async () => {
    const specFile = join(out, 'entities.json');
    await writeFile(specFile, JSON.stringify(spec(widget)));
    const stale = await script(['--check', '--spec', specFile, '--out', out]);
    expect(stale.code).toBe(1);
    expect(stale.out).toContain('write  src/generated/widget.types.ts');
    expect((await script(['--spec', specFile, '--out', out])).code).toBe(0);
    const fresh = await script(['--check', '--spec', specFile, '--out', out]);
    expect(fresh).toMatchObject({ code: 0 });
    expect(fresh.out).toContain('up to date');
    await writeFile(specFile, JSON.stringify(spec({ ...widget, fields: [] })));
    expect((await script(['--check', '--spec', specFile, '--out', out])).code).toBe(2);
  }, 180_000);
});
