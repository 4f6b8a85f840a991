/**
 * `npm run build`: compiles what production runs to JavaScript in dist/, with the TypeScript compiler
 * and the project's tsconfig.json: the process entry (src/main.ts), the worker entry, the migrate,
 * keys and rewrap commands, and every migration, plus whatever they import. The tree keeps its shape
 * (dist/src, dist/workers, dist/migrations), so paths computed from import.meta.url still meet.
 *
 * Sources import each other without extensions (moduleResolution Bundler, as tsx and vitest read
 * them); Node's ESM loader wants the file itself, so each relative import is rewritten to the .js
 * file it resolves to while emitting. Type errors fail the build. Exits 1 on any error.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const ROOT = resolve(import.meta.dirname, '..');
const OUT_DIR = join(ROOT, 'dist');
const ENTRIES = [
  'src/main.ts',
  'workers/worker.ts',
  'scripts/migrate.ts',
  'scripts/keys.ts',
  'scripts/rewrap.ts',
];

function fail(message: string): never {
  console.error(`build: ${message}`);
  process.exit(1);
}

/**
 * A file inside a package without an `exports` map (`ajv/dist/2020`): Node's ESM loader wants its
 * real file name, which CommonJS resolution finds. Packages with `exports` resolve as written.
 */
function packageFileSpecifier(fromFile: string, specifier: string): string {
  if (specifier.startsWith('node:')) return specifier;
  const parts = specifier.split('/');
  const nameLength = specifier.startsWith('@') ? 2 : 1;
  if (parts.length <= nameLength) return specifier;
  const name = parts.slice(0, nameLength).join('/');
  // Read directly: a package with `exports` may not export its package.json.
  const packageDir = join(ROOT, 'node_modules', name);
  const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
    exports?: unknown;
  };
  if (manifest.exports) return specifier;
  return `${name}/${relative(packageDir, createRequire(fromFile).resolve(specifier))}`;
}

/** `./x` → `./x.js`, `./dir` → `./dir/index.js`, `pkg/file` → `pkg/file.js`; the rest stays as written. */
function runtimeSpecifier(fromFile: string, specifier: string): string {
  if (!specifier.startsWith('./') && !specifier.startsWith('../'))
    return packageFileSpecifier(fromFile, specifier);
  const base = resolve(dirname(fromFile), specifier);
  if (existsSync(`${base}.ts`)) return `${specifier}.js`;
  if (existsSync(join(base, 'index.ts'))) return `${specifier}/index.js`;
  if (specifier.endsWith('.js')) return specifier;
  fail(`${relative(ROOT, fromFile)}: cannot resolve "${specifier}" to a TypeScript file`);
}

/** Rewrites static imports, re-exports and import('literal') of relative modules to their .js files. */
const withExtensions: ts.TransformerFactory<ts.SourceFile> = (context) => (sourceFile) => {
  const { factory } = context;
  const literal = (node: ts.StringLiteral) =>
    factory.createStringLiteral(runtimeSpecifier(sourceFile.fileName, node.text));
  const visit = (node: ts.Node): ts.Node => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier))
      return factory.updateImportDeclaration(
        node,
        node.modifiers,
        node.importClause,
        literal(node.moduleSpecifier),
        node.attributes,
      );
    if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier))
      return factory.updateExportDeclaration(
        node,
        node.modifiers,
        node.isTypeOnly,
        node.exportClause,
        literal(node.moduleSpecifier),
        node.attributes,
      );
    if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments.length >= 1 &&
      ts.isStringLiteral(node.arguments[0]!)
    )
      return factory.updateCallExpression(node, node.expression, node.typeArguments, [
        literal(node.arguments[0]),
        ...node.arguments.slice(1),
      ]);
    return ts.visitEachChild(node, visit, context);
  };
  return ts.visitEachChild(sourceFile, visit, context);
};

const configFile = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (path) => ts.sys.readFile(path));
if (configFile.error) fail(ts.flattenDiagnosticMessageText(configFile.error.messageText, '\n'));
const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, ROOT);
const migrations = readdirSync(join(ROOT, 'migrations'))
  .filter((name) => /^\d{14}_[a-z0-9_]+\.ts$/.test(name))
  .map((name) => join(ROOT, 'migrations', name));
const program = ts.createProgram({
  rootNames: [...ENTRIES.map((entry) => join(ROOT, entry)), ...migrations],
  options: { ...parsed.options, noEmit: false, outDir: OUT_DIR, rootDir: ROOT, declaration: false },
});

const diagnostics = ts.getPreEmitDiagnostics(program);
if (diagnostics.length)
  fail(
    ts.formatDiagnosticsWithColorAndContext(diagnostics, {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => ROOT,
      getNewLine: () => '\n',
    }),
  );
rmSync(OUT_DIR, { recursive: true, force: true });
const result = program.emit(undefined, undefined, undefined, false, { after: [withExtensions] });
if (result.emitSkipped) fail('the compiler emitted nothing');
const emitted = program
  .getSourceFiles()
  .filter((f) => !f.isDeclarationFile && !f.fileName.includes('/node_modules/'));
console.log(
  `build: ${emitted.length} files compiled to ${relative(ROOT, OUT_DIR)}/ (${migrations.length} migrations)`,
);
