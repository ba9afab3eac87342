/**
 * The paper's noise baselines. Images ("outliers sampled uniformly from the input space"): every
 * pixel uniform in 0..255 (pytorch-ood's UniformNoise); Gaussian noise as pytorch-ood's
 * GaussianNoise (N(loc 128, scale 128) per pixel, clipped to 0..255, uint8) for OOD testing.
 * Text: random sequences of 20 tokens drawn uniformly from the vocabulary (specials excluded),
 * left-padded to the classifier's sequence length. Random numbers come from the data layer's
 * seeded xoshiro generator on the CPU, so a set depends only on (seed, n, shape).
 */
import { Rng, type ArraySource, type RandomTokensSource } from '../../data/index.ts';
import type { OutlierSampler, OutlierSet } from './types.ts';

export type ImageNoiseKind = 'uniform' | 'gaussian';

export interface ImageNoiseOptions {
  kind: ImageNoiseKind;
  /** Sample shape [C, H, W] (default [3, 32, 32]). */
  shape?: readonly [number, number, number];
  /** Gaussian mean and standard deviation in pixel units (default 128, 128). */
  loc?: number;
  scale?: number;
  /**
   * Uniform pixel values: 'full' 0..255 (default, pytorch-ood's UniformNoise) or 'randint255'
   * 0..254, the GOE notebooks' torch.randint(0, 255) (high is exclusive).
   */
  values?: 'full' | 'randint255';
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
  readonly values: 'full' | 'randint255';

  constructor(opts: ImageNoiseOptions) {
    if (opts.kind !== 'uniform' && opts.kind !== 'gaussian') throw new RangeError(`ImageNoiseSampler: kind must be 'uniform' or 'gaussian', got ${String(opts.kind)}`);
    this.kind = opts.kind;
    this.shape = opts.shape ?? [3, 32, 32];
    this.loc = opts.loc ?? 128;
    this.scale = opts.scale ?? 128;
    this.values = opts.values ?? 'full';
    this.name = `${this.kind}-noise`;
  }

  async sample(n: number, seed: number): Promise<OutlierSet> {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`${this.name}: n must be a positive integer, got ${n}`);
    const size = this.shape[0] * this.shape[1] * this.shape[2];
    const data = sharedU8(n * size);
    const rng = new Rng(seed, 0x401e);
    if (this.kind === 'uniform') {
      const levels = this.values === 'randint255' ? 255 : 256;
      for (let i = 0; i < data.length; i++) data[i] = rng.int(levels);
    } else {
      const z = new Float64Array(size);
      for (let s = 0; s < n; s++) {
        gaussianFill(z, rng);
        for (let i = 0; i < size; i++) data[s * size + i] = Math.min(255, Math.max(0, Math.trunc(this.loc + this.scale * z[i]!)));
      }
    }
    const source: ArraySource = { kind: 'array', name: this.name, length: n, sampleShape: [...this.shape], layout: 'CHW', dtype: 'uint8', data, labels: null };
    return { name: this.name, source, info: { sampler: this.name, n, seed, shape: [...this.shape], ...(this.kind === 'gaussian' ? { loc: this.loc, scale: this.scale } : { values: this.values === 'full' ? '0..255' : '0..254' }) } };
  }
}

export interface TokenNoiseOptions {
  /** Vocabulary size (ids 0..vocabSize-1). */
  vocabSize: number;
  /** Ids below this are specials (<unk>, <pad>) and never drawn (default 2). */
  firstToken?: number;
  /**
   * Draw ids from [ids[0], ids[1]) instead of [firstToken, vocabSize): the GOE notebook draws
   * torch.randint(0, 10000) whatever the vocabulary (so <unk> and <pad> among them).
   */
  ids?: [number, number];
  /** Tokens per sequence (paper: 20). */
  tokens?: number;
  /** Padded sequence length of the classifier's input (>= tokens), or 'batch-longest': exactly `tokens` ids, the loader pads each batch. */
  seqLength: number | 'batch-longest';
  /** Padding id (default 1, torchtext's <pad>). */
  padIndex?: number;
  /**
   * Drawn afresh on every access (the notebook's noise Dataset): the set is a RandomTokensSource
   * whose sequences the loader draws per batch position, so every epoch sees new ones.
   */
  fresh?: boolean;
}

/** Random token sequences (the text "Noise" row of the paper), left-padded. */
export class TokenNoiseSampler implements OutlierSampler {
  readonly name = 'random-tokens';
  readonly opts: Required<Omit<TokenNoiseOptions, 'ids'>>;
  /** Ids are drawn from [low, high). */
  readonly low: number;
  readonly high: number;

  constructor(opts: TokenNoiseOptions) {
    this.opts = { firstToken: 2, tokens: 20, padIndex: 1, fresh: false, ...opts };
    const o = this.opts;
    [this.low, this.high] = opts.ids ?? [o.firstToken, o.vocabSize];
    if (!(this.high > this.low && this.low >= 0)) throw new RangeError(`TokenNoiseSampler: no ids in [${this.low}, ${this.high})`);
    if (opts.ids === undefined && o.vocabSize <= o.firstToken) throw new RangeError(`TokenNoiseSampler: vocabulary of ${o.vocabSize} has no tokens after the ${o.firstToken} specials`);
    if (!(o.tokens >= 1)) throw new RangeError(`TokenNoiseSampler: tokens must be >= 1, got ${o.tokens}`);
  }

  async sample(n: number, seed: number): Promise<OutlierSet> {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`${this.name}: n must be a positive integer, got ${n}`);
    const { vocabSize, tokens, padIndex, fresh } = this.opts;
    const L = this.opts.seqLength === 'batch-longest' ? tokens : this.opts.seqLength;
    const k = Math.min(tokens, L);
    const info = { sampler: this.name, n, seed, tokens: k, ids: [this.low, this.high], vocabSize, seqLength: this.opts.seqLength, fresh };
    if (fresh) {
      if (k !== L) throw new RangeError(`${this.name}: fresh sequences are not padded (seqLength 'batch-longest' or ${tokens})`);
      const source: RandomTokensSource = { kind: 'random-tokens', name: this.name, length: n, sampleShape: [k], layout: 'CHW', dtype: 'int32', labels: null, low: this.low, high: this.high, seed };
      return { name: this.name, source, info };
    }
    const data = new Int32Array(new SharedArrayBuffer(n * L * 4)).fill(padIndex);
    const rng = new Rng(seed, 0x70c);
    for (let s = 0; s < n; s++) for (let j = L - k; j < L; j++) data[s * L + j] = this.low + rng.int(this.high - this.low);
    const source: ArraySource = { kind: 'array', name: this.name, length: n, sampleShape: [L], layout: 'CHW', dtype: 'int32', data, labels: null };
    return { name: this.name, source, info };
  }
}
