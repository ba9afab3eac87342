/**
 * `npm run build` (and `prepack`): the installable package in dist/.
 *
 * TypeScript 7 (tsgo) compiles src/ to JavaScript and .d.ts with `rewriteRelativeImportExtensions`
 * (tsconfig.build.json), so `./x.ts` imports become `./x.js`; dist/ mirrors the checkout
 * (dist/src/..., dist/kernels/) so every path a module computes from `import.meta.url` (the
 * kernels at ../../kernels from src/engine, the text data beside src/data) holds in both.
 * Then the files that are not TypeScript are copied beside the output.
 */
import { cpSync, existsSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

/** Non-TypeScript files the built modules read at run time, relative to the package root. */
export const RUNTIME_ASSETS = ['kernels', 'src/data/text-data'] as const;

rmSync(dist, { recursive: true, force: true });
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
} catch {
  console.error('build: the TypeScript compiler reported errors (above); dist/ is incomplete');
  process.exit(1);
}
for (const asset of RUNTIME_ASSETS) {
  const from = join(root, asset);
  if (!existsSync(from)) throw new Error(`build: ${asset} is missing`);
  cpSync(from, join(dist, asset), { recursive: true, filter: (p) => !p.endsWith('.md') });
}
// The CLI is run by path (package.json "bin"); npm makes it executable when installing.
console.log(`built ${dist}`);
