/**
 * `make generate`: specs/entities.json → migration, types, schemas, model, CRUD wiring, contract tests.
 *   --check        write nothing; exit 1 if any generated file is stale (CI)
 *   --spec FILE    another spec (default specs/entities.json)
 *   --out DIR      another output root (default the project root)
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generate } from '../src/codegen/generator';
import { loadSpec, SpecError } from '../src/codegen/spec';

const projectRoot = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    check: { type: 'boolean', default: false },
    spec: { type: 'string', default: resolve(projectRoot, 'specs/entities.json') },
    out: { type: 'string', default: projectRoot },
  },
});

try {
  const spec = await loadSpec(values.spec);
  const result = await generate(spec, { outDir: resolve(values.out), projectRoot, check: values.check });
  const changes = [
    ...result.written.map((p) => `  write  ${p}`),
    ...result.removed.map((p) => `  remove ${p}`),
  ];
  if (values.check) {
    if (changes.length) {
      console.error(`Generated files are stale; run \`make generate\` and commit:\n${changes.join('\n')}`);
      process.exit(1);
    }
    console.log(`generated files are up to date (${result.unchanged.length} files)`);
  } else {
    console.log(
      changes.length ? changes.join('\n') : `nothing to do (${result.unchanged.length} files up to date)`,
    );
  }
} catch (err) {
  if (err instanceof SpecError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}
