/**
 * `make generate`: specs/entities.json → migrations, types, schemas, model, CRUD wiring, contract tests;
 * and the OpenAPI document (built offline from code) → the TypeScript client's types (clients/typescript).
 *   --check             write nothing; exit 1 if any generated file is stale or the spec has
 *                       table changes no migration makes yet (CI)
 *   --spec FILE         another spec (default specs/entities.json)
 *   --out DIR           another output root (default the project root)
 *   --shaped-by FILE    a migration you wrote by hand for a change generate cannot express (a drop,
 *                       rename or type change): record the spec's table shape as built by it
 * Exit 2: the spec is invalid, or changes a table in a way only a hand-written migration can.
 * See docs/ARCHITECTURE.md, "Spec and migrations".
 */
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generate } from '../src/codegen/generator';
import { SchemaDriftError } from '../src/codegen/migration-plan';
import { loadSpec, SpecError } from '../src/codegen/spec';

const projectRoot = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    check: { type: 'boolean', default: false },
    spec: { type: 'string', default: resolve(projectRoot, 'specs/entities.json') },
    out: { type: 'string', default: projectRoot },
    'shaped-by': { type: 'string' },
  },
});

try {
  const spec = await loadSpec(values.spec);
  const shapedBy = values['shaped-by'];
  const result = await generate(spec, {
    outDir: resolve(values.out),
    projectRoot,
    check: values.check,
    shapedBy: shapedBy === undefined ? undefined : basename(shapedBy),
  });
  // The TypeScript client's types come from the OpenAPI document, built offline from the project's
  // code (src/generated included): only for the project itself, not for a spec generated elsewhere.
  const client =
    resolve(values.out) === projectRoot
      ? // Imported only here: it loads the whole app's code, which a spec generated elsewhere never needs.
        await (await import('./client-types')).generateClient(projectRoot, values.check)
      : { written: [], unchanged: [] };
  result.written.push(...client.written);
  result.unchanged.push(...client.unchanged);
  const changes = [
    ...result.written.map((p) => `  write  ${p}`),
    ...result.removed.map((p) => `  remove ${p}`),
  ];
  const pending = result.pending.map((p) => `  - ${p}`);
  if (values.check) {
    if (pending.length)
      console.error(`The spec changes tables that no migration changes yet:\n${pending.join('\n')}`);
    if (changes.length) {
      console.error(`Generated files are stale; run \`make generate\` and commit:\n${changes.join('\n')}`);
      process.exit(1);
    }
    console.log(`generated files are up to date (${result.unchanged.length} files)`);
  } else {
    if (pending.length) console.log(`New migrations for:\n${pending.join('\n')}`);
    console.log(
      changes.length ? changes.join('\n') : `nothing to do (${result.unchanged.length} files up to date)`,
    );
  }
} catch (err) {
  if (err instanceof SpecError || err instanceof SchemaDriftError) {
    console.error(err.message);
    process.exit(2);
  }
  throw err;
}
