/**
 * The imagenet experiment (src/goe/experiments/imagenet.ts):
 *   - the accumulated micro-batch step gives the full batch's gradients (a ViT: no cross-sample
 *     operation), uneven splits included;
 *   - without ImageNet trees: one line naming where to put what, exit 2, before anything runs;
 *   - `goe experiment imagenet --limit 64 --max-steps 2` end to end on a class-folder tree of
 *     textured PNGs made here (imagenet-fixture.ts; a reduced ViT and the reduced BigGAN-deep,
 *     random weights), with the usual reports (results.json schema), the generated outliers as an
 *     image folder and the peak memory per phase in the log; the same with the reduced ResNet.
 * Resume, refused resume and the divergence stop: imagenet-resume.test.ts.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { engine, read } from '../helpers/gpu.ts';
import { capture, imageTree, makeImageNetTree, treeArgs, type ImageNetTree } from './imagenet-fixture.ts';
import { expectClose } from '../helpers/reference.ts';
import { loadSafetensorsFile, manualSeed, toFloat32 } from '../../src/engine/index.ts';
import { VisionTransformer } from '../../src/models/vit.ts';
import { accumulateOeGradients, planMicroBatch } from '../../src/goe/experiments/imagenet-train.ts';
import { experimentMain } from '../../src/cli/experiment.ts';
import { parseImageNetArgs } from '../../src/cli/experiment-imagenet.ts';
import { UsageError } from '../../src/cli/subcommand.ts';
import type { Classifier } from '../../src/goe/train/loop.ts';

let dir: string;
let tree: ImageNetTree;
beforeAll(async () => {
  await engine();
  dir = mkdtempSync(join(tmpdir(), 'goe-imagenet-'));
  tree = await makeImageNetTree(dir);
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('imagenet: the accumulated micro-batch step', () => {
  it('equals the full batch\'s loss and gradients (uneven micro-batches too)', async () => {
    manualSeed(3);
    const model = new VisionTransformer({ imageSize: 16, patchSize: 8, numLayers: 1, numHeads: 2, hiddenDim: 8, mlpDim: 16, numClasses: 5 });
    // a random head (torchvision initialises it to zeros, which would make every logit equal)
    const { normal_ } = await import('../../src/engine/index.ts');
    normal_(model.heads.head.weight, 0, 0.5);
    const B = 7;
    const x = new Float32Array(B * 3 * 16 * 16).map((_, i) => Math.sin(i * 0.37) + 0.1 * Math.cos(i * 1.3));
    const y = Int32Array.of(0, 3, -1, 4, -1, -1, 2);
    const grads = async (micro: number): Promise<{ loss: number; g: Float64Array[] }> => {
      model.zeroGrad();
      const loss = accumulateOeGradients(model as unknown as Classifier, x, [B, 3, 16, 16], y, { lambda: 0.5, microBatch: micro });
      const l = await loss.item();
      loss.dispose();
      const g: Float64Array[] = [];
      for (const p of model.parameters()) g.push(await read(p.grad!));
      return { loss: l, g };
    };
    const full = await grads(B);
    for (const micro of [3, 1]) {
      const acc = await grads(micro);
      expect(acc.loss).toBeCloseTo(full.loss, 5);
      acc.g.forEach((g, i) => expectClose(g, full.g[i]!, { atol: 2e-6, rtol: 1e-4, what: `grad ${i} (micro-batch ${micro})` }));
    }
    expect(full.g.some((g) => g.some((v) => Math.abs(v) > 1e-4))).toBe(true);
    model.dispose();
  }, 60_000);

  it('plans the largest micro-batch that fits the storage binding', () => {
    // ViT-B/16: 197 tokens x 3072 floats per sample = 2.4 MB; lavapipe's 128 MiB binding holds 55
    expect(planMicroBatch(128, 4 * 197 * 3072, 128 * 2 ** 20)).toBe(55);
    expect(planMicroBatch(128, 4 * 197 * 3072, 2 * 2 ** 30)).toBe(128);
    expect(planMicroBatch(128, 1e12, 1)).toBe(1);
  });
});

describe('goe experiment imagenet', () => {
  it('options: bad values are usage errors', () => {
    expect(parseImageNetArgs(['imagenet', '--model', 'vit-tiny', '--truncation', '0.5']).opts).toMatchObject({ model: 'vit-tiny', truncation: 0.5 });
    expect(parseImageNetArgs(['imagenet', '--resume', '--out', 'r', '--steps', '3', '--lr', '1e-4', '--checkpoint-every', '5']).opts).toMatchObject({ resume: true, out: 'r', steps: 3, lr: 1e-4, checkpointEvery: 5 });
    for (const [args, msg] of [
      [['--model', 'vgg'], /--model takes/], [['--truncation', '0'], /\(0, 1\]/], [['--latent-scale', 'x'], /std or variance/], [['--micro-batch', '0'], />= 1/],
      [['--resume'], /--resume needs --out DIR/], [['--lr', '0'], /--lr takes a finite number > 0/], [['--lr', 'Infinity'], /--lr takes/], [['--steps', '0'], /--steps must be an integer >= 1/],
    ] as const) {
      expect(() => parseImageNetArgs(['imagenet', ...args]), args.join(' ')).toThrow(UsageError);
      expect(() => parseImageNetArgs(['imagenet', ...args])).toThrow(msg);
    }
  });

  it('without the ImageNet trees: one line saying what to put where, exit 2, nothing written', async () => {
    const io = capture();
    const out = join(dir, 'no-run');
    const code = await experimentMain(['imagenet', '--model', 'vit-tiny', '--generator-config', 'biggan-deep-tiny', '--data-dir', join(dir, 'empty'), '--out', out], io);
    expect(code).toBe(2);
    const msg = io.err.join('');
    expect(msg.trim().split('\n')).toHaveLength(1);
    expect(msg).toMatch(/ImageNet cannot be downloaded/);
    expect(msg).toContain(join(dir, 'empty', 'imagenet', 'val'));
    expect(msg).toMatch(/--imagenet-val PATH/);
    expect(existsSync(out)).toBe(false);
    const noWeights = capture();
    expect(await experimentMain(['imagenet', '--out', out], noWeights)).toBe(2);
    expect(noWeights.err.join('')).toMatch(/--weights FILE is needed/);
    const badConfig = capture();
    expect(await experimentMain(['imagenet', '--model', 'vit-tiny', '--generator-config', join(dir, 'nope.json'), '--out', out], badConfig)).toBe(2);
    expect(badConfig.err.join('')).toMatch(/--generator-config .*nope\.json/);
    expect(existsSync(out)).toBe(false);
    // train and val with other class folders: the labels would not agree
    await imageTree(join(dir, 'other-train'), ['n01440764', 'n09999999'], 1, 0);
    const mismatch = capture();
    expect(await experimentMain(['imagenet', '--model', 'vit-tiny', '--generator-config', 'biggan-deep-tiny', '--imagenet-train', join(dir, 'other-train'),
      '--imagenet-val', tree.val, '--out', join(dir, 'mismatch')], mismatch)).toBe(2);
    expect(mismatch.err.join('')).toMatch(/class folders .* differ from the validation split's/);
  });

  it('--limit 64 --max-steps 2 runs end to end and writes the usual reports', async () => {
    const io = capture();
    const out = join(dir, 'run');
    const code = await experimentMain([
      'imagenet', '--limit', '64', '--max-steps', '2', '--model', 'vit-tiny', '--generator-config', 'biggan-deep-tiny',
      ...treeArgs(tree),
      '--micro-batch', '16', '--workers', '0', '--out', out,
    ], io);
    expect(code, io.err.join('')).toBe(0);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { variants: { outliers: string; accuracy: number | null; rows: { detector: string; outlier_set: string; AUROC: number; FPR95TPR: number }[] }[] };
    expect(results.variants.map((v) => v.outliers)).toEqual(['none', 'noise', 'generated']);
    for (const v of results.variants) {
      expect(v.accuracy).toBeGreaterThanOrEqual(0);
      const sets = new Set(v.rows.map((r) => r.outlier_set));
      for (const s of ['ImageNet-A', 'ImageNet-R', 'ImageNet-O']) expect(sets.has(s), `${v.outliers} ${s}`).toBe(true);
      expect(new Set(v.rows.map((r) => r.detector))).toEqual(new Set(['MSP', 'Energy']));
      for (const r of v.rows) expect(r.AUROC).toBeGreaterThanOrEqual(0);
    }
    for (const f of ['results.md', 'results.csv', 'baseline/model.safetensors', 'generated/model.safetensors', 'noise/scores.npz', 'noise/checkpoint.safetensors', 'config.json']) expect(existsSync(join(out, f)), f).toBe(true);
    // the generated outliers as the notebook's image folder: 64 PNGs at the generator's 64x64
    const pngs = readdirSync(join(out, 'outliers', 'generated')).filter((f) => f.endsWith('.png'));
    expect(pngs).toHaveLength(64);
    expect((await sharp(join(out, 'outliers', 'generated', pngs[0]!)).metadata()).width).toBe(64);
    // real pictures, not the black of NaN outputs: every channel varies within an image and between images
    const stats = await Promise.all(pngs.slice(0, 4).map((f) => sharp(join(out, 'outliers', 'generated', f)).stats()));
    for (const st of stats) for (const ch of st.channels.slice(0, 3)) expect(ch.stdev).toBeGreaterThan(1);
    expect(new Set(stats.map((st) => st.channels[0]!.mean.toFixed(3))).size).toBeGreaterThan(1);
    const logText = readFileSync(join(out, 'train.log'), 'utf8');
    expect(logText).toMatch(/\[oe-generated\] epoch \d+\/\d+ step 2\/1000 loss \d/);
    expect(logText).toMatch(/\[oe-generated\] 2 of 1000 steps, .*stopped by --max-steps, --resume continues it/);
    expect(logText).toMatch(/micro-batches of 16/);
    for (const phase of ['outliers noise', 'oe-noise', 'evaluate none', 'oe-generated']) expect(logText).toMatch(new RegExp(`\\[${phase}\\] peak GPU memory \\d+\\.\\d MiB`));
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toMatch(/PROVISIONAL/);
    if (process.env.GOE_SHOW_LOG) console.log(logText);
  }, 600_000);

  it('--model resnet-tiny --limit 64 --max-steps 2: the ResNet path end to end (BatchNorm fine-tuned in micro-batches)', async () => {
    const io = capture();
    const out = join(dir, 'run-resnet');
    const code = await experimentMain([
      'imagenet', '--limit', '64', '--max-steps', '2', '--model', 'resnet-tiny', '--generator-config', 'biggan-deep-tiny',
      ...treeArgs(tree), '--micro-batch', '32', '--workers', '0', '--out', out,
    ], io);
    expect(code, io.err.join('')).toBe(0);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { variants: { outliers: string; accuracy: number | null; rows: { detector: string; outlier_set: string; AUROC: number }[] }[] };
    expect(results.variants.map((v) => v.outliers)).toEqual(['none', 'noise', 'generated']);
    for (const v of results.variants) {
      expect(v.accuracy).toBeGreaterThanOrEqual(0);
      const sets = new Set(v.rows.map((r) => r.outlier_set));
      for (const name of ['ImageNet-A', 'ImageNet-R', 'ImageNet-O']) expect(sets.has(name), `${v.outliers} ${name}`).toBe(true);
      for (const r of v.rows) expect(Number.isFinite(r.AUROC)).toBe(true);
    }
    // fine-tuning changed the weights and the BatchNorm running statistics of torchvision's tree
    const base = await loadSafetensorsFile(join(out, 'baseline', 'model.safetensors'));
    const tuned = await loadSafetensorsFile(join(out, 'noise', 'model.safetensors'));
    expect([...tuned.tensors.keys()].sort()).toEqual([...base.tensors.keys()].sort());
    for (const key of ['fc.weight', 'conv1.weight', 'bn1.running_mean', 'layer4.0.bn3.running_var']) {
      const a = toFloat32(base.tensors.get(key)!);
      const b = toFloat32(tuned.tensors.get(key)!);
      expect(b.every(Number.isFinite), key).toBe(true);
      expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), `${key} changed`).toBe(false);
    }
    const logText = readFileSync(join(out, 'train.log'), 'utf8');
    expect(logText).toMatch(/classifier resnet-tiny: random initialisation/);
    expect(logText).toMatch(/\[oe-generated\] epoch \d+\/\d+ step 2\/1000 loss \d/);
    expect(logText).toMatch(/micro-batches of 32/);
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toMatch(/PROVISIONAL/);
  }, 900_000);

  it('--outliers-dir: generated outliers made beforehand (an image folder), no generator', async () => {
    const io = capture();
    const out = join(dir, 'run-dir');
    const code = await experimentMain([
      'imagenet', '--limit', '16', '--max-steps', '1', '--model', 'vit-tiny', '--variants', 'generated', '--outliers-dir', tree.r,
      ...treeArgs(tree),
      '--workers', '0', '--out', out,
    ], io);
    expect(code, io.err.join('')).toBe(0);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { variants: { outliers: string }[] };
    expect(results.variants.map((v) => v.outliers)).toEqual(['generated']);
    expect(existsSync(join(out, 'outliers'))).toBe(false);
    expect(readFileSync(join(out, 'train.log'), 'utf8')).toMatch(/\[generated\] 4 outliers/);
  }, 300_000);
});
