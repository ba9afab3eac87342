/**
 * GOE's image outliers: a class-conditional generator (BigGAN) sampled at a raised latent scale,
 * "sigma^2 = 50" on CIFAR (2 on ImageNet), classes drawn uniformly.
 *
 * What the number means is a setting (`scale`): the reference code (BigGAN-PyTorch's sample.py /
 * utils.prepare_z_y) passes its `z_var` to normal_ as the standard deviation, so 'std' draws
 * z ~ N(0, 50^2 I) and is the default of the experiments; 'variance' reads the paper's notation
 * literally, z ~ N(0, 50 I). The generator's mode while sampling is a setting too (`mode`):
 * sample.py keeps G in training mode (BatchNorm on the sampling batch's statistics) unless
 * --G_eval_mode, so 'train' is the experiments' default, with chunks of the G batch size.
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
  train?(): unknown;
}

/** How the latent number is read: as the variance of z or as its standard deviation. */
export type LatentScale = 'variance' | 'std';

/** The standard deviation of z for a latent number read as `scale`. */
export function latentStd(sigma2: number, scale: LatentScale): number {
  if (!(sigma2 >= 0) || !Number.isFinite(sigma2)) throw new RangeError(`the latent scale must be finite and >= 0, got ${sigma2}`);
  return scale === 'std' ? sigma2 : Math.sqrt(sigma2);
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
  /** The latent number (paper: sigma^2 = 50 on CIFAR), read as `scale` says. */
  sigma2: number;
  /** 'variance' (default here: z std sqrt(sigma2)) or 'std' (z std sigma2, BigGAN-PyTorch's z_var). */
  scale?: LatentScale;
  /** The generator's mode while sampling: 'eval' (default here) or 'train' (batch statistics, sample.py's default). */
  mode?: 'train' | 'eval';
  /** Images generated per GPU batch (default 100); in 'train' mode, the batch the statistics are taken over. */
  chunk?: number;
  onProgress?: (done: number, total: number) => void;
}

export class LatentSampler implements OutlierSampler {
  readonly name: string;
  readonly opts: LatentSamplerOptions;

  constructor(opts: LatentSamplerOptions) {
    this.opts = opts;
    const scale = opts.scale ?? 'variance';
    this.name = `biggan(${scale === 'std' ? 'z std' : 'sigma2'}=${opts.sigma2}${opts.mode === 'train' ? ', train-mode BN' : ''})`;
  }

  async sample(n: number, seed: number): Promise<OutlierSet> {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`${this.name}: n must be a positive integer, got ${n}`);
    const g = this.opts.generator;
    const mode = this.opts.mode ?? 'eval';
    const scale = this.opts.scale ?? 'variance';
    const std = latentStd(this.opts.sigma2, scale);
    if (mode === 'train') {
      if (g.train === undefined) throw new RangeError(`${this.name}: sampling in train mode needs a generator with train()`);
      g.train();
    } else g.eval?.();
    const chunk = this.opts.chunk ?? 100;
    let data: Uint8Array | null = null;
    let shape: number[] = [];
    const classes = sampleClasses(n, g.numClasses, seed);
    for (let done = 0; done < n; ) {
      const m = Math.min(chunk, n - done);
      // each chunk reads its own counter range of the seeded stream (rows of dimZ values, 4 per
      // block): for dimZ a multiple of 4 the set does not depend on `chunk`
      const z = randn([m, g.dimZ], { seed, offset: Math.ceil((done * g.dimZ) / 4), std });
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
    return { name: this.name, source, classes, info: { sampler: 'biggan-latent', sigma2: this.opts.sigma2, latentScale: scale, zStd: std, mode, chunk, n, seed, dimZ: g.dimZ, numClasses: g.numClasses } };
  }
}
