/**
 * GOE's image outliers: a class-conditional generator (BigGAN) sampled at high latent variance,
 * z ~ N(0, sigma^2 I) with sigma^2 = 50 on CIFAR (2 on ImageNet), classes drawn uniformly. Note
 * that sigma^2 is the variance: the standard deviation is sqrt(sigma^2) (BigGAN-PyTorch's `z_var`
 * argument is passed as a standard deviation; the paper's value is a variance).
 *
 * The generator is anything with `dimZ`, `numClasses` and `generate(z, y)` returning images in
 * [-1, 1] (tanh output), which src/models/biggan.ts provides. Images are converted to uint8 as
 * BigGAN-PyTorch's sample.py does: uint8(255 * (x + 1) / 2) (truncation), read back once per chunk.
 */
import { noGrad, randn, scope, tensor, type Tensor } from '../../engine/index.ts';
import { Rng, type ArraySource } from '../../data/index.ts';
import type { OutlierSampler, OutlierSet } from './types.ts';

export interface ConditionalImageGenerator {
  readonly dimZ: number;
  readonly numClasses: number;
  /** Images [N, C, H, W] in [-1, 1] for latents z [N, dimZ] (f32) and classes y [N] (i32). */
  generate(z: Tensor, y: Tensor): Tensor;
  eval?(): unknown;
}

/** Latents z ~ N(0, sigma2 I) [n, dimZ] on the GPU (seeded Philox) and uniform classes (seeded, CPU). */
export function sampleLatent(n: number, dimZ: number, sigma2: number, numClasses: number, seed: number, offset = 0): { z: Tensor; y: Int32Array } {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`sampleLatent: n must be a positive integer, got ${n}`);
  if (!(sigma2 >= 0) || !Number.isFinite(sigma2)) throw new RangeError(`sampleLatent: sigma2 must be a finite variance >= 0, got ${sigma2}`);
  const z = randn([n, dimZ], { seed, offset, std: Math.sqrt(sigma2) });
  return { z, y: sampleClasses(n, numClasses, seed, offset) };
}

/** n classes uniform in [0, numClasses), seeded. */
export function sampleClasses(n: number, numClasses: number, seed: number, stream = 0): Int32Array {
  const rng = new Rng(seed, stream, 0xc1a55);
  return Int32Array.from({ length: n }, () => rng.int(numClasses));
}

export interface LatentSamplerOptions {
  generator: ConditionalImageGenerator;
  /** Latent variance sigma^2 (paper: 50 on CIFAR). */
  sigma2: number;
  /** Images generated per GPU batch (default 100). */
  chunk?: number;
  onProgress?: (done: number, total: number) => void;
}

export class LatentSampler implements OutlierSampler {
  readonly name: string;
  readonly opts: LatentSamplerOptions;

  constructor(opts: LatentSamplerOptions) {
    this.opts = opts;
    this.name = `biggan(sigma2=${opts.sigma2})`;
  }

  async sample(n: number, seed: number): Promise<OutlierSet> {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`${this.name}: n must be a positive integer, got ${n}`);
    const g = this.opts.generator;
    g.eval?.();
    const chunk = this.opts.chunk ?? 100;
    let data: Uint8Array | null = null;
    let shape: number[] = [];
    const classes = sampleClasses(n, g.numClasses, seed);
    for (let done = 0; done < n; ) {
      const m = Math.min(chunk, n - done);
      // each chunk reads its own counter range of the seeded stream (rows of dimZ values, 4 per
      // block): for dimZ a multiple of 4 the set does not depend on `chunk`
      const z = randn([m, g.dimZ], { seed, offset: Math.ceil((done * g.dimZ) / 4), std: Math.sqrt(this.opts.sigma2) });
      const y = classes.subarray(done, done + m);
      const img = noGrad(() => scope(() => g.generate(z, tensor(y, [m], 'i32'))));
      z.dispose();
      const px = (await img.data()) as Float32Array;
      if (data === null) {
        shape = img.shape.slice(1);
        data = new Uint8Array(new SharedArrayBuffer(n * px.length / m));
      }
      img.dispose();
      const size = px.length / m;
      for (let i = 0; i < px.length; i++) {
        // np.uint8(255 * (x + 1) / 2.) on float32 values (sample.py), truncating
        const v = Math.fround(Math.fround(Math.fround(px[i]! + 1) * 255) / 2);
        data[done * size + i] = v >= 255 ? 255 : v > 0 ? Math.trunc(v) : 0;
      }
      done += m;
      this.opts.onProgress?.(done, n);
    }
    const source: ArraySource = { kind: 'array', name: this.name, length: n, sampleShape: shape, layout: 'CHW', dtype: 'uint8', data: data!, labels: null };
    return { name: this.name, source, classes, info: { sampler: 'biggan-latent', sigma2: this.opts.sigma2, n, seed, dimZ: g.dimZ, numClasses: g.numClasses } };
  }
}
