/**
 * The paper's noise baselines. Images ("outliers sampled uniformly from the input space"): every
 * pixel uniform in 0..255 (pytorch-ood's UniformNoise); Gaussian noise as pytorch-ood's
 * GaussianNoise (N(loc 128, scale 128) per pixel, clipped to 0..255, uint8) for OOD testing.
 * Text: random sequences of 20 tokens drawn uniformly from the vocabulary (specials excluded),
 * left-padded to the classifier's sequence length. Random numbers come from the data layer's
 * seeded xoshiro generator on the CPU, so a set depends only on (seed, n, shape).
 */
import { Rng, type ArraySource } from '../../data/index.ts';
import type { OutlierSampler, OutlierSet } from './types.ts';

export type ImageNoiseKind = 'uniform' | 'gaussian';

export interface ImageNoiseOptions {
  kind: ImageNoiseKind;
  /** Sample shape [C, H, W] (default [3, 32, 32]). */
  shape?: readonly [number, number, number];
  /** Gaussian mean and standard deviation in pixel units (default 128, 128). */
  loc?: number;
  scale?: number;
}

function sharedU8(n: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(n));
}

/** Standard normal numbers by Box-Muller (two per pair of uniforms). */
function gaussianFill(out: Float64Array, rng: Rng): void {
  for (let i = 0; i < out.length; i += 2) {
    const u1 = (rng.nextU32() + 1) / 4294967297; // (0, 1)
    const u2 = rng.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
}

export class ImageNoiseSampler implements OutlierSampler {
  readonly name: string;
  readonly kind: ImageNoiseKind;
  readonly shape: readonly [number, number, number];
  readonly loc: number;
  readonly scale: number;

  constructor(opts: ImageNoiseOptions) {
    if (opts.kind !== 'uniform' && opts.kind !== 'gaussian') throw new RangeError(`ImageNoiseSampler: kind must be 'uniform' or 'gaussian', got ${String(opts.kind)}`);
    this.kind = opts.kind;
    this.shape = opts.shape ?? [3, 32, 32];
    this.loc = opts.loc ?? 128;
    this.scale = opts.scale ?? 128;
    this.name = `${this.kind}-noise`;
  }

  async sample(n: number, seed: number): Promise<OutlierSet> {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`${this.name}: n must be a positive integer, got ${n}`);
    const size = this.shape[0] * this.shape[1] * this.shape[2];
    const data = sharedU8(n * size);
    const rng = new Rng(seed, 0x401e);
    if (this.kind === 'uniform') {
      for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
    } else {
      const z = new Float64Array(size);
      for (let s = 0; s < n; s++) {
        gaussianFill(z, rng);
        for (let i = 0; i < size; i++) data[s * size + i] = Math.min(255, Math.max(0, Math.trunc(this.loc + this.scale * z[i]!)));
      }
    }
    const source: ArraySource = { kind: 'array', name: this.name, length: n, sampleShape: [...this.shape], layout: 'CHW', dtype: 'uint8', data, labels: null };
    return { name: this.name, source, info: { sampler: this.name, n, seed, shape: [...this.shape], ...(this.kind === 'gaussian' ? { loc: this.loc, scale: this.scale } : {}) } };
  }
}

export interface TokenNoiseOptions {
  /** Vocabulary size (ids 0..vocabSize-1). */
  vocabSize: number;
  /** Ids below this are specials (<unk>, <pad>) and never drawn (default 2). */
  firstToken?: number;
  /** Tokens per sequence (paper: 20). */
  tokens?: number;
  /** Padded sequence length of the classifier's input (>= tokens). */
  seqLength: number;
  /** Padding id (default 1, torchtext's <pad>). */
  padIndex?: number;
}

/** Random token sequences (the text "Noise" row of the paper), left-padded. */
export class TokenNoiseSampler implements OutlierSampler {
  readonly name = 'random-tokens';
  readonly opts: Required<TokenNoiseOptions>;

  constructor(opts: TokenNoiseOptions) {
    this.opts = { firstToken: 2, tokens: 20, padIndex: 1, ...opts };
    const o = this.opts;
    if (o.vocabSize <= o.firstToken) throw new RangeError(`TokenNoiseSampler: vocabulary of ${o.vocabSize} has no tokens after the ${o.firstToken} specials`);
    if (!(o.tokens >= 1)) throw new RangeError(`TokenNoiseSampler: tokens must be >= 1, got ${o.tokens}`);
  }

  async sample(n: number, seed: number): Promise<OutlierSet> {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`${this.name}: n must be a positive integer, got ${n}`);
    const { vocabSize, firstToken, tokens, seqLength: L, padIndex } = this.opts;
    const k = Math.min(tokens, L);
    const data = new Int32Array(new SharedArrayBuffer(n * L * 4)).fill(padIndex);
    const rng = new Rng(seed, 0x70c);
    for (let s = 0; s < n; s++) for (let j = L - k; j < L; j++) data[s * L + j] = firstToken + rng.int(vocabSize - firstToken);
    const source: ArraySource = { kind: 'array', name: this.name, length: n, sampleShape: [L], layout: 'CHW', dtype: 'int32', data, labels: null };
    return { name: this.name, source, info: { sampler: this.name, n, seed, tokens: k, vocabSize, seqLength: L } };
  }
}
