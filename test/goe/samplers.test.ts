/**
 * Outlier samplers: the noise baselines' statistics and seeding, the BigGAN latent sampler's
 * latent variance (sigma^2 is a variance) and its uint8 conversion against a CPU reference, the
 * LM sampler's temperature effect on the entropy of what it samples, and the .npz files that
 * outlier sets are saved to (read back by the data layer, byte for byte).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { engine } from '../helpers/gpu.ts';
import { matmul, releaseParameterArena, scope, tanh, tensor, type Tensor } from '../../src/engine/index.ts';
import { DataLoader, NpzFile, Vocab, readNpyHeader } from '../../src/data/index.ts';
import { TransformerModel, sampleWords } from '../../src/models/index.ts';
import {
  FileSampler, ImageNoiseSampler, LatentSampler, LmSampler, TokenNoiseSampler, empiricalEntropy, sampleClasses, sampleLatent, saveOutlierSet,
  type ConditionalImageGenerator,
} from '../../src/goe/index.ts';

let dir: string;
beforeAll(async () => {
  await engine();
  dir = mkdtempSync(join(tmpdir(), 'goe-samplers-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  releaseParameterArena();
});

function stats(a: ArrayLike<number>): { mean: number; variance: number } {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  const mean = s / a.length;
  let v = 0;
  for (let i = 0; i < a.length; i++) v += (a[i]! - mean) ** 2;
  return { mean, variance: v / (a.length - 1) };
}

describe('noise samplers', () => {
  it('uniform image noise: every pixel uniform on 0..255, seeded, uint8 CHW', async () => {
    const s = new ImageNoiseSampler({ kind: 'uniform' });
    const a = await s.sample(37, 1);
    const b = await s.sample(37, 1);
    const c = await s.sample(37, 2);
    expect(a.source.kind).toBe('array');
    if (a.source.kind !== 'array' || b.source.kind !== 'array' || c.source.kind !== 'array') return;
    expect(a.source.sampleShape).toEqual([3, 32, 32]);
    expect(a.source.labels).toBeNull();
    expect(Buffer.from(a.source.data.buffer).equals(Buffer.from(b.source.data.buffer))).toBe(true);
    expect(Buffer.from(a.source.data.buffer).equals(Buffer.from(c.source.data.buffer))).toBe(false);
    const { mean, variance } = stats(a.source.data);
    // U{0..255}: mean 127.5, variance (256^2 - 1) / 12 = 5461.25; n = 113,664
    expect(Math.abs(mean - 127.5)).toBeLessThan(1);
    expect(Math.abs(variance / 5461.25 - 1)).toBeLessThan(0.02);
    const counts = new Array<number>(256).fill(0);
    for (const v of a.source.data) counts[v]!++;
    expect(Math.min(...counts)).toBeGreaterThan(0);
  });

  it("gaussian image noise: pytorch-ood's N(128, 128^2) clipped to 0..255", async () => {
    const a = await new ImageNoiseSampler({ kind: 'gaussian' }).sample(41, 3);
    if (a.source.kind !== 'array') throw new Error('expected an array source');
    const d = a.source.data;
    let lo = 0;
    let hi = 0;
    for (const v of d) {
      if (v === 0) lo++;
      if (v === 255) hi++;
    }
    // P(z <= -1) = 0.1587; P(128 + 128 z >= 255) = P(z >= 0.992) = 0.1606
    expect(Math.abs(lo / d.length - 0.1587)).toBeLessThan(0.01);
    expect(Math.abs(hi / d.length - 0.1606)).toBeLessThan(0.01);
  });

  it('random token sequences: 20 tokens from the vocabulary (no specials), left-padded', async () => {
    const s = new TokenNoiseSampler({ vocabSize: 53, seqLength: 27 });
    const a = await s.sample(300, 4);
    if (a.source.kind !== 'array') throw new Error('expected an array source');
    expect(a.source.sampleShape).toEqual([27]);
    const ids = a.source.data as Int32Array;
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) {
      for (let j = 0; j < 7; j++) expect(ids[i * 27 + j]).toBe(1);
      for (let j = 7; j < 27; j++) {
        const t = ids[i * 27 + j]!;
        expect(t).toBeGreaterThanOrEqual(2);
        expect(t).toBeLessThan(53);
        seen.add(t);
      }
    }
    expect(seen.size).toBe(51);
  });
});

/** A toy generator: tanh(z W) as [N, 3, 4, 4] images, on the GPU (the class is ignored). */
function toyGenerator(dimZ: number, classes: number, W: Float32Array): ConditionalImageGenerator & { calls: number } {
  const g = {
    dimZ,
    numClasses: classes,
    calls: 0,
    generate(z: Tensor, y: Tensor): Tensor {
      g.calls++;
      expect(y.shape).toEqual([z.shape[0]]);
      return scope(() => tanh(matmul(z, tensor(W, [dimZ, 48]))).reshape([z.shape[0], 3, 4, 4]));
    },
  };
  return g;
}

describe('BigGAN latent sampler', () => {
  it('z ~ N(0, sigma^2 I): sigma^2 = 50 is the variance; classes uniform', async () => {
    const { z, y } = sampleLatent(300, 128, 50, 10, 7);
    const v = (await z.data()) as Float32Array;
    z.dispose();
    const s = stats(v);
    // 38,400 values: the sample variance's relative standard error is sqrt(2 / n) = 0.7%
    expect(Math.abs(s.mean)).toBeLessThan(0.2);
    expect(Math.abs(s.variance / 50 - 1)).toBeLessThan(0.035);
    const counts = new Array<number>(10).fill(0);
    for (const k of y) counts[k]!++;
    expect(Math.min(...counts)).toBeGreaterThan(15);
    expect(Array.from(sampleClasses(300, 10, 7))).toEqual(Array.from(y));
    // sigma^2 = 2 (the ImageNet setting)
    const w = sampleLatent(300, 128, 2, 10, 8);
    const s2 = stats((await w.z.data()) as Float32Array);
    w.z.dispose();
    expect(Math.abs(s2.variance / 2 - 1)).toBeLessThan(0.035);
  });

  it("the latent scale read as the std (BigGAN-PyTorch's z_var, the experiments' default) or as the variance, and G's mode while sampling", async () => {
    // a generator that shows its z: the image is tanh(z / 100) over 8 values, so z comes back as 100 atanh(2 u / 255 - 1)
    const seen: string[] = [];
    const g = {
      dimZ: 64, numClasses: 3, mode: 'none',
      generate: (z: Tensor) => scope(() => tanh(z.mul(0.01)).reshape([z.shape[0]!, 1, 8, 8])),
      train() { seen.push('train'); }, eval() { seen.push('eval'); },
    };
    const std = async (scale: 'std' | 'variance', mode: 'train' | 'eval'): Promise<number> => {
      const set = await new LatentSampler({ generator: g, sigma2: 50, scale, mode, chunk: 50 }).sample(400, 3);
      expect(set.info).toMatchObject({ latentScale: scale, zStd: scale === 'std' ? 50 : Math.sqrt(50), mode, chunk: 50 });
      const u = (set.source as { data: Uint8Array }).data;
      let sq = 0;
      for (const v of u) sq += (100 * Math.atanh(Math.min(0.999, Math.max(-0.999, (2 * v + 1) / 255 - 1)))) ** 2;
      return Math.sqrt(sq / u.length);
    };
    expect(await std('std', 'train')).toBeGreaterThan(40); // z ~ N(0, 50^2): std 50 (uint8 truncation and the clamp pull it down a little)
    expect(await std('std', 'train')).toBeLessThan(56);
    const v = await std('variance', 'eval');
    expect(v).toBeGreaterThan(6.3); // z ~ N(0, 50): std 7.07
    expect(v).toBeLessThan(8);
    expect(seen).toEqual(['train', 'train', 'eval']);
  });

  it('generates uint8(255 (G(z) + 1) / 2) images, independent of the chunk size', async () => {
    const dimZ = 8;
    const W = Float32Array.from({ length: dimZ * 48 }, (_, i) => Math.sin(i * 1.7) * 0.5);
    const g = toyGenerator(dimZ, 5, W);
    const a = await new LatentSampler({ generator: g, sigma2: 50, chunk: 7 }).sample(23, 11);
    expect(g.calls).toBe(4);
    const b = await new LatentSampler({ generator: g, sigma2: 50, chunk: 100 }).sample(23, 11);
    if (a.source.kind !== 'array' || b.source.kind !== 'array') throw new Error('expected array sources');
    expect(a.source.sampleShape).toEqual([3, 4, 4]);
    expect(Buffer.from(a.source.data.buffer).equals(Buffer.from(b.source.data.buffer))).toBe(true);
    expect(a.classes!.length).toBe(23);
    // CPU reference from the same latents
    const { z } = sampleLatent(23, dimZ, 50, 5, 11);
    const zs = (await z.data()) as Float32Array;
    z.dispose();
    let worst = 0;
    for (let n = 0; n < 23; n++) {
      for (let j = 0; j < 48; j++) {
        let acc = 0;
        for (let k = 0; k < dimZ; k++) acc += zs[n * dimZ + k]! * W[k * 48 + j]!;
        const ref = Math.min(255, Math.max(0, Math.trunc((255 * (Math.tanh(acc) + 1)) / 2)));
        worst = Math.max(worst, Math.abs(ref - a.source.data[n * 48 + j]!));
      }
    }
    expect(worst).toBeLessThanOrEqual(1); // f32 tanh on the GPU vs f64 here, truncation
    // large variance saturates tanh: many pixels at 0 or 255
    let sat = 0;
    for (const v of a.source.data) if (v === 0 || v === 255) sat++;
    expect(sat / a.source.data.length).toBeGreaterThan(0.2);
  });
});

describe('LM sampler (T = 2)', () => {
  function peakyLm(): TransformerModel {
    const m = new TransformerModel(40, { ninp: 8, nhead: 2, nhid: 8, nlayers: 1, dropout: 0, maxLen: 64 });
    // a peaked next-word distribution: decoder bias -0.35 k dominates the small random logits
    m.loadStateDict(new Map([['decoder.bias', { shape: [40], data: Float32Array.from({ length: 40 }, (_, k) => -0.35 * k) }]]), false);
    return m;
  }

  it('a higher temperature gives flatter samples (empirical entropy T=2 > T=1 > T=0.5)', async () => {
    const m = peakyLm();
    const h: number[] = [];
    for (const T of [0.5, 1, 2]) h.push(empiricalEntropy(await sampleWords(m, { numWords: 120, temperature: T, seed: 5, maxContext: 16, chunk: 60 })));
    // exact entropies of softmax(-0.35 k / T) over 40 words: 1.33, 2.01, 2.67 nats; 120 samples
    expect(h[0]!).toBeLessThan(h[1]!);
    expect(h[1]!).toBeLessThan(h[2]!);
    expect(h[2]! - h[0]!).toBeGreaterThan(0.6);
    m.dispose();
  });

  it('texts of 20 words, tokenised and left-padded for the classifier', async () => {
    const m = peakyLm();
    const words = Array.from({ length: 40 }, (_, k) => `w${k}`);
    const vocab = Vocab.build([words.slice(0, 30)]);
    const s = new LmSampler({ model: m, lmWords: words, vocab, seqLength: 25, temperature: 2 });
    const set = await s.sample(3, 9);
    expect(set.texts!.length).toBe(3);
    for (const t of set.texts!) expect(t.split(' ').length).toBe(20);
    if (set.source.kind !== 'array') throw new Error('expected an array source');
    const ids = set.source.data as Int32Array;
    expect(set.source.sampleShape).toEqual([25]);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 5; j++) expect(ids[i * 25 + j]).toBe(vocab.padIndex);
      const toks = set.texts![i]!.split(' ');
      for (let j = 0; j < 20; j++) expect(ids[i * 25 + 5 + j]).toBe(vocab.lookup(toks[j]!));
    }
    expect(set.info).toMatchObject({ temperature: 2, words: 60 });
    m.dispose();
  });
});

describe('saved outlier sets (.npz)', () => {
  it('images: uint8 NCHW "x" (+ "y" classes) read back lazily, byte for byte; seeded subsets', async () => {
    const set = await new ImageNoiseSampler({ kind: 'uniform' }).sample(19, 21);
    set.classes = Int32Array.from({ length: 19 }, (_, i) => i % 4);
    const path = join(dir, 'noise.npz');
    await saveOutlierSet(path, set);
    const npz = await NpzFile.open(path);
    expect(npz.keys.sort()).toEqual(['x', 'y']);
    const h = await readNpyHeader(path, npz.members.find((m) => m.name === 'x.npy')!.dataStart);
    expect(h.descr).toBe('|u1');
    expect(h.shape).toEqual([19, 3, 32, 32]);
    expect(Array.from((await npz.array('y')).data as Int32Array)).toEqual(Array.from(set.classes));
    expect(JSON.parse(readFileSync(`${path}.json`, 'utf8'))).toMatchObject({ name: 'uniform-noise', n: 19, seed: 21 });
    const back = await new FileSampler(path).sample(0, 0);
    expect(back.source.kind).toBe('npy'); // stored member: read by offset
    // through the loader (what training sees): identical pixels
    const loader = new DataLoader({ source: back.source, batchSize: 19, shuffle: false, workers: 0, transform: { scale: 1 } });
    for await (const b of loader.epoch(0)) {
      if (set.source.kind !== 'array') throw new Error('expected an array source');
      expect(Array.from(b.x)).toEqual(Array.from(set.source.data));
    }
    await loader.close();
    const sub1 = await new FileSampler(path).sample(5, 3);
    const sub2 = await new FileSampler(path).sample(5, 3);
    expect(sub1.source.length).toBe(5);
    if (sub1.source.kind !== 'array' || sub2.source.kind !== 'array') throw new Error('subsets are in memory');
    expect(Array.from(sub1.source.data)).toEqual(Array.from(sub2.source.data));
  });

  it('token sets: int32 [N, L] round trip', async () => {
    const set = await new TokenNoiseSampler({ vocabSize: 30, seqLength: 22 }).sample(6, 2);
    const path = join(dir, 'tokens.npz');
    await saveOutlierSet(path, set);
    const back = await new FileSampler(path).sample(0, 0);
    if (back.source.kind !== 'array' || set.source.kind !== 'array') throw new Error('token sets are in memory');
    expect(back.source.dtype).toBe('int32');
    expect(back.source.sampleShape).toEqual([22]);
    expect(Array.from(back.source.data)).toEqual(Array.from(set.source.data));
  });
});
