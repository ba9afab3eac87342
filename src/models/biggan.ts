/**
 * The class-conditional BigGAN at 32x32 that GOE samples its image outliers from: BigGAN-PyTorch
 * (ajbrock) BigGAN.py's Generator and Discriminator for resolution 32, with its parameter names
 * (a state_dict of BigGAN-PyTorch loads one-to-one), as configured by launch_cifar_ema.sh.
 *
 * Assumptions (launch_cifar_ema.sh + utils.py defaults, checked against the script's text):
 *   --G_ch 64 --D_ch 64 (defaults), --dim_z 128 (default), --G_attn 0 --D_attn 0 (no attention
 *   layers: not implemented here), --G_init N02 --D_init N02 (every Conv/Linear/Embedding weight
 *   ~ N(0, 0.02); biases keep PyTorch's default init), G_shared off and hier off (the script does
 *   not pass --G_shared/--hier; both are options here, shared_dim 0 meaning dim_z), BN_eps 1e-5,
 *   SN_eps 1e-8, num_G_SVs = num_D_SVs = 1 with one power iteration, D_wide on, bottom_width 4,
 *   ReLU activations, hinge loss.
 *
 * Generator (G_arch(ch)[32]): linear = SNLinear(dim_z / slots, 4ch * 4 * 4) -> view [N, 4ch, 4, 4]
 * -> blocks.{0,1,2}.0 = GBlock(4ch -> 4ch, nearest x2) at 8, 16, 32 -> output_layer = bn, ReLU,
 * SNConv2d(4ch, 3) -> tanh. Class conditioning: ccbn in every GBlock, gain/bias tables per layer
 * (nn.Embedding, not spectrally normalised) or, with G_shared, a shared nn.Embedding(classes,
 * shared_dim) whose vector (concatenated with a z chunk when hier) feeds SNLinear gain/bias.
 * Unlike BigGAN-PyTorch's G(z, G.shared(y)), `forward(z, classes)` takes class ids and applies
 * `shared` itself.
 *
 * Discriminator (D_arch(ch)[32]): blocks.{0..3}.0 = DBlock 3 -> 4ch (down), 4ch -> 4ch (down),
 * 4ch -> 4ch, 4ch -> 4ch (preactivation from block 1), then h = sum_{H,W} relu(h),
 * out = linear(h) + sum(embed(y) * h, 1) (projection discriminator, SNLinear and SNEmbedding).
 *
 * Not implemented (unused by the CIFAR script): self-attention blocks (G_attn/D_attn), 'ortho' init
 * (N02 and glorot are), orthogonal regularisation (G_ortho 0), num_svs/num_itrs > 1, cross-replica
 * or custom BN, fp16, the G_arch/D_arch tables of resolutions 64-512. Beyond BigGAN-PyTorch: the
 * number of up-sampling blocks and the image channels are options (`upsamples`, `outChannels`,
 * D's `inChannels`), so 28x28 grey images (Fashion-MNIST) get G with bottom width 7 and two
 * up-sampling blocks, and the same D (28 -> 14 -> 7 -> 7 -> 7).
 *
 * Latents: GOE draws z ~ N(0, sigma^2 I) with the *variance* sigma^2 = 50 on CIFAR (the paper's
 * meaning; BigGAN-PyTorch's `z_var` argument is passed to normal_ as the standard deviation, so
 * its `--z_var 50` would be a std of 50). `sampleLatent` takes the variance `sigma2` and draws with
 * std sqrt(sigma2); classes are drawn uniformly and independently (y_.sample_()).
 */
import { fromData as tensor, type Tensor } from '../engine/api.ts';
import { OpError } from '../engine/api.ts';
import { noGrad } from '../engine/api.ts';
import { add, mul } from '../engine/api.ts';
import { relu, tanh } from '../engine/api.ts';
import { sum, mean } from '../engine/api.ts';
import { reshape } from '../engine/api.ts';
import { split, concat } from '../engine/api.ts';
import { randn } from '../engine/api.ts';
import { Module } from '../engine/api.ts';
import { ModuleList, Sequential, ReLU, Embedding } from '../engine/api.ts';
import { normal_, xavierUniform_ } from '../engine/api.ts';
import { SNConv2d, SNLinear, SNEmbedding, CCBN, BigGANBN, GBlock, DBlock, BIGGAN_SN_EPS } from './biggan-layers.ts';

export interface GeneratorOptions {
  /** G_ch, the channel multiplier (64). */
  ch?: number;
  /** dim_z (128); with hier it is rounded down to a multiple of the 4 slots, as BigGAN.py does. */
  dimZ?: number;
  nClasses?: number;
  bottomWidth?: number;
  /** Up-sampling GBlocks (3: G_arch[32] from bottom width 4; 2 from bottom width 7 gives 28x28). */
  upsamples?: number;
  /** Image channels of the output layer (3: RGB; 1 for grey images). */
  outChannels?: number;
  /** G_shared: one class embedding feeding SNLinear gains/biases (default false, as the script). */
  shared?: boolean;
  /** shared_dim (0 = dim_z). */
  sharedDim?: number;
  /** hier: z split into chunks, one for the linear layer and one per block (default false). */
  hier?: boolean;
  bnEps?: number;
  snEps?: number;
  /** Weight init: 'N02' (N(0, 0.02), the CIFAR script) or 'glorot' (xavier_uniform). */
  init?: 'N02' | 'glorot' | 'none';
}

export interface DiscriminatorOptions {
  ch?: number;
  /** Image channels (3: RGB; 1 for grey images). */
  inChannels?: number;
  nClasses?: number;
  wide?: boolean;
  snEps?: number;
  init?: 'N02' | 'glorot' | 'none';
}

/** BigGAN.init_weights: every Conv2d/Linear/Embedding weight of the module tree. */
function initWeights(m: Module, style: 'N02' | 'glorot' | 'none'): void {
  if (style === 'none') return;
  for (const [name, p] of m.namedParameters()) {
    if (!/(^|\.)weight$/.test(name)) continue;
    if (style === 'N02') normal_(p, 0, 0.02);
    else xavierUniform_(p);
  }
}

export class Generator extends Module {
  readonly ch: number;
  readonly dimZ: number;
  readonly nClasses: number;
  readonly bottomWidth: number;
  readonly upsamples: number;
  readonly outChannels: number;
  /** Output height and width: bottomWidth * 2^upsamples. */
  readonly resolution: number;
  readonly isShared: boolean;
  readonly sharedDim: number;
  readonly hier: boolean;
  readonly numSlots: number;
  readonly zChunkSize: number;
  readonly shared: Embedding | null;
  readonly linear: SNLinear;
  readonly blocks: ModuleList<ModuleList<GBlock>>;
  readonly output_layer: Sequential;
  readonly options: Required<GeneratorOptions>;

  constructor(opts: GeneratorOptions = {}) {
    super();
    const o: Required<GeneratorOptions> = {
      ch: 64, dimZ: 128, nClasses: 10, bottomWidth: 4, upsamples: 3, outChannels: 3, shared: false, sharedDim: 0, hier: false,
      bnEps: 1e-5, snEps: BIGGAN_SN_EPS, init: 'N02', ...opts,
    };
    for (const [k, v] of [['ch', o.ch], ['dimZ', o.dimZ], ['nClasses', o.nClasses], ['bottomWidth', o.bottomWidth], ['upsamples', o.upsamples], ['outChannels', o.outChannels]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new OpError('Generator', `${k} must be a positive integer, got ${v}`);
    }
    this.ch = o.ch;
    this.nClasses = o.nClasses;
    this.bottomWidth = o.bottomWidth;
    this.upsamples = o.upsamples;
    this.outChannels = o.outChannels;
    this.resolution = o.bottomWidth * 2 ** o.upsamples;
    this.isShared = o.shared;
    this.sharedDim = o.sharedDim > 0 ? o.sharedDim : o.dimZ;
    this.hier = o.hier;
    const inCh = new Array<number>(o.upsamples).fill(4 * o.ch);
    const outCh = new Array<number>(o.upsamples).fill(4 * o.ch);
    if (o.hier) {
      this.numSlots = inCh.length + 1;
      this.zChunkSize = Math.floor(o.dimZ / this.numSlots);
      if (this.zChunkSize < 1) throw new OpError('Generator', `hier needs dimZ >= ${this.numSlots}, got ${o.dimZ}`);
      this.dimZ = this.zChunkSize * this.numSlots;
    } else {
      this.numSlots = 1;
      this.zChunkSize = 0;
      this.dimZ = o.dimZ;
    }
    this.options = { ...o, dimZ: this.dimZ };
    const bnInput = o.shared ? this.sharedDim + this.zChunkSize : o.nClasses;
    const bn = (c: number): CCBN => new CCBN(c, bnInput, o.shared, { eps: o.bnEps, snEps: o.snEps });
    this.shared = this.registerModule('shared', o.shared ? new Embedding(o.nClasses, this.sharedDim) : null);
    this.linear = this.registerModule('linear', new SNLinear(this.dimZ / this.numSlots, inCh[0] * o.bottomWidth ** 2, true, o.snEps));
    const blocks = new ModuleList<ModuleList<GBlock>>();
    for (let i = 0; i < outCh.length; i++) blocks.append(new ModuleList([new GBlock(inCh[i], outCh[i], true, bn, o.snEps)]));
    this.blocks = this.registerModule('blocks', blocks);
    this.output_layer = this.registerModule('output_layer', new Sequential(new BigGANBN(outCh[outCh.length - 1], { eps: o.bnEps }), new ReLU(), new SNConv2d(outCh[outCh.length - 1], o.outChannels, 3, { eps: o.snEps })));
    initWeights(this, o.init);
  }

  /** Images in [-1, 1], [N, outChannels, resolution, resolution] ([N, 3, 32, 32] by default). z: f32 [N, dimZ]; classes: i32 [N]. */
  forward(z: Tensor, classes: Tensor): Tensor {
    const n = z.shape[0];
    if (z.rank !== 2 || z.shape[1] !== this.dimZ || z.dtype !== 'f32') throw new OpError('Generator', `z must be f32 [N, ${this.dimZ}], got ${z.dtype} [${z.shape.join(', ')}]`);
    if (classes.rank !== 1 || classes.shape[0] !== n || classes.dtype !== 'i32') throw new OpError('Generator', `classes must be i32 [${n}], got ${classes.dtype} [${classes.shape.join(', ')}]`);
    const tmp: Tensor[] = [];
    const t = (v: Tensor): Tensor => (tmp.push(v), v);
    const y = this.shared ? t(this.shared.forward(classes)) : classes;
    let z0 = z;
    let ys: Tensor[];
    if (this.hier) {
      const zs = split(z, this.zChunkSize, 1);
      tmp.push(...zs);
      z0 = zs[0];
      ys = zs.slice(1).map((c) => t(concat([y, c], 1)));
    } else {
      ys = this.blocks.length > 0 ? new Array<Tensor>(this.blocks.length).fill(y) : [];
    }
    const lin = t(this.linear.forward(z0));
    let h = t(reshape(lin, [n, lin.shape[1] / this.bottomWidth ** 2, this.bottomWidth, this.bottomWidth]));
    let i = 0;
    for (const blocklist of this.blocks) {
      for (const block of blocklist) h = t(block.forward(h, ys[i]));
      i++;
    }
    const o = t(this.output_layer.forward(h));
    const out = tanh(o);
    for (const v of tmp) v.dispose();
    return out;
  }
}

export class Discriminator extends Module {
  readonly ch: number;
  readonly nClasses: number;
  readonly inChannels: number;
  readonly blocks: ModuleList<ModuleList<DBlock>>;
  readonly linear: SNLinear;
  readonly embed: SNEmbedding;

  constructor(opts: DiscriminatorOptions = {}) {
    super();
    const o = { ch: 64, nClasses: 10, inChannels: 3, wide: true, snEps: BIGGAN_SN_EPS, init: 'N02' as const, ...opts };
    if (!Number.isInteger(o.inChannels) || o.inChannels < 1) throw new OpError('Discriminator', `inChannels must be a positive integer, got ${o.inChannels}`);
    this.ch = o.ch;
    this.nClasses = o.nClasses;
    this.inChannels = o.inChannels;
    const inCh = [o.inChannels, 4 * o.ch, 4 * o.ch, 4 * o.ch];
    const outCh = [4, 4, 4, 4].map((m) => m * o.ch);
    const down = [true, true, false, false];
    const blocks = new ModuleList<ModuleList<DBlock>>();
    for (let i = 0; i < outCh.length; i++) {
      blocks.append(new ModuleList([new DBlock(inCh[i], outCh[i], { preactivation: i > 0, downsample: down[i], wide: o.wide, snEps: o.snEps })]));
    }
    this.blocks = this.registerModule('blocks', blocks);
    this.linear = this.registerModule('linear', new SNLinear(outCh[3], 1, true, o.snEps));
    this.embed = this.registerModule('embed', new SNEmbedding(o.nClasses, outCh[3], o.snEps));
    initWeights(this, o.init);
  }

  /** Logits [N, 1] for images x [N, inChannels, H, W] and class ids y i32 [N]. */
  forward(x: Tensor, y: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.inChannels) throw new OpError('Discriminator', `x must be [N, ${this.inChannels}, H, W], got [${x.shape.join(', ')}]`);
    if (y.rank !== 1 || y.shape[0] !== x.shape[0] || y.dtype !== 'i32') throw new OpError('Discriminator', `y must be i32 [${x.shape[0]}], got ${y.dtype} [${y.shape.join(', ')}]`);
    const tmp: Tensor[] = [];
    const t = (v: Tensor): Tensor => (tmp.push(v), v);
    let h = x;
    for (const blocklist of this.blocks) for (const block of blocklist) h = t(block.forward(h));
    const pooled = t(sum(t(relu(h)), [2, 3]));
    const lin = t(this.linear.forward(pooled));
    const e = t(this.embed.forward(y));
    const proj = t(sum(t(mul(e, pooled)), 1, true));
    const out = add(lin, proj);
    for (const v of tmp) v.dispose();
    return out;
  }
}

/** losses.loss_hinge_dis: [mean relu(1 - D_real), mean relu(1 + D_fake)]. */
export function hingeLossD(dFake: Tensor, dReal: Tensor): { real: Tensor; fake: Tensor } {
  const a = mul(dReal, -1);
  const b = add(a, 1);
  const c = relu(b);
  const real = mean(c);
  const d = add(dFake, 1);
  const e = relu(d);
  const fake = mean(e);
  for (const v of [a, b, c, d, e]) v.dispose();
  return { real, fake };
}

/** losses.loss_hinge_gen: -mean D(G(z)). */
export function hingeLossG(dFake: Tensor): Tensor {
  const m = mean(dFake);
  const out = mul(m, -1);
  m.dispose();
  return out;
}

// ------------------------------------------------------------------------------ sampling

/** A small seeded generator for class ids (mulberry32), so a seed reproduces the labels. */
export class ClassSampler {
  state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** n ids uniform in [0, k). */
  classes(n: number, k: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.min(k - 1, Math.floor(this.next() * k));
    return out;
  }
}

/** Unseeded calls draw classes from here (a fixed start, so an unseeded program repeats, as the
 * engine's global generator does for z). */
const defaultClassSampler = new ClassSampler(0x9e3779b9);

export interface LatentOptions {
  /** Variance of z (GOE's sigma^2; 50 for CIFAR). Default 1. */
  sigma2?: number;
  /** Seed of z (GPU Philox key) and of the classes; without it, the engine's global generator
   * (manualSeed) for z and a module-level class sampler with a fixed start. */
  seed?: number;
  dimZ?: number;
  nClasses?: number;
}

/**
 * z ~ N(0, sigma2 I) [n, dimZ] (std sqrt(sigma2): sigma2 is the variance) and classes uniform in
 * [0, nClasses) (i32 [n]). The caller owns both tensors.
 */
export function sampleLatent(n: number, opts: LatentOptions = {}): { z: Tensor; y: Tensor } {
  const sigma2 = opts.sigma2 ?? 1;
  const dimZ = opts.dimZ ?? 128;
  const k = opts.nClasses ?? 10;
  if (!Number.isInteger(n) || n < 1) throw new OpError('sampleLatent', `n must be a positive integer, got ${n}`);
  if (!(sigma2 >= 0) || !Number.isFinite(sigma2)) throw new OpError('sampleLatent', `sigma2 (a variance) must be finite and >= 0, got ${sigma2}`);
  const z = randn([n, dimZ], opts.seed === undefined ? { std: Math.sqrt(sigma2) } : { std: Math.sqrt(sigma2), seed: opts.seed });
  const sampler = opts.seed === undefined ? defaultClassSampler : new ClassSampler(opts.seed);
  const y = tensor(sampler.classes(n, k), [n]);
  return { z, y };
}

/** G(z, y) without gradient, in G's current mode (BigGAN-PyTorch samples in train or eval mode per
 * --G_eval_mode); images in [-1, 1], NCHW. */
export function generate(G: Generator, z: Tensor, y: Tensor): Tensor {
  return noGrad(() => G.forward(z, y));
}

/** np.uint8(255 * (x + 1) / 2.) in float32 arithmetic (sample.py's conversion for .npz files). */
export function toUint8(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = Math.fround(Math.fround(Math.fround(values[i] + 1) * 255) / 2);
    out[i] = v >= 255 ? 255 : v > 0 ? Math.trunc(v) : 0;
  }
  return out;
}

/** Images [N, C, H, W] on the GPU -> uint8 NCHW on the host. */
export async function imagesToUint8(x: Tensor): Promise<Uint8Array> {
  return toUint8((await x.data()) as Float32Array);
}

export interface SampleOutliersOptions extends LatentOptions {
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * n images from G as uint8 NCHW (GOE's outlier set, like samples-50.0.npz's "x") and their
 * classes. Batches are drawn with seeds derived from `seed` (batch i uses seed + i), so a seed
 * reproduces the set.
 */
export async function sampleOutliers(G: Generator, n: number, opts: SampleOutliersOptions = {}): Promise<{ x: Uint8Array; y: Int32Array; shape: [number, number, number, number] }> {
  const bs = opts.batchSize ?? 500;
  const res = G.resolution;
  const c = G.outChannels;
  const x = new Uint8Array(n * c * res * res);
  const y = new Int32Array(n);
  const seed0 = opts.seed ?? Math.floor(defaultClassSampler.next() * 2 ** 31);
  for (let done = 0, b = 0; done < n; b++) {
    const m = Math.min(bs, n - done);
    const lat = sampleLatent(m, { ...opts, seed: seed0 + b, dimZ: G.dimZ, nClasses: G.nClasses });
    const img = generate(G, lat.z, lat.y);
    x.set(await imagesToUint8(img), done * c * res * res);
    y.set((await lat.y.data()) as Int32Array, done);
    for (const t of [lat.z, lat.y, img]) t.dispose();
    done += m;
    opts.onProgress?.(done, n);
  }
  return { x, y, shape: [n, c, res, res] };
}
