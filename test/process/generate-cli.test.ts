import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/**
 * `scripts/generate.ts` as `make test` runs it: a child process (tsx) per call. Here, with the other
 * process-level tests, not in src/codegen/generator.test.ts: its four tsx start-ups were most of
 * `make test-unit`'s time on a loaded machine (30 s of it at load 20), and the unit project is the
 * quick, in-process one.
 */
const projectRoot = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const widget = {
  name: 'Widget',
  fields: [
    { name: 'id', type: 'uuid', primary_key: true },
    { name: 'name', type: 'string', required: true, max_length: 40, unique: true },
    { name: 'size', type: 'integer', min: 1, max: 10 },
  ],
};
const spec = (...entities: unknown[]) => ({ entities });

let out: string;
beforeEach(async () => {
  out = await mkdtemp(join(tmpdir(), 'sluice-gen-cli-'));
});
afterEach(async () => {
  await rm(out, { recursive: true, force: true });
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
