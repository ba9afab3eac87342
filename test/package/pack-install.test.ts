/**
 * The package as a user gets it: `npm pack` (which runs `npm run build`), the tarball installed
 * into a fresh project outside the checkout, and used there: the `goe` binary through npx, every
 * entry point imported from an .mjs file doing real work on the adapter, the README's examples,
 * and a strict TypeScript consumer under `moduleResolution: nodenext`.
 *
 * Offline: the project gets a package-lock.json holding the tarball and the checkout's own
 * production entries (same versions, integrities and tree), and `npm ci --offline` takes every
 * tarball from npm's cache, which the checkout's `npm ci` filled (only a cache without one of them,
 * ENOTCACHED, falls back to --prefer-offline). Nothing points into the checkout's
 * node_modules (npm prunes through symlinks), except @types/node, linked after the install for the
 * TypeScript consumer only. A file left out of package.json "files" fails here: imports and kernels
 * are checked statically against the tarball's listing and then used for real.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readmeBlocks } from '../helpers/readme-blocks.ts';
import { DAWN_LIMIT_WARNING } from '../../src/cli/dawn-stderr.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string> };
const MAX_TARBALL_BYTES = 1 << 20;

let work = '';
let project = '';
let tarball = '';
let listing: string[] = [];

function run(cmd: string, args: string[], opts: SpawnSyncOptions & { timeout?: number } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000, ...opts, env: { ...process.env, npm_config_update_notifier: 'false', ...opts.env } });
  if (r.error) throw r.error;
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** stderr without Dawn's adapter warnings (a library cannot filter them: README, "Installing"). */
function ownStderr(stderr: string): string {
  return stderr.split('\n').filter((l) => l && !DAWN_LIMIT_WARNING.test(l)).join('\n');
}

function mustRun(cmd: string, args: string[], opts: SpawnSyncOptions & { timeout?: number } = {}) {
  const r = run(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** The consumer's lockfile: the tarball, then the checkout's production tree as npm ci resolved it. */
function consumerLock(tgzName: string, integrity: string): object {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
  const self = lock.packages['']!;
  const packages: Record<string, unknown> = {
    '': { name: 'goe-consumer', dependencies: { [PKG.name]: `file:${tgzName}` } },
    [`node_modules/${PKG.name}`]: {
      version: PKG.version, resolved: `file:${tgzName}`, integrity, license: self.license,
      dependencies: self.dependencies, bin: self.bin, engines: self.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) if (path !== '' && entry.dev !== true) packages[path] = entry;
  return { name: 'goe-consumer', lockfileVersion: 3, requires: true, packages };
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'goe-pack-'));
  const packed = mustRun('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, timeout: 300_000 });
  const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tarball = join(work, info[0]!.filename);
  listing = info[0]!.files.map((f) => f.path);

  project = join(work, 'consumer');
  mkdirSync(project);
  const tgzName = info[0]!.filename;
  writeFileSync(join(project, tgzName), readFileSync(tarball));
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'goe-consumer', private: true, type: 'module', dependencies: { [PKG.name]: `file:${tgzName}` } }, null, 2));
  writeFileSync(join(project, 'package-lock.json'), JSON.stringify(consumerLock(tgzName, integrity), null, 2));
  // --ignore-scripts: webgpu's postinstall only prunes other platforms' binaries.
  const install = ['ci', '--ignore-scripts', '--no-audit', '--no-fund'];
  const offline = run('npm', [...install, '--offline'], { cwd: project, timeout: 300_000 });
  if (offline.status !== 0) {
    // Only when npm's cache lacks a tarball (ENOTCACHED: a checkout installed some other way):
    // the same lockfile, fetched from the registry where the cache has nothing.
    if (!/ENOTCACHED/.test(offline.stdout + offline.stderr)) throw new Error(`npm ci --offline failed\n${offline.stdout}\n${offline.stderr}`);
    mustRun('npm', [...install, '--prefer-offline'], { cwd: project, timeout: 300_000 });
  }
  mkdirSync(join(project, 'node_modules', '@types'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(project, 'node_modules', '@types', 'node'), 'dir');
}, 600_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('is below 1 MB and holds no tests, no TypeScript sources, no benchmarks', () => {
    expect(statSync(tarball).size).toBeLessThan(MAX_TARBALL_BYTES);
    expect(listing).toContain('package.json');
    expect(listing).toContain('README.md');
    const stray = listing.filter((p) => /^(test|bench|scripts|src|kernels)\//.test(p) || /\.test\.|(?<!\.d)\.ts$/.test(p));
    expect(stray).toEqual([]);
  });

  it('holds every file a built module imports or reads, and every kernel', () => {
    const have = new Set(listing);
    const missing: string[] = [];
    for (const file of listing.filter((p) => p.endsWith('.js') || p.endsWith('.d.ts'))) {
      // code only: doc comments quote user imports such as './src/web/index.ts'
      const text = readFileSync(join(project, 'node_modules', PKG.name, file), 'utf8')
        .split('\n')
        .filter((l) => !/^\s*(\*|\/\*|\/\/)/.test(l))
        .join('\n');
      const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*|new URL\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);
      for (const spec of specs) {
        const target = posix.normalize(posix.join(posix.dirname(file), spec));
        // declarations keep the sources' './x.ts' specifiers, which TypeScript resolves to ./x.d.ts
        const candidates = [target, target.replace(/\.ts$/, '.d.ts'), target.replace(/\.js$/, '.d.ts')];
        if (!candidates.some((c) => have.has(c))) missing.push(`${file} -> ${spec}`);
      }
    }
    expect(missing).toEqual([]);
    // kernels/*.wgsl and the software adapter's kernels/simd8/*.wgsl
    const kernels = readdirSync(join(ROOT, 'kernels'), { recursive: true, encoding: 'utf8' }).map((f) => f.split(sep).join('/')).filter((f) => f.endsWith('.wgsl'));
    expect(kernels.length).toBeGreaterThan(0);
    expect(kernels.some((f) => f.startsWith('simd8/'))).toBe(true);
    for (const k of kernels) expect(have, `dist/kernels/${k}`).toContain(`dist/kernels/${k}`);
    expect(have).toContain('dist/src/data/text-data/nltk-english-stop-words.json');
  });
});

describe('installed from the tarball into a fresh project', () => {
  it('`npx goe --help`, `--version` and `goe metrics` on two score files', () => {
    const help = mustRun('npx', ['--offline', '--no-install', 'goe', '--help'], { cwd: project });
    expect(help.stdout).toMatch(/^Usage: goe <command>/);
    expect(help.stdout).toMatch(/\n {2}metrics +/);
    // the rest through the installed bin link itself (npx costs seconds of npm start-up per call)
    const goe = join(project, 'node_modules', '.bin', 'goe');
    const version = mustRun(goe, ['--version'], { cwd: project });
    expect(version.stdout).toBe(`${PKG.version}\n`);
    writeFileSync(join(project, 'in.txt'), '0.1\n0.2\n0.3\n0.4\n');
    writeFileSync(join(project, 'out.txt'), '0.35\n0.5\n0.6\n');
    const metrics = mustRun('npx', ['--offline', '--no-install', 'goe', 'metrics', '--in', 'in.txt', '--out', 'out.txt', '--json'], { cwd: project });
    const m = JSON.parse(metrics.stdout) as Record<string, number>;
    // 11 of the 12 (in, out) pairs are ordered: AUROC 11/12
    expect(m.AUROC).toBeCloseTo(11 / 12, 12);
    expect(m.n_in).toBe(4);
    expect(m.n_out).toBe(3);
    const bad = run(goe, ['metrics', '--in', 'in.txt', '--bogus'], { cwd: project });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^goe metrics: unknown option --bogus\n\nUsage: goe metrics/);
  });

  it('every entry point imports from an .mjs file: a matmul on the adapter, Energy scores and their metrics', () => {
    writeFileSync(join(project, 'use.mjs'), `
import { init, tensor, matmul, runtime } from 'goe-webgpu';
import * as engine from 'goe-webgpu/engine';
import { WideResNet } from 'goe-webgpu/models';
import { energyScore, energyDetector, OodMetrics } from 'goe-webgpu/goe';
import { Rng, nltkEnglishStopWords } from 'goe-webgpu/data';

await init();
const y = await matmul(tensor([1, 2, 3, 4, 5, 6], [2, 3]), tensor([1, 0, 0, 1, 1, 1], [3, 2])).data();
const logits = tensor([5, 0, 0, 0, 6, 0, 0, 0, 7, 1, 1, 1, 0.5, 0.5, 0.6], [5, 3]);
const energy = await energyScore(logits).data();
const detector = energyDetector();
const viaDetector = await detector.score(logits).data();
const metrics = new OodMetrics().update(energy.slice(0, 3), false).update(energy.slice(3), true).compute();
console.log(JSON.stringify({
  y: [...y], energy: [...energy], viaDetector: [...viaDetector], auroc: metrics.auroc,
  sameEngine: engine.init === init, adapter: runtime().device.describe(),
  model: typeof WideResNet, rng: new Rng(1).next() >= 0, stopWords: nltkEnglishStopWords().has('the'),
}));
`);
    const r = mustRun(process.execPath, ['use.mjs'], { cwd: project });
    expect(ownStderr(r.stderr)).toBe('');
    const out = JSON.parse(r.stdout) as { y: number[]; energy: number[]; viaDetector: number[]; auroc: number; sameEngine: boolean; adapter: string; model: string; rng: boolean; stopWords: boolean };
    expect(out.y).toEqual([4, 5, 10, 11]);
    const rows = [[5, 0, 0], [0, 6, 0], [0, 0, 7], [1, 1, 1], [0.5, 0.5, 0.6]];
    const lse = (r: number[]) => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
    out.energy.forEach((e, i) => expect(e).toBeCloseTo(-lse(rows[i]!), 5));
    expect(out.viaDetector).toEqual(out.energy);
    expect(out.auroc).toBe(1);
    expect(out).toMatchObject({ sameEngine: true, model: 'function', rng: true, stopWords: true });
    expect(out.adapter).toMatch(/^adapter: /);
  });

  it("the README's examples run against the installed package", () => {
    const blocks = readmeBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const [i, block] of blocks.entries()) {
      const file = join(project, `readme-${i}.ts`);
      writeFileSync(file, block.code);
      const r = run(process.execPath, [file], { cwd: project });
      expect(ownStderr(r.stderr), `README block "${block.section}"`).toBe('');
      expect(r.status, `README block "${block.section}"`).toBe(0);
      expect(r.stdout.length).toBeGreaterThan(0);
    }
  });

  it('a strict TypeScript consumer typechecks under moduleResolution nodenext, our declarations included', () => {
    // WebGPU's types come from the default libs (dom has them since TypeScript 7), as the README
    // says; skipLibCheck off, so every declaration file the consumer reaches is checked too.
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'es2023', module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: false, verbatimModuleSyntax: true, types: ['node'] },
      include: ['consumer.ts'],
    }));
    writeFileSync(join(project, 'consumer.ts'), `
import { init, tensor, matmul, scope, type Tensor } from 'goe-webgpu';
import { Linear } from 'goe-webgpu/engine';
import { WideResNet } from 'goe-webgpu/models';
import { energyDetector, OodMetrics, computeOodMetrics, type OodMetricResult } from 'goe-webgpu/goe';
import { DataLoader, type Batch } from 'goe-webgpu/data';

export async function demo(): Promise<OodMetricResult> {
  await init({ adapter: 'software' });
  const y: Tensor = scope(() => matmul(tensor([1, 2], [1, 2]), tensor([3, 4], [2, 1])));
  const model = new WideResNet(10, { depth: 10, widenFactor: 1 });
  const detector = energyDetector({ model });
  const scores: Float32Array = (await detector.score(y).data()) as Float32Array;
  const linear: Linear = new Linear(2, 3);
  void linear; void DataLoader; const b: Batch | undefined = undefined; void b;
  new OodMetrics().update(scores, true);
  return computeOodMetrics([0.1, 0.2], [0.3]);
}
`);
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: project });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
