/**
 * Per-channel mean and standard deviation of an image source in [0, 1] units (the values a
 * Normalize transform takes), over the whole set or a seeded subset of at most `maxSamples`
 * images: the `images` experiment normalises the user's data with its training set's statistics,
 * as CIFAR and Fashion-MNIST are normalised with theirs.
 */
import { DataLoader } from './loader.ts';
import { Rng, permutation } from './rng.ts';
import { subset } from './source.ts';
import type { Source } from './source.ts';

export async function channelStats(source: Source, opts: { maxSamples?: number; seed?: number; workers?: number } = {}): Promise<{ mean: number[]; std: number[] }> {
  const max = opts.maxSamples ?? 10000;
  let src = source;
  if (source.length > max && source.kind !== 'npy') {
    const idx = Array.from(permutation(source.length, new Rng(opts.seed ?? 0, 0x57a7)).subarray(0, max)).sort((a, b) => a - b);
    src = subset(source, idx);
  }
  const [c, h, w] = source.sampleShape as [number, number, number];
  const plane = h * w;
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  let n = 0;
  const loader = new DataLoader({ source: src, batchSize: 256, shuffle: false, workers: opts.workers ?? 0 });
  try {
    for await (const batch of loader.epoch(0)) {
      if (source.kind === 'npy' && n >= max) break;
      const x = batch.x as Float32Array;
      for (let i = 0; i < batch.nIn; i++) {
        for (let k = 0; k < c; k++) {
          const off = (i * c + k) * plane;
          for (let p = 0; p < plane; p++) {
            const v = x[off + p]!;
            sum[k]! += v;
            sq[k]! += v * v;
          }
        }
      }
      n += batch.nIn;
    }
  } finally {
    await loader.close();
  }
  const count = n * plane;
  const mean = Array.from(sum, (s) => s / count);
  const std = Array.from(sq, (s, k) => Math.sqrt(Math.max(s / count - mean[k]! ** 2, 0)));
  if (std.some((s) => !(s > 0))) throw new RangeError(`${source.name}: a channel is constant (std 0); its images cannot be normalised`);
  return { mean, std };
}
