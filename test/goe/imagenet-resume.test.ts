/**
 * `goe experiment imagenet --resume` and the divergence stop, at tiny sizes on the imagenet
 * fixture (imagenet-fixture.ts; the reduced ViT with dropout 0.1 and the reduced BigGAN-deep):
 *   - a run stopped by --max-steps, with its BigGAN sampling cut short too (an image and the
 *     folder's description removed), then resumed, equals the uninterrupted run bit for bit: the
 *     fine-tuned weights, the losses, the evaluation and the generated images;
 *   - --resume with other settings, or of another experiment's folder, exits 2 naming why and
 *     leaves the folder byte-identical; the other experiments refuse an imagenet folder;
 *   - a learning rate that makes the weights blow up stops the phase with one line naming the
 *     step and the last good checkpoint (exit 1), and every checkpoint file holds finite values.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { engine } from '../helpers/gpu.ts';
import { loadSafetensorsFile, toFloat32 } from '../../src/engine/index.ts';
import { experimentMain } from '../../src/cli/experiment.ts';
import { capture, makeImageNetTree, treeArgs, type ImageNetTree } from './imagenet-fixture.ts';

let dir: string;
let tree: ImageNetTree;
beforeAll(async () => {
  await engine();
  dir = mkdtempSync(join(tmpdir(), 'goe-imagenet-resume-'));
  tree = await makeImageNetTree(dir);
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** 2 fine-tuning batches (24 training images: one batch per epoch) in one micro-batch, 32 outliers per variant (two sampling chunks). */
function run(variants = 'noise,generated'): string[] {
  return [
    'imagenet', '--model', 'vit-tiny', '--generator-config', 'biggan-deep-tiny', '--variants', variants, '--limit', '32', '--steps', '2', '--micro-batch', '128', '--workers', '0',
    ...treeArgs(tree),
  ];
}

async function goe(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = capture();
  const code = await experimentMain(args, io);
  return { code, out: io.out.join(''), err: io.err.join('') };
}

/** Every file under `root` and its bytes. */
function snapshot(root: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else files.set(relative(root, p), readFileSync(p));
    }
  };
  walk(root);
  return files;
}

async function tensors(file: string): Promise<Map<string, Float32Array>> {
  const f = await loadSafetensorsFile(file);
  return new Map([...f.tensors].filter(([, t]) => t.dtype === 'F32').map(([k, t]) => [k, toFloat32(t)]));
}

interface Results {
  variants: { outliers: string; accuracy: number | null; rows: Record<string, unknown>[] }[];
}

describe('goe experiment imagenet --resume', () => {
  it('stopped by --max-steps (sampling cut short too) and resumed = uninterrupted, bit for bit', async () => {
    const full = join(dir, 'full');
    const a = await goe([...run(), '--out', full]);
    expect(a.code, a.err).toBe(0);
    const cut = join(dir, 'cut');
    const b1 = await goe([...run(), '--max-steps', '1', '--out', cut]);
    expect(b1.code, b1.err).toBe(0);
    expect(readFileSync(join(cut, 'results.md'), 'utf8')).toMatch(/PROVISIONAL/);
    for (const v of ['noise', 'generated']) expect(existsSync(join(cut, v, 'checkpoint.safetensors')), v).toBe(true);
    // the sampling stopped before its second chunk was whole: no description, one image missing
    rmSync(join(cut, 'outliers', 'generated.json'));
    rmSync(join(cut, 'outliers', 'generated', 'img-000020.png'));
    const b2 = await goe([...run(), '--resume', '--out', cut]);
    expect(b2.code, b2.err).toBe(0);
    const log = readFileSync(join(cut, 'train.log'), 'utf8');
    expect(log).toMatch(/\[oe-noise\] resumed from .*noise\/checkpoint\.safetensors: epoch 2\/2, batch 0\/1, step 1/);
    expect(log).toMatch(/\[generated\] 16 of 32 images kept from the interrupted sampling/);
    expect(readFileSync(join(cut, 'results.md'), 'utf8')).not.toMatch(/PROVISIONAL/);

    for (const v of ['noise', 'generated']) {
      const want = await tensors(join(full, v, 'model.safetensors'));
      const got = await tensors(join(cut, v, 'model.safetensors'));
      expect([...got.keys()]).toEqual([...want.keys()]);
      for (const [k, w] of want) expect(Buffer.from(got.get(k)!.buffer).equals(Buffer.from(w.buffer)), `${v} ${k}`).toBe(true);
    }
    const ra = JSON.parse(readFileSync(join(full, 'results.json'), 'utf8')) as Results;
    const rb = JSON.parse(readFileSync(join(cut, 'results.json'), 'utf8')) as Results;
    expect(rb.variants.map((v) => [v.outliers, v.accuracy, v.rows])).toEqual(ra.variants.map((v) => [v.outliers, v.accuracy, v.rows]));
    const summary = (d: string) => (JSON.parse(readFileSync(join(d, 'results.json'), 'utf8')) as { variants: { training?: { losses: unknown[] } }[] }).variants.map((v) => v.training?.losses);
    const losses = summary(full);
    expect(losses.every((l) => l !== undefined && l.length === 2)).toBe(true);
    expect(summary(cut)).toEqual(losses);
    const pngs = readdirSync(join(full, 'outliers', 'generated')).sort();
    expect(pngs).toHaveLength(32);
    expect(readdirSync(join(cut, 'outliers', 'generated')).sort()).toEqual(pngs);
    for (const f of pngs) expect(readFileSync(join(cut, 'outliers', 'generated', f)).equals(readFileSync(join(full, 'outliers', 'generated', f))), f).toBe(true);

    // resuming a finished run reuses everything and changes no result
    const again = await goe([...run(), '--resume', '--out', full]);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(/\[noise\] evaluation reused/);
    expect(again.out).toMatch(/\[generated\] outliers reused/);
    expect((JSON.parse(readFileSync(join(full, 'results.json'), 'utf8')) as Results).variants.map((v) => v.rows)).toEqual(ra.variants.map((v) => v.rows));
  }, 900_000);

  it('other settings, or another experiment\'s folder: exit 2, one line, the folder untouched', async () => {
    const full = join(dir, 'full');
    if (!existsSync(join(full, 'config.json'))) expect.fail('needs the first test\'s run');
    const before = snapshot(full);
    const lr = await goe([...run(), '--lr', '0.01', '--resume', '--out', full]);
    expect(lr.code).toBe(2);
    expect(lr.err.trim().split('\n')).toHaveLength(1);
    expect(lr.err).toMatch(/--resume .*full: the run was made with other settings \(lr differ\); resume with the same options or start a new folder/);
    const variants = await goe([...run('noise'), '--resume', '--out', full]);
    expect(variants.code).toBe(2);
    expect(variants.err).toMatch(/other settings \(variants differ\)/);
    // the other experiments refuse this folder, and this one refuses theirs
    const smoke = await goe(['smoke', '--resume', '--out', full]);
    expect(smoke.code).toBe(2);
    expect(smoke.err).toMatch(/holds a run of "imagenet", not "smoke"/);
    const after = snapshot(full);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [f, bytes] of before) expect(after.get(f)!.equals(bytes), f).toBe(true);

    const other = join(dir, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'config.json'), JSON.stringify({ name: 'fmnist' }) + '\n');
    const theirs = await goe([...run(), '--resume', '--out', other]);
    expect(theirs.code).toBe(2);
    expect(theirs.err).toMatch(/holds a run of "fmnist", not "imagenet"; resume it with its own experiment or start a new folder/);
    expect(readdirSync(other)).toEqual(['config.json']);
  }, 120_000);
});

describe('goe experiment imagenet: divergence', () => {
  it('a huge learning rate: stops at step 2 naming the step-1 checkpoint; only finite checkpoints, no results', async () => {
    const out = join(dir, 'diverge');
    const r = await goe([...run('noise'), '--lr', '1e30', '--checkpoint-every', '1', '--out', out]);
    expect(r.code).toBe(1);
    const line = r.err.trim();
    expect(line.split('\n')).toHaveLength(1);
    const ckpt = join(out, 'noise', 'checkpoint.safetensors');
    expect(line).toMatch(/^goe experiment imagenet: \[oe-noise\] training diverged: .* became non-finite at step 2/);
    expect(line).toContain(`the last good checkpoint is ${ckpt} (written at step 1). Lower the learning rate, or resume from that checkpoint (--resume).`);
    const kept = readdirSync(join(out, 'noise')).filter((f) => f.endsWith('.safetensors'));
    expect(kept).toEqual(['checkpoint.safetensors']);
    for (const [k, t] of await tensors(ckpt)) expect(t.every(Number.isFinite), k).toBe(true);
    const meta = JSON.parse((await loadSafetensorsFile(ckpt)).metadata.meta!) as { loop: { step: number } };
    expect(meta.loop.step).toBe(1);
    expect(existsSync(join(out, 'results.json'))).toBe(false);
  }, 300_000);
});
