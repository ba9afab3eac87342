/**
 * The pretrained BigGAN-deep generator (DeepMind's TF Hub modules, 128/256/512 pixels, 1000 ImageNet
 * classes) in the layout of the widely used PyTorch port, huggingface/pytorch-pretrained-BigGAN
 * (model.py, config.py): the same modules, parameter and buffer names, so the port's checkpoint
 * (biggan-deep-128-pytorch_model.bin, converted to safetensors by `goe convert`) loads one-to-one:
 *
 *   embeddings.weight                             Linear(num_classes, z_dim, bias=False)
 *   generator.gen_z.{weight_orig,weight_u,weight_v,bias}         SN Linear(2 z_dim, 4*4*16*ch)
 *   generator.layers.<i>                          GenBlock, and SelfAttn at attention_layer_position
 *     GenBlock: bn_0, conv_0 (1x1), bn_1, conv_1 (3x3), bn_2, conv_2 (3x3), bn_3, conv_3 (1x1)
 *     bn_k:     running_means / running_vars [n_stats, C], scale / offset (SN Linear, no bias)
 *     SelfAttn: snconv1x1_theta, snconv1x1_phi, snconv1x1_g, snconv1x1_o_conv (no bias), gamma [1]
 *   generator.bn.{weight,bias,running_means,running_vars}       unconditional BigGANBatchNorm
 *   generator.conv_to_rgb.{weight_orig,weight_u,weight_v,bias}  SN Conv2d(ch, ch, 3); first 3 kept
 *
 * Spectral norm is torch.nn.utils.spectral_norm (the engine's nn.spectralNorm): in evaluation
 * sigma = u . (W v) from the stored u and v; in training mode every forward runs one power
 * iteration and stores u and v (what the port does when it is not put in eval mode).
 *
 * Conditioning: cond = cat(z, embeddings(one_hot(y))) feeds gen_z and every conditional batch
 * norm: out = (x - mean_t) / sqrt(var_t + eps) * (1 + scale(cond)) + offset(cond), always with
 * the stored statistics (the port has no batch statistics). The statistics depend on the
 * truncation t in (0, 1]: the port stores n_stats = 51 rows (t = 0, 0.02, ..., 1) and, with
 * (coef, i) = modf(t / 0.02), uses row i when coef == 0, else row_i * coef + row_{i+1} * (1 - coef):
 * the weights as the port has them (the reverse of linear interpolation: t = 0.613 weighs row 30,
 * that of t = 0.6, by 0.65), the quotient in float64 as Python computes it.
 *
 * GenBlock (the "deep" block): x -> bn_0, ReLU, conv_0 (C -> C/4) -> bn_1, ReLU, [nearest x2],
 * conv_1 -> bn_2, ReLU, conv_2 -> bn_3, ReLU, conv_3 (C/4 -> out); the skip keeps the first out
 * channels when in != out (out = in/2 in every config) and is up-sampled likewise; out = h + skip.
 * SelfAttn: theta = conv(x) [N, C/8, HW]; phi = maxpool2(conv(x)) [N, C/8, HW/4]; attention =
 * softmax(theta^T phi) [N, HW, HW/4]; g = maxpool2(conv(x)) [N, C/2, HW/4]; out = x + gamma *
 * o_conv(g attention^T).
 *
 * Inputs as in the port: truncated noise z = truncation * truncnorm(-2, 2) (`truncatedNoise`), a
 * class per sample (ids, or class vectors [N, num_classes] as the port's one-hot input), and the
 * truncation; output images [N, 3, H, W] in [-1, 1].
 */
import {
  Module, ModuleList, Linear, Conv2d, Parameter, Tensor, spectralNorm, OpError, noGrad, keep, scope,
  zeros, ones, tensor, add, mul, relu, tanh, reshape, permute, contiguous, contiguousCopy, select, narrow, concat, matmul,
  softmax, maxPool2d, upsampleNearest2d, batchNorm2d, embedding, linear, transpose, spectralNormWeight,
} from '../engine/api.ts';

/** One GenBlock: [up-sample, in channel multiplier, out channel multiplier] (config.py's layers). */
export type BigGANDeepLayer = [boolean, number, number];

/** config.py's BigGANConfig, with its JSON keys (the port's config.json reads as this). */
export interface BigGANDeepConfig {
  output_dim: number;
  z_dim: number;
  class_embed_dim: number;
  channel_width: number;
  num_classes: number;
  layers: BigGANDeepLayer[];
  attention_layer_position: number;
  eps: number;
  n_stats: number;
}

const L = (up: boolean, i: number, o: number): BigGANDeepLayer => [up, i, o];

/** convert_tf_to_pytorch.py's BigGAN128 (config.json of biggan-deep-128). */
export const BIGGAN_DEEP_128: Readonly<BigGANDeepConfig> = {
  output_dim: 128, z_dim: 128, class_embed_dim: 128, channel_width: 128, num_classes: 1000,
  layers: [L(false, 16, 16), L(true, 16, 16), L(false, 16, 16), L(true, 16, 8), L(false, 8, 8), L(true, 8, 4), L(false, 4, 4), L(true, 4, 2), L(false, 2, 2), L(true, 2, 1)],
  attention_layer_position: 8, eps: 1e-4, n_stats: 51,
};

/** convert_tf_to_pytorch.py's BigGAN256. */
export const BIGGAN_DEEP_256: Readonly<BigGANDeepConfig> = {
  ...BIGGAN_DEEP_128,
  output_dim: 256,
  layers: [
    L(false, 16, 16), L(true, 16, 16), L(false, 16, 16), L(true, 16, 8), L(false, 8, 8), L(true, 8, 8),
    L(false, 8, 8), L(true, 8, 4), L(false, 4, 4), L(true, 4, 2), L(false, 2, 2), L(true, 2, 1),
  ],
};

/** convert_tf_to_pytorch.py's BigGAN512. */
export const BIGGAN_DEEP_512: Readonly<BigGANDeepConfig> = {
  ...BIGGAN_DEEP_256,
  output_dim: 512,
  layers: [...BIGGAN_DEEP_256.layers, L(false, 1, 1), L(true, 1, 1)],
};

/**
 * A reduced BigGAN-deep for tests and quick runs (not a released checkpoint): channel width 4,
 * z 16, 10 classes, 64x64 output, attention at 16x16. The structure (16 ch after gen_z, channel
 * halving with up-sampling, ch channels before conv_to_rgb) is what the port's code requires.
 */
export const BIGGAN_DEEP_TINY: Readonly<BigGANDeepConfig> = {
  output_dim: 64, z_dim: 16, class_embed_dim: 16, channel_width: 4, num_classes: 10,
  layers: [L(false, 16, 16), L(true, 16, 8), L(false, 8, 8), L(true, 8, 4), L(true, 4, 2), L(true, 2, 1)],
  attention_layer_position: 3, eps: 1e-4, n_stats: 51,
};

export const BIGGAN_DEEP_CONFIGS: Readonly<Record<string, Readonly<BigGANDeepConfig>>> = {
  'biggan-deep-128': BIGGAN_DEEP_128,
  'biggan-deep-256': BIGGAN_DEEP_256,
  'biggan-deep-512': BIGGAN_DEEP_512,
  'biggan-deep-tiny': BIGGAN_DEEP_TINY,
};

/** The config of a preset name (biggan-deep-128, -256, -512, -tiny), copied. */
export function bigGANDeepConfig(name: string): BigGANDeepConfig {
  const c = BIGGAN_DEEP_CONFIGS[name];
  if (c === undefined) throw new OpError('BigGANDeep', `unknown BigGAN-deep config "${name}" (known: ${Object.keys(BIGGAN_DEEP_CONFIGS).join(', ')})`);
  return structuredClone(c) as BigGANDeepConfig;
}

/** The port's config checks, before any weight is made: the shapes its code assumes. */
export function checkBigGANDeepConfig(c: BigGANDeepConfig): void {
  const bad = (msg: string): never => {
    throw new OpError('BigGANDeep', msg);
  };
  for (const k of ['z_dim', 'channel_width', 'num_classes', 'n_stats'] as const) if (!Number.isInteger(c[k]) || c[k] < 1) bad(`${k} must be a positive integer, got ${c[k]}`);
  if (c.n_stats < 2) bad(`n_stats must be >= 2, got ${c.n_stats}`);
  if (c.layers.length === 0) bad('layers is empty');
  if (c.layers[0]![1] !== 16) bad(`the first layer must take 16 * channel_width channels (gen_z's output), got multiplier ${c.layers[0]![1]}`);
  for (let i = 0; i < c.layers.length; i++) {
    const [, inM, outM] = c.layers[i]!;
    if (i > 0 && c.layers[i - 1]![2] !== inM) bad(`layer ${i} takes multiplier ${inM}, layer ${i - 1} gives ${c.layers[i - 1]![2]}`);
    if (inM !== outM && outM * 2 !== inM) bad(`layer ${i}: the skip keeps half the channels, so out must equal in or in / 2, got ${inM} -> ${outM}`);
    if ((c.channel_width * inM) % 4 !== 0) bad(`layer ${i}: ${c.channel_width * inM} channels are not divisible by the reduction factor 4`);
  }
  if (c.layers[c.layers.length - 1]![2] !== 1) bad(`the last layer must give channel_width channels (multiplier 1), got ${c.layers[c.layers.length - 1]![2]}`);
  if (c.channel_width < 3) bad(`channel_width must be >= 3 (conv_to_rgb keeps its first 3 channels), got ${c.channel_width}`);
  const a = c.attention_layer_position;
  if (!Number.isInteger(a) || a < 0 || a >= c.layers.length) bad(`attention_layer_position must index a layer (0..${c.layers.length - 1}), got ${a}`);
  if ((c.channel_width * c.layers[a]![1]) % 8 !== 0) bad(`the attention layer's ${c.channel_width * c.layers[a]![1]} channels are not divisible by 8`);
}

/** The truncation's statistics row(s) as the port picks them: [i, coef] with coef in [0, 1). */
export function truncationRows(truncation: number, nStats: number): { start: number; coef: number } {
  if (!(truncation > 0 && truncation <= 1)) throw new OpError('BigGANDeep', `truncation must be in (0, 1] (the port asserts 0 < truncation <= 1), got ${truncation}`);
  const q = truncation / (1 / (nStats - 1));
  const start = Math.trunc(q);
  return { start, coef: q - start };
}

/**
 * Frozen evaluation weights: W / sigma of a spectrally normalised module, computed once by
 * BigGANDeep.freezeSpectralNorms. In evaluation torch recomputes sigma = u . (W v) at every forward
 * from the same W, u and v, so the frozen weight is the same number; the recomputation is a
 * matrix-vector product per module over all 50M weights, 7.1 s of a 13.8 s forward of one
 * biggan-deep-128 image on lavapipe (measured, README "imagenet").
 */
const frozenWeights = new WeakMap<Module, Tensor>();

/** torch.nn.utils.spectral_norm(module) whose forward uses the frozen weight when there is one. */
function withFrozenWeight<M extends Conv2d | Linear>(m: M, eps: number): M {
  const plain = m.forward.bind(m);
  spectralNorm(m, 'weight', { eps });
  const normalised = m.forward.bind(m);
  const target = m as unknown as { weight: unknown; forward: (x: Tensor) => Tensor };
  target.forward = (x: Tensor): Tensor => {
    const w = frozenWeights.get(m);
    if (w === undefined || m.training) return normalised(x);
    const prev = target.weight;
    target.weight = w;
    try {
      return plain(x);
    } finally {
      target.weight = prev;
    }
  };
  return m;
}

function snConv(inCh: number, outCh: number, k: number, eps: number, bias: boolean): Conv2d {
  return withFrozenWeight(new Conv2d(inCh, outCh, k, { padding: k === 3 ? 1 : 0, bias }), eps);
}

function snLinear(inF: number, outF: number, eps: number, bias: boolean): Linear {
  return withFrozenWeight(new Linear(inF, outF, bias), eps);
}

function filled(shape: number[], value: number): Parameter {
  const t = value === 0 ? zeros(shape) : ones(shape);
  const p = Parameter.from(t);
  t.dispose();
  return p;
}

/** BigGANBatchNorm: stored statistics per truncation step; conditional (scale/offset of cond) or not (weight/bias). */
export class BigGANBatchNorm extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly nStats: number;
  readonly conditional: boolean;
  readonly scale: Linear | null;
  readonly offset: Linear | null;
  readonly weight: Parameter | null;
  readonly bias: Parameter | null;

  constructor(numFeatures: number, conditionVectorDim: number | null, nStats: number, eps: number) {
    super();
    this.numFeatures = numFeatures;
    this.eps = eps;
    this.nStats = nStats;
    this.conditional = conditionVectorDim !== null;
    this.registerBuffer('running_means', keep(zeros([nStats, numFeatures])));
    this.registerBuffer('running_vars', keep(ones([nStats, numFeatures])));
    this.scale = this.registerModule('scale', conditionVectorDim !== null ? snLinear(conditionVectorDim, numFeatures, eps, false) : null);
    this.offset = this.registerModule('offset', conditionVectorDim !== null ? snLinear(conditionVectorDim, numFeatures, eps, false) : null);
    this.weight = this.registerParameter('weight', conditionVectorDim === null ? filled([numFeatures], 1) : null);
    this.bias = this.registerParameter('bias', conditionVectorDim === null ? filled([numFeatures], 0) : null);
  }

  /** The statistics [C] for this truncation (the port's interpolation), as own-storage tensors. */
  private stats(truncation: number): [Tensor, Tensor] {
    const { start, coef } = truncationRows(truncation, this.nStats);
    return noGrad(() => [this.getBuffer('running_means')!, this.getBuffer('running_vars')!].map((buf) => {
      const a = select(buf, 0, start);
      if (coef === 0) {
        const out = contiguousCopy(a);
        a.dispose();
        return out;
      }
      const b = select(buf, 0, start + 1);
      const wa = mul(a, coef);
      const wb = mul(b, 1 - coef);
      const out = add(wa, wb);
      for (const t of [a, b, wa, wb]) t.dispose();
      return out;
    }) as [Tensor, Tensor]);
  }

  forward(x: Tensor, truncation: number, cond?: Tensor): Tensor {
    const [mean, variance] = this.stats(truncation);
    const opts = { training: false, runningMean: mean, runningVar: variance, eps: this.eps };
    try {
      if (!this.conditional) return batchNorm2d(x, this.weight, this.bias, opts);
      if (cond === undefined) throw new OpError('BigGANBatchNorm', 'a conditional batch norm needs the condition vector');
      const s = this.scale!.forward(cond);
      const w = add(s, 1);
      const b = this.offset!.forward(cond);
      const out = batchNorm2d(x, w, b, opts);
      for (const t of [s, w, b]) t.dispose();
      return out;
    } finally {
      mean.dispose();
      variance.dispose();
    }
  }
}

/** The port's GenBlock (BigGAN-deep's bottleneck residual block, reduction factor 4). */
export class GenBlock extends Module {
  readonly upSample: boolean;
  readonly dropChannels: boolean;
  readonly bn_0: BigGANBatchNorm;
  readonly conv_0: Conv2d;
  readonly bn_1: BigGANBatchNorm;
  readonly conv_1: Conv2d;
  readonly bn_2: BigGANBatchNorm;
  readonly conv_2: Conv2d;
  readonly bn_3: BigGANBatchNorm;
  readonly conv_3: Conv2d;

  constructor(inSize: number, outSize: number, conditionVectorDim: number, upSample: boolean, nStats: number, eps: number) {
    super();
    this.upSample = upSample;
    this.dropChannels = inSize !== outSize;
    const mid = inSize / 4;
    this.bn_0 = this.registerModule('bn_0', new BigGANBatchNorm(inSize, conditionVectorDim, nStats, eps));
    this.conv_0 = this.registerModule('conv_0', snConv(inSize, mid, 1, eps, true));
    this.bn_1 = this.registerModule('bn_1', new BigGANBatchNorm(mid, conditionVectorDim, nStats, eps));
    this.conv_1 = this.registerModule('conv_1', snConv(mid, mid, 3, eps, true));
    this.bn_2 = this.registerModule('bn_2', new BigGANBatchNorm(mid, conditionVectorDim, nStats, eps));
    this.conv_2 = this.registerModule('conv_2', snConv(mid, mid, 3, eps, true));
    this.bn_3 = this.registerModule('bn_3', new BigGANBatchNorm(mid, conditionVectorDim, nStats, eps));
    this.conv_3 = this.registerModule('conv_3', snConv(mid, outSize, 1, eps, true));
  }

  forward(x: Tensor, cond: Tensor, truncation: number): Tensor {
    const tmp: Tensor[] = [];
    const t = (v: Tensor): Tensor => (tmp.push(v), v);
    try {
      let h = t(this.conv_0.forward(t(relu(t(this.bn_0.forward(x, truncation, cond))))));
      h = t(relu(t(this.bn_1.forward(h, truncation, cond))));
      if (this.upSample) h = t(upsampleNearest2d(h, 2));
      h = t(this.conv_1.forward(h));
      h = t(this.conv_2.forward(t(relu(t(this.bn_2.forward(h, truncation, cond))))));
      h = t(this.conv_3.forward(t(relu(t(this.bn_3.forward(h, truncation, cond))))));
      let s = x;
      if (this.dropChannels) s = t(narrow(s, 1, 0, x.shape[1]! / 2));
      if (this.upSample) s = t(upsampleNearest2d(s, 2));
      return add(h, s);
    } finally {
      for (const v of tmp) v.dispose();
    }
  }
}

/** The port's SelfAttn (SAGAN's attention with 2x2 max-pooled keys and values). */
export class SelfAttn extends Module {
  readonly inChannels: number;
  readonly snconv1x1_theta: Conv2d;
  readonly snconv1x1_phi: Conv2d;
  readonly snconv1x1_g: Conv2d;
  readonly snconv1x1_o_conv: Conv2d;
  readonly gamma: Parameter;

  constructor(inChannels: number, eps: number) {
    super();
    this.inChannels = inChannels;
    this.snconv1x1_theta = this.registerModule('snconv1x1_theta', snConv(inChannels, inChannels / 8, 1, eps, false));
    this.snconv1x1_phi = this.registerModule('snconv1x1_phi', snConv(inChannels, inChannels / 8, 1, eps, false));
    this.snconv1x1_g = this.registerModule('snconv1x1_g', snConv(inChannels, inChannels / 2, 1, eps, false));
    this.snconv1x1_o_conv = this.registerModule('snconv1x1_o_conv', snConv(inChannels / 2, inChannels, 1, eps, false));
    this.gamma = this.registerParameter('gamma', filled([1], 0));
  }

  forward(x: Tensor): Tensor {
    const [n, ch, h, w] = x.shape as [number, number, number, number];
    if (h % 2 !== 0 || w % 2 !== 0) throw new OpError('SelfAttn', `the 2x2 max-pooling needs an even height and width, got ${h}x${w}`);
    const tmp: Tensor[] = [];
    const t = (v: Tensor): Tensor => (tmp.push(v), v);
    try {
      const theta = t(reshape(t(this.snconv1x1_theta.forward(x)), [n, ch / 8, h * w]));
      const phi = t(reshape(t(maxPool2d(t(this.snconv1x1_phi.forward(x)), 2)), [n, ch / 8, (h * w) / 4]));
      const attn = t(softmax(t(matmul(theta, phi, { transA: true })), -1)); // [N, HW, HW/4]
      const g = t(reshape(t(maxPool2d(t(this.snconv1x1_g.forward(x)), 2)), [n, ch / 2, (h * w) / 4]));
      const attnG = t(reshape(t(matmul(g, attn, { transB: true })), [n, ch / 2, h, w]));
      const o = t(this.snconv1x1_o_conv.forward(attnG));
      return add(x, t(mul(o, this.gamma)));
    } finally {
      for (const v of tmp) v.dispose();
    }
  }
}

/** The port's Generator: gen_z, the layers (GenBlocks and one SelfAttn), bn, conv_to_rgb. */
export class BigGANDeepGenerator extends Module {
  readonly config: BigGANDeepConfig;
  readonly gen_z: Linear;
  readonly layers: ModuleList;
  readonly bn: BigGANBatchNorm;
  readonly conv_to_rgb: Conv2d;

  constructor(config: BigGANDeepConfig) {
    super();
    this.config = config;
    const ch = config.channel_width;
    const condDim = config.z_dim * 2;
    this.gen_z = this.registerModule('gen_z', snLinear(condDim, 4 * 4 * 16 * ch, config.eps, true));
    const layers: Module[] = [];
    config.layers.forEach(([up, inM, outM], i) => {
      if (i === config.attention_layer_position) layers.push(new SelfAttn(ch * inM, config.eps));
      layers.push(new GenBlock(ch * inM, ch * outM, condDim, up, config.n_stats, config.eps));
    });
    this.layers = this.registerModule('layers', new ModuleList(layers));
    this.bn = this.registerModule('bn', new BigGANBatchNorm(ch, null, config.n_stats, config.eps));
    this.conv_to_rgb = this.registerModule('conv_to_rgb', snConv(ch, ch, 3, config.eps, true));
  }

  forward(cond: Tensor, truncation: number): Tensor {
    const ch16 = 16 * this.config.channel_width;
    const n = cond.shape[0]!;
    let z: Tensor = this.gen_z.forward(cond);
    // TF's [N, 4, 4, C] layout of gen_z's output, moved to NCHW
    const nhwc = reshape(z, [n, 4, 4, ch16]);
    const nchw = permute(nhwc, [0, 3, 1, 2]);
    const next = contiguous(nchw);
    for (const v of [z, nhwc, nchw]) if (v !== next) v.dispose();
    z = next;
    for (const layer of this.layers.children()) {
      const out = layer instanceof GenBlock ? layer.forward(z, cond, truncation) : (layer as SelfAttn).forward(z);
      z.dispose();
      z = out;
    }
    const steps: ((v: Tensor) => Tensor)[] = [
      (v) => this.bn.forward(v, truncation),
      (v) => relu(v),
      (v) => this.conv_to_rgb.forward(v),
      (v) => narrow(v, 1, 0, 3),
      (v) => tanh(v),
    ];
    for (const step of steps) {
      const out = step(z);
      z.dispose();
      z = out;
    }
    return z;
  }
}

/**
 * The port's BigGAN: `embeddings` (the class embedding, a Linear on one-hot class vectors) and the
 * generator. forward(z, classes, truncation): classes are ids (i32 [N]) or class vectors
 * (f32 [N, num_classes], the port's input).
 */
export class BigGANDeep extends Module {
  readonly config: BigGANDeepConfig;
  readonly embeddings: Linear;
  readonly generator: BigGANDeepGenerator;

  constructor(config: BigGANDeepConfig | string = 'biggan-deep-128') {
    super();
    const c = typeof config === 'string' ? bigGANDeepConfig(config) : structuredClone(config);
    checkBigGANDeepConfig(c);
    this.config = c;
    this.embeddings = this.registerModule('embeddings', new Linear(c.num_classes, c.z_dim, false));
    this.generator = this.registerModule('generator', new BigGANDeepGenerator(c));
  }

  get dimZ(): number {
    return this.config.z_dim;
  }

  get numClasses(): number {
    return this.config.num_classes;
  }

  /** Output height and width. */
  get resolution(): number {
    return 4 * 2 ** this.config.layers.filter(([up]) => up).length;
  }

  forward(z: Tensor, classes: Tensor, truncation: number): Tensor {
    const c = this.config;
    truncationRows(truncation, c.n_stats);
    if (z.rank !== 2 || z.shape[1] !== c.z_dim || z.dtype !== 'f32') throw new OpError('BigGANDeep', `z must be f32 [N, ${c.z_dim}], got ${z.dtype} [${z.shape.join(', ')}]`);
    const n = z.shape[0]!;
    let embed: Tensor;
    if (classes.dtype === 'i32') {
      if (classes.rank !== 1 || classes.shape[0] !== n) throw new OpError('BigGANDeep', `class ids must be i32 [${n}], got [${classes.shape.join(', ')}]`);
      // Linear(one_hot(y)) = the embedding weight's column y: gather rows of its transpose
      const wt = transpose(this.embeddings.weight, 0, 1);
      embed = embedding(wt, classes);
      wt.dispose();
    } else {
      if (classes.rank !== 2 || classes.shape[0] !== n || classes.shape[1] !== c.num_classes) {
        throw new OpError('BigGANDeep', `class vectors must be f32 [${n}, ${c.num_classes}], got [${classes.shape.join(', ')}]`);
      }
      embed = linear(classes, this.embeddings.weight);
    }
    const cond = concat([z, embed], 1);
    embed.dispose();
    const out = this.generator.forward(cond, truncation);
    cond.dispose();
    return out;
  }

  /**
   * One power iteration on every spectral norm's u and v (v = normalize(W^T u), u = normalize(W v)),
   * as the port's converter did before saving its checkpoints: random weights need it before
   * evaluation, where sigma = u . (W v) from random unit vectors is near 0 and the 30-odd
   * normalised layers overflow float32 (every output NaN; PyTorch does the same). Runs one
   * training-mode forward of one sample without gradients; the mode is restored.
   */
  settleSpectralNorms(): void {
    const wasTraining = this.training;
    this.train();
    try {
      noGrad(() => scope(() => {
        const ids = tensor(Int32Array.of(0), [1], 'i32');
        this.forward(zeros([1, this.config.z_dim]), ids, 1);
      }));
    } finally {
      this.train(wasTraining);
    }
  }

  /**
   * Computes every spectral norm's evaluation weight W / sigma once and uses it in evaluation-mode
   * forwards until `thawSpectralNorms()`, `train()` or `loadStateDict()` (the same numbers as
   * recomputing them each time, without the per-forward matrix-vector products: for sampling
   * many batches from fixed weights). Modules in training mode ignore it.
   */
  freezeSpectralNorms(): void {
    this.thawSpectralNorms();
    noGrad(() => {
      for (const m of this.modules()) {
        if (!(m instanceof Conv2d || m instanceof Linear) || !m.stateDict().has('weight_orig')) continue;
        const w = spectralNormWeight(m.getParameter('weight_orig')!, m.getBuffer('weight_u')!, m.getBuffer('weight_v')!, { training: false });
        frozenWeights.set(m, keep(w));
      }
    });
  }

  /** Drops the frozen evaluation weights (forwards recompute W / sigma again). */
  thawSpectralNorms(): void {
    for (const m of this.modules()) {
      frozenWeights.get(m)?.dispose();
      frozenWeights.delete(m);
    }
  }

  override train(mode = true): this {
    if (mode) this.thawSpectralNorms();
    return super.train(mode);
  }

  override loadStateDict(...args: Parameters<Module['loadStateDict']>): ReturnType<Module['loadStateDict']> {
    this.thawSpectralNorms();
    return super.loadStateDict(...args);
  }

  override dispose(): void {
    this.thawSpectralNorms();
    super.dispose();
  }

  /** Images [N, 3, H, W] in [-1, 1] for z [N, z_dim], class ids (or class vectors), and the truncation (no gradients). */
  sample(z: Tensor, classes: Int32Array | readonly number[] | Tensor, truncation: number): Tensor {
    return noGrad(() => {
      if (classes instanceof Tensor) return this.forward(z, classes, truncation);
      const ids = Int32Array.from(classes);
      for (const id of ids) {
        if (!(id >= 0 && id < this.config.num_classes)) throw new OpError('BigGANDeep', `class id ${id} is outside 0..${this.config.num_classes - 1}`);
      }
      const y = tensor(ids, [ids.length], 'i32');
      try {
        return this.forward(z, y, truncation);
      } finally {
        y.dispose();
      }
    });
  }
}

/**
 * The port's truncated_noise_sample: z = truncation * X with X ~ N(0, 1) truncated to [-2, 2]
 * (scipy's truncnorm(-2, 2)), [n, dimZ] float32, seeded (a Philox-free host generator: Box-Muller
 * on a 32-bit mixer, values outside [-2, 2] redrawn). The numbers differ from numpy's.
 */
export function truncatedNoise(n: number, dimZ: number, truncation: number, seed = 0): Float32Array {
  let s = (seed >>> 0) ^ 0x9e3779b9;
  const u32 = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n * dimZ);
  for (let i = 0; i < out.length; i++) {
    let x: number;
    do {
      const u = 1 - u32();
      x = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * u32());
    } while (x < -2 || x > 2);
    out[i] = truncation * x;
  }
  return out;
}
