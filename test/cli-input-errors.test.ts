/**
 * Issue 20's CLI cases, one test each: every input the user gets wrong ends `goe experiment` with
 * exit 2 and one line on stderr saying what to do (no stack), checked before any training (the
 * training loop is recorded here, not run: a case that reached it would show), and a refused
 * --resume leaves the folder byte-identical. Corrupt run-folder files on --resume: a truncated
 * sidecar or outlier set is one line naming the file; a truncated evaluation.json is evaluated
 * again. (A corrupt checkpoint falls back to the previous one: test/goe/checkpoint-checksums.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { TrainLoopOptions, TrainLoopResult } from '../src/goe/train/loop.ts';

const loops = vi.hoisted(() => [] as string[]);
vi.mock('../src/goe/train/loop.ts', async (importOriginal) => {
  const orig = await importOriginal<typeof import('../src/goe/train/loop.ts')>();
  return {
    ...orig,
    trainLoop: async (o: TrainLoopOptions): Promise<TrainLoopResult> => {
      loops.push(o.name);
      return { steps: 1, epochs: 1, losses: [], stepsPerSecond: 0, seconds: 0, resumedFrom: null, interrupted: false };
    },
  };
});

const { engine } = await import('./helpers/gpu.ts');
const { saveModel } = await import('../src/engine/index.ts');
const { saveNpz } = await import('../src/engine/io/node-files.ts');
const { WideResNet } = await import('../src/models/index.ts');
const { runExperimentCli, parseExperimentArgs } = await import('../src/cli/experiment.ts');
const { UsageError } = await import('../src/cli/subcommand.ts');
const { writeTextAtomic, readJsonFile } = await import('../src/goe/train/run-files.ts');
const { DataError } = await import('../src/data/index.ts');

let root: string;
let base: string; // a finished smoke run (none, noise) to corrupt copies of
let weights: string;

beforeAll(async () => {
  await engine();
  root = mkdtempSync(join(tmpdir(), 'goe-cli-inputs-'));
  weights = join(root, 'w.safetensors');
  const m = new WideResNet(4, { depth: 10, widenFactor: 1, dropRate: 0 });
  await saveModel(weights, m);
  m.dispose();
  base = join(root, 'base');
  const r = await cli({ out: base, variants: ['none', 'noise'] });
  expect(r.code, r.err).toBe(0);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

type Opts = Parameters<typeof runExperimentCli>[1];

async function cli(opts: Opts, name = 'smoke'): Promise<{ code: number; err: string; out: string }> {
  const err: string[] = [];
  const out: string[] = [];
  const r = await runExperimentCli(name, { workers: 0, ...opts }, { stdout: (t) => out.push(t), stderr: (t) => err.push(t) });
  return { code: r.code, err: err.join(''), out: out.join('') };
}

/** Exit 2, one line naming the experiment, matching `msg`, no stack trace; and no training ran. */
async function refused(opts: Opts, msg: RegExp, name = 'smoke'): Promise<void> {
  loops.length = 0;
  const r = await cli(opts, name);
  expect(r.code, r.err).toBe(2);
  expect(r.err.endsWith('\n')).toBe(true);
  expect(r.err.trimEnd().split('\n'), r.err).toHaveLength(1);
  expect(r.err).toMatch(new RegExp(`^goe experiment ${name}: `));
  expect(r.err).toMatch(msg);
  expect(r.err).not.toMatch(/\bat .+:\d+:\d+/);
  expect(loops, 'no training phase may start').toEqual([]);
}

/** Every file under `dir` with its bytes. */
function snapshot(dir: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const f of readdirSync(dir, { recursive: true }).map(String).sort()) {
    const p = join(dir, f);
    m.set(f, statSync(p).isDirectory() ? '<dir>' : readFileSync(p).toString('base64'));
  }
  return m;
}

function copyOfBase(name: string): string {
  const d = join(root, name);
  cpSync(base, d, { recursive: true });
  return d;
}

describe('goe experiment: input errors are exit 2 and one line, before any training', () => {
  it('--out that is a file', async () => {
    writeFileSync(join(root, 'a-file'), 'x');
    await refused({ out: join(root, 'a-file') }, /--out .*a-file is a file, not a folder: name a folder for the run$/m);
  });

  it('--out that cannot be written (/proc: no endless loop either)', async () => {
    await refused({ out: '/proc/goe-cli-x' }, /--out \/proc\/goe-cli-x cannot be written \(.+\): name a folder you can write to$/m);
  });

  it('--pretrained missing, a PyTorch pickle, or not a readable safetensors file', async () => {
    await refused({ out: join(root, 'p1'), pretrained: join(root, 'nope.safetensors') }, /--pretrained .*nope\.safetensors does not exist$/m);
    writeFileSync(join(root, 'w.pt'), 'PK\x03\x04 not really');
    await refused({ out: join(root, 'p2'), pretrained: join(root, 'w.pt') }, /--pretrained .*w\.pt looks like a PyTorch pickle; .*goe convert|--pretrained .*w\.pt looks like a PyTorch pickle/m);
    writeFileSync(join(root, 'junk.safetensors'), new Uint8Array(64).fill(7));
    await refused({ out: join(root, 'p3'), pretrained: join(root, 'junk.safetensors') }, /--pretrained .*junk\.safetensors is not a readable safetensors file \(.+\): is it whole\?/m);
    const cut = readFileSync(weights).subarray(0, 5000);
    writeFileSync(join(root, 'cut.safetensors'), cut);
    await refused({ out: join(root, 'p4'), pretrained: join(root, 'cut.safetensors') }, /--pretrained .*cut\.safetensors is not a readable safetensors file/m);
  });

  it('--generator missing', async () => {
    await refused({ out: join(root, 'g1'), variants: ['generated'], generator: join(root, 'G-missing.safetensors') }, /--generator .*G-missing\.safetensors does not exist$/m);
    expect(existsSync(join(root, 'g1', 'baseline', 'model.safetensors'))).toBe(false);
  });

  it('--outliers-file missing, not .npz/.npy, not an archive, empty, or of another shape', async () => {
    const gen = { variants: ['none', 'generated'] };
    await refused({ ...gen, out: join(root, 'o1'), outliersFile: join(root, 'missing.npz') }, /--outliers-file .*missing\.npz does not exist$/m);
    writeFileSync(join(root, 'o.txt'), 'x');
    await refused({ ...gen, out: join(root, 'o2'), outliersFile: join(root, 'o.txt') }, /--outliers-file .*o\.txt is not an \.npz \(outliers under "x"\) or \.npy file/m);
    writeFileSync(join(root, 'junk.npz'), 'not a zip at all');
    await refused({ ...gen, out: join(root, 'o3'), outliersFile: join(root, 'junk.npz') }, /junk\.npz/);
    await saveNpz(join(root, 'empty.npz'), { x: { data: new Uint8Array(0), shape: [0, 3, 32, 32] } });
    await refused({ ...gen, out: join(root, 'o4'), outliersFile: join(root, 'empty.npz') }, /empty\.npz/);
    await saveNpz(join(root, 'grey.npz'), { x: { data: new Uint8Array(2 * 784), shape: [2, 1, 28, 28] } });
    await refused({ ...gen, out: join(root, 'o5'), outliersFile: join(root, 'grey.npz') }, /--outliers-file .*grey\.npz holds 1x28x28 samples, the inliers are 3x32x32/m);
    expect(existsSync(join(root, 'o5', 'baseline'))).toBe(false);
  });

  it('bad option values are usage errors (exit 2 in the dispatcher), the "nothing to do" ones included', () => {
    for (const [args, msg] of [
      [['--variants', ','], /--variants takes a comma-separated list/],
      [['--max-steps', '0'], /--max-steps must be at least 1/],
      [['--epochs', '0'], /--epochs must be at least 1/],
      [['--pretrain-epochs', '0'], /--pretrain-epochs must be at least 1/],
      [['--limit', ''], /--limit must be a non-negative integer/],
      [['--workers', 'two'], /--workers must be a non-negative integer/],
      [['--resume'], /--resume needs --out DIR/],
    ] as [string[], RegExp][]) {
      expect(() => parseExperimentArgs(['smoke', ...args]), args.join(' ')).toThrow(UsageError);
      expect(() => parseExperimentArgs(['smoke', ...args]), args.join(' ')).toThrow(msg);
    }
  });
});

describe('--resume: refused folders are untouched; corrupt files are named', () => {
  it("another experiment's folder, or other settings: exit 2, and the folder byte-identical", async () => {
    const d = copyOfBase('other');
    const before = snapshot(d);
    await refused({ out: d, resume: true }, /holds a run of "smoke", not "fmnist"; resume it with its own experiment or start a new folder$/m, 'fmnist');
    await refused({ out: d, resume: true, variants: ['none', 'noise'], epochs: 7 }, /the run was made with other settings \(finetune differ\)/);
    expect(snapshot(d)).toEqual(before);
  });

  it('a truncated config.json', async () => {
    const d = copyOfBase('config');
    writeFileSync(join(d, 'config.json'), readFileSync(join(d, 'config.json'), 'utf8').slice(0, 40));
    const before = snapshot(d);
    await refused({ out: d, resume: true, variants: ['none', 'noise'] }, /--resume .*config: its config\.json cannot be read \(.+\); start a new run folder$/m);
    expect(snapshot(d)).toEqual(before);
  });

  it("a truncated outlier set's JSON sidecar: one line naming it", async () => {
    const d = copyOfBase('sidecar');
    const side = join(d, 'outliers', 'noise.npz.json');
    writeFileSync(side, readFileSync(side, 'utf8').slice(0, 10));
    loops.length = 0;
    const r = await cli({ out: d, resume: true, variants: ['none', 'noise'] });
    expect(r.code).toBe(2);
    expect(r.err.trimEnd().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^goe experiment smoke: .*outliers\/noise\.npz\.json: is not whole JSON \(.+; truncated\?\): delete it and its \.npz to sample the set again\n$/);
  });

  it('a corrupt outlier set: one line naming it', async () => {
    const d = copyOfBase('outliers');
    const npz = join(d, 'outliers', 'noise.npz');
    writeFileSync(npz, readFileSync(npz).subarray(0, 300));
    const r = await cli({ out: d, resume: true, variants: ['none', 'noise'] });
    expect(r.code).toBe(2);
    expect(r.err.trimEnd().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^goe experiment smoke: .*outliers\/noise\.npz: /);
  });

  it('a truncated evaluation.json is evaluated again (it is a cache), and rewritten whole', async () => {
    const d = copyOfBase('evaluation');
    const ev = join(d, 'noise', 'evaluation.json');
    writeFileSync(ev, readFileSync(ev, 'utf8').slice(0, 100));
    const r = await cli({ out: d, resume: true, variants: ['none', 'noise'] });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/\[noise\] .*evaluation\.json is not whole JSON .*: evaluating again/);
    expect(JSON.parse(readFileSync(ev, 'utf8')).complete).toBe(true);
    expect(readdirSync(join(d, 'noise')).filter((f) => f.includes('.tmp'))).toEqual([]);
  });
});

describe('run-folder JSON files are written atomically', () => {
  it('a failed write leaves the old file whole and no temporary behind; a truncated file is a DataError naming it', () => {
    const d = join(root, 'atomic');
    cpSync(base, d, { recursive: true });
    const f = join(d, 'summary.json');
    const old = readFileSync(f, 'utf8');
    // a value that cannot be written: the temporary file's folder is gone mid-way (rename fails)
    expect(() => writeTextAtomic(join(d, 'missing-folder', 'x.json'), '{}')).toThrow();
    writeTextAtomic(f, '{"a": 1}\n');
    expect(readFileSync(f, 'utf8')).toBe('{"a": 1}\n');
    writeTextAtomic(f, old);
    expect(readdirSync(d).filter((x) => x.includes('.tmp'))).toEqual([]);
    writeFileSync(join(d, 'cut.json'), '{"a": [1, 2');
    expect(() => readJsonFile(join(d, 'cut.json'))).toThrow(DataError);
    expect(() => readJsonFile(join(d, 'cut.json'))).toThrow(/cut\.json: is not whole JSON/);
  });
});
